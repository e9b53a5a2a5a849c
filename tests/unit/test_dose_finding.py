"""Unit tests for trials.dose_finding (pure Python, no Django).

Expected values are worked by hand (arithmetic in comments) or computed here by an independent
method (a brute-force midpoint Riemann sum for the CRM posterior, a different rule on a
different range from the module's composite Simpson).
"""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from trials.dose_finding import (
    CRM_PRIOR_VARIANCE,
    crm_posterior,
    crm_recommendation,
    deescalation_recommendation,
    default_skeleton,
    grid_escalation_recommendation,
    seventy_percent_chain,
    three_plus_three_decision,
)

# Seed 000 (NCT05699811): "2×10^6 cells/kg ... 70% reduced MSC-IFNα dose (i.e. 6×10^5 cells/kg,
# 2x10^5/kg, and so on)" -- the chain as written in the document, recorded in the protocol file.
CHAIN = [Decimal("2e6"), Decimal("6e5"), Decimal("2e5")]
UNIT = "cells/kg"


# =============================================================================================
# 1. 70 % de-escalation (seed 000)
# =============================================================================================


def test_seventy_percent_chain_arithmetic_vs_document_chain():
    # 2e6 * 0.3 = 6e5; 6e5 * 0.3 = 1.8e5; 1.8e5 * 0.3 = 5.4e4
    assert seventy_percent_chain(Decimal("2e6"), 4) == [
        Decimal("2e6"),
        Decimal("6e5"),
        Decimal("1.8e5"),
        Decimal("5.4e4"),
    ]
    assert seventy_percent_chain(2e6, 3) == [2e6, 6e5, 1.8e5]
    # the document writes 2x10^5 for the third level: strict 30 % would be 1.8x10^5
    strict = seventy_percent_chain(CHAIN[0], 3)
    assert strict[:2] == CHAIN[:2]
    assert strict[2] != CHAIN[2] and strict[2] == Decimal("180000")
    assert seventy_percent_chain(1, 0) == []


def test_deescalation_start_enrolls_first_cohort_at_top_dose():
    rec = deescalation_recommendation(CHAIN, [], unit=UNIT)
    assert (rec.action, rec.next_level, rec.next_value, rec.n_needed) == (
        "enroll",
        0,
        Decimal("2e6"),
        3,
    )
    assert rec.selected_level is None
    assert "enroll 3 at 2×10^6 cells/kg" in rec.explanation


def test_deescalation_ti_in_first_cohort_next_cohort_at_6e5():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 1)], unit=UNIT)
    assert rec.action == "enroll"
    assert rec.next_level == 1 and rec.next_value == Decimal("6e5")
    assert rec.n_needed == 3
    assert rec.basis["cohorts"] == [
        {
            "cohort": 1,
            "level_index": 0,
            "dose": Decimal("2e6"),
            "n_evaluable": 3,
            "n_with_ti": 1,
            "decision": "TI -> de-escalate",
        }
    ]
    assert "2×10^6 cells/kg: TI in 1 of 3 evaluable -> de-escalate" in rec.explanation
    assert "6×10^5 cells/kg" in rec.explanation


def test_deescalation_no_ti_at_6e5_is_the_tolerable_dose():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 2), (1, 3, 0)], unit=UNIT)
    assert rec.action == "tolerable_dose_found"
    assert rec.selected_level == 1 and rec.selected_value == Decimal("6e5")
    assert rec.next_level is None and rec.n_needed is None
    assert [c["decision"] for c in rec.basis["cohorts"]] == [
        "TI -> de-escalate",
        "no TI in a full cohort -> tolerable",
    ]
    assert "tolerable dose 6×10^5 cells/kg" in rec.explanation


def test_deescalation_first_dose_tolerable():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 0)])
    assert rec.action == "tolerable_dose_found" and rec.selected_value == Decimal("2e6")


def test_deescalation_ti_at_every_level_no_tolerable_dose():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 1), (1, 3, 1), (2, 3, 3)], unit=UNIT)
    assert rec.action == "no_tolerable_dose"
    assert rec.next_level is None and rec.selected_level is None
    assert len(rec.basis["cohorts"]) == 3
    assert "no tolerable dose" in rec.explanation


