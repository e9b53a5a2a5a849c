"""Generic evaluation of protocol toxicity rules (DLT / TI) and the SAE reporting clock.

Pure Python (stdlib only): no Django, no database. The rules are *data* that come from the
protocol file of a trial (``ToxicityRule``); nothing in this module is specific to one trial.

Seed examples of rules this module must express
------------------------------------------------
* Seed 000 (MSC-IFNα), Arm 1: "All treatment-related adverse events (TRAE) will be
  recorded for at least 28 days after cell infusion. Subjects with any grade 3-4 TRAE that lasts
  for 7 days or more within the 28 days after infusion will be determined as treatment
  intolerance (TI)."  ->  ``ToxicityRule(code="TI", kind="TI", min_grade=3, max_grade=4,
  min_duration_days=7, window_days=28, window_interventions=("MSC-IFNα",),
  attribution_interventions=("MSC-IFNα",))``.
* MSC-L colorectal (seed 001): "DLT (defined as MSC-L related adverse event of grade 3 or
  higher)"  ->  ``ToxicityRule(code="DLT", kind="DLT", min_grade=3, max_grade=None,
  min_duration_days=None, window_days=<from protocol, e.g. 21 or 28>, ...)``.

Conventions (documented decisions)
----------------------------------
Grade-qualifying run
    An episode *qualifies* when ``min_grade <= grade <= max_grade`` (``max_grade=None`` means no
    upper bound).  A *run* is a maximal chain of qualifying episodes in which each episode starts
    on or before the day after the previous one ended (``next.start <= prev_end + 1 day``).
    Any calendar day not covered by a qualifying episode -- a gap in the record, or an
    intervening episode of a non-qualifying grade (e.g. 3 -> 2 -> 3) -- breaks the run.  With
    grades 2 -> 3 -> 4 and a 3-4 rule, the grade-3 and grade-4 episodes form one run.
Duration
    ``duration_days = (run_end - run_start).days + 1`` -- counted *inclusively*, the usual reading
    of CTCAE/protocol wording "lasting >= 7 days": grade 3 from day 1 through day 7 is 7 days.
    An ongoing episode (``end=None``) is counted up to and including ``as_of``.  The evaluation
    is "as known on ``as_of``": episodes starting after ``as_of`` are ignored and end dates after
    ``as_of`` are clipped to ``as_of``.  An ongoing run that has not yet reached
    ``min_duration_days`` is not flagged (yet); re-evaluating later may flag it.
Window
    The run's onset (``run_start``, the first day at a qualifying grade) must fall within
    ``window_days`` after the *most recent* administration of a window intervention on or before
    the onset: ``0 <= (run_start - administration.date).days <= window_days``.  Day 0 is the
    infusion day.  For the seed-000 wording "within the 28 days after infusion", onset 28 days
    after the infusion is inside the window and onset 29 days after is outside.  The duration
    itself is counted in full even if the run continues past the window (the seed wording
    "lasts for 7 days or more within the 28 days" could also be read as "7 days inside the
    window"; we choose onset-in-window, which flags at least every case the stricter reading
    flags and is the conservative choice for a safety signal).
Attribution
    Levels are ordered ``unrelated < unlikely < possible < probable < definite``.  ``"related"``
    means ``possible`` or more (the common "reasonable possibility" convention, ICH E2A).  The AE
    must be related at ``>= min_attribution`` to at least one of ``attribution_interventions``.
    An intervention absent from the AE's attribution mapping counts as ``unrelated``.
Grade 5
    Grade 5 (death) is outside ``[3, 4]``, so a grade-5 episode does not qualify for a TI rule
    with ``max_grade=4`` and breaks a run (a grade 3-4 run before it still counts on its own
    duration).  A fatal related AE is caught by DLT rules with ``max_grade=None`` and by the SAE
    clock (``sae_deadlines``).  A protocol that wants grade 5 in its TI rule sets
    ``max_grade=None`` (or 5) in its protocol file.
Output
    One ``Flag`` per (rule, AE): the first qualifying run in date order.  Output is sorted by
    ``(onset, rule_code, ae_id)`` and depends only on the inputs (idempotent).

SAE clock
---------
ICH E2A (Clinical Safety Data Management: Definitions and Standards for Expedited Reporting,
1994), and ICH E6(R2) 4.11.1: the investigator reports all serious adverse events to the sponsor
immediately -- implemented as *within 24 hours of awareness*.  Expedited reporting of SUSARs
(serious, unexpected, suspected = related): fatal or life-threatening ones "as soon as possible
but no later than 7 calendar days" after first knowledge; all other SUSARs "as soon as possible
but no later than 15 calendar days".  All deadlines are computed as elapsed time (arithmetic in
UTC, so a DST change does not shorten or lengthen "24 hours") and returned in the timezone of
``aware_at``.  A report made exactly at the deadline is on time; the status becomes
``"overdue"`` only strictly after the deadline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "ATTRIBUTION_LEVELS",
    "AdverseEventFacts",
    "Administration",
    "Flag",
    "GradeEpisode",
    "SaeDeadlines",
    "ToxicityRule",
    "attribution_rank",
    "evaluate",
    "expedited_status",
    "qualifying_runs",
    "sae_deadlines",
    "sae_status",
]

#: Ordered causality scale (WHO-UMC style wording used by most oncology CRFs).
ATTRIBUTION_LEVELS: tuple[str, ...] = ("unrelated", "unlikely", "possible", "probable", "definite")

_ATTRIBUTION_ALIASES: dict[str, str] = {
    "not related": "unrelated",
    "none": "unrelated",
    "unlikely related": "unlikely",
    "possibly related": "possible",
    "possibly": "possible",
    "related": "possible",  # "related" = possible or more
    "probably related": "probable",
    "probably": "probable",
    "likely": "probable",
    "definitely related": "definite",
    "definitely": "definite",
    "certain": "definite",
}

RuleKind = Literal["DLT", "TI"]


def attribution_rank(level: str) -> int:
    """Rank of an attribution level on ``ATTRIBUTION_LEVELS`` (0 = unrelated .. 4 = definite).

    Case-insensitive; accepts common aliases ("related" = possible, "not related" = unrelated).
    Raises ``ValueError`` for an unknown level, rather than guessing.
    """
    if not isinstance(level, str):
        raise ValueError(f"attribution level must be a string, got {level!r}")
    key = " ".join(level.strip().lower().replace("_", " ").split())
    key = _ATTRIBUTION_ALIASES.get(key, key)
    try:
        return ATTRIBUTION_LEVELS.index(key)
    except ValueError:
        raise ValueError(
            f"unknown attribution level {level!r}; expected one of {ATTRIBUTION_LEVELS} "
            f"or an alias {sorted(_ATTRIBUTION_ALIASES)}"
        ) from None


def _id_key(value: Any) -> tuple[int, Any]:
    """Sort key for ids that may be ints or strings (ints first, numerically)."""
    if isinstance(value, bool):
        return (1, str(value))
    if isinstance(value, int):
        return (0, value)
    return (1, str(value))


# --------------------------------------------------------------------------------------------
# Input / output dataclasses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToxicityRule:
    """A protocol toxicity rule (see the module docstring for the exact semantics).

    ``window_interventions``: intervention codes whose administration opens the window.
    ``attribution_interventions``: agents the AE must be related to (at ``>= min_attribution``).
    """

    code: str
    kind: RuleKind
    min_grade: int
    max_grade: int | None
    min_duration_days: int | None
    window_days: int
    window_interventions: tuple[str, ...]
    attribution_interventions: tuple[str, ...]
    min_attribution: str = "possible"
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "window_interventions", tuple(self.window_interventions))
        object.__setattr__(self, "attribution_interventions", tuple(self.attribution_interventions))
        if not self.code:
            raise ValueError("rule code is required")
        if self.kind not in ("DLT", "TI"):
            raise ValueError(f"rule {self.code}: kind must be 'DLT' or 'TI', got {self.kind!r}")
        if not 1 <= self.min_grade <= 5:
            raise ValueError(f"rule {self.code}: min_grade must be 1..5")
        if self.max_grade is not None and not self.min_grade <= self.max_grade <= 5:
            raise ValueError(f"rule {self.code}: max_grade must be in min_grade..5 or None")
        if self.min_duration_days is not None and self.min_duration_days < 1:
            raise ValueError(f"rule {self.code}: min_duration_days must be >= 1 or None")
        if self.window_days < 0:
            raise ValueError(f"rule {self.code}: window_days must be >= 0")
        if not self.window_interventions:
            raise ValueError(f"rule {self.code}: window_interventions must not be empty")
        if not self.attribution_interventions:
            raise ValueError(f"rule {self.code}: attribution_interventions must not be empty")
        attribution_rank(self.min_attribution)  # validates

    def grade_text(self) -> str:
        if self.max_grade is None:
            return f"grade >= {self.min_grade}"
        if self.max_grade == self.min_grade:
            return f"grade {self.min_grade}"
        return f"grade {self.min_grade}-{self.max_grade}"

    def grade_qualifies(self, grade: int) -> bool:
        return grade >= self.min_grade and (self.max_grade is None or grade <= self.max_grade)


@dataclass(frozen=True)
class GradeEpisode:
    """A period during which an AE had one CTCAE grade. ``end=None`` means ongoing."""

    id: Any
    grade: int
    start: dt.date
    end: dt.date | None = None

    def __post_init__(self) -> None:
        if isinstance(self.grade, bool) or not isinstance(self.grade, int):
            raise ValueError(f"episode {self.id}: grade must be an int")
        if not 1 <= self.grade <= 5:
            raise ValueError(f"episode {self.id}: grade must be 1..5, got {self.grade}")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"episode {self.id}: end {self.end} is before start {self.start}")


@dataclass(frozen=True)
class AdverseEventFacts:
    """An AE with its grade episodes and its attribution per intervention code."""

    id: Any
    term: str
    episodes: tuple[GradeEpisode, ...]
    attributions: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "episodes", tuple(self.episodes))
        object.__setattr__(self, "attributions", MappingProxyType(dict(self.attributions)))
        for level in self.attributions.values():
            attribution_rank(level)  # validates

    def attribution_for(self, intervention: str) -> str:
        """Attribution level to ``intervention``; missing means ``"unrelated"``."""
        return self.attributions.get(intervention, "unrelated")


@dataclass(frozen=True)
class Administration:
    """One administration (e.g. an infusion) of an intervention to the subject."""

    id: Any
    intervention: str
    date: dt.date


@dataclass(frozen=True)
class Flag:
    """A rule hit: which rule, which AE, which episodes, which administration, and why."""

    rule_code: str
    kind: str
    ae_id: Any
    episode_ids: tuple
    administration_id: Any
    onset: dt.date
    duration_days: int
    worst_grade: int
    reason: str


@dataclass(frozen=True)
class _Run:
    start: dt.date
    end: dt.date  # inclusive, clipped to as_of
    ongoing: bool  # the last day is an open episode closed by as_of
    episodes: tuple[GradeEpisode, ...]

    @property
    def duration_days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def worst_grade(self) -> int:
        return max(e.grade for e in self.episodes)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def qualifying_runs(
    episodes: Iterable[GradeEpisode], rule: ToxicityRule, as_of: dt.date
) -> list[_Run]:
    """Maximal runs of contiguous grade-qualifying episodes, in date order.

    See the module docstring ("Grade-qualifying run", "Duration") for the conventions.
    """
    usable: list[tuple[dt.date, dt.date, bool, GradeEpisode]] = []
    for ep in episodes:
        if not rule.grade_qualifies(ep.grade) or ep.start > as_of:
            continue
        if ep.end is None or ep.end > as_of:
            end, ongoing = as_of, ep.end is None or ep.end > as_of
        else:
            end, ongoing = ep.end, False
        usable.append((ep.start, end, ongoing, ep))
    usable.sort(key=lambda t: (t[0], t[1], _id_key(t[3].id)))

    runs: list[_Run] = []
    one_day = dt.timedelta(days=1)
    cur_start = cur_end = None
    cur_ongoing = False
    cur_eps: list[GradeEpisode] = []
    for start, end, ongoing, ep in usable:
        if cur_start is not None and start <= cur_end + one_day:
            if end > cur_end:
                cur_end, cur_ongoing = end, ongoing
            elif end == cur_end:
                cur_ongoing = cur_ongoing or ongoing
            cur_eps.append(ep)
            continue
        if cur_start is not None:
            runs.append(_Run(cur_start, cur_end, cur_ongoing, tuple(cur_eps)))
        cur_start, cur_end, cur_ongoing, cur_eps = start, end, ongoing, [ep]
    if cur_start is not None:
        runs.append(_Run(cur_start, cur_end, cur_ongoing, tuple(cur_eps)))
    return runs


def _best_attribution(ae: AdverseEventFacts, rule: ToxicityRule) -> tuple[str, str] | None:
    """(intervention, level) of the strongest attribution meeting the rule, or None."""
    threshold = attribution_rank(rule.min_attribution)
    best: tuple[int, str, str] | None = None
    for code in rule.attribution_interventions:
        level = ae.attribution_for(code)
        rank = attribution_rank(level)
        if rank >= threshold and (best is None or rank > best[0]):
            best = (rank, code, level)
    if best is None:
        return None
    return best[1], ATTRIBUTION_LEVELS[best[0]]


def _fmt_ids(ids: Sequence[Any]) -> str:
    return ", ".join(str(i) for i in ids)


def _reason(
    rule: ToxicityRule,
    ae: AdverseEventFacts,
    run: _Run,
    admin: Administration,
    attribution: tuple[str, str],
    as_of: dt.date,
) -> str:
    days_after = (run.start - admin.date).days
    duration = f"for {run.duration_days} day{'s' if run.duration_days != 1 else ''}"
    extras = []
    if rule.min_duration_days is not None:
        extras.append(f">= {rule.min_duration_days}")
    if run.ongoing:
        extras.append(f"ongoing as of {as_of.isoformat()}")
    if extras:
        duration += f" ({'; '.join(extras)})"
    label = "episode" if len(run.episodes) == 1 else "episodes"
    return (
        f"{rule.kind} (rule {rule.code}): AE {ae.id} '{ae.term}' {rule.grade_text()} "
        f"(worst grade {run.worst_grade}; {label} {_fmt_ids([e.id for e in run.episodes])}) "
        f"from {run.start.isoformat()} {duration} starting {days_after} "
        f"day{'s' if days_after != 1 else ''} after {admin.intervention} "
        f"(administration {admin.id}) on {admin.date.isoformat()} "
        f"(window {rule.window_days} days); attribution to {attribution[0]}: {attribution[1]} "
        f"(>= {rule.min_attribution} required)"
    )


def evaluate(
    rules: Iterable[ToxicityRule],
    adverse_events: Iterable[AdverseEventFacts],
    administrations: Iterable[Administration],
    as_of: dt.date,
) -> list[Flag]:
    """Evaluate every rule against every AE of one subject; return the flags, sorted.

    ``administrations`` are the subject's administrations (all interventions); each rule only
    looks at those of its ``window_interventions`` dated on or before ``as_of``.  For each
    (rule, AE): the AE must meet the attribution requirement; then the first run (date order)
    that meets ``min_duration_days`` and whose onset is within ``window_days`` after the most
    recent window administration on or before the onset produces one ``Flag``.
    """
    if isinstance(as_of, dt.datetime) or not isinstance(as_of, dt.date):
        raise ValueError("as_of must be a datetime.date")
    rules = list(rules)
    codes = [r.code for r in rules]
    if len(set(codes)) != len(codes):
        raise ValueError(f"duplicate rule codes: {codes}")
    adverse_events = list(adverse_events)
    administrations = [a for a in administrations if a.date <= as_of]

    flags: list[Flag] = []
    for rule in rules:
        window_admins = sorted(
            (a for a in administrations if a.intervention in rule.window_interventions),
            key=lambda a: (a.date, a.intervention, _id_key(a.id)),
        )
        for ae in adverse_events:
            attribution = _best_attribution(ae, rule)
            if attribution is None:
                continue
            for run in qualifying_runs(ae.episodes, rule, as_of):
                if (
                    rule.min_duration_days is not None
                    and run.duration_days < rule.min_duration_days
                ):
                    continue
                prior = [a for a in window_admins if a.date <= run.start]
                if not prior:
                    continue
                admin = prior[-1]  # most recent on or before onset
                if (run.start - admin.date).days > rule.window_days:
                    continue
                flags.append(
                    Flag(
                        rule_code=rule.code,
                        kind=rule.kind,
                        ae_id=ae.id,
                        episode_ids=tuple(e.id for e in run.episodes),
                        administration_id=admin.id,
                        onset=run.start,
                        duration_days=run.duration_days,
                        worst_grade=run.worst_grade,
                        reason=_reason(rule, ae, run, admin, attribution, as_of),
                    )
                )
                break  # one flag per (rule, AE): the first qualifying run
    flags.sort(key=lambda f: (f.onset, f.rule_code, _id_key(f.ae_id)))
    return flags


# --------------------------------------------------------------------------------------------
# SAE reporting clock
# --------------------------------------------------------------------------------------------

SAE_REPORT_WINDOW = dt.timedelta(hours=24)
SUSAR_FATAL_WINDOW = dt.timedelta(days=7)
SUSAR_OTHER_WINDOW = dt.timedelta(days=15)

SaeStatus = Literal["not_serious", "due", "overdue", "reported", "reported_late"]


@dataclass(frozen=True)
class SaeDeadlines:
    """Reporting deadlines computed from the moment of awareness.

    ``report_due``: site -> sponsor initial SAE report (aware_at + 24 h); None if not serious.
    ``expedited_due``: sponsor -> regulator SUSAR report (7 or 15 calendar days); None if the
    event is not a SUSAR (not serious, expected, or not related).
    """

    aware_at: dt.datetime
    serious: bool
    report_due: dt.datetime | None
    expedited_due: dt.datetime | None
    expedited_days: int | None
    basis: str


def _require_aware(name: str, value: dt.datetime | None) -> None:
    if value is None:
        return
    if not isinstance(value, dt.datetime):
        raise ValueError(f"{name} must be a datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be timezone-aware (naive datetimes are refused)")


def _add_elapsed(start: dt.datetime, delta: dt.timedelta) -> dt.datetime:
    return (start.astimezone(dt.UTC) + delta).astimezone(start.tzinfo)


def sae_deadlines(
    aware_at: dt.datetime,
    serious: bool,
    expected: bool,
    related: bool,
    fatal_or_life_threatening: bool,
) -> SaeDeadlines:
    """Deadlines per ICH E2A: 24 h initial report; SUSAR 7 days (fatal/LT) or 15 days.

    ``expected`` means listed in the reference safety information (Investigator's Brochure);
    ``related`` means a reasonable possibility of a causal relationship (possible or more).
    """
    _require_aware("aware_at", aware_at)
    if not serious:
        return SaeDeadlines(aware_at, False, None, None, None, "not serious: no SAE clock")
    report_due = _add_elapsed(aware_at, SAE_REPORT_WINDOW)
    if related and not expected:
        if fatal_or_life_threatening:
            days, why = 7, "fatal or life-threatening SUSAR: 7 calendar days (ICH E2A)"
        else:
            days, why = 15, "SUSAR (serious, unexpected, related): 15 calendar days (ICH E2A)"
        expedited = _add_elapsed(aware_at, dt.timedelta(days=days))
        return SaeDeadlines(
            aware_at, True, report_due, expedited, days, f"SAE report within 24 h; {why}"
        )
    why = "expected" if expected else "not related"
    return SaeDeadlines(
        aware_at,
        True,
        report_due,
        None,
        None,
        f"SAE report within 24 h; no expedited report ({why})",
    )


def _clock_status(
    due: dt.datetime, done_at: dt.datetime | None, now: dt.datetime, done: str
) -> str:
    if done_at is not None:
        return done if done_at <= due else f"{done}_late"
    return "due" if now <= due else "overdue"


def sae_status(
    deadlines: SaeDeadlines, reported_at: dt.datetime | None, now: dt.datetime
) -> SaeStatus:
    """Status of the 24-hour initial report.

    "not_serious" (no clock) | "reported" (at or before the deadline) | "reported_late" |
    "due" (not reported, ``now <= report_due``) | "overdue" (not reported, ``now > report_due``).
    """
    _require_aware("reported_at", reported_at)
    _require_aware("now", now)
    if not deadlines.serious or deadlines.report_due is None:
        return "not_serious"
    return _clock_status(deadlines.report_due, reported_at, now, "reported")  # type: ignore


def expedited_status(
    deadlines: SaeDeadlines, submitted_at: dt.datetime | None, now: dt.datetime
) -> str:
    """Status of the expedited (SUSAR) report, same edge convention as ``sae_status``.

    "not_required" | "submitted" | "submitted_late" | "due" | "overdue".
    """
    _require_aware("submitted_at", submitted_at)
    _require_aware("now", now)
    if deadlines.expedited_due is None:
        return "not_required"
    return _clock_status(deadlines.expedited_due, submitted_at, now, "submitted")
