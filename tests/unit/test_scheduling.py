"""Unit tests for visits.scheduling (pure Python, no Django).

All expected dates are worked out by hand in the comments.  Reference subject: day 0 =
2025-01-06 (a Monday).  2025 is not a leap year (Feb has 28 days); 2024 is.
Useful offsets from 2025-01-06: +28 = 02-03, +42 = 02-17, +56 = 03-03, +84 = 03-31,
+112 = 04-28, +168 = 06-23, +196 = 07-21, +224 = 08-18, +365 = 2026-01-06,
+730 = 2027-01-06.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest

from visits.scheduling import (
    AssessmentPlan,
    Companion,
    CycleRegimen,
    MonthVisits,
    PlannedVisit,
    SubjectState,
    VisitPlan,
    add_months,
    course_regimen,
    fixed_interval,
    mosteller_bsa,
    plan_visits,
    planned_dose,
)

D0 = date(2025, 1, 6)


def d(text: str) -> date:
    return date.fromisoformat(text)


def by_key(visits: list[PlannedVisit]) -> dict[str, PlannedVisit]:
    out = {v.key: v for v in visits}
    assert len(out) == len(visits), "duplicate keys"
    return out


def tw(v: PlannedVisit) -> tuple[str, str, str]:
    """(target, window_low, window_high) as ISO strings."""
    return v.target.isoformat(), v.window_low.isoformat(), v.window_high.isoformat()


# --- plans for the five seed trials ----------------------------------------------------

# Seed 000 (NCT05699811) arm 1: MSC-IFNa 1-4 times every 4-6 weeks -> target 28 d, 28..42.
ARM1_000 = CycleRegimen("ARM1", "MSC-IFNa", 28, 28, 42, 4)

# Seed 000 arm 2: cycles 1-4 MSC-IFNa q4-6w + nab-paclitaxel d-5, cyclophosphamide d-4,
# anti-PD-1 d+7; cycles 5-8 MSC-IFNa + anti-PD-1 d+7 q4-6w; cycles 9-12 anti-PD-1 alone
# every 3 weeks (no window given -> target only).
ARM2_000 = (
    CycleRegimen(
        "P1-induction",
        "MSC-IFNa",
        28,
        28,
        42,
        4,
        1,
        (
            Companion("nab-paclitaxel", -5),
            Companion("cyclophosphamide", -4),
            Companion("anti-PD-1", 7),
        ),
    ),
    CycleRegimen("P2-consolidation", "MSC-IFNa", 28, 28, 42, 4, 5, (Companion("anti-PD-1", 7),)),
    fixed_interval("P3-maintenance", "anti-PD-1", 21, 4, 9, kind="administration"),
)


def plan_000_arm1(**kw) -> VisitPlan:
    return VisitPlan(
        regimens=(ARM1_000,), assessments=AssessmentPlan(), follow_up_horizon_days=364, **kw
    )


def plan_000_arm2() -> VisitPlan:
    return VisitPlan(regimens=ARM2_000, assessments=AssessmentPlan(), follow_up_horizon_months=24)


def plan_002() -> VisitPlan:
    # iNKT every two weeks, up to six courses; imaging q8w; QLQ-C30; PFS "up to 24 months".
    return VisitPlan(
        regimens=(fixed_interval("RPI", "iNKT cells", 14, 6),),
        assessments=AssessmentPlan(qlq_c30=True),
        follow_up_horizon_months=24,
    )


# --- seed 000 ---------------------------------------------------------------------------


def test_seed000_arm1_schedule():
    visits = plan_visits(plan_000_arm1(), SubjectState(D0))
    # sorted by (target, key): BASELINE < C1 on day 0; A1 < C3 on 03-03
    assert [(v.key, v.target.isoformat()) for v in visits] == [
        ("BASELINE", "2025-01-06"),
        ("C1", "2025-01-06"),
        ("C2", "2025-02-03"),  # day 0 + 28
        ("A1", "2025-03-03"),  # day 56
        ("C3", "2025-03-03"),  # C2 target 02-03 + 28
        ("C4", "2025-03-31"),  # C3 target 03-03 + 28
        ("A2", "2025-04-28"),  # day 112
        ("A3", "2025-06-23"),  # day 168
        ("A4", "2025-08-18"),  # day 224
        ("A5", "2025-10-13"),  # day 280: 08-18 + 56 (13 to 08-31, 30 Sep, 13 Oct)
        ("A6", "2025-12-08"),  # day 336: 10-13 + 56 (18 to 10-31, 30 Nov, 8 Dec); 392 > 364
    ]
    v = by_key(visits)
    assert tw(v["C1"]) == ("2025-01-06", "2025-01-06", "2025-01-06")  # R1: day 0 exactly
    assert tw(v["C2"]) == ("2025-02-03", "2025-02-03", "2025-02-17")  # 02-03 + 14 = 02-17
    assert tw(v["C3"]) == ("2025-03-03", "2025-03-03", "2025-03-17")
    assert tw(v["C4"]) == ("2025-03-31", "2025-03-31", "2025-04-14")  # 03-03 + 42
    # baseline: day 0 or up to 28 days before (RECIST 1.1: <= 4 weeks): 01-06 - 28 = 12-09
    assert tw(v["BASELINE"]) == ("2025-01-06", "2024-12-09", "2025-01-06")
    # assessments +/- 7 d: 03-03 - 7 = 02-24 (Feb has 28 days), 03-03 + 7 = 03-10
    assert tw(v["A1"]) == ("2025-03-03", "2025-02-24", "2025-03-10")
    assert tw(v["A6"]) == ("2025-12-08", "2025-12-01", "2025-12-15")
    assert {v[k].kind for k in ("C1", "C2", "C3", "C4")} == {"infusion"}
    assert v["C3"].cycle == 3 and v["C3"].intervention == "MSC-IFNa"
    assert v["A1"].kind == "assessment" and v["A1"].cycle is None
    assert v["C2"].anchor.startswith("C1 target + 28 d")
    assert v["A3"].anchor == "day 0 + 168 d"
    assert not any(x.done for x in visits)
    assert not any(x.qlq_c30 for x in visits)


def test_seed000_arm2_companions_and_phases():
    v = by_key(plan_visits(plan_000_arm2(), SubjectState(D0)))
    # cycle 1 (day 0, window = day 0): nab-paclitaxel d-5 = 01-01, cyclophosphamide d-4 =
    # 01-02, anti-PD-1 d+7 = 01-13, each exact
    assert tw(v["C1.nab-paclitaxel"]) == ("2025-01-01", "2025-01-01", "2025-01-01")
    assert tw(v["C1.cyclophosphamide"]) == ("2025-01-02", "2025-01-02", "2025-01-02")
    assert tw(v["C1.anti-PD-1"]) == ("2025-01-13", "2025-01-13", "2025-01-13")
    # cycle 2: target 02-03 window 02-03..02-17; companions shift target and window:
    # nab -5 -> 01-29 .. 02-12; cyclophosphamide -4 -> 01-30 .. 02-13; PD-1 +7 -> 02-10 .. 02-24
    assert tw(v["C2"]) == ("2025-02-03", "2025-02-03", "2025-02-17")
    assert tw(v["C2.nab-paclitaxel"]) == ("2025-01-29", "2025-01-29", "2025-02-12")
    assert tw(v["C2.cyclophosphamide"]) == ("2025-01-30", "2025-01-30", "2025-02-13")
    assert tw(v["C2.anti-PD-1"]) == ("2025-02-10", "2025-02-10", "2025-02-24")
    assert v["C2.anti-PD-1"].kind == "administration" and v["C2.anti-PD-1"].cycle == 2
    assert v["C2.nab-paclitaxel"].anchor == "C2 target -5 d"
    # cycle 5 (phase 2): day 112 = 04-28, window 04-28 .. 05-12; only anti-PD-1 (+7 = 05-05)
    assert tw(v["C5"]) == ("2025-04-28", "2025-04-28", "2025-05-12")
    assert tw(v["C5.anti-PD-1"]) == ("2025-05-05", "2025-05-05", "2025-05-19")
    assert "C5.nab-paclitaxel" not in v and "C5.cyclophosphamide" not in v
    # cycle 8: day 196 = 07-21.  Cycle 9 (first anti-PD-1-only cycle) comes one cycle-8
    # length later (R2): 07-21 + 28 = 08-18, window 08-18 .. 09-01 (07-21 + 42)
    assert v["C8"].target == d("2025-07-21")
    assert tw(v["C9"]) == ("2025-08-18", "2025-08-18", "2025-09-01")
    assert v["C9"].kind == "administration" and v["C9"].intervention == "anti-PD-1"
    # cycles 10-12 every 21 days, target only: 09-08, 09-29, 10-20
    assert tw(v["C10"]) == ("2025-09-08", "2025-09-08", "2025-09-08")
    assert v["C11"].target == d("2025-09-29")
    assert v["C12"].target == d("2025-10-20")
    assert "C13" not in v
    cycles = [x for x in v.values() if x.kind in ("infusion", "administration")]
    # 12 cycle visits + 4 x 3 companions (C1-C4) + 4 x 1 (C5-C8) = 28
    assert len(cycles) == 28
    assert sum(1 for x in cycles if x.kind == "infusion") == 8  # MSC-IFNa in C1-C8


# --- seeds 001, 002, 003, 004 ------------------------------------------------------------


def test_seed001_q21d_six_cycles():
    # "every 21 days for at least 6 cycles": 6 planned; no window given -> target only
    plan = VisitPlan(regimens=(fixed_interval("MSC-L", "MSC-L", 21, 6),))
    visits = plan_visits(plan, SubjectState(D0))
    assert [(v.key, v.target.isoformat()) for v in visits] == [
        ("C1", "2025-01-06"),
        ("C2", "2025-01-27"),  # 01-06 + 21
        ("C3", "2025-02-17"),  # 01-27 + 21 = 4 (to 01-31) + 17
        ("C4", "2025-03-10"),  # 02-17 + 21 = 11 (to 02-28) + 10
        ("C5", "2025-03-31"),
        ("C6", "2025-04-21"),
    ]
    assert all(v.window_low == v.target == v.window_high for v in visits)


def test_seed002_inkt_q2w_six_courses_and_imaging_q8w_with_qlq():
    v = by_key(plan_visits(plan_002(), SubjectState(D0)))
    # iNKT every 14 days: 01-06, 01-20, 02-03, 02-17, 03-03, 03-17; no 7th course
    assert [v[f"C{n}"].target.isoformat() for n in range(1, 7)] == [
        "2025-01-06",
        "2025-01-20",
        "2025-02-03",
        "2025-02-17",
        "2025-03-03",
        "2025-03-17",
    ]
    assert "C7" not in v
    # imaging every 56 days up to 24 calendar months (2027-01-06 = day 730):
    # 56 * 13 = 728 <= 730 < 784 -> A1..A13, A13 = 2027-01-04
    assessments = sorted((x for x in v.values() if x.kind == "assessment"), key=lambda x: x.target)
    assert [x.key for x in assessments] == [f"A{k}" for k in range(1, 14)]
    assert v["A2"].target == d("2025-04-28")  # day 112
    assert v["A7"].target == d("2026-02-02")  # day 392 = day 364 (2026-01-05) + 28
    assert tw(v["A13"]) == ("2027-01-04", "2026-12-28", "2027-01-11")
    # QLQ-C30 with every assessment (baseline included), never with an infusion
    assert v["BASELINE"].qlq_c30 and all(x.qlq_c30 for x in assessments)
    assert not any(v[f"C{n}"].qlq_c30 for n in range(1, 7))


@pytest.mark.parametrize(
    ("frequency", "expected"),
    [
        (1, ["2025-01-06"]),
        (2, ["2025-01-06", "2025-01-13"]),  # every 14 // 2 = 7 days
        (3, ["2025-01-06", "2025-01-10", "2025-01-14"]),  # every 14 // 3 = 4 days
    ],
)
def test_seed003_two_week_course_at_frequency_level(frequency, expected):
    reg = course_regimen("UC-MSC", "UC-MSC", frequency)
    assert reg.n_cycles == frequency and reg.interval_days == 14 // frequency
    visits = plan_visits(VisitPlan(regimens=(reg,)), SubjectState(D0))
    assert [v.target.isoformat() for v in visits] == expected
    assert [v.key for v in visits] == [f"C{n}" for n in range(1, frequency + 1)]
    # all within the 2-week course (day 0 .. day 13)
    assert all((v.target - D0).days < 14 for v in visits)


def test_seed003_frequency_validation():
    with pytest.raises(ValueError, match="exceeds the 14-day course"):
        course_regimen("X", "UC-MSC", 15)
    with pytest.raises(ValueError, match="frequency"):
        course_regimen("X", "UC-MSC", 0)


def test_seed004_month_visits_m0_m3():
    plan = VisitPlan(months=(MonthVisits(intervention="MSC(AT) 2x10^6 cells/kg or placebo"),))
    visits = plan_visits(plan, SubjectState(D0))
    assert [v.key for v in visits] == ["M0", "M3"]
    m0, m3 = visits
    assert tw(m0) == ("2025-01-06", "2025-01-06", "2025-01-06")  # M0 is day 0
    # M3 = 3 calendar months later, same day: 04-06; +/- 7 -> 03-30 .. 04-13
    assert tw(m3) == ("2025-04-06", "2025-03-30", "2025-04-13")
    assert m3.kind == "month" and m3.intervention.startswith("MSC(AT)")
    assert m3.anchor == "day 0 + 3 calendar months"


def test_month_arithmetic_clamps_day_of_month():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)  # leap year
    assert add_months(date(2025, 12, 15), 1) == date(2026, 1, 15)
    assert add_months(date(2025, 1, 6), 24) == date(2027, 1, 6)
    assert add_months(date(2025, 5, 31), -3) == date(2025, 2, 28)
    plan = VisitPlan(months=(MonthVisits(),))
    m3 = by_key(plan_visits(plan, SubjectState(date(2025, 11, 30))))["M3"]
    assert m3.target == date(2026, 2, 28)  # 30 Feb does not exist -> last day


def test_month_visits_follow_treatment_stop_and_can_be_assessment_only():
    plan = VisitPlan(
        months=(
            MonthVisits(intervention="MSC(AT) or placebo"),
            MonthVisits(codes=("M6", "M12"), month_offsets=(6, 12), treatment=False),
        )
    )
    state = SubjectState(D0, done={"M0": D0}, treatment_stop=(d("2025-02-01"), "toxicity"))
    v = by_key(plan_visits(plan, state))
    # M3 (treatment) is after the stop -> removed; M6/M12 (assessments) stay
    assert set(v) == {"M0", "M6", "M12"}
    assert v["M6"].target == d("2025-07-06") and v["M12"].target == d("2026-01-06")


# --- delays, stops, death ----------------------------------------------------------------


def test_late_infusion_shifts_following_infusions_not_assessments():
    on_time = by_key(plan_visits(plan_000_arm1(), SubjectState(D0)))
    # cycle 2 given 10 days late: target 02-03, actual 02-13 (inside the 02-03..02-17 window)
    late = SubjectState(D0, done={"C1": D0, "C2": d("2025-02-13")})
    v = by_key(plan_visits(plan_000_arm1(), late))
    # the done visit keeps its planned target and window (R7)
    assert tw(v["C2"]) == ("2025-02-03", "2025-02-03", "2025-02-17")
    assert v["C2"].done and v["C2"].actual == d("2025-02-13")
    # C3 from C2's actual date: 02-13 + 28 = 03-13 (15 days to 02-28, +13), window + 42 = 03-27
    assert tw(v["C3"]) == ("2025-03-13", "2025-03-13", "2025-03-27")
    assert v["C3"].anchor.startswith("C2 actual 2025-02-13 + 28 d")
    # C4 = C3 target 03-13 + 28 = 04-10, window .. 04-24
    assert tw(v["C4"]) == ("2025-04-10", "2025-04-10", "2025-04-24")
    for key in ("C3", "C4"):
        assert v[key].target - on_time[key].target == timedelta(days=10)
        assert v[key].window_low - on_time[key].window_low == timedelta(days=10)
        assert v[key].window_high - on_time[key].window_high == timedelta(days=10)
    # q8w assessments are fixed to day 0: unchanged (A1 03-03, A2 04-28, ...)
    for key in ("BASELINE", "A1", "A2", "A3", "A4", "A5", "A6"):
        assert tw(v[key]) == tw(on_time[key])
    assert v["A1"].target == d("2025-03-03") and v["A2"].target == d("2025-04-28")


def test_late_infusion_moves_its_companions():
    late = SubjectState(D0, done={"C1": D0, "C2": d("2025-02-13")})
    v = by_key(plan_visits(plan_000_arm2(), late))
    # C2 done 02-13: its anti-PD-1 is 7 days after the actual date, exact: 02-20
    assert tw(v["C2.anti-PD-1"]) == ("2025-02-20", "2025-02-20", "2025-02-20")
    assert v["C2.anti-PD-1"].anchor == "C2 actual 2025-02-13 +7 d"
    # C3 = 03-13 (window 03-13..03-27); nab-paclitaxel d-5 -> 03-08 (03-08..03-22)
    assert tw(v["C3.nab-paclitaxel"]) == ("2025-03-08", "2025-03-08", "2025-03-22")


def test_progression_at_week_16_stops_treatment_and_starts_12_weekly_follow_up():
    stop = d("2025-04-28")  # week 16 = day 112, progression found at A2
    done = {"BASELINE": d("2025-01-03"), "A1": d("2025-03-03"), "A2": stop}
    targets = ("2025-01-06", "2025-02-03", "2025-03-03", "2025-03-31")
    for n, target in enumerate(targets, start=1):
        done[f"C{n}"] = d(target)
        done[f"C{n}.nab-paclitaxel"] = d(target) - timedelta(days=5)
        done[f"C{n}.cyclophosphamide"] = d(target) - timedelta(days=4)
    # C4.anti-PD-1 (03-31 + 7 = 04-07) was not recorded: stays planned (before the stop)
    for n in (1, 2, 3):
        done[f"C{n}.anti-PD-1"] = done[f"C{n}"] + timedelta(days=7)
    state = SubjectState(D0, done=done, treatment_stop=(stop, "progression"))
    visits = plan_visits(plan_000_arm2(), state)
    v = by_key(visits)
    # no cycle 5+ (C5 would be 04-28 = the stop date: no treatment on/after the stop)
    assert not any(k.startswith(f"C{n}") for k in v for n in range(5, 13))
    assert {k for k in v if k.startswith("C")} == {
        f"C{n}{s}"
        for n in (1, 2, 3, 4)
        for s in ("", ".nab-paclitaxel", ".cyclophosphamide", ".anti-PD-1")
    }
    assert not v["C4.anti-PD-1"].done and v["C4.anti-PD-1"].target == d("2025-04-07")
    # on-treatment assessments up to the stop date only: A1, A2 (A2 is on the stop date)
    assert sorted(k for k in v if k.startswith("A")) == ["A1", "A2"]
    # follow-up every 84 days from the stop, up to day 0 + 24 months = 2027-01-06:
    # day 112 + 84 j <= 730 -> j <= 7
    follow = [x for x in visits if x.kind == "follow_up"]
    assert [(x.key, x.target.isoformat()) for x in follow] == [
        ("FU1", "2025-07-21"),  # 04-28 + 84: 2 (to 04-30) + 31 + 30 + 21
        ("FU2", "2025-10-13"),  # 07-21 + 84: 10 + 31 + 30 + 13
        ("FU3", "2026-01-05"),  # 10-13 + 84: 18 + 30 + 31 + 5
        ("FU4", "2026-03-30"),  # 01-05 + 84: 26 + 28 + 30
        ("FU5", "2026-06-22"),  # 03-30 + 84: 1 + 30 + 31 + 22
        ("FU6", "2026-09-14"),  # 06-22 + 84: 8 + 31 + 31 + 14
        ("FU7", "2026-12-07"),  # 09-14 + 84: 16 + 31 + 30 + 7 (day 700; FU8 day 784 > 730)
    ]
    assert all(b.target - a.target == timedelta(days=84) for a, b in pairwise(follow))
    assert tw(v["FU1"]) == ("2025-07-21", "2025-07-14", "2025-07-28")
    assert v["FU1"].anchor == "treatment stop 2025-04-28 + 84 d"
    # nothing planned between the stop and FU1 except visits already done
    assert all(x.done for x in visits if stop < x.target < d("2025-07-21"))


def test_done_visit_after_stop_is_kept():
    # C5 was given on the stop date before the decision was recorded: it stays (done)
    stop = d("2025-04-28")
    state = SubjectState(D0, done={"C5": stop}, treatment_stop=(stop, "toxicity"))
    v = by_key(plan_visits(plan_000_arm2(), state))
    assert v["C5"].done and v["C5"].target == stop
    assert "C5.anti-PD-1" not in v and "C6" not in v


def test_death_cancels_every_future_visit():
    death = d("2025-01-25")
    done = {"BASELINE": d("2025-01-02"), "C1": D0, "C2": d("2025-01-20")}
    state = SubjectState(D0, done=done, off_study=(death, "death"))
    visits = plan_visits(plan_002(), state)
    # C3 (02-03), A1 (03-03) ... and any follow-up (would start 01-25 + 84) are gone
    assert [v.key for v in visits] == ["BASELINE", "C1", "C2"]
    assert all(v.done for v in visits)
    assert all(v.target <= death for v in visits)


def test_death_during_follow_up_ends_follow_up():
    state = SubjectState(
        D0,
        treatment_stop=(d("2025-03-03"), "progression"),
        off_study=(d("2025-06-01"), "death"),
    )
    v = by_key(plan_visits(plan_002(), state))
    # FU1 = 03-03 + 84 = 05-26 (28 to 03-31, 30 Apr, 26 May) <= 06-01 kept; FU2 08-18 gone
    assert [k for k in v if k.startswith("FU")] == ["FU1"]
    assert v["FU1"].target == d("2025-05-26")
    # treatment ended at the stop (C5 on 03-03 is the stop date itself -> removed; C6 too)
    assert "C4" in v and "C5" not in v and "C6" not in v
    assert "A1" in v and "A2" not in v  # A1 on the stop date is kept
    assert max(x.target for x in v.values()) <= d("2025-06-01")


def test_withdrawal_without_treatment_stop_also_stops_treatment():
    state = SubjectState(D0, off_study=(d("2025-02-10"), "withdrawal"))
    v = by_key(plan_visits(plan_000_arm1(), state))
    # C2 (02-03) is before the withdrawal -> kept as planned (the caller marks it missed);
    # nothing after 02-10, no follow-up
    assert set(v) == {"BASELINE", "C1", "C2"}


# --- screening, sorting, validation ----------------------------------------------------


def test_screening_visit_window():
    v = by_key(plan_visits(plan_000_arm1(screening_window_days=14), SubjectState(D0)))
    # organ function within 2 weeks before the first dose: 01-06 - 14 = 2024-12-23 .. 01-05
    assert tw(v["SCR"]) == ("2024-12-23", "2024-12-23", "2025-01-05")
    assert v["SCR"].kind == "screening"


def test_output_is_sorted_by_target_then_key():
    visits = plan_visits(plan_000_arm2(), SubjectState(D0))
    assert visits == sorted(visits, key=lambda x: (x.target, x.key))
    assert visits[0].key == "C1.nab-paclitaxel"  # 2025-01-01, earliest


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CycleRegimen("X", "MSC", 20, 28, 42, 4), "must lie within the window"),
        (lambda: CycleRegimen("X", "MSC", 28, 28, 42, 0), "n_cycles"),
        (lambda: CycleRegimen("X", "MSC", 28, 28, 42, 2, kind="oral"), "kind"),
        (lambda: Companion("nab-paclitaxel", 0), "non-zero"),
        (
            lambda: VisitPlan(regimens=(ARM1_000, CycleRegimen("B", "MSC", 28, 28, 42, 2, 6))),
            "expected 5",
        ),
        (lambda: VisitPlan(assessments=AssessmentPlan()), "needs follow_up_horizon"),
        (
            lambda: VisitPlan(follow_up_horizon_days=10, follow_up_horizon_months=1),
            "not both",
        ),
        (lambda: MonthVisits(codes=("M0",), month_offsets=(0, 3)), "one month offset"),
    ],
)
def test_invalid_plans_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_duplicate_keys_are_refused():
    plan = VisitPlan(regimens=(ARM1_000,), months=(MonthVisits(codes=("C1",), month_offsets=(0,)),))
    with pytest.raises(ValueError, match="duplicate keys: C1"):
        plan_visits(plan, SubjectState(D0))


# --- BSA and dose --------------------------------------------------------------------------


def test_mosteller_bsa():
    # sqrt(170 * 65 / 3600) = sqrt(3.06944) = 1.75198 -> 1.752 (1.752^2 = 3.0695)
    assert mosteller_bsa(170, 65) == Decimal("1.752")
    assert mosteller_bsa(180, 80) == Decimal("2.000")  # sqrt(14400 / 3600) = 2
    assert mosteller_bsa(150, 54) == Decimal("1.500")  # sqrt(8100 / 3600) = 1.5
    assert mosteller_bsa(170.0, "65") == Decimal("1.752")


def test_planned_dose_per_kg_per_m2_flat():
    # seed 000: MSC-IFNa 2x10^6 cells/kg at 61.5 kg = 123,000,000 = 1.23x10^8 cells
    assert planned_dose(2_000_000, "per_kg", weight_kg=61.5) == Decimal("1.23E8")
    assert planned_dose(2e6, "per_kg", weight_kg=Decimal("61.5")) == Decimal("123000000")
    # nab-paclitaxel 125 mg/m2 at 170 cm / 65 kg: 125 x 1.752 = 219.000 mg
    assert planned_dose(125, "per_m2", weight_kg=65, height_cm=170) == Decimal("219.0")
    # cyclophosphamide 200 mg/m2: 200 x 1.752 = 350.4 mg
    assert planned_dose(200, "per_m2", 65, 170) == Decimal("350.4")
    # anti-PD-1 200 mg flat
    assert planned_dose(200, "flat") == Decimal(200)
    # seed 002 iNKT 10^8 cells/m2 at BSA 2.000 (180 cm / 80 kg) = 2x10^8
    assert planned_dose(Decimal("1E8"), "per_m2", 80, 180) == Decimal("2E8")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"weight_kg": 0, "height_cm": 170}, "weight_kg"),
        ({"weight_kg": -1, "height_cm": 170}, "weight_kg"),
        ({"weight_kg": 500.1, "height_cm": 170}, "weight_kg"),
        ({"weight_kg": None, "height_cm": 170}, "weight_kg"),
        ({"weight_kg": "heavy", "height_cm": 170}, "weight_kg"),
        ({"weight_kg": 65, "height_cm": 29.9}, "height_cm"),
        ({"weight_kg": 65, "height_cm": 251}, "height_cm"),
        ({"weight_kg": 65, "height_cm": True}, "height_cm"),
    ],
)
def test_bsa_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        mosteller_bsa(**kwargs)
    with pytest.raises(ValueError, match=field):
        planned_dose(125, "per_m2", **kwargs)


def test_dose_limits_are_inclusive_where_documented():
    assert mosteller_bsa(30, 500) == Decimal("2.041")  # sqrt(15000/3600) = sqrt(4.1667) = 2.0412
    assert mosteller_bsa(250, 0.5) == Decimal("0.186")  # sqrt(125/3600) = sqrt(0.034722) = 0.18634
    assert planned_dose(1, "per_kg", weight_kg=500) == Decimal(500)


def test_planned_dose_validation():
    with pytest.raises(ValueError, match="weight_kg"):
        planned_dose(2e6, "per_kg")  # weight missing
    with pytest.raises(ValueError, match="dose_basis"):
        planned_dose(2e6, "per_lb", weight_kg=60)
    with pytest.raises(ValueError, match="dose_value"):
        planned_dose(0, "flat")
    with pytest.raises(ValueError, match="dose_value"):
        planned_dose(float("nan"), "flat")
