"""Sites, memberships (who may see which site) and subjects."""

from django.conf import settings
from django.db import models

from edc.core.audit import ClinicalModel, audited
from trials.models import Arm, DoseLevel, ProtocolVersion, Trial

from . import lifecycle


@audited
class Site(ClinicalModel):
    #: admin dropdowns list the user's own (``edc.core.admin.scoped_choices``)
    choice_scope = {"trial": "trial", "site": "pk"}
    choice_related = ("trial",)
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="sites", db_index=False)
    code = models.CharField(max_length=20)
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["trial", "code"]
        constraints = [models.UniqueConstraint(fields=["trial", "code"], name="site_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


@audited
class Membership(ClinicalModel):
    """A user's access to a trial: one site, or every site when ``site`` is empty.

    Granted and revoked by admins only; a revocation retires the membership with a reason
    (audited like every clinical record), and a revoked access may be granted again.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="memberships"
    )
    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="memberships")
    site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="memberships"
    )
    unblinded = models.BooleanField(
        default=False, help_text="May see true arm allocations in a blinded trial"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "trial", "site"], name="membership_unique",
                nulls_distinct=False, condition=models.Q(retired_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        where = self.site.code if self.site_id else "all sites"
        return f"{self.user} @ {self.trial} ({where})"


def usubjid(registry_id: str, site_code: str, subject_number) -> str:
    """SDTM USUBJID: ``<study id>-<site>-<subject>`` (SDTMIG 3.4, DM domain)."""
    return f"{registry_id}-{site_code}-{subject_number}"


@audited
class Subject(ClinicalModel):
    #: admin dropdowns list the user's own (``edc.core.admin.scoped_choices``)
    choice_scope = {"trial": "trial", "site": "site"}
    choice_related = ("trial",)
    choice_labelled = True
    class Sex(models.TextChoices):
        FEMALE = "F", "female"
        MALE = "M", "male"

    class Race(models.TextChoices):
        """CDISC CT codelist RACE (C74457), as collected (self-reported)."""

        AMERICAN_INDIAN = "AMERICAN INDIAN OR ALASKA NATIVE", "American Indian or Alaska Native"
        ASIAN = "ASIAN", "Asian"
        BLACK = "BLACK OR AFRICAN AMERICAN", "Black or African American"
        PACIFIC = "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", (
            "Native Hawaiian or Other Pacific Islander")
        WHITE = "WHITE", "White"
        OTHER = "OTHER", "Other"
        NOT_REPORTED = "NOT REPORTED", "Not reported"
        UNKNOWN = "UNKNOWN", "Unknown"

    class Status(models.TextChoices):
        """The states of the lifecycle graph (``subjects.lifecycle``, the one home)."""

        SCREENING = lifecycle.SCREENING, "screening"
        SCREEN_FAILURE = lifecycle.SCREEN_FAILURE, "screen failure"
        ENROLLED = lifecycle.ENROLLED, "enrolled"
        ON_TREATMENT = lifecycle.ON_TREATMENT, "on treatment"
        FOLLOW_UP = lifecycle.FOLLOW_UP, "follow-up"
        OFF_STUDY = lifecycle.OFF_STUDY, "off study"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="subjects",
                              db_index=False)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="subjects")
    protocol_version = models.ForeignKey(
        ProtocolVersion, on_delete=models.PROTECT, related_name="subjects"
    )
    screening_number = models.CharField(max_length=40)
    subject_number = models.CharField(
        max_length=40, blank=True, help_text="Study id, given at enrollment"
    )
    workflow_fields = frozenset({  # subjects.enrollment, subjects.lifecycle
        "subject_number", "status", "status_date", "status_reason", "day0", "enrolled_on",
        "cohort", "frequency_level", "treatment_stop_date", "treatment_stop_reason",
        "death_date"})

    sex = models.CharField(max_length=1, choices=Sex.choices)
    birth_date = models.DateField(null=True, blank=True)
    race = models.CharField(max_length=60, choices=Race.choices, blank=True,
                            help_text="Blank: not collected")
    age_at_consent = models.PositiveIntegerField(null=True, blank=True)
    consent_date = models.DateField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCREENING)
    status_date = models.DateField(null=True, blank=True)
    status_reason = models.TextField(blank=True)
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT, null=True, blank=True)
    dose_level = models.ForeignKey(DoseLevel, on_delete=models.PROTECT, null=True, blank=True)
    day0 = models.DateField("day 0", null=True, blank=True, help_text="Day 0 of the schedule")
    enrolled_on = models.DateField(null=True, blank=True)
    cohort = models.PositiveIntegerField(null=True, blank=True,
                                         help_text="Cohort number in sequential designs")
    frequency_level = models.CharField(max_length=20, blank=True,
                                       help_text="Frequency level in dose x frequency grids")
    treatment_stop_date = models.DateField(null=True, blank=True)
    treatment_stop_reason = models.CharField(max_length=40, blank=True)
    death_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["trial", "site", "screening_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["trial", "screening_number"], name="subject_screening_unique"
            ),
            models.UniqueConstraint(
                fields=["trial", "subject_number"],
                condition=~models.Q(subject_number=""),
                name="subject_number_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.subject_number or f"screening {self.screening_number}"

    @property
    def usubjid(self) -> str:
        """SDTM USUBJID: ``<study id>-<site>-<subject>`` (SDTMIG 3.4, DM domain)."""
        return usubjid(self.trial.registry_id, self.site.code, self.subject_number)


@audited
class EligibilityAnswer(ClinicalModel):
    """The site's answer to one criterion: inclusion met / exclusion present."""

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT,
                                related_name="eligibility_answers", db_index=False)
    criterion = models.ForeignKey("trials.EligibilityCriterion", on_delete=models.PROTECT)
    met = models.BooleanField(help_text="Inclusion: criterion met. Exclusion: condition present.")

    class Meta:
        ordering = ["subject", "criterion"]
        constraints = [models.UniqueConstraint(fields=["subject", "criterion"],
                                               name="eligibility_answer_unique")]

    def __str__(self) -> str:
        return f"{self.subject} {self.criterion}: {'yes' if self.met else 'no'}"


@audited
class RandomizationSlot(ClinicalModel):
    """One row of a pre-generated, concealed allocation list (one allocation per slot)."""

    data_managed = False  # allocation/unblinding/dose records, not CRF data

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="slots", db_index=False)
    stratum = models.CharField(max_length=100, blank=True)
    sequence = models.PositiveIntegerField()
    block_number = models.PositiveIntegerField()
    block_size = models.PositiveIntegerField()
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT)
    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="randomization_slot")
    allocated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["trial", "stratum", "sequence"]
        constraints = [models.UniqueConstraint(fields=["trial", "stratum", "sequence"],
                                               name="slot_sequence_unique")]
        indexes = [models.Index(fields=["trial", "stratum", "subject"])]

    def __str__(self) -> str:
        return f"{self.trial} {self.stratum or '-'} #{self.sequence}"


