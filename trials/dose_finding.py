"""Dose-finding rules for early-phase trials: pure functions that return a recommendation
together with the data it used (``basis``) and a human ``explanation``.

Pure Python (stdlib only). Three rules, each taken from a seed protocol:

1. ``deescalation_recommendation`` -- the 70 % de-escalation rule of seed 000
   (MSC-IFNα, Arm 1): "The first 3 subjects will receive MSC-IFNα infusion ... at a dose of
   2×10^6 cells/kg. If TI occurred in any of the 3 subjects, another 3 subjects will be enrolled
   and received a 70% reduced MSC-IFNα dose (i.e. 6×10^5 cells/kg, 2x10^5/kg, and so on) until
   tolerable dose (no TI in all 3 subjects) was reached."  The tolerable dose is then used in
   Arm 2.  The chain of doses is *data from the protocol file*; ``seventy_percent_chain`` shows
   the strict 0.3x arithmetic (2e6, 6e5, 1.8e5, ...) which differs from the written 2e5.

2. ``crm_recommendation`` -- the continual reassessment method (O'Quigley, Pepe & Fisher 1990,
   Biometrics 46:33-48) as used by the MSC-L colorectal trial (seed 001): "The largest dose that
   has an estimated risk of causing DLT ... equal or closest to the target level of 35%".
   One-parameter power ("empiric") model ``p_i(a) = skeleton_i ** exp(a)`` with prior
   ``a ~ Normal(0, 1.34)`` (the default of R package dfcrm, Cheung 2011, "Dose Finding by the
   Continual Reassessment Method", CRC Press).  ``default_skeleton`` implements the
   indifference-interval skeleton of Lee & Cheung (2009, Clinical Trials 6:227-238;
   ``dfcrm::getprior``).

3. ``grid_escalation_recommendation`` -- dose A-E x frequency 1-3 escalation to an RP2D
   (seed 003), with the standard 3+3 rule at each step (Storer 1989, Biometrics
   45:925-937, design "A").

Level indices are 0-based everywhere in the API; explanations print 1-based labels ("L1" is
index 0) unless labels are supplied.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "CRM_LOGISTIC_INTERCEPT",
    "CRM_MODELS",
    "CRM_PRIOR_VARIANCE",
    "CRM_TIE_BREAKS",
    "CrmRecommendation",
    "Recommendation",
    "crm_dose_labels",
    "crm_posterior",
    "crm_recommendation",
    "default_skeleton",
    "deescalation_recommendation",
    "grid_escalation_recommendation",
    "seventy_percent_chain",
    "three_plus_three_decision",
]


@dataclass(frozen=True)
class Recommendation:
    """Result of a rule-based design (de-escalation chain or 3+3 grid).

    ``action``: what to do next (see each function for its vocabulary).
    ``next_level`` / ``next_value``: where to enroll next (index and dose value/label), or None
    when the rule has finished.  ``n_needed``: evaluable subjects still needed at that level.
    ``selected_level`` / ``selected_value``: the outcome of the rule once reached (the tolerable
    dose for Arm 2 in seed 000; the RP2D in seed 003), else None.
    ``basis``: the data the recommendation used, ready for display.
    """

    rule: str
    action: str
    next_level: Any
    next_value: Any
    n_needed: int | None
    selected_level: Any
    selected_value: Any
    basis: Mapping[str, Any] = field(hash=False)
    explanation: str = ""


# =============================================================================================
# 1. Seed 000: 70 % de-escalation until a tolerable dose
# =============================================================================================


def seventy_percent_chain(start: float | int | Decimal, n: int) -> list:
    """The strict arithmetic chain ``start * 0.3**k`` for ``k = 0 .. n-1`` (a 70 % reduction).

    Computed in ``Decimal`` so 2e6 gives exactly 6e5, 1.8e5, 5.4e4, ...; returns floats for a
    float ``start`` and ``Decimal`` otherwise.  The seed-000 text writes "6×10^5 cells/kg,
    2x10^5/kg, and so on" -- 2e5 is a rounded 1.8e5, which is why the trial's *protocol file*
    records the chain actually used and ``deescalation_recommendation`` takes it as input.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    as_float = isinstance(start, float)
    base = Decimal(repr(start)) if as_float else Decimal(start)
    factor = Decimal("0.3")
    out = [base * factor**k for k in range(n)]
    return [float(x) for x in out] if as_float else out


def _fmt_dose(value: Any, unit: str) -> str:
    """2e6 -> "2×10^6", 1.8e5 -> "1.8×10^5" (as in the protocol text); other values as str."""
    text = str(value)
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if dec.is_finite() and dec != 0 and abs(dec) >= 1000:
            exp = dec.adjusted()
            mant = (dec.scaleb(-exp)).quantize(Decimal("0.01")).normalize()
            text = f"{mant:f}×10^{exp}"
    return f"{text} {unit}".strip()


