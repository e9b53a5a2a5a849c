"""ePRO and data management locks (issue 21): a visit, subject or trial frozen or locked by a
data manager accepts no patient form. The patient's page says so (409, a page, not a server
error), nothing is saved; the API refuses a link or a clarification with 409 in the
project's error shape."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from data_management import locks
from epro.models import EproClarification, EproLink
from tests.epro_factories import epro_subject
from tests.factories import make_user
from visits.models import QlqC30Form

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _token(api, nurse, visit) -> str:
    api.force_authenticate(nurse)
    response = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["url"].rstrip("/").rsplit("/", 1)[1]


def _data_manager(trial):
    return make_user(f"epro-dm-{trial.pk}", "data_manager", (trial, None))


@pytest.mark.parametrize("level", ["visit", "subject"])
def test_a_patient_cannot_submit_into_locked_data(client, api, level):
    subject, visit, nurse = epro_subject()
    token = _token(api, nurse, visit)
    assert client.get(f"/epro/{token}/").status_code == 200
    client.post(f"/epro/{token}/item/1/", {"answer": "2", "go": "next"})
    locks.change_lock(_data_manager(subject.trial), level,
                      visit if level == "visit" else subject, "lock")
    submitted = client.post(f"/epro/{token}/submit/", {"device_time": ""})
    assert submitted.status_code == 409
    assert submitted.context["code"] == "locked"
    html = submitted.content.decode()
    assert "无法再接受" in html and 'lang="zh-hans"' in html  # the link's language
    assert not QlqC30Form.objects.filter(visit=visit).exists()
    link = EproLink.objects.get(visit=visit)
    assert link.submitted_at is None and link.form is None
    reopened = client.get(f"/epro/{token}/item/2/")
    assert reopened.status_code == 409 and reopened.context["code"] == "locked"


def test_no_link_is_issued_for_a_locked_visit(api):
    subject, visit, nurse = epro_subject()
    locks.change_lock(_data_manager(subject.trial), "visit", visit, "freeze")
    api.force_authenticate(nurse)
    refused = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "locked"
    assert not EproLink.objects.exists()


def test_a_clarification_of_a_locked_form_is_refused_with_409(client, api):
    subject, visit, nurse = epro_subject()
    token = _token(api, nurse, visit)
    client.get(f"/epro/{token}/")
    assert client.post(f"/epro/{token}/submit/", {"device_time": ""}).status_code == 302
    form = QlqC30Form.objects.get(visit=visit)
    locks.change_lock(_data_manager(subject.trial), "visit", visit, "lock")
    api.force_authenticate(nurse)
    refused = api.post("/api/v1/epro-clarifications/", {
        "form": form.pk, "item": "q7", "new_value": 3, "reason": "skipped by mistake",
        "patient_confirmation": "confirmed at the visit",
        "confirmed_on": str(timezone.localdate())}, format="json")
    assert refused.status_code == 409, refused.content
    assert refused.json()["errors"][0]["code"] == "locked"
    assert not EproClarification.objects.exists()
    form.refresh_from_db()
    assert form.q7 is None
