"""Safety alerts: who is told, what is recorded, and delivery by email exactly once.

Hooks, called by the domain services inside the transaction of the event they report:

* :func:`notify_new_sae` (an AE is recorded as, or becomes, serious; ICH E2A),
* :func:`notify_sae_overdue` (the SAE 24-hour report clock has run out; ICH E2A),
* :func:`notify_toxicity_flag` (a DLT/TI flag becomes effective, or is overridden),
* :func:`notify_death` (a grade 5 AE, CTCAE v5.0: "death related to AE"),
* :func:`notify_safety_stop` (dose finding stops an arm for safety),
* :func:`notify_epro_due` (a patient's ePRO questionnaire is not completed by the middle of
  its visit's window: a reminder to the site's team, not a safety alert).

Messages are written in the site's language (``NOTIFICATION_LANGUAGES``, by the site's
country; English for trial-wide alerts and unlisted countries), Django i18n.

Each writes one :class:`~notifications.models.Notification` per recipient (the site's
investigators and the trial's sponsor safety contacts), at most once per event and recipient,
and queues its delivery through the transactional outbox (``edc.core.outbox``): nothing is sent
unless the event is committed, and nothing is lost when the broker is down.

Delivery (:func:`deliver`) locks the notification row, sends the email and marks it sent in
the same transaction, so a repeated or concurrent delivery sends nothing more. When the mail
server is unreachable the notification stays ``pending`` with the error, and
:func:`deliver_due` (Celery beat, every minute) tries again with exponential back-off
(``NOTIFICATION_RETRY_BASE_SECONDS`` doubled per failure, at most
``NOTIFICATION_RETRY_MAX_SECONDS``). A recipient refused by the server is ``failed``.

EDC safety defaults: messages carry no direct identifier (study subject id only) and name the
CTCAE term, not the verbatim text; in a blinded trial every message is written blinded (arm by
its neutral label, product names masked, ``trials.masking.product_masker``) whoever receives
it, since an email cannot check its reader's access. A trial without any recipient still gets
a ``failed`` notification saying so, visible in the admin and the API.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse
from django.utils import timezone, translation

from edc.core import roles
from edc.core.audit import change_reason
from edc.core.outbox import enqueue
from trials.masking import product_masker

from . import messages
from .messages import Alert, Kind
from .models import Notification, SafetyContact

logger = logging.getLogger(__name__)

NO_RECIPIENT = ("no recipient: the trial has no sponsor safety contact and the site no "
                "investigator with an email address")


@dataclass(frozen=True)
class Recipient:
    kind: str
    email: str
    user: object = None


def recipients(trial, site=None) -> list[Recipient]:
    """The trial's sponsor safety contacts and the investigators (active users in the
    ``investigator`` role with an email) whose membership covers ``site`` (that site or all
    sites; any site of the trial when ``site`` is None), one per email address."""
    memberships = Q(trial=trial, user=OuterRef("pk"), retired_at__isnull=True)
    if site is not None:
        memberships &= Q(site__isnull=True) | Q(site=site)
    from subjects.models import Membership

    investigators = (get_user_model().objects
                     .filter(is_active=True, groups__name=roles.INVESTIGATOR)
                     .exclude(email="")
                     .filter(Exists(Membership.objects.filter(memberships)))
                     .distinct().order_by("email"))
    found: dict[str, Recipient] = {}
    for contact in SafetyContact.objects.filter(trial=trial, retired_at__isnull=True):
        found.setdefault(contact.email.lower(), Recipient(
            Notification.RecipientKind.SAFETY_CONTACT, contact.email))
    for user in investigators:
        found.setdefault(user.email.lower(), Recipient(
            Notification.RecipientKind.INVESTIGATOR, user.email, user))
    return list(found.values())


def site_team(trial, site) -> list[Recipient]:
    """The site's own team: active site staff and investigators with an email whose membership
    covers ``site`` (reminders go to them, not to the sponsor)."""
    from subjects.models import Membership

    covering = Q(trial=trial, user=OuterRef("pk"), retired_at__isnull=True) & (
        Q(site__isnull=True) | Q(site=site))
    users = (get_user_model().objects
             .filter(is_active=True, groups__name__in=[roles.SITE_STAFF, roles.INVESTIGATOR])
             .exclude(email="").filter(Exists(Membership.objects.filter(covering)))
             .distinct().order_by("email"))
    found: dict[str, Recipient] = {}
    for user in users:
        found.setdefault(user.email.lower(), Recipient(
            Notification.RecipientKind.INVESTIGATOR
            if roles.has_role(user, roles.INVESTIGATOR) else Notification.RecipientKind.SITE_STAFF,
            user.email, user))
    return list(found.values())


def language_of(site) -> str:
    """The language a site's messages are written in (``NOTIFICATION_LANGUAGES``)."""
    country = (getattr(site, "country", "") or "").strip()
    return settings.NOTIFICATION_LANGUAGES.get(country, settings.LANGUAGE_CODE)