def deescalation_recommendation(
    levels: Sequence[Any],
    cohorts: Iterable[Sequence[int]],
    cohort_size: int = 3,
    *,
    unit: str = "",
) -> Recommendation:
    """Seed-000 rule: start at ``levels[0]``; TI in any subject of a cohort -> next cohort at the
    next (70 % reduced) level; a full cohort with no TI -> that level is the tolerable dose.

    ``levels``: the ordered de-escalation chain from the protocol file (e.g.
    ``[Decimal("2e6"), Decimal("6e5"), Decimal("2e5")]``), highest first.
    ``cohorts``: one ``(level_index, n_evaluable, n_with_TI)`` per cohort, in enrollment order
    (a cohort is never merged with the next one, even at the same level).

    Actions: ``"enroll"`` (a new cohort of ``cohort_size`` at ``next_level``),
    ``"cohort_incomplete"`` (no TI yet but fewer than ``cohort_size`` evaluable; ``n_needed``
    more), ``"tolerable_dose_found"`` (``selected_level`` = the dose for Arm 2),
    ``"no_tolerable_dose"`` (TI at the last level of the chain).

    Decision: one TI decides a cohort even before it is complete (the level cannot then be
    "no TI in all 3 subjects").  Cohorts enrolled after the rule reached its decision are listed
    in ``basis["extra_cohorts"]`` and do not reopen the decision (EDC safety default: a finished
    decision is only changed by a recorded human decision).  A cohort at a level the rule did
    not call for raises ``ValueError`` -- the caller shows it as a protocol deviation rather than
    a silently wrong recommendation.
    """
    levels = tuple(levels)
    if not levels:
        raise ValueError("levels must not be empty")
    if cohort_size < 1:
        raise ValueError("cohort_size must be >= 1")
    data = [_check_counts(row, 3) for row in cohorts]
    basis: dict[str, Any] = {
        "rule": "70% de-escalation until no TI in a full cohort after any TI in a cohort",
        "levels": list(levels),
        "unit": unit,
        "cohort_size": cohort_size,
        "cohorts": [],
        "extra_cohorts": [],
    }
    history: list[str] = []

    def rec(action, nxt, n_needed, sel, explanation) -> Recommendation:
        text = "; ".join([*history, explanation]) if history else explanation
        return Recommendation(
            rule="deescalation",
            action=action,
            next_level=nxt,
            next_value=levels[nxt] if nxt is not None else None,
            n_needed=n_needed,
            selected_level=sel,
            selected_value=levels[sel] if sel is not None else None,
            basis=basis,
            explanation=text + _extra_text(basis),
        )

    expected = 0
    finished: tuple | None = None
    for pos, (lvl, n, ti) in enumerate(data):
        last = pos == len(data) - 1
        if isinstance(lvl, bool) or not isinstance(lvl, int) or not 0 <= lvl < len(levels):
            raise ValueError(f"level index {lvl!r} is not in the chain of {len(levels)} levels")
        entry = {"cohort": pos + 1, "level_index": lvl, "dose": levels[lvl],
                 "n_evaluable": n, "n_with_ti": ti}
        if finished is not None:
            entry["decision"] = "extra cohort after the rule's decision: not used by the rule"
            basis["extra_cohorts"].append(entry)
            continue
        if lvl != expected:
            raise ValueError(
                f"cohort at level index {lvl} but the rule calls for level index {expected}"
            )
        dose = _fmt_dose(levels[lvl], unit)
        basis["cohorts"].append(entry)
        if ti > 0:
            entry["decision"] = "TI -> de-escalate"
            history.append(f"{dose}: TI in {ti} of {n} evaluable -> de-escalate")
            expected = lvl + 1
            if expected >= len(levels):
                finished = ("no_tolerable_dose", None,
                            "TI at the last level of the protocol chain: no tolerable dose")
            continue
        if n >= cohort_size:
            entry["decision"] = "no TI in a full cohort -> tolerable"
            finished = ("tolerable_dose_found", lvl,
                        f"{dose}: no TI in {n} of {n} evaluable -> tolerable dose {dose}")
            continue
        entry["decision"] = "incomplete"
        if not last:
            raise ValueError(f"cohort {pos + 1} at level index {lvl} is incomplete but "
                             "followed by other cohorts")
        return rec(
            "cohort_incomplete",
            lvl,
            cohort_size - n,
            None,
            f"{dose}: no TI in {n} evaluable so far -> "
            f"{cohort_size - n} more evaluable needed at {dose}",
        )
    if finished is not None:
        action, selected, text = finished
        return rec(action, None, None, selected, text)
    dose = _fmt_dose(levels[expected], unit)
    return rec("enroll", expected, cohort_size, None, f"enroll {cohort_size} at {dose}")


def _check_counts(row: Sequence[Any], width: int) -> list[Any]:
    row = list(row)
    if len(row) != width:
        raise ValueError(f"expected {width} fields per cohort, got {row!r}")
    n, events = row[-2], row[-1]
    for v in (n, events):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"counts must be non-negative ints, got {row!r}")
    if events > n:
        raise ValueError(f"more events than evaluable subjects in {row!r}")
    return row