def test_deescalation_incomplete_cohort_and_ti_decides_early():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 1), (1, 2, 0)])
    assert (rec.action, rec.next_level, rec.n_needed) == ("cohort_incomplete", 1, 1)
    # a TI in the first evaluable subject already rules the level out
    early = deescalation_recommendation(CHAIN, [(0, 1, 1)])
    assert (early.action, early.next_level) == ("enroll", 1)


def test_deescalation_never_merges_two_cohorts_at_one_level():
    # Each row is one cohort: an incomplete cohort followed by another is not the rule's data.
    with pytest.raises(ValueError, match="incomplete but followed"):
        deescalation_recommendation(CHAIN, [(0, 1, 0), (0, 1, 0), (0, 1, 0)])


def test_deescalation_extra_cohort_after_the_decision_is_flagged_and_decision_stands():
    # Cohort 1: TI -> 6e5; cohort 2 at 6e5: 0/3 -> tolerable.  A third cohort at 6e5 with one TI
    # must not be merged into cohort 2 ("1 TI in 6") and must not take the decision back.
    rec = deescalation_recommendation(CHAIN, [(0, 3, 1), (1, 3, 0), (1, 3, 1)], unit=UNIT)
    assert rec.action == "tolerable_dose_found" and rec.selected_level == 1
    assert [c["cohort"] for c in rec.basis["cohorts"]] == [1, 2]
    assert rec.basis["extra_cohorts"] == [{
        "cohort": 3, "level_index": 1, "dose": Decimal("6e5"), "n_evaluable": 3,
        "n_with_ti": 1,
        "decision": "extra cohort after the rule's decision: not used by the rule"}]
    assert "1 extra cohort enrolled after the rule's decision" in rec.explanation


def test_deescalation_cohort_size_parameter():
    rec = deescalation_recommendation(CHAIN, [(0, 3, 0)], cohort_size=6)
    assert (rec.action, rec.n_needed) == ("cohort_incomplete", 3)


def test_deescalation_rejects_data_inconsistent_with_the_rule():
    with pytest.raises(ValueError):  # started below the top dose
        deescalation_recommendation(CHAIN, [(1, 3, 0)])
    with pytest.raises(ValueError):  # skipped a level
        deescalation_recommendation(CHAIN, [(0, 3, 1), (2, 3, 0)])
    with pytest.raises(ValueError):  # more TI than subjects
        deescalation_recommendation(CHAIN, [(0, 2, 3)])
    with pytest.raises(ValueError):  # index outside the chain
        deescalation_recommendation(CHAIN, [(0, 3, 1), (1, 3, 1), (2, 3, 1), (3, 3, 0)])
    with pytest.raises(ValueError):
        deescalation_recommendation([], [])


# =============================================================================================
# 2. CRM (seed 001: 1/2/3 x10^6 cells/kg, target 35 %)
# =============================================================================================


def dfcrm_p(skeleton, level, a, model="empiric", intercept=3.0):
    """dfcrm 0.2-2.1 ``crm()``: empiric ``prior^exp(a)``; logistic
    ``(1 + exp(-intcpt - exp(a) * dosescaled))^-1`` with
    ``dosescaled = log(prior / (1 - prior)) - intcpt``."""
    s = skeleton[level]
    if model == "empiric":
        return s ** math.exp(a)
    x = math.log(s / (1 - s)) - intercept
    z = -intercept - math.exp(a) * x
    return 0.0 if z > 700 else 1.0 / (1.0 + math.exp(z))


def brute_force_posterior(skeleton, observations, variance=CRM_PRIOR_VARIANCE,
                          model="empiric"):
    """Independent calculation: midpoint Riemann sum over [-15, 15] with 60 000 cells,
    straightforward (not log-space) evaluation of likelihood x N(0, variance) density."""
    lo, hi, cells = -15.0, 15.0, 60_000
    h = (hi - lo) / cells
    z = m1 = m2 = 0.0
    for k in range(cells):
        a = lo + (k + 0.5) * h
        like = 1.0
        for level, n, y in observations:
            p = dfcrm_p(skeleton, level, a, model)
            like *= p**y * (1.0 - p) ** (n - y)
        w = like * math.exp(-a * a / (2 * variance)) / math.sqrt(2 * math.pi * variance)
        z += w * h
        m1 += w * a * h
        m2 += w * a * a * h
    mean = m1 / z
    return mean, math.sqrt(m2 / z - mean * mean)


