"""Visit-side services called explicitly by the API, the admin and the tasks.

Each service validates before it writes (``ValidationError`` naming the field; nothing
saved on refusal), runs in one transaction and records its reason for change.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from edc.core.audit import change_reason, subject_transaction
from subjects import lifecycle, plausibility
from subjects.models import Subject
from trials.protocol_schema import FREQUENCIES

from . import dose_checks, dosing, qlq_c30, scheduling, signals
from .models import (
    TTD_FIELDS,
    ComputationState,
    Exposure,
    QlqC30Deterioration,
    QlqC30Form,
    QlqC30Score,
    QlqC30SubjectDeterioration,
    TumourAssessment,
    Visit,
)
from .protocol_plan import QLQ_C30, build_visit_plan, instrument_assessments

# ---------------------------------------------------------------- schedule


def _subject_state(subject: Subject, visits: dict[str, Visit]) -> scheduling.SubjectState:
    done = {code: v.actual_date for code, v in visits.items()
            if v.status == Visit.Status.DONE and v.actual_date}
    stop = None
    if subject.treatment_stop_date:
        stop = (subject.treatment_stop_date, subject.treatment_stop_reason)
    off_study = subject.status == lifecycle.OFF_STUDY
    off = (subject.status_date, subject.status_reason) if off_study else None
    return scheduling.SubjectState(day0=subject.day0, done=done, treatment_stop=stop,
                                   off_study=off)


def regenerate_visits(subject: Subject, reason: str = "schedule regenerated",
                      locked: bool = False) -> list[Visit]:
    """Materialise the subject's planned visits from its protocol version.

    Visits already done, missed or not done are never touched; planned visits move with
    the plan (a late infusion shifts the following ones); planned visits that the plan no
    longer has (treatment stopped, death, withdrawal) are cancelled, not deleted. New visits
    are written in one ``bulk_create`` (one INSERT: the audit hash chain's lock on the visit
    table is then held for one statement, not one per visit). ``locked``: ``subject`` is the
    caller's locked instance, its new state not saved yet (enrollment: ``subjects.signals``),
    and the writes join the caller's transaction (no savepoint: a refusal rolls it back).
    """
    with subject_transaction(locked):
        return _regenerate_visits(subject, reason, locked)


def _regenerate_visits(subject: Subject, reason: str, locked: bool) -> list[Visit]:
    if not locked:
        subject = Subject.objects.select_for_update(of=("self",)).select_related(
            "arm", "trial", "protocol_version").get(pk=subject.pk)
    if subject.day0 is None or subject.arm is None:
        return []
    plan = build_visit_plan(subject.protocol_version.protocol(), subject.arm.code,
                            subject.day0, frequency_level=subject.frequency_level or None,
                            end_of_study=subject.trial.completion_date,
                            enrolled_on=subject.enrolled_on)
    existing = {v.code: v for v in subject.visits.all()}
    planned = scheduling.plan_visits(plan, _subject_state(subject, existing))
    keep, new = set(), []
    with change_reason(reason):
        for p in planned:
            keep.add(p.key)
            values = {"kind": p.kind, "cycle": p.cycle, "intervention": p.intervention or "",
                      "target_date": p.target, "window_low": p.window_low,
                      "window_high": p.window_high, "qlq_c30_due": p.qlq_c30}
            visit = existing.get(p.key)
            if visit is None:
                new.append(Visit(subject=subject, code=p.key, **values))
            elif visit.status in (Visit.Status.PLANNED, Visit.Status.CANCELLED):
                values["status"] = Visit.Status.PLANNED
                values["status_reason"] = ""
                if any(getattr(visit, k) != v for k, v in values.items()):
                    for k, v in values.items():
                        setattr(visit, k, v)
                    visit.save()
        for code, visit in existing.items():
            if code not in keep and visit.status == Visit.Status.PLANNED:
                visit.status = Visit.Status.CANCELLED
                visit.status_reason = reason
                visit.save()
        for visit in Visit.objects.bulk_create(new):
            existing[visit.code] = visit
    return sorted(existing.values(), key=lambda v: (v.target_date or dt.date.min, v.code))


def _check_actual_date(visit: Visit, on: dt.date) -> None:
    subject = visit.subject
    if on > timezone.localdate():
        raise ValidationError({"actual_date": f"{on.isoformat()} is in the future."})
    earliest = subject.day0
    if visit.kind in (Visit.Kind.SCREENING, Visit.Kind.BASELINE) or (
        visit.window_low and visit.window_low < subject.day0
    ):
        earliest = visit.window_low or subject.consent_date
    if earliest and on < earliest:
        raise ValidationError({"actual_date": (
            f"{on.isoformat()} is before day 0 ({subject.day0.isoformat()})"
            if earliest == subject.day0 else
            f"{on.isoformat()} is before this visit can take place ({earliest.isoformat()})")})


@transaction.atomic
def record_visit(visit: Visit, on: dt.date, user=None, reason: str = "") -> Visit:
    """Mark a visit done on its actual date; a date outside the window is a deviation."""
    visit = Visit.objects.select_for_update().select_related("subject").get(pk=visit.pk)
    if visit.status not in (Visit.Status.PLANNED, Visit.Status.DONE):
        raise ValidationError({"status": f"a {visit.status} visit cannot be recorded as done"})
    _check_actual_date(visit, on)
    text = reason or ("visit done" if visit.status == Visit.Status.PLANNED else "")
    with change_reason(text or "visit date corrected", user):
        visit.actual_date = on
        visit.status = Visit.Status.DONE
        visit.save()
    subject = visit.subject
    first_treatment = visit.kind in (Visit.Kind.INFUSION, Visit.Kind.MONTH)
    if first_treatment and subject.status == lifecycle.ENROLLED:
        from subjects.services import change_status

        change_status(subject, "on_treatment", on, "first study treatment given", user)
    else:
        regenerate_visits(subject, f"visit {visit.code} done on {on.isoformat()}")
    return visit


@transaction.atomic
def mark_missed(visit: Visit, reason: str, user=None) -> Visit:
    """A visit that did not take place, with the reason (never deleted)."""
    if not reason.strip():
        raise ValidationError({"reason": "a missed visit needs a reason"})
    visit = Visit.objects.select_for_update().get(pk=visit.pk)
    if visit.status != Visit.Status.PLANNED:
        raise ValidationError({"status": f"a {visit.status} visit cannot be marked missed"})
    with change_reason(f"visit missed: {reason}", user):
        visit.status = Visit.Status.MISSED
        visit.status_reason = reason
        visit.save()
    return visit


# ---------------------------------------------------------------- exposure

EXPOSURE_CHECKS = (
    ("weight_kg", plausibility.weight_problem), ("height_cm", plausibility.height_problem),
    ("dose_value", plausibility.amount_problem), ("given_total", plausibility.amount_problem),
)


def check_exposure_values(values: dict) -> None:
    """Plausibility at the door (``subjects.plausibility``, EDC plausibility defaults): body
    size, positive amounts, nothing dated after today; ``ValidationError`` naming each field."""
    today = timezone.localdate()
    problems = {field: problem for field, check in EXPOSURE_CHECKS
                if field in values and (problem := check(values[field])) is not None}
    problems.update({field: problem for field in ("administered_on", "start_time", "stop_time")
                     if field in values
                     and (problem := plausibility.future_problem(values[field], today))})
    if problems:
        raise ValidationError(problems)
TREATMENT_VISIT_KINDS = (Visit.Kind.INFUSION, Visit.Kind.ADMINISTRATION, Visit.Kind.MONTH)
#: Fields of a recorded exposure that a correction may change (with a reason); the product and
#: the visit are not among them: an exposure recorded against the wrong one is retired.
CORRECTABLE = ("administered_on", "end_date", "dose_value", "weight_kg", "height_cm",
               "given_total", "start_time", "stop_time", "interrupted", "interruption_reason")


def _arm_regimen(subject: Subject, code: str):
    """The regimen of ``code`` in the subject's arm (None: the arm does not receive it)."""
    protocol = subject.protocol_version.protocol()
    return next((r for r in protocol.regimens_for(subject.arm.code if subject.arm else "")
                 if r.intervention == code), None)