def _url(name: str, pk: int) -> str:
    return settings.TRIALDESK_BASE_URL.rstrip("/") + reverse(name, args=[pk])


def _masker(trial, protocol_version_id: int):
    return product_masker(protocol_version_id) if trial.is_blinded else (lambda text: text)


def _ae_alert(ae, kind: Kind, link: str | None = None, **extra) -> Alert:
    subject = ae.subject
    mask = _masker(subject.trial, subject.protocol_version_id)
    return Alert(
        kind=kind, trial=subject.trial.registry_id, site=subject.site.code,
        subject=str(subject), event=mask(ae.term.term), grade=ae.grade, onset=ae.onset_date,
        aware_at=ae.aware_at,
        link=link or _url("admin:adverse_events_adverseevent_change", ae.pk), **extra)


@transaction.atomic
def _record(alert: Alert, event_key: str, *, trial, site=None, subject=None,
            adverse_event=None, arm=None, people=None) -> list[Notification]:
    """One notification per recipient (``people``, default the site's investigators and the
    sponsor's safety contacts; none twice for the same event), delivery queued."""
    with translation.override(language_of(site)):
        title, body = messages.render(alert, translation.gettext)
    people = (recipients(trial, site) if people is None else people) or [
        Recipient(Notification.RecipientKind.NONE, "")]
    now = timezone.now()
    rows = []
    for person in people:
        nobody = person.kind == Notification.RecipientKind.NONE
        row, created = Notification.objects.get_or_create(
            event_key=event_key, recipient_email=person.email, defaults={
                "kind": alert.kind, "trial": trial, "site": site, "subject": subject,
                "adverse_event": adverse_event, "arm": arm,
                "subject_study_id": alert.subject, "event_term": alert.event,
                "grade": alert.grade, "event_date": alert.onset, "link": alert.link,
                "recipient_kind": person.kind, "recipient_user": person.user,
                "message_subject": title[:300], "body": body,
                "state": Notification.State.FAILED if nobody else Notification.State.PENDING,
                "last_error": NO_RECIPIENT if nobody else "",
                "next_attempt_at": None if nobody else now + _retry_delay(1),
            })
        if created and nobody:
            logger.error("safety alert %s of trial %s has no recipient", event_key,
                         trial.registry_id)
        elif created:
            enqueue("notifications.tasks.deliver_notification", row.pk)
        rows.append(row)
    return rows


def notify_new_sae(ae) -> list[Notification]:
    """A new serious AE (ICH E2A II.B): tell the site's investigators and the sponsor."""
    return _record(_ae_alert(ae, Kind.SAE), f"sae:ae:{ae.pk}", trial=ae.subject.trial,
                   site=ae.subject.site, subject=ae.subject, adverse_event=ae)


def notify_sae_overdue(ae, due_at) -> list[Notification]:
    """The SAE was not reported to the sponsor by ``due_at`` (24 h after awareness, ICH E2A;
    the clock is the adverse-event app's)."""
    return _record(_ae_alert(ae, Kind.SAE_OVERDUE, due_at=due_at), f"sae_overdue:ae:{ae.pk}",
                   trial=ae.subject.trial, site=ae.subject.site, subject=ae.subject,
                   adverse_event=ae)


def notify_death(ae) -> list[Notification]:
    """A grade 5 AE (CTCAE v5.0 grade 5: death related to AE); a fatal SAE is also alerted
    as a new SAE (two events: the SAE clock and the death)."""
    return _record(_ae_alert(ae, Kind.DEATH, death_date=ae.death_date), f"death:ae:{ae.pk}",
                   trial=ae.subject.trial, site=ae.subject.site, subject=ae.subject,
                   adverse_event=ae)


def notify_toxicity_flag(flag, *, overridden: bool = False) -> list[Notification]:
    """A DLT/TI flag that became effective (computed by the protocol rule), or any
    investigator's override of one (set or cleared). The flag's reason and the override's
    free text are not quoted (they may name products); the link opens the flag."""
    if overridden:
        state = {True: "set", False: "cleared", None: "override removed"}[flag.override]
        status = f"{flag.kind} {state} by an investigator's override"
        key = f"toxicity_flag:{flag.pk}:override:{flag.override_at.isoformat()}"
    else:
        status = f"{flag.kind} met by the protocol rule"
        key = f"toxicity_flag:{flag.pk}:computed:{flag.evaluated_at.isoformat()}"
    ae = flag.adverse_event
    alert = _ae_alert(ae, Kind.TOXICITY_FLAG, flag=flag.kind, rule=flag.rule_code,
                      status=status, link=_url("admin:adverse_events_toxicityflag_change",
                                               flag.pk))
    return _record(alert, key, trial=ae.subject.trial, site=ae.subject.site,
                   subject=ae.subject, adverse_event=ae)