SEED001_SKELETON = default_skeleton(0.35, 3, 1)

CRM_CASES = [
    ([0.25, 0.35, 0.45], [(0, 3, 0)]),
    ([0.25, 0.35, 0.45], [(0, 3, 0), (1, 3, 1)]),
    ([0.25, 0.35, 0.45], [(0, 3, 0), (1, 3, 0), (2, 3, 2)]),
    ([0.25, 0.35, 0.45], [(0, 3, 3)]),
    ([0.05, 0.10, 0.20, 0.35, 0.50, 0.70], [(2, 3, 0), (3, 3, 1), (3, 3, 2), (2, 6, 1)]),
    ([0.05, 0.10, 0.20, 0.35, 0.50, 0.70], [(0, 12, 0), (5, 1, 1)]),
]


@pytest.mark.parametrize(("skeleton", "observations"), CRM_CASES)
def test_crm_posterior_matches_independent_riemann_sum(skeleton, observations):
    mean, sd = brute_force_posterior(skeleton, observations)
    got_mean, got_sd, _ = crm_posterior(skeleton, observations)
    assert got_mean == pytest.approx(mean, abs=1e-6)
    assert got_sd == pytest.approx(sd, abs=1e-6)
    target = 0.35
    rec = crm_recommendation(skeleton, target, observations, no_skipping=False)
    # plug-in estimates s_i ** exp(E[a]) and the level closest to the target
    plug = [s ** math.exp(mean) for s in skeleton]
    assert rec.dlt_probabilities == pytest.approx(plug, abs=1e-6)
    expected = min(range(len(skeleton)), key=lambda i: abs(plug[i] - target))
    assert rec.mtd_estimate == expected == rec.recommended_level


def test_crm_posterior_mean_dlt_probabilities_independent():
    skeleton, obs = [0.25, 0.35, 0.45], [(0, 3, 0), (1, 3, 1)]
    lo, hi, cells = -15.0, 15.0, 60_000
    h = (hi - lo) / cells
    z, sums = 0.0, [0.0, 0.0, 0.0]
    for k in range(cells):
        a = lo + (k + 0.5) * h
        like = 1.0
        for level, n, y in obs:
            p = skeleton[level] ** math.exp(a)
            like *= p**y * (1 - p) ** (n - y)
        w = like * math.exp(-a * a / 2.68)
        z += w
        for i, s in enumerate(skeleton):
            sums[i] += w * s ** math.exp(a)
    _, _, post_p = crm_posterior(skeleton, obs)
    assert post_p == pytest.approx([v / z for v in sums], abs=1e-6)


def test_crm_no_data_posterior_is_prior():
    # prior symmetric about 0 and likelihood = 1 -> E[a] = 0, sd = sqrt(1.34) = 1.15758...
    rec = crm_recommendation(SEED001_SKELETON, 0.35, [])
    assert rec.posterior_mean_a == pytest.approx(0.0, abs=1e-9)
    assert rec.posterior_sd_a == pytest.approx(math.sqrt(1.34), abs=1e-6)
    assert rec.dlt_probabilities == pytest.approx(SEED001_SKELETON, abs=1e-9)
    # model choice = the prior MTD guess (level index 1), but the trial starts at level 0
    assert rec.mtd_estimate == 1
    assert rec.recommended_level == 0 and rec.restricted
    assert crm_recommendation(SEED001_SKELETON, 0.35, [], start_level=1).recommended_level == 1


def test_crm_all_dlts_at_lowest_level_recommends_lowest():
    rec = crm_recommendation(SEED001_SKELETON, 0.35, [(0, 3, 3)])
    assert rec.posterior_mean_a < 0  # toxicity worse than the skeleton
    assert rec.recommended_level == 0 and rec.mtd_estimate == 0
    assert not rec.restricted