def _visit_bound(regimen) -> bool:
    """Products the schedule gives visits for are recorded at those visits."""
    return regimen is not None and not regimen.continuous and bool(
        regimen.interval or regimen.course_days or regimen.at_visits)


def _dose_regimen(subject: Subject, intervention, regimen):
    """The regimen whose dose applies: the arm's, or for a matching placebo whose regimen
    states none, the masked product's (``trials.blinding``: prescribed like its active)."""
    if regimen is None or regimen.dose_specified or not intervention.placebo_for:
        return regimen
    protocol = subject.protocol_version.protocol()
    return next((r for r in protocol.regimens if r.intervention == intervention.placebo_for
                 and r.dose_specified), regimen)


def _expected_unit(subject: Subject, intervention, regimen) -> str:
    """The regimen's dose unit (for a matching placebo, its active's: the unit cannot tell
    them apart), else the subject's dose level's unit; empty when the protocol gives none."""
    regimen = _dose_regimen(subject, intervention, regimen)
    if regimen is None:
        return ""
    if regimen.dose_unit:
        return regimen.dose_unit
    if regimen.dose_mode == "dose_finding" and subject.dose_level:
        return subject.dose_level.unit
    return ""


def planned_dose_of(subject: Subject, intervention, regimen) -> Decimal | None:
    """Rule D1 of ``dose_checks``: the regimen's fixed dose or the subject's dose level."""
    regimen = _dose_regimen(subject, intervention, regimen)
    if regimen is None:
        return None
    if regimen.dose_mode == "fixed" and regimen.dose_value is not None:
        return Decimal(str(regimen.dose_value))
    if regimen.dose_mode == "dose_finding" and subject.dose_level_id:
        return subject.dose_level.value
    return None


