"""The parsed protocol: frozen dataclasses per table, and the error every problem becomes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .terms import ATTRIBUTION_LEVELS, CONTINUOUS_FREQUENCIES

# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Issue:
    """One validation problem: ``file: path: message``."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ProtocolError(Exception):
    """A protocol file was refused; ``issues`` lists every problem found (all at once)."""

    def __init__(self, issues: Iterable[Issue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))

    def __str__(self) -> str:
        return "\n".join(str(i) for i in self.issues)


# --------------------------------------------------------------------------- dataclasses

_record = dataclass(frozen=True, kw_only=True)


@_record
class Sourced:
    """What every record table carries besides its values: ``quote`` (text copied from the
    source document), ``not_stated`` (fields the document does not give), ``inferred`` (values
    read into the document, explained in ``note``)."""

    quote: tuple[str, ...] = ()
    not_stated: tuple[str, ...] = ()
    inferred: tuple[str, ...] = ()
    note: str | None = None


@_record
class Site(Sourced):
    """A study site; a site the document does not list is ``inferred`` with a ``note``."""

    name: str
    city: str | None
    country: str
    region: str | None = None


@_record
class Trial(Sourced):
    """Identity.  ``registry_id`` is the NCT id; without one, ``no_registry_id`` says why and
    ``short_name`` (sponsor/site identity) identifies the trial."""

    short_name: str
    registry: str
    registry_id: str | None
    no_registry_id: str | None
    other_ids: tuple[str, ...]
    title: str | None
    official_title: str | None
    phase: str | None
    status: str | None
    target_enrollment: int | None
    start_date: dt.date | None
    primary_completion_date: dt.date | None
    completion_date: dt.date | None
    sponsor: str | None
    collaborators: tuple[str, ...]
    sites: tuple[Site, ...]

    @property
    def identifier(self) -> str:
        """The registry id, or the short name where the document gives none."""
        return self.registry_id or self.short_name


@_record
class Randomization(Sourced):
    ratio: Mapping[str, int]
    block_sizes: tuple[int, ...] | None
    stratification: tuple[str, ...] | None
    method: str | None = None


@_record
class Design(Sourced):
    allocation: str
    model: str
    masking: str
    purpose: str | None
    randomization: Randomization | None

    @property
    def is_blinded(self) -> bool:
        return self.masking != "none"


@_record
class Arm(Sourced):
    code: str
    label: str
    type: str
    blinded_label: str | None = None
    sequence: int | None = None
    cohort_size: int | None = None
    size_min: int | None = None
    size_max: int | None = None
    description: str | None = None


@_record
class Intervention(Sourced):
    code: str
    agent: str
    type: str
    route: str | None
    cell_product: bool = False
    placebo_for: str | None = None
    other_names: tuple[str, ...] = ()


@_record
class Interval:
    """A cycle interval: "every 4-6 weeks" = target 28 days, allowed 28-42."""

    target_days: int
    min_days: int | None = None
    max_days: int | None = None

    @property
    def allowed(self) -> tuple[int, int]:
        """(earliest, latest) day; without a stated window both are the target."""
        lo = self.min_days if self.min_days is not None else self.target_days
        hi = self.max_days if self.max_days is not None else self.target_days
        return lo, hi


@_record
class Regimen(Sourced):
    """How one intervention is given in one arm during one treatment phase.

    ``relative_day`` is the day of administration relative to ``relative_to`` (the cell
    infusion, day 0) within the same cycle; ``at_visits`` schedules by visit instead."""

    arm: str
    intervention: str
    phase: str
    phase_label: str | None
    dose_mode: str
    dose_value: float | None = None
    dose_min: float | None = None
    dose_max: float | None = None
    dose_unit: str | None = None
    dose_basis: str | None = None
    interval: Interval | None = None
    first_cycle: int | None = None
    cycles_min: int | None = None
    cycles_max: int | None = None
    relative_day: int | None = None
    relative_to: str | None = None
    at_visits: tuple[str, ...] = ()
    course_days: int | None = None
    frequency: str | None = None
    cycle_days: int | None = None
    days_on: int | None = None
    dose_tolerance_pct: float | None = None

    @property
    def dose_specified(self) -> bool:
        """True when the protocol gives a number, a range or dose levels (whose own
        ``dose_specified`` may still be False); otherwise the site records the dose given."""
        return self.dose_mode in ("fixed", "range", "dose_finding")

    @property
    def continuous(self) -> bool:
        """Daily (oral) dosing: recorded as dosing periods, not visit by visit."""
        return self.frequency in CONTINUOUS_FREQUENCIES


