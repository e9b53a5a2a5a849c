"""Visits materialised from the protocol's visit plan, and the forms recorded at them."""

from __future__ import annotations

import datetime as dt
from functools import partial

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from edc.core.audit import ClinicalModel, ClinicalQuerySet, audited
from edc.core.outbox import enqueue
from subjects.models import Subject

from . import dosing, qlq_c30, scheduling, signals


def overdue_q(today: dt.date | None = None, prefix: str = "") -> Q:
    """THE definition of an overdue visit: still planned (no data, not missed, not
    cancelled), neither it nor its subject retired (a subject entered in error has no visits
    due), and the last day of its window is before ``today`` (the site's local date).
    Computed where it is read -- API, admin, dashboard, exports -- so they agree at any moment;
    ``prefix`` applies it through a relation (``"visits__"``)."""
    today = today or timezone.localdate()
    return Q(**{f"{prefix}status": "planned", f"{prefix}retired_at__isnull": True,
                f"{prefix}subject__retired_at__isnull": True,
                f"{prefix}window_high__lt": today})


class VisitQuerySet(ClinicalQuerySet):
    def overdue(self, today: dt.date | None = None):
        """The overdue visits (:func:`overdue_q`)."""
        return self.filter(overdue_q(today))

    def with_overdue(self, today: dt.date | None = None):
        """Each visit annotated ``is_overdue`` (:func:`overdue_q`)."""
        return self.annotate(is_overdue=models.ExpressionWrapper(
            overdue_q(today), output_field=models.BooleanField()))


@audited
class Visit(ClinicalModel):
    """One planned (or unscheduled) visit of a subject, with its window from the protocol.

    ``code`` is the scheduling key (e.g. ``C2``, ``A3``, ``FU1``); one visit per subject and
    code, enforced by the database.
    """
    #: admin dropdowns list the user's own (``edc.core.admin.scoped_choices``)
    choice_scope = {"trial": "subject__trial", "site": "subject__site"}
    choice_related = ("subject__trial",)
    choice_labelled = True

    class Kind(models.TextChoices):
        SCREENING = "screening", "screening"
        BASELINE = "baseline", "baseline"
        INFUSION = "infusion", "infusion"
        ADMINISTRATION = "administration", "companion administration"
        ASSESSMENT = "assessment", "efficacy assessment"
        FOLLOW_UP = "follow_up", "follow-up"
        MONTH = "month", "month visit"
        SAMPLE = "sample", "one-off sample / assessment"
        UNSCHEDULED = "unscheduled", "unscheduled"

    class Status(models.TextChoices):
        PLANNED = "planned", "planned"
        DONE = "done", "done"
        MISSED = "missed", "missed"
        NOT_DONE = "not_done", "not done"
        UNSCHEDULED = "unscheduled", "unscheduled"
        CANCELLED = "cancelled", "cancelled (schedule ended)"

    workflow_fields = frozenset({  # visits.services (schedule, record, missed)
        "code", "kind", "cycle", "intervention", "target_date", "window_low", "window_high",
        "actual_date", "status", "status_reason", "qlq_c30_due"})
    #: The planned product code follows the arm (``trials.masking.allocation_fields``).
    allocation_fields = frozenset({"intervention"})

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="visits",
                                db_index=False)
    code = models.CharField(max_length=40)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    cycle = models.PositiveIntegerField(null=True, blank=True)
    intervention = models.CharField(max_length=100, blank=True)
    target_date = models.DateField(null=True, blank=True)
    window_low = models.DateField(null=True, blank=True)
    window_high = models.DateField(null=True, blank=True)
    actual_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNED)
    status_reason = models.TextField(blank=True)
    qlq_c30_due = models.BooleanField("QLQ-C30 due", default=False)

    objects = VisitQuerySet.as_manager()

    class Meta:
        ordering = ["subject", "target_date", "code"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "code"], name="visit_subject_code_unique")
        ]
        indexes = [models.Index(fields=["status", "window_high"])]

    def __str__(self) -> str:
        return f"{self.subject} {self.code}"

    @property
    def out_of_window(self) -> bool:
        """A protocol deviation: done outside its window (allowed, but flagged)."""
        if self.actual_date is None or self.window_low is None or self.window_high is None:
            return False
        return not (self.window_low <= self.actual_date <= self.window_high)


