"""Complete schedules from the protocol files: follow-up (seed 003) and one-off sample visits
(seed 001), through the API as a site would see them."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.factories import make_user
from tests.integration.test_visits import DAY0, enrolled_subject


@pytest.mark.django_db
def test_seed_003_follow_up_visits_to_two_years_after_treatment_ends(api):
    subject = enrolled_subject("NCT05672420")  # frequency level F1: one infusion
    assert subject.frequency_level == "F1"
    api.force_authenticate(make_user("nurse-003", "site_staff", (subject.trial, subject.site)))
    c1 = subject.visits.get(code="C1")
    assert api.post(f"/api/v1/visits/{c1.pk}/record/", {"actual_date": "2025-01-06"},
                    format="json").status_code == 200
    assert not subject.visits.filter(kind="follow_up").exists()
    stop = "2025-01-20"  # the 2-week course is over
    response = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                        {"status": "follow_up", "on": stop, "reason": "completed"},
                        format="json")
    assert response.status_code == 200, response.content
    listed = api.get("/api/v1/visits/", {"subject": subject.pk, "kind": "follow_up"}).json()
    targets = sorted(dt.date.fromisoformat(v["target_date"]) for v in listed["results"])
    # every 12 weeks from the stop, up to 2 years after enrollment (2025-01-06 -> 2027-01-06)
    assert targets[0] == dt.date(2025, 4, 14)
    assert targets[-1] == dt.date(2026, 11, 23) and len(targets) == 8
    assert {v["code"] for v in listed["results"]} == {f"FU{j}" for j in range(1, 9)}


@pytest.mark.django_db
def test_seed_001_day_21_kinetics_sample_visit_exists(api):
    subject = enrolled_subject("SHEH-MSC-L")
    sample = subject.visits.get(code="PK-D21")
    assert (sample.kind, sample.target_date) == ("sample", DAY0 + dt.timedelta(days=21))
    api.force_authenticate(make_user("nurse-001", "site_staff", (subject.trial, subject.site)))
    response = api.post(f"/api/v1/visits/{sample.pk}/record/",
                        {"actual_date": "2025-01-27"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "done"
