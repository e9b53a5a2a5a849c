"""Map a protocol file's visit plan and regimens onto ``visits.scheduling`` (pure Python).

Which protocol fields feed which scheduling rule:

* regimens of the subject's arm with an ``interval`` (or a ``course_days`` course) become
  treatment phases, ordered by ``first_cycle``; within a phase the regimen without
  ``relative_day`` is the cycle's own administration and those with ``relative_day`` are
  companions at that day from it (seed 000 arm 2: day -5, -4, +7);
* a phase's cycle count is ``cycles_max`` (or ``cycles_min`` where the document gives only
  a minimum, e.g. "at least 6 cycles"); an interval without a window is target-only;
* a ``course_days`` course at the subject's frequency level gives the ``infusions`` that
  level declares, evenly spaced (``scheduling.course_regimen``);
* regimens given ``at_visits`` (month visits M0, M3) become month visits with the agent;
* efficacy assessments with ``interval_weeks`` give the on-treatment and follow-up
  calendars (a ``period = "any"`` assessment sets both); QLQ-C30 is collected with the
  assessments when the plan names the instrument;
* ``follow_up`` visits with ``interval_weeks`` repeat from the treatment stop (rule R9);
* assessments at fixed ``at_days`` anchored on the first dose become one-off visits (rule
  R10; seed 001 day-21 kinetics sample); those anchored on each administration are
  recording periods after every dose (seed 000 TRAE for 28 days), not visits;
* the follow-up horizon is ``follow_up_months`` from its ``follow_up_anchor`` (enrollment
  when the subject's enrollment date is known, else day 0), else the trial's end of study.
Regimens given "per label" with no interval (standard of care) have no visits.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from trials import protocol_schema as schema

from . import scheduling

QLQ_C30 = "EORTC QLQ-C30"


def _phases(protocol: schema.Protocol, arm: str) -> dict[int, list[schema.Regimen]]:
    phases: dict[int, list[schema.Regimen]] = defaultdict(list)
    for regimen in protocol.regimens_for(arm):
        if regimen.interval is None and regimen.course_days is None:
            continue
        phases[regimen.first_cycle or 1].append(regimen)
    return dict(sorted(phases.items()))


def _infusions(protocol: schema.Protocol, level_code: str | None) -> int | None:
    """Infusions per course of the subject's frequency level, as the protocol declares."""
    levels = protocol.dose_finding.frequency_levels if protocol.dose_finding else ()
    level = next((lv for lv in levels if lv.code == level_code), None)
    if level is None:
        return None
    if level.infusions is None:
        raise ValueError(f"frequency level {level.code} declares no infusions per course")
    return level.infusions


def _cycle_regimen(protocol: schema.Protocol, regimens: list[schema.Regimen],
                   frequency: int | None) -> scheduling.CycleRegimen:
    main = next(r for r in regimens if r.relative_day is None)
    companions = tuple(
        scheduling.Companion(r.intervention, r.relative_day)
        for r in regimens if r.relative_day is not None
    )
    kind = "infusion" if protocol.intervention(main.intervention).cell_product else (
        "administration")
    first = main.first_cycle or 1
    if main.course_days is not None:
        if frequency is None:
            raise ValueError(f"arm {main.arm}: a course regimen needs the subject's frequency "
                             "level")
        return scheduling.course_regimen(f"{main.arm}:{main.phase}", main.intervention,
                                         frequency, main.course_days, first)
    interval = main.interval
    return scheduling.CycleRegimen(
        code=f"{main.arm}:{main.phase}", intervention=main.intervention,
        interval_days=interval.target_days,
        window_min_days=interval.min_days or interval.target_days,
        window_max_days=interval.max_days or interval.target_days,
        n_cycles=main.cycles_max or main.cycles_min or 1,
        first_cycle_number=first, companions=companions, kind=kind,
    )


