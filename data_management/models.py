"""Queries, source data verifications, signatures and locks on any CRF record.

Every row names its target generically (``content_type`` + ``object_id`` and, for queries and
verifications, an optional ``field_name``) and stores the trial, site, subject and visit the
target belongs to, so that scoping (``edc.core.roles.scope``) and counting never join through the
CRF tables. When a subject moves to another site, its rows follow it (a database trigger,
migration ``0002_records_follow_subject_site``). All are audited clinical records
(21 CFR 11.10(e), ICH E6(R3) 2.12): every state change is an UPDATE with its reason and user
in the audit trail (``edc.core.audit.history``).
"""

from __future__ import annotations

import copy
import datetime as dt

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from edc.core.audit import ClinicalModel, audited
from subjects.models import Subject

from . import workflow as wf

USER = settings.AUTH_USER_MODEL


def _user(**kwargs) -> models.ForeignKey:
    return models.ForeignKey(USER, on_delete=models.PROTECT, related_name="+", **kwargs)


class TargetedRecord(ClinicalModel):
    """Base: the target (record, optionally a field) and the scoping columns."""

    #: These records are data management itself, not data under management (no locks/SDV).
    data_managed = False

    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT, related_name="+")
    site = models.ForeignKey("subjects.Site", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+")
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    visit = models.ForeignKey("visits.Visit", on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    target_label = models.CharField(max_length=300, help_text="The target, as shown to users")

    class Meta:
        abstract = True

    @property
    def form(self) -> str:
        return f"{self.content_type.app_label}.{self.content_type.model}"


def _unindexed(name: str) -> models.Field:
    """``TargetedRecord``'s field ``name`` without its own index, for a subclass with an index
    or unique constraint that leads with it. A copy, so it keeps its place among the fields."""
    field = copy.deepcopy(TargetedRecord._meta.get_field(name))
    field.db_index = False
    return field


@audited
class Query(TargetedRecord):
    """A question on a record or one of its fields, raised by a monitor, a data manager or an
    edit check, answered by the site and closed by its opener (ICH E6(R3) 3.16.1)."""

    content_type = _unindexed("content_type")

    class State(models.TextChoices):
        OPEN = wf.OPEN, "open"
        ANSWERED = wf.ANSWERED, "answered"
        CLOSED = wf.CLOSED, "closed"

    class Origin(models.TextChoices):
        MANUAL = "manual", "raised by a user"
        SYSTEM = "system", "raised by an edit check"

    field_name = models.CharField(max_length=100, blank=True)
    text = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.MANUAL)
    check_code = models.CharField(max_length=40, blank=True,
                                  help_text="The edit check that raised it (system queries)")
    check_value = models.CharField(max_length=200, blank=True,
                                   help_text="The values the edit check flagged")
    opened_by = _user(null=True, blank=True, help_text="Empty for system queries")
    opened_at = models.DateTimeField(default=timezone.now, help_text="Last (re-)opened, UTC")
    answer = models.TextField(blank=True)
    answered_by = _user(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    closed_by = _user(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(
                fields=["check_code", "content_type", "object_id", "field_name"],
                condition=models.Q(origin="system", state__in=wf.UNRESOLVED_QUERY_STATES),
                name="dm_one_unresolved_system_query",
            )
        ]
        indexes = [models.Index(fields=["state", "trial", "site"]),
                   models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"query #{self.pk} on {self.target_label} [{self.state}]"

    @property
    def age_days(self) -> int:
        """Days since the query was (re-)opened; frozen at closing."""
        end = self.closed_at if self.state == wf.CLOSED and self.closed_at else timezone.now()
        return (end - self.opened_at).days


@audited
class QueryMessage(ClinicalModel):
    """One step of a query's thread: the question, answers, closing and re-opening notes."""

    data_managed = False

    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="messages")
    action = models.CharField(max_length=10)
    text = models.TextField(blank=True)
    author = _user(null=True, blank=True)

    class Meta:
        ordering = ["query", "id"]

    def __str__(self) -> str:
        return f"{self.action} on query #{self.query_id}"


@audited
class Verification(TargetedRecord):
    """Source data verification of a record (``field_name`` empty) or of one field."""

    content_type = _unindexed("content_type")

    class State(models.TextChoices):
        VERIFIED = wf.VERIFIED, "verified"
        CLEARED = wf.CLEARED, "cleared (value changed after verification)"

    field_name = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.VERIFIED)
    verified_by = _user()
    verified_at = models.DateTimeField(default=timezone.now)
    cleared_by = _user(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(
            fields=["content_type", "object_id", "field_name"], name="dm_one_verification")]

    def __str__(self) -> str:
        return f"SDV of {self.target_label} [{self.state}]"


@audited
class Signature(TargetedRecord):
    """An investigator's electronic signature of a casebook (subject) or a visit.

    The manifestation (21 CFR 11.50): printed name, date and time (UTC) and meaning, stored
    with the signature and shown wherever it is displayed. Linking (11.70): ``data_digest`` is
    a SHA-256 of the signed data at signing time, and any later change invalidates it.
    """

    class Level(models.TextChoices):
        SUBJECT = "subject", "casebook (subject)"
        VISIT = "visit", "visit"

    class State(models.TextChoices):
        SIGNED = wf.SIGNED, "signed"
        INVALIDATED = wf.INVALIDATED, "invalidated (signed data changed)"

    level = models.CharField(max_length=10, choices=Level.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.SIGNED)
    signed_by = _user()
    printed_name = models.CharField(max_length=300)
    meaning = models.TextField()
    signed_at = models.DateTimeField(default=timezone.now)
    data_digest = models.CharField(max_length=64)
    invalidated_by = _user(null=True, blank=True)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(
            fields=["content_type", "object_id"], condition=models.Q(state=wf.SIGNED),
            name="dm_one_valid_signature")]

    def __str__(self) -> str:
        return f"{self.manifestation} [{self.state}]"

    @property
    def manifestation(self) -> str:
        when = self.signed_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"Signed by {self.printed_name} on {when}. Meaning: {self.meaning}"


