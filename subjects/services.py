"""Subject lifecycle services, called explicitly (never from signals).

Each service validates first and changes nothing when it refuses (``ValidationError``
naming the field), runs in one transaction and records the reason for change.
"""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from edc.core.audit import change_reason

from . import lifecycle, plausibility, signals
from .models import RandomizationSlot, Subject


def check_subject_values(birth_date: dt.date | None, consent_date: dt.date | None) -> None:
    """Plausibility at the door (``subjects.plausibility``): consent not in the future, a birth
    date not in the future and before consent; ``ValidationError`` naming the field."""
    today = timezone.localdate()
    problems = {}
    if (problem := plausibility.future_problem(consent_date, today)) is not None:
        problems["consent_date"] = problem
    if (problem := plausibility.birth_date_problem(birth_date, consent_date, today)) is not None:
        problems["birth_date"] = problem
    if problems:
        raise ValidationError(problems)


def _check_date(subject: Subject, on: dt.date, field: str) -> None:
    if on > timezone.localdate():
        raise ValidationError({field: f"{on.isoformat()} is in the future."})
    if on < subject.consent_date:
        raise ValidationError({field: f"{on.isoformat()} is before consent "
                                      f"({subject.consent_date.isoformat()})."})


@transaction.atomic
def change_status(subject: Subject, new: str, on: dt.date, reason: str, user=None) -> Subject:
    """Move a subject along the status graph (``subjects.lifecycle``) with a date and reason."""
    subject = Subject.objects.select_for_update().get(pk=subject.pk)
    try:
        lifecycle.check_transition(subject.status, new, reason)
    except ValueError as exc:
        raise ValidationError({"status": str(exc)}) from None
    _check_date(subject, on, "status_date")
    with change_reason(f"status {subject.status} -> {new}: {reason}", user):
        subject.status = new
        subject.status_date = on
        subject.status_reason = reason
        stops = new in (lifecycle.FOLLOW_UP, lifecycle.OFF_STUDY)
        if stops and subject.day0 and subject.treatment_stop_date is None:
            subject.treatment_stop_date = on
            subject.treatment_stop_reason = reason
        if new == lifecycle.OFF_STUDY and reason == "death" and subject.death_date is None:
            subject.death_date = on
        subject.save()
    _after_schedule_change(subject)
    return subject


@transaction.atomic
def stop_treatment(subject: Subject, on: dt.date, reason: str, user=None) -> Subject:
    """End treatment (progression, toxicity, ...): follow-up starts, the schedule is rebuilt."""
    return change_status(subject, lifecycle.FOLLOW_UP, on, reason, user)


@transaction.atomic
def record_death(subject: Subject, on: dt.date, user=None, source: str = "") -> Subject:
    """Record a death: the subject goes off study and every future visit is cancelled.

    A death date that disagrees with one already recorded is refused.
    """
    subject = Subject.objects.select_for_update().get(pk=subject.pk)
    if subject.death_date is not None:
        if subject.death_date != on:
            raise ValidationError({"death_date": (
                f"{on.isoformat()} disagrees with the subject's recorded death date "
                f"{subject.death_date.isoformat()}.")})
        return subject
    if subject.status == lifecycle.OFF_STUDY:
        _check_date(subject, on, "death_date")
        with change_reason(f"death recorded{': ' + source if source else ''}", user):
            subject.death_date = on
            subject.save(update_fields=["death_date", "updated_at"])
        return subject
    return change_status(subject, lifecycle.OFF_STUDY, on, "death", user)


def _after_schedule_change(subject: Subject) -> None:
    """Rebuild the subject's future visits (``signals.schedule_changed``)."""
    if subject.day0 is not None:
        signals.schedule_changed.send(sender=Subject, subject=subject,
                                      reason="schedule regenerated")


@transaction.atomic
def retire_subject(subject: Subject, reason: str, user=None) -> Subject:
    """A subject entered in error (a duplicate, the wrong trial or site): retired with the
    reason, kept with every record and the audit trail, never deleted (21 CFR 11.10(e)).
    From then on it is left out of lists, the status matrix, dose-finding cohorts and exports,
    and its planned visits are not overdue. A randomized subject is not retired: every
    randomized subject is analysed in the arm allocated (ICH E9 5.2.1, intention to treat);
    a wrong allocation is recorded as an allocation error instead."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the subject is retired (entered in error)."})
    subject = Subject.objects.select_for_update(no_key=True).get(pk=subject.pk)
    if subject.retired_at is not None:
        raise ValidationError({"retired_at": "this subject is already retired"})
    if RandomizationSlot.objects.filter(subject=subject).exists():
        raise ValidationError({"subject": (
            "a randomized subject stays in the analysis in the arm allocated (ICH E9, "
            "intention to treat) and is not retired; the unblinded statistician records an "
            "allocation error instead")})
    subject.retire(f"entered in error: {reason.strip()}", user)
    return subject
