"""The blinding policy on the database (the pure rules are in ``trials.blinding``; who is
blinded to which trial is ``edc.core.roles.blinded_to``).

Every surface asks here, so that a blinded user meets the same masking wherever they look
(ICH E9 2.3.1):

* what reveals the allocation: a lookup path through an arm, a product or a randomization
  slot, in any spelling (``arm``, ``arm_id``, ``arm__code``, ``subject__arm__label``,
  ``visit__intervention``; :func:`reveals_allocation`), from which the admin's
  ``lookup_allowed`` and sortable columns and the API's filters and orderings are built;
* which audit fields a user may not read (:func:`hidden_audit_fields`: the allocation fields
  when blinded, birth dates for sponsors), and which audit rows (:func:`audit_rows_hidden`:
  the allocation and the protocol definition when blinded);
* which records a blinded user may not see at all, nor their events (:func:`hidden_records`);
* the allocation label of a subject (:func:`arm_label`: ``BLINDED_ARM`` for every subject);
* how a product is shown, and which intervention an attribution is recorded against.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.core.exceptions import FieldDoesNotExist

from edc.core import roles

from . import blinding
from .models import Intervention, Trial

#: Models whose rows are the allocation: a lookup through one of them selects by arm.
ALLOCATION_MODELS = frozenset({"trials.Arm", "trials.Intervention",
                               "subjects.RandomizationSlot", "subjects.AllocationError"})


def allocation_fields(model) -> frozenset[str]:
    """Names of ``model``'s fields that reveal the allocation: relations to an allocation
    model and the fields the model declares in ``allocation_fields`` (e.g. a visit's planned
    product code)."""
    names = set(getattr(model, "allocation_fields", ()))
    for field in model._meta.get_fields():
        related = getattr(field, "related_model", None)
        if related is not None and related._meta.label in ALLOCATION_MODELS:
            names.add(field.name)
    return frozenset(names)


def reveals_allocation(model, lookup: str) -> bool:
    """Whether a lookup or ordering path (``-`` allowed) from ``model`` goes through the
    allocation, in any spelling: field name or attname, any depth, any transform after it."""
    for part in lookup.lstrip("-").split("__"):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False  # a transform or lookup (exact, in, pk...) on a harmless field
        if field.name in allocation_fields(model):
            return True
        if getattr(field, "related_model", None) is None:
            return False
        model = field.related_model
    return False


def hidden_audit_fields(user, model, trial) -> set[str]:
    """Audit-trail columns (attnames) of ``model`` that ``user`` may not read for a record
    of ``trial``: the allocation fields when blinded, direct identifiers for sponsors."""
    hidden = set()
    if trial is not None and roles.blinded_to(user, trial):
        for name in allocation_fields(model):
            field = model._meta.get_field(name)
            if field.concrete:
                hidden.add(field.attname)
    if not roles.sees_birth_dates(user):
        hidden |= {f.attname for f in model._meta.concrete_fields
                   if f.name in roles.DIRECT_IDENTIFIERS}
    return hidden


def audit_rows_hidden(user, model, trial) -> bool:
    """Whether ``user`` may not read the audit rows of ``model`` in ``trial`` at all: for a
    user blinded to the trial, the allocation itself (``ALLOCATION_MODELS``: arms, products,
    the allocation list) and the rest of the protocol definition (versions, dose levels,
    criteria: shown only to users unblinded to the trial, as by the protocol read API)."""
    if not roles.blinded_to(user, trial):
        return False
    return model._meta.label in ALLOCATION_MODELS or (
        model._meta.app_label == Trial._meta.app_label and model is not Trial)


def hidden_records(model) -> dict:
    """Lookups of the records of ``model`` that a user blinded to their trial may not see,
    nor their audit events: those its ``hidden_when_blinded`` marks (a source document that
    shows the treatment); none for other models."""
    return dict(getattr(model, "hidden_when_blinded", None) or {})


def arm_label(user, subject, label: str | None = None) -> str | None:
    """The allocation of ``subject`` as ``user`` may see it: the arm's label, or for a user
    blinded to the trial ``BLINDED_ARM``, the same for every subject (an emergency unblinding
    reveals its one subject through ``subjects.api``, never through a label). ``label``: the
    arm's label when already read with the subject (a list page), else ``subject.arm``'s."""
    if subject.arm_id is None:
        return None
    if roles.blinded_to(user, subject.trial_id):
        return blinding.BLINDED_ARM
    return subject.arm.label if label is None else label


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


def attribution_targets(subject, interventions: list[Intervention] | None = None
                        ) -> dict[int, Intervention]:
    """``{intervention pk: the intervention an attribution to it is recorded against}`` for
    the interventions of ``subject``'s protocol (``interventions``: all of them, if the
    caller read them): in a blinded trial a masking group's active product
    (``trials.blinding``: causality is assessed against the blinded study treatment), else
    the intervention itself."""
    if interventions is None:
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
