"""Celery tasks of the visits app (queued through the outbox, idempotent)."""

from celery import shared_task

from edc.core.outbox import OutboxTask

from . import services
from .models import ComputationState, QlqC30Score


class QlqScoringTask(OutboxTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo):
        """Show the failure on the form's scores (the admin and the API display it)."""
        QlqC30Score.objects.filter(form_id=args[0]).update(
            state=ComputationState.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000]
        )


@shared_task(base=QlqScoringTask, name="visits.tasks.score_qlq_c30_form")
def score_qlq_c30_form(form_id: int) -> None:
    """Score a QLQ-C30 form, then recompute its subject's deterioration for every scale."""
    score = services.score_form(form_id)
    services.recompute_deterioration(score.form.subject_id)
