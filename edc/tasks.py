"""Core Celery tasks."""

from celery import shared_task

from .outbox import requeue_pending as _requeue_pending


@shared_task(name="edc.tasks.requeue_pending")
def requeue_pending() -> int:
    """Celery beat (every ``OUTBOX_SWEEP_SECONDS``): send again work the broker never
    accepted, or whose worker died mid-task."""
    return _requeue_pending()
