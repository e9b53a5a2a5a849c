"""Edit checks run by themselves: every write to a record a check reads queues the subject's
checks through the outbox (once per transaction), and the checks open and close their own
queries -- in a real Celery worker."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from data_management.models import Query
from edc.core.audit import change_reason
from edc.core.models import PendingTask
from tests.conftest import wait_for
from tests.factories import make_user
from tests.integration.test_visits import enrolled_subject
from visits import services
from visits.models import Exposure

TASK = "data_management.tasks.run_edit_checks"


@pytest.mark.django_db
def test_writes_queue_the_checks_once_per_subject_and_transaction():
    # The test runs in one transaction (never committed): enrollment (subject and visit
    # saves) and two recorded visits are many writes, and queue the checks once.
    subject = enrolled_subject("SHEH-MSC-L")
    assert PendingTask.objects.filter(task_name=TASK, args=[subject.pk]).count() == 1
    services.record_visit(subject.visits.get(code="C1"), subject.day0)
    services.record_visit(subject.visits.get(code="C2"), dt.date(2025, 1, 27))
    assert PendingTask.objects.filter(task_name=TASK, args=[subject.pk]).count() == 1


def _open(subject, code: str, **where) -> list[Query]:
    return list(Query.objects.filter(subject=subject, check_code=code, state="open", **where))


def _idle() -> bool:
    return not PendingTask.objects.exclude(state="done").exists()


@pytest.mark.django_db(transaction=True)
def test_checks_open_and_close_their_queries_after_saves(celery_worker):
    subject = enrolled_subject("SHEH-MSC-L")
    wait_for(_idle)
    services.record_visit(subject.visits.get(code="C1"), subject.day0)
    c2 = subject.visits.get(code="C2")  # target 2025-01-27, no window: done 3 days late
    services.record_visit(c2, dt.date(2025, 1, 30))
    wait_for(lambda: _open(subject, "visit_out_of_window", object_id=c2.pk))

    exposure = services.record_exposure(
        subject.visits.get(code="C1"), intervention=subject.protocol_version.interventions.get(
            code="MSC-L"), administered_on=subject.day0, dose_value=Decimal("1000000"),
        dose_unit="cells/kg", weight_kg=Decimal("61.5"),
        user=make_user("nurse-ec", "site_staff", (subject.trial, subject.site)))
    # a bulk path past the door: the plausibility check catches it on the data
    with change_reason("bulk import of weights"):
        Exposure.objects.filter(pk=exposure.pk).update(weight_kg=Decimal("0.2"))
    wait_for(lambda: _open(subject, "implausible_value", field_name="weight_kg"))

    with change_reason("weight corrected against source"):
        exposure.weight_kg = Decimal("61.0")
        exposure.save()
    wait_for(lambda: not _open(subject, "implausible_value"))
    closed = Query.objects.get(subject=subject, check_code="implausible_value")
    assert closed.state == "closed" and closed.closed_by is None
    assert _open(subject, "visit_out_of_window", object_id=c2.pk)  # untouched: still true
