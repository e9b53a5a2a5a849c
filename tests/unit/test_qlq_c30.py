"""EORTC QLQ-C30 scoring (Scoring Manual 3rd ed.) and time to deterioration; no Django/DB."""

from __future__ import annotations

import dataclasses
import random
from datetime import date, timedelta
from fractions import Fraction

import numpy as np
import pytest

from visits.qlq_c30 import (
    FUNCTIONAL,
    ITEM_RANGE,
    ITEMS,
    SCALES,
    SUMMARY_SCALES,
    SYMPTOM,
    UNANSWERED,
    DeteriorationResult,
    score,
    score_array,
    time_to_deterioration,
    time_to_deterioration_all,
)

approx = pytest.approx


def form(default: int | None = None, q29_30: int | None = None, **answers: int | None):
    """All 30 keys set to ``default`` (q29/q30 to ``q29_30``), then ``answers`` applied."""
    out: dict[str, int | None] = {f"q{i}": default for i in range(1, 29)}
    out["q29"] = out["q30"] = q29_30 if q29_30 is not None else default
    out.update(answers)
    return out


# Worked example: every scale has a different, hand-checked value.
WORKED = form(
    q1=1, q2=2, q3=2, q4=3, q5=4,  # PF2
    q6=2, q7=3,  # RF2
    q8=2,  # DY
    q9=3, q19=4,  # PA
    q10=2, q12=3, q18=3,  # FA
    q11=3,  # SL
    q13=4,  # AP
    q14=1, q15=2,  # NV
    q16=1,  # CO
    q17=2,  # DI
    q20=1, q25=2,  # CF
    q21=1, q22=1, q23=2, q24=4,  # EF
    q26=3, q27=4,  # SF
    q28=3,  # FI
    q29=5, q30=6,  # QL2
)
WORKED_EXPECTED = {
    # functional: (1 - (RS - 1) / 3) * 100
    "PF2": 160 / 3,  # RS = (1+2+2+3+4)/5 = 2.4 -> (1 - 1.4/3) * 100 = 53.33
    "RF2": 50.0,  # RS = (2+3)/2 = 2.5 -> (1 - 1.5/3) * 100 = 50
    "EF": 200 / 3,  # RS = (1+1+2+4)/4 = 2 -> (1 - 1/3) * 100 = 66.67
    "CF": 250 / 3,  # RS = (1+2)/2 = 1.5 -> (1 - 0.5/3) * 100 = 83.33
    "SF": 50 / 3,  # RS = (3+4)/2 = 3.5 -> (1 - 2.5/3) * 100 = 16.67
    # symptom: ((RS - 1) / 3) * 100
    "FA": 500 / 9,  # RS = (2+3+3)/3 = 8/3 -> (5/3)/3 * 100 = 55.56
    "NV": 50 / 3,  # RS = 1.5 -> 0.5/3 * 100 = 16.67
    "PA": 250 / 3,  # RS = 3.5 -> 2.5/3 * 100 = 83.33
    "DY": 100 / 3,  # 2 -> 1/3 * 100
    "SL": 200 / 3,  # 3 -> 2/3 * 100
    "AP": 100.0,  # 4 -> 3/3 * 100
    "CO": 0.0,  # 1 -> 0
    "DI": 100 / 3,  # 2
    "FI": 200 / 3,  # 3
    # global health status, range 6: RS = (5+6)/2 = 5.5 -> 4.5/6 * 100 = 75
    "QL2": 75.0,
    # SUM = (PF2+RF2+EF+CF+SF + 8 reversed symptoms) / 13
    #   functional: 160/3 + 50 + 200/3 + 250/3 + 50/3 = 810/3 = 270
    #   100-FA = 400/9; 100-NV = 250/3; 100-PA = 50/3; 100-DY = 200/3; 100-SL = 100/3;
    #   100-AP = 0; 100-CO = 100; 100-DI = 200/3  -> 400/9 + 800/3 + 100 = 3700/9
    #   (270 + 3700/9) / 13 = (2430/9 + 3700/9) / 13 = 6130/117 = 52.393...
    "SUM": 6130 / 117,
}


# --------------------------------------------------------------------------- constants


