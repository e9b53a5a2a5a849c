"""Test data builders (model-bakery underneath) shared by the integration tests."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

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
    """Load one seed protocol (``seeds/<registry id>.toml``, idempotent) and return its trial;
    the other seeds are not loaded (a test that needs two trials loads both)."""
    from django.conf import settings

    from trials.loader import load_files

    load_files([Path(settings.BASE_DIR) / "seeds" / f"{registry_id}.toml"])
    return Trial.objects.get(registry_id=registry_id)


def make_eligible(subject: Subject) -> Subject:
    """Answer every criterion of the subject's protocol version favourably."""
    from subjects.models import EligibilityAnswer

    EligibilityAnswer.objects.bulk_create(
        EligibilityAnswer(subject=subject, criterion=c, met=c.kind == "inclusion")
        for c in subject.protocol_version.criteria.all()
    )
    return subject


# --- adverse events (issue 6) -----------------------------------------------------------------


def load_ctcae_terms() -> None:
    """Load the CTCAE v5.0 dictionary from seeds/ctcae_v5.csv (idempotent)."""
    from adverse_events import ctcae

    ctcae.load()


def make_exposure(subject: Subject, intervention_code: str, on: dt.date, **kwargs):
    """An administration of ``intervention_code`` on ``on`` (with its own unscheduled visit)."""
    from visits.models import Exposure, Visit

    intervention = subject.protocol_version.interventions.get(code=intervention_code)
    visit = Visit.objects.create(subject=subject, code=f"X{next(_counter)}",
                                 kind="infusion", actual_date=on, status="done")
    values = {"dose_value": 1, "dose_unit": "cells/kg"}
    values.update(kwargs)
    return Exposure.objects.create(subject=subject, visit=visit, intervention=intervention,
                                   administered_on=on, **values)


def record_ae(subject: Subject, meddra_code: str, episodes, attributions=None, user=None,
              **values):
    """Record an AE through ``adverse_events.services`` (validated like the API).

    ``episodes``: ``[(grade, start, end or None), ...]`` (onset = first start, resolution =
    last end); ``attributions``: ``{intervention code: level}``.
    """
    from adverse_events import services
    from adverse_events.models import CtcaeTerm
    from adverse_events.validation import AttributionDraft, EpisodeDraft

    drafts = [EpisodeDraft(grade, start, end) for grade, start, end in episodes]
    agents = {i.code: i for i in subject.protocol_version.interventions.all()}
    values = {"term": CtcaeTerm.objects.get(meddra_code=meddra_code),
              "onset_date": drafts[0].start_date, "resolution_date": drafts[-1].end_date,
              **values}
    return services.save_adverse_event(
        subject, values, drafts,
        [AttributionDraft(agents[code], level) for code, level in (attributions or {}).items()],
        user=user,
    )


# ---------------------------------------------------------------- data management builders

def make_dm_visit(subject, code: str = "C1", **kwargs):
    """A visit with a window (target 2025-02-01, window 2025-01-29..2025-02-04)."""
    from visits.models import Visit

    defaults = {"kind": "infusion", "target_date": dt.date(2025, 2, 1),
                "window_low": dt.date(2025, 1, 29), "window_high": dt.date(2025, 2, 4)}
    defaults.update(kwargs)
    return Visit.objects.create(subject=subject, code=code, **defaults)


def make_dm_exposure(visit, weight_kg: str | None = "70.00", **kwargs):
    """An exposure at ``visit`` (a flat 1 mg dose of intervention ``DRUG``)."""
    from decimal import Decimal

    from trials.models import Intervention
    from visits.models import Exposure

    intervention, _ = Intervention.objects.get_or_create(
        protocol_version=visit.subject.protocol_version, code="DRUG",
        defaults={"agent": "Test drug", "intervention_type": "drug"})
    defaults = {"administered_on": visit.actual_date or visit.target_date,
                "dose_value": Decimal("1"), "dose_unit": "mg",
                "weight_kg": Decimal(weight_kg) if weight_kg is not None else None}
    defaults.update(kwargs)
    return Exposure.objects.create(subject=visit.subject, visit=visit,
                                   intervention=intervention, **defaults)


def make_dm_qlq_form(visit, **items):
    """A paper QLQ-C30 form at ``visit`` (items default to unanswered)."""
    from visits.models import QlqC30Form

    return QlqC30Form.objects.create(subject=visit.subject, visit=visit, mode="paper",
                                     completion_date=visit.target_date, **items)
