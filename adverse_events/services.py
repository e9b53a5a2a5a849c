"""Adverse-event services, called explicitly by the API, the admin, other apps and the tasks.

Each writing service validates first (``adverse_events.validation``; nothing is saved when it
refuses), runs in one transaction, needs a reason for change on saved records and queues the
subject's DLT/TI re-evaluation on commit.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from edc.core.audit import (
    ReasonRequired,
    change_reason,
    checked_together,
    current_reason,
    subject_transaction,
)
from edc.core.outbox import enqueue, inserted_together
from notifications import services as alerts
from subjects.models import Subject
from trials.masking import attribution_targets

from .cohorts import dose_finding_courses  # noqa: F401  (public service)
from .evaluation import evaluate_toxicity  # noqa: F401  (public service)
from .models import AdverseEvent, Attribution, GradeEpisode, ToxicityFlag
from .toxicity import SAE_REPORT_WINDOW
from .validation import AttributionDraft, EpisodeDraft, validate

logger = logging.getLogger(__name__)

AE_FIELDS = (
    "term", "verbatim_term", "onset_date", "resolution_date", "serious", *AdverseEvent.CRITERIA,
    "expected", "action_taken", "outcome", "aware_at", "death_date",
)


def queue_toxicity_evaluation(subject: Subject | int) -> None:
    """Queue the subject's DLT/TI (re)evaluation on commit (through the outbox).

    Call it whenever an AE, a grade episode, an attribution or an exposure of the subject
    changes; the task is idempotent, so queuing it twice is harmless.
    """
    enqueue("adverse_events.tasks.evaluate_toxicity",
            subject if isinstance(subject, int) else subject.pk)


def active_episodes(ae: AdverseEvent) -> list[EpisodeDraft]:
    return [EpisodeDraft(e.grade, e.start_date, e.end_date, e.pk)
            for e in ae.grade_episodes.all() if e.retired_at is None]


def active_attributions(ae: AdverseEvent) -> list[AttributionDraft]:
    return [AttributionDraft(a.intervention, a.level)
            for a in ae.attributions.all() if a.retired_at is None]


def save_adverse_event(subject: Subject, values: dict, episodes: list[EpisodeDraft] | None,
                       attributions: list[AttributionDraft] | None, *,
                       instance: AdverseEvent | None = None, user=None,
                       locked: bool = False, interventions=None, exposures=None
                       ) -> AdverseEvent:
    """Create (``instance=None``) or change an AE with its episodes and attributions, in one
    transaction; ``locked`` (a new AE): the caller's transaction holds ``subject``'s row lock
    (read ``FOR UPDATE`` with its trial: :func:`locked_subjects`), so the subject is not read
    again and the writes join that transaction (a refusal rolls it back); ``interventions``:
    ``{protocol version id: its interventions}`` the caller read in that transaction;
    ``exposures``: ``{subject id: its (intervention id, administered on) pairs}`` the caller
    read in that transaction after the lock was granted (used for a new AE under ``locked``
    only: otherwise the lock is taken here, and they are read after it).

    ``values`` holds AE fields (missing ones keep the instance's); ``episodes`` and
    ``attributions`` are the complete new lists (None = unchanged): episodes are matched by
    id, attributions by intervention; saved rows left out are retired, never deleted.
    A grade 5 AE records the subject's death (``subjects.services.record_death``). A new
    SAE (or an AE becoming serious) and a new grade 5 are alerted (``notifications``).
    The episodes and attributions this call created are on the AE (``created_rows``); the
    tasks it queues (edit checks, DLT/TI evaluation) are inserted in one outbox ``INSERT``.
    """
    with subject_transaction(locked), inserted_together():
        return _save_adverse_event(subject, values, episodes, attributions, instance, user,
                                   locked, interventions or {},
                                   (exposures or {}) if locked and instance is None else {})


def locked_subjects(subjects):
    """``subjects`` (a queryset) read ``FOR UPDATE`` with their trials, as
    :func:`save_adverse_event` locks the AE's subject: the clinical rules run under that lock."""
    return subjects.select_for_update(of=("self",)).select_related("trial")


def _save_adverse_event(subject, values, episodes, attributions, instance, user, locked,
                        interventions, exposures):
    if instance is not None:
        if current_reason() is None:
            raise ReasonRequired("adverse event")
        instance = AdverseEvent.objects.select_for_update().get(pk=instance.pk)
        subject = instance.subject
        merged = {name: getattr(instance, name) for name in (*AE_FIELDS, "reported_at")}
    else:
        merged = {}
    if instance is not None or not locked:
        subject = locked_subjects(Subject.objects.all()).get(pk=subject.pk)
    merged.update(values)
    episodes = active_episodes(instance) if episodes is None else episodes
    attributions = active_attributions(instance) if attributions is None else attributions
    # blinded trials: one per masking group
    targets = attribution_targets(subject, interventions.get(subject.protocol_version_id))
    attributions = [AttributionDraft(targets.get(a.intervention.pk, a.intervention), a.level)
                    for a in attributions]
    _check_episode_ids(instance, episodes)
    validate(subject, merged, episodes, attributions, targets=targets,
             exposures=exposures.get(subject.pk))

    ae = instance or AdverseEvent(subject=subject)
    was_serious, was_grade = ae.serious and instance is not None, ae.grade
    for name in AE_FIELDS:
        if name in merged:
            setattr(ae, name, merged[name])
    ae.grade = max(e.grade for e in episodes)
    with checked_together():  # the AE and its new rows: one lock-and-signature check
        ae.save()
        # the rows this call created: for a new AE all its episodes and attributions
        ae.created_rows = (_save_episodes(ae, episodes, creating=instance is None),
                           _save_attributions(ae, attributions, creating=instance is None))
    if ae.grade == 5:
        from subjects.services import record_death

        record_death(subject, ae.death_date, user=user, source=f"grade 5 adverse event {ae.pk}")
    if ae.serious and not was_serious:
        alerts.notify_new_sae(ae)
    if ae.grade == 5 and was_grade != 5:
        alerts.notify_death(ae)
    queue_toxicity_evaluation(subject)
    return ae


def _check_episode_ids(instance, episodes) -> None:
    known = set() if instance is None else {e.id for e in active_episodes(instance)}
    for i, episode in enumerate(episodes):
        if episode.id is not None and episode.id not in known:
            raise ValidationError({f"grade_episodes[{i}].id": (
                f"Grade episode {episode.id} is not a current episode of this AE.")})


def _retire(row, reason: str) -> None:
    row.retired_at = timezone.now()
    row.retired_reason = reason
    row.save()


def _save_episodes(ae: AdverseEvent, episodes: list[EpisodeDraft], creating: bool
                   ) -> list[GradeEpisode]:
    """Write the episodes; the ones created are returned."""
    existing = {} if creating else {
        e.pk: e for e in GradeEpisode.objects.filter(adverse_event=ae, retired_at__isnull=True)
    }
    created = []
    for draft in episodes:
        row = existing.pop(draft.id, None) if draft.id is not None else None
        new = {"grade": draft.grade, "start_date": draft.start_date, "end_date": draft.end_date}
        if row is None:
            created.append(GradeEpisode.objects.create(adverse_event=ae, **new))
        elif any(getattr(row, k) != v for k, v in new.items()):
            for k, v in new.items():
                setattr(row, k, v)
            row.save()
    for row in existing.values():
        _retire(row, "grade episode removed from the adverse event")
    return created


def _save_attributions(ae: AdverseEvent, drafts: list[AttributionDraft], creating: bool
                       ) -> list[Attribution]:
    """Write the attributions; the ones created are returned."""
    existing = {} if creating else {
        a.intervention_id: a
        for a in Attribution.objects.filter(adverse_event=ae, retired_at__isnull=True)
    }
    created = []
    for draft in drafts:
        row = existing.pop(draft.intervention.pk, None)
        if row is None:
            created.append(Attribution.objects.create(
                adverse_event=ae, intervention=draft.intervention, level=draft.level))
        elif row.level != draft.level:
            row.level = draft.level
            row.save()
    for row in existing.values():
        _retire(row, "attribution removed from the adverse event")
    return created


@transaction.atomic
def report_sae(ae: AdverseEvent, user=None, reported_at: dt.datetime | None = None
               ) -> AdverseEvent:
    """Record the site's report of a serious AE to the sponsor (stops the 24-hour clock)."""
    ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
    reported_at = reported_at or timezone.now()
    if not ae.serious:
        raise ValidationError({"serious": "Only a serious AE is reported on the SAE clock."})
    if ae.reported_at is not None:
        raise ValidationError({"reported_at": f"Already reported at {ae.reported_at}."})
    if reported_at < ae.aware_at:
        raise ValidationError({"reported_at": "Reported before the site became aware."})
    if reported_at > timezone.now():
        raise ValidationError({"reported_at": "The report time is in the future."})
    with change_reason("SAE reported to the sponsor", user):
        ae.reported_at, ae.reported_by = reported_at, user
        ae.save(update_fields=["reported_at", "reported_by", "updated_at"])
    return ae


@transaction.atomic
def retire_adverse_event(ae: AdverseEvent, reason: str, user=None) -> AdverseEvent:
    """An AE entered in error (the wrong subject, a duplicate): retired with the reason, kept
    with its grade episodes, attributions and audit trail, never deleted. It leaves the SAE
    clock, the DLT/TI evaluation (re-run on commit) and the exports. A grade 5 AE is not
    retired: it recorded the subject's death, which a retirement would not undo."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the adverse event is retired (entered in "
                                         "error)."})
    ae = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
    if ae.retired_at is not None:
        raise ValidationError({"retired_at": "this adverse event is already retired"})
    if ae.grade == 5:
        raise ValidationError({"grade": (
            "a grade 5 adverse event recorded the subject's death, which retiring it would "
            "not undo: it is not retired")})
    ae.retire(f"entered in error: {reason.strip()}", user)
    queue_toxicity_evaluation(ae.subject_id)
    return ae


def overdue_saes(now: dt.datetime | None = None):
    """Serious AEs not reported to the sponsor more than 24 h after awareness (ICH E2A)."""
    return AdverseEvent.objects.sae_status("overdue", now=now)


@transaction.atomic
def raise_overdue_saes(now: dt.datetime | None = None) -> int:
    """Mark newly overdue SAEs (``sae_overdue_raised_at``), log and alert them; idempotent.

    The log names the AE, trial and site only (no personal data).
    """
    now = now or timezone.now()
    rows = list(overdue_saes(now).filter(sae_overdue_raised_at__isnull=True)
                .select_for_update(skip_locked=True, of=("self",))
                .select_related("subject__trial", "subject__site"))
    if not rows:
        return 0
    with change_reason("SAE report overdue: not reported 24 h after awareness (ICH E2A)"):
        for ae in rows:
            ae.sae_overdue_raised_at = now
            ae.save(update_fields=["sae_overdue_raised_at", "updated_at"])
            logger.warning(
                "SAE report overdue: adverse event %s, trial %s, site %s, due %s", ae.pk,
                ae.subject.trial.registry_id, ae.subject.site.code,
                (ae.aware_at + SAE_REPORT_WINDOW).isoformat(),
            )
            alerts.notify_sae_overdue(ae, ae.aware_at + SAE_REPORT_WINDOW)
    return len(rows)


@transaction.atomic
def override_flag(flag: ToxicityFlag, value: bool | None, reason: str, user) -> ToxicityFlag:
    """An investigator's override of a DLT/TI flag (``None`` clears it), with a reason;
    alerted (``notifications``)."""
    if not reason or not reason.strip():
        raise ValidationError({"reason": "A reason is required to override a flag."})
    flag = ToxicityFlag.objects.select_for_update().get(pk=flag.pk)
    with change_reason(f"flag override: {reason.strip()}", user):
        flag.override = value
        flag.override_reason = reason.strip()
        flag.override_by = user
        flag.override_at = timezone.now()
        flag.save()
    alerts.notify_toxicity_flag(flag, overridden=True)
    return flag
