"""Protocol models: a trial and the versions of its protocol, loaded from ``seeds/*.toml``.

A protocol version is never rewritten once loaded (a database trigger): a changed protocol file
creates a new version (an amendment) and subjects stay on theirs until migrated explicitly.
The parsed protocol is kept whole in ``ProtocolVersion.document``; the parts that clinical
records point to (arms, dose levels, interventions, eligibility criteria) are rows.
"""

import pgtrigger
from django.db import models

from edc.core.audit import ClinicalModel, audited
from edc.core.triggers import StrictTrigger


@audited
class Trial(ClinicalModel):
    #: admin dropdowns list the user's own (``edc.core.admin.scoped_choices``)
    choice_scope = {"trial": "pk", "site": None}
    class Registry(models.TextChoices):
        CLINICALTRIALS_GOV = "ctgov", "ClinicalTrials.gov"
        SPONSOR = "sponsor", "Sponsor identifier (no registry id)"

    class Masking(models.TextChoices):
        NONE = "none", "open label"
        DOUBLE = "double", "double-blind"

    registry_id = models.CharField(
        "registry ID", max_length=40, unique=True,
        help_text="NCT id, or the sponsor's id where none exists",
    )
    registry = models.CharField(max_length=10, choices=Registry.choices)
    title = models.TextField()
    phase = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=40, blank=True)
    sponsor = models.CharField(max_length=200, blank=True)
    target_enrollment = models.PositiveIntegerField(null=True, blank=True)
    start_date = models.DateField(null=True, blank=True)
    completion_date = models.DateField(null=True, blank=True)
    masking = models.CharField(max_length=10, choices=Masking.choices, default=Masking.NONE)
    allocation = models.CharField(max_length=20, blank=True,
                                  help_text="randomized / non_randomized / na")
    design_model = models.CharField(max_length=20, blank=True,
                                    help_text="parallel / sequential / single_group")
    ctcae_version = models.CharField("CTCAE version", max_length=10, default="5.0")

    class Meta:
        ordering = ["registry_id"]

    def __str__(self) -> str:
        return self.registry_id

    @property
    def is_randomized(self) -> bool:
        return self.allocation == "randomized"

    @property
    def is_blinded(self) -> bool:
        return self.masking != self.Masking.NONE

    def current_version(self):
        return self.versions.order_by("-version").first()

    def current_protocol(self):
        """The parsed protocol of the current version, read without the version's document
        and texts (``ProtocolVersion.LARGE_FIELDS``)."""
        return self.versions.order_by("-version").defer(
            *ProtocolVersion.LARGE_FIELDS).first().protocol()


@pgtrigger.register(
    # The parsed protocol is cached per version id and digest (protocol_schema.loading)
    StrictTrigger(
        name="loaded_text_immutable", when=pgtrigger.Before, operation=pgtrigger.Update,
        condition=pgtrigger.AnyChange("trial", "version", "digest", "source_file", "document",
                                      "file_text", "source_text"),
        func="RAISE EXCEPTION 'a loaded protocol version is never rewritten (an amendment is "
             "a new version): %', OLD.id;"),
)
@audited
class ProtocolVersion(ClinicalModel):
    """One loaded protocol file. What was loaded (trial, number, digest, file, parsed document,
    texts) is never rewritten, by the database's trigger; an amendment is a new version."""

    trial = models.ForeignKey(Trial, on_delete=models.PROTECT, related_name="versions",
                              db_index=False)
    version = models.PositiveIntegerField()
    digest = models.CharField(max_length=64, help_text="SHA-256 of the protocol file")
    source_file = models.CharField(max_length=255)
    document = models.JSONField(help_text="The validated protocol file, parsed")
    file_text = models.TextField(default="", help_text="The protocol file as loaded")
    source_text = models.TextField(
        default="", help_text="The source document its quotes come from"
    )
    min_age_years = models.PositiveIntegerField(null=True, blank=True)
    max_age_years = models.PositiveIntegerField(null=True, blank=True)
    sex = models.CharField(max_length=10, default="all", help_text="all / female / male")

    class Meta:
        ordering = ["trial", "version"]
        constraints = [
            models.UniqueConstraint(fields=["trial", "version"], name="protocol_version_unique"),
            models.UniqueConstraint(fields=["trial", "digest"], name="protocol_digest_unique"),
        ]

    #: The parsed document and the texts it is parsed from (tens of KB): a read that needs
    #: only ``protocol()`` defers them (``protocol_of`` then reads the texts once per version).
    LARGE_FIELDS = ("document", "file_text", "source_text")

    def __str__(self) -> str:
        return f"{self.trial.registry_id} v{self.version}"

    def protocol(self):
        """The parsed protocol (``trials.protocol_schema.Protocol``) of this version."""
        from .protocol_schema import protocol_of

        return protocol_of(self)