def _positive(value) -> None:
    if value is not None and value <= 0:
        raise ValidationError("must be greater than zero", code="not_positive")


@audited
class Exposure(ClinicalModel):
    """One administration of a study product, or one dosing period of a daily product.

    CDISC SDTMIG 3.4 section 6.1 (EX): one record per constant-dosing interval. A visit-bound
    product (infusion, injection) is recorded at its visit; a daily (oral) regimen
    (``Regimen.continuous``) as dosing periods ``administered_on``..``end_date`` with its
    frequency (EXDOSFRQ); an interruption ends a period (``interrupted`` with the reason,
    EXADJ) and the next period starts when dosing resumes. Products the arm's schedule has no
    visit for (given "per label") are dated administrations without a visit.

    Planned dose = the regimen's fixed dose or the subject's dose level (``dose_checks`` D1);
    planned total = planned dose (else the prescribed dose) x weight (per kg) or x Mosteller
    BSA (per m2). Computed values are stored read-only with their inputs.
    """

    #: Checked against the visit and the protocol by ``services.record_exposure``.
    workflow_fields = frozenset({"administered_on", "dose_unit", "end_date", "frequency"})

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="exposures")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="exposures",
                              null=True, blank=True,
                              help_text="Empty for dosing periods and unscheduled products")
    intervention = models.ForeignKey(
        "trials.Intervention", on_delete=models.PROTECT, related_name="exposures"
    )
    administered_on = models.DateField(help_text="Date given; start of a dosing period")
    end_date = models.DateField(null=True, blank=True,
                                help_text="Last day of a dosing period (EXENDTC)")
    frequency = models.CharField(max_length=10, blank=True,
                                 help_text="CDISC FREQ: QD, BID, ... (ONCE when empty)")
    start_time = models.DateTimeField(null=True, blank=True)
    stop_time = models.DateTimeField(null=True, blank=True)
    dose_value = models.DecimalField(
        max_digits=24, decimal_places=6, validators=[_positive],
        help_text="Dose as prescribed, in dose_unit"
    )
    dose_unit = models.CharField(max_length=20, help_text="e.g. cells/kg, mg/m2, mg")
    weight_kg = models.DecimalField("weight (kg)", max_digits=6, decimal_places=2, null=True,
                                    blank=True)
    height_cm = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    bsa_m2 = models.DecimalField("BSA (m²)", max_digits=6, decimal_places=3, null=True, blank=True,
                                 editable=False, help_text="Mosteller BSA (computed)")
    planned_dose = models.DecimalField(max_digits=24, decimal_places=6, null=True,
                                       blank=True, editable=False,
                                       help_text="Protocol dose in dose_unit (computed)")
    planned_total = models.DecimalField(max_digits=30, decimal_places=6, null=True,
                                        blank=True, editable=False,
                                        help_text="Planned total amount (computed)")
    given_total = models.DecimalField(max_digits=30, decimal_places=6, null=True, blank=True,
                                      validators=[_positive],
                                      help_text="Total amount actually given")
    total_unit = models.CharField(max_length=20, blank=True, editable=False,
                                  help_text="cells or mg (computed)")
    interrupted = models.BooleanField(default=False)
    interruption_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["subject", "administered_on"]
        constraints = [
            models.UniqueConstraint(fields=["visit", "intervention"],
                                    condition=models.Q(retired_at__isnull=True),
                                    name="exposure_one_per_visit_agent"),
            models.CheckConstraint(condition=models.Q(dose_value__gt=0),
                                   name="exposure_dose_positive"),
            models.CheckConstraint(
                condition=models.Q(given_total__isnull=True) | models.Q(given_total__gt=0),
                name="exposure_given_total_positive"),
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True)
                | models.Q(end_date__gte=models.F("administered_on")),
                name="exposure_period_ordered"),
        ]

    def __str__(self) -> str:
        # No product name: in a blinded trial it would tell the arms apart wherever the
        # record is named (titles, breadcrumbs, data-management queries).
        return f"exposure {self.subject} {self.administered_on}"

    def derive(self) -> None:
        """The planned total from the planned (else prescribed) dose, weight and height
        (``scheduling.planned_dose``; Mosteller BSA for doses per m2); ``ValueError`` names an
        implausible input."""
        total_unit, basis = dosing.UNIT_TOTALS[self.dose_unit]
        dose = self.planned_dose if self.planned_dose is not None else self.dose_value
        self.planned_total = scheduling.planned_dose(dose, basis, self.weight_kg,
                                                     self.height_cm)
        self.bsa_m2 = (scheduling.mosteller_bsa(self.height_cm, self.weight_kg)
                       if basis == "per_m2" else None)
        self.total_unit = total_unit

    def on_corrected(self) -> None:
        """A corrected dose or body size: re-check against the protocol (deviations open or
        resolve) and re-evaluate the subject's DLT/TI flags (``signals.exposure_changed``)."""
        signals.exposure_changed.send(sender=Exposure, exposure=self, user=None, resolution="")


