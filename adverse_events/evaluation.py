"""Evaluate a subject's protocol toxicity rules (DLT/TI) and store one flag per rule x AE.

The rules come from the subject's protocol version (``toxicity_rules`` of the protocol file;
a rule limited to arms applies when the subject's arm is one of them or is not yet known).
Adverse events, grade episodes, attributions and exposures are mapped onto the pure
``adverse_events.toxicity`` dataclasses, evaluated "as known today", and stored idempotently
(subject row locked, one row per subject x rule x AE, written only when its result changes,
under the audit reason "toxicity rules re-evaluated"). A flag that becomes effective is
alerted (``notifications.services.notify_toxicity_flag``).

Window anchor: ``toxicity.evaluate`` measures the window from the most recent administration
before the onset ("each_administration"). A rule anchored on "first_administration" is given
only the first administration of each of its window interventions, so the window is counted
from that first infusion whatever came later.

Blinded trials: an administration of a matching placebo counts as one of the product it masks
(``trials.masking.attribution_targets``), as attributions do, so the rules are evaluated
blind and a flag (or its absence, or its reason) never tells the arms apart.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from edc.core.audit import change_reason
from notifications import services as alerts
from subjects.models import Subject
from trials.masking import attribution_targets

from . import toxicity
from .dose_escalation import recommendation
from .models import AdverseEvent, Attribution, GradeEpisode, ToxicityFlag

REASON = "toxicity rules re-evaluated"


def applicable_rules(subject: Subject) -> list:
    """The ``trials.protocol_schema.ToxicityRule`` list that applies to the subject (filtered
    by arm): the trial's current protocol version's, so that an amendment adding or changing a
    DLT/TI rule applies from then on to every subject's data when it is re-evaluated."""
    version = subject.trial.current_version()
    if not version.file_text:
        return []
    rules = version.protocol().toxicity_rules or ()
    arm = subject.arm.code if subject.arm_id else None
    return [r for r in rules if not r.arms or arm is None or arm in r.arms]


def administrations_for(rule, administrations: list[toxicity.Administration]) -> list:
    """The administrations that open the rule's window, per its ``window_anchor``."""
    if rule.window_anchor != "first_administration":
        return administrations
    first: dict[str, toxicity.Administration] = {}
    for adm in sorted(administrations, key=lambda a: (a.date, str(a.id))):
        first.setdefault(adm.intervention, adm)
    return list(first.values())


def _facts(subject: Subject):
    from visits.models import Exposure

    aes = (
        AdverseEvent.objects.filter(subject=subject, retired_at__isnull=True)
        .select_related("term")
        .prefetch_related(
            Prefetch("grade_episodes", GradeEpisode.objects.filter(retired_at__isnull=True)),
            Prefetch("attributions", Attribution.objects.filter(retired_at__isnull=True)
                     .select_related("intervention")),
        )
    )
    facts = [
        toxicity.AdverseEventFacts(
            id=ae.pk, term=ae.display_term,
            episodes=tuple(toxicity.GradeEpisode(e.pk, e.grade, e.start_date, e.end_date)
                           for e in ae.grade_episodes.all()),
            attributions={a.intervention.code: a.level for a in ae.attributions.all()},
        )
        for ae in aes
    ]
    targets = attribution_targets(subject)
    administrations = [
        toxicity.Administration(id=x.pk, date=x.administered_on, intervention=targets.get(
            x.intervention_id, x.intervention).code)
        for x in Exposure.objects.filter(subject=subject, retired_at__isnull=True)
        .select_related("intervention")
    ]
    return facts, administrations


def _not_met(rule, ae: toxicity.AdverseEventFacts, as_of: dt.date) -> str:
    pure = toxicity.ToxicityRule(**rule.to_rule_kwargs())
    duration = (f" lasting >= {rule.min_duration_days} days" if rule.min_duration_days else "")
    return (
        f"{rule.kind} (rule {rule.code}) not met as of {as_of.isoformat()}: AE {ae.id} "
        f"'{ae.term}' has no {pure.grade_text()} period{duration} related (>= "
        f"{rule.min_attribution}) to {', '.join(rule.attribution_interventions)} with onset "
        f"within {rule.window_days} days after {rule.window_anchor.replace('_', ' ')} of "
        f"{', '.join(rule.window_interventions)}"
    )


def _details(flag: toxicity.Flag) -> dict:
    return {"episode_ids": list(flag.episode_ids), "administration_id": flag.administration_id,
            "onset": flag.onset.isoformat(), "duration_days": flag.duration_days,
            "worst_grade": flag.worst_grade}


@transaction.atomic
def evaluate_toxicity(subject_id: int, as_of: dt.date | None = None) -> list[ToxicityFlag]:
    """(Re)compute every DLT/TI flag of one subject; safe to run any number of times."""
    subject = Subject.objects.select_for_update(of=("self",)).select_related(
        "protocol_version", "arm").get(pk=subject_id)
    as_of = as_of or timezone.localdate()
    rules = applicable_rules(subject)
    facts, administrations = _facts(subject)
    wanted: dict[tuple[str, int], dict] = {}
    for rule in rules:
        pure = toxicity.ToxicityRule(**rule.to_rule_kwargs())
        hits = {f.ae_id: f for f in toxicity.evaluate(
            [pure], facts, administrations_for(rule, administrations), as_of)}
        for ae in facts:
            hit = hits.get(ae.id)
            wanted[(rule.code, ae.id)] = {
                "kind": rule.kind, "computed": hit is not None,
                "reason": hit.reason if hit else _not_met(rule, ae, as_of),
                "details": _details(hit) if hit else {},
            }
    existing = {(f.rule_code, f.adverse_event_id): f
                for f in ToxicityFlag.objects.filter(subject=subject)}
    now = timezone.now()
    with change_reason(REASON):
        for key, flag in existing.items():
            if key not in wanted and flag.computed:
                wanted[key] = {"kind": flag.kind, "computed": False, "details": {},
                               "reason": f"{flag.kind} (rule {key[0]}) no longer applies: the "
                                         f"AE is retired or the rule is not in the protocol."}
        for (code, ae_id), values in wanted.items():
            flag = existing.get((code, ae_id))
            was_effective = flag is not None and flag.effective
            if flag is None:
                flag = ToxicityFlag.objects.create(subject=subject, adverse_event_id=ae_id,
                                                   rule_code=code, evaluated_at=now, **values)
            elif any(getattr(flag, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(flag, k, v)
                flag.evaluated_at = now
                flag.save()
            if flag.effective and not was_effective:
                alerts.notify_toxicity_flag(flag)
    alert_safety_stop(subject)
    return list(ToxicityFlag.objects.filter(subject=subject))


def alert_safety_stop(subject: Subject) -> None:
    """When the subject's dose-finding arm is in a safety stop (a related death inside the
    evaluation window, EDC safety default of ``trials.dose_finding``), tell the trial's
    investigators and safety contacts, once per set of deaths."""
    design = subject.trial.current_version().protocol().dose_finding
    if design is None or subject.arm is None or subject.arm.code not in design.arms:
        return
    state = recommendation(subject.trial)
    stop = state.get("safety_stop")
    if stop:
        key = "ae:" + ",".join(str(ae) for ae in sorted(stop["adverse_events"]))
        alerts.notify_safety_stop(subject.trial, subject.arm, stop["explanation"], key=key)