def _extra_text(basis: Mapping[str, Any]) -> str:
    extra = basis.get("extra_cohorts") or []
    if not extra:
        return ""
    return (f"; {len(extra)} extra cohort{'s' if len(extra) > 1 else ''} enrolled after the "
            "rule's decision (not used by the rule; the decision stands)")


# =============================================================================================
# 2. CRM (seed 001)
# =============================================================================================

#: Prior variance of ``a`` in the empiric model (dfcrm default ``scale = sqrt(1.34)``).
CRM_PRIOR_VARIANCE = 1.34
#: Integration range and number of Simpson intervals (h = 0.005).  The prior mass outside
#: [-10, 10] is ~6e-18 and the likelihood is <= 1, so truncation is negligible; composite
#: Simpson's error with h = 0.005 on these smooth integrands is far below 1e-6.
_A_BOUND = 10.0
_SIMPSON_INTERVALS = 4000


@dataclass(frozen=True)
class CrmRecommendation:
    """CRM result.

    ``recommended_level``: next dose (model choice after the no-skipping restriction).
    ``mtd_estimate``: model choice without restriction = dfcrm's ``$mtd``; after the last
    subject this is the final MTD estimate.
    ``dlt_probabilities``: plug-in estimates ``skeleton_i ** exp(posterior_mean_a)`` (dfcrm's
    ``$ptox``; these drive the choice).  ``posterior_mean_dlt_probabilities``: the posterior
    mean of ``p_i(a)`` (shown for information; slightly different because p is non-linear in a).
    """

    recommended_level: int
    mtd_estimate: int
    posterior_mean_a: float
    posterior_sd_a: float
    dlt_probabilities: tuple[float, ...]
    posterior_mean_dlt_probabilities: tuple[float, ...]
    restricted: bool
    basis: Mapping[str, Any] = field(hash=False)
    explanation: str = ""


def _check_skeleton(skeleton: Sequence[float]) -> tuple[float, ...]:
    sk = tuple(float(x) for x in skeleton)
    if not sk:
        raise ValueError("skeleton must not be empty")
    if any(not 0.0 < x < 1.0 for x in sk):
        raise ValueError("skeleton probabilities must be in (0, 1)")
    if any(b <= a for a, b in zip(sk, sk[1:], strict=False)):
        raise ValueError("skeleton must be strictly increasing")
    return sk


def default_skeleton(
    target: float, n_levels: int, mtd_guess: int, halfwidth: float = 0.05
) -> list[float]:
    """Indifference-interval skeleton for the empiric model (Lee & Cheung 2009; dfcrm::getprior).

    ``mtd_guess`` is the 0-based index of the prior MTD guess (dfcrm's ``nu`` is 1-based):
    ``skeleton[mtd_guess] = target`` and neighbouring values are chosen so that at the boundary
    value ``b`` of ``a`` between levels k and k+1 the model gives ``p_k(b) = target - halfwidth``
    and ``p_{k+1}(b) = target + halfwidth``, i.e. ``log s_{k+1} = log s_k * log(t+δ)/log(t-δ)``.
    """
    if not 0.0 < halfwidth < target < 1.0 or target + halfwidth >= 1.0:
        raise ValueError("need 0 < halfwidth < target and target + halfwidth < 1")
    if n_levels < 1 or not 0 <= mtd_guess < n_levels:
        raise ValueError("need n_levels >= 1 and 0 <= mtd_guess < n_levels")
    ratio = math.log(target + halfwidth) / math.log(target - halfwidth)  # in (0, 1)
    logs = [0.0] * n_levels
    logs[mtd_guess] = math.log(target)
    for k in range(mtd_guess, 0, -1):
        logs[k - 1] = logs[k] / ratio
    for k in range(mtd_guess, n_levels - 1):
        logs[k + 1] = logs[k] * ratio
    return [math.exp(x) for x in logs]


def _pool_observations(
    observations: Iterable[Sequence[int]], n_levels: int
) -> tuple[list[int], list[int]]:
    ns, ys = [0] * n_levels, [0] * n_levels
    for obs in observations:
        level, n, y = obs
        if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level < n_levels:
            raise ValueError(f"observation level {level!r} out of range 0..{n_levels - 1}")
        if isinstance(n, bool) or isinstance(y, bool) or not 0 <= y <= n:
            raise ValueError(f"need 0 <= n_dlt <= n in observation {obs!r}")
        ns[level] += n
        ys[level] += y
    return ns, ys


CRM_MODELS = ("empiric", "logistic")
#: dfcrm's default intercept of the one-parameter logistic model (``crm(..., intcpt = 3)``).
CRM_LOGISTIC_INTERCEPT = 3.0
CRM_TIE_BREAKS = ("largest", "smallest")
#: Distances to the target within this of the smallest are "equally close" (float noise:
#: |0.30 - 0.35| and |0.40 - 0.35| differ by 3e-17 in binary floating point).
_TIE_TOLERANCE = 1e-12


