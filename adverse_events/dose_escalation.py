"""The dose-finding recommendation of a trial and the investigators' decisions on it.

No rule, no advice: a recommendation is computed only from a rule the protocol file states
(``dose_finding``: a de-escalation chain (seed 000), a 3+3 path (``model = "3+3"``) or a CRM
with its declared ``[dose_finding.crm]`` parameters (seed 001)) and its trigger toxicity rule.
Where the protocol states neither (seed 003), the answer is "not computable" with the observed
toxicity per dose step, and each next step needs an investigator's decision with a reason,
recorded as a decision outside a protocol rule. The arithmetic lives in
:mod:`trials.dose_finding`; the per-subject data in :mod:`adverse_events.cohorts`; evaluability
and safety stops are the EDC safety defaults of ``trials.dose_finding`` (section 4).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from edc.core.audit import change_reason
from subjects.models import DoseConfirmation, SafetyReview
from trials import dose_finding
from trials.models import Trial

from .cohorts import dose_finding_courses

#: EDC default where the protocol gives no cohort size (seed 003): cohorts of 3, the size of
#: every rule-based phase I design; with no rule, each cohort is opened by a human decision.
DEFAULT_COHORT_SIZE = 3
RESULT_ACTIONS = ("tolerable_dose_found", "rp2d_found")
NOTHING_TO_CONFIRM = ("cohort_incomplete", "expand", "data_inconsistent", "not_applicable",
                      "safety_stop", "no_tolerable_dose", "no_tolerated_step")


def _jsonable(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def cohort_size(design) -> int:
    """The protocol's cohort size (CRM table, then ``dose_finding.cohort_size``), else 3."""
    if design.crm is not None:
        return design.crm.cohort_size
    return design.cohort_size or DEFAULT_COHORT_SIZE


def rule_problem(design, protocol) -> str | None:
    """Why no recommendation can be computed from this protocol, or None."""
    if design.method == "not_stated":
        return "not computable: the protocol defines no escalation rule"
    if design.trigger_rule is None:
        return "not computable: the protocol defines no DLT rule"
    if design.direction == "de_escalation" and design.method == "rule_based":
        return None
    if design.model == "3+3" and design.method == "rule_based":
        return None
    if design.model in ("crm", "bayesian_crm") and design.method == "model_based":
        if design.crm is None:
            return ("not computable: the protocol file declares no CRM parameters "
                    "([dose_finding.crm]: model, skeleton, prior variance, cohort size)")
        return None
    return f"not computable: no implementation of the protocol's rule ({design.model})"


def _trigger(protocol, design):
    return next((r for r in protocol.toxicity_rules or () if r.code == design.trigger_rule),
                None)


def _sources(design, trigger) -> dict:
    """The protocol's own words behind the rule and which values it does not state."""
    out = {"dose_finding": list(design.quote), "not_stated": list(design.not_stated),
           "inferred": list(design.inferred), "note": design.note}
    if trigger is not None:
        out["trigger_rule"] = {"code": trigger.code, "quote": list(trigger.quote),
                               "note": trigger.note}
    if design.crm is not None:
        out["crm"] = {"quote": list(design.crm.quote), "inferred": list(design.crm.inferred),
                      "note": design.crm.note}
    return out


def _cite(design, trigger) -> str:
    """The protocol's words for the rule and its trigger, for the explanation."""
    quotes = [*design.quote[:1], *(trigger.quote[:1] if trigger else ())]
    return (" Source: " + "; ".join(f'protocol: "{q}"' for q in quotes) + ".") if quotes else ""