@_record
class DoseLevel(Sourced):
    """A dose level; ``order`` is its position in ``levels`` (0 = starting level)."""

    code: str
    order: int
    dose_value: float | None
    dose_unit: str | None
    dose_basis: str | None
    label: str | None = None

    @property
    def dose_specified(self) -> bool:
        """False where the document names the level but gives no number (seed 003)."""
        return self.dose_value is not None


@_record
class FrequencyLevel(Sourced):
    """An infusion-frequency level; ``infusions`` = infusions per treatment course (the
    regimen's ``course_days``), spread evenly over the course (``visits.scheduling``)."""

    code: str
    order: int
    label: str | None = None
    infusions: int | None = None


@_record
class Crm(Sourced):
    """Parameters of a continual reassessment method as R dfcrm ``crm()`` takes them.

    ``model``: "empiric" (``p = skeleton^exp(a)``) or "logistic" (``intercept`` = dfcrm
    ``intcpt``); ``prior_variance`` = dfcrm ``scale^2``; ``start_level``: a dose level code;
    ``tie_break``: which of two equally close levels is chosen ("largest" / "smallest").
    """

    model: str
    skeleton: tuple[float, ...]
    prior_variance: float
    cohort_size: int
    no_skipping: bool
    start_level: str
    tie_break: str
    intercept: float | None = None


@_record
class DoseFinding(Sourced):
    method: str
    model: str | None
    direction: str
    target: str
    intervention: str
    arms: tuple[str, ...]
    cohort_size: int | None
    levels: tuple[DoseLevel, ...]
    frequency_levels: tuple[FrequencyLevel, ...] = ()
    de_escalation_pct: float | None = None
    target_toxicity: float | None = None
    trigger_rule: str | None = None
    stop_rule: str | None = None
    open_ended: bool = False
    crm: Crm | None = None


@_record
class Visit(Sourced):
    """A visit of the plan.  A ``follow_up`` visit repeats every ``interval_weeks`` from the
    end of treatment up to the plan's follow-up horizon, with +/- ``window_days``."""

    code: str
    label: str
    kind: str
    month: int | None = None
    window_days_before: int | None = None
    intervention: str | None = None
    interval_weeks: int | None = None
    window_days: int | None = None


@_record
class Assessment(Sourced):
    code: str
    label: str
    kind: tuple[str, ...]
    period: str
    anchor: str | None = None
    at_baseline: bool = False
    interval_weeks: int | None = None
    at_days: tuple[int, ...] = ()
    until: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    response_criteria: tuple[str, ...] = ()
    #: Forms of the instruments completed at visits where none is scheduled count in the
    #: analysis (time to deterioration) only when the protocol says so.
    unscheduled_in_analysis: bool = False

    @property
    def interval_days(self) -> int | None:
        return None if self.interval_weeks is None else self.interval_weeks * 7


@_record
class VisitPlan(Sourced):
    screening_window_days: int | None
    follow_up_months: int | None
    follow_up_anchor: str | None
    response_criteria: tuple[str, ...] | None
    visits: tuple[Visit, ...]
    assessments: tuple[Assessment, ...]


@_record
class EligibilityCriterion:
    number: int
    text: str