@audited
class Lock(TargetedRecord):
    """A freeze or lock of a form, a visit, a subject or a whole trial (database lock)."""

    class Level(models.TextChoices):
        FORM = "form", "form (one record)"
        VISIT = "visit", "visit and its forms"
        SUBJECT = "subject", "subject and all its forms"
        TRIAL = "trial", "trial (database lock)"

    class State(models.TextChoices):
        UNLOCKED = wf.UNLOCKED, "unlocked"
        FROZEN = wf.FROZEN, "frozen"
        LOCKED = wf.LOCKED, "locked"

    level = models.CharField(max_length=10, choices=Level.choices)
    state = models.CharField(max_length=10, choices=State.choices)
    reason = models.TextField(blank=True)
    changed_by = _user()
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["level", "content_type", "object_id"],
                                               name="dm_one_lock_per_target")]
        indexes = [models.Index(fields=["state", "level"])]

    def __str__(self) -> str:
        return f"{self.level} {self.target_label} [{self.state}]"


@audited
class ProtocolDeviation(TargetedRecord):
    """A departure from the protocol recorded against a record (ICH E6(R3) glossary "protocol
    deviation"; exported as SDTM DV, SDTMIG 3.4 section 6.2): a dose outside the protocol's
    tolerance or range, a product the arm does not receive, an out-of-window visit, a missed
    assessment, an eligibility waiver. Never deleted; resolving one (the record was corrected)
    keeps it, with who, when and why. ``check_code`` names the rule that raised it (empty for
    one reported by a user)."""

    trial = _unindexed("trial")
    content_type = _unindexed("content_type")

    class Category(models.TextChoices):
        DOSING = "dosing", "study treatment dose"
        WRONG_TREATMENT = "wrong_treatment", "study treatment not in the arm"
        VISIT_WINDOW = "visit_window", "visit out of window"
        MISSED_ASSESSMENT = "missed_assessment", "missed assessment"
        ELIGIBILITY = "eligibility", "eligibility (waiver)"
        OTHER = "other", "other"

    class State(models.TextChoices):
        OPEN = "open", "open"
        RESOLVED = "resolved", "resolved (record corrected)"

    category = models.CharField(max_length=20, choices=Category.choices)
    description = models.TextField()
    occurred_on = models.DateField(help_text="When the deviation happened (DVSTDTC)")
    check_code = models.CharField(max_length=40, blank=True,
                                  help_text="The rule that raised it (empty: reported by a user)")
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    reported_by = _user(null=True, blank=True, help_text="Empty when raised by a rule")
    reported_at = models.DateTimeField(default=timezone.now)
    query = models.ForeignKey(Query, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="deviations",
                              help_text="The query opened for the monitor")
    resolved_by = _user(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(
            fields=["check_code", "content_type", "object_id"],
            condition=models.Q(state="open") & ~models.Q(check_code=""),
            name="dm_one_open_deviation_per_check")]
        indexes = [models.Index(fields=["trial", "state"]),
                   models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"deviation #{self.pk} on {self.target_label} [{self.state}]"


class Casebook(Subject):
    """A subject's casebook seen by data management (admin list of form statuses)."""

    class Meta:
        proxy = True
        verbose_name = "casebook status"
        verbose_name_plural = "casebook statuses"


def source_document_storage():
    """The storage of source documents (``settings.STORAGES["source_documents"]``: local disk
    in the demo and tests, an S3-compatible bucket in production)."""
    from django.core.files.storage import storages

    return storages["source_documents"]


def source_document_path(document, filename: str) -> str:
    """``source-documents/<sha256>.<ext>``: content-addressed (the same bytes are one file,
    which is never deleted nor overwritten), and no original file name (which may hold a
    patient's name)."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"source-documents/{document.sha256[:2]}/{document.sha256}.{extension}"


@audited
class SourceDocument(TargetedRecord):
    """A source document (pathology or imaging report, lab printout, signed consent scan)
    attached to a subject, a visit, an adverse event or any CRF record, and optionally to a
    query it answers; read by monitors for remote source data verification (ICH E6(R3) 3.11.4,
    "direct access" to source records). Kept for good: never deleted, its file never
    overwritten; one entered in error is retired with a reason. ``sha256`` is the digest of
    the stored bytes. A document flagged ``reveals_allocation`` (e.g.
    a pharmacy record) is hidden from users blinded to the trial (ICH E9 2.3)."""

    trial = _unindexed("trial")
    content_type = _unindexed("content_type")

    class Kind(models.TextChoices):
        PATHOLOGY = "pathology", "pathology report"
        IMAGING = "imaging", "imaging report"
        LAB = "lab", "laboratory printout"
        CONSENT = "consent", "signed informed consent"
        PHARMACY = "pharmacy", "pharmacy record"
        OTHER = "other", "other source record"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    description = models.TextField(blank=True)
    file = models.FileField(storage=source_document_storage, upload_to=source_document_path,
                            max_length=200, editable=False)
    file_name = models.CharField(max_length=255, help_text="The uploaded file's name")
    media_type = models.CharField(max_length=40, help_text="Detected from the content")
    size = models.PositiveBigIntegerField(help_text="Bytes")
    sha256 = models.CharField(max_length=64)
    reveals_allocation = models.BooleanField(
        default=False, help_text="Shows the treatment (e.g. a pharmacy record): hidden from "
                                 "users blinded to the trial")
    query = models.ForeignKey(Query, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="documents")
    uploaded_by = _user()
    uploaded_at = models.DateTimeField(default=timezone.now)

    #: The rows (and their audit events) a user blinded to the trial does not see.
    hidden_when_blinded = {"reveals_allocation": True}

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["trial", "site"]),
                   models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} on {self.target_label}"
