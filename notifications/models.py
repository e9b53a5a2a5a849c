"""Who is told of a trial's safety events (``SafetyContact``) and what was sent (``Notification``).

Both are audited (pghistory, reason for every change) and never deleted. A notification is
the outbox of its own email: it is written in the transaction of the safety event it reports,
and its delivery state says whether the mail server accepted it (``notifications.services``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from edc.core.audit import ClinicalModel, audited

from .messages import Kind


@audited
class SafetyContact(ClinicalModel):
    """A sponsor safety contact of a trial (e.g. the pharmacovigilance desk), told of every
    safety alert of the trial; retired (not deleted) when it no longer applies."""

    data_managed = False  # trial settings, not CRF data

    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT,
                              related_name="safety_contacts")
    email = models.EmailField()
    label = models.CharField(max_length=200, blank=True,
                             help_text="e.g. 'Sponsor safety desk' (a role, not a person)")

    class Meta:
        ordering = ["trial", "email"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "email"], condition=Q(retired_at__isnull=True),
                                    name="safety_contact_unique")
        ]

    def __str__(self) -> str:
        return f"{self.trial}: {self.email}"


@audited
class Notification(ClinicalModel):
    """One safety alert to one recipient, and its delivery.

    ``event_key`` names the event (e.g. ``sae:ae:12``): one notification per event and
    recipient, so reporting an event twice tells nobody twice.
    """

    data_managed = False  # a record of messages sent, not CRF data (written under locks too)

    class State(models.TextChoices):
        PENDING = "pending", "pending (not yet accepted by the mail server)"
        SENT = "sent", "sent"
        FAILED = "failed", "failed (refused permanently; see the error)"

    class RecipientKind(models.TextChoices):
        INVESTIGATOR = "investigator", "site investigator"
        SITE_STAFF = "site_staff", "site staff"
        SAFETY_CONTACT = "safety_contact", "sponsor safety contact"
        NONE = "none", "no recipient configured"

    kind = models.CharField(max_length=20, choices=[(k.value, k.value) for k in Kind])
    event_key = models.CharField(max_length=200)
    trial = models.ForeignKey("trials.Trial", on_delete=models.PROTECT,
                              related_name="notifications")
    site = models.ForeignKey("subjects.Site", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="+", help_text="Empty for trial-wide alerts")
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, null=True,
                                blank=True, related_name="+")
    adverse_event = models.ForeignKey("adverse_events.AdverseEvent", on_delete=models.PROTECT,
                                      null=True, blank=True, related_name="+")
    arm = models.ForeignKey("trials.Arm", on_delete=models.PROTECT, null=True, blank=True,
                            related_name="+")
    subject_study_id = models.CharField(max_length=100, blank=True)
    event_term = models.CharField(max_length=200, blank=True)
    grade = models.PositiveSmallIntegerField(null=True, blank=True)
    event_date = models.DateField(null=True, blank=True, help_text="Onset of the event")
    link = models.URLField(max_length=500)
    recipient_kind = models.CharField(max_length=20, choices=RecipientKind.choices)
    recipient_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                       null=True, blank=True, related_name="+")
    recipient_email = models.EmailField(blank=True)
    message_subject = models.CharField(max_length=300)
    body = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["event_key", "recipient_email"],
                                    name="notification_once_per_recipient")
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.message_subject} -> {self.recipient_email or '(nobody)'} [{self.state}]"
