"""Celery tasks of data management (queued through the outbox, idempotent)."""

from celery import shared_task

from edc.outbox import OutboxTask, enqueue


@shared_task(base=OutboxTask, name="data_management.tasks.run_edit_checks")
def run_edit_checks(subject_id: int) -> int:
    """Run the edit checks of one subject; returns how many queries it opened."""
    from subjects.models import Subject

    from . import edit_checks

    return len(edit_checks.run_edit_checks(Subject.objects.get(pk=subject_id)))


def queue_edit_checks(subject) -> None:
    """Queue the edit checks of ``subject`` after the current transaction commits."""
    enqueue(run_edit_checks, subject.pk)