def test_constants_cover_the_questionnaire():
    assert SCALES == (
        "QL2", "PF2", "RF2", "EF", "CF", "SF",
        "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI", "FI", "SUM",
    )
    items = sorted(i for its in ITEMS.values() for i in its)
    assert items == list(range(1, 31))  # every item used exactly once
    assert set(FUNCTIONAL) | set(SYMPTOM) | {"QL2"} == set(ITEMS)
    assert ITEM_RANGE["QL2"] == 6
    assert all(ITEM_RANGE[k] == 3 for k in ITEMS if k != "QL2")
    assert len(SUMMARY_SCALES) == 13 and "QL2" not in SUMMARY_SCALES
    assert "FI" not in SUMMARY_SCALES


# --------------------------------------------------------------------------- scoring


@pytest.mark.parametrize("key", SCALES)
def test_worked_example_each_scale(key):
    assert score(WORKED)[key] == approx(WORKED_EXPECTED[key], abs=1e-12)


def test_result_has_exactly_the_scale_keys():
    assert list(score(WORKED)) == list(SCALES)


def test_all_ones_extreme():
    s = score(form(1))
    for k in FUNCTIONAL:
        assert s[k] == 100.0  # RS = 1 -> (1 - 0) * 100
    for k in SYMPTOM:
        assert s[k] == 0.0  # RS = 1 -> 0
    assert s["QL2"] == 0.0  # q29 = q30 = 1 -> (0 / 6) * 100
    assert s["SUM"] == 100.0  # (5 * 100 + 8 * (100 - 0)) / 13


def test_all_fours_extreme():
    s = score(form(4))
    for k in FUNCTIONAL:
        assert s[k] == 0.0  # RS = 4 -> (1 - 3/3) * 100
    for k in SYMPTOM:
        assert s[k] == 100.0  # RS = 4 -> 3/3 * 100
    assert s["QL2"] == 50.0  # q29 = q30 = 4 -> (3 / 6) * 100: range is 6, not 3
    assert s["SUM"] == 0.0  # (5 * 0 + 8 * (100 - 100)) / 13


@pytest.mark.parametrize(
    ("q29", "q30", "expected"),
    [
        (7, 7, 100.0),  # (6/6) * 100
        (1, 7, 50.0),  # RS 4 -> 3/6 * 100
        (6, 5, 75.0),  # RS 5.5 -> 4.5/6 * 100
        (2, 3, 25.0),  # RS 2.5 -> 1.5/6 * 100
        (5, None, 400 / 6),  # 1 of 2 answered: RS 5 -> 4/6 * 100 = 66.67
    ],
)
def test_global_health_range_six(q29, q30, expected):
    assert score(form(1, q29=q29, q30=q30))["QL2"] == approx(expected, abs=1e-12)


def test_missing_keys_are_none():
    s = score({"q29": 6, "q30": 6, "q8": 3})
    assert s["QL2"] == approx(250 / 3)  # RS 6 -> 5/6 * 100
    assert s["DY"] == approx(200 / 3)  # 3 -> 2/3 * 100
    assert all(s[k] is None for k in SCALES if k not in ("QL2", "DY"))
    assert score({}) == dict.fromkeys(SCALES)


# --------------------------------------------------------------------------- half rule


def test_ef_two_of_four_is_scored():
    s = score(form(None, q21=1, q22=3))
    assert s["EF"] == approx(200 / 3)  # RS (1+3)/2 = 2 -> (1 - 1/3) * 100


def test_pf2_two_of_five_is_not_scored():
    assert score(form(None, q1=1, q2=2))["PF2"] is None  # 2 < 5/2


def test_pf2_three_of_five_is_scored():
    s = score(form(None, q1=1, q2=2, q3=3))
    assert s["PF2"] == approx(200 / 3)  # RS 2 -> (1 - 1/3) * 100


def test_fa_one_of_three_is_not_scored():
    assert score(form(None, q10=4))["FA"] is None  # 1 < 3/2


def test_fa_two_of_three_is_scored():
    s = score(form(None, q10=2, q12=4))
    assert s["FA"] == approx(200 / 3)  # RS 3 -> 2/3 * 100


def test_rf2_one_of_two_is_scored():
    s = score(form(None, q6=3))
    assert s["RF2"] == approx(100 / 3)  # RS 3 -> (1 - 2/3) * 100


def test_single_item_scales_need_their_item():
    s = score(form(2, q8=None, q28=None))
    assert s["DY"] is None and s["FI"] is None
    assert s["SL"] == approx(100 / 3)


# --------------------------------------------------------------------------- summary score


def test_summary_none_when_one_of_the_13_scales_is_missing():
    assert score({**WORKED, "q8": None})["SUM"] is None  # DY missing
    assert score({**WORKED, "q14": None, "q15": None})["SUM"] is None  # NV missing
    assert score({**WORKED, "q1": None, "q2": None, "q3": None})["SUM"] is None  # PF2 2/5


