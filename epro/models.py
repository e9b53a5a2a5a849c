"""ePRO: licensed wording per trial and language, one-time links, data clarifications.

A link lets one patient complete one scheduled QLQ-C30 of one visit once; the form it writes
is a ``visits.QlqC30Form`` with mode ``epro``, scored by the same Celery path as staff entry.
All three models are audited and never deleted.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from edc.core.audit import ClinicalModel, audited
from subjects.models import Subject
from visits.models import QlqC30Form, Visit

from .wording import INSTRUMENT, Wording


def language_choices():
    return [(code, name) for code, name in settings.LANGUAGES]


@audited
class EproWording(ClinicalModel):
    """The licensed wording of the QLQ-C30 in one language, loaded for one trial
    (``epro.wording`` documents the file); a newer file retires the previous one."""

    data_managed = False  # trial set-up, not CRF data

    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT,
                              related_name="epro_wordings", verbose_name=_("trial"))
    instrument = models.CharField(_("instrument"), max_length=40, default=INSTRUMENT)
    language = models.CharField(_("language"), max_length=10, choices=language_choices)
    version = models.CharField(_("version"), max_length=20, blank=True)
    licence = models.TextField(_("licence"), blank=True)
    document = models.JSONField(help_text="The parsed wording file (epro.wording)")
    source_name = models.CharField(max_length=200)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the file loaded")
    is_default = models.BooleanField(_("trial's default ePRO language"), default=False)

    class Meta:
        verbose_name = _("ePRO wording")
        verbose_name_plural = _("ePRO wordings")
        ordering = ["trial", "language"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "instrument", "language"],
                                    condition=Q(retired_at__isnull=True),
                                    name="epro_wording_one_per_language"),
            models.UniqueConstraint(fields=["trial", "instrument"],
                                    condition=Q(retired_at__isnull=True, is_default=True),
                                    name="epro_wording_one_default"),
        ]

    def __str__(self) -> str:
        return f"{self.trial} {self.instrument} ({self.language})"

    def wording(self) -> Wording:
        return Wording.from_document(self.document)


class LinkQuerySet(models.QuerySet):
    def active(self, now=None):
        """Links a patient may still use: not submitted, not revoked, not expired."""
        now = now or timezone.now()
        return self.filter(submitted_at__isnull=True, revoked_at__isnull=True,
                           expires_at__gt=now)


@audited
class EproLink(ClinicalModel):
    """A one-time link for one patient to complete one scheduled questionnaire of a visit.

    Only the token's digest is stored (``epro.tokens``); the URL carries nothing else. The
    link opens inside the visit's window and before ``expires_at``, on the first device that
    opened it (a cookie whose digest is ``device_digest``), until it is submitted or revoked.
    ``answers`` holds the patient's answers until submission (each change audited).
    """

    data_managed = False  # access control; the answers become CRF data when submitted
    choice_scope = {"trial": "subject__trial", "site": "subject__site"}

    class State(models.TextChoices):
        ACTIVE = "active", _("active")
        SUBMITTED = "submitted", _("completed by the patient")
        REVOKED = "revoked", _("revoked")
        EXPIRED = "expired", _("expired")

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="epro_links",
                                verbose_name=_("subject"))
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="epro_links",
                              verbose_name=_("visit"))
    instrument = models.CharField(_("instrument"), max_length=40, default=INSTRUMENT)
    language = models.CharField(_("language"), max_length=10, choices=language_choices)
    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="+", null=True, verbose_name=_("issued by"))
    expires_at = models.DateTimeField(_("expires at"))
    device_digest = models.CharField(max_length=64, blank=True, editable=False)
    opened_at = models.DateTimeField(_("first opened at"), null=True, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(_("submitted at (server time)"), null=True, blank=True)
    device_submitted_at = models.DateTimeField(_("submitted at (device time)"), null=True,
                                               blank=True)
    form = models.OneToOneField(QlqC30Form, on_delete=models.PROTECT, null=True, blank=True,
                                related_name="epro_link", verbose_name=_("form"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_reason = models.TextField(_("reason for revocation"), blank=True)

    objects = LinkQuerySet.as_manager()

    class Meta:
        verbose_name = _("ePRO link")
        verbose_name_plural = _("ePRO links")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["visit", "instrument"],
                condition=Q(submitted_at__isnull=True, revoked_at__isnull=True),
                name="epro_link_one_open_per_visit"),
        ]

    def __str__(self) -> str:
        return f"ePRO {self.instrument} {self.subject} {self.visit.code}"

    def state(self, now=None) -> str:
        if self.submitted_at:
            return self.State.SUBMITTED
        if self.revoked_at:
            return self.State.REVOKED
        if self.expires_at <= (now or timezone.now()):
            return self.State.EXPIRED
        return self.State.ACTIVE


@audited
class EproClarification(ClinicalModel):
    """A correction of a patient-completed answer: only with the patient's confirmation and
    a reason (ICH E6(R3) 4.2.4, FDA PRO guidance 2009 on changes to patient-reported data);
    the form's own audit trail records the change with the same reason."""

    data_managed = False  # its form's change goes through data management itself

    form = models.ForeignKey(QlqC30Form, on_delete=models.PROTECT,
                             related_name="epro_clarifications", verbose_name=_("form"))
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT,
                                related_name="epro_clarifications", verbose_name=_("subject"))
    item = models.CharField(_("item"), max_length=4)
    old_value = models.PositiveSmallIntegerField(_("old value"), null=True, blank=True)
    new_value = models.PositiveSmallIntegerField(_("new value"), null=True, blank=True)
    reason = models.TextField(_("reason"))
    patient_confirmation = models.TextField(
        _("patient's confirmation"),
        help_text=_("How and when the patient confirmed the corrected answer"))
    confirmed_on = models.DateField(_("confirmed on"))
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                    related_name="+", verbose_name=_("recorded by"))

    class Meta:
        verbose_name = _("ePRO data clarification")
        verbose_name_plural = _("ePRO data clarifications")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"clarification of {self.item} ({self.form})"