def test_crm_no_dlt_escalates_by_one_level_only():
    # skeleton 5 % / 10 % / 35 %: after 0/3 at level 0 the model prefers level 2 (closest to
    # 35 %) but level 1 is untried -> no skipping, recommend level 1
    skeleton = [0.05, 0.10, 0.35]
    mean, _ = brute_force_posterior(skeleton, [(0, 3, 0)])
    plug = [s ** math.exp(mean) for s in skeleton]
    assert min(range(3), key=lambda i: abs(plug[i] - 0.35)) == 2
    rec = crm_recommendation(skeleton, 0.35, [(0, 3, 0)])
    assert rec.mtd_estimate == 2
    assert rec.recommended_level == 1 and rec.restricted
    assert "restricted to L2 (no skipping of untried levels)" in rec.explanation
    # without the restriction the model choice is used
    assert crm_recommendation(skeleton, 0.35, [(0, 3, 0)], no_skipping=False).recommended_level == 2


def test_crm_current_level_limits_escalation_to_one_step():
    skeleton = [0.05, 0.10, 0.20, 0.35]
    obs = [(0, 3, 0), (1, 3, 0), (2, 3, 0)]
    free = crm_recommendation(skeleton, 0.35, obs)
    assert free.recommended_level == 3  # highest tried (2) + 1
    limited = crm_recommendation(skeleton, 0.35, obs, current_level=1)
    assert limited.recommended_level == 2 and limited.restricted


def test_crm_seed001_sequence_and_basis():
    # 3 levels 1/2/3 x10^6 cells/kg, target 35 %, skeleton by indifference intervals
    labels = ["1e6 cells/kg", "2e6 cells/kg", "3e6 cells/kg"]
    rec = crm_recommendation(SEED001_SKELETON, 0.35, [(0, 3, 0), (1, 3, 1)], level_labels=labels)
    mean, _ = brute_force_posterior(SEED001_SKELETON, [(0, 3, 0), (1, 3, 1)])
    assert rec.posterior_mean_a == pytest.approx(mean, abs=1e-6)
    assert rec.basis["data"] == [
        {"level": 0, "label": "1e6 cells/kg", "n": 3, "dlt": 0},
        {"level": 1, "label": "2e6 cells/kg", "n": 3, "dlt": 1},
    ]
    assert rec.basis["target"] == 0.35 and rec.basis["prior"] == "a ~ Normal(0, 1.34)"
    assert ("CRM (empiric model) after 6 subjects (1e6 cells/kg: 0/3 DLT, "
            "2e6 cells/kg: 1/3 DLT)") in rec.explanation
    assert rec.recommended_level == rec.basis["recommended_level"]


def test_crm_observations_are_pooled_per_level():
    a = crm_recommendation(SEED001_SKELETON, 0.35, [(0, 3, 0), (1, 2, 1), (1, 1, 0)])
    b = crm_recommendation(SEED001_SKELETON, 0.35, [(1, 3, 1), (0, 3, 0)])
    assert a.posterior_mean_a == b.posterior_mean_a
    assert a.dlt_probabilities == b.dlt_probabilities


def test_crm_rejects_bad_input():
    with pytest.raises(ValueError):
        crm_recommendation([0.3, 0.2], 0.35, [])  # not increasing
    with pytest.raises(ValueError):
        crm_recommendation([0.0, 0.2], 0.35, [])
    with pytest.raises(ValueError):
        crm_recommendation([0.1, 0.2], 1.2, [])
    with pytest.raises(ValueError):
        crm_recommendation([0.1, 0.2], 0.35, [(2, 3, 0)])
    with pytest.raises(ValueError):
        crm_recommendation([0.1, 0.2], 0.35, [(0, 2, 3)])


def test_default_skeleton_hand_values():
    # t = 0.25, δ = 0.05, guess = index 2 of 5: r = ln(0.30)/ln(0.20) = 1.203973/1.609438
    # = 0.748070; ln s3 = ln(0.25) * r = -1.386294 * 0.748070 = -1.037045 -> s3 = 0.35450;
    # ln s4 = -1.037045 * r = -0.775782 -> 0.46034; ln s1 = -1.386294 / r = -1.853160 -> 0.15674;
    # ln s0 = -1.853160 / r = -2.477256 -> 0.08397
    sk = default_skeleton(0.25, 5, 2)
    assert sk == pytest.approx([0.08397, 0.15674, 0.25, 0.35450, 0.46034], abs=5e-5)


