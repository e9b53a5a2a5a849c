"""Queue Celery work so that it is never lost (transactional outbox).

``enqueue(task_name, *args)`` records a :class:`~edc.core.models.PendingTask` in the caller's
transaction and sends it to the broker on commit. If the broker is unreachable the data is
still saved and the work stays pending; :func:`requeue_pending` (a Celery beat task and a
management command) sends it again once the broker is back. Tasks declared with
``base=OutboxTask`` mark their row done in the same transaction as their effects, so a
message delivered twice does the work once.

A worker killed mid-task (OOM, node lost) leaves its message unacknowledged until the
broker's visibility timeout (an hour). The sweep does not wait for it: a task a worker
started (``started_at``) more than ``OUTBOX_ORPHAN_AFTER_SECONDS`` ago whose row is no longer
locked by that worker's transaction (a live worker holds ``SELECT ... FOR UPDATE`` on it
until it commits) lost its worker, and is sent again; with the sweep every
``OUTBOX_SWEEP_SECONDS`` it runs again well within a minute, still exactly once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import timedelta

from celery import Task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import PendingTask

logger = logging.getLogger(__name__)


#: Inside :func:`inserted_together`: (connection, its savepoints, the rows not yet inserted).
_deferred: ContextVar[tuple | None] = ContextVar("outbox_deferred", default=None)


def enqueue(task_name: str, *args) -> PendingTask:
    """Record work for the task registered as ``task_name`` and dispatch it after the current
    transaction commits. By name: a service never imports its tasks (tasks import services).

    Rows enqueued in the same savepoint of a transaction (same ``savepoint_ids``: they commit
    or roll back together) are sent by one on-commit callback and marked queued in one
    ``UPDATE`` (:func:`dispatch_all`); a row in another savepoint gets a callback of its own,
    which Django drops if that savepoint rolls back. Inside :func:`inserted_together` the row
    is inserted when the block ends."""
    pending = PendingTask(task_name=task_name, args=list(args))
    connection = transaction.get_connection()
    deferred = _deferred.get()
    if (deferred is not None and deferred[0] is connection and connection.in_atomic_block
            and deferred[1] == _savepoints(connection)):
        deferred[2].append(pending)
    else:
        _record([pending], connection)
    return pending


@contextlib.contextmanager
def inserted_together() -> Iterator[None]:
    """The rows enqueued inside the block, in the transaction and savepoint it started in, are
    inserted in one ``INSERT`` when it ends (a service queuing several tasks for one write);
    if it ends with an exception, its transaction or savepoint rolls back, and they are not
    inserted. A row enqueued in a savepoint opened inside the block (which may roll back
    alone), or outside a transaction, is inserted at once."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        yield
        return
    rows: list[PendingTask] = []
    token = _deferred.set((connection, _savepoints(connection), rows))
    try:
        yield
    finally:
        _deferred.reset(token)
    if rows:
        _record(rows, connection)


def _record(rows: list[PendingTask], connection) -> None:
    """Insert the rows (one statement) and have them sent on commit."""
    PendingTask.objects.bulk_create(rows)
    batch = _open_batch(connection)
    if batch is not None:
        batch.extend(rows)
        return
    batch = list(rows)

    def send():
        dispatch_all(batch)

    transaction.on_commit(send)
    if connection.in_atomic_block:
        connection._outbox_batch = (send, _savepoints(connection), batch)


def _savepoints(connection) -> list[str]:
    """The savepoints a rollback may discard on-commit callbacks of (an ``atomic`` block
    without a savepoint has none of its own)."""
    return [sid for sid in connection.savepoint_ids if sid is not None]


def _open_batch(connection) -> list | None:
    """The rows of this transaction whose on-commit callback is still registered, with the
    same savepoints as now (None if there is none)."""
    last = getattr(connection, "_outbox_batch", None)
    if last is None or not connection.in_atomic_block:
        return None
    send, savepoints, batch = last
    if savepoints != _savepoints(connection) or not any(
            func is send for _, func, _ in connection.run_on_commit):
        return None
    return batch


def dispatch(pending: PendingTask | int) -> bool:
    """Send one pending task (the row or its id) to the broker; False (and left pending) if
    that fails. ``enqueue`` passes the rows it wrote: sent on the commit that made them
    visible, they are not read back (a sweep that sends one too is a duplicate delivery, done
    once)."""
    if not isinstance(pending, PendingTask):
        pending = PendingTask.objects.filter(pk=pending).first()
    if pending is None or pending.state == PendingTask.State.DONE:
        return False
    return bool(dispatch_all([pending]))


