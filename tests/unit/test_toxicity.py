"""Unit tests for adverse_events.toxicity (pure Python, no Django).

Dates are chosen so the arithmetic can be checked by hand; each case comments it.
Seed 000 (NCT05699811): "Subjects with any grade 3-4 TRAE that lasts for 7 days or more within
the 28 days after infusion will be determined as treatment intolerance (TI)."
Seed 001 (MSC-L): "DLT (defined as MSC-L related adverse event of grade 3 or higher)".
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from adverse_events.toxicity import (
    ATTRIBUTION_LEVELS,
    Administration,
    AdverseEventFacts,
    Flag,
    GradeEpisode,
    ToxicityRule,
    attribution_rank,
    evaluate,
    expedited_status,
    qualifying_runs,
    sae_deadlines,
    sae_status,
)

MSC = "MSC-IFNα"
D = dt.date

TI_RULE = ToxicityRule(
    code="TI-1",
    kind="TI",
    min_grade=3,
    max_grade=4,
    min_duration_days=7,
    window_days=28,
    window_interventions=(MSC,),
    attribution_interventions=(MSC,),
    min_attribution="possible",
    description="grade 3-4 TRAE lasting >= 7 days within 28 days after infusion (NCT05699811)",
)

DLT_RULE = ToxicityRule(
    code="DLT-1",
    kind="DLT",
    min_grade=3,
    max_grade=None,
    min_duration_days=None,
    window_days=28,
    window_interventions=("MSC-L",),
    attribution_interventions=("MSC-L",),
)

INFUSION = Administration(id=101, intervention=MSC, date=D(2025, 2, 1))


def ae(episodes, attribution="possible", ae_id=17, term="Neutrophil count decreased", code=MSC):
    attributions = {} if attribution is None else {code: attribution}
    return AdverseEventFacts(
        id=ae_id, term=term, episodes=tuple(episodes), attributions=attributions
    )


def ep(ep_id, grade, start, end):
    return GradeEpisode(id=ep_id, grade=grade, start=start, end=end)


AS_OF = D(2025, 6, 1)


# ---------------------------------------------------------------------------------------------
# Seed 000: TI rule
# ---------------------------------------------------------------------------------------------


def test_ti_grade3_six_days_is_not_ti():
    # Feb 6 .. Feb 11 inclusive = (11 - 6) + 1 = 6 days < 7
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 11))])
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []


def test_ti_grade3_seven_days_is_ti_with_full_provenance():
    # Feb 6 .. Feb 12 inclusive = (12 - 6) + 1 = 7 days >= 7; onset 5 days after Feb 1 infusion
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 12))])
    flags = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert flags == [
        Flag(
            rule_code="TI-1",
            kind="TI",
            ae_id=17,
            episode_ids=(1,),
            administration_id=101,
            onset=D(2025, 2, 6),
            duration_days=7,
            worst_grade=3,
            reason=flags[0].reason,
        )
    ]
    reason = flags[0].reason
    assert reason.startswith("TI (rule TI-1): AE 17 'Neutrophil count decreased' grade 3-4")
    for part in (
        "episode 1",
        "from 2025-02-06 for 7 days (>= 7)",
        "starting 5 days after MSC-IFNα (administration 101) on 2025-02-01",
        "(window 28 days)",
        "attribution to MSC-IFNα: possible",
    ):
        assert part in reason


def test_ti_onset_day_28_inside_day_29_outside():
    # Feb 2025 has 28 days: Feb 1 + 28 days = Mar 1 (day 28), + 29 days = Mar 2 (day 29)
    assert D(2025, 2, 1) + dt.timedelta(days=28) == D(2025, 3, 1)
    day28 = ae([ep(1, 3, D(2025, 3, 1), D(2025, 3, 10))])
    day29 = ae([ep(2, 3, D(2025, 3, 2), D(2025, 3, 11))], ae_id=18)
    flags = evaluate([TI_RULE], [day28, day29], [INFUSION], AS_OF)
    assert [(f.ae_id, f.onset, f.duration_days) for f in flags] == [(17, D(2025, 3, 1), 10)]
    assert "starting 28 days after" in flags[0].reason


def test_ti_onset_on_infusion_day_is_day_0_inside():
    facts = ae([ep(1, 4, D(2025, 2, 1), D(2025, 2, 7))])  # 7 days, day 0
    flags = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert len(flags) == 1 and "starting 0 days after" in flags[0].reason


def test_ti_onset_before_any_infusion_is_not_ti():
    facts = ae([ep(1, 3, D(2025, 1, 20), D(2025, 2, 10))])
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []


def test_ti_unrelated_grade4_is_not_ti():
    facts = ae([ep(1, 4, D(2025, 2, 6), D(2025, 2, 20))], attribution="unrelated")
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []
    unlikely = ae([ep(1, 4, D(2025, 2, 6), D(2025, 2, 20))], attribution="unlikely")
    assert evaluate([TI_RULE], [unlikely], [INFUSION], AS_OF) == []
    missing = ae([ep(1, 4, D(2025, 2, 6), D(2025, 2, 20))], attribution=None)
    assert evaluate([TI_RULE], [missing], [INFUSION], AS_OF) == []


def test_ti_related_only_to_other_agent_is_not_ti():
    facts = AdverseEventFacts(
        id=17,
        term="Neutropenia",
        episodes=(ep(1, 4, D(2025, 2, 6), D(2025, 2, 20)),),
        attributions={"Cyclophosphamide": "probable", MSC: "unlikely"},
    )
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []


def test_ti_grade_2_then_3_then_4_counts_grade3_and_grade4_together():
    # grade 2 Feb 3-5 (not counted), grade 3 Feb 6-9 (4 days), grade 4 Feb 10-13 (4 days):
    # run of grade >= 3 = Feb 6 .. Feb 13 = (13 - 6) + 1 = 8 days >= 7 -> TI, worst grade 4
    facts = ae(
        [
            ep(1, 2, D(2025, 2, 3), D(2025, 2, 5)),
            ep(2, 3, D(2025, 2, 6), D(2025, 2, 9)),
            ep(3, 4, D(2025, 2, 10), D(2025, 2, 13)),
        ]
    )
    [flag] = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert flag.episode_ids == (2, 3)
    assert flag.onset == D(2025, 2, 6)
    assert flag.duration_days == 8
    assert flag.worst_grade == 4
    assert "worst grade 4; episodes 2, 3" in flag.reason


def test_ti_grade3_and_grade4_each_short_but_together_six_days_is_not_ti():
    # grade 3 Feb 6-8 (3 days) + grade 4 Feb 9-11 (3 days) = 6 days < 7
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 8)), ep(2, 4, D(2025, 2, 9), D(2025, 2, 11))])
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []


def test_gap_between_episodes_breaks_the_run():
    # grade 3 Feb 6-9 (4 days), no record Feb 10, grade 3 Feb 11-14 (4 days): 4 + 4 but not 7
    # contiguous days -> no TI
    gap = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 9)), ep(2, 3, D(2025, 2, 11), D(2025, 2, 14))])
    assert evaluate([TI_RULE], [gap], [INFUSION], AS_OF) == []
    # the same with the second episode starting the day after (Feb 10): Feb 6..13 = 8 days -> TI
    contiguous = ae(
        [ep(1, 3, D(2025, 2, 6), D(2025, 2, 9)), ep(2, 3, D(2025, 2, 10), D(2025, 2, 13))]
    )
    [flag] = evaluate([TI_RULE], [contiguous], [INFUSION], AS_OF)
    assert flag.duration_days == 8 and flag.episode_ids == (1, 2)


def test_intervening_grade2_episode_breaks_the_run():
    # 3 (Feb 6-9) -> 2 (Feb 10) -> 3 (Feb 11-14): grade-3 days are not contiguous
    facts = ae(
        [
            ep(1, 3, D(2025, 2, 6), D(2025, 2, 9)),
            ep(2, 2, D(2025, 2, 10), D(2025, 2, 10)),
            ep(3, 3, D(2025, 2, 11), D(2025, 2, 14)),
        ]
    )
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []


def test_episodes_sharing_a_transition_day_are_contiguous():
    # episode 2 starts on the day episode 1 ends (same-day grade change): Feb 6..12 = 7 days
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 9)), ep(2, 4, D(2025, 2, 9), D(2025, 2, 12))])
    [flag] = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert flag.duration_days == 7


def test_ongoing_episode_counted_up_to_as_of():
    facts = ae([ep(1, 3, D(2025, 2, 6), None)])
    # as_of Feb 11: Feb 6..11 = 6 days -> not yet
    assert evaluate([TI_RULE], [facts], [INFUSION], D(2025, 2, 11)) == []
    # as_of Feb 12: Feb 6..12 = 7 days -> TI, reason says ongoing
    [flag] = evaluate([TI_RULE], [facts], [INFUSION], D(2025, 2, 12))
    assert flag.duration_days == 7
    assert "ongoing as of 2025-02-12" in flag.reason
    # as_of Feb 20: Feb 6..20 = 15 days
    [later] = evaluate([TI_RULE], [facts], [INFUSION], D(2025, 2, 20))
    assert later.duration_days == 15


def test_evaluation_as_of_ignores_later_facts():
    # a closed episode Feb 6-20 evaluated as of Feb 10: clipped to Feb 6..10 = 5 days
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 20))])
    assert evaluate([TI_RULE], [facts], [INFUSION], D(2025, 2, 10)) == []
    # an infusion after as_of does not open a window
    late_infusion = Administration(id=102, intervention=MSC, date=D(2025, 2, 5))
    assert evaluate([TI_RULE], [facts], [late_infusion], D(2025, 2, 4)) == []


def test_most_recent_infusion_opens_the_window():
    first = Administration(id=1, intervention=MSC, date=D(2025, 1, 1))
    second = Administration(id=2, intervention=MSC, date=D(2025, 2, 12))
    # onset Feb 14: 2 days after the second infusion (44 after the first)
    facts = ae([ep(1, 3, D(2025, 2, 14), D(2025, 2, 25))])
    [flag] = evaluate([TI_RULE], [facts], [second, first], AS_OF)
    assert flag.administration_id == 2 and "starting 2 days after" in flag.reason
    # onset Feb 5: 35 days after Jan 1 (> 28) and before the second infusion -> no TI
    early = ae([ep(1, 3, D(2025, 2, 5), D(2025, 2, 11))], ae_id=18)
    assert evaluate([TI_RULE], [early], [first, second], AS_OF) == []


def test_non_window_intervention_does_not_open_a_window():
    pd1 = Administration(id=9, intervention="anti-PD-1", date=D(2025, 2, 5))
    facts = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 20))])
    assert evaluate([TI_RULE], [facts], [pd1], AS_OF) == []


def test_grade5_is_outside_a_3_to_4_rule_but_inside_an_open_dlt_rule():
    # grade 3 Feb 6-9 (4 days) then fatal (grade 5) Feb 10
    facts = AdverseEventFacts(
        id=5,
        term="Sepsis",
        episodes=(ep(1, 3, D(2025, 2, 6), D(2025, 2, 9)), ep(2, 5, D(2025, 2, 10), D(2025, 2, 10))),
        attributions={MSC: "probable", "MSC-L": "probable"},
    )
    assert evaluate([TI_RULE], [facts], [INFUSION], AS_OF) == []  # 4 days of grade 3-4 only
    msc_l = Administration(id=7, intervention="MSC-L", date=D(2025, 2, 1))
    [flag] = evaluate([DLT_RULE], [facts], [msc_l], AS_OF)
    assert flag.worst_grade == 5 and flag.duration_days == 5 and flag.episode_ids == (1, 2)


def test_one_flag_per_rule_and_ae_first_qualifying_run():
    # two separate 7-day grade 3 runs: Feb 2-8 and Feb 15-21 -> one flag, for the first
    facts = ae([ep(1, 3, D(2025, 2, 2), D(2025, 2, 8)), ep(2, 3, D(2025, 2, 15), D(2025, 2, 21))])
    [flag] = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert flag.onset == D(2025, 2, 2) and flag.episode_ids == (1,)


def test_first_run_that_qualifies_wins_even_if_an_earlier_run_is_too_short():
    # run 1 Feb 2-4 (3 days, too short), run 2 Feb 10-18 (9 days) -> flag for run 2
    facts = ae([ep(1, 3, D(2025, 2, 2), D(2025, 2, 4)), ep(2, 4, D(2025, 2, 10), D(2025, 2, 18))])
    [flag] = evaluate([TI_RULE], [facts], [INFUSION], AS_OF)
    assert flag.onset == D(2025, 2, 10) and flag.duration_days == 9


def test_output_is_sorted_deterministic_and_idempotent():
    aes = [
        ae([ep(10, 3, D(2025, 2, 9), D(2025, 2, 20))], ae_id=3, term="Anaemia"),
        ae([ep(11, 4, D(2025, 2, 2), D(2025, 2, 12))], ae_id=1, term="Neutropenia"),
        ae([ep(12, 3, D(2025, 2, 9), D(2025, 2, 20))], ae_id=2, term="Thrombocytopenia"),
    ]
    dlt = ToxicityRule("DLT-A", "DLT", 3, None, None, 28, (MSC,), (MSC,))
    rules = [TI_RULE, dlt]
    first = evaluate(rules, aes, [INFUSION], AS_OF)
    # sorted by (onset, rule_code, ae_id)
    assert [(f.onset.day, f.rule_code, f.ae_id) for f in first] == [
        (2, "DLT-A", 1),
        (2, "TI-1", 1),
        (9, "DLT-A", 2),
        (9, "DLT-A", 3),
        (9, "TI-1", 2),
        (9, "TI-1", 3),
    ]
    rng = random.Random(0)
    for _ in range(5):
        shuffled_aes, shuffled_rules = aes[:], rules[:]
        rng.shuffle(shuffled_aes)
        rng.shuffle(shuffled_rules)
        assert evaluate(shuffled_rules, shuffled_aes, [INFUSION], AS_OF) == first


# ---------------------------------------------------------------------------------------------
# Seed 001: DLT = MSC-L related AE of grade >= 3 (no duration)
# ---------------------------------------------------------------------------------------------

MSC_L_INFUSION = Administration(id=55, intervention="MSC-L", date=D(2025, 4, 1))


def test_dlt_possible_attribution_is_dlt():
    facts = ae([ep(1, 3, D(2025, 4, 3), D(2025, 4, 3))], attribution="possible", code="MSC-L")
    [flag] = evaluate([DLT_RULE], [facts], [MSC_L_INFUSION], AS_OF)
    assert flag.kind == "DLT" and flag.duration_days == 1 and flag.administration_id == 55
    assert flag.reason.startswith("DLT (rule DLT-1): AE 17")
    assert "grade >= 3" in flag.reason
    # no duration requirement -> no "(>= n)" after the duration
    assert "from 2025-04-03 for 1 day starting 2 days after MSC-L (administration 55)" in (
        flag.reason
    )


def test_dlt_unlikely_attribution_is_not_dlt():
    facts = ae([ep(1, 4, D(2025, 4, 3), D(2025, 4, 9))], attribution="unlikely", code="MSC-L")
    assert evaluate([DLT_RULE], [facts], [MSC_L_INFUSION], AS_OF) == []


def test_dlt_grade2_is_not_dlt_and_window_applies():
    grade2 = ae([ep(1, 2, D(2025, 4, 3), D(2025, 4, 30))], attribution="definite", code="MSC-L")
    assert evaluate([DLT_RULE], [grade2], [MSC_L_INFUSION], AS_OF) == []
    # Apr 1 + 29 days = Apr 30 -> outside the 28-day window
    late = ae([ep(1, 3, D(2025, 4, 30), D(2025, 4, 30))], attribution="definite", code="MSC-L")
    assert evaluate([DLT_RULE], [late], [MSC_L_INFUSION], AS_OF) == []


# ---------------------------------------------------------------------------------------------
# Attribution scale, validation
# ---------------------------------------------------------------------------------------------


def test_attribution_scale_and_aliases():
    assert ATTRIBUTION_LEVELS == ("unrelated", "unlikely", "possible", "probable", "definite")
    assert [attribution_rank(x) for x in ATTRIBUTION_LEVELS] == [0, 1, 2, 3, 4]
    assert attribution_rank("Related") == attribution_rank("possible")
    assert attribution_rank("Not related") == 0
    assert attribution_rank("PROBABLY_RELATED") == 3
    with pytest.raises(ValueError):
        attribution_rank("maybe")


def test_min_attribution_probable_excludes_possible():
    rule = ToxicityRule("TI-P", "TI", 3, 4, 7, 28, (MSC,), (MSC,), min_attribution="probable")
    possible = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 20))], attribution="possible")
    probable = ae([ep(1, 3, D(2025, 2, 6), D(2025, 2, 20))], attribution="probable", ae_id=18)
    flags = evaluate([rule], [possible, probable], [INFUSION], AS_OF)
    assert [f.ae_id for f in flags] == [18]


def test_invalid_inputs_are_refused():
    with pytest.raises(ValueError):
        ToxicityRule("X", "SAE", 3, 4, 7, 28, (MSC,), (MSC,))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ToxicityRule("X", "TI", 4, 3, 7, 28, (MSC,), (MSC,))
    with pytest.raises(ValueError):
        ToxicityRule("X", "TI", 3, 4, 7, 28, (), (MSC,))
    with pytest.raises(ValueError):
        ToxicityRule("X", "TI", 3, 4, 7, 28, (MSC,), (MSC,), min_attribution="maybe")
    with pytest.raises(ValueError):
        GradeEpisode(1, 3, D(2025, 2, 6), D(2025, 2, 5))
    with pytest.raises(ValueError):
        GradeEpisode(1, 6, D(2025, 2, 6), None)
    with pytest.raises(ValueError):
        AdverseEventFacts(1, "x", (), {MSC: "sort of"})
    with pytest.raises(ValueError):
        evaluate([TI_RULE, TI_RULE], [], [], AS_OF)
    with pytest.raises(ValueError):
        evaluate([TI_RULE], [], [], dt.datetime(2025, 2, 1, tzinfo=dt.UTC))


def test_rule_accepts_lists_and_is_hashable():
    rule = ToxicityRule("T", "TI", 3, 4, 7, 28, [MSC], [MSC])  # type: ignore[arg-type]
    assert rule.window_interventions == (MSC,) and hash(rule) == hash(rule)


def test_qualifying_runs_helper():
    runs = qualifying_runs(
        [
            ep(3, 3, D(2025, 2, 11), D(2025, 2, 14)),
            ep(1, 3, D(2025, 2, 1), D(2025, 2, 3)),
            ep(2, 4, D(2025, 2, 4), None),
        ],
        TI_RULE,
        D(2025, 2, 8),
    )
    # episode 3 starts after as_of -> ignored; 1 and 2 chain: Feb 1..8 = 8 days, ongoing
    assert len(runs) == 1
    assert runs[0].duration_days == 8 and runs[0].ongoing
    assert [e.id for e in runs[0].episodes] == [1, 2]


# ---------------------------------------------------------------------------------------------
# SAE clock
# ---------------------------------------------------------------------------------------------

UTC = dt.UTC
AWARE = dt.datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def test_sae_report_due_24h_and_overdue_after():
    d = sae_deadlines(
        AWARE, serious=True, expected=True, related=True, fatal_or_life_threatening=False
    )
    assert d.report_due == dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    assert d.expedited_due is None  # expected -> not a SUSAR
    # not reported at 10:00 the next day exactly: still "due" (deadline included)
    assert sae_status(d, None, dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC)) == "due"
    # one second later: overdue
    assert sae_status(d, None, dt.datetime(2025, 3, 4, 10, 0, 1, tzinfo=UTC)) == "overdue"
    assert sae_status(d, None, dt.datetime(2025, 3, 3, 18, 0, tzinfo=UTC)) == "due"


def test_sae_reported_on_time_exactly_at_24h_and_late():
    d = sae_deadlines(AWARE, True, False, False, False)
    now = dt.datetime(2025, 3, 10, tzinfo=UTC)
    assert sae_status(d, dt.datetime(2025, 3, 3, 15, 0, tzinfo=UTC), now) == "reported"
    assert sae_status(d, dt.datetime(2025, 3, 4, 10, 0, tzinfo=UTC), now) == "reported"
    assert sae_status(d, dt.datetime(2025, 3, 4, 10, 1, tzinfo=UTC), now) == "reported_late"


def test_sae_not_serious_has_no_clock():
    d = sae_deadlines(
        AWARE, serious=False, expected=False, related=True, fatal_or_life_threatening=False
    )
    assert d.report_due is None and d.expedited_due is None
    assert sae_status(d, None, dt.datetime(2026, 1, 1, tzinfo=UTC)) == "not_serious"
    assert expedited_status(d, None, dt.datetime(2026, 1, 1, tzinfo=UTC)) == "not_required"


def test_susar_fatal_or_life_threatening_7_days():
    d = sae_deadlines(
        AWARE, serious=True, expected=False, related=True, fatal_or_life_threatening=True
    )
    # Mar 3 10:00 + 7 days = Mar 10 10:00
    assert d.expedited_due == dt.datetime(2025, 3, 10, 10, 0, tzinfo=UTC)
    assert d.expedited_days == 7
    assert expedited_status(d, None, dt.datetime(2025, 3, 10, 10, 0, tzinfo=UTC)) == "due"
    assert expedited_status(d, None, dt.datetime(2025, 3, 10, 10, 1, tzinfo=UTC)) == "overdue"
    assert (
        expedited_status(
            d, dt.datetime(2025, 3, 9, tzinfo=UTC), dt.datetime(2025, 4, 1, tzinfo=UTC)
        )
        == "submitted"
    )


def test_susar_other_15_days_and_non_susars():
    d = sae_deadlines(
        AWARE, serious=True, expected=False, related=True, fatal_or_life_threatening=False
    )
    # Mar 3 10:00 + 15 days = Mar 18 10:00
    assert d.expedited_due == dt.datetime(2025, 3, 18, 10, 0, tzinfo=UTC)
    assert d.expedited_days == 15
    # unrelated or expected serious events: 24h report only
    assert sae_deadlines(AWARE, True, False, False, True).expedited_due is None
    assert sae_deadlines(AWARE, True, True, True, True).expedited_due is None


def test_sae_deadline_keeps_timezone_and_counts_elapsed_hours():
    cet = dt.timezone(dt.timedelta(hours=1))
    aware = dt.datetime(2025, 3, 3, 10, 0, tzinfo=cet)
    d = sae_deadlines(aware, True, True, False, False)
    assert d.report_due == dt.datetime(2025, 3, 4, 10, 0, tzinfo=cet)
    assert d.report_due.utcoffset() == dt.timedelta(hours=1)
    # across a DST change, 24 h stays 24 elapsed hours
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("tz database not available")
    before_dst = dt.datetime(2025, 3, 29, 10, 0, tzinfo=paris)  # CET (UTC+1)
    due = sae_deadlines(before_dst, True, True, False, False).report_due
    # (same-tzinfo subtraction in Python is wall-clock, so compare in UTC)
    assert due.astimezone(UTC) - before_dst.astimezone(UTC) == dt.timedelta(hours=24)
    assert (due.hour, due.utcoffset()) == (11, dt.timedelta(hours=2))  # CEST wall clock


def test_naive_datetimes_are_refused():
    naive = dt.datetime(2025, 3, 3, 10, 0)
    with pytest.raises(ValueError):
        sae_deadlines(naive, True, False, True, True)
    d = sae_deadlines(AWARE, True, False, True, True)
    with pytest.raises(ValueError):
        sae_status(d, None, naive)
    with pytest.raises(ValueError):
        sae_status(d, naive, AWARE)
    with pytest.raises(ValueError):
        expedited_status(d, naive, AWARE)