def crm_dose_labels(skeleton: Sequence[float], model: str, intercept: float) -> tuple[float, ...]:
    """dfcrm's scaled doses ("dosescaled") for ``crm()``.

    Empiric (power) model: the skeleton itself, ``p_i(a) = x_i ** exp(a)``.
    Logistic model: ``x_i = log(s_i / (1 - s_i)) - intcpt`` so that
    ``p_i(a) = 1 / (1 + exp(-intcpt - exp(a) * x_i))`` equals the skeleton at ``a = 0``;
    dfcrm refuses an intercept that makes any ``x_i >= 0``, and so does this function.
    """
    sk = _check_skeleton(skeleton)
    if model == "empiric":
        return sk
    if model != "logistic":
        raise ValueError(f"CRM model must be one of {CRM_MODELS}, got {model!r}")
    xs = tuple(math.log(v / (1.0 - v)) - intercept for v in sk)
    if any(x >= 0 for x in xs):
        raise ValueError("logistic CRM: intercept too small, scaled doses must be < 0 "
                         "(dfcrm: 'intercept parameter in logit model is too small')")
    return xs


def _tox(a: float, x: float, model: str, intercept: float) -> float:
    """``p(a)`` at scaled dose ``x`` for the dfcrm model."""
    if model == "empiric":
        return math.exp(math.exp(a) * math.log(x))
    z = intercept + math.exp(a) * x
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def _log_likelihood(a: float, xs: Sequence[float], ns: Sequence[int], ys: Sequence[int],
                    model: str, intercept: float) -> float:
    total = 0.0
    for x, n, y in zip(xs, ns, ys, strict=True):
        if n == 0:
            continue
        if model == "empiric":
            log_p = math.exp(a) * math.log(x)
            log_q = math.log(-math.expm1(log_p)) if -math.expm1(log_p) > 0 else -math.inf
        else:
            z = intercept + math.exp(a) * x
            log_p = -math.log1p(math.exp(-z)) if z > -700 else z
            log_q = -math.log1p(math.exp(z)) if z < 700 else -z
        if y:
            total += y * log_p
        if n - y:
            if log_q == -math.inf:
                return -math.inf
            total += (n - y) * log_q
    return total


def crm_posterior(
    skeleton: Sequence[float],
    observations: Iterable[Sequence[int]],
    prior_variance: float = CRM_PRIOR_VARIANCE,
    *,
    model: str = "empiric",
    intercept: float = CRM_LOGISTIC_INTERCEPT,
) -> tuple[float, float, tuple[float, ...]]:
    """Posterior mean and sd of ``a`` and the posterior mean of each ``p_i(a)`` (dfcrm ``crm()``,
    ``method = "bayes"``).

    Likelihood ``prod_i p_i^y_i (1 - p_i)^(n_i - y_i)`` with ``p_i`` from the empiric or logistic
    model (:func:`crm_dose_labels`); prior density ``exp(-a^2 / (2 * prior_variance))`` (dfcrm:
    ``a ~ N(0, scale^2)``, ``scale = sqrt(prior_variance)``).  Integrals by composite Simpson's
    rule on [-10, 10] with 4000 intervals (dfcrm integrates the numerator on [-10, 10] too), in
    log space with max-subtraction (no underflow).
    """
    xs = crm_dose_labels(skeleton, model, intercept)
    if prior_variance <= 0:
        raise ValueError("prior_variance must be > 0")
    ns, ys = _pool_observations(observations, len(xs))
    m = _SIMPSON_INTERVALS
    h = 2 * _A_BOUND / m
    grid = [-_A_BOUND + j * h for j in range(m + 1)]
    logw = [_log_likelihood(a, xs, ns, ys, model, intercept) - a * a / (2 * prior_variance)
            for a in grid]
    top = max(logw)
    z = s1 = s2 = 0.0
    sp = [0.0] * len(xs)
    for j, (a, lw) in enumerate(zip(grid, logw, strict=True)):
        c = 1.0 if j in (0, m) else (4.0 if j % 2 else 2.0)
        w = c * math.exp(lw - top)
        if w == 0.0:
            continue
        z += w
        s1 += w * a
        s2 += w * a * a
        for i, x in enumerate(xs):
            sp[i] += w * _tox(a, x, model, intercept)
    mean = s1 / z
    var = max(s2 / z - mean * mean, 0.0)
    return mean, math.sqrt(var), tuple(v / z for v in sp)