@pytest.mark.parametrize(("target", "n", "guess"), [(0.25, 5, 2), (0.35, 3, 1), (0.2, 6, 0)])
def test_default_skeleton_indifference_intervals(target, n, guess):
    # Lee & Cheung 2009: at the boundary b between levels k and k+1, p_k(b) = t - δ and
    # p_{k+1}(b) = t + δ. Solve p_k(b) = t - δ for b independently and check the neighbour.
    delta = 0.05
    sk = default_skeleton(target, n, guess, halfwidth=delta)
    assert sk[guess] == pytest.approx(target)
    assert all(x < y for x, y in zip(sk, sk[1:], strict=False))
    for k in range(n - 1):
        b = math.log(math.log(target - delta) / math.log(sk[k]))
        assert sk[k + 1] ** math.exp(b) == pytest.approx(target + delta, abs=1e-12)


def test_default_skeleton_rejects_bad_input():
    with pytest.raises(ValueError):
        default_skeleton(0.35, 3, 3)
    with pytest.raises(ValueError):
        default_skeleton(0.04, 3, 1, halfwidth=0.05)


# =============================================================================================
# 3. Dose A-E x frequency 1-3 with 3+3 (seed 003)
# =============================================================================================


@pytest.mark.parametrize(
    ("n", "dlt", "expected"),
    [
        (0, 0, ("incomplete", 3)),
        (2, 0, ("incomplete", 1)),
        (2, 1, ("incomplete", 1)),
        (2, 2, ("not_tolerated", 0)),  # 2 DLTs decide the step before it is complete
        (3, 0, ("tolerated", 0)),  # 0/3 -> escalate
        (3, 1, ("expand", 3)),  # 1/3 -> expand to 6
        (3, 2, ("not_tolerated", 0)),  # >= 2/3 -> stop
        (3, 3, ("not_tolerated", 0)),
        (5, 1, ("incomplete", 1)),  # expansion cohort not yet complete
        (6, 1, ("tolerated", 0)),  # 1/6 -> escalate
        (6, 2, ("not_tolerated", 0)),  # >= 2/6 -> stop
        (4, 2, ("not_tolerated", 0)),
    ],
)
def test_three_plus_three_every_branch(n, dlt, expected):
    assert three_plus_three_decision(n, dlt) == expected


def test_grid_start_at_lowest_dose_and_frequency():
    rec = grid_escalation_recommendation(cohorts=[])
    assert (rec.action, rec.next_level, rec.next_value, rec.n_needed) == (
        "enroll",
        (0, 0),
        ("A", 1),
        3,
    )


def test_grid_zero_of_three_escalates_dose():
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 0)])
    assert (rec.action, rec.next_value) == ("enroll", ("B", 1))
    assert rec.basis["highest_tolerated"] == {"dose": "A", "frequency": 1}


def test_grid_one_of_three_expands_then_one_of_six_escalates():
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 1)])
    assert (rec.action, rec.next_value, rec.n_needed) == ("expand", ("A", 1), 3)
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 1), ("A", 1, 3, 0)])
    assert (rec.action, rec.next_value) == ("enroll", ("B", 1))
    assert rec.basis["steps"] == [
        {"cohorts": [1, 2], "dose": "A", "frequency": 1, "n_evaluable": 6, "n_dlt": 1,
         "decision": "tolerated"}
    ]


def test_grid_two_of_six_or_two_of_three_at_first_step_no_rp2d():
    for cohorts in ([("A", 1, 3, 1), ("A", 1, 3, 1)], [("A", 1, 3, 2)]):
        rec = grid_escalation_recommendation(cohorts=cohorts)
        assert rec.action == "no_tolerated_step"
        assert rec.selected_level is None and rec.next_level is None


def test_grid_incomplete_cohorts():
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 2, 0)])
    assert (rec.action, rec.next_value, rec.n_needed) == ("cohort_incomplete", ("A", 1), 1)
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 1), ("A", 1, 2, 0)])
    assert (rec.action, rec.n_needed) == ("cohort_incomplete", 1)  # 1/5: one more to reach 6


