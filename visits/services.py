"""Visit-side services called explicitly by the API, the admin and the tasks."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from edc.outbox import enqueue
from subjects.models import Subject

from . import qlq_c30
from .models import ComputationState, QlqC30Deterioration, QlqC30Form, QlqC30Score


def queue_qlq_scoring(form: QlqC30Form) -> None:
    """Mark the form's scores pending and queue scoring + deterioration on commit."""
    from .tasks import score_qlq_c30_form

    QlqC30Score.objects.update_or_create(
        form=form, defaults={"state": ComputationState.PENDING, "error": ""}
    )
    enqueue(score_qlq_c30_form, form.pk)


def score_form(form_id: int) -> QlqC30Score:
    """Score one form (EORTC QLQ-C30 Scoring Manual, 3rd ed.) and store the result."""
    form = QlqC30Form.objects.get(pk=form_id)
    values = qlq_c30.score(form.responses())
    score, _ = QlqC30Score.objects.update_or_create(
        form=form,
        defaults={**values, "state": ComputationState.DONE, "error": "",
                  "computed_at": timezone.now()},
    )
    return score


def start_date_of(subject: Subject):
    """Time-to-deterioration origin: the enrollment date (day 0 or consent as fall-backs)."""
    return subject.enrolled_on or subject.day0 or subject.consent_date


@transaction.atomic
def recompute_deterioration(subject_id: int) -> list[QlqC30Deterioration]:
    """Recompute time to deterioration of every scale of one subject from all its forms.

    The subject row is locked so two runs for one subject serialise; the result is one row
    per subject and scale whatever the number of runs.
    """
    subject = Subject.objects.select_for_update().get(pk=subject_id)
    forms = list(
        QlqC30Score.objects.filter(
            form__subject=subject, form__retired_at__isnull=True, state=ComputationState.DONE
        ).select_related("form").order_by("form__completion_date", "form_id")
    )
    start = start_date_of(subject)
    results = []
    for scale in qlq_c30.SCALES:
        ttd = qlq_c30.time_to_deterioration(
            scale, start, [(s.form.completion_date, getattr(s, scale)) for s in forms]
        )
        row, _ = QlqC30Deterioration.objects.update_or_create(
            subject=subject, scale=scale,
            defaults={"event": ttd.event, "event_date": ttd.event_date,
                      "confirm_date": ttd.confirm_date, "censor_date": ttd.censor_date,
                      "days": ttd.days},
        )
        results.append(row)
    return results
