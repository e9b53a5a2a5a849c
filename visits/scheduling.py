"""Planned visits from a visit plan, and dose arithmetic -- pure Python, stdlib only.

The Django side maps a protocol file onto the input dataclasses below and calls
:func:`plan_visits`; nothing here touches the database.

Vocabulary
----------
* **day 0** -- the date of cycle 1 (first infusion / first administration).  Everything
  fixed to the calendar (efficacy assessments, month visits, the follow-up horizon) is
  counted from day 0.
* **target** -- the planned date; **window** -- ``[window_low, window_high]``, inclusive.
* A **done** visit is one whose key is in ``SubjectState.done`` (key -> actual date).

Rules (referred to by number in the code that applies them)
------------------------------------------------------------
R1  Cycle 1 is on day 0 (window = day 0 only: day 0 is defined by it).
R2  Cycle n+1 is anchored to the ACTUAL date of cycle n when cycle n is done, else to
    cycle n's planned target.  Target = anchor + interval, window = [anchor + window_min,
    anchor + window_max].  Cell-therapy and immunochemotherapy protocols define the cycle
    length as the time from one administration to the next ("every 4-6 weeks"), so a late
    infusion shifts every following one (a 10-day-late cycle 2 moves cycles 3, 4, ... by 10
    days).  The interval used to reach cycle n+1 is cycle n's cycle length, i.e. the
    interval of the phase cycle n belongs to: seed 000 arm 2 cycle 9 (first anti-PD-1-only
    cycle, "every 3 weeks") comes one 4-6-week cycle after cycle 8, and cycle 10 comes 21
    days after cycle 9.
R3  Companion administrations (e.g. nab-paclitaxel day -5, cyclophosphamide day -4,
    anti-PD-1 day +7 in seed 000 arm 2) are at their relative day from their cycle's
    infusion: from the infusion's actual date when it is done (window = that day), else
    from its target with the infusion's window shifted by the same number of days.
    Companions follow the infusion; a done companion never moves the infusion.
R4  Efficacy assessments: a baseline assessment on day 0 or before (window [day 0 -
    ``baseline_window_days``, day 0], default 28 days: RECIST 1.1 -- Eisenhauer et al.,
    Eur J Cancer 2009;45:228-247 -- asks for baseline evaluations as close as possible to
    treatment start and never more than 4 weeks before it), then every
    ``on_treatment_every_days`` (default 56 = 8 weeks, seeds 000 and 002) counted from day
    0.  They stay on that calendar regardless of infusion delays: tumour assessments must
    be at the same times in every arm, whatever the treatment's own timing, or
    progression-free survival is biased by assessment timing (paraphrasing RECIST 1.1,
    "Frequency of tumour re-evaluation": in comparative trials the assessment schedule
    should be the same in all arms and not be affected by treatment delays; FDA Guidance
    "Clinical Trial Endpoints for the Approval of Cancer Drugs and Biologics", 2018, on
    PFS: assessments at the same, fixed times in all arms).
R5  Treatment stop (progression, intolerable toxicity, withdrawal of consent, death, end
    of study, or completion -- the caller records it; this module does not infer it) ends
    the treatment schedule: no treatment visit (infusion, administration, treatment month
    visit) on or after the stop date, and no on-treatment assessment after the stop date
    (an assessment ON the stop date is kept: it is usually the one that found
    progression).  Post-treatment follow-up then comes every ``follow_up_every_days``
    (default 84 = 12 weeks, seed 000) from the stop date -- first follow-up = stop + 84 --
    up to the follow-up horizon counted from day 0.  Seed 000 says on-treatment
    assessments continue "until confirmed progressive disease, death, intolerable
    toxicity, withdrawal of consent, or end of the study", not until the last cycle, hence
    completion of the planned cycles is not a stop unless the caller records one.
R6  Off study (death, withdrawal of consent, loss to follow-up) ends everything: no
    not-done visit with a target after the off-study date is returned.  It also stops
    treatment on that date if no earlier treatment stop is recorded.
R7  Done visits are never moved and always returned (done=True, actual=date) with the
    target the plan gives them -- which is the target they had when they were done, since
    targets depend only on earlier actual dates.  Not-done visits whose target has passed
    are returned too (the caller decides whether they are missed); R5/R6 only remove
    not-done visits after the stop / off-study dates.
R9  Follow-up visits of the plan itself (``FollowUpVisits``; seed 003 "follow-up visits
    of up to 2 years after enrollment"): like R5's follow-up, they start at the treatment
    stop -- first = stop + ``every_days`` -- and repeat up to the follow-up horizon, with
    +/- ``window_days``.  They are not planned before the stop is recorded: when treatment
    ends is the caller's (the site's) record, never inferred here.
R10 One-off visits (``OneOffVisit``; seed 001 "MSC-L kinetics ... 21 days post first
    infusion") are at ``day`` days from the first treatment: from cycle 1's actual date
    when it is done, else from day 0.  Without a window in the document the window is the
    target day only.  ``on_treatment=True`` ones follow R5 like on-treatment assessments.
R8  Month visits (seed 004: "M0" and "M3") are at calendar months from day 0: same day of
    the month, clamped to the month's last day (2025-01-31 + 1 month = 2025-02-28).
    Calendar months (rather than 30.4375-day months) keep M3, M6, M12 on the dates sites
    and subjects expect.  M0 is day 0 (window = day 0); the others have +/- window_days.

Windows not given by a protocol
-------------------------------
* Cycle windows are fields of :class:`CycleRegimen`; when a document gives none (e.g. seed
  001 "every 21 days", seed 000 phase 3 "every 3 weeks") the protocol file should set
  ``window_min_days == window_max_days == interval_days`` (target only); the helper
  :func:`fixed_interval` does that.
* Assessment windows default to +/- 7 days (``AssessmentPlan.window_days``) and month-visit
  windows to +/- 7 days (``MonthVisits.window_days``); none of the seed documents gives one,
  so both are parameters the protocol file overrides.

Keys
----
``C{n}`` cycle n; ``C{n}.{intervention}`` companion; ``SCR`` screening; ``BASELINE``;
``A{k}`` k-th on-treatment assessment (day 56k by default); ``FU{j}`` j-th post-treatment
follow-up (``{code}{j}`` for the plan's own follow-up visits); ``{code}-D{day}`` a one-off
visit; month visits use their own codes ("M0", "M3").
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from subjects import plausibility

__all__ = [
    "AssessmentPlan",
    "Companion",
    "CycleRegimen",
    "FollowUpVisits",
    "MonthVisits",
    "OneOffVisit",
    "PlannedVisit",
    "SubjectState",
    "VisitPlan",
    "VISIT_KINDS",
    "add_months",
    "course_regimen",
    "fixed_interval",
    "mosteller_bsa",
    "plan_visits",
    "planned_dose",
]

VISIT_KINDS = (
    "screening",
    "baseline",
    "infusion",
    "administration",
    "assessment",
    "follow_up",
    "month",
    "sample",
)
TREATMENT_KINDS = ("infusion", "administration")

# How a treatment stop (rule R5) affects a not-done visit:
TREATMENT = "treatment"  # removed when its target is on or after the stop date
ON_TREATMENT = "on_treatment"  # on-treatment assessment: removed when after the stop date
OTHER = "other"  # screening, baseline, follow-up, non-treatment month visits: not affected


def _positive_int(value: object, name: str, *, zero_ok: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
        kind = "a non-negative" if zero_ok else "a positive"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")


# --- input dataclasses -----------------------------------------------------------------


@dataclass(frozen=True)
class Companion:
    """A drug given at ``relative_day`` days from its cycle's infusion (rule R3).

    Seed 000 arm 2: ``Companion("nab-paclitaxel", -5)``, ``Companion("cyclophosphamide",
    -4)``, ``Companion("anti-PD-1", 7)``.
    """

    intervention: str
    relative_day: int

    def __post_init__(self) -> None:
        if not self.intervention:
            raise ValueError("companion intervention must be a non-empty string")
        if self.relative_day == 0 or isinstance(self.relative_day, bool):
            raise ValueError(
                f"companion {self.intervention!r}: relative_day must be a non-zero integer "
                "(day 0 is the infusion itself)"
            )
        if not isinstance(self.relative_day, int):
            raise ValueError(f"companion {self.intervention!r}: relative_day must be an int")


@dataclass(frozen=True)
class CycleRegimen:
    """A treatment phase: ``n_cycles`` consecutive cycles of ``intervention``.

    ``interval_days`` is the target cycle length (rule R2); the next cycle's window is
    ``[anchor + window_min_days, anchor + window_max_days]``.  Seed 000 "every 4-6 weeks"
    is ``interval_days=28, window_min_days=28, window_max_days=42``.  ``kind`` is
    "infusion" (cell product) or "administration" (e.g. anti-PD-1 alone, seed 000 phase 3).
    Phases follow each other: the next phase's ``first_cycle_number`` must be this phase's
    ``first_cycle_number + n_cycles``.
    """

    code: str
    intervention: str
    interval_days: int
    window_min_days: int
    window_max_days: int
    n_cycles: int
    first_cycle_number: int = 1
    companions: tuple[Companion, ...] = ()
    kind: str = "infusion"

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("regimen code must be a non-empty string")
        if not self.intervention:
            raise ValueError(f"regimen {self.code!r}: intervention must be a non-empty string")
        _positive_int(self.interval_days, f"regimen {self.code!r}: interval_days")
        _positive_int(self.window_min_days, f"regimen {self.code!r}: window_min_days")
        _positive_int(self.window_max_days, f"regimen {self.code!r}: window_max_days")
        _positive_int(self.n_cycles, f"regimen {self.code!r}: n_cycles")
        _positive_int(self.first_cycle_number, f"regimen {self.code!r}: first_cycle_number")
        if not self.window_min_days <= self.interval_days <= self.window_max_days:
            raise ValueError(
                f"regimen {self.code!r}: interval_days {self.interval_days} must lie within "
                f"the window {self.window_min_days}..{self.window_max_days}"
            )
        if self.kind not in TREATMENT_KINDS:
            raise ValueError(f"regimen {self.code!r}: kind must be one of {TREATMENT_KINDS}")
        names = [c.intervention for c in self.companions]
        if len(set(names)) != len(names):
            raise ValueError(f"regimen {self.code!r}: companion interventions must be unique")


def fixed_interval(
    code: str,
    intervention: str,
    interval_days: int,
    n_cycles: int,
    first_cycle_number: int = 1,
    companions: Sequence[Companion] = (),
    kind: str = "infusion",
) -> CycleRegimen:
    """A regimen whose document gives no window: target only (window = interval)."""
    return CycleRegimen(
        code,
        intervention,
        interval_days,
        interval_days,
        interval_days,
        n_cycles,
        first_cycle_number,
        tuple(companions),
        kind,
    )


def course_regimen(
    code: str,
    intervention: str,
    frequency: int,
    course_days: int = 14,
    first_cycle_number: int = 1,
) -> CycleRegimen:
    """Seed 003: one UC-MSC course of ``course_days`` at "frequency n".

    The document says only "frequency of infusion will be preset with 3 escalation levels:
    frequency 1, frequency 2, frequency 3, total course of treatment: 2 weeks"; it does
    not define a frequency level.  Convention here (the protocol file must confirm it):
    frequency n = n infusions in the course, evenly spaced every ``course_days // n`` days
    from day 0 (floor, so all n fit in the course): frequency 1 -> day 0; 2 -> days 0, 7;
    3 -> days 0, 4, 8.  No window is given, so target only.
    """
    _positive_int(frequency, "frequency")
    _positive_int(course_days, "course_days")
    if frequency > course_days:
        raise ValueError(f"frequency {frequency} exceeds the {course_days}-day course")
    return fixed_interval(
        code, intervention, course_days // frequency, frequency, first_cycle_number
    )


@dataclass(frozen=True)
class AssessmentPlan:
    """Efficacy (imaging) assessments -- rules R4 and R5.

    ``qlq_c30`` marks every assessment (baseline, on-treatment, follow-up) as also
    collecting EORTC QLQ-C30 (seed 002 uses time to QoL deterioration; the document gives
    no separate QoL calendar, so QoL goes with imaging).
    """

    on_treatment_every_days: int = 56
    follow_up_every_days: int = 84
    baseline: bool = True
    qlq_c30: bool = False
    window_days: int = 7
    baseline_window_days: int = 28

    def __post_init__(self) -> None:
        _positive_int(self.on_treatment_every_days, "on_treatment_every_days")
        _positive_int(self.follow_up_every_days, "follow_up_every_days")
        _positive_int(self.window_days, "window_days", zero_ok=True)
        _positive_int(self.baseline_window_days, "baseline_window_days", zero_ok=True)


@dataclass(frozen=True)
class MonthVisits:
    """Visits at calendar months from day 0 (rule R8), e.g. seed 004 injections at M0, M3.

    ``treatment=True`` makes them treatment visits (removed on/after a treatment stop,
    rule R5); otherwise they are only removed by off-study (R6).
    """

    codes: tuple[str, ...] = ("M0", "M3")
    month_offsets: tuple[int, ...] = (0, 3)
    intervention: str | None = None
    window_days: int = 7
    treatment: bool = True

    def __post_init__(self) -> None:
        if len(self.codes) != len(self.month_offsets) or not self.codes:
            raise ValueError("MonthVisits needs one month offset per code")
        if len(set(self.codes)) != len(self.codes):
            raise ValueError("MonthVisits codes must be unique")
        for offset in self.month_offsets:
            _positive_int(offset, "month offset", zero_ok=True)
        _positive_int(self.window_days, "window_days", zero_ok=True)


@dataclass(frozen=True)
class FollowUpVisits:
    """Rule R9: visits every ``every_days`` from the treatment stop up to the horizon."""

    code: str
    every_days: int
    window_days: int = 7

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("follow-up visit code must be a non-empty string")
        _positive_int(self.every_days, f"follow-up {self.code!r}: every_days")
        _positive_int(self.window_days, f"follow-up {self.code!r}: window_days", zero_ok=True)


@dataclass(frozen=True)
class OneOffVisit:
    """Rule R10: one visit ``day`` days after the first treatment (e.g. a PK sample)."""

    code: str
    day: int
    on_treatment: bool = True

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("one-off visit code must be a non-empty string")
        _positive_int(self.day, f"one-off visit {self.code!r}: day", zero_ok=True)

    @property
    def key(self) -> str:
        return f"{self.code}-D{self.day}"


@dataclass(frozen=True)
class VisitPlan:
    """Everything :func:`plan_visits` needs for one arm.

    The follow-up horizon (from day 0) bounds on-treatment assessments and follow-up; give
    it in days or in calendar months (not both).  It is required when ``assessments`` is
    set.  ``screening_window_days`` adds a screening visit (rule: eligibility within that
    many days before day 0, e.g. seed 000 "organ function confirmed within 2 weeks prior
    to the first dose" -> 14).
    """

    regimens: tuple[CycleRegimen, ...] = ()
    assessments: AssessmentPlan | None = None
    months: tuple[MonthVisits, ...] = ()
    follow_up: tuple[FollowUpVisits, ...] = ()
    one_offs: tuple[OneOffVisit, ...] = ()
    follow_up_horizon_days: int | None = None
    follow_up_horizon_months: int | None = None
    screening_window_days: int | None = None

    def __post_init__(self) -> None:
        number = None
        for reg in self.regimens:
            if number is not None and reg.first_cycle_number != number:
                raise ValueError(
                    f"regimen {reg.code!r} starts at cycle {reg.first_cycle_number}, "
                    f"expected {number} (phases must be consecutive)"
                )
            number = reg.first_cycle_number + reg.n_cycles
        if self.follow_up_horizon_days is not None and self.follow_up_horizon_months is not None:
            raise ValueError("give follow_up_horizon_days or follow_up_horizon_months, not both")
        if self.follow_up_horizon_days is not None:
            _positive_int(self.follow_up_horizon_days, "follow_up_horizon_days")
        if self.follow_up_horizon_months is not None:
            _positive_int(self.follow_up_horizon_months, "follow_up_horizon_months")
        if (self.assessments is not None or self.follow_up) and self.horizon_missing:
            raise ValueError(
                "an assessment plan (or follow-up visits) needs follow_up_horizon_days or "
                "follow_up_horizon_months"
            )
        if self.screening_window_days is not None:
            _positive_int(self.screening_window_days, "screening_window_days")

    @property
    def horizon_missing(self) -> bool:
        return self.follow_up_horizon_days is None and self.follow_up_horizon_months is None

    def horizon(self, day0: date) -> date | None:
        if self.follow_up_horizon_days is not None:
            return day0 + timedelta(days=self.follow_up_horizon_days)
        if self.follow_up_horizon_months is not None:
            return add_months(day0, self.follow_up_horizon_months)
        return None


@dataclass(frozen=True)
class SubjectState:
    """What has happened to one subject.

    ``done``: visit key -> actual date.  ``treatment_stop`` / ``off_study``: ``(date,
    reason)``; reasons are free text for the caller (e.g. "progression", "toxicity",
    "withdrawal", "death", "end_of_study", "completed").
    """

    day0: date
    done: Mapping[str, date] = field(default_factory=dict)
    treatment_stop: tuple[date, str] | None = None
    off_study: tuple[date, str] | None = None


@dataclass(frozen=True)
class PlannedVisit:
    """One visit of the schedule; ``anchor`` says what the target was computed from."""

    key: str
    kind: str
    cycle: int | None
    intervention: str | None
    target: date
    window_low: date
    window_high: date
    qlq_c30: bool
    anchor: str
    done: bool = False
    actual: date | None = None


# --- date helpers ----------------------------------------------------------------------


def add_months(start: date, months: int) -> date:
    """Calendar months, same day of month clamped to the month's end (rule R8).

    2025-01-06 + 3 = 2025-04-06; 2025-11-30 + 3 = 2026-02-28; 2023-11-30 + 3 = 2024-02-29.
    """
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _d(start: date, days: int) -> date:
    return start + timedelta(days=days)


# --- the planner -----------------------------------------------------------------------


def _cycle_visits(plan: VisitPlan, state: SubjectState) -> list[tuple[PlannedVisit, str]]:
    """Rules R1-R3.  Returns (visit, stop rule) pairs."""
    out: list[tuple[PlannedVisit, str]] = []
    prev: tuple[date, str, CycleRegimen] | None = None  # anchor date, description, regimen
    for reg in plan.regimens:
        for i in range(reg.n_cycles):
            n = reg.first_cycle_number + i
            key = f"C{n}"
            if prev is None:
                # R1: cycle 1 defines day 0.
                target = low = high = state.day0
                anchor = "day 0"
            else:
                anchor_date, anchor_text, prev_reg = prev
                # R2: anchored to the previous cycle's actual date (if done) or target, with
                # the previous cycle's length and window.
                target = _d(anchor_date, prev_reg.interval_days)
                low = _d(anchor_date, prev_reg.window_min_days)
                high = _d(anchor_date, prev_reg.window_max_days)
                anchor = f"{anchor_text} + {prev_reg.interval_days} d ({prev_reg.code})"
            actual = state.done.get(key)
            out.append(
                (
                    PlannedVisit(
                        key,
                        reg.kind,
                        n,
                        reg.intervention,
                        target,
                        low,
                        high,
                        False,
                        anchor,
                        actual is not None,
                        actual,
                    ),
                    TREATMENT,
                )
            )
            base = actual if actual is not None else target
            base_text = f"C{n} actual {actual.isoformat()}" if actual else f"C{n} target"
            for comp in reg.companions:
                # R3: relative to the infusion's actual date (exact) or target (window shifted).
                c_key = f"{key}.{comp.intervention}"
                c_target = _d(base, comp.relative_day)
                if actual is not None:
                    c_low = c_high = c_target
                else:
                    c_low, c_high = _d(low, comp.relative_day), _d(high, comp.relative_day)
                c_actual = state.done.get(c_key)
                out.append(
                    (
                        PlannedVisit(
                            c_key,
                            "administration",
                            n,
                            comp.intervention,
                            c_target,
                            c_low,
                            c_high,
                            False,
                            f"{base_text} {comp.relative_day:+d} d",
                            c_actual is not None,
                            c_actual,
                        ),
                        TREATMENT,
                    )
                )
            prev = (base, base_text, reg)
    return out


def _assessment_visits(
    plan: VisitPlan, state: SubjectState, stop: date | None
) -> list[tuple[PlannedVisit, str]]:
    """Rules R4 (calendar from day 0) and R5 (follow-up from the stop date)."""
    ap = plan.assessments
    if ap is None:
        return []
    horizon = plan.horizon(state.day0)
    assert horizon is not None  # enforced by VisitPlan
    day0, w, qlq = state.day0, ap.window_days, ap.qlq_c30
    out: list[tuple[PlannedVisit, str]] = []

    def add(
        key: str, kind: str, target: date, low: date, high: date, anchor: str, phase: str
    ) -> None:
        actual = state.done.get(key)
        out.append(
            (
                PlannedVisit(
                    key,
                    kind,
                    None,
                    None,
                    target,
                    low,
                    high,
                    qlq,
                    anchor,
                    actual is not None,
                    actual,
                ),
                phase,
            )
        )

    if ap.baseline:
        add(
            "BASELINE",
            "baseline",
            day0,
            _d(day0, -ap.baseline_window_days),
            day0,
            f"day 0 (no more than {ap.baseline_window_days} d before, RECIST 1.1)",
            OTHER,
        )
    k = 1
    while (target := _d(day0, k * ap.on_treatment_every_days)) <= horizon:
        add(
            f"A{k}",
            "assessment",
            target,
            _d(target, -w),
            _d(target, w),
            f"day 0 + {k * ap.on_treatment_every_days} d",
            ON_TREATMENT,
        )
        k += 1
    if stop is not None:
        j = 1
        while (target := _d(stop, j * ap.follow_up_every_days)) <= horizon:
            add(
                f"FU{j}",
                "follow_up",
                target,
                _d(target, -w),
                _d(target, w),
                f"treatment stop {stop.isoformat()} + {j * ap.follow_up_every_days} d",
                OTHER,
            )
            j += 1
    return out


def _month_visits(plan: VisitPlan, state: SubjectState) -> list[tuple[PlannedVisit, str]]:
    """Rule R8: calendar months from day 0, M0 = day 0 exactly."""
    out: list[tuple[PlannedVisit, str]] = []
    for group in plan.months:
        for code, offset in zip(group.codes, group.month_offsets, strict=True):
            target = add_months(state.day0, offset)
            if offset == 0:
                low = high = target
            else:
                low, high = _d(target, -group.window_days), _d(target, group.window_days)
            actual = state.done.get(code)
            out.append(
                (
                    PlannedVisit(
                        code,
                        "month",
                        None,
                        group.intervention,
                        target,
                        low,
                        high,
                        False,
                        f"day 0 + {offset} calendar months",
                        actual is not None,
                        actual,
                    ),
                    TREATMENT if group.treatment else OTHER,
                )
            )
    return out


def _follow_up_visits(
    plan: VisitPlan, state: SubjectState, stop: date | None
) -> list[tuple[PlannedVisit, str]]:
    """Rule R9: the plan's own follow-up visits, from the treatment stop to the horizon."""
    if stop is None or not plan.follow_up:
        return []
    horizon = plan.horizon(state.day0)
    assert horizon is not None  # enforced by VisitPlan
    out: list[tuple[PlannedVisit, str]] = []
    for group in plan.follow_up:
        j = 1
        while (target := _d(stop, j * group.every_days)) <= horizon:
            key = f"{group.code}{j}"
            actual = state.done.get(key)
            out.append((PlannedVisit(
                key, "follow_up", None, None, target, _d(target, -group.window_days),
                _d(target, group.window_days), False,
                f"treatment stop {stop.isoformat()} + {j * group.every_days} d",
                actual is not None, actual), OTHER))
            j += 1
    return out


def _one_off_visits(plan: VisitPlan, state: SubjectState) -> list[tuple[PlannedVisit, str]]:
    """Rule R10: one-off visits from cycle 1's actual date (else day 0), target only."""
    first = state.done.get("C1")
    base, base_text = (first, f"C1 actual {first.isoformat()}") if first else (
        state.day0, "day 0")
    out: list[tuple[PlannedVisit, str]] = []
    for visit in plan.one_offs:
        target = _d(base, visit.day)
        actual = state.done.get(visit.key)
        out.append((PlannedVisit(
            visit.key, "sample", None, None, target, target, target, False,
            f"{base_text} + {visit.day} d", actual is not None, actual),
            ON_TREATMENT if visit.on_treatment else OTHER))
    return out


def plan_visits(plan: VisitPlan, state: SubjectState) -> list[PlannedVisit]:
    """The subject's schedule, sorted by target date then key.

    Applies R1-R10 (module docstring): cycles anchored on the previous actual date,
    companions relative to their infusion, assessments fixed to day 0, treatment stop
    removing later treatment visits and on-treatment assessments and starting 12-weekly
    follow-up, off-study removing everything after it, done visits always kept.
    """
    stop = state.treatment_stop[0] if state.treatment_stop else None
    off = state.off_study[0] if state.off_study else None
    if off is not None and (stop is None or off < stop):
        stop = off  # R6: off study also ends treatment

    candidates: list[tuple[PlannedVisit, str]] = []
    if plan.screening_window_days is not None:
        day0, n = state.day0, plan.screening_window_days
        actual = state.done.get("SCR")
        candidates.append(
            (
                PlannedVisit(
                    "SCR",
                    "screening",
                    None,
                    None,
                    _d(day0, -n),
                    _d(day0, -n),
                    _d(day0, -1),
                    False,
                    f"day 0 - {n} d (eligibility window)",
                    actual is not None,
                    actual,
                ),
                OTHER,
            )
        )
    candidates += _cycle_visits(plan, state)
    candidates += _assessment_visits(plan, state, stop)
    candidates += _month_visits(plan, state)
    candidates += _follow_up_visits(plan, state, stop)
    candidates += _one_off_visits(plan, state)

    keys = [v.key for v, _ in candidates]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"visit plan produces duplicate keys: {', '.join(dup)}")

    result = []
    for visit, stop_rule in candidates:
        if not visit.done:  # R7: done visits are always kept
            if off is not None and visit.target > off:  # R6
                continue
            if stop is not None:
                # R5: no treatment on or after the stop date; no on-treatment assessment after it
                if stop_rule == TREATMENT and visit.target >= stop:
                    continue
                if stop_rule == ON_TREATMENT and visit.target > stop:
                    continue
        result.append(visit)
    result.sort(key=lambda v: (v.target, v.key))
    return result