def crm_recommendation(
    skeleton: Sequence[float],
    target: float,
    observations: Iterable[Sequence[int]],
    current_level: int | None = None,
    no_skipping: bool = True,
    *,
    start_level: int = 0,
    prior_variance: float = CRM_PRIOR_VARIANCE,
    model: str = "empiric",
    intercept: float = CRM_LOGISTIC_INTERCEPT,
    tie_break: str = "largest",
    level_labels: Sequence[str] | None = None,
) -> CrmRecommendation:
    """Bayesian CRM as R ``dfcrm 0.2-2.1`` ``crm()`` computes it (Cheung 2011).

    ``observations``: ``(level_index, n, n_dlt)`` (pooled per level; order irrelevant).
    Model choice (``mtd_estimate``): the level whose plug-in DLT probability ``p_i(E[a|data])``
    (dfcrm's ``$ptox``) is closest to ``target``.  dfcrm breaks exact ties at random; here the
    protocol states the tie rule: ``tie_break="largest"`` takes the larger level (seed 001:
    "The largest dose that has an estimated risk ... equal or closest to the target").
    ``no_skipping`` (default): the recommendation may not exceed ``highest tried level + 1``
    (with no data: ``start_level``), nor ``current_level + 1`` when ``current_level`` is given.
    De-escalation is never restricted.
    """
    xs = crm_dose_labels(skeleton, model, intercept)
    sk = _check_skeleton(skeleton)
    if not 0.0 < target < 1.0:
        raise ValueError("target must be in (0, 1)")
    if tie_break not in CRM_TIE_BREAKS:
        raise ValueError(f"tie_break must be one of {CRM_TIE_BREAKS}")
    if not 0 <= start_level < len(sk):
        raise ValueError("start_level out of range")
    if current_level is not None and not 0 <= current_level < len(sk):
        raise ValueError("current_level out of range")
    if level_labels is None:
        labels = [f"L{i + 1}" for i in range(len(sk))]
    else:
        labels = [str(x) for x in level_labels]
    if len(labels) != len(sk):
        raise ValueError("level_labels must match the skeleton length")
    observations = list(observations)
    ns, ys = _pool_observations(observations, len(sk))
    mean, sd, post_p = crm_posterior(sk, observations, prior_variance, model=model,
                                     intercept=intercept)
    plug = tuple(_tox(mean, x, model, intercept) for x in xs)
    distances = [abs(p - target) for p in plug]
    closest = [i for i, d in enumerate(distances) if d - min(distances) <= _TIE_TOLERANCE]
    model_level = max(closest) if tie_break == "largest" else min(closest)

    tried = [i for i, n in enumerate(ns) if n > 0]
    cap = len(sk) - 1
    if no_skipping:
        cap = max(tried) + 1 if tried else start_level
        if current_level is not None:
            cap = min(cap, current_level + 1)
        cap = min(cap, len(sk) - 1)
    recommended = min(model_level, cap)
    restricted = recommended != model_level

    formula = ("p_i = skeleton_i ** exp(a)" if model == "empiric" else
               f"p_i = 1 / (1 + exp(-{intercept:g} - exp(a) * x_i)), "
               f"x_i = logit(skeleton_i) - {intercept:g}")
    basis = {
        "method": f"CRM (O'Quigley, Pepe & Fisher 1990; dfcrm crm()), {model} model {formula}",
        "model": model,
        "intercept": intercept if model == "logistic" else None,
        "prior": f"a ~ Normal(0, {prior_variance})",
        "skeleton": list(sk),
        "target": target,
        "tie_break": tie_break,
        "data": [
            {"level": i, "label": labels[i], "n": ns[i], "dlt": ys[i]}
            for i in range(len(sk))
            if ns[i]
        ],
        "posterior_mean_a": mean,
        "posterior_sd_a": sd,
        "dlt_probabilities": list(plug),
        "posterior_mean_dlt_probabilities": list(post_p),
        "model_choice": model_level,
        "escalation_cap": cap if no_skipping else None,
        "recommended_level": recommended,
    }
    n_total = sum(ns)
    data_text = ", ".join(f"{labels[i]}: {ys[i]}/{ns[i]} DLT" for i in tried) or "no data"
    probs = ", ".join(f"{labels[i]} {p:.1%}" for i, p in enumerate(plug))
    text = (
        f"CRM ({model} model) after {n_total} subject{'s' if n_total != 1 else ''} "
        f"({data_text}): posterior mean a = {mean:.4f}; estimated DLT probabilities {probs}; "
        f"{labels[model_level]} ({plug[model_level]:.1%}) is closest to the target "
        f"{target:.0%} (ties: {tie_break} level)"
    )
    if restricted:
        text += f"; restricted to {labels[recommended]} (no skipping of untried levels)"
    text += f". Recommended next level: {labels[recommended]}."
    return CrmRecommendation(
        recommended_level=recommended,
        mtd_estimate=model_level,
        posterior_mean_a=mean,
        posterior_sd_a=sd,
        dlt_probabilities=plug,
        posterior_mean_dlt_probabilities=post_p,
        restricted=restricted,
        basis=basis,
        explanation=text,
    )


