"""Dose-finding recommendation from observed DLT/TI flags, confirmed by an investigator."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import transaction

from adverse_events.evaluation import evaluate_toxicity
from subjects.enrollment import enroll
from subjects.models import DoseConfirmation
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
DAY0 = dt.date(2025, 1, 6)
NEUTROPHILS = "10029366"  # Neutrophil count decreased


def test_seed_000_ti_in_cohort_1_recommends_the_next_level_of_the_chain(api):
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    nurse = make_user("de_nurse", "site_staff", (trial, site))
    pi = make_user("de_pi", "investigator", (trial, site))
    subjects = [enroll(make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 1, 2))),
                       enrolled_on=DAY0) for _ in range(3)]
    for subject in subjects:
        make_exposure(subject, "MSC-IFNA", DAY0, dose_value=2000000)
    # Subject 1: related grade 3 for 8 days from day 5 -> TI (>= 7 days within 28 days).
    record_ae(subjects[0], NEUTROPHILS, [(3, dt.date(2025, 1, 11), dt.date(2025, 1, 18))],
              {"MSC-IFNA": "probable"}, aware_at=dt.datetime(2025, 1, 11, 9, tzinfo=dt.UTC))
    for subject in subjects:
        evaluate_toxicity(subject.pk, as_of=dt.date(2025, 3, 1))

    api.force_authenticate(nurse)
    body = api.get(f"/api/v1/trials/{trial.pk}/dose-recommendation/").json()
    # Hand-worked: cohort 1 at 2x10^6 cells/kg has 1 TI in 3 -> next cohort at 6x10^5.
    assert body["action"] == "enroll"
    assert body["next_dose_level"] == "DL-1"
    assert body["next_cohort"] == 2

    refused = api.post(f"/api/v1/trials/{trial.pk}/confirm-dose/",
                       {"arm": "MONO", "cohort": 2, "dose_level": "DL-1"}, format="json")
    assert refused.status_code == 403
    api.force_authenticate(pi)
    other = api.post(f"/api/v1/trials/{trial.pk}/confirm-dose/",
                     {"arm": "MONO", "cohort": 2, "dose_level": "DL1"}, format="json")
    assert other.status_code == 400
    assert other.json()["errors"][0]["field"] == "reason"
    confirmed = api.post(f"/api/v1/trials/{trial.pk}/confirm-dose/",
                         {"arm": "MONO", "cohort": 2, "dose_level": "DL-1"}, format="json")
    assert confirmed.status_code == 201, confirmed.content
    record = DoseConfirmation.objects.get(trial=trial, cohort=2)
    assert record.confirmed_by == pi
    assert record.recommendation["next_dose_level"] == "DL-1"

    fourth = enroll(make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 2, 1))),
                    enrolled_on=dt.date(2025, 2, 3))
    assert (fourth.cohort, fourth.dose_level.code) == (2, "DL-1")



def _seed_003_first_cohort():
    """Seed 003 (dose A-E x frequency 1-3): cohort 1 (3 subjects at A x F1) dosed, no DLT."""
    trial = load_seed_trial("NCT05672420")
    site = trial.sites.first()
    subjects = [enroll(make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 1, 2))),
                       enrolled_on=DAY0) for _ in range(3)]
    assert {s.frequency_level for s in subjects} == {"F1"}
    for subject in subjects:
        make_exposure(subject, "UC-MSC", DAY0)
    return trial, site


def test_confirm_dose_refuses_a_blank_frequency_level_where_the_protocol_has_them(api):
    trial, site = _seed_003_first_cohort()
    api.force_authenticate(make_user("f_pi", "investigator", (trial, site)))
    url = f"/api/v1/trials/{trial.pk}/confirm-dose/"
    # Seed 003 states no escalation rule: no recommended step, every decision needs a reason.
    assert api.get(f"/api/v1/trials/{trial.pk}/dose-recommendation/").json()["action"] == \
        "not_computable"
    blank = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "B",
                           "frequency_level": "", "reason": "x"}, format="json")
    assert blank.status_code == 400, blank.content
    assert blank.json()["errors"][0]["field"] == "frequency_level"
    unknown = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "B",
                             "frequency_level": "F9", "reason": "x"}, format="json")
    assert unknown.status_code == 400
    assert "F1, F2, F3" in unknown.json()["errors"][0]["message"]
    no_reason = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "B",
                               "frequency_level": "F1"}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    assert not DoseConfirmation.objects.filter(trial=trial).exists()

    ok = api.post(url, {"arm": "UC-MSC", "cohort": 2, "dose_level": "B",
                        "frequency_level": "F1", "reason": "no DLT seen; investigators agree"},
                  format="json")
    assert ok.status_code == 201, ok.content
    assert ok.json()["outside_rule"] is True
    fourth = enroll(make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 2, 1))),
                    enrolled_on=dt.date(2025, 2, 3))
    assert (fourth.cohort, fourth.dose_level.code, fourth.frequency_level) == (2, "B", "F1")


def test_confirm_dose_refuses_a_frequency_level_where_the_protocol_has_none(api):
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    api.force_authenticate(make_user("nf_pi", "investigator", (trial, site)))
    response = api.post(f"/api/v1/trials/{trial.pk}/confirm-dose/",
                        {"arm": "MONO", "cohort": 1, "dose_level": "DL1",
                         "frequency_level": "F1"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "frequency_level"


def test_confirm_dose_answers_every_combination_with_4xx_or_201(api):
    """Every combination of good and bad inputs: 201 only for a valid one, otherwise a 400 in
    the JSON error shape; after a valid one the next enrolment succeeds, after none it is
    refused (409: cohort 2 is not confirmed)."""
    trial, site = _seed_003_first_cohort()
    api.force_authenticate(make_user("c_pi", "investigator", (trial, site)))
    fourth = make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 2, 1)))
    version = trial.current_version()
    seen = set()
    for arm, dose, frequency, cohort, reason in itertools.product(
            ["UC-MSC", "NOPE", None], ["B", "A", "Z", None], ["F1", "F2", "F9", "", None],
            [2, 1, 2**63], ["", "deliberate"]):
        body = {key: value for key, value in (("arm", arm), ("dose_level", dose),
                                             ("frequency_level", frequency),
                                             ("cohort", cohort), ("reason", reason))
                if value is not None}
        valid = (arm == "UC-MSC" and cohort == 2 and dose in ("A", "B")
                 and frequency in ("F1", "F2") and bool(reason))  # no rule: a reason always
        with transaction.atomic():
            response = api.post(f"/api/v1/trials/{trial.pk}/confirm-dose/", body,
                                format="json")
            assert response.status_code == (201 if valid else 400), (body, response.content)
            if not valid:  # nothing saved: the next enrolment is refused as before (409)
                assert {"field", "code", "message"} <= set(response.json()["errors"][0])
                seen.add(response.status_code)
                transaction.set_rollback(True)
                continue
            enrolled = api.post(f"/api/v1/subjects/{fourth.pk}/enroll/",
                                {"enrolled_on": "2025-02-03"}, format="json")
            assert enrolled.status_code == 200, (body, enrolled.content)
            assert (enrolled.json()["dose_level"], enrolled.json()["frequency_level"]) == (
                version.dose_levels.get(code=dose).pk, frequency)
            seen.add(response.status_code)
            transaction.set_rollback(True)
    assert seen == {201, 400}
    refused = api.post(f"/api/v1/subjects/{fourth.pk}/enroll/", {"enrolled_on": "2025-02-03"},
                       format="json")
    assert refused.status_code == 409, refused.content


def test_enrolment_is_refused_not_crashed_by_a_confirmation_the_protocol_does_not_allow(api):
    """A confirmation stored before validation (or under another protocol version) whose
    frequency level the subject's protocol does not define refuses enrolment with a 409."""
    from edc.core.audit import change_reason

    trial, site = _seed_003_first_cohort()
    version = trial.current_version()
    pi = make_user("l_pi", "investigator", (trial, site))
    with change_reason("legacy row", pi):
        DoseConfirmation.objects.create(
            trial=trial, arm=version.arms.get(code="UC-MSC"), cohort=2,
            dose_level=version.dose_levels.get(code="B"), frequency_level="",
            recommendation={}, confirmed_by=pi)
    fourth = make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 2, 1)))
    api.force_authenticate(pi)
    response = api.post(f"/api/v1/subjects/{fourth.pk}/enroll/", {"enrolled_on": "2025-02-03"},
                        format="json")
    assert response.status_code == 409, response.content
    assert "frequency level" in response.json()["errors"][0]["message"]