# --- dose arithmetic -------------------------------------------------------------------

BSA_PLACES = Decimal("0.001")
DOSE_BASES = ("per_kg", "per_m2", "flat")


def _decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        if isinstance(value, float):
            result = Decimal(repr(value))  # shortest repr: 61.5 -> Decimal("61.5")
        elif isinstance(value, Decimal | int | str):
            result = Decimal(value)
        else:
            raise ValueError(f"{name} must be a number, got {value!r}")
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return result


def _weight(weight_kg: object) -> Decimal:
    w = _decimal(weight_kg, "weight_kg")
    if (problem := plausibility.weight_problem(w)) is not None:
        raise ValueError(f"weight_kg: {problem}")
    return w


def _height(height_cm: object) -> Decimal:
    h = _decimal(height_cm, "height_cm")
    if (problem := plausibility.height_problem(h)) is not None:
        raise ValueError(f"height_cm: {problem}")
    return h


def mosteller_bsa(height_cm: object, weight_kg: object) -> Decimal:
    """Body surface area in m2, Mosteller: sqrt(height_cm * weight_kg / 3600).

    Mosteller RD, "Simplified calculation of body-surface area", N Engl J Med
    1987;317:1098.  Computed in ``Decimal`` (28 digits) and rounded half-up to 3 decimals
    (1.752 m2 at 170 cm / 65 kg; sqrt(3.069444...) = 1.75198...).  3 decimals keep the
    rounding error of a mg/m2 dose below 0.03 % (2 decimals could shift 125 mg/m2 at
    1.752 m2 to 218.75 mg).  Weight and height within the EDC plausibility defaults
    (``subjects.plausibility``; ``ValueError`` naming the field).
    """
    h, w = _height(height_cm), _weight(weight_kg)
    with localcontext() as ctx:
        ctx.prec = 28
        bsa = (h * w / Decimal(3600)).sqrt()
    return bsa.quantize(BSA_PLACES, rounding=ROUND_HALF_UP)


def planned_dose(
    dose_value: object,
    dose_basis: str,
    weight_kg: object = None,
    height_cm: object = None,
) -> Decimal:
    """Total amount to give: dose x weight (per_kg), dose x BSA (per_m2), or dose (flat).

    ``per_m2`` uses :func:`mosteller_bsa` (BSA rounded to 3 decimals).  The product is
    exact in ``Decimal`` and not rounded further: rounding to what can be dispensed (e.g.
    0.1 mg, or cells to 2 significant figures) is the pharmacy's / manufacturer's rule.
    Examples: 2x10^6 cells/kg at 61.5 kg = 1.23x10^8 cells; 125 mg/m2 at 170 cm / 65 kg
    = 125 x 1.752 = 219.000 mg.
    """
    dose = _decimal(dose_value, "dose_value")
    if dose <= 0:
        raise ValueError(f"dose_value must be > 0, got {dose_value!r}")
    if dose_basis == "flat":
        return dose
    if dose_basis == "per_kg":
        return dose * _weight(weight_kg)
    if dose_basis == "per_m2":
        return dose * mosteller_bsa(height_cm, weight_kg)
    raise ValueError(f"dose_basis must be one of {DOSE_BASES}, got {dose_basis!r}")
