"""Dose-finding recommendation from observed DLT/TI flags, confirmed by an investigator."""

from __future__ import annotations

import datetime as dt

import pytest

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