def recommendation(trial: Trial, as_of: dt.date | None = None) -> dict:
    """The protocol rule's recommendation for the next cohort, with the state behind it:
    cohorts, evaluable subjects, flags with reasons, deaths, the rule and its source quote."""
    as_of = as_of or timezone.localdate()
    version = trial.current_version()
    protocol = version.protocol()
    design = protocol.dose_finding
    if design is None:
        return {"rule": None, "action": "not_applicable", "basis": {}, "cohorts": [],
                "explanation": "This protocol has no dose-finding design."}
    trigger = _trigger(protocol, design)
    window = trigger.window_days if trigger else None
    courses = dose_finding_courses(trial, design.arms, design.intervention, window)
    size = cohort_size(design)
    table = dose_finding.cohort_table(courses, window, as_of, size)
    reviewed = [ae for r in SafetyReview.objects.filter(trial=trial, retired_at__isnull=True)
                for ae in r.adverse_events]
    stop = dose_finding.safety_stop(courses, reviewed)
    levels = list(version.dose_levels.order_by("order"))
    data = {
        "rule": design.model or design.method, "arms": list(design.arms),
        "cohort_size": size, "cohort_size_source": (
            "protocol" if design.cohort_size or design.crm else
            f"EDC default ({DEFAULT_COHORT_SIZE}; the protocol states none)"),
        "evaluation_window_days": window, "source": _sources(design, trigger),
        "edc_safety_defaults": [dose_finding.EDC_DEFAULT_EVALUABILITY,
                                dose_finding.EDC_DEFAULT_RELATED_DEATH],
        "cohorts": _jsonable(table), "cohorts_observed": len(table),
        "next_cohort": len(table) + 1, "safety_stop": _jsonable(stop),
    }
    problem = rule_problem(design, protocol)
    if problem is not None:
        data.update({"action": "not_computable", "basis": {}, "next_dose_level": None,
                     "explanation": (
                         f"{problem[0].upper()}{problem[1:]}. Observed toxicity per dose step is "
                         "shown; opening the next step needs an investigator's decision with a "
                         "reason, recorded as a decision outside a protocol rule.")})
    else:
        try:
            data.update(_recommend(design, levels, table, size))
            data["explanation"] += _cite(design, trigger)
        except ValueError as exc:  # observed data the rule does not allow: say so, do not guess
            data.update({"action": "data_inconsistent", "basis": {}, "next_dose_level": None,
                         "explanation": str(exc)})
    if stop is not None:
        data["rule_result"] = {k: data.get(k) for k in ("action", "next_dose_level",
                                                        "explanation")}
        data.update({"action": "safety_stop", "next_dose_level": None,
                     "explanation": stop["explanation"]})
    return data


def _recommend(design, levels, table, size) -> dict:
    codes = [level.code for level in levels]
    rows = [(codes.index(c["dose_level"]), c["n_evaluable"], c["n_events"]) for c in table]
    if design.direction == "de_escalation":
        result = dose_finding.deescalation_recommendation(
            [level.value for level in levels], rows, cohort_size=size, unit=levels[0].unit)
        next_code = codes[result.next_level] if result.next_level is not None else None
        selected = codes[result.selected_level] if result.selected_level is not None else None
    elif design.crm is not None:
        crm = design.crm
        result = dose_finding.crm_recommendation(
            list(crm.skeleton), design.target_toxicity, rows,
            current_level=max((r[0] for r in rows), default=None),
            no_skipping=crm.no_skipping, start_level=codes.index(crm.start_level),
            prior_variance=crm.prior_variance, model=crm.model,
            intercept=crm.intercept if crm.intercept is not None else 3.0,
            tie_break=crm.tie_break, level_labels=codes)
        next_code, selected = codes[result.recommended_level], None
        if crm.inferred:
            result = dataclasses.replace(result, explanation=(
                f"{result.explanation} Parameters not stated in the protocol document "
                f"(inferred, see the protocol file's note): {', '.join(crm.inferred)}."))
    else:
        frequencies = [f.code for f in design.frequency_levels] or [""]
        result = dose_finding.grid_escalation_recommendation(
            codes, frequencies,
            [(c["dose_level"], c["frequency"] or frequencies[0], c["n_evaluable"],
              c["n_events"]) for c in table])
        next_code = result.next_value[0] if result.next_value else None
        selected = result.selected_value[0] if result.selected_value else None
    data = _jsonable(result)
    data["rule"] = getattr(result, "rule", None) or "crm"
    data.setdefault("action", "enroll")
    data.update({"next_dose_level": next_code, "selected_dose_level": selected})
    if isinstance(result, dose_finding.Recommendation) and result.next_value and \
            isinstance(result.next_value, tuple):
        data["next_frequency_level"] = result.next_value[1]
    return data