def planned_dose_for(subject: Subject, intervention) -> tuple[Decimal, str] | None:
    """The planned dose of ``intervention`` for ``subject`` and its unit (rule D1), if any."""
    regimen = _arm_regimen(subject, intervention.code)
    dose = planned_dose_of(subject, intervention, regimen)
    return None if dose is None else (dose, _expected_unit(subject, intervention, regimen))


def dose_findings(exposure: Exposure, regimen=None) -> list[dose_checks.DoseFinding]:
    """The dose-check findings (``dose_checks``) of a saved or prepared exposure; none where
    the protocol version carries no protocol file (nothing states a regimen to check)."""
    subject = exposure.subject
    if not subject.protocol_version.document:
        return []
    if regimen is None:
        regimen = _arm_regimen(subject, exposure.intervention.code)
    source = _dose_regimen(subject, exposure.intervention, regimen)
    ranged = source is not None and source.dose_mode == "range" and (
        source.dose_unit == exposure.dose_unit)
    findings = dose_checks.check_dose(
        product=exposure.intervention.code, unit=exposure.dose_unit,
        prescribed=exposure.dose_value, planned=exposure.planned_dose,
        planned_total=exposure.planned_total if exposure.planned_dose is not None else None,
        given_total=exposure.given_total, total_unit=exposure.total_unit,
        dose_min=Decimal(str(source.dose_min)) if ranged else None,
        dose_max=Decimal(str(source.dose_max)) if ranged else None,
        tolerance_pct=source.dose_tolerance_pct if source is not None else None,
        in_arm=regimen is not None)
    return findings


def after_exposure_change(exposure: Exposure, user=None, resolution: str = "") -> None:
    """Tell the apps above (``signals.exposure_changed``, in this transaction): data management
    re-checks the dose (deviations and their queries open or resolve; an exposure out of
    protocol is not saved without its deviation), adverse events re-evaluate DLT/TI."""
    signals.exposure_changed.send(sender=Exposure, exposure=exposure, user=user,
                                  resolution=resolution)


def _check_dates(subject: Subject, visit: Visit | None, on: dt.date,
                 end: dt.date | None) -> None:
    if visit is not None:
        _check_actual_date(visit, on)
    elif on > timezone.localdate():
        raise ValidationError({"administered_on": f"{on.isoformat()} is in the future."})
    elif subject.day0 and on < subject.day0:
        raise ValidationError({"administered_on": (
            f"{on.isoformat()} is before day 0 ({subject.day0.isoformat()})")})
    if end is not None:
        if end < on:
            raise ValidationError({"end_date": "the period ends before it starts"})
        if end > timezone.localdate():
            raise ValidationError({"end_date": f"{end.isoformat()} is in the future."})


