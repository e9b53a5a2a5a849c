"""ePRO services: wording per trial and language, one-time links, the patient's answers,
submission into the QLQ-C30 scoring path, and data clarifications.

Each validates before it writes (``ValidationError`` naming the field, in the request's
language; nothing saved on refusal), runs in one transaction and records its reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from edc.core.audit import change_reason
from edc.core.exceptions import ConflictValidationError
from visits import qlq_c30
from visits.models import QlqC30Form, Visit
from visits.services import check_qlq_form

from . import tokens, wording
from .models import EproClarification, EproLink, EproWording

#: Session setting the database trigger on ``visits_qlqc30form`` (migration 0002) asks for
#: before it lets a row be written as, or changed while, patient-completed.
PATIENT_WRITER = "trialdesk.epro_writer"


@contextmanager
def patient_writer():
    """Let this transaction write ePRO forms (the patient's submission, a clarification)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, 'on', true)", [PATIENT_WRITER])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, '', true)", [PATIENT_WRITER])


# ---------------------------------------------------------------- wording


def wording_for(trial, language: str) -> EproWording | None:
    return EproWording.objects.filter(trial=trial, language=language,
                                      retired_at__isnull=True).first()


def languages_loaded(trial) -> list[str]:
    """The languages the trial loaded licensed wording in, in ``settings.LANGUAGES`` order."""
    loaded = set(EproWording.objects.filter(trial=trial, retired_at__isnull=True)
                 .values_list("language", flat=True))
    return [code for code, _name in settings.LANGUAGES if code in loaded]


def default_language(trial) -> str | None:
    row = EproWording.objects.filter(trial=trial, is_default=True,
                                     retired_at__isnull=True).first()
    return row.language if row else None


@transaction.atomic
def load_wording(trial, text: str, source_name: str, *, default: bool = False,
                 user=None) -> EproWording:
    """Load a licensed wording file for ``trial`` (``epro.wording`` format); it replaces the
    trial's wording in that language (the old one retired, kept). ``default``: the language
    links are issued in when none is named (the trial's default ePRO language)."""
    try:
        parsed = wording.parse(text)
    except wording.WordingError as exc:
        raise ValidationError({"file": exc.problems}) from None
    digest = hashlib.sha256(text.encode()).hexdigest()
    current = wording_for(trial, parsed.language)
    if current is not None and current.digest == digest and (current.is_default or not default):
        return current
    for old in EproWording.objects.filter(trial=trial, retired_at__isnull=True).filter(
            language=parsed.language):
        old.retire(f"replaced by {source_name}", user)
    if default:
        with change_reason(f"default ePRO language now {parsed.language}", user):
            for old in EproWording.objects.filter(trial=trial, is_default=True,
                                                  retired_at__isnull=True):
                old.is_default = False
                old.save()
    return EproWording.objects.create(
        trial=trial, language=parsed.language, version=parsed.version, licence=parsed.licence,
        document=parsed.as_document(), source_name=source_name[:200], digest=digest,
        is_default=default or default_language(trial) is None)


# ---------------------------------------------------------------- links


def window_of(visit: Visit) -> tuple[dt.date, dt.date] | None:
    low = visit.window_low or visit.target_date
    high = visit.window_high or visit.target_date
    return (low, high) if low and high else None


def check_unlocked(visit: Visit) -> None:
    """Refuse (``ConflictValidationError`` code ``locked``: API 409) when the visit's QLQ-C30
    could not be written: its visit, subject or trial is frozen or locked by data management
    (the CRF write guard, ``edc.core.hooks.write_guard``; ICH E6(R3) 3.16.1)."""
    guard = QlqC30Form.data_management_hooks()
    if guard is not None:
        guard.check_unlocked(QlqC30Form(subject_id=visit.subject_id, visit=visit))


def _end_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def check_issuable(visit: Visit, language: str | None) -> str:
    """The language to issue a link in, or ``ValidationError``: a scheduled QLQ-C30 of a
    planned or done visit whose window has not ended, with no form yet, in a language whose
    licensed wording the trial loaded."""
    subject = visit.subject
    if not visit.qlq_c30_due:
        raise ValidationError({"visit": _("The protocol schedules no QLQ-C30 at this visit.")})
    check_qlq_form(subject, visit, None)
    if visit.retired_at or visit.status not in (Visit.Status.PLANNED, Visit.Status.DONE):
        raise ValidationError({"visit": _("A link is issued for a planned or done visit.")})
    window = window_of(visit)
    if window is None:
        raise ValidationError({"visit": _("This visit has no window.")})
    if window[1] < timezone.localdate():
        raise ValidationError({"visit": _("The window of this visit has ended (%(date)s).")
                               % {"date": window[1].isoformat()}})
    if QlqC30Form.objects.filter(visit=visit, retired_at__isnull=True).exists():
        raise ValidationError({"visit": _("A QLQ-C30 form is already recorded for this "
                                          "visit.")})
    check_unlocked(visit)
    language = wording.language_code(language) if language else default_language(subject.trial)
    if language is None or wording_for(subject.trial, language) is None:
        raise ValidationError({"language": _(
            "No licensed QLQ-C30 wording is loaded for this trial in this language: load it "
            "first (manage.py load_epro_wording).")})
    return language


@transaction.atomic
def issue_link(visit: Visit, language: str | None = None, user=None) -> tuple[EproLink, str]:
    """A new one-time link for the visit's QLQ-C30 and its token (shown once, never stored);
    an open link of the same visit is revoked (replaced)."""
    visit = Visit.objects.select_for_update().select_related("subject__trial").get(pk=visit.pk)
    language = check_issuable(visit, language)
    for old in EproLink.objects.select_for_update().filter(
            visit=visit, submitted_at__isnull=True, revoked_at__isnull=True):
        _revoke(old, "replaced by a new link", user)
    now = timezone.now()
    token = tokens.new_token()
    expires = min(now + dt.timedelta(hours=settings.EPRO_LINK_TTL_HOURS),
                  _end_of(window_of(visit)[1]))
    link = EproLink.objects.create(subject=visit.subject, visit=visit, language=language,
                                   token_digest=tokens.digest(token), issued_by=user,
                                   expires_at=expires)
    return link, token


def link_url(token: str) -> str:
    """The address the patient opens (the token is its only parameter)."""
    return settings.TRIALDESK_BASE_URL.rstrip("/") + reverse("epro:start", args=[token])


def qr_svg(url: str) -> str:
    """The link as a QR code (SVG markup; ``qrcode``, error correction M)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage,
                        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10)
    return image.to_string(encoding="unicode")


def _revoke(link: EproLink, reason: str, user=None) -> None:
    with change_reason(f"ePRO link revoked: {reason}", user):
        link.revoked_at = timezone.now()
        link.revoked_reason = reason
        link.save()


@transaction.atomic
def revoke_link(link: EproLink, reason: str, user=None) -> EproLink:
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say why the link is revoked.")})
    link = EproLink.objects.select_for_update().get(pk=link.pk)
    if link.submitted_at or link.revoked_at:
        raise ValidationError({"link": _("This link is no longer open.")})
    _revoke(link, reason.strip(), user)
    return link


# ---------------------------------------------------------------- the patient


@dataclass
class LinkRefused(Exception):
    """A link the patient may not use (``status``: HTTP status of the page)."""

    code: str
    status: int

    def message(self) -> str:
        return {
            "unknown": _("This link is not valid."),
            "submitted": _("This questionnaire has already been completed. Thank you."),
            "revoked": _("This link has been withdrawn. Please ask the study team for a new "
                         "one."),
            "expired": _("This link has expired. Please ask the study team for a new one."),
            "not_yet": _("This questionnaire cannot be completed yet: please open the link on "
                         "the day of your visit."),
            "window_ended": _("The time to complete this questionnaire has passed. Please "
                              "contact the study team."),
            "other_device": _("This link is already open on another device. Please ask the "
                              "study team for a new one."),
            "locked": _("This questionnaire can no longer be accepted: the study team has "
                        "closed the data of this visit. Please contact the study team."),
        }[self.code]


def find_link(token: str) -> EproLink:
    link = EproLink.objects.select_related("visit", "subject__trial").filter(
        token_digest=tokens.digest(token)).first()
    if link is None:
        raise LinkRefused("unknown", 404)
    return link


def check_usable(link: EproLink, device_token: str | None, now=None) -> None:
    """Refuse a link that was submitted, revoked, has expired, is outside its visit's window,
    is open on another device or whose visit's data are frozen or locked (``LinkRefused``)."""
    now = now or timezone.now()
    state = link.state(now)
    if state != EproLink.State.ACTIVE:
        raise LinkRefused(state, 410)
    window = window_of(link.visit)
    today = timezone.localdate(now)
    if window is None or today < window[0]:
        raise LinkRefused("not_yet", 403)
    if today > window[1]:
        raise LinkRefused("window_ended", 410)
    if link.device_digest and not tokens.matches(device_token or "", link.device_digest):
        raise LinkRefused("other_device", 403)
    try:
        check_unlocked(link.visit)
    except ConflictValidationError:
        raise LinkRefused("locked", 409) from None


@transaction.atomic
def open_link(token: str, device_token: str | None) -> tuple[EproLink, str | None]:
    """The usable link of ``token``; on its first opening it is bound to this device (the
    returned new device token, for a cookie)."""
    link = find_link(token)
    link = EproLink.objects.select_for_update().select_related(
        "visit", "subject__trial").get(pk=link.pk)
    check_usable(link, device_token)
    if link.device_digest:
        return link, None
    device = tokens.new_token()
    with change_reason("ePRO link opened by the patient"):
        link.device_digest = tokens.digest(device)
        link.opened_at = timezone.now()
        link.save()
    return link, device


@transaction.atomic
def switch_language(link: EproLink, language: str) -> EproLink:
    """The patient's choice of language for the rest of the questionnaire: one the trial
    loaded wording in (``ValueError`` otherwise); the link records it (audited)."""
    code = wording.language_code(language)
    if code not in languages_loaded(link.subject.trial):
        raise ValueError(f"no wording loaded in {language!r}")
    link = EproLink.objects.select_for_update().get(pk=link.pk)
    if link.language != code:
        with change_reason(f"patient switched the questionnaire to {code}"):
            link.language = code
            link.save()
    return link


def answer_value(item: int, raw) -> int | None:
    """A submitted answer as an item value (None: not answered); ``ValueError`` if invalid."""
    if raw in (None, ""):
        return None
    value = int(raw)
    if not 1 <= value <= wording.ITEM_SCALE[item]:
        raise ValueError(f"q{item}: {value} is outside 1-{wording.ITEM_SCALE[item]}")
    return value


@transaction.atomic
def save_answer(link: EproLink, item: int, value: int | None) -> EproLink:
    link = EproLink.objects.select_for_update().get(pk=link.pk)
    if link.answers.get(str(item)) == value and str(item) in link.answers:
        return link
    with change_reason(f"patient answered item {item}" if value is not None
                       else f"patient left item {item} unanswered"):
        link.answers = {**link.answers, str(item): value}
        link.save()
    return link


def unanswered(link: EproLink) -> list[int]:
    return [n for n in wording.ITEM_SCALE if link.answers.get(str(n)) is None]


def _device_time(raw: str | None) -> dt.datetime | None:
    try:
        value = parse_datetime(raw or "")
    except ValueError:
        return None
    if value is None or timezone.is_naive(value):
        return None
    return value


@transaction.atomic
def submit(link: EproLink, device_token: str | None, device_time: str | None = None
           ) -> QlqC30Form:
    """The patient's answers as a patient-completed QLQ-C30 form (mode ``epro``, completion
    date the site's date, server and device times on the link), scored and used for
    deterioration by the same task as staff entry (``QlqC30Form.queue_scoring``). Unanswered
    items stay missing (EORTC scoring manual, 3rd ed., "Missing data")."""
    link = EproLink.objects.select_for_update().select_related("visit", "subject").get(
        pk=link.pk)
    check_usable(link, device_token)
    now = timezone.now()
    values = {f"q{n}": link.answers.get(str(n)) for n in wording.ITEM_SCALE}
    qlq_c30.score(values)  # refuses an impossible value before anything is written
    check_qlq_form(link.subject, link.visit, timezone.localdate(now))
    try:
        with patient_writer():
            form = QlqC30Form.objects.create(subject=link.subject, visit=link.visit,
                                             completion_date=timezone.localdate(now),
                                             mode=QlqC30Form.Mode.EPRO, **values)
    except ConflictValidationError:  # locked since check_usable, by a concurrent request
        raise LinkRefused("locked", 409) from None
    form.queue_scoring()
    with change_reason("questionnaire completed by the patient (ePRO)"):
        link.submitted_at = now
        link.device_submitted_at = _device_time(device_time)
        link.form = form
        link.save()
    return form


# ---------------------------------------------------------------- clarification


@transaction.atomic
def clarify(form: QlqC30Form, *, item: str, new_value: int | None, reason: str,
            patient_confirmation: str, confirmed_on: dt.date, user) -> EproClarification:
    """Correct one answer of a patient-completed form: only with the patient's confirmation
    and a reason, recorded as a data clarification; the form is rescored."""
    form = QlqC30Form.objects.select_for_update().get(pk=form.pk)
    if form.mode != QlqC30Form.Mode.EPRO:
        raise ValidationError({"form": _("Only patient-completed (ePRO) forms are clarified "
                                         "here; correct a staff-entered form directly.")})
    if item not in qlq_c30.ITEM_KEYS:
        raise ValidationError({"item": _("Name an item q1-q30.")})
    if new_value is not None and not 1 <= new_value <= qlq_c30.ITEM_MAX[item]:
        raise ValidationError({"new_value": _("Answer %(item)s with 1-%(top)s, or leave it "
                                              "empty.") % {"item": item,
                                                           "top": qlq_c30.ITEM_MAX[item]}})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("A data clarification needs a reason.")})
    if not (patient_confirmation or "").strip():
        raise ValidationError({"patient_confirmation": _(
            "A patient-reported answer is changed only with the patient's confirmation.")})
    if confirmed_on is None or confirmed_on > timezone.localdate():
        raise ValidationError({"confirmed_on": _("The date of the patient's confirmation "
                                                 "cannot be in the future.")})
    old = getattr(form, item)
    if old == new_value:
        raise ValidationError({"new_value": _("This is the recorded answer already.")})
    text = (f"ePRO data clarification of {item}: {reason.strip()} "
            f"(patient confirmation: {patient_confirmation.strip()})")
    clarification = EproClarification.objects.create(
        form=form, subject_id=form.subject_id, item=item, old_value=old, new_value=new_value,
        reason=reason.strip(), patient_confirmation=patient_confirmation.strip(),
        confirmed_on=confirmed_on, recorded_by=user)
    with patient_writer(), change_reason(text, user):
        setattr(form, item, new_value)
        form.save()
    form.queue_scoring()
    return clarification