# =============================================================================================
# 3. Seed 003: dose A-E x frequency 1-3, 3+3 at each step, to an RP2D
# =============================================================================================


def three_plus_three_decision(n: int, n_dlt: int) -> tuple[str, int]:
    """Standard 3+3 (Storer 1989 design A) on the pooled data of one step.

    Returns ``(decision, n_needed)`` with decision one of:
    ``"tolerated"`` (0/3, or 1/6 -> escalate), ``"not_tolerated"`` (>= 2 DLT, i.e. >= 2/3 or
    >= 2/6 -> stop), ``"expand"`` (1/3 -> 3 more at the same step), ``"incomplete"`` (fewer
    than 3 evaluable, or an expansion not yet complete, with at most 1 DLT).
    """
    if not 0 <= n_dlt <= n:
        raise ValueError("need 0 <= n_dlt <= n")
    if n_dlt >= 2:
        return "not_tolerated", 0
    if n < 3:
        return "incomplete", 3 - n
    if n_dlt == 0:
        return "tolerated", 0
    if n == 3:
        return "expand", 3
    if n < 6:
        return "incomplete", 6 - n
    return "tolerated", 0


def grid_escalation_recommendation(
    dose_levels: Sequence[Any] = ("A", "B", "C", "D", "E"),
    frequency_levels: Sequence[Any] = (1, 2, 3),
    cohorts: Iterable[Sequence[Any]] = (),
    *,
    order: str = "dose_first",
) -> Recommendation:
    """Two-dimensional escalation over dose x frequency with 3+3 at each step, ending in an RP2D.

    Path (documented choice; seed 003 presets the levels but not the order):
    ``order="dose_first"`` (default): escalate the dose A -> B -> ... -> E at frequency 1; the
    highest tolerated dose D* (the step before the first non-tolerated one, or E) is then given
    at frequency 2, 3.  ``order="frequency_first"``: escalate the frequency at dose A, then the
    dose at the highest tolerated frequency.  The RP2D is the last tolerated step on the path.

    ``cohorts``: one ``(dose_label, frequency_label, n_evaluable, n_dlt)`` per cohort in
    enrollment order; labels are matched by equality against ``dose_levels`` /
    ``frequency_levels``.  The cohort after a 1/3 "expand" pools with it (3 + 3 expansion);
    cohorts after the rule finished are listed in ``basis["extra_cohorts"]`` and do not reopen
    the decision.

    Actions: ``"enroll"`` (3 at a new step), ``"expand"`` (3 more at the same step),
    ``"cohort_incomplete"`` (``n_needed`` more evaluable), ``"rp2d_found"``,
    ``"no_tolerated_step"`` (the first step was not tolerated).
    ``next_level`` / ``selected_level`` are ``(dose_index, frequency_index)``;
    ``next_value`` / ``selected_value`` are ``(dose_label, frequency_label)``.
    MTD convention: the step below a stopping step is taken as tolerated even if only 3
    subjects were treated there (Storer's design A; protocols requiring 6 at the RP2D expand it
    outside this rule).
    """
    doses, freqs = tuple(dose_levels), tuple(frequency_levels)
    if not doses or not freqs:
        raise ValueError("dose_levels and frequency_levels must not be empty")
    if order not in ("dose_first", "frequency_first"):
        raise ValueError("order must be 'dose_first' or 'frequency_first'")
    data = [_check_counts(row, 4) for row in cohorts]

    def idx(labels: tuple, value: Any, what: str) -> int:
        if value not in labels:
            raise ValueError(f"unknown {what} {value!r}; expected one of {labels}")
        return labels.index(value)

    # (dose_index, freq_index) for primary position p and secondary position s
    def step(p: int, s: int) -> tuple[int, int]:
        return (p, s) if order == "dose_first" else (s, p)

    n_primary = len(doses) if order == "dose_first" else len(freqs)
    n_secondary = len(freqs) if order == "dose_first" else len(doses)

    def name(st: tuple[int, int]) -> str:
        return f"dose {doses[st[0]]} x frequency {freqs[st[1]]}"

    basis: dict[str, Any] = {
        "design": "3+3 per step (Storer 1989 design A) along a dose x frequency path",
        "order": order,
        "path": (
            "dose A->E at frequency 1, then frequency 2->3 at the highest tolerated dose"
            if order == "dose_first"
            else "frequency 1->3 at dose A, then dose B->E at the highest tolerated frequency"
        ),
        "dose_levels": list(doses),
        "frequency_levels": list(freqs),
        "steps": [],
        "extra_cohorts": [],
        "highest_tolerated": None,
    }
    history: list[str] = []

    def rec(action, nxt, n_needed, sel, explanation) -> Recommendation:
        return Recommendation(
            rule="grid_3+3",
            action=action,
            next_level=nxt,
            next_value=(doses[nxt[0]], freqs[nxt[1]]) if nxt is not None else None,
            n_needed=n_needed,
            selected_level=sel,
            selected_value=(doses[sel[0]], freqs[sel[1]]) if sel is not None else None,
            basis=basis,
            explanation="; ".join([*history, explanation]),
        )

    phase, p, s = 1, 0, 0  # phase 1 moves along the primary axis, phase 2 the secondary
    best: tuple[int, int] | None = None
    finished: tuple | None = None
    expanding: list[int] | None = None  # [n, dlt] of a step whose first 3 gave 1 DLT
    for pos, (d_label, f_label, n, y) in enumerate(data):
        last = pos == len(data) - 1
        here = (idx(doses, d_label, "dose"), idx(freqs, f_label, "frequency"))
        if finished is not None:
            basis["extra_cohorts"].append({
                "cohort": pos + 1, "dose": doses[here[0]], "frequency": freqs[here[1]],
                "n_evaluable": n, "n_dlt": y,
                "decision": "extra cohort after the rule's decision: not used by the rule"})
            continue
        expected = step(p, s)
        if here != expected:
            raise ValueError(f"cohort at {name(here)} but the path calls for {name(expected)}")
        cohort_numbers = [pos + 1]
        if expanding is not None:  # the 3 more of a 3+3 expansion pool with the first 3
            n, y = expanding[0] + n, expanding[1] + y
            expanding = None
            cohort_numbers = [*basis["steps"].pop()["cohorts"], pos + 1]
        decision, needed = three_plus_three_decision(n, y)
        basis["steps"].append(
            {
                "cohorts": cohort_numbers,
                "dose": doses[here[0]],
                "frequency": freqs[here[1]],
                "n_evaluable": n,
                "n_dlt": y,
                "decision": decision,
            }
        )
        if decision == "expand" and not last:
            expanding = [n, y]
            continue
        if decision in ("expand", "incomplete"):
            if not last:
                raise ValueError(f"{name(here)} undecided ({y}/{n} DLT) but followed by others")
            action = "expand" if decision == "expand" else "cohort_incomplete"
            return rec(
                action,
                here,
                needed,
                None,
                f"{name(here)}: {y}/{n} DLT -> {needed} more evaluable at {name(here)}",
            )
        if decision == "tolerated":
            best = here
            basis["highest_tolerated"] = {"dose": doses[here[0]], "frequency": freqs[here[1]]}
            history.append(f"{name(here)}: {y}/{n} DLT -> tolerated")
            if phase == 1 and p + 1 < n_primary:
                p += 1
                continue
            if phase == 1 and n_secondary > 1:
                phase, s = 2, 1
                continue
            if phase == 2 and s + 1 < n_secondary:
                s += 1
                continue
            finished = ("rp2d_found", best, f"top of the path: RP2D {name(best)}")
            continue
        # not tolerated
        history.append(f"{name(here)}: {y}/{n} DLT -> not tolerated")
        if best is None:
            finished = ("no_tolerated_step", None, "first step not tolerated: no RP2D")
        elif phase == 1 and n_secondary > 1:
            phase, p, s = 2, p - 1, 1
        else:
            finished = ("rp2d_found", best, f"RP2D {name(best)}")
    if finished is not None:
        action, selected, text = finished
        return rec(action, None, None, selected, text + _extra_text(basis))
    nxt = step(p, s)
    return rec("enroll", nxt, 3, None, f"enroll 3 at {name(nxt)}")


