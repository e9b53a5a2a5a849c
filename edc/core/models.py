"""Core models: the base of audit event rows, the outbox of work queued for Celery."""

from django.db import models
from django.utils import timezone

from .audit import AuditEvent, ClinicalModel  # noqa: F401  (re-exported for the apps)


class PendingTask(models.Model):
    """A unit of background work, written in the same transaction as the data it is about.

    The row is the source of truth: if the broker is down when the transaction commits the
    row stays ``pending`` and the periodic sweep re-queues it; a worker marks it ``done`` in
    the same transaction as its effects, so a task delivered twice runs once. A task whose
    worker was killed mid-task is re-sent by the sweep too (``started_at``).
    """

    class State(models.TextChoices):
        PENDING = "pending", "pending (not yet accepted by the broker)"
        QUEUED = "queued", "queued"
        DONE = "done", "done"
        FAILED = "failed", "failed"

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(
        null=True, blank=True,
        help_text="A worker took it (cleared when it fails or is re-sent); with the row "
                  "unlocked long after, its worker died (edc.core.outbox.requeue_pending)")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "created_at"])]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)} [{self.state}]"


class IdempotencyRecord(models.Model):
    """A POST sent with an ``Idempotency-Key``: claimed (no status yet) before the work
    starts, then the response, replayed on a retry (``edc.core.api.idempotency``)."""

    user = models.ForeignKey("auth.User", on_delete=models.PROTECT, db_index=False)
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True,
                                                   help_text="Empty while in progress")
    body = models.BinaryField(default=b"")
    content_type = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, help_text="Response headers replayed (ETag...)")
    created_at = models.DateTimeField(default=timezone.now, help_text="Claimed at")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
