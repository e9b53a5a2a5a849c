"""Core Celery tasks."""

import logging

from celery import shared_task

from .outbox import prune_bookkeeping as _prune_bookkeeping
from .outbox import requeue_pending as _requeue_pending

logger = logging.getLogger(__name__)


@shared_task(name="edc.core.tasks.requeue_pending")
def requeue_pending() -> int:
    """Celery beat (every ``OUTBOX_SWEEP_SECONDS``): send again work the broker never
    accepted, or whose worker died mid-task."""
    return _requeue_pending()


@shared_task(name="edc.core.tasks.prune_bookkeeping")
def prune_bookkeeping() -> dict[str, int]:
    """Celery beat (hourly): drop old finished outbox rows and idempotency records."""
    return _prune_bookkeeping()


@shared_task(name="edc.core.tasks.verify_audit_trail")
def verify_audit_trail() -> list[str]:
    """Celery beat (hourly, ``AUDIT_VERIFY_SECONDS``): recompute the audit hash chains and
    check the signed contexts; log each problem (table, row id, kind: no clinical data)."""
    from .audit_integrity import heads, verify

    problems = [str(p) for p in verify()]
    for problem in problems:
        logger.error("audit trail: %s", problem)
    if not problems:
        logger.info("audit trail verified; heads %s",
                    {table: head for table, (_, head) in heads().items()})
    return problems