# =============================================================================================
# 4. What the rules are fed: evaluable subjects, toxicity events, safety stops
# =============================================================================================
#
# EDC safety defaults (the protocols are silent on these; each is named in the output):
# * EVALUABILITY: a subject is evaluable for a cohort when it has a toxicity event, or has been
#   observed for the rule's whole window after its first administration.  A subject who dies,
#   withdraws or stops treatment before the window ends without an event is *not evaluable*
#   and the cohort needs a replacement (the usual convention of phase I protocols, e.g. Storer
#   1989; never counted as "no toxicity").
# * RELATED DEATH: a grade 5 AE related (>= possible) to the dose-finding product with its
#   date inside the window counts as a toxicity event of the rule (a death is never
#   "tolerated") and suspends the recommendation of the arm ("safety stop") until an
#   investigator records a decision.  With no window in the protocol, any related death after
#   the first administration does.

EDC_DEFAULT_EVALUABILITY = (
    "EDC safety default: a subject who dies, withdraws or stops treatment before the end of "
    "the evaluation window without a DLT/TI is not evaluable and is replaced")
EDC_DEFAULT_RELATED_DEATH = (
    "EDC safety default: a related death (CTCAE grade 5) inside the evaluation window counts as "
    "a toxicity event and stops the recommendation until an investigator records a decision")


@dataclass(frozen=True)
class Death:
    """A grade 5 AE related to the dose-finding product."""

    ae_id: Any
    on: Any  # date
    term: str
    in_window: bool


