"""Plausibility at the door: each rule answers 400 naming the field and saves nothing (API),
or shows the error against the field (admin); QLQ-C30 forms only where the protocol schedules
the instrument, and unscheduled forms left out of time to deterioration."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from subjects.models import Subject
from tests.factories import load_seed_trial, make_user
from tests.integration.test_visits import enrolled_subject
from visits import qlq_c30, services
from visits.models import Exposure, QlqC30Deterioration, QlqC30Form

TOMORROW = (timezone.localdate() + dt.timedelta(days=1)).isoformat()


def _field(response) -> str:
    assert response.status_code == 400, response.content
    return response.json()["errors"][0]["field"]


@pytest.fixture
def seed000_nurse():
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    return trial, site, make_user("nurse-plaus", "site_staff", (trial, site))


@pytest.mark.django_db
@pytest.mark.parametrize(("birth", "consent"), [
    ("2025-01-03", "2025-01-02"),  # born after consent
    ("2025-01-02", "2025-01-02"),  # born on the consent day
    (TOMORROW, "2025-01-02"),  # born in the future
])
def test_subject_birth_date_before_consent_and_not_in_the_future(api, seed000_nurse, birth,
                                                                 consent):
    trial, site, nurse = seed000_nurse
    api.force_authenticate(nurse)
    body = {"trial": trial.pk, "site": site.pk, "screening_number": "P-1", "sex": "M",
            "consent_date": consent, "birth_date": birth}
    assert _field(api.post("/api/v1/subjects/", body, format="json")) == "birth_date"
    assert not Subject.objects.filter(screening_number="P-1").exists()


@pytest.mark.django_db
def test_subject_birth_date_refused_in_the_admin(client, seed000_nurse):
    trial, site, nurse = seed000_nurse
    client.force_login(nurse)
    response = client.post(reverse("admin:subjects_subject_add"), {
        "trial": trial.pk, "site": site.pk, "screening_number": "P-2", "sex": "F",
        "consent_date": "2025-01-02", "birth_date": "2025-02-01"})
    assert response.status_code == 200
    assert "birth_date" in response.context["adminform"].form.errors
    assert not Subject.objects.filter(screening_number="P-2").exists()


def _exposure_body(subject, **payload):
    return {"visit": subject.visits.get(code="C1").pk, "intervention_code": "MSC-L",
            "administered_on": "2025-01-06", "dose_value": "1000000", "dose_unit": "cells/kg",
            "weight_kg": "61.5", **payload}


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "field"), [
    ({"height_cm": "0"}, "height_cm"),
    ({"height_cm": "1700"}, "height_cm"),
    ({"weight_kg": "0.2"}, "weight_kg"),
    ({"weight_kg": "650"}, "weight_kg"),
    ({"dose_value": "-1000000"}, "dose_value"),
    ({"given_total": "0"}, "given_total"),
    ({"given_total": "-61500000"}, "given_total"),
    ({"administered_on": TOMORROW}, "administered_on"),
    ({"start_time": f"{TOMORROW}T10:00:00Z"}, "start_time"),
])
def test_exposure_plausibility_at_the_door(api, payload, field):
    subject = enrolled_subject("SHEH-MSC-L")
    api.force_authenticate(make_user("nurse-exp", "site_staff", (subject.trial, subject.site)))
    response = api.post("/api/v1/exposures/", _exposure_body(subject, **payload), format="json")
    assert _field(response) == field
    assert not Exposure.objects.filter(subject=subject).exists()
    assert subject.visits.get(code="C1").status == "planned"


@pytest.mark.django_db
def test_exposure_patch_and_admin_refuse_implausible_values(api, client):
    subject = enrolled_subject("SHEH-MSC-L")
    nurse = make_user("nurse-exp2", "site_staff", (subject.trial, subject.site))
    api.force_authenticate(nurse)
    created = api.post("/api/v1/exposures/", _exposure_body(subject, given_total="61500000"),
                       format="json")
    assert created.status_code == 201, created.content
    url = f"/api/v1/exposures/{created.json()['id']}/"
    for value in ("-1", "0"):
        patched = api.patch(url, {"given_total": value, "reason": "typo"}, format="json")
        assert _field(patched) == "given_total"
    assert str(Exposure.objects.get(subject=subject).given_total) == "61500000.000000"

    client.force_login(nurse)
    c2 = subject.visits.get(code="C2")
    page = client.post(reverse("admin:visits_visit_exposure", args=[c2.pk]), {
        "intervention": subject.protocol_version.interventions.get(code="MSC-L").pk,
        "administered_on": "2025-01-27", "dose_value": "1000000", "dose_unit": "cells/kg",
        "weight_kg": "61.5", "height_cm": "1700"})
    assert page.status_code == 200
    assert "height_cm" in page.context["form"].errors
    assert Exposure.objects.filter(subject=subject).count() == 1


def _form(subject, visit, day: str, answer: int, ql: int) -> dict:
    items = dict.fromkeys(qlq_c30.ITEM_KEYS, answer)
    items.update(q29=ql, q30=ql)
    return {"subject": subject.pk, "visit": visit.pk, "completion_date": day, "mode": "paper",
            **items}


@pytest.mark.django_db
def test_qlq_c30_refused_in_a_trial_without_the_instrument_and_in_the_future(api, client):
    seed000 = enrolled_subject("NCT05699811", arm="COMBO")
    nurse = make_user("nurse-q0", "site_staff", (seed000.trial, seed000.site))
    api.force_authenticate(nurse)
    baseline = seed000.visits.get(code="BASELINE")
    response = api.post("/api/v1/qlq-c30-forms/", _form(seed000, baseline, "2025-01-06", 1, 5),
                        format="json")
    assert _field(response) == "subject"
    client.force_login(nurse)
    page = client.post(reverse("admin:visits_qlqc30form_add"),
                       {k: str(v) for k, v in _form(seed000, baseline, "2025-01-06", 1, 5)
                        .items()})
    assert page.status_code == 200 and "subject" in page.context["adminform"].form.errors

    seed002 = enrolled_subject("NCT05962450")
    api.force_authenticate(make_user("nurse-q2", "site_staff", (seed002.trial, seed002.site)))
    a1 = seed002.visits.get(code="A1")
    assert _field(api.post("/api/v1/qlq-c30-forms/", _form(seed002, a1, TOMORROW, 1, 5),
                           format="json")) == "completion_date"
    assert not QlqC30Form.objects.exists()


@pytest.mark.django_db
def test_unscheduled_qlq_c30_form_is_marked_and_left_out_of_deterioration(api):
    subject = enrolled_subject("NCT05962450")
    api.force_authenticate(make_user("nurse-q3", "site_staff", (subject.trial, subject.site)))

    def post(code: str, day: str, ql: int) -> dict:
        response = api.post("/api/v1/qlq-c30-forms/",
                            _form(subject, subject.visits.get(code=code), day, 1, ql),
                            format="json")
        assert response.status_code == 201, response.content
        services.score_form(response.json()["id"])
        return response.json()

    # QL2 = (q29 - 1) / 6 * 100: 66.7 at baseline, 66.7 at A1 (day 56) and A2 (day 112).
    for code, day in (("BASELINE", "2025-01-06"), ("A1", "2025-03-03"), ("A2", "2025-04-28")):
        assert post(code, day, 5)["unscheduled"] is False
    before = {r.scale: (r.event, r.days, r.censor_date)
              for r in services.recompute_deterioration(subject.pk)}
    # An unscheduled form at infusion C2 (day 14) with QL2 = 0 and one at C3 (day 28): two
    # consecutive 66.7-point drops that would be a deterioration on day 14 if they counted.
    assert post("C2", "2025-01-20", 1)["unscheduled"] is True
    assert post("C3", "2025-02-03", 1)["unscheduled"] is True
    after = {r.scale: (r.event, r.days, r.censor_date)
             for r in services.recompute_deterioration(subject.pk)}
    assert after == before
    assert before["QL2"][0] is False and before["QL2"][2] == dt.date(2025, 4, 28)
    assert QlqC30Deterioration.objects.get(subject=subject, scale="QL2").days == before["QL2"][1]
    call_command("rescore_qlq_c30", subject.trial.registry_id)  # the bulk path agrees
    assert {r.scale: (r.event, r.days, r.censor_date)
            for r in QlqC30Deterioration.objects.filter(subject=subject)} == before
