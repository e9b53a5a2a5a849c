"""Randomization administration by the unblinded statistician (ICH E9 2.3, 5.2.1): the
allocation lists of a trial and their use, their extension, and allocation errors.

* **View**: per stratum, every slot (sequence, block, size, arm) with the subject it went to
  and when, the counts per arm, and the allocation errors recorded.
* **Extend**: new blocks drawn from the same secret-seeded generator
  (``subjects.randomization.extend_list``, seed ``enrollment.list_seed``), with the protocol's
  ratio and block sizes, as if the list had been generated longer: a list that is not the
  generator's output for them is not extended. Audited with the statistician and the reason.
* **Allocation errors**: recorded with what went wrong and its correction; the allocation is
  never changed (the subject is analysed in the arm allocated: DM ARM); the arm actually
  received, where it differs, is DM ACTARM (``exports``).

Only ``edc.core.roles.administers_randomization`` users reach any of it (403 for the rest).
"""

from __future__ import annotations

from collections import Counter

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from edc.core import roles
from edc.core.audit import change_reason
from edc.core.exceptions import Conflict
from trials.models import Trial

from . import randomization
from .enrollment import design_of, list_seed, strata_of
from .models import AllocationError, RandomizationSlot, Subject

MAX_BLOCKS = 1000


class ListNotExtended(Conflict):
    """The stored list is not the generator's output for the protocol (API: 409)."""

    code = "list_not_extended"


def check_statistician(user, trial) -> None:
    if not roles.administers_randomization(user, trial):
        raise PermissionDenied("Only the unblinded statistician of this trial administers its "
                               "randomization lists.")


def _slot(row: RandomizationSlot) -> randomization.Slot:
    return randomization.Slot(row.stratum, row.sequence, row.block_number, row.block_size,
                              row.arm.code)


def overview(trial: Trial, user) -> dict:
    """Every stratum's list: its slots and their use, counts per arm, allocation errors."""
    check_statistician(user, trial)
    slots = list(RandomizationSlot.objects.filter(trial=trial).select_related(
        "arm", "subject__site").order_by("stratum", "sequence"))
    errors = list(AllocationError.objects.filter(subject__trial=trial, retired_at__isnull=True)
                  .select_related("subject", "actual_arm", "recorded_by", "slot"))
    strata = {name: [] for name in strata_of(trial)}
    for slot in slots:
        strata.setdefault(slot.stratum, []).append(slot)
    lists = []
    for name, rows in strata.items():
        used = [r for r in rows if r.subject_id is not None]
        lists.append({
            "stratum": name, "slots": len(rows), "used": len(used),
            "remaining": len(rows) - len(used), "exhausted": bool(rows) and len(used) == len(rows),
            "blocks": max((r.block_number for r in rows), default=0),
            "per_arm": {arm: {"slots": n, "used": Counter(r.arm.code for r in used)[arm]}
                        for arm, n in sorted(Counter(r.arm.code for r in rows).items())},
            "rows": [{"sequence": r.sequence, "block": r.block_number, "block_size": r.block_size,
                      "arm": r.arm.code, "arm_label": r.arm.label,
                      "subject": r.subject_id, "subject_number": (
                          r.subject.subject_number if r.subject_id else None),
                      "site": r.subject.site.code if r.subject_id else None,
                      "allocated_at": r.allocated_at} for r in rows],
        })
    return {"trial": trial.registry_id, "lists": lists, "allocation_errors": [{
        "id": e.pk, "subject": e.subject_id, "subject_number": e.subject.subject_number,
        "slot": e.slot.sequence, "stratum": e.slot.stratum, "allocated_arm": e.slot.arm.code,
        "actual_arm": e.actual_arm.code if e.actual_arm_id else None, "error": e.error,
        "correction": e.correction, "recorded_by": e.recorded_by.get_username(),
        "recorded_at": e.created_at} for e in errors]}


@transaction.atomic
def extend(trial: Trial, *, stratum: str, blocks: int, reason: str, user) -> int:
    """Append ``blocks`` new blocks to the stratum's list; returns the number of slots."""
    check_statistician(user, trial)
    problems = {}
    if stratum not in strata_of(trial):
        problems["stratum"] = (f"no stratum {stratum!r} in this trial (one of "
                               f"{', '.join(repr(s) for s in strata_of(trial))})")
    if isinstance(blocks, bool) or not isinstance(blocks, int) or not 1 <= blocks <= MAX_BLOCKS:
        problems["blocks"] = f"a number of blocks from 1 to {MAX_BLOCKS}"
    if not (reason or "").strip():
        problems["reason"] = "say why the list is extended"
    if problems:
        raise ValidationError(problems)
    Trial.objects.select_for_update(no_key=True).get(pk=trial.pk)  # as list generation does
    stored = list(RandomizationSlot.objects.filter(trial=trial, stratum=stratum)
                  .select_related("arm").order_by("sequence"))
    if not stored:
        raise ValidationError({"stratum": "this stratum has no list yet: it is generated at "
                                          "its first randomization"})
    version, ratio, block_sizes = design_of(trial)
    try:
        new = randomization.extend_list(ratio, block_sizes, [_slot(r) for r in stored], blocks,
                                        list_seed(trial), stratum)
    except ValueError as exc:
        raise ListNotExtended([f"the list is not extended: {exc}"]) from None
    arms = {arm.code: arm for arm in version.arms.all()}
    with change_reason(f"allocation list extended by {blocks} block(s), {len(new)} slots: "
                       f"{reason.strip()}", user):
        RandomizationSlot.objects.bulk_create(
            RandomizationSlot(trial=trial, stratum=stratum, sequence=s.sequence,
                              block_number=s.block_number, block_size=s.block_size,
                              arm=arms[s.arm]) for s in new)
    return len(new)


@transaction.atomic
def record_allocation_error(subject: Subject, *, error: str, correction: str,
                            actual_arm: str = "", user) -> AllocationError:
    """Record an error in ``subject``'s randomization and its correction (the allocation
    stays); ``actual_arm``: the code of the arm the subject was actually treated in."""
    check_statistician(user, subject.trial)
    problems = {}
    slot = RandomizationSlot.objects.filter(subject=subject).select_related("arm").first()
    if slot is None:
        problems["subject"] = "this subject was not allocated from a randomization list"
    arm = None
    if actual_arm:
        arm = subject.protocol_version.arms.filter(code=actual_arm).first()
        if arm is None:
            problems["actual_arm"] = f"no arm {actual_arm!r} in the subject's protocol version"
        elif slot is not None and arm.pk == slot.arm_id:
            problems["actual_arm"] = ("that is the arm allocated; leave it empty when the "
                                      "subject was treated as allocated")
    for name, text in (("error", error), ("correction", correction)):
        if not (text or "").strip():
            problems[name] = f"the {name} is required"
    if problems:
        raise ValidationError(problems)
    with change_reason(f"allocation error recorded: {error.strip()}; correction: "
                       f"{correction.strip()}", user):
        return AllocationError.objects.create(
            subject=subject, slot=slot, actual_arm=arm, error=error.strip(),
            correction=correction.strip(), recorded_by=user)