def test_grid_dose_limit_then_frequency_escalation_to_rp2d():
    # A 0/3, B 0/3, C 2/3 -> highest tolerated dose B; then B at frequency 2
    base = [("A", 1, 3, 0), ("B", 1, 3, 0), ("C", 1, 3, 2)]
    rec = grid_escalation_recommendation(cohorts=base)
    assert (rec.action, rec.next_value) == ("enroll", ("B", 2))
    # B x 2: 1/3 -> expand; + 0/3 = 1/6 -> frequency 3
    rec = grid_escalation_recommendation(cohorts=[*base, ("B", 2, 3, 1)])
    assert (rec.action, rec.next_value) == ("expand", ("B", 2))
    steps = [*base, ("B", 2, 3, 1), ("B", 2, 3, 0)]
    rec = grid_escalation_recommendation(cohorts=steps)
    assert (rec.action, rec.next_value) == ("enroll", ("B", 3))
    # B x 3: 3/3 -> stop; RP2D = B at frequency 2
    rec = grid_escalation_recommendation(cohorts=[*steps, ("B", 3, 3, 3)])
    assert rec.action == "rp2d_found"
    assert rec.selected_level == (1, 1) and rec.selected_value == ("B", 2)
    assert rec.next_level is None
    assert [s["decision"] for s in rec.basis["steps"]] == [
        "tolerated",
        "tolerated",
        "not_tolerated",
        "tolerated",
        "not_tolerated",
    ]
    assert "RP2D dose B x frequency 2" in rec.explanation


def test_grid_frequency_2_not_tolerated_rp2d_is_frequency_1():
    cohorts = [("A", 1, 3, 0), ("B", 1, 3, 2), ("A", 2, 6, 2)]
    rec = grid_escalation_recommendation(cohorts=cohorts)
    assert rec.action == "rp2d_found" and rec.selected_value == ("A", 1)


def test_grid_whole_path_tolerated_rp2d_is_top():
    cohorts = [(d, 1, 3, 0) for d in "ABCDE"]
    rec = grid_escalation_recommendation(cohorts=cohorts)
    assert (rec.action, rec.next_value) == ("enroll", ("E", 2))
    cohorts += [("E", 2, 3, 0), ("E", 3, 6, 1)]
    rec = grid_escalation_recommendation(cohorts=cohorts)
    assert rec.action == "rp2d_found" and rec.selected_value == ("E", 3)


def test_grid_frequency_first_order():
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 0)], order="frequency_first")
    assert rec.next_value == ("A", 2)
    # A1 ok, A2 ok, A3 not tolerated -> dose escalation at frequency 2: B x 2
    cohorts = [("A", 1, 3, 0), ("A", 2, 3, 0), ("A", 3, 3, 2)]
    rec = grid_escalation_recommendation(cohorts=cohorts, order="frequency_first")
    assert rec.next_value == ("B", 2)
    rec = grid_escalation_recommendation(
        cohorts=[*cohorts, ("B", 2, 3, 2)], order="frequency_first"
    )
    assert rec.action == "rp2d_found" and rec.selected_value == ("A", 2)


def test_grid_custom_levels_positional_call():
    rec = grid_escalation_recommendation(("low", "high"), (1,), [("low", 1, 3, 0)])
    assert rec.next_value == ("high", 1)
    rec = grid_escalation_recommendation(
        ("low", "high"), (1,), [("low", 1, 3, 0), ("high", 1, 3, 2)]
    )
    assert rec.action == "rp2d_found" and rec.selected_value == ("low", 1)


def test_grid_rejects_data_off_the_path():
    with pytest.raises(ValueError):  # skipped dose A
        grid_escalation_recommendation(cohorts=[("B", 1, 3, 0)])
    with pytest.raises(ValueError):  # frequency escalation before the dose limit
        grid_escalation_recommendation(cohorts=[("A", 1, 3, 0), ("A", 2, 3, 0)])
    with pytest.raises(ValueError):  # unknown dose label
        grid_escalation_recommendation(cohorts=[("Z", 1, 3, 0)])
    with pytest.raises(ValueError):  # undecided step followed by another
        grid_escalation_recommendation(cohorts=[("A", 1, 2, 0), ("B", 1, 3, 0)])
    with pytest.raises(ValueError):
        grid_escalation_recommendation(cohorts=[], order="diagonal")


