"""Visits from the protocol: regeneration, exposures and doses, response."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from subjects.enrollment import enroll
from subjects.models import Subject
from tests.factories import load_seed_trial, make_eligible, make_subject, make_user
from visits.models import Exposure, Visit

DAY0 = dt.date(2025, 1, 6)


def enrolled_subject(registry: str, arm: str | None = None, **kwargs) -> Subject:
    trial = load_seed_trial(registry)
    site = trial.sites.first()
    subject = make_eligible(make_subject(trial, site, consent_date=dt.date(2024, 12, 20),
                                         **kwargs))
    if arm is not None:
        from subjects.models import DoseConfirmation

        level = trial.current_version().dose_levels.order_by("order").first()
        admin = make_user(f"pi-{subject.pk}", "investigator", (trial, site))
        from edc.core.audit import change_reason

        with change_reason("tolerable dose confirmed"):
            DoseConfirmation.objects.create(
                trial=trial, arm=trial.current_version().arms.get(code="MONO"), cohort=2,
                kind=DoseConfirmation.Kind.RESULT, dose_level=level,
                recommendation={"action": "tolerable_dose_found"},
                confirmed_by=admin)
    return enroll(subject, enrolled_on=DAY0, arm_code=arm)


@pytest.fixture
def nurse_for():
    def make(subject):
        return make_user(f"nurse-{subject.pk}", "site_staff", (subject.trial, subject.site))
    return make


@pytest.mark.django_db
def test_late_infusion_moves_following_infusions_not_assessments(api, nurse_for):
    subject = enrolled_subject("NCT05699811", arm="COMBO")
    api.force_authenticate(nurse_for(subject))
    before = {v.code: v.target_date for v in subject.visits.all()}
    c1 = subject.visits.get(code="C1")
    assert api.post(f"/api/v1/visits/{c1.pk}/record/", {"actual_date": "2025-01-06"},
                    format="json").status_code == 200
    c2 = subject.visits.get(code="C2")
    response = api.post(f"/api/v1/visits/{c2.pk}/record/", {"actual_date": "2025-02-13"},
                        format="json")
    assert response.status_code == 200, response.content
    after = {v.code: v.target_date for v in subject.visits.all()}
    assert after["C3"] - before["C3"] == dt.timedelta(days=10)
    assert after["C4"] - before["C4"] == dt.timedelta(days=10)
    assert after["C3.NAB-PTX"] - before["C3.NAB-PTX"] == dt.timedelta(days=10)
    assert [after[f"A{n}"] for n in (1, 2, 3)] == [before[f"A{n}"] for n in (1, 2, 3)]
    subject.refresh_from_db()
    assert subject.status == "on_treatment"


@pytest.mark.django_db
def test_progression_stops_treatment_and_death_cancels_future_visits(api, nurse_for):
    subject = enrolled_subject("NCT05699811", arm="COMBO")
    api.force_authenticate(nurse_for(subject))
    for code, day in (("C1", "2025-01-06"), ("C2", "2025-02-03"), ("C3", "2025-03-03"),
                      ("C4", "2025-03-31")):
        visit = subject.visits.get(code=code)
        assert api.post(f"/api/v1/visits/{visit.pk}/record/", {"actual_date": day},
                        format="json").status_code == 200
    week16 = subject.visits.get(code="A2")  # day 112 = 2025-04-28
    response = api.post("/api/v1/tumour-assessments/", {
        "visit": week16.pk, "assessment_date": "2025-04-28", "method": "CT",
        "criteria": "RECIST 1.1", "overall_response": "PD"}, format="json")
    assert response.status_code == 201, response.content
    subject.refresh_from_db()
    assert (subject.status, subject.treatment_stop_reason) == ("follow_up", "progression")
    planned = subject.visits.filter(status="planned")
    assert not planned.filter(kind="infusion").exists()
    follow_up = list(planned.filter(kind="follow_up").values_list("target_date", flat=True))
    assert follow_up[:3] == [dt.date(2025, 7, 21), dt.date(2025, 10, 13), dt.date(2026, 1, 5)]
    assert subject.visits.filter(code="C5", status="cancelled").exists()

    response = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                        {"status": "off_study", "on": "2025-08-01", "reason": "death"},
                        format="json")
    assert response.status_code == 200, response.content
    subject.refresh_from_db()
    assert subject.death_date == dt.date(2025, 8, 1)
    assert not subject.visits.filter(status="planned", target_date__gt="2025-08-01").exists()
    assert subject.visits.filter(code="FU1", status="done").count() == 0
    assert subject.visits.filter(status="done").count() == 5  # nothing done was touched


@pytest.mark.django_db
def test_dose_computation_per_kg_and_per_m2(api, nurse_for):
    subject = enrolled_subject("NCT05699811", arm="COMBO")
    api.force_authenticate(nurse_for(subject))
    cell = api.post("/api/v1/exposures/", {
        "visit": subject.visits.get(code="C1").pk, "intervention_code": "MSC-IFNA",
        "administered_on": "2025-01-06", "dose_value": "2000000", "dose_unit": "cells/kg",
        "weight_kg": "61.5"}, format="json")
    assert cell.status_code == 201, cell.content
    assert Decimal(cell.json()["planned_total"]) == Decimal("1.23E+8")
    assert cell.json()["total_unit"] == "cells"
    chemo = api.post("/api/v1/exposures/", {
        "visit": subject.visits.get(code="C2.NAB-PTX").pk, "intervention_code": "NAB-PTX",
        "administered_on": "2025-01-29", "dose_value": "125", "dose_unit": "mg/m2",
        "weight_kg": "65", "height_cm": "170"}, format="json")
    assert chemo.status_code == 201, chemo.content
    assert Decimal(chemo.json()["bsa_m2"]) == Decimal("1.752")
    assert Decimal(chemo.json()["planned_total"]) == Decimal("219.0")


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "field"), [
    ({"dose_unit": "mg/kg"}, "dose_unit"),
    ({"weight_kg": "0"}, "weight_kg"),
    ({"weight_kg": "900"}, "weight_kg"),
    ({"administered_on": "2024-12-31"}, "actual_date"),
    ({"administered_on": "2999-01-01"}, "administered_on"),
])
def test_bad_exposures_are_refused_naming_the_field(api, nurse_for, payload, field):
    subject = enrolled_subject("NCT05699811", arm="COMBO")
    api.force_authenticate(nurse_for(subject))
    body = {"visit": subject.visits.get(code="C1").pk, "intervention_code": "MSC-IFNA",
            "administered_on": "2025-01-06", "dose_value": "2000000", "dose_unit": "cells/kg",
            "weight_kg": "61.5", **payload}
    response = api.post("/api/v1/exposures/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not Exposure.objects.filter(subject=subject).exists()
    assert subject.visits.get(code="C1").status == "planned"


@pytest.mark.django_db
def test_bad_visit_dates_and_response_codes_are_refused(api, nurse_for):
    subject = enrolled_subject("NCT05962450")
    api.force_authenticate(nurse_for(subject))
    c2 = subject.visits.get(code="C2")
    before = api.post(f"/api/v1/visits/{c2.pk}/record/", {"actual_date": "2025-01-01"},
                      format="json")
    assert before.status_code == 400
    assert before.json()["errors"][0] == {
        "field": "actual_date", "code": "invalid",
        "message": "2025-01-01 is before day 0 (2025-01-06)"}
    a1 = subject.visits.get(code="A1")
    wrong = api.post("/api/v1/tumour-assessments/", {
        "visit": a1.pk, "assessment_date": "2025-03-03", "method": "MRI",
        "criteria": "iRECIST", "overall_response": "PD"}, format="json")
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "overall_response"
    other = api.post("/api/v1/tumour-assessments/", {
        "visit": a1.pk, "assessment_date": "2025-03-03", "method": "MRI",
        "criteria": "RECIST 1.1", "overall_response": "SD"}, format="json")
    assert other.status_code == 400  # the protocol names mRECIST and iRECIST
    assert other.json()["errors"][0]["field"] == "criteria"
    assert Visit.objects.get(pk=a1.pk).status == "planned"