def test_summary_ignores_ql2_and_fi():
    s = score({**WORKED, "q28": None, "q29": None, "q30": None})
    assert s["QL2"] is None and s["FI"] is None
    assert s["SUM"] == approx(6130 / 117)  # unchanged: QL2 and FI are not in SUM


def test_summary_uses_half_rule_scale_scores():
    # EF from 2 of 4 items: q21=1, q22=1 -> RS 1 -> EF 100 (was 200/3), so
    # SUM = (6130/9 - 200/3 + 100) / 13 = (6130/9 + 300/9) / 13 = 6430/117 = 54.957...
    s = score({**WORKED, "q23": None, "q24": None})
    assert s["EF"] == 100.0
    assert s["SUM"] == approx(6430 / 117)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("q1", 0),
        ("q28", 5),
        ("q29", 8),
        ("q30", 0),
        ("q12", 2.5),
        ("q3", 3.0),
        ("q7", "3"),
        ("q5", True),
        ("q29", False),
        ("q10", -1),
    ],
)
def test_invalid_answer_names_the_item(key, value):
    with pytest.raises(ValueError, match=rf"^{key}:"):
        score(form(1, **{key: value}))


def test_invalid_answer_in_partial_form_names_the_item():
    with pytest.raises(ValueError, match=r"^q29:"):
        score({"q1": 2, "q29": 8})


def test_unknown_key_is_named():
    with pytest.raises(ValueError, match=r"q31"):
        score(form(1, q31=1))
    with pytest.raises(ValueError, match=r"Q1"):
        score({"Q1": 1})


def test_seven_point_answers_only_for_q29_q30():
    with pytest.raises(ValueError, match=r"^q28:"):
        score(form(1, q28=7))
    assert score(form(1, q29=7, q30=7))["QL2"] == 100.0


# --------------------------------------------------------------------------- properties


def _reference(responses):
    """Straight from the manual, in exact arithmetic."""
    out = {}
    for key, items in ITEMS.items():
        vals = [responses.get(f"q{i}") for i in items]
        vals = [v for v in vals if v is not None]
        if 2 * len(vals) < len(items):
            out[key] = None
            continue
        rs = Fraction(sum(vals), len(vals))
        rng = ITEM_RANGE[key]
        out[key] = (1 - (rs - 1) / rng) * 100 if key in FUNCTIONAL else (rs - 1) / rng * 100
    parts = [out[k] if k in FUNCTIONAL else 100 - out[k] for k in SUMMARY_SCALES
             if out[k] is not None]
    out["SUM"] = sum(parts) / 13 if len(parts) == 13 else None
    return out


def test_random_forms_match_exact_reference_and_stay_in_range():
    rng = random.Random(2001)
    n_sum = 0
    for _ in range(3000):
        p_missing = rng.choice((0.0, 0.05, 0.3, 0.7))
        responses = {}
        for i in range(1, 31):
            if rng.random() < p_missing:
                if rng.random() < 0.5:
                    responses[f"q{i}"] = None  # else: key absent
                continue
            responses[f"q{i}"] = rng.randint(1, 7 if i >= 29 else 4)
        got = score(responses)
        ref = _reference(responses)
        for key in SCALES:
            if ref[key] is None:
                assert got[key] is None, key
                continue
            assert 0.0 <= got[key] <= 100.0
            if key == "SUM":
                n_sum += 1
                assert got[key] == approx(float(ref[key]), rel=1e-14, abs=1e-12)
            else:
                # each scale is the float nearest the exact value (int / int division)
                assert got[key] == float(ref[key]), key
    assert n_sum > 300  # the summary branch was exercised


# --------------------------------------------------------------------------- deterioration

START = date(2024, 1, 1)  # enrollment
D = [START + timedelta(days=d) for d in (3, 31, 59, 87, 115, 143)]

# QL2 from real answers: (5,5) -> RS 5 -> 4/6*100 = 66.67; (4,4) -> 50.0 (-16.67);
# (4,5) -> RS 4.5 -> 3.5/6*100 = 58.33 (-8.33, not a deterioration)
QL_66 = score(form(1, q29_30=5))["QL2"]
QL_50 = score(form(1, q29_30=4))["QL2"]
QL_58 = score(form(1, q29=4, q30=5))["QL2"]