@audited
class AllocationError(ClinicalModel):
    """An error in a subject's randomization and its correction, recorded with its reason by
    the unblinded statistician (ICH E9 5.2.1; SDTMIG 3.4 DM: ARM vs ACTARM).

    The allocation is never changed: the subject keeps the arm allocated (``Subject.arm``, DM
    ARM/ARMCD: analysed as randomized). ``actual_arm`` is the arm whose treatment the subject
    actually received when it differs (DM ACTARM/ACTARMCD); empty when the error did not
    change the treatment (e.g. randomized in the wrong stratum).
    """

    data_managed = False  # allocation/unblinding/dose records, not CRF data

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT,
                                related_name="allocation_errors")
    slot = models.ForeignKey(RandomizationSlot, on_delete=models.PROTECT,
                             related_name="allocation_errors")
    actual_arm = models.ForeignKey(
        Arm, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
        help_text="The arm whose treatment the subject received, if not the one allocated")
    error = models.TextField(help_text="What went wrong")
    correction = models.TextField(help_text="What was done about it, and why")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)

    class Meta:
        ordering = ["subject", "created_at"]

    def __str__(self) -> str:
        return f"allocation error of {self.subject}"


@audited
class Unblinding(ClinicalModel):
    """An emergency unblinding of one subject, requested by an investigator with a reason."""

    data_managed = False  # allocation/unblinding/dose records, not CRF data

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="unblindings")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    reason = models.TextField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"unblinding of {self.subject}"


@audited
class DoseConfirmation(ClinicalModel):
    """An investigator's decision on dose finding, with the recommendation and data it used.

    ``next_cohort``: the dose of the next cohort of a dose-finding arm (needed to open it).
    ``result``: the dose the rule found (tolerable dose, RP2D), which arms whose dose comes from
    another arm's result enroll at. ``outside_rule`` marks a decision the protocol's rule did
    not make (no rule in the protocol, or another dose than the rule's): it carries a reason.
    """

    data_managed = False  # allocation/unblinding/dose records, not CRF data

    class Kind(models.TextChoices):
        NEXT_COHORT = "next_cohort", "Dose of the next cohort"
        RESULT = "result", "Result of the dose finding"

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="dose_confirmations",
                              db_index=False)
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT)
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.NEXT_COHORT)
    cohort = models.PositiveIntegerField()
    dose_level = models.ForeignKey(DoseLevel, on_delete=models.PROTECT, null=True, blank=True)
    frequency_level = models.CharField(max_length=20, blank=True)
    outside_rule = models.BooleanField(
        default=False, help_text="A decision outside a protocol rule (reason required)")
    reason = models.TextField(blank=True)
    recommendation = models.JSONField(help_text="The recommendation and the data it used")
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)

    class Meta:
        ordering = ["trial", "arm", "cohort"]
        constraints = [models.UniqueConstraint(fields=["trial", "arm", "kind", "cohort"],
                                               name="dose_confirmation_unique")]

    def __str__(self) -> str:
        what = "result" if self.kind == self.Kind.RESULT else f"cohort {self.cohort}"
        return f"{self.trial} {self.arm.code} {what}: {self.dose_level}"


@audited
class SafetyReview(ClinicalModel):
    """An investigator's recorded decision on a dose-finding safety stop (related deaths).

    The stop (EDC safety default, :mod:`trials.dose_finding`) lasts until a review covers every
    related death inside an evaluation window; the deaths still count as toxicity events.
    """

    data_managed = False

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="safety_reviews")
    arm = models.ForeignKey(Arm, on_delete=models.PROTECT)
    adverse_events = models.JSONField(help_text="Ids of the deaths reviewed")
    decision = models.TextField(help_text="What was decided and why")
    recommendation = models.JSONField(help_text="The safety stop and the data it showed")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)

    class Meta:
        ordering = ["trial", "-created_at"]

    def __str__(self) -> str:
        return f"{self.trial} {self.arm.code}: safety review of AE {self.adverse_events}"
