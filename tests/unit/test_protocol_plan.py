"""Schedules built from the five protocol files (visits.protocol_plan), dates by hand.

Day 0 = Monday 2025-01-06 for every subject.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from trials.protocol_schema import load_protocol
from visits.protocol_plan import build_visit_plan
from visits.scheduling import SubjectState, plan_visits

SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DAY0 = dt.date(2025, 1, 6)


def schedule(registry: str, arm: str, *, frequency_level=None, enrolled_on=None, **state):
    protocol = load_protocol(SEEDS / f"{registry}.toml")
    plan = build_visit_plan(protocol, arm, DAY0, frequency_level=frequency_level,
                            end_of_study=protocol.trial.completion_date,
                            enrolled_on=enrolled_on)
    return {v.key: v for v in plan_visits(plan, SubjectState(day0=DAY0, **state))}


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_seed_000_combination_arm():
    visits = schedule("NCT05699811", "COMBO")
    # Screening: organ function within 2 weeks before day 0 -> 2024-12-23..2025-01-05 (day -1).
    assert (visits["SCR"].window_low, visits["SCR"].window_high) == (
        d("2024-12-23"), d("2025-01-05"))
    # C2 = day 0 + 28 (window 28-42 days): 2025-02-03, window 2025-02-03..2025-02-17.
    c2 = visits["C2"]
    assert (c2.target, c2.window_low, c2.window_high) == (
        d("2025-02-03"), d("2025-02-03"), d("2025-02-17"))
    # Companions of C1: nab-paclitaxel day -5 (2025-01-01), cyclophosphamide day -4
    # (2025-01-02), anti-PD-1 day +7 (2025-01-13).
    assert visits["C1.NAB-PTX"].target == d("2025-01-01")
    assert visits["C1.CTX"].target == d("2025-01-02")
    assert visits["C1.APD1"].target == d("2025-01-13")
    # Cycles 5-8: MSC-IFNα + anti-PD-1 only (no chemotherapy).
    assert "C5.APD1" in visits and "C5.NAB-PTX" not in visits
    # C9 comes one 4-6-week cycle after C8 (8 x 28 = day 224 = 2025-08-18), then every 21 days.
    assert visits["C9"].target == d("2025-08-18")
    assert visits["C10"].target == d("2025-09-08")
    assert visits["C12"].target == d("2025-10-20")
    assert "C13" not in visits
    # Assessments every 8 weeks from day 0: A1 day 56 = 2025-03-03, A2 2025-04-28.
    assert [visits["A1"].target, visits["A2"].target] == [d("2025-03-03"), d("2025-04-28")]
    assert visits["BASELINE"].window_low == d("2024-12-09")  # 28 days before day 0


def test_seed_000_monotherapy_has_up_to_four_infusions():
    visits = schedule("NCT05699811", "MONO")
    cycles = sorted(k for k, v in visits.items() if v.kind == "infusion")
    assert cycles == ["C1", "C2", "C3", "C4"]
    assert visits["C4"].target == d("2025-03-31")  # day 84


def test_seed_001_every_21_days_six_cycles():
    visits = schedule("SHEH-MSC-L", "MSC-L")
    assert [visits[f"C{n}"].target for n in range(1, 7)] == [
        d("2025-01-06"), d("2025-01-27"), d("2025-02-17"), d("2025-03-10"), d("2025-03-31"),
        d("2025-04-21")]
    assert visits["C2"].window_low == visits["C2"].window_high  # no window in the document


def test_seed_002_inkt_every_two_weeks_imaging_every_8_weeks_with_qlq():
    visits = schedule("NCT05962450", "RPI")
    assert [visits[f"C{n}"].target for n in range(1, 7)] == [
        d("2025-01-06"), d("2025-01-20"), d("2025-02-03"), d("2025-02-17"), d("2025-03-03"),
        d("2025-03-17")]
    assert "C7" not in visits
    assert visits["A1"].target == d("2025-03-03") and visits["A1"].qlq_c30
    assert visits["BASELINE"].qlq_c30
    control = schedule("NCT05962450", "RP")
    assert not any(v.kind == "infusion" for v in control.values())  # RP: per label only
    assert control["A1"].target == d("2025-03-03")


def test_seed_003_course_at_frequency_level():
    visits = schedule("NCT05672420", "UC-MSC", frequency_level="F3")
    # frequency 3 = three infusions in the 2-week course, every 14 // 3 = 4 days.
    assert [visits[f"C{n}"].target for n in (1, 2, 3)] == [
        d("2025-01-06"), d("2025-01-10"), d("2025-01-14")]
    with pytest.raises(ValueError, match="frequency level"):
        schedule("NCT05672420", "UC-MSC")


@pytest.mark.parametrize(("level", "infusions"), [("F1", 1), ("F2", 2), ("F3", 3)])
def test_seed_003_infusions_per_course_come_from_the_protocol_file(level, infusions):
    """The file declares each frequency level's infusions per course (n for frequency n)."""
    protocol = load_protocol(SEEDS / "NCT05672420.toml")
    declared = {f.code: f.infusions for f in protocol.dose_finding.frequency_levels}
    assert declared[level] == infusions
    visits = schedule("NCT05672420", "UC-MSC", frequency_level=level)
    assert sorted(k for k, v in visits.items() if v.kind == "infusion") == [
        f"C{n}" for n in range(1, infusions + 1)]


