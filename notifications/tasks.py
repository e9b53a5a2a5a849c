"""Celery tasks of the safety alerts.

* ``deliver_notification``: queued through the outbox by ``notifications.services`` when a
  notification is recorded; sends it once (``services.deliver``).
* ``deliver_due_notifications`` (beat, every minute): retries notifications the mail server
  did not accept, with back-off.
"""

from celery import shared_task

from edc.core.outbox import OutboxTask

from . import services


@shared_task(base=OutboxTask, name="notifications.tasks.deliver_notification")
def deliver_notification(notification_id: int) -> str | None:
    """Send one notification if it is still pending; returns its state."""
    return services.deliver(notification_id)


@shared_task(name="notifications.tasks.deliver_due_notifications")
def deliver_due_notifications() -> int:
    """Retry the pending notifications whose next attempt is due; returns how many were sent."""
    return services.deliver_due()