def dispatch_all(rows: list[PendingTask]) -> int:
    """Send the rows to the broker, then mark those sent queued in one ``UPDATE``; a row the
    broker refuses stays pending with the error. The number sent.

    The rows are published through one producer in one batch (kombu's ``Producer.batch``:
    with Redis, their messages in one pipeline, one round trip): each row is still a message
    of its own, delivered and marked done by its task independently. A row whose message
    cannot be made is refused alone; if the batch's round trip fails, every row of the batch
    stays pending (their delivery is uncertain: the sweep sends them again, and a message
    delivered twice does its work once)."""
    from celery import current_app as app

    if app.conf.task_always_eager:
        app.loader.import_default_modules()  # the apps' ``tasks`` modules (autodiscovery)
        for pending in rows:
            app.tasks[pending.task_name].apply(args=pending.args,
                                               kwargs={"pending_id": pending.pk})
        return len(rows)
    sent, refused = [], []
    try:
        with app.producer_or_acquire() as producer, producer.batch():
            for pending in rows:
                try:
                    app.send_task(pending.task_name, args=pending.args,
                                  kwargs={"pending_id": pending.pk}, retry=False,
                                  producer=producer)
                except Exception as exc:  # this message was refused: the others may go
                    refused.append(pending)
                    _keep_pending([pending], exc)
                else:
                    sent.append(pending)
    except Exception as exc:  # the broker is down or unreachable: keep them pending
        _keep_pending([p for p in rows if not any(p is r for r in refused)], exc)
        sent = []
    if sent:
        PendingTask.objects.filter(pk__in=[p.pk for p in sent],
                                   state=PendingTask.State.PENDING).update(
            state=PendingTask.State.QUEUED, queued_at=timezone.now()
        )
    return len(sent)


def _keep_pending(rows: list[PendingTask], exc: Exception) -> None:
    """The rows stay pending, with the broker's error."""
    logger.warning("broker unavailable, task(s) %s kept pending: %s",
                   [p.pk for p in rows], type(exc).__name__)
    PendingTask.objects.filter(pk__in=[p.pk for p in rows]).update(
        last_error=f"broker: {exc}"[:2000])


def prune_bookkeeping(now=None) -> dict[str, int]:
    """Delete finished outbox rows older than ``OUTBOX_KEEP_DAYS`` and idempotency records
    older than ``IDEMPOTENCY_KEEP_HOURS``: operational bookkeeping, not clinical data (which
    is never deleted), that would otherwise grow without bound. Pending and queued work stays.
    """
    from .models import IdempotencyRecord

    now = now or timezone.now()
    finished = PendingTask.objects.filter(
        state__in=[PendingTask.State.DONE, PendingTask.State.FAILED],
        created_at__lt=now - timedelta(days=settings.OUTBOX_KEEP_DAYS))
    stale = IdempotencyRecord.objects.filter(
        created_at__lt=now - timedelta(hours=settings.IDEMPOTENCY_KEEP_HOURS))
    return {"outbox": finished.delete()[0], "idempotency": stale.delete()[0]}


def requeue_pending(older_than_seconds: int | None = None) -> int:
    """Send again every task still pending (or queued and lost) for longer than the delay."""
    if older_than_seconds is None:
        older_than_seconds = settings.OUTBOX_REQUEUE_AFTER_SECONDS
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale_queued = timezone.now() - timedelta(seconds=settings.CELERY_BROKER_TRANSPORT_OPTIONS[
        "visibility_timeout"
    ])
    ids = list(
        PendingTask.objects.filter(
            state=PendingTask.State.PENDING, created_at__lte=cutoff
        ).values_list("pk", flat=True)
    ) + list(
        PendingTask.objects.filter(
            state=PendingTask.State.QUEUED, queued_at__lte=stale_queued
        ).values_list("pk", flat=True)
    ) + orphaned()
    return sum(dispatch(pk) for pk in dict.fromkeys(ids))


def orphaned() -> list[int]:
    """Tasks whose worker died mid-task: started long ago, no longer locked by a worker's
    transaction. Marked re-sent (``started_at`` cleared) before they are sent again."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.OUTBOX_ORPHAN_AFTER_SECONDS)
    with transaction.atomic():
        ids = list(PendingTask.objects.select_for_update(skip_locked=True).filter(
            state=PendingTask.State.QUEUED, started_at__lte=cutoff,
        ).values_list("pk", flat=True))
        PendingTask.objects.filter(pk__in=ids).update(started_at=None, queued_at=now)
    if ids:
        logger.warning("re-sending %d task(s) whose worker died mid-task: %s", len(ids), ids)
    return ids


class OutboxTask(Task):
    """Celery task base: run once per :class:`PendingTask`, inside one transaction.

    The row is locked (``SELECT ... FOR UPDATE``) so concurrent deliveries serialise; a row
    already done makes the call a no-op. Errors are retried with back-off and recorded.
    """

    autoretry_for = (Exception,)
    retry_backoff = True
    retry_backoff_max = 300
    max_retries = 5

    def __call__(self, *args, pending_id: int | None = None, **kwargs):
        if pending_id is None:
            return self.run(*args, **kwargs)
        PendingTask.objects.filter(pk=pending_id).exclude(state=PendingTask.State.DONE).update(
            started_at=timezone.now())
        try:
            with transaction.atomic():
                pending = PendingTask.objects.select_for_update().filter(pk=pending_id).first()
                if pending is None or pending.state == PendingTask.State.DONE:
                    return None
                result = self.run(*args, **kwargs)
                pending.state = PendingTask.State.DONE
                pending.attempts += 1
                pending.finished_at = timezone.now()
                pending.last_error = ""
                pending.save(update_fields=["state", "attempts", "finished_at", "last_error"])
                return result
        except Exception as exc:
            PendingTask.objects.filter(pk=pending_id).update(last_error=repr(exc)[:2000],
                                                             started_at=None)
            if self.request.retries >= self.max_retries:
                PendingTask.objects.filter(pk=pending_id).update(state=PendingTask.State.FAILED)
            raise