def _derive(exposure: Exposure) -> None:
    try:
        exposure.derive()
    except ValueError as exc:
        field = "height_cm" if "height" in str(exc) else "weight_kg"
        raise ValidationError({field: str(exc)}) from None


@transaction.atomic
def record_exposure(visit: Visit | None = None, *, intervention, administered_on: dt.date,
                    dose_value: Decimal, dose_unit: str, subject: Subject | None = None,
                    weight_kg: Decimal | None = None, height_cm: Decimal | None = None,
                    end_date: dt.date | None = None, frequency: str = "", user=None,
                    **extra) -> Exposure:
    """Record one administration, or one dosing period of a daily regimen.

    Visit-bound products (the schedule has visits for them) need their treatment visit; daily
    regimens are periods (``administered_on``..``end_date``, the regimen's frequency); products
    given per label without visits take an optional visit. The unit must be the protocol's.
    A dose outside the protocol (``dose_checks``) or a product the arm does not receive is
    saved with a protocol deviation and a query (``after_exposure_change``).
    """
    if visit is not None:
        if subject is not None and visit.subject_id != subject.pk:
            raise ValidationError({"visit": "This visit belongs to another subject."})
        subject = visit.subject
    if subject is None:
        raise ValidationError({"subject": "name the subject (or the visit)"})
    if subject.arm_id is None or subject.day0 is None:
        raise ValidationError({"subject": "study treatment is recorded for enrolled subjects"})
    regimen = _arm_regimen(subject, intervention.code)
    if regimen is not None and regimen.continuous:
        if visit is not None:
            raise ValidationError({"visit": (
                f"{intervention.code} is taken daily: record dosing periods (start and end "
                "dates), not a visit.")})
        frequency = frequency or regimen.frequency
    elif _visit_bound(regimen) and (visit is None or visit.kind not in TREATMENT_VISIT_KINDS):
        raise ValidationError({"visit": "exposures are recorded at treatment visits only"})
    if frequency and frequency not in FREQUENCIES:
        raise ValidationError({"frequency": f"use a CDISC frequency: {', '.join(FREQUENCIES)}"})
    if end_date is not None and not frequency:
        raise ValidationError({"end_date": "only a dosing period (with a frequency) has an end"})
    expected_unit = _expected_unit(subject, intervention, regimen)
    if expected_unit and dose_unit != expected_unit:
        raise ValidationError({"dose_unit": (
            f"{dose_unit!r} does not match the protocol's unit {expected_unit!r} for "
            f"{intervention.code}.")})
    if dose_unit not in dosing.UNIT_TOTALS:
        raise ValidationError({"dose_unit": f"unknown dose unit {dose_unit!r}"})
    if dose_value is None:
        raise ValidationError({"dose_value": "the dose must be positive"})
    check_exposure_values({"administered_on": administered_on, "dose_value": dose_value,
                           "weight_kg": weight_kg, "height_cm": height_cm, **extra})
    exposure = Exposure(
        subject=subject, visit=visit, intervention=intervention,
        administered_on=administered_on, end_date=end_date, frequency=frequency,
        dose_value=dose_value, dose_unit=dose_unit, weight_kg=weight_kg, height_cm=height_cm,
        planned_dose=planned_dose_of(subject, intervention, regimen), **extra,
    )
    _derive(exposure)
    _check_dates(subject, visit, administered_on, end_date)
    exposure.save()
    if visit is not None and visit.status == Visit.Status.PLANNED:
        record_visit(visit, administered_on, user)
    elif visit is None and subject.status == lifecycle.ENROLLED:
        from subjects.services import change_status

        change_status(subject, "on_treatment", administered_on, "first study treatment given",
                      user)
    after_exposure_change(exposure, user)
    return exposure


def unscheduled_products(subject: Subject) -> list[str]:
    """Product codes of the subject's arm recorded without a visit (daily periods, products
    given per label without visits); none in a blinded trial's masking groups."""
    if subject.arm_id is None:
        return []
    protocol = subject.protocol_version.protocol()
    masked = {i.placebo_for for i in protocol.interventions if i.placebo_for}
    masked |= {i.code for i in protocol.interventions if i.placebo_for}
    return [r.intervention for r in protocol.regimens_for(subject.arm.code)
            if not _visit_bound(r) and r.intervention not in masked]


