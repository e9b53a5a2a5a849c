"""Celery tasks of data management (queued through the outbox, idempotent)."""

import logging

from celery import shared_task

from edc.core.outbox import OutboxTask

logger = logging.getLogger(__name__)


@shared_task(base=OutboxTask, name="data_management.tasks.run_edit_checks")
def run_edit_checks(subject_id: int) -> int:
    """Run the edit checks of one subject; returns how many queries it opened."""
    from django.contrib.contenttypes.models import ContentType

    from subjects.models import Subject

    from . import edit_checks

    ContentType.objects.clear_cache()  # a long-lived worker must not keep stale type ids
    return len(edit_checks.run_edit_checks(Subject.objects.get(pk=subject_id)))


@shared_task(base=OutboxTask, name="data_management.tasks.raise_overdue_visit_queries")
def raise_overdue_visit_queries() -> int:
    """Celery beat, daily: a query on every overdue visit (``Visit.objects.overdue()``),
    closed by the check once the visit is recorded or marked missed.  Overdue itself is not
    stored: it is computed wherever it is read.  Returns how many queries it opened."""
    from subjects.models import Subject
    from visits.models import Visit

    from . import edit_checks

    subjects = Subject.objects.filter(pk__in=Visit.objects.unlocked().overdue()
                                      .values("subject_id"))
    opened = sum(len(edit_checks.run_edit_checks(s, [edit_checks.overdue_visit_findings]))
                 for s in subjects.iterator())
    logger.info("overdue visits: %d new queries", opened)
    return opened