def _months(protocol: schema.Protocol, arm: str) -> tuple[scheduling.MonthVisits, ...]:
    month_of = {v.code: v.month for v in protocol.visit_plan.visits if v.kind == "month"}
    given: dict[str, list[str]] = defaultdict(list)
    for regimen in protocol.regimens_for(arm):
        for code in regimen.at_visits:
            given[code].append(regimen.intervention)
    return tuple(
        scheduling.MonthVisits(codes=(code,), month_offsets=(month_of[code],),
                               intervention="+".join(given.get(code, ())) or None)
        for code in sorted(month_of, key=month_of.get)
    )


def instrument_assessments(protocol: schema.Protocol,
                           instrument: str) -> tuple[schema.Assessment, ...]:
    """The assessments of the plan that collect ``instrument`` (e.g. the QLQ-C30)."""
    return tuple(a for a in protocol.visit_plan.assessments if instrument in a.instruments)


def _assessments(protocol: schema.Protocol) -> scheduling.AssessmentPlan | None:
    on_treatment = follow_up = None
    baseline = False
    for a in protocol.visit_plan.assessments:
        if a.interval_weeks is None or not {"efficacy", "imaging"} & set(a.kind):
            continue
        baseline = baseline or a.at_baseline
        if a.period in ("treatment", "any"):
            on_treatment = a.interval_weeks * 7
        if a.period in ("follow_up", "any"):
            follow_up = a.interval_weeks * 7
    if on_treatment is None:
        return None
    qlq = any(QLQ_C30 in a.instruments for a in protocol.visit_plan.assessments)
    return scheduling.AssessmentPlan(on_treatment_every_days=on_treatment,
                                     follow_up_every_days=follow_up or on_treatment,
                                     baseline=baseline, qlq_c30=qlq)


def _follow_up(protocol: schema.Protocol) -> tuple[scheduling.FollowUpVisits, ...]:
    return tuple(
        scheduling.FollowUpVisits(v.code, v.interval_weeks * 7,
                                  7 if v.window_days is None else v.window_days)
        for v in protocol.visit_plan.visits
        if v.kind == "follow_up" and v.interval_weeks is not None
    )


def _one_offs(protocol: schema.Protocol) -> tuple[scheduling.OneOffVisit, ...]:
    return tuple(
        scheduling.OneOffVisit(a.code, day, on_treatment=a.period == "treatment")
        for a in protocol.visit_plan.assessments if a.anchor == "first_dose"
        for day in a.at_days
    )


def build_visit_plan(protocol: schema.Protocol, arm: str, day0: dt.date, *,
                     frequency_level: str | None = None,
                     end_of_study: dt.date | None = None,
                     enrolled_on: dt.date | None = None) -> scheduling.VisitPlan:
    """The scheduling plan of one subject's arm (see the module docstring for the mapping)."""
    assessments = _assessments(protocol)
    follow_up = _follow_up(protocol)
    horizon_months = protocol.visit_plan.follow_up_months
    horizon_days = None
    if horizon_months is not None and protocol.visit_plan.follow_up_anchor == "enrollment" \
            and enrolled_on is not None:
        horizon_days = max((scheduling.add_months(enrolled_on, horizon_months) - day0).days, 1)
        horizon_months = None
    if horizon_months is None and horizon_days is None and end_of_study is not None:
        horizon_days = max((end_of_study - day0).days, 1)
    if (assessments is not None or follow_up) and horizon_months is None \
            and horizon_days is None:
        raise ValueError("the protocol gives no follow-up horizon and the trial no end date")
    frequency = _infusions(protocol, frequency_level)
    return scheduling.VisitPlan(
        regimens=tuple(_cycle_regimen(protocol, regs, frequency)
                       for regs in _phases(protocol, arm).values()),
        assessments=assessments,
        months=_months(protocol, arm),
        follow_up=follow_up,
        one_offs=_one_offs(protocol),
        follow_up_horizon_days=horizon_days,
        follow_up_horizon_months=horizon_months,
        screening_window_days=protocol.visit_plan.screening_window_days,
    )