def test_ql2_values_from_answers():
    ql66, ql50, ql58 = QL_66, QL_50, QL_58
    assert ql66 == approx(200 / 3)
    assert ql50 == 50.0
    assert ql58 == approx(175 / 3)


def test_single_dip_that_recovers_is_no_event():
    r = time_to_deterioration("QL2", START, [(D[0], QL_66), (D[1], QL_50), (D[2], QL_66),
                                             (D[3], QL_58)])
    assert r == DeteriorationResult(False, None, None, D[3], (D[3] - START).days)
    assert r.days == 87


def test_deterioration_at_last_assessment_only_is_censored():
    r = time_to_deterioration("QL2", START, [(D[0], QL_66), (D[1], QL_58), (D[2], QL_50)])
    assert not r.event and r.event_date is None
    assert r.censor_date == D[2] and r.days == 59


def test_missing_between_two_deteriorations_keeps_the_pair():
    r = time_to_deterioration(
        "QL2", START, [(D[0], QL_66), (D[1], QL_58), (D[2], QL_50), (D[3], None), (D[4], QL_50)]
    )
    assert r.event
    assert (r.event_date, r.confirm_date, r.censor_date) == (D[2], D[4], None)
    assert r.days == 59  # from enrollment (2024-01-01), not from baseline (2024-01-04)


def test_censored_at_last_scored_assessment():
    r = time_to_deterioration("QL2", START, [(D[0], QL_66), (D[1], QL_58), (D[2], None)])
    assert (r.event, r.censor_date, r.days) == (False, D[1], 31)


def test_missing_baseline_is_censored_at_start_with_zero_days():
    r = time_to_deterioration("QL2", START, [(D[0], None), (D[1], QL_50), (D[2], QL_50)])
    assert r == DeteriorationResult(False, None, None, START, 0)
    assert time_to_deterioration("PF2", START, []) == DeteriorationResult(
        False, None, None, START, 0
    )


def test_only_baseline_is_censored_at_baseline():
    r = time_to_deterioration("QL2", START, [(D[0], QL_66), (D[1], None)])
    assert (r.event, r.censor_date, r.days) == (False, D[0], 3)


def test_assessments_are_sorted_by_date():
    r = time_to_deterioration("QL2", START, [(D[2], QL_50), (D[1], QL_50), (D[0], QL_66)])
    assert r.event and r.event_date == D[1] and r.confirm_date == D[2] and r.days == 31


def test_symptom_scales_deteriorate_upward():
    fa0 = score(form(1))["FA"]  # all 1 -> 0
    fa33 = score(form(1, q10=2, q12=2, q18=2))["FA"]  # RS 2 -> 1/3*100 = 33.33
    assert fa0 == 0.0
    assert fa33 == approx(100 / 3)
    up = time_to_deterioration("FA", START, [(D[0], fa0), (D[1], fa33), (D[2], fa33)])
    assert up.event and up.event_date == D[1] and up.days == 31
    # a decrease of a symptom is an improvement, never a deterioration
    down = time_to_deterioration("FA", START, [(D[0], fa33), (D[1], fa0), (D[2], fa0)])
    assert not down.event and down.censor_date == D[2]
    # and an increase of a functional scale is not a deterioration either
    pf = time_to_deterioration("PF2", START, [(D[0], 0.0), (D[1], 100.0), (D[2], 100.0)])
    assert not pf.event


def test_summary_score_deteriorates_downward():
    r = time_to_deterioration("SUM", START, [(D[0], 80.0), (D[1], 70.0), (D[2], 69.0)])
    assert r.event and r.event_date == D[1]


def test_exactly_ten_points_from_real_answers_counts():
    # PF2 5 of 5 answered, sum 11 (e.g. 1,2,2,3,3): RS 2.2 -> (1 - 1.2/3) * 100 = 60
    # PF2 4 of 5 answered, sum 10 (2,2,3,3, q5 missing): RS 2.5 -> (1 - 1.5/3) * 100 = 50
    base = score(form(1, q1=1, q2=2, q3=2, q4=3, q5=3))["PF2"]
    later = score(form(1, q1=2, q2=2, q3=3, q4=3, q5=None))["PF2"]
    assert base == approx(60.0)
    assert later == approx(50.0)
    r = time_to_deterioration("PF2", START, [(D[0], base), (D[1], later), (D[2], later)])
    assert r.event and r.event_date == D[1]