def test_seed_003_follow_up_to_two_years_after_enrollment_once_treatment_ends():
    # "follow-up visits of up to 2 years after enrollment"; no frequency is stated, the
    # file declares 12 weeks (inferred).  Enrolled 2025-01-02, course day 0 2025-01-06.
    enrolled = d("2025-01-02")
    before = schedule("NCT05672420", "UC-MSC", frequency_level="F2", enrolled_on=enrolled)
    assert not [v for v in before.values() if v.kind == "follow_up"]
    stop = d("2025-01-20")  # course completed, status follow-up
    visits = schedule("NCT05672420", "UC-MSC", frequency_level="F2", enrolled_on=enrolled,
                      done={"C1": DAY0, "C2": d("2025-01-13")},
                      treatment_stop=(stop, "completed"))
    follow_up = sorted((v for v in visits.values() if v.kind == "follow_up"),
                       key=lambda v: v.target)
    assert follow_up[0].key == "FU1" and follow_up[0].target == d("2025-04-14")  # stop + 84
    assert (follow_up[0].window_low, follow_up[0].window_high) == (
        d("2025-04-07"), d("2025-04-21"))
    # the last one on or before 2027-01-02 (2 years after enrollment): stop + 8 x 84 days
    assert follow_up[-1].target == d("2026-11-23") and len(follow_up) == 8
    assert follow_up[-1].target <= d("2027-01-02") < follow_up[-1].target + dt.timedelta(84)


def test_seed_001_day_21_kinetics_sample_visit():
    # "MSC-L kinetics in peripheral blood ... Time frame: 21 days post first infusion"
    visits = schedule("SHEH-MSC-L", "MSC-L")
    sample = visits["PK-D21"]
    assert sample.kind == "sample" and sample.target == d("2025-01-27")
    assert sample.window_low == sample.window_high == sample.target  # no window stated
    late_first = schedule("SHEH-MSC-L", "MSC-L", done={"C1": d("2025-01-08")})
    assert late_first["PK-D21"].target == d("2025-01-29")  # from the actual first infusion
    assert late_first["PK-D21"].anchor.startswith("C1 actual 2025-01-08")


def test_seed_000_trae_recording_period_is_not_a_visit():
    visits = schedule("NCT05699811", "COMBO")
    assert not [k for k in visits if k.startswith("TRAE")]


def test_seed_004_month_visits_with_placebo():
    visits = schedule("NCT06722105", "MSC_M0_PBO_M3")
    assert (visits["M0"].target, visits["M0"].intervention) == (DAY0, "MSC-AT")
    assert (visits["M3"].target, visits["M3"].intervention) == (d("2025-04-06"), "PBO")
    placebo = schedule("NCT06722105", "PBO_M0_M3")
    assert placebo["M3"].intervention == "PBO"


def test_late_infusion_shifts_infusions_not_assessments():
    on_time = schedule("NCT05699811", "COMBO")
    late = schedule("NCT05699811", "COMBO", done={"C1": DAY0, "C2": d("2025-02-13")})
    assert late["C3"].target - on_time["C3"].target == dt.timedelta(days=10)
    assert late["C4"].target - on_time["C4"].target == dt.timedelta(days=10)
    assert [late[f"A{n}"].target for n in (1, 2, 3)] == [
        on_time[f"A{n}"].target for n in (1, 2, 3)]


def test_progression_at_week_16_then_follow_up_every_12_weeks_and_death():
    stop = DAY0 + dt.timedelta(weeks=16)  # 2025-04-28
    done = {"C1": DAY0, "C2": d("2025-02-03"), "C3": d("2025-03-03"), "C4": d("2025-03-31")}
    visits = schedule("NCT05699811", "COMBO", done=done, treatment_stop=(stop, "progression"))
    assert not [k for k, v in visits.items() if v.kind == "infusion" and v.target > stop]
    follow_up = sorted(v.target for v in visits.values() if v.kind == "follow_up")
    assert follow_up[:3] == [d("2025-07-21"), d("2025-10-13"), d("2026-01-05")]
    died = schedule("NCT05699811", "COMBO", done=done, treatment_stop=(stop, "progression"),
                    off_study=(d("2025-08-01"), "death"))
    assert [v.target for v in died.values() if not v.done and v.target > d("2025-08-01")] == []