# ---------------------------------------------------------------- reminders and completion


def midpoint(low: dt.date, high: dt.date) -> dt.date:
    """The middle day of a visit window (rounded down): the reminder date."""
    return low + (high - low) // 2


def forms_due_for_reminder(today: dt.date | None = None) -> list[tuple[Visit, dt.date]]:
    """Scheduled QLQ-C30s of trials that use ePRO (licensed wording loaded) with no form yet,
    whose window is open and past its middle day: ``(visit, middle day)``."""
    from django.db.models import Exists, OuterRef

    today = today or timezone.localdate()
    epro_trials = EproWording.objects.filter(retired_at__isnull=True).values("trial")
    forms = QlqC30Form.objects.filter(visit=OuterRef("pk"), retired_at__isnull=True)
    visits = (Visit.objects.filter(
        ~Exists(forms), qlq_c30_due=True, retired_at__isnull=True,
        subject__trial__in=epro_trials, status__in=[Visit.Status.PLANNED, Visit.Status.DONE],
        window_low__lte=today, window_high__gte=today)
        .select_related("subject__trial", "subject__site").order_by("pk"))
    return [(v, middle) for v in visits
            if (middle := midpoint(v.window_low, v.window_high)) <= today]


def remind_due_forms(today: dt.date | None = None) -> int:
    """Tell each site of its patients' ePRO forms not completed by the window's middle day
    (``notifications.services.notify_epro_due``, once per visit); returns how many visits."""
    from notifications.services import notify_epro_due

    due = forms_due_for_reminder(today)
    for visit, middle in due:
        notify_epro_due(visit, middle)
    return len(due)


def completion_by_visit(visits) -> list[dict]:
    """ePRO completion per visit code of ``visits`` (the scheduled QLQ-C30s the reader may
    see): scheduled, completed by the patient, entered by staff, open links, missing."""
    from django.db.models import Count, Exists, OuterRef, Q

    forms = QlqC30Form.objects.filter(visit=OuterRef("pk"), retired_at__isnull=True)
    open_links = EproLink.objects.active().filter(visit=OuterRef("pk"))
    rows = (visits.filter(qlq_c30_due=True, retired_at__isnull=True)
            .exclude(status__in=[Visit.Status.CANCELLED])
            .annotate(has_form=Exists(forms), by_patient=Exists(forms.filter(mode="epro")),
                      link_open=Exists(open_links))
            .values("code")
            .annotate(scheduled=Count("pk"),
                      patient=Count("pk", filter=Q(by_patient=True)),
                      staff=Count("pk", filter=Q(has_form=True, by_patient=False)),
                      links=Count("pk", filter=Q(link_open=True, has_form=False)),
                      missing=Count("pk", filter=Q(has_form=False)))
            .order_by("code"))
    return list(rows)
