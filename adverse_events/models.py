"""CTCAE v5.0 dictionary, adverse events with grade episodes and attribution, DLT/TI flags.

Grading follows NCI CTCAE v5.0 (2017-11-27): a term's grade applies only where the dictionary
gives it a description (an empty grade does not apply to the term). Seriousness follows ICH
E2A II.B (death, life-threatening, in-patient hospitalisation or its prolongation, persistent or
significant disability/incapacity, congenital anomaly/birth defect, other medically important
event); the SDTM AE variable of each criterion is named in its help text (SDTMIG 3.4).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from edc.core.audit import ClinicalModel, ClinicalQuerySet, audited
from subjects.models import Subject

from . import toxicity

GRADES = (1, 2, 3, 4, 5)


class CtcaeTerm(models.Model):
    """One CTCAE v5.0 term (reference data, loaded by ``manage.py load_ctcae``)."""

    meddra_code = models.CharField("MedDRA code", max_length=8, unique=True,
                                   help_text="MedDRA LLT code")
    term = models.CharField(max_length=200, db_index=True)
    soc = models.CharField(max_length=100, help_text="MedDRA primary System Organ Class")
    grade_1 = models.TextField(blank=True)
    grade_2 = models.TextField(blank=True)
    grade_3 = models.TextField(blank=True)
    grade_4 = models.TextField(blank=True)
    grade_5 = models.TextField(blank=True)
    definition = models.TextField(blank=True)
    navigational_note = models.TextField(blank=True)

    class Meta:
        ordering = ["soc", "term"]
        verbose_name = "CTCAE term"

    def __str__(self) -> str:
        return f"{self.term} ({self.meddra_code})"

    def grade_text(self, grade: int) -> str:
        return getattr(self, f"grade_{grade}", "") if grade in GRADES else ""

    def allowed_grades(self) -> tuple[int, ...]:
        """Grades with a CTCAE description for this term (empty = does not apply)."""
        return tuple(g for g in GRADES if self.grade_text(g).strip())

    @property
    def is_other_specify(self) -> bool:
        """"<SOC> - Other, specify" terms: the verbatim term is required."""
        return self.term.endswith("Other, specify")


class AdverseEventQuerySet(ClinicalQuerySet):
    def sae_status(self, *statuses: str, now: dt.datetime | None = None):
        """AEs whose 24-hour initial SAE report (ICH E2A; ``toxicity.sae_status``) is in one
        of ``statuses``: ``due``, ``overdue``, ``open`` (due or overdue), ``reported``,
        ``reported_late``, ``not_serious``. Retired AEs are never due. ``KeyError`` names an
        unknown status. The one home of the SAE clock in queries: API filter, admin filter,
        dashboard, overdue task and alerts call it."""
        now = now or timezone.now()
        limit = now - toxicity.SAE_REPORT_WINDOW
        on_time = Q(reported_at__lte=F("aware_at") + toxicity.SAE_REPORT_WINDOW)
        unreported = Q(serious=True, reported_at__isnull=True, retired_at__isnull=True)
        reported = Q(serious=True, reported_at__isnull=False)
        table = {
            "not_serious": Q(serious=False),
            "due": unreported & Q(aware_at__gte=limit),
            "overdue": unreported & Q(aware_at__lt=limit),
            "open": unreported,
            "reported": reported & on_time,
            "reported_late": reported & ~on_time,
        }
        q = Q(pk__in=[])
        for status in statuses:
            q |= table[status]
        return self.filter(q)


@audited
class AdverseEvent(ClinicalModel):
    """An adverse event of a subject, graded on CTCAE v5.0 through its grade episodes."""

    objects = AdverseEventQuerySet.as_manager()

    class ActionTaken(models.TextChoices):  # SDTM AEACN
        DOSE_NOT_CHANGED = "dose_not_changed", "dose not changed"
        DOSE_REDUCED = "dose_reduced", "dose reduced"
        DOSE_INCREASED = "dose_increased", "dose increased"
        DRUG_INTERRUPTED = "drug_interrupted", "drug interrupted"
        DRUG_WITHDRAWN = "drug_withdrawn", "drug withdrawn"
        NOT_APPLICABLE = "not_applicable", "not applicable"
        UNKNOWN = "unknown", "unknown"

    class Outcome(models.TextChoices):  # SDTM AEOUT
        RECOVERED = "recovered", "recovered/resolved"
        RECOVERING = "recovering", "recovering/resolving"
        NOT_RECOVERED = "not_recovered", "not recovered/not resolved"
        SEQUELAE = "sequelae", "recovered/resolved with sequelae"
        FATAL = "fatal", "fatal"
        UNKNOWN = "unknown", "unknown"

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="adverse_events")
    term = models.ForeignKey(CtcaeTerm, on_delete=models.PROTECT, related_name="adverse_events")
    verbatim_term = models.CharField(
        max_length=200, blank=True, help_text="As reported; required for 'Other, specify' terms"
    )
    onset_date = models.DateField()
    resolution_date = models.DateField(null=True, blank=True, help_text="Empty while ongoing")
    grade = models.PositiveSmallIntegerField(
        null=True, blank=True, editable=False, help_text="Worst CTCAE grade of its episodes"
    )
    serious = models.BooleanField(default=False)
    sae_death = models.BooleanField(
        verbose_name="SAE: death", default=False, help_text="Results in death (AESDTH)")
    sae_life_threatening = models.BooleanField(
        verbose_name="SAE: life-threatening", default=False, help_text="AESLIFE")
    sae_hospitalization = models.BooleanField(
        verbose_name="SAE: hospitalization",
        default=False, help_text="Requires or prolongs hospitalization (AESHOSP)"
    )
    sae_disability = models.BooleanField(
        verbose_name="SAE: disability",
        default=False, help_text="Persistent or significant disability/incapacity (AESDISAB)"
    )
    sae_congenital_anomaly = models.BooleanField(
        verbose_name="SAE: congenital anomaly", default=False, help_text="AESCONG")
    sae_medically_important = models.BooleanField(
        verbose_name="SAE: medically important",
        default=False, help_text="Other medically important event (AESMIE)"
    )
    expected = models.BooleanField(
        default=False, help_text="Listed in the reference safety information (IB)"
    )
    action_taken = models.CharField(
        max_length=20, choices=ActionTaken.choices, default=ActionTaken.NOT_APPLICABLE
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.UNKNOWN)
    aware_at = models.DateTimeField(
        null=True, blank=True, help_text="When the site became aware (starts the SAE clock)"
    )
    reported_at = models.DateTimeField(
        null=True, blank=True, help_text="When the SAE was reported to the sponsor"
    )
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    sae_overdue_raised_at = models.DateTimeField(
        verbose_name="SAE overdue raised at",
        null=True, blank=True, editable=False, help_text="When the SAE clock raised it overdue"
    )
    death_date = models.DateField(null=True, blank=True, help_text="Required for grade 5")

    CRITERIA = (
        "sae_death", "sae_life_threatening", "sae_hospitalization", "sae_disability",
        "sae_congenital_anomaly", "sae_medically_important",
    )
    #: Validated together with the grade episodes (``validation``): changed through the AE
    #: itself (``services.save_adverse_event``), never one at a time in place.
    workflow_fields = frozenset({
        "verbatim_term", "onset_date", "resolution_date", "grade", "serious", *CRITERIA,
        "aware_at", "reported_at", "death_date"})

    class Meta:
        ordering = ["subject", "onset_date", "id"]
        indexes = [models.Index(fields=["serious", "reported_at", "aware_at"])]

    def __str__(self) -> str:
        return f"AE {self.pk} {self.display_term} ({self.subject})"

    @property
    def display_term(self) -> str:
        return self.verbatim_term if self.verbatim_term else self.term.term

    @property
    def ongoing(self) -> bool:
        return self.resolution_date is None

    def criteria(self) -> list[str]:
        return [name for name in self.CRITERIA if getattr(self, name)]

    def related(self) -> bool:
        """Related to at least one intervention at "possible" or more (ICH E2A). Reads the
        active attributions a queryset annotated (``attributions_rows``) when there."""
        threshold = toxicity.attribution_rank("possible")
        rows = getattr(self, "attributions_rows", None)
        levels = ([row["level"] for row in rows] if rows is not None else
                  [a.level for a in self.attributions.all() if a.retired_at is None])
        return any(toxicity.attribution_rank(level) >= threshold for level in levels)

    def sae_deadlines(self) -> toxicity.SaeDeadlines | None:
        if not self.serious or self.aware_at is None:
            return None
        return toxicity.sae_deadlines(
            self.aware_at, serious=True, expected=self.expected, related=self.related(),
            fatal_or_life_threatening=self.sae_death or self.sae_life_threatening
            or self.grade == 5,
        )

    def sae_status(self, now: dt.datetime) -> str:
        deadlines = self.sae_deadlines()
        if deadlines is None:
            return "not_serious"
        return toxicity.sae_status(deadlines, self.reported_at, now)


@audited
class GradeEpisode(ClinicalModel):
    """A period at one CTCAE grade; the episodes of an AE tile its onset..resolution."""

    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, related_name="grade_episodes"
    )
    grade = models.PositiveSmallIntegerField(choices=[(g, str(g)) for g in GRADES])
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty while ongoing")

    class Meta:
        ordering = ["adverse_event", "start_date", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(grade__gte=1, grade__lte=5),
                                   name="grade_episode_grade_1_5"),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="grade_episode_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        end = self.end_date.isoformat() if self.end_date else "ongoing"
        return f"grade {self.grade} {self.start_date.isoformat()}..{end}"


@audited
class Attribution(ClinicalModel):
    """Causality of an AE to one intervention the subject received."""

    class Level(models.TextChoices):
        UNRELATED = "unrelated", "unrelated"
        UNLIKELY = "unlikely", "unlikely"
        POSSIBLE = "possible", "possible"
        PROBABLE = "probable", "probable"
        DEFINITE = "definite", "definite"

    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, related_name="attributions"
    )
    intervention = models.ForeignKey(
        "trials.Intervention", on_delete=models.PROTECT, related_name="attributions"
    )
    level = models.CharField(max_length=10, choices=Level.choices)

    class Meta:
        ordering = ["adverse_event", "intervention"]
        constraints = [
            models.UniqueConstraint(
                fields=["adverse_event", "intervention"], condition=Q(retired_at__isnull=True),
                name="attribution_one_per_agent",
            )
        ]

    def __str__(self) -> str:
        return f"{self.intervention.code}: {self.level}"


@audited
class ToxicityFlag(ClinicalModel):
    """Result of one protocol toxicity rule (DLT/TI) for one AE of one subject.

    ``computed`` comes from the rules (``adverse_events.toxicity``); an investigator may
    override it with a reason; ``effective`` is the override when set, else ``computed``.
    """

    class Kind(models.TextChoices):
        DLT = "DLT", "dose-limiting toxicity"
        TI = "TI", "treatment intolerance"

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="toxicity_flags",
                                db_index=False)
    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, related_name="toxicity_flags"
    )
    rule_code = models.CharField(max_length=40)
    kind = models.CharField(max_length=3, choices=Kind.choices)
    computed = models.BooleanField(default=False)
    reason = models.TextField(blank=True, help_text="Which AE, episodes, infusion and rule")
    details = models.JSONField(default=dict, blank=True)
    evaluated_at = models.DateTimeField(help_text="When the current result was computed")
    override = models.BooleanField(null=True, blank=True)
    override_reason = models.TextField(blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
        related_name="+",
    )
    override_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subject", "rule_code", "adverse_event"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "rule_code", "adverse_event"], name="toxicity_flag_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.rule_code} AE {self.adverse_event_id}: {self.effective}"

    @property
    def effective(self) -> bool:
        return self.computed if self.override is None else self.override


#: Flags whose effective value is true (the override when set, else the computed value).
EFFECTIVE_FLAG = Q(override=True) | Q(override__isnull=True, computed=True)
