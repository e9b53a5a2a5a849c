"""Core Celery tasks."""

from celery import shared_task

from .outbox import requeue_pending as _requeue_pending


@shared_task(name="edc.tasks.requeue_pending")
def requeue_pending() -> int:
    """Celery beat (every minute): send again work the broker never accepted."""
    return _requeue_pending()