def notify_safety_stop(trial, arm, reason_text: str, *, key: str | None = None
                       ) -> list[Notification]:
    """Dose finding has stopped ``arm`` of ``trial`` for safety: tell every investigator of
    the trial and its sponsor safety contacts, once per ``key`` (default: the arm and the
    reason text, so calling it again for the same stop tells nobody twice).

    ``reason_text`` is shown as given in an open-label trial; in a blinded trial product
    names are masked and the arm is named by its neutral label.
    """
    mask = _masker(trial, arm.protocol_version_id)
    shown_arm = (arm.blinded_label or "blinded arm") if trial.is_blinded else arm.code
    alert = Alert(kind=Kind.SAFETY_STOP, trial=trial.registry_id, arm=shown_arm,
                  reason=mask(reason_text.strip()),
                  link=_url("admin:trials_trial_dashboard", trial.pk))
    key = key or hashlib.sha256(reason_text.strip().encode()).hexdigest()[:32]
    return _record(alert, f"safety_stop:arm:{arm.pk}:{key}"[:200], trial=trial, arm=arm)


def notify_epro_due(visit, midpoint: dt.date) -> list[Notification]:
    """The patient's ePRO QLQ-C30 of ``visit`` is not completed by the middle of the visit's
    window (``midpoint``): remind the site's team, once per visit. No product or arm named."""
    subject = visit.subject
    with translation.override(language_of(subject.site)):
        status = translation.gettext(
            "not completed by %(day)s (middle of the window %(low)s .. %(high)s)") % {
            "day": midpoint.isoformat(), "low": visit.window_low.isoformat(),
            "high": visit.window_high.isoformat()}
    alert = Alert(kind=Kind.EPRO_DUE, trial=subject.trial.registry_id, site=subject.site.code,
                  subject=str(subject), event=f"QLQ-C30 (ePRO), {visit.code}", status=status,
                  link=_url("admin:subjects_subject_change", subject.pk))
    return _record(alert, f"epro_due:visit:{visit.pk}", trial=subject.trial, site=subject.site,
                   subject=subject, people=site_team(subject.trial, subject.site))


# ------------------------------------------------------------------------------- delivery


def _retry_delay(attempts: int) -> dt.timedelta:
    return messages.retry_delay(attempts, base=settings.NOTIFICATION_RETRY_BASE_SECONDS,
                                cap=settings.NOTIFICATION_RETRY_MAX_SECONDS)


def deliver(notification_id: int, *, skip_locked: bool = False) -> str | None:
    """Send one pending notification and mark it sent in the same transaction (row locked:
    concurrent or repeated deliveries send it once). Returns its state afterwards (None when
    the row is locked by another delivery and ``skip_locked``)."""
    with transaction.atomic():
        row = (Notification.objects.select_for_update(skip_locked=skip_locked)
               .filter(pk=notification_id).first())
        if row is None:
            return None
        if row.state != Notification.State.PENDING:
            return row.state
        message = EmailMessage(row.message_subject, row.body, to=[row.recipient_email],
                               headers={"X-Trialdesk-Notification": str(row.pk)})
        row.attempts += 1
        now = timezone.now()
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            row.state, row.last_error, row.next_attempt_at = (
                Notification.State.FAILED, f"recipient refused: {exc}"[:2000], None)
            reason = "safety alert refused by the mail server"
        except (smtplib.SMTPException, OSError) as exc:
            row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            row.next_attempt_at = now + _retry_delay(row.attempts)
            reason = "safety alert delivery failed; retried later"
            logger.warning("safety alert %s not delivered (attempt %s): %s", row.pk,
                           row.attempts, type(exc).__name__)
        else:
            row.state, row.sent_at, row.last_error, row.next_attempt_at = (
                Notification.State.SENT, now, "", None)
            reason = "safety alert sent"
        with change_reason(reason):
            row.save(update_fields=["state", "attempts", "last_error", "next_attempt_at",
                                    "sent_at", "updated_at"])
        return row.state


def deliver_due(now: dt.datetime | None = None) -> int:
    """Try again every pending notification whose next attempt is due; returns how many were
    sent. Rows another delivery holds are skipped (it is sending them)."""
    now = now or timezone.now()
    ids = Notification.objects.filter(
        state=Notification.State.PENDING, next_attempt_at__lte=now,
    ).order_by("next_attempt_at", "id").values_list("pk", flat=True)
    return sum(deliver(pk, skip_locked=True) == Notification.State.SENT for pk in list(ids))
