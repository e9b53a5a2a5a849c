"""Celery tasks of the adverse-events app.

* ``evaluate_toxicity``: queued through the outbox (``services.queue_toxicity_evaluation``)
  whenever an AE, a grade episode or an exposure changes; idempotent.
* ``raise_overdue_saes`` (beat, every 5 minutes): SAEs not reported 24 h after awareness.
* ``reevaluate_ongoing_toxicity`` (beat, daily): an ongoing grade episode lengthens without
  any data change, so subjects with one are re-evaluated every day.
"""

from celery import shared_task
from django.db import transaction

from edc.core.outbox import OutboxTask

from . import services
from .models import GradeEpisode


@shared_task(base=OutboxTask, name="adverse_events.tasks.evaluate_toxicity")
def evaluate_toxicity(subject_id: int) -> int:
    """Recompute the subject's DLT/TI flags; returns the number of flags."""
    return len(services.evaluate_toxicity(subject_id))


@shared_task(name="adverse_events.tasks.raise_overdue_saes")
def raise_overdue_saes() -> int:
    """Raise SAEs whose 24-hour report to the sponsor is overdue (ICH E2A); idempotent."""
    return services.raise_overdue_saes()


@shared_task(name="adverse_events.tasks.reevaluate_ongoing_toxicity")
def reevaluate_ongoing_toxicity() -> int:
    """Queue the evaluation of every subject with an ongoing grade episode."""
    subject_ids = set(GradeEpisode.objects.filter(
        end_date__isnull=True, retired_at__isnull=True,
        adverse_event__retired_at__isnull=True,
    ).values_list("adverse_event__subject_id", flat=True))
    with transaction.atomic():
        for subject_id in sorted(subject_ids):
            services.queue_toxicity_evaluation(subject_id)
    return len(subject_ids)
