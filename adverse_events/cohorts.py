"""Per-cohort toxicity outcomes for dose finding: evaluable subjects and subjects with DLT/TI.

A subject counts in its (dose level code, cohort number) cell once allocated (dose level set)
and not a screen failure. It is *evaluable* when it received at least one administration and
either has an effective DLT/TI flag or has been observed for the full window of its protocol's
toxicity rules (the longest ``window_days``) after its first administration. A subject that
leaves before the end of the window without a flag is not evaluable (usually replaced).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from subjects.models import Subject

from .evaluation import applicable_rules
from .models import EFFECTIVE_FLAG, ToxicityFlag


@dataclass(frozen=True)
class CohortOutcome:
    dose_level: str
    cohort: int | None
    subjects: int
    exposed: int
    evaluable: int
    with_dlt: int
    with_ti: int
    with_toxicity: int  # an effective DLT or TI flag (each subject counted once)


def _flagged(kind: str) -> Exists:
    return Exists(ToxicityFlag.objects.filter(
        EFFECTIVE_FLAG, subject=OuterRef("pk"), kind=kind, retired_at__isnull=True,
        adverse_event__retired_at__isnull=True))


def cohort_outcomes(trial, as_of: dt.date | None = None) -> dict[tuple, CohortOutcome]:
    """``{(dose level code, cohort): CohortOutcome}`` for every allocated subject of a trial."""
    as_of = as_of or timezone.localdate()
    subjects = (
        Subject.objects.filter(trial=trial, dose_level__isnull=False, retired_at__isnull=True)
        .exclude(status=Subject.Status.SCREEN_FAILURE)
        .select_related("dose_level", "arm", "protocol_version")
        .annotate(first_dose=Min("exposures__administered_on",
                                 filter=Q(exposures__retired_at__isnull=True)),
                  has_dlt=_flagged("DLT"), has_ti=_flagged("TI"))
    )
    windows: dict[tuple, int] = {}
    cells: dict[tuple, list[int]] = {}
    for s in subjects:
        key = (s.protocol_version_id, s.arm.code if s.arm_id else None)
        if key not in windows:
            windows[key] = max((r.window_days for r in applicable_rules(s)), default=0)
        flagged = s.has_dlt or s.has_ti
        observed = s.first_dose is not None and (as_of - s.first_dose).days >= windows[key]
        counts = cells.setdefault((s.dose_level.code, s.cohort), [0] * 6)
        for i, hit in enumerate((True, s.first_dose is not None,
                                 s.first_dose is not None and (flagged or observed),
                                 s.has_dlt, s.has_ti, flagged)):
            counts[i] += bool(hit)
    return {key: CohortOutcome(key[0], key[1], *c) for key, c in cells.items()}