def test_exactly_ten_points_with_float_noise_counts():
    # 100 * (0.1 + 0.2) is 30.000000000000004 in floats; 40 - that = 9.999999999999996,
    # a difference that is exactly 10 in real arithmetic.
    base = 100 * (0.1 + 0.2)
    assert 40.0 - base < 10
    r = time_to_deterioration("PA", START, [(D[0], base), (D[1], 40.0), (D[2], 40.0)])
    assert r.event and r.days == 31
    # functional mirror image: 100 - 30.000000000000004 = 69.99999999999999 vs 60
    r = time_to_deterioration("EF", START, [(D[0], 100 - base), (D[1], 60.0), (D[2], 60.0)])
    assert r.event


def test_just_under_threshold_is_not_deterioration():
    r = time_to_deterioration("PA", START, [(D[0], 30.0), (D[1], 39.99), (D[2], 39.99)])
    assert not r.event
    r = time_to_deterioration(
        "PA", START, [(D[0], 30.0), (D[1], 39.99), (D[2], 39.99)], threshold=5
    )
    assert r.event


def test_result_is_frozen_and_scale_is_checked():
    r = time_to_deterioration("QL2", START, [(D[0], QL_66)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.event = True  # type: ignore[misc]
    with pytest.raises(ValueError, match="XX"):
        time_to_deterioration("XX", START, [(D[0], 1.0)])


def test_all_scales_at_once_equals_one_scale_at_a_time():
    """The bulk form (``time_to_deterioration_all``, used by bulk rescoring) gives, for every
    scale, exactly the fields of ``time_to_deterioration``: random histories with missing
    scores, a missing baseline, same-day assessments, exact-threshold steps and none at all."""
    rng = random.Random(19)
    levels = [None, 0.0, 10.0, 100 * (0.1 + 0.2), 40.0, 50.0, 60.0, 100.0]
    for n in [0, 1, 2, 3, *range(4, 12)] * 40:
        dates = sorted(START + timedelta(days=rng.randrange(0, 60, 3)) for _ in range(n))
        rows = [tuple(rng.choice(levels) for _ in SCALES) for _ in range(n)]
        threshold = rng.choice([10, 10, 5, 0])
        bulk = time_to_deterioration_all(START, dates, rows, threshold)
        assert len(bulk) == len(SCALES)
        for i, scale in enumerate(SCALES):
            one = time_to_deterioration(
                scale, START, [(d, row[i]) for d, row in zip(dates, rows, strict=True)],
                threshold)
            assert DeteriorationResult(*bulk[i]) == one, (scale, dates, rows)


def _as_array(forms: list[dict]) -> np.ndarray:
    return np.array([[UNANSWERED if f.get(f"q{i}") is None else f[f"q{i}"]
                      for i in range(1, 31)] for f in forms])


def test_score_array_equals_score_form_by_form():
    """The bulk form gives every value of ``score`` (the same float, not an approximation),
    NaN where ``score`` gives None: random forms at several rates of missing answers, the
    worked example and the extremes."""
    rng = random.Random(2026)
    forms = [WORKED, form(1), form(4, q29_30=7), form(None)]
    for _ in range(5000):
        p_missing = rng.choice((0.0, 0.05, 0.3, 0.5, 0.7))
        forms.append({f"q{i}": None if rng.random() < p_missing
                      else rng.randint(1, 7 if i >= 29 else 4) for i in range(1, 31)})
    got = score_array(_as_array(forms))
    assert got.shape == (len(forms), len(SCALES))
    n_sum = 0
    for f, row in zip(forms, got.tolist(), strict=True):
        expected = score(f)
        assert [None if v != v else v for v in row] == [expected[k] for k in SCALES]
        n_sum += expected["SUM"] is not None
    assert 300 < n_sum < len(forms)  # the summary and its missing branch were exercised


@pytest.mark.parametrize(("item", "value", "message"), [
    (0, 0, "q1: answer 0 out of range 1-4"),
    (27, 5, "q28: answer 5 out of range 1-4"),
    (29, 8, "q30: answer 8 out of range 1-7"),
])
def test_score_array_refuses_an_answer_out_of_range_as_score_does(item, value, message):
    answers = np.ones((3, 30), dtype=np.int64)
    answers[1, item] = value
    with pytest.raises(ValueError, match=message):
        score_array(answers)
    with pytest.raises(ValueError, match=message):
        score({f"q{i}": int(v) for i, v in enumerate(answers[1], 1)})


def test_score_array_of_no_forms_is_empty():
    assert score_array(np.empty((0, 30), dtype=np.int64)).shape == (0, len(SCALES))