@audited
class Arm(ClinicalModel):
    class ArmType(models.TextChoices):
        EXPERIMENTAL = "experimental", "experimental"
        PLACEBO = "placebo", "placebo comparator"
        ACTIVE_COMPARATOR = "active_comparator", "active comparator"

    protocol_version = models.ForeignKey(
        ProtocolVersion, on_delete=models.PROTECT, related_name="arms", db_index=False
    )
    code = models.CharField(max_length=40)
    label = models.CharField(max_length=200)
    arm_type = models.CharField(max_length=20, choices=ArmType.choices)
    blinded_label = models.CharField(
        max_length=100, blank=True, help_text="Neutral label shown to blinded users"
    )
    sequence = models.PositiveIntegerField(default=1, help_text="Order in sequential designs")
    cohort_size = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["protocol_version", "sequence", "code"]
        constraints = [
            models.UniqueConstraint(fields=["protocol_version", "code"], name="arm_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.label}"


@audited
class DoseLevel(ClinicalModel):
    """A dose level of a dose-finding design, in the protocol's order (index 0 = first)."""

    protocol_version = models.ForeignKey(
        ProtocolVersion, on_delete=models.PROTECT, related_name="dose_levels", db_index=False
    )
    arm = models.ForeignKey(
        Arm, on_delete=models.PROTECT, null=True, blank=True, related_name="dose_levels"
    )
    code = models.CharField(max_length=40)
    order = models.PositiveIntegerField()
    value = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True,
                                help_text="Empty where the document gives no number")
    unit = models.CharField(max_length=20, blank=True)
    basis = models.CharField(max_length=10, blank=True, help_text="per_kg / per_m2 / flat")
    label = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["protocol_version", "order"]
        constraints = [
            models.UniqueConstraint(
                fields=["protocol_version", "code"], name="dose_level_code_unique"
            )
        ]

    def __str__(self) -> str:
        if self.value is None:
            return f"{self.code} (dose not specified by the protocol)"
        return f"{self.code}: {self.value.normalize():g} {self.unit}"


@audited
class Intervention(ClinicalModel):
    protocol_version = models.ForeignKey(
        ProtocolVersion, on_delete=models.PROTECT, related_name="interventions", db_index=False
    )
    code = models.CharField(max_length=40)
    agent = models.CharField(max_length=200)
    intervention_type = models.CharField(max_length=20)
    route = models.CharField(max_length=40, blank=True)
    cell_product = models.BooleanField(default=False)
    placebo_for = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["protocol_version", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["protocol_version", "code"], name="intervention_code_unique"
            )
        ]

    def __str__(self) -> str:
        return self.agent


@audited
class EligibilityCriterion(ClinicalModel):
    class Kind(models.TextChoices):
        INCLUSION = "inclusion", "inclusion"
        EXCLUSION = "exclusion", "exclusion"

    protocol_version = models.ForeignKey(
        ProtocolVersion, on_delete=models.PROTECT, related_name="criteria", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    number = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["protocol_version", "kind", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["protocol_version", "kind", "number"], name="criterion_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind[:3].upper()}{self.number}"