@audited
class TumourAssessment(ClinicalModel):
    """Overall response at an assessment visit (RECIST 1.1, mRECIST or iRECIST)."""

    class Method(models.TextChoices):
        CT = "CT", "CT"
        MRI = "MRI", "MRI"
        PET_CT = "PET-CT", "PET-CT"
        OTHER = "other", "other"

    class Criteria(models.TextChoices):
        RECIST_1_1 = "RECIST 1.1", "RECIST 1.1"
        MRECIST = "mRECIST", "mRECIST (HCC)"
        IRECIST = "iRECIST", "iRECIST"

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT,
                                related_name="tumour_assessments")
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="tumour_assessments",
                              db_index=False)
    assessment_date = models.DateField()
    method = models.CharField(max_length=10, choices=Method.choices)
    criteria = models.CharField(max_length=12, choices=Criteria.choices)
    overall_response = models.CharField(max_length=5, help_text="CR, PR, SD, PD, NE; iRECIST: "
                                        "iCR, iPR, iSD, iUPD, iCPD, NE")
    confirmed_progression = models.BooleanField(default=False)

    class Meta:
        ordering = ["subject", "assessment_date"]
        constraints = [
            models.UniqueConstraint(fields=["visit"], name="tumour_assessment_one_per_visit")
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.assessment_date} {self.overall_response}"


def _item_field(number: int) -> models.PositiveSmallIntegerField:
    top = qlq_c30.ITEM_MAX[f"q{number}"]
    return models.PositiveSmallIntegerField(
        f"Q{number}", null=True, blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(top)],
        help_text=f"1-{top}; blank if not answered",
    )


class QlqC30Items(models.Model):
    """The 30 items of the EORTC QLQ-C30 v3.0 (q1-q28 answered 1-4, q29-q30 answered 1-7)."""

    class Meta:
        abstract = True


for _n in range(1, 31):
    QlqC30Items.add_to_class(f"q{_n}", _item_field(_n))


@audited
class QlqC30Form(ClinicalModel, QlqC30Items):
    class Mode(models.TextChoices):
        PAPER = "paper", "paper"
        INTERVIEW = "interview", "interview"
        ELECTRONIC = "electronic", "electronic"
        #: Completed by the patient through a one-time ePRO link (``epro``): only that path
        #: writes it, and only a data clarification changes its answers.
        EPRO = "epro", "patient-completed (ePRO)"

    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="qlq_c30_forms",
                                db_index=False)
    visit = models.ForeignKey(Visit, on_delete=models.PROTECT, related_name="qlq_c30_forms")
    completion_date = models.DateField()
    mode = models.CharField(max_length=12, choices=Mode.choices)

    class Meta:
        verbose_name = "QLQ-C30 form"
        verbose_name_plural = "QLQ-C30 forms"
        ordering = ["subject", "completion_date"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "visit"], name="qlq_c30_one_per_visit")
        ]

    def __str__(self) -> str:
        return f"QLQ-C30 {self.subject} {self.completion_date}"

    def on_corrected(self) -> None:
        """A corrected item changes the scores: rescore (and re-derive deterioration)."""
        self.queue_scoring()

    def queue_scoring(self) -> None:
        """Mark the scores pending and queue scoring and deterioration (through the outbox,
        by task name) once the transaction commits."""
        QlqC30Score.objects.update_or_create(
            form=self, defaults={"state": ComputationState.PENDING, "error": ""})
        enqueue("visits.tasks.score_qlq_c30_form", self.pk)

    def responses(self) -> dict[str, int | None]:
        return {key: getattr(self, key) for key in qlq_c30.ITEM_KEYS}

    def clean(self):
        if self.visit_id and self.subject_id and self.visit.subject_id != self.subject_id:
            raise ValidationError({"visit": "This visit belongs to another subject."})