@transaction.atomic
def confirm(trial: Trial, *, arm_code: str, cohort: int | None, dose_level_code: str, user,
            frequency_level: str = "", reason: str = "",
            kind: str = DoseConfirmation.Kind.NEXT_COHORT) -> DoseConfirmation:
    """An investigator confirms the dose of the next cohort, or the rule's result (audited).

    ``kind="result"`` confirms what the rule found (the dose of arms that depend on it).
    Another dose than the recommendation's, any decision where the protocol defines no rule,
    and a cohort after the rule's decision (an extra cohort) need a reason and are recorded as
    decisions outside a protocol rule.
    """
    Trial.objects.select_for_update().get(pk=trial.pk)
    version = trial.current_version()
    design = version.protocol().dose_finding
    errors = {}
    arm = version.arms.filter(code=arm_code).first()
    if arm is None:
        errors["arm"] = f"no arm {arm_code!r} in this protocol version"
    elif design is None or arm.code not in design.arms:
        errors["arm"] = f"arm {arm_code} is not a dose-finding arm"
    if kind not in DoseConfirmation.Kind.values:
        errors["kind"] = f"one of {', '.join(DoseConfirmation.Kind.values)}"
    level = version.dose_levels.filter(code=dose_level_code).first()
    if level is None:
        errors["dose_level"] = f"no dose level {dose_level_code!r}"
    problem = dose_finding.frequency_level_problem(design, frequency_level)
    if problem:
        errors["frequency_level"] = problem
    if errors:  # every input checked against the protocol, all problems at once
        raise ValidationError(errors)
    current = recommendation(trial)
    action = current["action"]
    if action in NOTHING_TO_CONFIRM:
        raise ValidationError({"cohort": f"nothing to confirm: {current['explanation']}"})
    reason = reason.strip()
    if kind == DoseConfirmation.Kind.RESULT:
        if action not in RESULT_ACTIONS:
            raise ValidationError({"kind": f"the rule has no result yet: "
                                           f"{current['explanation']}"})
        expected_level, cohort = current.get("selected_dose_level"), current["cohorts_observed"]
        expected_frequency = ""
    else:
        if cohort != current.get("next_cohort"):
            raise ValidationError({"cohort": f"the next cohort to confirm is "
                                             f"{current.get('next_cohort')}"})
        expected_level = None if action in RESULT_ACTIONS else current.get("next_dose_level")
        expected_frequency = current.get("next_frequency_level") or ""
    outside = (action == "not_computable" or dose_level_code != expected_level
               or (expected_frequency and frequency_level != expected_frequency))
    if outside and not reason:
        if action == "not_computable":
            why = f"{current['explanation']} A reason is required to confirm {dose_level_code}."
        elif expected_level is None:
            why = ("the rule has reached its decision; a further cohort is an extra cohort and "
                   "needs a reason (a decision outside a protocol rule)")
        else:
            why = (f"the recommendation is {expected_level}"
                   f"{' x ' + expected_frequency if expected_frequency else ''}; a reason is "
                   f"required to confirm {dose_level_code} {frequency_level}".rstrip() +
                   " instead")
        raise ValidationError({"reason": why})
    what = "result of the dose finding" if kind == DoseConfirmation.Kind.RESULT else \
        f"dose for cohort {cohort}"
    text = f"{what} confirmed" + (" (decision outside a protocol rule)" if outside else "") + \
        (f": {reason}" if reason else "")
    with change_reason(text, user):
        return DoseConfirmation.objects.create(
            trial=trial, arm=arm, kind=kind, cohort=cohort, dose_level=level,
            frequency_level=frequency_level, outside_rule=bool(outside), reason=reason,
            recommendation=current, confirmed_by=user)


@transaction.atomic
def review_safety_stop(trial: Trial, *, arm_code: str, decision: str, user) -> SafetyReview:
    """An investigator records a decision on the related deaths of a safety stop (audited)."""
    Trial.objects.select_for_update().get(pk=trial.pk)
    current = recommendation(trial)
    stop = current.get("safety_stop")
    if not stop:
        raise ValidationError({"arm": "there is no safety stop to review"})
    arm = trial.current_version().arms.filter(code=arm_code).first()
    if arm is None or arm.code not in current.get("arms", ()):
        raise ValidationError({"arm": f"arm {arm_code!r} is not a dose-finding arm"})
    if not decision.strip():
        raise ValidationError({"decision": "the decision and its reason are required"})
    with change_reason(f"safety stop reviewed: {decision.strip()}", user):
        return SafetyReview.objects.create(
            trial=trial, arm=arm, adverse_events=stop["adverse_events"],
            decision=decision.strip(), recommendation=current, reviewed_by=user)
