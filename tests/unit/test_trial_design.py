"""SDTM trial design datasets TE, TA, TV, TI from the seed protocol files
(``exports.trial_design``, SDTMIG 3.4 section 7; no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from exports import sdtm, terminology, trial_design
from tests.unit.test_sdtm import as_dict
from trials import protocol_schema as schema

SEEDS = Path(__file__).resolve().parents[2] / "seeds"


def protocol(name: str) -> schema.Protocol:
    return schema.load_protocol(SEEDS / f"{name}.toml")


def records(domain: str, rows) -> list[dict]:
    return [as_dict(trial_design.DOMAINS[domain][1], r) for r in rows]


@pytest.mark.parametrize("domain", list(trial_design.DOMAINS))
def test_variables_follow_sdtm_limits(domain):
    _, variables = trial_design.DOMAINS[domain]
    for v in variables:
        assert len(v.name) <= 8 and 0 < len(v.label) <= 40, v.name
        assert v.length is None or 1 <= v.length <= 200, v.name
    assert [v.name for v in variables][:2] == ["STUDYID", "DOMAIN"]


def test_arms_and_elements_of_a_phased_design():
    """Seed 000: arm 2 goes through three treatment phases (cycles 1-4, 5-8, 9-12)."""
    study = sdtm.Study("NCT05699811")
    arms = trial_design.design(protocol("NCT05699811"), visible=True)
    ta = records("TA", trial_design.ta_records(study, arms))
    combo = [r for r in ta if r["ARMCD"] == "COMBO"]
    assert [(r["TAETORD"], r["ETCD"], r["EPOCH"]) for r in combo] == [
        (1, "SCRN", "SCREENING"), (2, "TRT2", "TREATMENT"), (3, "TRT3", "TREATMENT"),
        (4, "TRT4", "TREATMENT"), (5, "FU", "FOLLOW-UP")]
    assert combo[0]["TABRANCH"].startswith("Assigned to MSC-IFN")  # sequential, not random
    assert combo[1]["TATRANS"] and combo[4]["TATRANS"] is None
    te = {r["ETCD"]: r for r in records("TE", trial_design.te_records(study, arms))}
    assert set(te) == {r["ETCD"] for r in ta}  # TA and TE name the same elements
    assert te["TRT3"]["TESTRL"] == "Start of cycle 5" and te["TRT2"]["TEENRL"] == (
        "Start of cycle 5")
    assert te["TRT4"]["TEDUR"] == "P84D"  # 4 cycles of 21 days, no window
    assert te["TRT2"]["TEDUR"] is None  # every 4-6 weeks: no fixed length
    checks = terminology.checks_for("TA", [v.name for v in trial_design.TA_VARIABLES])
    terminology.check([tuple(r.values()) for r in ta], checks)


def test_a_blinded_user_sees_one_arm_and_no_product_apart_from_its_placebo():
    study, seed = sdtm.Study("NCT06722105"), protocol("NCT06722105")
    open_arms = trial_design.design(seed, visible=True)
    assert len({e.etcd for arm in open_arms for e in arm.elements}) == 5  # 3 treatments
    blinded = trial_design.design(seed, visible=False)
    ta = records("TA", trial_design.ta_records(study, blinded))
    te = records("TE", trial_design.te_records(study, blinded))
    assert {(r["ARMCD"], r["ARM"]) for r in ta} == {("BLINDED", "Blinded")}  # as DM shows
    text = repr(ta + te)
    assert [leak for arm in seed.arms for leak in (arm.code, arm.label) if leak in text] == []
    assert "Placebo" not in text and "Allogeneic" not in text
    assert [r["ELEMENT"] for r in te if r["ETCD"] == "TRT1"] == [
        "Blinded study treatment (MSC-AT or matching placebo)"]


def test_trial_visits_follow_the_schedule_of_every_subject():
    seed = protocol("NCT05699811")
    arms = trial_design.planned_visits([seed], seed.trial.start_date,
                                       seed.trial.completion_date)
    labels = {a.code: a.label for a in seed.arms}
    tv = records("TV", trial_design.tv_records(sdtm.Study("NCT05699811"), arms, labels, True))
    numbers = trial_design.visit_numbers(arms)
    assert {r["VISIT"]: r["VISITNUM"] for r in tv} == {c: float(n) for c, n in numbers.items()}
    first = {r["VISIT"]: r for r in tv}
    # screening 14 days before day 0; companions before the infusion; no study day 0
    assert (first["SCR"]["VISITNUM"], first["SCR"]["VISITDY"]) == (1.0, -14)
    assert first["C1.NAB-PTX"]["VISITDY"] == -5 and first["C1"]["VISITDY"] == 1
    assert first["C2"]["VISITDY"] == 29 and "window -0 to +14 days" in first["C2"]["TVSTRL"]
    assert first["A1"]["VISITDY"] == 57  # every 8 weeks from day 0
    # arms differ (companions only in COMBO): one record per arm and visit
    assert {r["ARMCD"] for r in tv if r["VISIT"] == "C1.NAB-PTX"} == {"COMBO"}
    assert {r["ARMCD"] for r in tv if r["VISIT"] == "C1"} == {"COMBO", "MONO"}
    # follow-up counts from the treatment stop: no planned day, numbered last
    follow_up = [r for r in tv if r["VISIT"].startswith("FU")]
    assert follow_up and all(r["VISITDY"] is None for r in follow_up)
    assert min(r["VISITNUM"] for r in follow_up) > max(
        r["VISITNUM"] for r in tv if r["VISITDY"] is not None)
    assert "COMBO:" not in repr(tv)  # the regimen (arm:phase) is not a start rule
    blinded = records("TV", trial_design.tv_records(sdtm.Study("X"), arms, labels, False))
    assert {r["ARMCD"] for r in blinded} == {None}
    assert len(blinded) == len(numbers)


def test_trial_visits_of_a_frequency_finding_course_and_month_visits():
    course = protocol("NCT05672420")  # frequency 1, 2 or 3 infusions in a 14-day course
    arms = trial_design.planned_visits([course], dt.date(2024, 1, 1), None)
    visits = arms["UC-MSC"]
    assert [(c, visits[c].day) for c in ("C1", "C2", "C3")] == [("C1", 1), ("C2", 5),
                                                                ("C3", 9)]
    months = protocol("NCT06722105")
    tv = records("TV", trial_design.tv_records(
        sdtm.Study("NCT06722105"), trial_design.planned_visits(
            [months], months.trial.start_date, months.trial.completion_date), {}, True))
    assert [(r["VISITNUM"], r["VISIT"], r["VISITDY"], r["ARMCD"]) for r in tv] == [
        (1.0, "M0", 1, None), (2.0, "M3", 91, None)]  # the same schedule in every arm


def test_trial_inclusion_exclusion_criteria_per_protocol_version():
    seed = protocol("NCT05962450")
    ti = records("TI", trial_design.ti_records(sdtm.Study("NCT05962450"), [(1, seed)]))
    assert len(ti) == len(seed.eligibility.inclusion) + len(seed.eligibility.exclusion)
    assert (ti[0]["IETESTCD"], ti[0]["IECAT"], ti[0]["TIVERS"]) == ("IN01", "INCLUSION", "1")
    assert ti[-1]["IETESTCD"] == "EX12" and all(len(r["IETEST"]) <= 200 for r in ti)
    changed = dataclasses.replace(seed, eligibility=dataclasses.replace(
        seed.eligibility, exclusion=seed.eligibility.exclusion[:-1]))
    versions = [(1, seed), (2, seed), (3, changed)]  # version 2 changed no criterion
    amended = records("TI", trial_design.ti_records(sdtm.Study("NCT05962450"), versions))
    assert {r["TIVERS"] for r in amended} == {"1", "3"}
    assert len(amended) == 2 * len(ti) - 1
    checks = terminology.checks_for("TI", [v.name for v in trial_design.TI_VARIABLES])
    terminology.check([tuple(r.values()) for r in amended], checks)