class ComputationState(models.TextChoices):
    PENDING = "pending", "pending"
    DONE = "done", "done"
    FAILED = "failed", "failed"


def _scale_field() -> models.FloatField:
    return models.FloatField(null=True, blank=True)


class QlqC30Score(models.Model):
    """Scores of one form (derived data: recomputed from the audited form by a task). Keyed by
    its form: one index for both, none to maintain for a surrogate key."""

    form = models.OneToOneField(QlqC30Form, on_delete=models.PROTECT, related_name="score",
                                primary_key=True)
    state = models.CharField(max_length=10, choices=ComputationState.choices,
                             default=ComputationState.PENDING)
    error = models.TextField(blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"scores of {self.form}"

    def as_dict(self) -> dict[str, float | None]:
        return {scale: getattr(self, scale) for scale in qlq_c30.SCALES}


for _scale in qlq_c30.SCALES:
    QlqC30Score.add_to_class(_scale, _scale_field())


#: The fields of one scale's time to deterioration (``qlq_c30.DeteriorationResult``'s) and the
#: time it was computed, as :class:`QlqC30SubjectDeterioration` has them for each scale
TTD_FIELDS = {
    "event": models.BooleanField,
    "event_date": partial(models.DateField, null=True, blank=True),
    "confirm_date": partial(models.DateField, null=True, blank=True),
    "censor_date": partial(models.DateField, null=True, blank=True),
    "days": models.IntegerField,
    "computed_at": models.DateTimeField,
}


class QlqC30SubjectDeterioration(models.Model):
    """Time to deterioration of every scale of one subject (derived, recomputed from the scored
    forms by a task or ``rescore_qlq_c30``): one row per subject with the fields of each scale
    (``PF2_event``, ``PF2_event_date``, ...), so a rescoring writes one row per subject, not
    one per scale. Read through :class:`QlqC30Deterioration` (one row per scale)."""

    subject = models.OneToOneField(Subject, on_delete=models.PROTECT, primary_key=True,
                                   related_name="qlq_c30_deterioration_set")

    def __str__(self) -> str:
        return f"QLQ-C30 deterioration of {self.subject}"


for _scale in qlq_c30.SCALES:
    for _name, _field in TTD_FIELDS.items():
        QlqC30SubjectDeterioration.add_to_class(f"{_scale}_{_name}", _field())


class QlqC30Deterioration(models.Model):
    """Time to deterioration of one scale for one subject: a read-only view of
    :class:`QlqC30SubjectDeterioration`, one row per scale (``id``: subject id * 16 + the
    scale's position in ``qlq_c30.SCALES``)."""

    subject = models.ForeignKey(Subject, on_delete=models.DO_NOTHING,
                                related_name="qlq_c30_deterioration", db_constraint=False)
    scale = models.CharField(max_length=4, choices=[(s, s) for s in qlq_c30.SCALES])
    event = models.BooleanField()
    event_date = models.DateField(null=True, blank=True)
    confirm_date = models.DateField(null=True, blank=True)
    censor_date = models.DateField(null=True, blank=True)
    days = models.IntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "visits_qlqc30deterioration"
        verbose_name = "QLQ-C30 deterioration"
        verbose_name_plural = "QLQ-C30 deteriorations"
        ordering = ["subject", "scale"]

    def __str__(self) -> str:
        return f"{self.subject} {self.scale}: {'event' if self.event else 'censored'}"
