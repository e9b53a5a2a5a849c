"""What a protocol version says, part by part, for the read-only protocol API.

Each part comes from the validated protocol file as stored with the version (quotes, ``note``,
``not_stated`` and ``inferred`` included, so a reader can tell the document's words from the
file's reading of them), joined with the database ids an integrator needs (arm, dose level,
intervention and criterion ids).

Blinding (ICH E9 2.3.1, ``trials.blinding``): a user blinded to the trial sees each arm only by
its id and neutral label, and nothing that ties an arm to a product: regimens (arm x product)
are withheld, ``arm``/``arms``/``randomization`` are dropped from every other part, the
products of a masking group are shown as the blinded study treatment, and product and arm
names inside texts (quotes, notes, labels) are replaced by ``blinding.BLINDED_PRODUCT`` /
``blinding.BLINDED_ARM`` (the labels every other blinded view uses).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import blinding
from .models import ProtocolVersion

#: Keys that tie arms to anything (dropped for blinded users; randomization is keyed by arm).
_ARM_LINKS = ("arm", "arms", "randomization")
PARTS = ("arms", "dose-levels", "interventions", "eligibility-criteria", "visit-plan",
         "instruments", "rules")


def _masker(version: ProtocolVersion) -> Callable:
    """A function hiding what ties arms to products from a JSON-like value (blinded users)."""
    interventions = list(version.interventions.values_list("code", "agent", "placebo_for"))
    groups = blinding.masking_groups((code, placebo) for code, _, placebo in interventions)
    arms = list(version.arms.values_list("code", "label"))
    names = sorted({(name, blinding.BLINDED_PRODUCT) for code, agent, _ in interventions
                    for name in (code, agent) if name}
                   | {(name, blinding.BLINDED_ARM) for pair in arms for name in pair if name},
                   key=lambda pair: len(pair[0]), reverse=True)
    replacement = dict(names)
    pattern = re.compile("|".join(re.escape(name) for name, _ in names)) if names else None

    def text(value: str) -> str:
        return pattern.sub(lambda m: replacement[m[0]], value) if pattern else value

    def mask(value, key: str | None = None):
        if isinstance(value, dict):
            return {k: mask(v, k) for k, v in value.items() if k not in _ARM_LINKS}
        if isinstance(value, list):
            return [mask(v, key) for v in value]
        if isinstance(value, str):
            if key in ("intervention", "placebo_for", "code") and value in groups:
                return blinding.shown_code(value, groups)
            return value if value.startswith(blinding.BLINDED_PREFIX) else text(value)
        return value

    return mask


def _with_ids(records: list[dict], ids: dict[str, int]) -> list[dict]:
    return [{"id": ids.get(record.get("code")), **record} for record in records]


def arms(version: ProtocolVersion, blinded: bool) -> dict:
    rows = list(version.arms.order_by("sequence", "code"))
    if blinded:
        # One label for every arm (issue 15): a per-arm neutral label is an arm code too.
        return {"blinded": True,
                "arms": [{"id": arm.pk, "label": blinding.BLINDED_ARM} for arm in rows]}
    ids = {arm.code: arm.pk for arm in rows}
    return {"blinded": False, "arms": _with_ids(version.document.get("arms") or [], ids)}


def dose_levels(version: ProtocolVersion, blinded: bool) -> dict:
    design = version.document.get("dose_finding") or {}
    levels = [{"id": level.pk, "code": level.code, "order": level.order,
               "value": None if level.value is None else float(level.value),
               "unit": level.unit, "basis": level.basis, "label": level.label,
               **({} if blinded else {"arm": level.arm_id})}
              for level in version.dose_levels.order_by("order")]
    return {"dose_levels": levels, "frequency_levels": design.get("frequency_levels") or []}


def interventions(version: ProtocolVersion, blinded: bool) -> dict:
    ids = dict(version.interventions.values_list("code", "pk"))
    records = _with_ids(version.document.get("interventions") or [], ids)
    if not blinded:
        return {"blinded": False, "interventions": records,
                "regimens": version.document.get("regimens") or []}
    groups = blinding.masking_groups((r["code"], r.get("placebo_for")) for r in records)
    shown: dict[str, dict] = {}
    for record in records:
        active = groups.get(record["code"])
        if active is None:
            shown[record["code"]] = record
        elif active not in shown:
            shown[active] = {"id": None, "code": blinding.blinded_code(active),
                             "agent": blinding.blinded_name(active),
                             "type": record.get("type"), "route": record.get("route")}
    return {"blinded": True, "interventions": list(shown.values()), "regimens": []}


def eligibility_criteria(version: ProtocolVersion, blinded: bool) -> dict:
    document = version.document.get("eligibility") or {}
    return {
        "min_age_years": version.min_age_years, "max_age_years": version.max_age_years,
        "sex": version.sex,
        "criteria": [{"id": c.pk, "kind": c.kind, "number": c.number, "text": c.text}
                     for c in version.criteria.order_by("kind", "number")],
        "quote": document.get("quote") or [], "note": document.get("note"),
    }


def visit_plan(version: ProtocolVersion, blinded: bool) -> dict:
    plan = dict(version.document.get("visit_plan") or {})
    plan.pop("assessments", None)
    return plan


def instruments(version: ProtocolVersion, blinded: bool) -> dict:
    plan = version.document.get("visit_plan") or {}
    return {"instruments": [
        {"instrument": name, "assessment": a["code"], "label": a["label"],
         "period": a.get("period"), "anchor": a.get("anchor"),
         "at_baseline": a.get("at_baseline"), "interval_weeks": a.get("interval_weeks"),
         "at_days": a.get("at_days") or [], "until": a.get("until") or [],
         "quote": a.get("quote") or [], "note": a.get("note")}
        for a in plan.get("assessments") or [] for name in a.get("instruments") or []],
        "assessments": plan.get("assessments") or []}


def rules(version: ProtocolVersion, blinded: bool) -> dict:
    document = version.document
    return {key: document.get(key) for key in
            ("toxicity_rules", "dose_finding", "safety", "endpoints", "design")}


_BUILDERS = {"arms": arms, "dose-levels": dose_levels, "interventions": interventions,
             "eligibility-criteria": eligibility_criteria, "visit-plan": visit_plan,
             "instruments": instruments, "rules": rules}


def protocol_part(version: ProtocolVersion, part: str, blinded: bool) -> dict:
    """One part of ``version`` as a JSON-ready dict, masked for a blinded user."""
    data = _BUILDERS[part](version, blinded)
    if blinded and part not in ("arms", "interventions", "eligibility-criteria"):
        data = _masker(version)(data)
    return {"protocol_version": version.pk, "trial": version.trial_id,
            "version": version.version, "source_file": version.source_file, part: data}
