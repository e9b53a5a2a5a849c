"""Issue 14: dose-finding decisions a trial can rely on (seeds 003 and 000, API)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command

from adverse_events.dose_escalation import recommendation
from adverse_events.evaluation import evaluate_toxicity
from subjects.models import DoseConfirmation, SafetyReview, Subject
from subjects.services import change_status
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_eligible,
    make_exposure,
    make_subject,
    make_user,
    record_ae,
)

pytestmark = pytest.mark.django_db
SEEDS = Path(__file__).resolve().parents[2] / "seeds"
DAY0 = dt.date(2025, 1, 6)
NEUTROPHILS = "10029366"  # Neutrophil count decreased
FEVER = "10016558"
SEPSIS = "10040047"


def days(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def enroll_via_api(api, user, trial, site, **body):
    subject = make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 1, 2)))
    api.force_authenticate(user)
    return subject, api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                             {"enrolled_on": DAY0.isoformat(), **body}, format="json")


def people(trial):
    site = trial.sites.first()
    return (site, make_user(f"nurse-{trial.pk}", "site_staff", (trial, site)),
            make_user(f"pi-{trial.pk}", "investigator", (trial, site)))


# --------------------------------------------------------------------------- seed 003


def seed003_first_step_with_grade_4(api):
    load_ctcae_terms()
    trial = load_seed_trial("NCT05672420")
    site, nurse, pi = people(trial)
    subjects = []
    for _ in range(3):
        subject, response = enroll_via_api(api, nurse, trial, site)
        assert response.status_code == 200, response.content
        subjects.append(Subject.objects.get(pk=subject.pk))
    for s in subjects:
        assert (s.cohort, s.dose_level.code, s.frequency_level) == (1, "A", "F1")
        make_exposure(s, "UC-MSC", DAY0)
        record_ae(s, NEUTROPHILS, [(4, days(3), days(14))], {"UC-MSC": "definite"})
        record_ae(s, FEVER, [(3, days(4), days(6))], {"UC-MSC": "definite"})
        evaluate_toxicity(s.pk)
    return trial, site, nurse, pi, subjects


def test_seed_003_without_a_rule_is_not_computable_and_needs_a_recorded_decision(api):
    trial, site, nurse, pi, _ = seed003_first_step_with_grade_4(api)

    api.force_authenticate(nurse)
    body = api.get(f"/api/v1/trials/{trial.pk}/dose-recommendation/").json()
    assert body["action"] == "not_computable"
    assert "defines no escalation rule" in body["explanation"]
    assert body["next_dose_level"] is None
    assert "tolerat" not in body["explanation"] and "escalat" not in body["action"]
    (cohort,) = body["cohorts"]
    assert (cohort["dose_level"], cohort["frequency"], cohort["n_subjects"]) == ("A", "F1", 3)
    assert cohort["n_severe_related"] == 6  # grade 4 neutropenia + grade 3 fever, each subject
    assert cohort["n_events"] == 0  # no rule, so no DLT flag: shown as data, not judged
    assert any("grade 4" in ae for s in cohort["subjects"] for ae in s["severe_related"])
    assert "EDC safety default" in body["edc_safety_defaults"][0]
    assert body["cohort_size_source"].startswith("EDC default")

    # The next subject is not enrolled at B by itself: the next step needs a human decision.
    _, refused = enroll_via_api(api, nurse, trial, site)
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "enrollment_refused"

    api.force_authenticate(pi)
    url = f"/api/v1/trials/{trial.pk}/confirm-dose/"
    no_reason = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "A",
                               "frequency_level": "F1"}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    blank_frequency = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "A",
                                     "reason": "x"}, format="json")
    assert blank_frequency.status_code == 400
    assert blank_frequency.json()["errors"][0]["field"] == "frequency_level"
    decided = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "A",
                             "frequency_level": "F1",
                             "reason": "grade 4 neutropenia in 3/3: repeat dose A"},
                       format="json")
    assert decided.status_code == 201, decided.content
    assert decided.json()["outside_rule"] is True
    record = DoseConfirmation.objects.get(trial=trial, cohort=2)
    assert record.recommendation["action"] == "not_computable"
    from edc.core.audit import history

    assert "decision outside a protocol rule" in history(record)[-1]["reason"]

    fourth, response = enroll_via_api(api, nurse, trial, site)
    assert response.status_code == 200
    fourth.refresh_from_db()
    assert (fourth.cohort, fourth.dose_level.code) == (2, "A")


AMENDMENT = """
Amendment 1 (test). Dose-limiting toxicity (DLT) is defined as any UC-MSC related adverse \
event of grade 3 or higher within 28 days after the first infusion. Dose escalation follows \
the 3+3 design with cohorts of 3 subjects.
"""

RULE = '''
[[toxicity_rules]]
code = "DLT"
name = "Dose-limiting toxicity"
kind = "DLT"
min_grade = 3
window_days = 28
window_anchor = "first_administration"
window_interventions = ["UC-MSC"]
attribution_interventions = ["UC-MSC"]
min_attribution = "possible"
quote = "QUOTE"
'''.replace("QUOTE", "Dose-limiting toxicity (DLT) is defined as any UC-MSC related adverse "
                      "event of grade 3 or higher within 28 days after the first infusion.")


def amended_seed003(tmp_path) -> Path:
    shutil.copytree(SEEDS / "source", tmp_path / "source")
    source = tmp_path / "source" / "003_cadc227cebf75bce.txt"
    source.write_text(source.read_text(encoding="utf-8") + AMENDMENT, encoding="utf-8")
    text = (SEEDS / "NCT05672420.toml").read_text(encoding="utf-8")
    text = text.replace('not_stated = ["toxicity_rules", "endpoints"]',
                        'not_stated = ["endpoints"]', 1)
    text = text.replace('method = "not_stated"', 'method = "rule_based"\nmodel = "3+3"', 1)
    text = text.replace('not_stated = ["cohort_size", "trigger_rule"]',
                        'cohort_size = 3\ntrigger_rule = "DLT"', 1)
    text = text.replace('[visit_plan]', RULE + '\n[visit_plan]', 1)
    amended = tmp_path / "NCT05672420.toml"
    amended.write_text(text, encoding="utf-8")
    return amended


def test_seed_003_amended_with_a_dlt_rule_gives_the_rules_answer(api, tmp_path):
    trial, *_, subjects = seed003_first_step_with_grade_4(api)
    assert recommendation(trial)["action"] == "not_computable"

    call_command("seed_protocols", str(amended_seed003(tmp_path)), verbosity=0)
    assert trial.current_version().version == 2
    for s in subjects:
        evaluate_toxicity(s.pk)
    body = recommendation(trial)
    # 3+3 at dose A x F1 with 3/3 DLT: not tolerated, first step -> no RP2D. Never "escalate".
    assert body["action"] == "no_tolerated_step", body["explanation"]
    assert body["cohorts"][0]["n_events"] == 3
    assert body["source"]["trigger_rule"]["quote"][0].startswith("Dose-limiting toxicity")


# --------------------------------------------------------------------------- seed 000


def seed000_cohort(trial, site, n=3, level="DL1", cohort=1, on=DAY0):
    version = trial.current_version()
    out = []
    for _ in range(n):
        s = make_subject(trial, site, protocol_version=version, consent_date=dt.date(2025, 1, 2),
                         arm=version.arms.get(code="MONO"), status="on_treatment",
                         dose_level=version.dose_levels.get(code=level), cohort=cohort,
                         subject_number=f"S{Subject.objects.count() + 1:04d}",
                         day0=on, enrolled_on=on)
        make_exposure(s, "MSC-IFNA", on)
        out.append(s)
    return out


def ti(subject, start):
    record_ae(subject, NEUTROPHILS, [(3, start, start + dt.timedelta(days=8))],
              {"MSC-IFNA": "probable"})
    evaluate_toxicity(subject.pk)


@pytest.fixture
def seed000():
    load_ctcae_terms()
    return load_seed_trial("NCT05699811")


def test_seed_000_related_death_is_a_safety_stop_never_tolerable(api, seed000):
    site, nurse, pi = people(seed000)
    pi.email = "pi@example.org"
    pi.save()
    cohort = seed000_cohort(seed000, site)
    # A related grade 3 run cut short by death on day 12 (3 days at grade 3, then grade 5).
    record_ae(cohort[0], SEPSIS, [(3, days(9), days(11)), (5, days(12), days(12))],
              {"MSC-IFNA": "probable"}, death_date=days(12), serious=True, sae_death=True,
              aware_at=dt.datetime(2025, 1, 18, 9, tzinfo=dt.UTC))
    for s in cohort:
        evaluate_toxicity(s.pk)
    evaluate_toxicity(cohort[0].pk)  # evaluated again: the stop is told once, not twice
    from notifications.models import Notification

    stops = Notification.objects.filter(trial=seed000, kind="safety_stop")
    assert stops.count() == 1
    assert (stops.get().recipient_email, stops.get().recipient_kind) == (
        "pi@example.org", "investigator")
    assert "related death" in stops.get().body

    api.force_authenticate(nurse)
    body = api.get(f"/api/v1/trials/{seed000.pk}/dose-recommendation/").json()
    assert body["action"] == "safety_stop"
    assert "Safety stop: related death, review required" in body["explanation"]
    assert "tolerable" not in body["action"] and body["next_dose_level"] is None
    subjects = body["cohorts"][0]["subjects"]
    assert [s["status"] for s in subjects].count("event") == 1
    assert "counted as a toxicity event (EDC safety default)" in " ".join(
        s["why"] for s in subjects)

    _, refused = enroll_via_api(api, nurse, seed000, site, arm="MONO")
    assert refused.status_code == 409
    assert "Safety stop" in refused.json()["errors"][0]["message"]

    url = f"/api/v1/trials/{seed000.pk}/review-safety-stop/"
    assert api.post(url, {"arm": "MONO", "decision": "x"}, format="json").status_code == 403
    api.force_authenticate(pi)
    assert api.post(url, {"arm": "MONO", "decision": " "}, format="json").status_code == 400
    reviewed = api.post(url, {"arm": "MONO", "decision": "DSMB informed; de-escalate per rule"},
                        format="json")
    assert reviewed.status_code == 201, reviewed.content
    assert SafetyReview.objects.get(trial=seed000).adverse_events == \
        body["safety_stop"]["adverse_events"]
    after = recommendation(seed000)
    # The death still counts as a toxicity event: the rule de-escalates, never "tolerable".
    assert (after["action"], after["next_dose_level"]) == ("enroll", "DL-1")


def test_seed_000_death_without_ti_inside_the_window_is_not_evaluable(seed000):
    site, _, _ = people(seed000)
    cohort = seed000_cohort(seed000, site)
    change_status(cohort[0], "off_study", days(10), "death")
    body = recommendation(seed000)
    row = body["cohorts"][0]
    assert (row["n_evaluable"], row["n_not_evaluable"], row["replacements_needed"]) == (2, 1, 1)
    assert body["action"] == "cohort_incomplete" and body["n_needed"] == 1
    status = {s["subject"]: s for s in row["subjects"]}[cohort[0].subject_number]
    assert status["status"] == "not_evaluable" and "replace" in status["why"]

    # The replacement joins cohort 1 at the same dose.
    subject = make_eligible(make_subject(seed000, site, consent_date=dt.date(2025, 1, 2)))
    from subjects.enrollment import enroll

    enroll(subject, enrolled_on=DAY0, arm_code="MONO")
    subject.refresh_from_db()
    assert (subject.cohort, subject.dose_level.code) == (1, "DL1")


def test_seed_000_extra_cohort_after_the_decision_is_flagged_and_decision_stands(seed000):
    site, _, _ = people(seed000)
    first = seed000_cohort(seed000, site)
    ti(first[0], days(5))
    seed000_cohort(seed000, site, level="DL-1", cohort=2)
    assert recommendation(seed000)["action"] == "tolerable_dose_found"
    extra = seed000_cohort(seed000, site, level="DL-1", cohort=3)
    ti(extra[0], days(5))
    body = recommendation(seed000)
    assert (body["action"], body["selected_dose_level"]) == ("tolerable_dose_found", "DL-1")
    assert [c["cohort"] for c in body["basis"]["extra_cohorts"]] == [3]
    assert "extra cohort" in body["explanation"]


def test_seed_000_combo_waits_for_arm_1_confirmed_tolerable_dose(api, seed000):
    site, nurse, pi = people(seed000)
    first = seed000_cohort(seed000, site)
    ti(first[0], days(5))

    subject, refused = enroll_via_api(api, nurse, seed000, site, arm="COMBO")
    assert refused.status_code == 409
    assert "has not confirmed that result" in refused.json()["errors"][0]["message"]
    assert Subject.objects.get(pk=subject.pk).status == "screening"

    seed000_cohort(seed000, site, level="DL-1", cohort=2)
    body = recommendation(seed000)
    assert body["action"] == "tolerable_dose_found"
    api.force_authenticate(pi)
    url = f"/api/v1/trials/{seed000.pk}/confirm-dose/"
    confirmed = api.post(url, {"arm": "MONO", "kind": "result", "dose_level": "DL-1"},
                         format="json")
    assert confirmed.status_code == 201, confirmed.content
    assert (confirmed.json()["kind"], confirmed.json()["outside_rule"]) == ("result", False)

    subject, response = enroll_via_api(api, nurse, seed000, site, arm="COMBO")
    assert response.status_code == 200, response.content
    subject.refresh_from_db()
    assert subject.dose_level.code == "DL-1"
    # A COMBO subject never enters Arm 1's cohort sequence.
    again = recommendation(seed000)
    assert again["action"] == "tolerable_dose_found"
    assert [c["cohort"] for c in again["cohorts"]] == [1, 2]


# --------------------------------------------------------------------------- seed 001 CRM


def test_seed_001_crm_uses_the_protocol_files_declared_parameters(api):
    from trials import dose_finding

    load_ctcae_terms()
    trial = load_seed_trial("SHEH-MSC-L")
    site, nurse, _ = people(trial)
    version = trial.current_version()
    crm = version.protocol().dose_finding.crm
    for _ in range(3):
        s = make_subject(trial, site, protocol_version=version, consent_date=dt.date(2025, 1, 2),
                         arm=version.arms.get(code="MSC-L"), status="on_treatment",
                         dose_level=version.dose_levels.get(code="DL1"), cohort=1,
                         subject_number=f"S{Subject.objects.count() + 1:04d}")
        make_exposure(s, "MSC-L", DAY0)
    api.force_authenticate(nurse)
    body = api.get(f"/api/v1/trials/{trial.pk}/dose-recommendation/").json()
    expected = dose_finding.crm_recommendation(
        list(crm.skeleton), 0.35, [(0, 3, 0)], current_level=0, start_level=0,
        prior_variance=crm.prior_variance, model=crm.model, tie_break="largest")
    assert body["basis"]["skeleton"] == list(crm.skeleton)
    assert body["basis"]["tie_break"] == "largest"
    assert body["posterior_mean_a"] == pytest.approx(expected.posterior_mean_a, abs=1e-12)
    assert body["next_dose_level"] == "DL2"  # 0/3 at DL1: one level up, no skipping
    assert "inferred" in body["explanation"] and "skeleton" in body["explanation"]
    assert body["source"]["crm"]["inferred"] == list(crm.inferred)