@_record
class Eligibility(Sourced):
    min_age_years: int | None
    max_age_years: int | None
    sex: str | None
    healthy_volunteers: bool | None
    numbering: str | None
    inclusion: tuple[EligibilityCriterion, ...] | None
    exclusion: tuple[EligibilityCriterion, ...] | None

    def age_ok(self, age_years: int) -> bool:
        lo, hi = self.min_age_years, self.max_age_years
        return (lo is None or age_years >= lo) and (hi is None or age_years <= hi)

    def sex_ok(self, sex: str) -> bool:
        return self.sex in (None, "all") or sex == self.sex


@_record
class Safety(Sourced):
    ctcae_version: str
    ae_follow_up_days: int | None = None


def attribution_at_least(level: str, minimum: str) -> bool:
    """``possible`` >= ``possible``; unknown levels raise ``ValueError``."""
    return ATTRIBUTION_LEVELS.index(level) >= ATTRIBUTION_LEVELS.index(minimum)


@_record
class ToxicityRule(Sourced):
    """A generic TI/DLT rule (field names follow ``adverse_events.toxicity.ToxicityRule``).

    An AE counts when min_grade <= grade <= max_grade, it lasts >= min_duration_days, its onset
    is within window_days after administration (``window_anchor``) of one of
    window_interventions, and it is related at >= min_attribution to one of
    attribution_interventions.  ``arms`` empty = all arms."""

    code: str
    name: str
    kind: str
    min_grade: int
    max_grade: int | None
    min_duration_days: int | None
    window_days: int
    window_anchor: str
    window_interventions: tuple[str, ...]
    attribution_interventions: tuple[str, ...]
    min_attribution: str
    arms: tuple[str, ...] = ()
    description: str | None = None

    def to_rule_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``adverse_events.toxicity.ToxicityRule``."""
        return {"code": self.code, "kind": self.kind, "min_grade": self.min_grade,
                "max_grade": self.max_grade, "min_duration_days": self.min_duration_days,
                "window_days": self.window_days,
                "window_interventions": self.window_interventions,
                "attribution_interventions": self.attribution_interventions,
                "min_attribution": self.min_attribution, "description": self.description or ""}

    def qualifies(self, *, grade: int, attribution: str, duration_days: int | None,
                  days_after_administration: int) -> bool:
        """Whether one AE episode meets the rule (inputs already reduced to one episode)."""
        if grade < self.min_grade or (self.max_grade is not None and grade > self.max_grade):
            return False
        if not attribution_at_least(attribution, self.min_attribution):
            return False
        if not 0 <= days_after_administration <= self.window_days:
            return False
        return self.min_duration_days is None or (
            duration_days is not None and duration_days >= self.min_duration_days
        )


@_record
class Endpoint(Sourced):
    kind: str
    measure: str
    description: str | None
    time_frame: str | None
    time_frame_months: int | None = None
    time_frame_days: int | None = None


@_record
class Protocol:
    schema_version: int
    file: str
    source: str
    digest: str
    source_digest: str
    trial: Trial
    design: Design
    arms: tuple[Arm, ...]
    interventions: tuple[Intervention, ...]
    regimens: tuple[Regimen, ...]
    dose_finding: DoseFinding | None
    visit_plan: VisitPlan
    eligibility: Eligibility
    safety: Safety
    toxicity_rules: tuple[ToxicityRule, ...] | None
    endpoints: tuple[Endpoint, ...] | None
    not_stated: tuple[str, ...] = ()
    note: str | None = None

    def arm(self, code: str) -> Arm:
        return next(a for a in self.arms if a.code == code)

    def intervention(self, code: str) -> Intervention:
        return next(i for i in self.interventions if i.code == code)

    def regimens_for(self, arm: str, phase: str | None = None) -> tuple[Regimen, ...]:
        return tuple(r for r in self.regimens
                     if r.arm == arm and (phase is None or r.phase == phase))

    def rule(self, code: str) -> ToxicityRule:
        return next(r for r in self.toxicity_rules or () if r.code == code)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (dates as ISO strings, tuples as lists); ``file`` (a local path)
        is left out so the same protocol gives the same JSON on every machine."""
        data = _jsonable(self)
        data.pop("file")
        return data


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
