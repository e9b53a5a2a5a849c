"""Product masking for blinded users on the database (the rules are in ``trials.blinding``).

Every surface (API, admin, services' error messages) asks here how a product of a subject's
trial is shown to a user, and which intervention an attribution is recorded against, so that
a blinded user meets the same masking wherever they look.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from edc import roles

from . import blinding
from .models import Intervention


def masking_groups(protocol_version_id: int, user=None) -> dict[str, str]:
    """``trials.blinding.masking_groups`` of a protocol version (cached on ``user``)."""
    cache = user.__dict__.setdefault("_trialdesk_masking", {}) if user is not None else {}
    if protocol_version_id not in cache:
        cache[protocol_version_id] = blinding.masking_groups(
            Intervention.objects.filter(protocol_version_id=protocol_version_id)
            .values_list("code", "placebo_for"))
    return cache[protocol_version_id]


def shown_product(user, subject, code: str) -> str:
    """The product ``code`` of ``subject``'s trial as ``user`` may see it."""
    if not code or not roles.blinded_to(user, subject.trial_id):
        return code
    return blinding.shown_code(code, masking_groups(subject.protocol_version_id, user))


def given_product(user, subject, code: str, planned: str) -> str:
    """The product code an exposure is recorded with: ``code`` as given, else the visit's
    planned product. A user blinded to the trial can only name a product with a matching
    placebo as the study treatment (any member of its masking group, or the ``BLINDED:`` code
    they are shown): the visit's planned product, fixed by the concealed arm, is recorded."""
    if not code:
        return planned
    if not roles.blinded_to(user, subject.trial_id):
        return code
    groups = masking_groups(subject.protocol_version_id, user)
    active = groups.get(code) or (code.removeprefix(blinding.BLINDED_PREFIX)
                                  if code.startswith(blinding.BLINDED_PREFIX) else None)
    return planned if active is not None and groups.get(planned) == active else code


def text_masker(user, subject) -> Callable[[str], str]:
    """A function replacing every product code and name of ``subject``'s protocol with
    ``BLINDED_PRODUCT`` in a text (messages, flag reasons) for a blinded user."""
    if not roles.blinded_to(user, subject.trial_id):
        return lambda text: text
    cache = user.__dict__.setdefault("_trialdesk_product_names", {})
    if subject.protocol_version_id not in cache:
        cache[subject.protocol_version_id] = product_masker(subject.protocol_version_id)
    return cache[subject.protocol_version_id]


def product_masker(protocol_version_id: int) -> Callable[[str], str]:
    """A function replacing every product code and name of a protocol version with
    ``BLINDED_PRODUCT``, whoever reads (e.g. an email to a recipient outside the EDC)."""
    names = sorted({name for pair in Intervention.objects.filter(
        protocol_version_id=protocol_version_id).values_list("code", "agent")
        for name in pair if name}, key=len, reverse=True)
    if not names:
        return lambda text: text
    pattern = re.compile("|".join(re.escape(name) for name in names))
    return lambda text: pattern.sub(blinding.BLINDED_PRODUCT, str(text)) if text else text


def attribution_targets(subject) -> dict[int, Intervention]:
    """``{intervention pk: the intervention an attribution to it is recorded against}`` for
    the interventions of ``subject``'s protocol: in a blinded trial a masking group's active
    product (``trials.blinding``: causality is assessed against the blinded study treatment),
    else the intervention itself."""
    interventions = list(Intervention.objects.filter(
        protocol_version_id=subject.protocol_version_id))
    if not subject.trial.is_blinded:
        return {i.pk: i for i in interventions}
    groups = blinding.masking_groups((i.code, i.placebo_for) for i in interventions)
    by_code = {i.code: i for i in interventions}
    return {i.pk: by_code.get(groups.get(i.code, i.code), i) for i in interventions}


def attribution_name(intervention: Intervention, trial) -> str:
    """How an attribution target is named in messages: the group in a blinded trial."""
    if trial.is_blinded and Intervention.objects.filter(
            protocol_version_id=intervention.protocol_version_id,
            placebo_for=intervention.code).exists():
        return blinding.blinded_name(intervention.code)
    return intervention.code