def test_grid_cohort_after_the_decision_is_extra_and_does_not_reopen_it():
    rec = grid_escalation_recommendation(cohorts=[("A", 1, 3, 2), ("A", 1, 3, 0)])
    assert rec.action == "no_tolerated_step"
    assert [c["cohort"] for c in rec.basis["extra_cohorts"]] == [2]
    top = [(d, 1, 3, 0) for d in "ABCDE"] + [("E", 2, 3, 0), ("E", 3, 3, 0)]
    rec = grid_escalation_recommendation(cohorts=[*top, ("E", 3, 3, 2)])
    assert rec.action == "rp2d_found" and rec.selected_value == ("E", 3)
    assert rec.basis["extra_cohorts"][0]["n_dlt"] == 2
    assert "extra cohort" in rec.explanation


# ---- dfcrm logistic model, declared parameters, ties (issue 14) -----------------------------


@pytest.mark.parametrize(("skeleton", "observations"), CRM_CASES)
def test_crm_logistic_matches_dfcrm_formulas(skeleton, observations):
    """Posterior mean of a, plug-in ptox and mtd as dfcrm's crm(model = "logistic",
    intcpt = 3, scale = sqrt(1.34)) defines them, against an independent Riemann sum."""
    mean, sd = brute_force_posterior(skeleton, observations, model="logistic")
    got_mean, got_sd, _ = crm_posterior(skeleton, observations, model="logistic")
    assert got_mean == pytest.approx(mean, abs=1e-6)
    assert got_sd == pytest.approx(sd, abs=1e-6)
    rec = crm_recommendation(skeleton, 0.35, observations, no_skipping=False, model="logistic")
    plug = [dfcrm_p(skeleton, i, mean, "logistic") for i in range(len(skeleton))]
    assert rec.dlt_probabilities == pytest.approx(plug, abs=1e-6)
    assert rec.basis["model"] == "logistic" and rec.basis["intercept"] == 3.0


def test_crm_logistic_without_data_returns_the_skeleton():
    # Hand-derived: with no data E[a] = 0, so p_i = 1 / (1 + exp(-3 - (logit(s_i) - 3))) = s_i.
    rec = crm_recommendation([0.1, 0.2, 0.35, 0.5], 0.35, [], no_skipping=False,
                             model="logistic")
    assert rec.posterior_mean_a == pytest.approx(0.0, abs=1e-12)
    assert rec.dlt_probabilities == pytest.approx((0.1, 0.2, 0.35, 0.5), abs=1e-12)
    assert rec.mtd_estimate == 2


def test_crm_logistic_refuses_an_intercept_dfcrm_refuses():
    with pytest.raises(ValueError, match="intercept too small"):
        crm_recommendation([0.1, 0.96], 0.35, [], model="logistic", intercept=3.0)


def test_crm_logistic_dlts_lower_every_estimate():
    sk = [0.1, 0.2, 0.35, 0.5]
    rec = crm_recommendation(sk, 0.35, [(1, 3, 2)], model="logistic", no_skipping=False)
    assert rec.posterior_mean_a < 0  # exp(a) < 1 and x_i < 0: each p_i above the skeleton
    assert all(p > s for p, s in zip(rec.dlt_probabilities, sk, strict=True))
    assert rec.mtd_estimate < 2


def test_crm_exact_tie_goes_to_the_larger_dose_as_seed_001_states():
    # Hand-derived: no data, E[a] = 0, ptox = skeleton; |0.30 - 0.35| = |0.40 - 0.35| = 0.05.
    rec = crm_recommendation([0.25, 0.30, 0.40], 0.35, [], no_skipping=False)
    assert rec.mtd_estimate == 2
    lower = crm_recommendation([0.25, 0.30, 0.40], 0.35, [], no_skipping=False,
                               tie_break="smallest")
    assert lower.mtd_estimate == 1
    with pytest.raises(ValueError):
        crm_recommendation([0.25, 0.30, 0.40], 0.35, [], tie_break="random")
