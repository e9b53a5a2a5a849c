"""The patient's ePRO pages (issue 21): one item per screen, back before submitting, the
unanswered items listed (not forced), a confirmation, saved patient-completed (mode epro,
server and device time) and scored by the same Celery task as staff entry; staff cannot
change the answers, only a data clarification with the patient's confirmation and reason."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from edc.core.audit import change_reason, history
from edc.core.models import PendingTask
from epro import services
from epro.models import EproClarification, EproLink
from tests.conftest import wait_for
from tests.epro_factories import epro_subject
from visits.models import QlqC30Form, QlqC30Score

SKIPPED = (7, 21)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _open(client, api, nurse, visit) -> str:
    api.force_authenticate(nurse)
    response = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json")
    assert response.status_code == 201, response.json()
    return re.search(r"/epro/([\w-]{43})/$", response.json()["url"])[1]


def _complete(client, token: str, device_time: str = "2025-06-01T08:30:00+02:00"):
    start = client.get(f"/epro/{token}/")
    assert start.status_code == 200
    assert start["Referrer-Policy"] == "same-origin" and "no-store" in start["Cache-Control"]
    assert "【占位】生活质量问卷" in start.content.decode()
    for n in range(1, 31):
        page = client.get(f"/epro/{token}/item/{n}/")
        assert page.status_code == 200 and f"【占位】第{n}题" in page.content.decode()
        answer = {} if n in SKIPPED else {"answer": "2" if n < 29 else "5"}
        following = client.post(f"/epro/{token}/item/{n}/", {**answer, "go": "next"})
        assert following.status_code == 302
    # back from the review to item 30, change it, and forward again
    back = client.post(f"/epro/{token}/item/30/", {"answer": "6", "go": "back"})
    assert back["Location"].endswith(f"/epro/{token}/item/29/")
    review = client.get(f"/epro/{token}/review/")
    assert review.context["missing"] == list(SKIPPED)
    html = review.content.decode()
    for n in SKIPPED:
        assert f'href="/epro/{token}/item/{n}/"' in html
    return client.post(f"/epro/{token}/submit/", {"device_time": device_time})


@pytest.mark.django_db
def test_patient_completes_the_form_one_item_per_screen(client, api):
    subject, visit, nurse = epro_subject()
    token = _open(client, api, nurse, visit)
    bad = client.post(f"/epro/{token}/item/3/", {"answer": "9"})
    assert bad.status_code == 400 and bad.context["error"]
    before = timezone.now()
    done = _complete(client, token)
    assert done.status_code == 302 and "/epro/done/" in done["Location"]
    thanks = client.get(done["Location"])
    assert thanks.status_code == 200 and "感谢" in thanks.content.decode()
    form = QlqC30Form.objects.get(visit=visit)
    assert form.mode == "epro" and form.completion_date == timezone.localdate()
    assert [form.q7, form.q21, form.q1, form.q29, form.q30] == [None, None, 2, 5, 6]
    link = EproLink.objects.get(form=form)
    assert before <= link.submitted_at <= timezone.now()
    assert link.device_submitted_at == dt.datetime(2025, 6, 1, 6, 30, tzinfo=dt.UTC)
    assert PendingTask.objects.filter(task_name="visits.tasks.score_qlq_c30_form",
                                      args=[form.pk]).exists()
    assert QlqC30Score.objects.get(form=form).state == "pending"
    again = client.get(f"/epro/{token}/item/1/")
    assert again.status_code == 410 and again.context["code"] == "submitted"


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_patient_form_is_scored_by_the_same_task_as_staff_entry(client, api, celery_worker):
    subject, visit, nurse = epro_subject()
    _complete(client, _open(client, api, nurse, visit))
    form = QlqC30Form.objects.get(visit=visit)
    score = wait_for(lambda: QlqC30Score.objects.filter(form=form, state="done").first())
    assert pytest.approx((5.5 - 1) / 6 * 100) == score.QL2  # (q29 5 + q30 6) / 2
    assert pytest.approx((1 - (2 - 1) / 3) * 100) == score.PF2
    assert pytest.approx((2 - 1) / 3 * 100) == score.FA  # q10, q12, q18: answered
    assert pytest.approx((2 - 1) / 3 * 100) == score.SL  # q11 (single item)
    assert wait_for(lambda: subject.qlq_c30_deterioration.count() == 16)


@pytest.mark.django_db
def test_staff_cannot_change_patient_answers(client, api):
    subject, visit, nurse = epro_subject()
    _complete(client, _open(client, api, nurse, visit))
    form = QlqC30Form.objects.get(visit=visit)
    api.force_authenticate(nurse)
    patch = api.patch(f"/api/v1/qlq-c30-forms/{form.pk}/", {"q1": 4, "reason": "typo"},
                      format="json")
    assert patch.status_code == 400
    assert patch.json()["errors"][0]["code"] == "patient_reported"
    form.refresh_from_db()
    assert form.q1 == 2
    # whatever the path: the database refuses it too
    with pytest.raises(IntegrityError), transaction.atomic(), change_reason("by hand"):
        QlqC30Form.objects.filter(pk=form.pk).update(q1=4)
    # and nobody records an "ePRO" form but the patient
    other = subject.visits.get(code="A2")
    created = api.post("/api/v1/qlq-c30-forms/", {
        "subject": subject.pk, "visit": other.pk, "completion_date": str(timezone.localdate()),
        "mode": "epro", "q1": 1}, format="json")
    assert created.status_code == 400 and created.json()["errors"][0]["field"] == "mode"


@pytest.mark.django_db
def test_a_clarification_needs_the_patients_confirmation_and_a_reason_and_is_audited(
        client, api):
    subject, visit, nurse = epro_subject()
    _complete(client, _open(client, api, nurse, visit))
    form = QlqC30Form.objects.get(visit=visit)
    api.force_authenticate(nurse)
    body = {"form": form.pk, "item": "q7", "new_value": 3, "reason": "",
            "patient_confirmation": "", "confirmed_on": str(timezone.localdate())}
    refused = api.post("/api/v1/epro-clarifications/", body, format="json")
    assert refused.status_code == 400
    assert {e["field"] for e in refused.json()["errors"]} >= {"reason"}
    refused = api.post("/api/v1/epro-clarifications/", {**body, "reason": "skipped by mistake"},
                       format="json")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "patient_confirmation"
    done = api.post("/api/v1/epro-clarifications/", {
        **body, "reason": "skipped by mistake",
        "patient_confirmation": "patient confirmed 'quite a bit' at the visit"}, format="json")
    assert done.status_code == 201, done.json()
    assert done.json()["old_value"] is None and done.json()["recorded_by"] == nurse.pk
    form.refresh_from_db()
    assert form.q7 == 3
    last = history(form)[-1]
    assert last["changes"]["q7"] == [None, 3] and last["username"] == nurse.username
    assert "skipped by mistake" in last["reason"] and "patient confirmed" in last["reason"]
    assert EproClarification.objects.get().item == "q7"
    assert services.unanswered(EproLink.objects.get(form=form)) == list(SKIPPED)  # as sent
    assert PendingTask.objects.filter(task_name="visits.tasks.score_qlq_c30_form",
                                      args=[form.pk]).count() == 2
