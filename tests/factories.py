"""Test data builders (model-bakery underneath) shared by the integration tests."""

from __future__ import annotations

import datetime as dt
import itertools

from django.contrib.auth.models import Group, User
from model_bakery import baker

from subjects.models import Membership, Site, Subject
from trials.models import Arm, ProtocolVersion, Trial

_counter = itertools.count(1)


def make_trial(masking: str = "none", **kwargs) -> Trial:
    n = next(_counter)
    trial = baker.make(Trial, registry_id=kwargs.pop("registry_id", f"TEST{n:05d}"),
                       registry="sponsor", title=f"Test trial {n}", masking=masking, **kwargs)
    baker.make(ProtocolVersion, trial=trial, version=1, digest=f"{n:064x}",
               source_file="test.toml", document={})
    return trial


def make_site(trial: Trial, code: str) -> Site:
    return baker.make(Site, trial=trial, code=code, name=f"Site {code}")


def make_arm(trial: Trial, code: str, label: str, blinded_label: str = "") -> Arm:
    return baker.make(Arm, protocol_version=trial.current_version(), code=code, label=label,
                      arm_type="experimental", blinded_label=blinded_label)


def make_user(username: str, role: str, *memberships, unblinded: bool = False,
              password: str = "pw-for-tests-1") -> User:
    """A staff user in ``role`` with a membership per ``(trial, site or None)``."""
    user = User.objects.create_user(username=username, password=password, is_staff=True)
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    for trial, site in memberships:
        Membership.objects.create(user=user, trial=trial, site=site, unblinded=unblinded)
    return user


def make_subject(trial: Trial, site: Site, **kwargs) -> Subject:
    n = next(_counter)
    defaults = {
        "screening_number": f"S{n:04d}",
        "sex": "F",
        "age_at_consent": 50,
        "consent_date": dt.date(2025, 1, 2),
        "protocol_version": trial.current_version(),
    }
    defaults.update(kwargs)
    return Subject.objects.create(trial=trial, site=site, **defaults)


def load_seed_trial(registry_id: str) -> Trial:
    """Load the seed protocols (idempotent) and return one trial."""
    from django.core.management import call_command

    call_command("seed_protocols", verbosity=0)
    return Trial.objects.get(registry_id=registry_id)


def make_eligible(subject: Subject) -> Subject:
    """Answer every criterion of the subject's protocol version favourably."""
    from subjects.models import EligibilityAnswer

    EligibilityAnswer.objects.bulk_create(
        EligibilityAnswer(subject=subject, criterion=c, met=c.kind == "inclusion")
        for c in subject.protocol_version.criteria.all()
    )
    return subject
