"""EORTC QLQ-C30 (version 3.0) scoring and time-to-deterioration, pure (no Django, no
database): Python per form, numpy for many forms at once (``score_array``, same rules).

Scoring follows the EORTC QLQ-C30 Scoring Manual, 3rd edition (Fayers et al., 2001):

* "Scoring the QLQ-C30 version 3.0", table of scales: item composition and item range
  (``ITEMS``, ``ITEM_RANGE``; range = max - min response, 3 for items 1-28, 6 for 29-30).
* "Technical summary": raw score RS = mean of the answered items;
  functional scales  S = (1 - (RS - 1) / range) * 100,
  symptom scales / global health status  S = ((RS - 1) / range) * 100.
* "Missing data", "Missing items": if at least half of the items of a scale have been
  answered, score from the answered items (equivalent to imputing their mean); otherwise
  the scale is missing. Single-item scales are missing when their item is.

The QLQ-C30 summary score (``SUM``) follows Giesinger et al., J Clin Epidemiol 2016;69:79-88
and the EORTC "Scoring of the QLQ-C30 Summary Score" note: the mean of PF2, RF2, SF, EF, CF
and (100 - score) of FA, PA, NV, DY, SL, AP, CO, DI (QL2 and FI excluded); it is calculated
only if all 13 of those scale scores are available (each scale itself scored under the 50%
rule above), otherwise it is missing.

Rounding: scores are unrounded floats, each the float nearest its exact rational value (one
int / int division per scale); SUM is a float mean of those. Round only for display.
``time_to_deterioration`` compares differences with a 1e-9 tolerance, so a difference that
is exactly 10 points in real arithmetic but 9.999999999999998 in floating point counts.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from operator import itemgetter
from typing import Any

import numpy as np

__all__ = [
    "FUNCTIONAL",
    "GLOBAL",
    "ITEMS",
    "ITEM_KEYS",
    "ITEM_MAX",
    "ITEM_RANGE",
    "MIN_ITEMS",
    "SCALES",
    "SCALE_NAMES",
    "SUMMARY",
    "SUMMARY_SCALES",
    "SYMPTOM",
    "UNANSWERED",
    "DeteriorationResult",
    "score",
    "score_array",
    "time_to_deterioration",
    "time_to_deterioration_all",
]

#: Output keys, in the manual's order, followed by the summary score.
SCALES: tuple[str, ...] = (
    "QL2", "PF2", "RF2", "EF", "CF", "SF",
    "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI", "FI",
    "SUM",
)
SUMMARY = "SUM"
#: Global health status / QoL (higher = better; transformed like a symptom scale).
GLOBAL: tuple[str, ...] = ("QL2",)
#: Functional scales (higher = better).
FUNCTIONAL: tuple[str, ...] = ("PF2", "RF2", "EF", "CF", "SF")
#: Symptom scales and single items (higher = worse).
SYMPTOM: tuple[str, ...] = ("FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI", "FI")
#: Scales entering the summary score (Giesinger 2016): all but QL2 and FI.
SUMMARY_SCALES: tuple[str, ...] = (
    "PF2", "RF2", "EF", "CF", "SF", "FA", "NV", "PA", "DY", "SL", "AP", "CO", "DI",
)

#: Item numbers per scale (Scoring Manual, QLQ-C30 version 3.0 table).
ITEMS: dict[str, tuple[int, ...]] = {
    "QL2": (29, 30),
    "PF2": (1, 2, 3, 4, 5),
    "RF2": (6, 7),
    "EF": (21, 22, 23, 24),
    "CF": (20, 25),
    "SF": (26, 27),
    "FA": (10, 12, 18),
    "NV": (14, 15),
    "PA": (9, 19),
    "DY": (8,),
    "SL": (11,),
    "AP": (13,),
    "CO": (16,),
    "DI": (17,),
    "FI": (28,),
}
#: Item range (max - min response) per scale.
ITEM_RANGE: dict[str, int] = {k: (6 if k == "QL2" else 3) for k in ITEMS}
#: Minimum number of answered items for a scale to be scored (at least half).
MIN_ITEMS: dict[str, int] = {k: (len(v) + 1) // 2 for k, v in ITEMS.items()}
#: Response keys "q1".."q30" and each item's maximum answer (minimum is 1).
ITEM_KEYS: tuple[str, ...] = tuple(f"q{i}" for i in range(1, 31))
ITEM_MAX: dict[str, int] = {k: (7 if i >= 29 else 4) for i, k in enumerate(ITEM_KEYS, 1)}

SCALE_NAMES: dict[str, str] = {
    "QL2": "Global health status / QoL",
    "PF2": "Physical functioning",
    "RF2": "Role functioning",
    "EF": "Emotional functioning",
    "CF": "Cognitive functioning",
    "SF": "Social functioning",
    "FA": "Fatigue",
    "NV": "Nausea and vomiting",
    "PA": "Pain",
    "DY": "Dyspnoea",
    "SL": "Insomnia",
    "AP": "Appetite loss",
    "CO": "Constipation",
    "DI": "Diarrhoea",
    "FI": "Financial difficulties",
    "SUM": "QLQ-C30 summary score",
}

_KEYSET = frozenset(ITEM_KEYS)
_GET_ALL = itemgetter(*ITEM_KEYS)
_FUNCTIONAL = frozenset(FUNCTIONAL)
_SYMPTOM = frozenset(SYMPTOM)
# Precomputed per-scale plan: (key, picker, n items, min answered, range, functional?).
# The picker is a 0-based index for single-item scales, else an operator.itemgetter
# returning the scale's answers as a tuple. With n answered items summing to t
# (RS = t / n), the manual's formulas are rewritten over integers:
#   symptom / QL2:  ((RS - 1) / range) * 100     = 100 * (t - n) / (n * range)
#   functional:     (1 - (RS - 1) / range) * 100 = 100 * (n * (range + 1) - t) / (n * range)
# so each score is one correctly rounded int / int division (the float nearest the exact
# value; 0 and 100 are exact).
_PLAN: tuple[tuple[str, Any, int, int, int, bool], ...] = tuple(
    (
        k,
        items[0] - 1 if len(items) == 1 else itemgetter(*(i - 1 for i in items)),
        len(items),
        MIN_ITEMS[k],
        ITEM_RANGE[k],
        k in _FUNCTIONAL,
    )
    for k, items in ITEMS.items()
)
_OK_TYPES = frozenset((int, type(None)))
_OK_1_4 = frozenset((None, 1, 2, 3, 4))
_OK_1_7 = frozenset((None, 1, 2, 3, 4, 5, 6, 7))
_SUM_REVERSED = frozenset(s for s in SUMMARY_SCALES if s in _SYMPTOM)


def _bad_answer(key: str, value: object) -> ValueError:
    hi = ITEM_MAX[key]
    if type(value) is bool or not isinstance(value, Integral):
        return ValueError(f"{key}: answer must be an integer 1-{hi} or None, got {value!r}")
    return ValueError(f"{key}: answer {value!r} out of range 1-{hi}")


def _validate_slow(answers: list[object]) -> list[int | None]:
    """Per-item check (error path, and numpy-style integers converted to int)."""
    clean: list[int | None] = []
    for key, v in zip(ITEM_KEYS, answers, strict=True):
        if v is not None:
            if type(v) is bool or not isinstance(v, Integral):
                raise _bad_answer(key, v)
            v = int(v)
            if not 1 <= v <= ITEM_MAX[key]:
                raise _bad_answer(key, v)
        clean.append(v)
    return clean


def score(responses: Mapping[str, int | None]) -> dict[str, float | None]:
    """Score one QLQ-C30 v3.0 form (Scoring Manual 3rd ed.; summary per Giesinger 2016).

    ``responses`` maps "q1".."q30" to an int (q1-q28: 1-4, q29-q30: 1-7) or None; absent
    keys count as None. Returns ``{key: float 0-100 or None}`` for every key in ``SCALES``,
    unrounded. Raises ``ValueError`` naming the item for an unknown key, a non-integer
    answer (bool, float and str included) or an out-of-range answer.
    """
    if not _KEYSET.issuperset(responses):
        unknown = sorted(str(k) for k in responses if k not in _KEYSET)
        raise ValueError(f"unknown QLQ-C30 item key(s): {', '.join(unknown)}")
    if len(responses) == 30:  # all keys present (the common case): one C-level lookup
        answers: Any = _GET_ALL(responses)
    else:
        get = responses.get
        answers = [get(k) for k in ITEM_KEYS]
    # Fast path, all in C: every answer is exactly int or None and within its item range.
    # (Type first: True == 1 and 1.0 == 1 would otherwise pass the set test.)
    if not (
        _OK_TYPES.issuperset(map(type, answers))
        and _OK_1_4.issuperset(answers[:28])
        and _OK_1_7.issuperset(answers[28:])
    ):
        answers = _validate_slow(answers)

    out: dict[str, float | None] = {}
    for key, pick, n_items, need, rng, functional in _PLAN:
        if n_items == 1:
            t = answers[pick]
            if t is None:
                out[key] = None
                continue
            n = 1
        else:
            vals = pick(answers)
            if None in vals:
                vals = [v for v in vals if v is not None]
                n = len(vals)
                if n < need:  # fewer than half of the items answered
                    out[key] = None
                    continue
            else:
                n = n_items
            t = sum(vals)
        if functional:
            out[key] = 100 * (n * (rng + 1) - t) / (n * rng)
        else:
            out[key] = 100 * (t - n) / (n * rng)

    acc = 0.0
    for key in SUMMARY_SCALES:
        s = out[key]
        if s is None:
            out[SUMMARY] = None
            break
        acc += (100.0 - s) if key in _SUM_REVERSED else s
    else:
        out[SUMMARY] = acc / 13
    return out


#: The answer that stands for "no answer" (None) in :func:`score_array`'s integer array.
UNANSWERED = -1
_ITEM_MAX_ARRAY = np.array([ITEM_MAX[k] for k in ITEM_KEYS])
_SCALE_INDEX = {key: SCALES.index(key) for key in SCALES}


def score_array(answers: np.ndarray) -> np.ndarray:
    """:func:`score` of many forms at once (bulk rescoring): the same rules, one numpy pass
    per scale over all the forms instead of one Python pass per form.

    ``answers`` is an integer array of shape (forms, 30), columns q1..q30, ``UNANSWERED``
    (-1) where an item has no answer. Returns a float64 array of shape (forms, 16), columns
    in ``SCALES`` order, NaN where :func:`score` gives None, every other value equal to
    :func:`score`'s: the same Scoring Manual formulas over integers (answered items n of a
    scale summing to t; at least half of its items answered, else missing), each scale one
    division of two integers exactly held in float64 (IEEE division is correctly rounded, as
    Python's int / int), and SUM accumulated in ``SUMMARY_SCALES`` order then divided by 13
    (the same float operations, in the same order; missing if any of the 13 is). Raises
    ``ValueError`` naming the first (form-major) answer outside its item's range, as
    :func:`score` does.
    """
    answers = np.asarray(answers)
    if answers.ndim != 2 or answers.shape[1] != len(ITEM_KEYS):
        raise ValueError(f"answers must be of shape (forms, 30), got {answers.shape}")
    answered = answers != UNANSWERED
    bad = answered & ((answers < 1) | (answers > _ITEM_MAX_ARRAY))
    if bad.any():
        form, item = np.argwhere(bad)[0]
        raise _bad_answer(ITEM_KEYS[item], int(answers[form, item]))
    values = np.where(answered, answers, 0).astype(np.int64)
    out = np.empty((len(answers), len(SCALES)))
    for key, items in ITEMS.items():
        columns = [i - 1 for i in items]
        n = answered[:, columns].sum(axis=1)
        t = values[:, columns].sum(axis=1)
        rng = ITEM_RANGE[key]
        numerator = n * (rng + 1) - t if key in _FUNCTIONAL else t - n
        with np.errstate(invalid="ignore", divide="ignore"):  # n = 0: NaN, replaced below
            scores = (100 * numerator).astype(np.float64) / (n * rng).astype(np.float64)
        scores[n < MIN_ITEMS[key]] = np.nan  # fewer than half of the items answered
        out[:, _SCALE_INDEX[key]] = scores
    acc = np.zeros(len(answers))
    for key in SUMMARY_SCALES:
        s = out[:, _SCALE_INDEX[key]]
        acc = acc + ((100.0 - s) if key in _SUM_REVERSED else s)
    out[:, _SCALE_INDEX[SUMMARY]] = acc / 13
    return out


@dataclass(frozen=True, slots=True)
class DeteriorationResult:
    """Outcome of :func:`time_to_deterioration`.

    ``event``: confirmed deterioration; ``event_date``: first assessment of the confirmed pair
    (None if censored); ``confirm_date``: the confirming assessment (None if censored);
    ``censor_date``: date of censoring (None if event); ``days``: days from ``start_date``
    to ``event_date`` or ``censor_date``.
    """

    event: bool
    event_date: _dt.date | None
    confirm_date: _dt.date | None
    censor_date: _dt.date | None
    days: int


_TOL = 1e-9


def time_to_deterioration(
    scale: str,
    start_date: _dt.date,
    assessments: Iterable[tuple[_dt.date, float | None]],
    threshold: float = 10,
) -> DeteriorationResult:
    """Time to confirmed (maintained) deterioration of one QLQ-C30 scale.

    ``assessments`` are ``(date, score or None)``; they are sorted by date and the earliest
    is the baseline. An assessment is deteriorated when it is worse than baseline by at least
    ``threshold`` points (QL2, functional scales and SUM: a decrease; symptom scales: an
    increase), compared with a 1e-9 tolerance so float noise on an exact difference counts.
    Deterioration is confirmed when the next assessment with a score (missing ones skipped)
    is also deteriorated versus baseline; the event date is the first of that pair and
    ``days`` counts from ``start_date``. Otherwise the patient is censored at the last
    assessment with a score; with no baseline score, censored at ``start_date`` (0 days).
    """
    if scale not in _WORSENING:
        raise ValueError(f"unknown QLQ-C30 scale: {scale!r}")
    ordered = sorted(assessments, key=_DATE)
    result = _deterioration(_WORSENING[scale], start_date, [d for d, _ in ordered],
                            [s for _, s in ordered], threshold - _TOL)
    return DeteriorationResult(*result)


def time_to_deterioration_all(
    start_date: _dt.date,
    dates: Sequence[_dt.date],
    scores: Sequence[Sequence[float | None]],
    threshold: float = 10,
) -> list[tuple[bool, _dt.date | None, _dt.date | None, _dt.date | None, int]]:
    """:func:`time_to_deterioration` of every scale at once, for bulk rescoring.

    ``dates`` are the assessments' dates, already in ascending order (ties kept in the order
    given, as the stable sort of :func:`time_to_deterioration` keeps them); ``scores[i]`` are
    assessment i's scores in ``SCALES`` order. Returns, in ``SCALES`` order, the fields of
    each scale's :class:`DeteriorationResult` as a tuple (same rule, same code).
    """
    limit = threshold - _TOL
    columns = list(zip(*scores, strict=True)) if scores else [()] * len(SCALES)
    return [_deterioration(sign, start_date, dates, column, limit)
            for sign, column in zip(_SIGNS, columns, strict=True)]


_DATE = itemgetter(0)
# Direction of worsening: +1 for symptom scales (an increase), -1 for QL2, the functional
# scales and the summary score (a decrease).
_WORSENING: dict[str, float] = {s: (1.0 if s in _SYMPTOM else -1.0) for s in SCALES}
_SIGNS: tuple[float, ...] = tuple(_WORSENING[s] for s in SCALES)


def _deterioration(
    sign: float, start_date: _dt.date, dates: Sequence[_dt.date],
    scores: Sequence[float | None], limit: float,
) -> tuple[bool, _dt.date | None, _dt.date | None, _dt.date | None, int]:
    """The rule of :func:`time_to_deterioration` over date-ordered assessments (one pass)."""
    if not scores or scores[0] is None:
        return (False, None, None, start_date, 0)
    baseline = scores[0]
    last = dates[0]
    pending = None  # the last scored assessment, when it is deteriorated
    for i in range(1, len(scores)):
        s = scores[i]
        if s is None:
            continue
        if sign * (s - baseline) >= limit:
            if pending is not None:
                return (True, pending, dates[i], None, (pending - start_date).days)
            pending = dates[i]
        else:
            pending = None
        last = dates[i]
    return (False, None, None, last, (last - start_date).days)