@dataclass(frozen=True)
class SubjectCourse:
    """What the rule needs to know of one allocated subject of a dose-finding arm."""

    subject: str
    cohort: int
    level: str
    frequency: str
    first_dose: Any  # date or None
    left_on: Any = None  # date the subject died, withdrew or stopped treatment, or None
    left_reason: str = ""
    events: tuple[str, ...] = ()  # reasons of the effective DLT/TI flags
    deaths: tuple[Death, ...] = ()
    severe_related: tuple[str, ...] = ()  # related grade >= 3 AEs (shown, not a rule)


def evaluability(course: SubjectCourse, window_days: int | None, as_of) -> tuple[str, str]:
    """``(status, why)``; status is one of ``event`` (evaluable, with a toxicity event),
    ``evaluable`` (window completed without one), ``pending`` (still inside the window),
    ``not_evaluable`` (left before the window ended: replace) or ``not_treated``."""
    deaths = [d for d in course.deaths if d.in_window]
    if course.events or deaths:
        why = "; ".join([*course.events, *(f"related death on {d.on} ({d.term}): counted as a "
                                           "toxicity event (EDC safety default)" for d in deaths)])
        return "event", why
    if course.first_dose is None:
        if course.left_on is not None:
            return "not_evaluable", f"left the study untreated ({course.left_reason}): replace"
        return "not_treated", "no administration recorded yet"
    if window_days is None:
        return "pending", "the protocol defines no evaluation window"
    end = course.first_dose.toordinal() + window_days
    if course.left_on is not None and course.left_on.toordinal() < end:
        return "not_evaluable", (
            f"left on {course.left_on} ({course.left_reason or 'no reason'}) before the end of "
            f"the {window_days}-day window without DLT/TI: not evaluable, replace "
            "(EDC safety default)")
    if as_of.toordinal() >= end:
        return "evaluable", f"observed for the whole {window_days}-day window without DLT/TI"
    return "pending", f"inside the {window_days}-day window (ends day {window_days})"


def cohort_table(courses: Iterable[SubjectCourse], window_days: int | None, as_of,
                 cohort_size: int) -> list[dict]:
    """One row per cohort (enrollment order): its subjects with their evaluability, and the
    counts the rule uses (``n_evaluable`` includes subjects with an event)."""
    rows: dict[int, dict] = {}
    for c in sorted(courses, key=lambda c: (c.cohort, c.subject)):
        row = rows.setdefault(c.cohort, {
            "cohort": c.cohort, "dose_level": c.level, "frequency": c.frequency,
            "subjects": [], "n_subjects": 0, "n_evaluable": 0, "n_events": 0, "n_pending": 0,
            "n_not_evaluable": 0, "n_deaths": 0, "n_severe_related": 0})
        status, why = evaluability(c, window_days, as_of)
        row["subjects"].append({
            "subject": c.subject, "status": status, "why": why, "first_dose": c.first_dose,
            "deaths": [{"ae": d.ae_id, "on": d.on, "term": d.term, "in_window": d.in_window}
                       for d in c.deaths],
            "severe_related": list(c.severe_related)})
        row["n_subjects"] += 1
        row["n_evaluable"] += status in ("event", "evaluable")
        row["n_events"] += status == "event"
        row["n_pending"] += status in ("pending", "not_treated")
        row["n_not_evaluable"] += status == "not_evaluable"
        row["n_deaths"] += len(c.deaths)
        row["n_severe_related"] += len(c.severe_related)
    for row in rows.values():
        row["replacements_needed"] = row["n_not_evaluable"]
        row["capacity"] = cohort_size + row["n_not_evaluable"]
    return [rows[k] for k in sorted(rows)]


def safety_stop(courses: Iterable[SubjectCourse], reviewed: Iterable[Any]) -> dict | None:
    """The related deaths inside a window that no investigator decision has reviewed yet, as a
    safety stop (EDC safety default), or None."""
    done = set(reviewed)
    open_deaths = [(c.subject, d) for c in courses for d in c.deaths
                   if d.in_window and d.ae_id not in done]
    if not open_deaths:
        return None
    listing = ", ".join(f"subject {s}: {d.term} on {d.on} (AE {d.ae_id})" for s, d in open_deaths)
    return {"adverse_events": [d.ae_id for _, d in open_deaths],
            "explanation": f"Safety stop: related death, review required ({listing}). "
                           f"{EDC_DEFAULT_RELATED_DEATH}."}
def frequency_level_problem(design, code: str) -> str | None:
    """Why ``code`` is not a frequency level of the dose-finding design, or None if it is.

    A design with frequency levels (seed 003: "frequency 1, frequency 2, frequency 3") needs
    one of them; a design without them takes none.
    """
    codes = [level.code for level in design.frequency_levels] if design else []
    if codes and code not in codes:
        return (f"{code!r} is not a frequency level of this protocol (one of "
                f"{', '.join(codes)})" if code else
                f"this protocol doses by frequency level: give one of {', '.join(codes)}")
    if not codes and code:
        return "this protocol has no frequency levels; leave it blank"
    return None