def check_correction(exposure: Exposure, changes: dict) -> None:
    """The checks of :func:`correct_exposure` without saving (``ValidationError`` per field)."""
    refused = sorted(set(changes) - set(CORRECTABLE))
    if refused:
        raise ValidationError(dict.fromkeys(refused, (
            "not correctable: retire this exposure (entered in error) and record it again")))
    if exposure.retired_at:
        raise ValidationError({"retired_at": "a retired exposure cannot be corrected"})
    merged = {name: changes.get(name, getattr(exposure, name)) for name in CORRECTABLE}
    if merged["dose_value"] is None:
        raise ValidationError({"dose_value": "the dose must be positive"})
    check_exposure_values({name: value for name, value in merged.items() if value is not None})
    _check_dates(exposure.subject, exposure.visit, merged["administered_on"],
                 merged["end_date"])
    if merged["end_date"] is not None and not exposure.frequency:
        raise ValidationError({"end_date": "only a dosing period (with a frequency) has an end"})
    probe = Exposure(**{f.attname: getattr(exposure, f.attname)
                        for f in Exposure._meta.concrete_fields})
    for name, value in changes.items():
        setattr(probe, name, value)
    _derive(probe)


@transaction.atomic
def correct_exposure(exposure: Exposure, changes: dict, reason: str, user=None) -> Exposure:
    """Correct entered values of an exposure with a reason (audited old -> new): the planned
    total is recomputed, the dose re-checked (a deviation resolves when the corrected dose is
    within the protocol) and the DLT/TI flags re-evaluated. Locked data is refused and a
    signature on it invalidated by ``data_management.guards`` when saved."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "A reason for change is required to correct a "
                                         "saved record."})
    exposure = Exposure.objects.select_for_update(of=("self",)).select_related(
        "subject__protocol_version", "subject__arm", "subject__dose_level", "intervention",
        "visit").get(pk=exposure.pk)
    check_correction(exposure, changes)
    for name, value in changes.items():
        setattr(exposure, name, value)
    _derive(exposure)
    with change_reason(reason, user):
        exposure.save()
        after_exposure_change(exposure, user, f"corrected: {reason.strip()}")
    return exposure


@transaction.atomic
def retire_exposure(exposure: Exposure, reason: str, user=None) -> Exposure:
    """An exposure entered in error: retired with the reason (kept, audited); its deviations
    resolve and the DLT/TI flags are re-evaluated without it."""
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why the exposure is retired."})
    exposure = Exposure.objects.select_for_update().get(pk=exposure.pk)
    if exposure.retired_at:
        raise ValidationError({"retired_at": "this exposure is already retired"})
    exposure.retire(reason, user)
    with change_reason(f"exposure retired: {reason.strip()}", user):
        after_exposure_change(exposure, user, f"exposure retired: {reason.strip()}")
    return exposure


# ---------------------------------------------------------------- tumour response


@transaction.atomic
def record_tumour_assessment(visit: Visit, *, assessment_date: dt.date, method: str,
                             criteria: str, overall_response: str,
                             user=None) -> TumourAssessment:
    """Record an overall response; a confirmed progression moves the subject to follow-up."""
    subject = visit.subject
    if visit.kind not in (Visit.Kind.ASSESSMENT, Visit.Kind.BASELINE, Visit.Kind.FOLLOW_UP,
                          Visit.Kind.UNSCHEDULED):
        raise ValidationError({"visit": "tumour assessments belong to assessment visits"})
    try:
        dosing.check_response(criteria, overall_response)
    except ValueError as exc:
        field = "criteria" if "criteria" in str(exc) else "overall_response"
        raise ValidationError({field: str(exc)}) from None
    allowed = subject.protocol_version.protocol().visit_plan.response_criteria or ()
    if allowed and criteria not in allowed:
        raise ValidationError({"criteria": (
            f"the protocol names {', '.join(allowed)}; {criteria} is not one of them")})
    _check_actual_date(visit, assessment_date)
    confirmed = overall_response == dosing.CONFIRMED_PROGRESSION[criteria]
    assessment = TumourAssessment.objects.create(
        subject=subject, visit=visit, assessment_date=assessment_date, method=method,
        criteria=criteria, overall_response=overall_response,
        confirmed_progression=confirmed,
    )
    if visit.status == Visit.Status.PLANNED:
        record_visit(visit, assessment_date, user)
    if confirmed and subject.status == lifecycle.ON_TREATMENT:
        from subjects.services import stop_treatment

        stop_treatment(subject, assessment_date, "progression", user)
    return assessment


# ---------------------------------------------------------------- QLQ-C30


def score_form(form_id: int) -> QlqC30Score:
    """Score one form (EORTC QLQ-C30 Scoring Manual, 3rd ed.) and store the result."""
    form = QlqC30Form.objects.get(pk=form_id)
    values = qlq_c30.score(form.responses())
    score, _ = QlqC30Score.objects.update_or_create(
        form=form,
        defaults={**values, "state": ComputationState.DONE, "error": "",
                  "computed_at": timezone.now()},
    )
    return score


def check_qlq_form(subject: Subject, visit: Visit | None, completion_date, *,
                   new: bool = True) -> None:
    """A QLQ-C30 form only in a trial whose protocol schedules the instrument, never dated in
    the future or before consent (``subjects.plausibility``); ``ValidationError`` naming the
    field.  A form at a visit where the protocol schedules none is accepted but unscheduled
    (``visit.qlq_c30_due`` False) and left out of time to deterioration (see
    :func:`recompute_deterioration`).  ``new=False`` (a correction of a saved form of the same
    subject) checks the date only."""
    if subject is None:
        return
    if new and not instrument_assessments(subject.protocol_version.protocol(), QLQ_C30):
        raise ValidationError({"subject": (
            f"The protocol of {subject.trial} does not schedule the {QLQ_C30}: no form can be "
            "recorded in this trial.")})
    problem = plausibility.future_problem(completion_date, timezone.localdate())
    if problem is None and completion_date is not None and completion_date < subject.consent_date:
        problem = (f"{completion_date.isoformat()} is before consent "
                   f"({subject.consent_date.isoformat()}).")
    if problem is not None:
        raise ValidationError({"completion_date": problem})


def counts_unscheduled_forms(version) -> bool:
    """Whether the protocol version lets unscheduled QLQ-C30 forms count in deterioration."""
    return any(a.unscheduled_in_analysis for a in
               instrument_assessments(version.protocol(), QLQ_C30))


def start_date_of(subject: Subject):
    """Time-to-deterioration origin: the enrollment date (day 0 or consent as fall-backs)."""
    return subject.enrolled_on or subject.day0 or subject.consent_date


@transaction.atomic
def recompute_deterioration(subject_id: int) -> list[QlqC30Deterioration]:
    """Recompute time to deterioration of every scale of one subject from its forms: those
    at visits where the protocol schedules the QLQ-C30 (and unscheduled ones only where the
    protocol allows them, ``unscheduled_in_analysis``).

    The subject row is locked so two runs for one subject serialise; the result is the
    subject's one row (every scale) whatever the number of runs, read back one row per scale.
    """
    subject = Subject.objects.select_for_update().get(pk=subject_id)
    scores = QlqC30Score.objects.filter(
        form__subject=subject, form__retired_at__isnull=True, state=ComputationState.DONE)
    if not counts_unscheduled_forms(subject.protocol_version):
        scores = scores.filter(form__visit__qlq_c30_due=True)  # scheduled forms only
    forms = list(scores.select_related("form").order_by("form__completion_date", "form_id"))
    start = start_date_of(subject)
    results = [qlq_c30.time_to_deterioration(
        scale, start, [(s.form.completion_date, getattr(s, scale)) for s in forms])
        for scale in qlq_c30.SCALES]
    now = timezone.now()
    QlqC30SubjectDeterioration.objects.update_or_create(subject=subject, defaults={
        f"{scale}_{name}": value for scale, r in zip(qlq_c30.SCALES, results, strict=True)
        for name, value in zip(TTD_FIELDS, (r.event, r.event_date, r.confirm_date,
                                            r.censor_date, r.days, now), strict=True)})
    return list(QlqC30Deterioration.objects.filter(subject=subject).order_by("id"))  # SCALES order
