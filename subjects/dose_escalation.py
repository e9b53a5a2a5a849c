"""The dose-finding recommendation of a trial and the investigator's confirmation of it.

The rule comes from the protocol file (``dose_finding``): a de-escalation chain (seed 000),
a model-based CRM (seed 001) or a dose x frequency grid with 3+3 steps (seed 003); the
arithmetic lives in :mod:`trials.dose_finding`. The observed outcomes per cohort come from
the subjects' effective DLT/TI flags (:func:`adverse_events.cohorts.cohort_outcomes`).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from adverse_events.cohorts import cohort_outcomes
from edc.audit import change_reason
from trials import dose_finding
from trials.models import Trial

from .models import DoseConfirmation, Subject


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _cohorts(trial: Trial):
    """Cohorts in enrollment order: (cohort, dose level code, frequency code, outcome)."""
    outcomes = cohort_outcomes(trial)
    frequency = dict(Subject.objects.filter(trial=trial, cohort__isnull=False)
                     .values_list("cohort", "frequency_level").distinct())
    return [(key[1], key[0], frequency.get(key[1], ""), outcome)
            for key, outcome in sorted(outcomes.items(), key=lambda kv: (kv[0][1] or 0))]


def recommendation(trial: Trial) -> dict:
    """The rule's recommendation for the next cohort, with the data it used."""
    version = trial.current_version()
    design = version.protocol().dose_finding
    if design is None:
        return {"rule": None, "action": "not_applicable", "basis": {},
                "explanation": "This protocol has no dose-finding design."}
    levels = list(version.dose_levels.order_by("order"))
    codes = [level.code for level in levels]
    cohorts = _cohorts(trial)
    try:
        return _recommend(design, levels, codes, cohorts)
    except ValueError as exc:  # observed data the rule does not allow: say so, do not guess
        return {"rule": design.method, "action": "data_inconsistent", "basis": {},
                "explanation": str(exc), "next_dose_level": None,
                "cohorts_observed": len(cohorts), "next_cohort": None}


def _recommend(design, levels, codes, cohorts) -> dict:
    next_frequency = None
    if design.direction == "de_escalation":
        result = dose_finding.deescalation_recommendation(
            [level.value for level in levels],
            [(codes.index(dose), o.evaluable, o.with_toxicity) for _, dose, _, o in cohorts],
            cohort_size=design.cohort_size or 3, unit=levels[0].unit)
        next_code = codes[result.next_level] if result.next_level is not None else None
    elif design.model == "crm":
        tried = [codes.index(dose) for _, dose, _, _ in cohorts]
        result = dose_finding.crm_recommendation(
            dose_finding.default_skeleton(design.target_toxicity, len(levels),
                                          len(levels) // 2),
            design.target_toxicity,
            [(codes.index(dose), o.evaluable, o.with_dlt) for _, dose, _, o in cohorts],
            current_level=max(tried) if tried else None, level_labels=codes)
        next_code = codes[result.recommended_level]
    else:
        frequencies = [f.code for f in design.frequency_levels] or [""]
        result = dose_finding.grid_escalation_recommendation(
            codes, frequencies,
            [(dose, freq or frequencies[0], o.evaluable, o.with_dlt)
             for _, dose, freq, o in cohorts])
        next_code = result.next_value[0] if result.next_value else None
        next_frequency = result.next_value[1] if result.next_value and design.frequency_levels \
            else None
    data = _jsonable(result)
    data.update({"next_dose_level": next_code, "next_frequency_level": next_frequency,
                 "cohorts_observed": len(cohorts),
                 "next_cohort": len(cohorts) + 1})
    data.setdefault("action", "enroll")
    return data


@transaction.atomic
def confirm(trial: Trial, *, arm_code: str, cohort: int, dose_level_code: str, user,
            frequency_level: str = "", reason: str = "") -> DoseConfirmation:
    """An investigator confirms the dose of the next cohort (audited, with the data used).

    Every input is checked against the current protocol version (arm, dose level, frequency
    level, cohort number); choosing another dose or frequency than the recommendation needs a
    reason.
    """
    Trial.objects.select_for_update().get(pk=trial.pk)
    version = trial.current_version()
    errors = {}
    arm = version.arms.filter(code=arm_code).first()
    if arm is None:
        errors["arm"] = f"no arm {arm_code!r} in this protocol version"
    level = version.dose_levels.filter(code=dose_level_code).first()
    if level is None:
        errors["dose_level"] = f"no dose level {dose_level_code!r}"
    problem = dose_finding.frequency_level_problem(version.protocol().dose_finding, frequency_level)
    if problem:
        errors["frequency_level"] = problem
    if errors:
        raise ValidationError(errors)
    current = recommendation(trial)
    if current["action"] in ("cohort_incomplete", "data_inconsistent", "not_applicable"):
        raise ValidationError({"cohort": f"nothing to confirm: {current['explanation']}"})
    expected = current.get("next_cohort")
    if cohort != expected:
        raise ValidationError({"cohort": f"the next cohort to confirm is {expected}"})
    recommended = (current.get("next_dose_level"), current.get("next_frequency_level"))
    chosen = (dose_level_code, frequency_level or None)
    if recommended[0] is not None and recommended != chosen and not reason.strip():
        raise ValidationError({"reason": (
            f"the recommendation is {' x '.join(filter(None, recommended))}; a reason is "
            f"required to confirm {' x '.join(filter(None, chosen))} instead")})
    text = f"dose for cohort {cohort} confirmed" + (f": {reason.strip()}" if reason else "")
    with change_reason(text, user):
        return DoseConfirmation.objects.create(
            trial=trial, arm=arm, cohort=cohort, dose_level=level,
            frequency_level=frequency_level, recommendation=current, confirmed_by=user)
