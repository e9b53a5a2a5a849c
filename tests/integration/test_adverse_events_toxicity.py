"""DLT/TI flags from the seed protocols' toxicity rules, through the Django services.

Seed 000 (NCT05699811), arm MONO: "Subjects with any grade 3-4 TRAE that lasts for 7 days or
more within the 28 days after infusion will be determined as treatment intolerance (TI)."
(window anchored on each administration). Seed 001 (SHEH-MSC-L): "DLT (defined as MSC-L
related adverse event of grade 3 or higher)", window 120 days from the *first* MSC-L infusion.
Durations are inclusive (grade 3 from day 1 to day 7 is 7 days); "related" = possible or more
(ICH E2A). Grades are CTCAE v5.0.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from adverse_events import services
from adverse_events.models import ToxicityFlag
from subjects.models import Subject
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_exposure,
    make_site,
    make_subject,
    make_user,
    record_ae,
)

pytestmark = pytest.mark.django_db

NEUTROPENIA, ANEMIA, FATIGUE = "10029366", "10002272", "10016256"
INFUSION = dt.date(2025, 2, 3)
MSC_IFNA, MSC_L = "MSC-IFNA", "MSC-L"


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


@pytest.fixture
def seed000():
    load_ctcae_terms()
    return load_seed_trial("NCT05699811")


@pytest.fixture
def seed001():
    load_ctcae_terms()
    return load_seed_trial("SHEH-MSC-L")


def subject_on(trial, arm_code: str, **kwargs) -> Subject:
    version = trial.current_version()
    site = make_site(trial, f"T{Subject.objects.count() + 1}")
    return make_subject(trial, site, protocol_version=version,
                        arm=version.arms.get(code=arm_code), status="on_treatment", **kwargs)


def flags(subject, rule: str) -> list[ToxicityFlag]:
    services.evaluate_toxicity(subject.pk)
    return list(ToxicityFlag.objects.filter(subject=subject, rule_code=rule))


def only_flag(subject, rule: str) -> ToxicityFlag:
    (flag,) = flags(subject, rule)
    return flag


# --- seed 000: TI ---------------------------------------------------------------------------


def test_ti_grade3_related_six_days_is_not_ti(seed000):
    subject = subject_on(seed000, "MONO")
    make_exposure(subject, MSC_IFNA, INFUSION)
    ae = record_ae(subject, NEUTROPENIA, [(3, days(1), days(6))], {MSC_IFNA: "possible"})
    flag = only_flag(subject, "TI")
    assert (flag.kind, flag.adverse_event_id, flag.computed, flag.effective) == (
        "TI", ae.pk, False, False)
    assert "not met" in flag.reason


def test_ti_grade3_related_seven_days_is_ti(seed000):
    subject = subject_on(seed000, "MONO")
    infusion = make_exposure(subject, MSC_IFNA, INFUSION)
    ae = record_ae(subject, NEUTROPENIA, [(3, days(1), days(7))], {MSC_IFNA: "possible"})
    flag = only_flag(subject, "TI")
    assert flag.computed is True and flag.effective is True
    episode = ae.grade_episodes.get()
    assert flag.details == {"episode_ids": [episode.pk], "administration_id": infusion.pk,
                            "onset": days(1).isoformat(), "duration_days": 7,
                            "worst_grade": 3}
    for part in (f"AE {ae.pk}", f"episode {episode.pk}", f"administration {infusion.pk}",
                 "rule TI", "for 7 days", "1 day after MSC-IFNA", "possible"):
        assert part in flag.reason


def test_ti_onset_day_29_after_last_infusion_is_not_ti_day_28_is(seed000):
    late, edge = subject_on(seed000, "MONO"), subject_on(seed000, "MONO")
    for subject, onset in ((late, 29), (edge, 28)):
        make_exposure(subject, MSC_IFNA, days(-42))
        make_exposure(subject, MSC_IFNA, INFUSION)  # the last infusion
        record_ae(subject, NEUTROPENIA, [(3, days(onset), days(onset + 9))],
                  {MSC_IFNA: "probable"})
    assert only_flag(late, "TI").computed is False
    assert only_flag(edge, "TI").computed is True


def test_ti_window_counts_from_each_infusion(seed000):
    """Anchor "each_administration": 50 days after the first but 5 after the second -> TI."""
    subject = subject_on(seed000, "MONO")
    make_exposure(subject, MSC_IFNA, days(-45))
    second = make_exposure(subject, MSC_IFNA, INFUSION)
    record_ae(subject, NEUTROPENIA, [(3, days(5), days(12))], {MSC_IFNA: "possible"})
    assert only_flag(subject, "TI").details["administration_id"] == second.pk


def test_ti_unrelated_grade4_is_not_ti(seed000):
    subject = subject_on(seed000, "MONO")
    make_exposure(subject, MSC_IFNA, INFUSION)
    record_ae(subject, NEUTROPENIA, [(4, days(2), days(20))], {MSC_IFNA: "unrelated"})
    assert only_flag(subject, "TI").computed is False


def test_ti_grade_2_then_3_then_4_with_8_days_at_3_or_more_is_ti(seed000):
    subject = subject_on(seed000, "MONO")
    make_exposure(subject, MSC_IFNA, INFUSION)
    ae = record_ae(subject, NEUTROPENIA,
                   [(2, days(1), days(3)), (3, days(4), days(7)), (4, days(8), days(11)),
                    (2, days(12), days(15))],
                   {MSC_IFNA: "possible"})
    assert ae.grade == 4
    flag = only_flag(subject, "TI")
    assert flag.computed is True
    assert (flag.details["duration_days"], flag.details["worst_grade"]) == (8, 4)
    assert flag.details["onset"] == days(4).isoformat()


def test_ti_rule_applies_to_arm_mono_only(seed000):
    subject = subject_on(seed000, "COMBO")
    make_exposure(subject, MSC_IFNA, INFUSION)
    record_ae(subject, NEUTROPENIA, [(3, days(1), days(10))], {MSC_IFNA: "definite"})
    assert flags(subject, "TI") == []


def test_evaluation_is_idempotent_and_audited(seed000):
    from edc.core.audit import history

    subject = subject_on(seed000, "MONO")
    make_exposure(subject, MSC_IFNA, INFUSION)
    record_ae(subject, NEUTROPENIA, [(3, days(1), days(7))], {MSC_IFNA: "possible"})
    flag = only_flag(subject, "TI")
    services.evaluate_toxicity(subject.pk)
    services.evaluate_toxicity(subject.pk)
    assert ToxicityFlag.objects.filter(subject=subject).count() == 1
    assert len(history(flag)) == 1  # unchanged results are not rewritten


# --- seed 001: DLT --------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "grade", "dlt"), [
    ("possible", 3, True), ("unlikely", 3, False), ("probable", 4, True),
    ("definite", 2, False), ("unrelated", 4, False),
])
def test_dlt_grade_3_or_more_related_possible_or_more(seed001, level, grade, dlt):
    subject = subject_on(seed001, "MSC-L")
    make_exposure(subject, MSC_L, INFUSION)
    record_ae(subject, ANEMIA, [(grade, days(10), days(14))], {MSC_L: level})
    flag = only_flag(subject, "DLT")
    assert (flag.kind, flag.computed) == ("DLT", dlt)


def test_dlt_window_is_counted_from_the_first_infusion(seed001):
    """window_anchor "first_administration": 130 days after the first infusion is outside the
    120-day window even though it is 25 days after a later infusion; 119 days is inside."""
    outside, inside = subject_on(seed001, "MSC-L"), subject_on(seed001, "MSC-L")
    for subject, onset in ((outside, 130), (inside, 119)):
        first = make_exposure(subject, MSC_L, INFUSION)
        make_exposure(subject, MSC_L, days(105))
        record_ae(subject, ANEMIA, [(3, days(onset), days(onset + 2))], {MSC_L: "possible"})
    assert only_flag(outside, "DLT").computed is False
    flag = only_flag(inside, "DLT")
    assert flag.computed is True and flag.details["administration_id"] == first.pk


def test_grade5_related_is_dlt_and_records_the_death(seed001):
    subject = subject_on(seed001, "MSC-L")
    make_exposure(subject, MSC_L, INFUSION)
    ae = record_ae(subject, ANEMIA, [(3, days(3), days(5)), (5, days(6), days(6))],
                   {MSC_L: "possible"}, serious=True, sae_death=True, death_date=days(6),
                   outcome="fatal", aware_at=dt.datetime(2025, 2, 9, 9, tzinfo=dt.UTC))
    assert ae.grade == 5
    subject.refresh_from_db()
    assert (subject.death_date, subject.status) == (days(6), "off_study")
    assert only_flag(subject, "DLT").computed is True


def test_retired_ae_clears_its_flag(seed001):
    subject = subject_on(seed001, "MSC-L")
    make_exposure(subject, MSC_L, INFUSION)
    ae = record_ae(subject, ANEMIA, [(3, days(3), days(5))], {MSC_L: "possible"})
    assert only_flag(subject, "DLT").computed is True
    ae.retire("entered for the wrong subject")
    flag = only_flag(subject, "DLT")
    assert flag.computed is False and "no longer applies" in flag.reason


# --- overrides and cohort outcomes ------------------------------------------------------------


def test_override_is_audited_and_drives_cohort_outcomes(seed001):
    from adverse_events.dose_escalation import recommendation
    from edc.core.audit import history

    version = seed001.current_version()
    dl1, dl2 = version.dose_levels.get(code="DL1"), version.dose_levels.get(code="DL2")
    investigator = make_user("pi", "investigator", (seed001, None))
    cohort = [subject_on(seed001, "MSC-L", dose_level=dl1, cohort=1) for _ in range(3)]
    late = subject_on(seed001, "MSC-L", dose_level=dl2, cohort=2)
    for subject in cohort:
        make_exposure(subject, MSC_L, INFUSION)
    make_exposure(late, MSC_L, dt.date.today() - dt.timedelta(days=10))
    record_ae(cohort[0], ANEMIA, [(3, days(3), days(5))], {MSC_L: "possible"})
    record_ae(cohort[1], ANEMIA, [(3, days(3), days(5))], {MSC_L: "probable"})
    for subject in (*cohort, late):
        services.evaluate_toxicity(subject.pk)

    def cohorts():
        rows = recommendation(seed001)["cohorts"]
        return {(r["dose_level"], r["cohort"]): r for r in rows}

    first = cohorts()[("DL1", 1)]
    assert (first["n_subjects"], first["n_evaluable"], first["n_events"]) == (3, 3, 2)
    second = cohorts()[("DL2", 2)]  # 10 days into a 120-day window, no DLT: not evaluable yet
    assert (second["n_subjects"], second["n_evaluable"], second["n_pending"]) == (1, 0, 1)

    flag = ToxicityFlag.objects.get(subject=cohort[1], rule_code="DLT")
    services.override_flag(flag, False, "Anaemia explained by GI bleeding", investigator)
    flag.refresh_from_db()
    assert (flag.computed, flag.override, flag.effective) == (True, False, False)
    assert cohorts()[("DL1", 1)]["n_events"] == 1
    last = history(flag)[-1]
    assert last["changes"]["override"] == [None, False]
    assert last["username"] == "pi" and "GI bleeding" in last["reason"]
    services.evaluate_toxicity(cohort[1].pk)  # recomputation keeps the override
    flag.refresh_from_db()
    assert flag.effective is False

    with pytest.raises(ValidationError):
        services.override_flag(flag, True, "  ", investigator)
