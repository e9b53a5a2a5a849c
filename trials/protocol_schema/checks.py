"""Cross-checks between tables: references (arms, interventions, levels, visits, rules)
and blinding (a masked trial's arms and products)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .model import Protocol
from .reading import _Ctx, _unique

# --------------------------------------------------------------------------- cross-checks


def _check_refs(ctx: _Ctx, p: Protocol) -> None:
    """Checks that span tables: references, ratio vs arms, offsets, blinding."""
    arms = {a.code for a in p.arms if a.code}
    ivs = {i.code: i for i in p.interventions if i.code}
    visits = {v.code for v in p.visit_plan.visits} if p.visit_plan else set()
    rules = {r.code for r in p.toxicity_rules or ()}

    def ref(path: str, value: str | None, known: Iterable[str], what: str) -> None:
        if value is not None and value not in known:
            ctx.err(path, f"unknown {what} {value!r}")

    design = p.design
    if design and design.randomization and design.randomization.ratio is not None:
        keys = set(design.randomization.ratio)
        if keys != arms:
            parts = []
            if arms - keys:
                parts.append(f"missing {', '.join(sorted(arms - keys))}")
            if keys - arms:
                parts.append(f"unknown {', '.join(sorted(keys - arms))}")
            ctx.err("design.randomization.ratio",
                    f"keys do not match the arm codes ({'; '.join(parts)})")
    if design and design.model == "sequential":
        for i, a in enumerate(p.arms):
            if a.sequence is None:
                ctx.err(f"arms[{i}].sequence", "required when design.model is 'sequential'")
        _unique(ctx, [(a.sequence, f"arms[{i}].sequence") for i, a in enumerate(p.arms)],
                "arm sequence")
    if design and design.masking:
        _check_blinding(ctx, p)

    for i, iv in enumerate(p.interventions):
        if iv.placebo_for is not None:
            ref(f"interventions[{i}].placebo_for", iv.placebo_for, ivs, "intervention")
    for i, r in enumerate(p.regimens):
        path = f"regimens[{i}]"
        ref(f"{path}.arm", r.arm, arms, "arm")
        ref(f"{path}.intervention", r.intervention, ivs, "intervention")
        for j, v in enumerate(r.at_visits):
            ref(f"{path}.at_visits[{j}]", v, visits, "visit")
        if r.relative_to is not None:
            anchors = {o.intervention for o in p.regimens
                       if o is not r and o.arm == r.arm and o.phase == r.phase}
            if r.relative_to not in anchors:
                ctx.err(f"{path}.relative_to", f"{r.relative_to!r} is not given in arm "
                                               f"{r.arm!r} phase {r.phase!r}")
        if r.relative_day is not None and r.interval is not None:
            limit = r.interval.allowed[1]
            if abs(r.relative_day) >= limit:
                ctx.err(f"{path}.relative_day",
                        f"{r.relative_day:+d} lies outside the cycle (|relative_day| must be "
                        f"< the interval's max_days {limit})")
        if r.dose_mode == "dose_finding":
            df = p.dose_finding
            if df is None:
                ctx.err(f"{path}.dose_mode", "'dose_finding' needs a [dose_finding] table")
            elif df.intervention != r.intervention:
                ctx.err(f"{path}.dose_mode", f"[dose_finding] is for {df.intervention!r}, "
                                             f"not {r.intervention!r}")
    _unique(ctx, [((r.arm, r.intervention, r.phase), f"regimens[{i}]")
                  for i, r in enumerate(p.regimens)], "regimen (arm, intervention, phase)")

    df = p.dose_finding
    if df is not None:
        ref("dose_finding.intervention", df.intervention, ivs, "intervention")
        for j, a in enumerate(df.arms):
            ref(f"dose_finding.arms[{j}]", a, arms, "arm")
        ref("dose_finding.trigger_rule", df.trigger_rule, rules, "toxicity rule")
    if p.visit_plan:
        for i, v in enumerate(p.visit_plan.visits):
            ref(f"visit_plan.visits[{i}].intervention", v.intervention, ivs, "intervention")
    for i, rule in enumerate(p.toxicity_rules or ()):
        for key in ("window_interventions", "attribution_interventions"):
            for j, code in enumerate(getattr(rule, key)):
                ref(f"toxicity_rules[{i}].{key}[{j}]", code, ivs, "intervention")
        for j, a in enumerate(rule.arms):
            ref(f"toxicity_rules[{i}].arms[{j}]", a, arms, "arm")


_INFORMATIVE = ("placebo", "active", "experimental", "control", "comparator", "verum", "sham")


def _check_blinding(ctx: _Ctx, p: Protocol) -> None:
    """Masked designs: every arm has a neutral blinded label from one shared label set
    (identical labels, or one common stem + a distinct letter/number such as 'Group A')."""
    masking = p.design.masking
    labels = [(i, a.blinded_label) for i, a in enumerate(p.arms)]
    if masking == "none":
        for i, label in labels:
            if label is not None:
                ctx.err(f"arms[{i}].blinded_label", "not allowed when design.masking is 'none'")
        return
    words: set[str] = set(_INFORMATIVE)
    for a in p.arms:
        words |= {w for w in re.findall(r"[a-z0-9]+", f"{a.code} {a.label}".lower())
                  if len(w) >= 3}
    for iv in p.interventions:
        words |= {w for w in re.findall(r"[a-z0-9]+", f"{iv.code} {iv.agent}".lower())
                  if len(w) >= 3}
    stems = set()
    for i, label in labels:
        if label is None:
            ctx.err(f"arms[{i}].blinded_label", f"required when design.masking is {masking!r}")
            continue
        leaks = sorted(w for w in re.findall(r"[a-z0-9]+", label.lower()) if w in words)
        if leaks:
            ctx.err(f"arms[{i}].blinded_label",
                    f"{label!r} is not neutral (reveals {', '.join(leaks)})")
        head, _, tail = label.rpartition(" ")
        stems.add(head if re.fullmatch(r"[A-Z]|\d+", tail) else label)
    given = [label for _, label in labels if label is not None]
    if len(stems) > 1:
        ctx.err("arms", "blinded labels must share one neutral label set "
                        f"(got {', '.join(repr(s) for s in given)})")
    elif len(set(given)) not in (1, len(given)):
        ctx.err("arms", "blinded labels must be all identical or all distinct")
