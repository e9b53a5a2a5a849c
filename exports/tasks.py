"""Celery tasks of the exports app.

``run_export`` is queued through the outbox (``edc.core.outbox.enqueue``) when a background export
is requested. It is idempotent without holding a transaction for its whole run (progress must
be visible while it runs): the export record is claimed under a row lock, a done export is
left alone, and a delivery that finds the export running elsewhere (and not stale) does
nothing. The outbox row is marked done at the end, as ``edc.core.outbox.OutboxTask`` would.
"""

from celery import shared_task
from django.utils import timezone

from edc.core.models import PendingTask

from . import services


@shared_task(bind=True, name="exports.tasks.run_export", acks_late=True, max_retries=2,
             default_retry_delay=30)
def run_export(self, export_id: int, pending_id: int | None = None) -> str | None:
    """Write the export's file under MEDIA_ROOT/exports; returns its relative path."""
    try:
        result = services.run_background(export_id)
    except Exception as exc:
        if pending_id is not None:
            PendingTask.objects.filter(pk=pending_id).update(last_error=repr(exc)[:2000])
        if self.request.retries >= self.max_retries:
            if pending_id is not None:
                PendingTask.objects.filter(pk=pending_id).update(state=PendingTask.State.FAILED)
            raise
        raise self.retry(exc=exc) from exc
    if pending_id is not None:
        PendingTask.objects.filter(pk=pending_id).update(
            state=PendingTask.State.DONE, finished_at=timezone.now(), last_error="")
    return result
