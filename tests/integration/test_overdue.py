"""One definition of an overdue visit (``Visit.objects.overdue()``), computed where it is read:
the API, the admin and the dashboard agree at any moment, without the daily task."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user
from tests.integration.test_visits import enrolled_subject
from visits.models import Visit


def _api_overdue(api, subject) -> set[str]:
    codes, url, params = set(), "/api/v1/visits/", {"subject": subject.pk}
    while url:
        page = api.get(url, params).json()
        codes |= {v["code"] for v in page["results"] if v["overdue"]}
        url, params = page.get("next"), None
    filtered = api.get("/api/v1/visits/", {"subject": subject.pk, "overdue": "true",
                                           "page_size": 500}).json()["results"]
    assert {v["code"] for v in filtered} <= codes
    return codes


def _admin_overdue(client, subject) -> set[str]:
    page = client.get(reverse("admin:visits_visit_changelist"), {"overdue": "yes"})
    listed = {v.code for v in page.context["cl"].queryset if v.subject_id == subject.pk}
    flags = {v.code for v in page.context["cl"].queryset if v.is_overdue}
    assert listed == flags  # the column agrees with the filter
    return listed


def _dashboard_overdue(client, subject) -> set[str]:
    page = client.get(reverse("admin:trials_trial_dashboard", args=[subject.trial_id]))
    return {v.code for v in page.context["overdue_visits"] if v.subject_id == subject.pk}


@pytest.mark.django_db
def test_overdue_is_the_same_in_api_admin_and_dashboard_without_the_task(api, client):
    subject = enrolled_subject("SHEH-MSC-L")
    nurse = make_user("nurse-overdue", "site_staff", (subject.trial, subject.site))
    api.force_authenticate(nurse)
    client.force_login(nurse)
    today = timezone.localdate()
    expected = {v.code for v in subject.visits.all()
                if v.status == "planned" and v.window_high < today}
    assert expected  # day 0 was 2025-01-06: its windows have passed
    assert {v.code for v in Visit.objects.filter(subject=subject).overdue()} == expected
    assert _api_overdue(api, subject) == expected
    assert _admin_overdue(client, subject) == expected
    assert _dashboard_overdue(client, subject) == expected

    c1 = subject.visits.get(code="C1")
    assert api.post(f"/api/v1/visits/{c1.pk}/record/", {"actual_date": "2025-01-06"},
                    format="json").json()["overdue"] is False
    expected.discard("C1")
    assert _api_overdue(api, subject) == expected
    assert _admin_overdue(client, subject) == expected
    assert _dashboard_overdue(client, subject) == expected


@pytest.mark.django_db(transaction=True)
def test_daily_task_only_raises_queries_which_close_when_the_visit_is_recorded(celery_worker):
    """The beat task opens one query per overdue visit (idempotent, in a real worker); the
    edit checks queued by the visit's save close it once the visit is recorded."""
    from django.db import transaction

    from data_management.models import Query
    from data_management.tasks import raise_overdue_visit_queries
    from edc.core.models import PendingTask
    from edc.core.outbox import enqueue
    from tests.conftest import wait_for
    from visits import services

    subject = enrolled_subject("SHEH-MSC-L")
    wait_for(lambda: not PendingTask.objects.exclude(state="done").exists())
    expected = set(Visit.objects.filter(subject=subject).overdue().values_list("pk", flat=True))
    for _ in range(2):
        with transaction.atomic():
            enqueue(raise_overdue_visit_queries.name)
        wait_for(lambda: not PendingTask.objects.exclude(state="done").exists())
        queries = Query.objects.filter(subject=subject, check_code="visit_overdue")
        assert set(queries.values_list("object_id", flat=True)) == expected
        assert queries.count() == len(expected) and not queries.exclude(state="open").exists()
    assert not Visit.objects.filter(subject=subject, pk__in=expected).exclude(
        status="planned").exists()  # the task changed no visit

    c1 = subject.visits.get(code="C1")
    services.record_visit(c1, subject.day0)
    wait_for(lambda: Query.objects.get(check_code="visit_overdue", object_id=c1.pk).state
             == "closed")
    closed = Query.objects.get(check_code="visit_overdue", object_id=c1.pk)
    assert closed.closed_by is None and closed.messages.last().action == "close"
    assert Query.objects.filter(subject=subject, check_code="visit_overdue",
                                state="open").count() == len(expected) - 1
