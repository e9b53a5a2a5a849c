"""Retire-in-error (issue 20): a subject or an AE entered in error is retired from the admin
(or the API) with a required reason; nothing is deleted, the audit trail says who and why,
and the record leaves the lists that count (overdue visits, SAE clock, status matrix)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from adverse_events.models import AdverseEvent
from edc.core.audit import history
from edc.core.models import PendingTask
from subjects.enrollment import enroll
from subjects.models import Subject
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_eligible,
    make_subject,
    make_user,
    record_ae,
)
from visits.models import Visit

pytestmark = pytest.mark.django_db
DAY0 = timezone.localdate() - dt.timedelta(days=60)
FATIGUE = "10016256"
SEPSIS = "10040047"


@pytest.fixture
def enrolled():
    trial = load_seed_trial("NCT05699811")  # open label, not randomized
    site = trial.sites.first()
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)
    return {"trial": trial, "site": site, "subject": subject,
            "nurse": make_user("rt_nurse", "site_staff", (trial, site)),
            "monitor": make_user("rt_cra", "monitor", (trial, None)),
            "dm": make_user("rt_dm", "data_manager", (trial, None))}


def test_a_subject_entered_in_error_is_retired_from_the_admin_with_a_reason(client, enrolled):
    subject, nurse = enrolled["subject"], enrolled["nurse"]
    assert Visit.objects.filter(subject=subject).overdue().exists()
    client.force_login(nurse)
    page = client.get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    assert f"/admin/subjects/subject/{subject.pk}/retire/" in page
    url = f"/admin/subjects/subject/{subject.pk}/retire/"
    refused = client.post(url, {"reason": "  "})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    subject.refresh_from_db()
    assert subject.retired_at is None
    done = client.post(url, {"reason": "duplicate of screening S0001"})
    assert done.status_code == 302
    subject.refresh_from_db()
    assert subject.retired_at is not None
    assert subject.retired_reason == "entered in error: duplicate of screening S0001"
    last = history(subject)[-1]
    assert (last["username"], last["reason"]) == (nurse.username, subject.retired_reason)
    assert Subject.objects.filter(pk=subject.pk).exists()  # kept, never deleted
    assert not Visit.objects.filter(subject=subject).overdue().exists()
    client.force_login(enrolled["dm"])
    dashboard = client.get(f"/admin/trials/trial/{enrolled['trial'].pk}/dashboard/")
    assert dashboard.context["overdue_visits_total"] == 0
    matrix = client.get(f"/api/v1/trials/{enrolled['trial'].pk}/status-matrix/").json()
    assert matrix["count"] == 0
    page = client.get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    assert "duplicate of screening S0001" in page and f"{subject.pk}/retire/" not in page


def test_subject_retire_api_needs_a_reason_and_a_data_entry_role(api, enrolled):
    subject = enrolled["subject"]
    url = f"/api/v1/subjects/{subject.pk}/retire/"
    api.force_authenticate(enrolled["monitor"])
    assert api.post(url, {"reason": "x"}, format="json").status_code == 403
    api.force_authenticate(enrolled["nurse"])
    missing = api.post(url, {}, format="json")
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "reason"
    done = api.post(url, {"reason": "wrong trial"}, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["retired_reason"] == "entered in error: wrong trial"
    again = api.post(url, {"reason": "wrong trial"}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "retired_at"


def test_a_randomized_subject_is_not_retired(api):
    trial = load_seed_trial("NCT05962450")  # randomized 1:1
    site = trial.sites.first()
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)
    api.force_authenticate(make_user("rt_nurse2", "site_staff", (trial, site)))
    response = api.post(f"/api/v1/subjects/{subject.pk}/retire/", {"reason": "duplicate"},
                        format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "subject" and "intention to treat" in error["message"]
    subject.refresh_from_db()
    assert subject.retired_at is None


def test_an_ae_entered_in_error_is_retired_with_a_reason(client, api, enrolled):
    load_ctcae_terms()
    subject, nurse = enrolled["subject"], enrolled["nurse"]
    onset = DAY0 + dt.timedelta(days=3)
    ae = record_ae(subject, FATIGUE, [(3, onset, None)], serious=True, sae_hospitalization=True,
                   aware_at=timezone.now())
    assert AdverseEvent.objects.sae_status("due").filter(pk=ae.pk).exists()
    client.force_login(nurse)
    page = client.get(f"/admin/subjects/subject/{subject.pk}/change/").content.decode()
    url = f"/admin/adverse_events/adverseevent/{ae.pk}/retire/"
    assert url in page
    assert url in client.get(f"/admin/adverse_events/adverseevent/{ae.pk}/change/"
                             ).content.decode()
    evaluations = PendingTask.objects.filter(
        task_name="adverse_events.tasks.evaluate_toxicity", args=[subject.pk])
    queued = evaluations.count()
    done = client.post(url, {"reason": "recorded on the wrong subject"})
    assert done.status_code == 302
    ae.refresh_from_db()
    assert ae.retired_reason == "entered in error: recorded on the wrong subject"
    assert history(ae)[-1]["username"] == nurse.username
    assert not AdverseEvent.objects.sae_status("due").filter(pk=ae.pk).exists()
    assert evaluations.count() == queued + 1  # DLT/TI re-evaluated without it
    api.force_authenticate(nurse)
    again = api.post(f"/api/v1/adverse-events/{ae.pk}/retire/", {"reason": "x"},
                     format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "retired_at"


def test_a_grade_5_ae_is_not_retired(api, enrolled):
    load_ctcae_terms()
    subject = enrolled["subject"]
    death = DAY0 + dt.timedelta(days=10)
    ae = record_ae(subject, SEPSIS, [(5, death, death)], death_date=death, serious=True,
                   sae_death=True, aware_at=timezone.now(), outcome="fatal")
    api.force_authenticate(enrolled["nurse"])
    response = api.post(f"/api/v1/adverse-events/{ae.pk}/retire/", {"reason": "x"},
                        format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "grade"
    ae.refresh_from_db()
    assert ae.retired_at is None
