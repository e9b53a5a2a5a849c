"""Reading the TOML tables: types, required/declared/optional keys, quotes, ``not_stated``
and ``inferred`` (``_T``: one reader shared by every table), one function per table."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .model import (
    Arm,
    Assessment,
    Crm,
    Design,
    DoseFinding,
    DoseLevel,
    Eligibility,
    EligibilityCriterion,
    Endpoint,
    FrequencyLevel,
    Interval,
    Intervention,
    Issue,
    Randomization,
    Regimen,
    Safety,
    Site,
    ToxicityRule,
    Trial,
    Visit,
    VisitPlan,
)
from .terms import (
    _CODE,
    _NCT,
    ALLOCATIONS,
    ANCHORS,
    ARM_TYPES,
    ASSESSMENT_KINDS,
    ATTRIBUTION_LEVELS,
    CONTINUOUS_FREQUENCIES,
    CRM_MODELS,
    CRM_TIE_BREAKS,
    CTCAE_VERSIONS,
    DF_DIRECTIONS,
    DF_METHODS,
    DF_MODELS,
    DF_TARGETS,
    DOSE_BASES,
    DOSE_MODES,
    DOSE_UNITS,
    ENDPOINT_KINDS,
    FREQUENCIES,
    INTERVENTION_TYPES,
    MASKINGS,
    MODELS,
    NUMBERINGS,
    PERIODS,
    PHASES,
    PURPOSES,
    REGISTRIES,
    RESPONSE_CRITERIA,
    ROUTES,
    SEXES,
    STATUSES,
    TOX_KINDS,
    VISIT_KINDS,
    WINDOW_ANCHORS,
)

# --------------------------------------------------------------------------- helpers


def normalise_quote(text: str) -> str:
    """Drop backslash escapes (``\\^``, ``\\>``) and collapse all whitespace to one space."""
    return " ".join(re.sub(r"\\(.)", r"\1", text, flags=re.S).split())


def protocol_digest(data: str | bytes | os.PathLike[str]) -> str:
    """SHA-256 (hex) of a protocol file's text with line endings normalised to ``\\n``.

    A path (``pathlib.Path`` or other ``PathLike``) is read; ``str``/``bytes`` are the text.
    Any edit, including a comment, gives a new digest, i.e. a new protocol version."""
    if isinstance(data, os.PathLike):
        data = Path(data).read_bytes()
    if isinstance(data, str):
        data = data.encode("utf-8")
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(data).hexdigest()


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean",
               dict: "table", list: "array", dt.date: "date", dt.datetime: "datetime",
               dt.time: "time"}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


_KINDS = {
    "str": ("string", lambda v: isinstance(v, str)),
    "int": ("integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    "num": ("number", lambda v: isinstance(v, int | float) and not isinstance(v, bool)),
    "bool": ("boolean", lambda v: isinstance(v, bool)),
    "date": ("date", lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime)),
    "table": ("table", lambda v: isinstance(v, dict)),
    "list": ("array", lambda v: isinstance(v, list)),
}
_ELEMENT = {"str_list": "str", "int_list": "int", "num_list": "num", "table_list": "table"}

REQUIRED, DECLARE, OPTIONAL = "required", "declare", "optional"


class _Ctx:
    def __init__(self, file: str):
        self.file = file
        self.issues: list[Issue] = []
        self.quotes: list[tuple[str, str]] = []

    def err(self, path: str, message: str) -> None:
        self.issues.append(Issue(self.file, path, message))


class _T:
    """Reads one TOML table, recording problems and which keys were used."""

    def __init__(self, ctx: _Ctx, data: dict[str, Any], path: str):
        self.ctx, self.data, self.path = ctx, data, path
        self.fields: set[str] = {"not_stated", "inferred", "note", "quote"}
        self.present: set[str] = set()
        self.not_stated = self._names("not_stated")
        self.inferred = self._names("inferred")
        self.note = self.get("note", "str", OPTIONAL)

    def p(self, key: str | int) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def err(self, key: str, message: str) -> None:
        self.ctx.err(self.p(key), message)

    def _names(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err(key, "expected array of strings")
            return ()
        return tuple(value)

    def get(self, key: str, kind: str, need: str = REQUIRED, *,
            choices: Iterable[str] | None = None, positive: bool = False) -> Any:
        self.fields.add(key)
        if key not in self.data:
            if need == REQUIRED:
                self.err(key, "missing required field")
            elif need == DECLARE and key not in self.not_stated:
                self.err(key, "missing (give a value or list it in not_stated)")
            return None
        self.present.add(key)
        value = self.data[key]
        if need == DECLARE and key in self.not_stated:
            self.err(key, "has a value but is listed in not_stated")
        element = _ELEMENT.get(kind)
        if element:
            if not isinstance(value, list):
                self.err(key, f"expected array, got {_type_name(value)}")
                return None
            name, ok = _KINDS[element]
            bad = [i for i, v in enumerate(value) if not ok(v)]
            for i in bad:
                self.ctx.err(f"{self.p(key)}[{i}]",
                             f"expected {name}, got {_type_name(value[i])}")
            if bad:
                return None
            items = value
        else:
            name, ok = _KINDS[kind]
            if not ok(value):
                self.err(key, f"expected {name}, got {_type_name(value)}")
                return None
            items = [value]
        if choices is not None:
            allowed = tuple(choices)
            for i, v in enumerate(items):
                if v not in allowed:
                    where = self.p(key) if not element else f"{self.p(key)}[{i}]"
                    self.ctx.err(where, f"unknown value {v!r} (allowed: {', '.join(allowed)})")
            if any(v not in allowed for v in items):
                return None
        if positive and kind in ("int", "num") and value <= 0:
            self.err(key, f"must be > 0, got {value}")
            return None
        if kind == "num":
            value = float(value)
        return tuple(value) if element and element != "table" else value

    def sub(self, key: str, need: str = REQUIRED) -> _T | None:
        value = self.get(key, "table", need)
        return None if value is None else _T(self.ctx, value, self.p(key))

    def subs(self, key: str, need: str = REQUIRED) -> list[_T]:
        value = self.get(key, "table_list", need)
        if value is None:
            return []
        return [_T(self.ctx, v, f"{self.p(key)}[{i}]") for i, v in enumerate(value)]

    def code(self, key: str = "code") -> str | None:
        value = self.get(key, "str")
        if value is not None and not _CODE.fullmatch(value):
            self.err(key, f"invalid code {value!r} (letters, digits, _ . + - only)")
        return value

    def quote(self) -> tuple[str, ...]:
        self.fields.add("quote")
        if "quote" not in self.data:
            self.err("quote", "missing required field")
            return ()
        value = self.data["quote"]
        if isinstance(value, str):
            self.ctx.quotes.append((self.p("quote"), value))
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err("quote", f"expected string or array of strings, got {_type_name(value)}")
            return ()
        if not value and not self.note:
            self.err("quote", "empty quote list needs a note saying why")
        for i, v in enumerate(value):
            self.ctx.quotes.append((f"{self.p('quote')}[{i}]", v))
        return tuple(value)

    def meta(self) -> dict[str, Any]:
        """quote/not_stated/inferred/note for the dataclass (call after the fields)."""
        return {"quote": self.quote(), "not_stated": self.not_stated,
                "inferred": self.inferred, "note": self.note}

    def finish(self) -> None:
        for key in self.data:
            if key not in self.fields:
                self.err(key, "unknown field")
        known = self.fields - {"not_stated", "inferred", "note", "quote"}
        for list_key, names in (("not_stated", self.not_stated), ("inferred", self.inferred)):
            for name in names:
                if name not in known:
                    self.err(list_key, f"unknown field {name!r}")
        for name in self.inferred:
            if name in known and name not in self.present:
                self.err("inferred", f"inferred field {name!r} has no value")
        if self.inferred and not self.note:
            self.err("note", "required when fields are inferred (say how)")


# --------------------------------------------------------------------------- tables


def _site(t: _T) -> Site:
    site = Site(name=t.get("name", "str"), city=t.get("city", "str", DECLARE),
                region=t.get("region", "str", OPTIONAL), country=t.get("country", "str"),
                **t.meta())
    t.finish()
    return site


def _trial(t: _T) -> Trial:
    g = t.get
    registry_id = g("registry_id", "str", OPTIONAL)
    reason = g("no_registry_id", "str", OPTIONAL)
    if registry_id is not None and not _NCT.fullmatch(registry_id):
        t.err("registry_id", f"not an NCT id (NCT + 8 digits): {registry_id!r}")
    if (registry_id is None) == (reason is None):
        t.err("registry_id", "give exactly one of registry_id and no_registry_id")
    trial = Trial(
        short_name=t.code("short_name"),
        registry=g("registry", "str", choices=REGISTRIES),
        registry_id=registry_id, no_registry_id=reason,
        other_ids=g("other_ids", "str_list", OPTIONAL) or (),
        title=g("title", "str", DECLARE),
        official_title=g("official_title", "str", OPTIONAL),
        phase=g("phase", "str", DECLARE, choices=PHASES),
        status=g("status", "str", DECLARE, choices=STATUSES),
        target_enrollment=g("target_enrollment", "int", DECLARE, positive=True),
        start_date=g("start_date", "date", DECLARE),
        primary_completion_date=g("primary_completion_date", "date", OPTIONAL),
        completion_date=g("completion_date", "date", DECLARE),
        sponsor=g("sponsor", "str", DECLARE),
        collaborators=g("collaborators", "str_list", OPTIONAL) or (),
        sites=tuple(_site(s) for s in t.subs("sites", DECLARE)),
        **t.meta(),
    )
    expected = {"ctgov": registry_id is not None, "sponsor": registry_id is None}
    if trial.registry is not None and not expected[trial.registry]:
        t.err("registry", f"{trial.registry!r} does not fit registry_id/no_registry_id")
    for later in ("primary_completion_date", "completion_date"):
        end = getattr(trial, later)
        if trial.start_date and end and end < trial.start_date:
            t.err(later, f"{end.isoformat()} is before start_date "
                         f"{trial.start_date.isoformat()}")
    t.finish()
    return trial


def _randomization(t: _T) -> Randomization:
    ratio = t.get("ratio", "table")
    if ratio is not None:
        for key, value in ratio.items():
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                t.ctx.err(f"{t.p('ratio')}.{key}", f"expected positive integer, got {value!r}")
        ratio = dict(ratio)
    blocks = t.get("block_sizes", "int_list", DECLARE)
    for i, b in enumerate(blocks or ()):
        if b <= 0:
            t.ctx.err(f"{t.p('block_sizes')}[{i}]", f"must be > 0, got {b}")
        elif ratio and all(isinstance(v, int) for v in ratio.values()):
            total = sum(ratio.values())
            if total and b % total:
                t.ctx.err(f"{t.p('block_sizes')}[{i}]",
                          f"block size {b} is not a multiple of the ratio total {total}")
    r = Randomization(ratio=ratio, block_sizes=blocks,
                      stratification=t.get("stratification", "str_list", DECLARE),
                      method=t.get("method", "str", OPTIONAL), **t.meta())
    t.finish()
    return r


def _design(t: _T) -> Design:
    allocation = t.get("allocation", "str", choices=ALLOCATIONS)
    rand_t = t.sub("randomization", OPTIONAL)
    if allocation == "randomized" and rand_t is None and "randomization" not in t.data:
        t.err("randomization", "required when allocation is 'randomized'")
    if allocation is not None and allocation != "randomized" and rand_t is not None:
        t.err("randomization", f"not allowed when allocation is {allocation!r}")
    d = Design(allocation=allocation, model=t.get("model", "str", choices=MODELS),
               masking=t.get("masking", "str", choices=MASKINGS),
               purpose=t.get("purpose", "str", OPTIONAL, choices=PURPOSES),
               randomization=_randomization(rand_t) if rand_t else None, **t.meta())
    t.finish()
    return d


def _arm(t: _T) -> Arm:
    a = Arm(code=t.code(), label=t.get("label", "str"),
            type=t.get("type", "str", choices=ARM_TYPES),
            blinded_label=t.get("blinded_label", "str", OPTIONAL),
            sequence=t.get("sequence", "int", OPTIONAL, positive=True),
            cohort_size=t.get("cohort_size", "int", OPTIONAL, positive=True),
            size_min=t.get("size_min", "int", OPTIONAL, positive=True),
            size_max=t.get("size_max", "int", OPTIONAL, positive=True),
            description=t.get("description", "str", OPTIONAL), **t.meta())
    if a.size_min and a.size_max and a.size_min > a.size_max:
        t.err("size_min", f"size_min ({a.size_min}) is greater than size_max ({a.size_max})")
    t.finish()
    return a


def _intervention(t: _T) -> Intervention:
    i = Intervention(code=t.code(), agent=t.get("agent", "str"),
                     type=t.get("type", "str", choices=INTERVENTION_TYPES),
                     route=t.get("route", "str", DECLARE, choices=ROUTES),
                     cell_product=bool(t.get("cell_product", "bool", OPTIONAL)),
                     placebo_for=t.get("placebo_for", "str", OPTIONAL),
                     other_names=t.get("other_names", "str_list", OPTIONAL) or (),
                     **t.meta())
    if i.type == "placebo" and i.placebo_for is None:
        t.err("placebo_for", "required for a placebo intervention")
    t.finish()
    return i


def _interval(t: _T) -> Interval:
    iv = Interval(target_days=t.get("target_days", "int", positive=True),
                  min_days=t.get("min_days", "int", DECLARE, positive=True),
                  max_days=t.get("max_days", "int", DECLARE, positive=True))
    t.fields.discard("quote")  # inline part of its regimen, quoted there
    if iv.target_days is not None:
        if iv.min_days is not None and iv.min_days > iv.target_days:
            t.err("min_days", f"min_days ({iv.min_days}) is greater than target_days "
                              f"({iv.target_days})")
        if iv.max_days is not None and iv.max_days < iv.target_days:
            t.err("max_days", f"max_days ({iv.max_days}) is less than target_days "
                              f"({iv.target_days})")
    t.finish()
    return iv


def _dose_unit(t: _T, need: str) -> tuple[str | None, str | None]:
    """Read dose_unit + dose_basis and check that they agree."""
    unit = t.get("dose_unit", "str", need)
    if unit is not None and unit not in DOSE_UNITS:
        t.err("dose_unit", f"unknown dose unit {unit!r} (allowed: {', '.join(DOSE_UNITS)})")
        unit = None
    basis = t.get("dose_basis", "str", need, choices=DOSE_BASES)
    if unit and basis and DOSE_UNITS[unit] != basis:
        t.err("dose_basis", f"{basis!r} does not match dose_unit {unit!r} "
                            f"(expected {DOSE_UNITS[unit]!r})")
    return unit, basis


def _regimen(t: _T) -> Regimen:
    g = t.get
    mode = g("dose_mode", "str", choices=DOSE_MODES)
    numeric = mode in ("fixed", "range")
    value = g("dose_value", "num", REQUIRED if mode == "fixed" else OPTIONAL, positive=True)
    dmin = g("dose_min", "num", REQUIRED if mode == "range" else OPTIONAL, positive=True)
    dmax = g("dose_max", "num", REQUIRED if mode == "range" else OPTIONAL, positive=True)
    unit, basis = _dose_unit(t, REQUIRED if numeric else OPTIONAL)
    for key, v in (("dose_value", value), ("dose_min", dmin), ("dose_max", dmax)):
        allowed = (mode == "fixed" and key == "dose_value") or (
            mode == "range" and key != "dose_value")
        if v is not None and mode is not None and not allowed:
            t.err(key, f"not allowed with dose_mode {mode!r}")
    if dmin is not None and dmax is not None and dmin >= dmax:
        t.err("dose_min", f"dose_min ({dmin:g}) must be less than dose_max ({dmax:g})")
    iv_t = t.sub("interval", DECLARE)
    cycles_min = g("cycles_min", "int", OPTIONAL, positive=True)
    cycles_max = g("cycles_max", "int", OPTIONAL, positive=True)
    if cycles_min and cycles_max and cycles_min > cycles_max:
        t.err("cycles_min", f"cycles_min ({cycles_min}) is greater than cycles_max "
                            f"({cycles_max})")
    r = Regimen(arm=g("arm", "str"), intervention=g("intervention", "str"),
                phase=t.code("phase"), phase_label=g("phase_label", "str", OPTIONAL),
                dose_mode=mode, dose_value=value, dose_min=dmin, dose_max=dmax,
                dose_unit=unit, dose_basis=basis,
                interval=_interval(iv_t) if iv_t else None,
                first_cycle=g("first_cycle", "int", OPTIONAL, positive=True),
                cycles_min=cycles_min, cycles_max=cycles_max,
                relative_day=g("relative_day", "int", OPTIONAL),
                relative_to=g("relative_to", "str", OPTIONAL),
                at_visits=g("at_visits", "str_list", OPTIONAL) or (),
                course_days=g("course_days", "int", OPTIONAL, positive=True),
                frequency=g("frequency", "str", OPTIONAL, choices=FREQUENCIES),
                cycle_days=g("cycle_days", "int", OPTIONAL, positive=True),
                days_on=g("days_on", "int", OPTIONAL, positive=True),
                dose_tolerance_pct=g("dose_tolerance_pct", "num", OPTIONAL, positive=True),
                **t.meta())
    if r.dose_tolerance_pct is not None and r.dose_tolerance_pct >= 100:
        t.err("dose_tolerance_pct", f"must be below 100, got {r.dose_tolerance_pct:g}")
    if (r.days_on is None) != (r.cycle_days is None):
        t.err("days_on", "days_on and cycle_days go together")
    elif r.days_on is not None and r.days_on > r.cycle_days:
        t.err("days_on", f"days_on ({r.days_on}) is longer than cycle_days ({r.cycle_days})")
    if r.days_on is not None and not r.continuous:
        t.err("days_on", "days on/off cycles need a daily frequency "
                         f"({', '.join(CONTINUOUS_FREQUENCIES)})")
    if r.continuous and (r.interval is not None or r.at_visits or r.course_days):
        t.err("frequency", "a daily regimen is recorded as dosing periods: no interval, "
                           "at_visits or course_days")
    if (r.relative_day is None) != (r.relative_to is None):
        t.err("relative_day", "relative_day and relative_to go together")
    if r.relative_day is not None and r.relative_to is not None and r.interval is None:
        t.err("interval", "required when relative_day is given")
    t.finish()
    return r


def _dose_level(t: _T, order: int) -> DoseLevel:
    value = t.get("dose_value", "num", DECLARE, positive=True)
    unit, basis = _dose_unit(t, REQUIRED if value is not None else OPTIONAL)
    lvl = DoseLevel(code=t.code(), order=order, dose_value=value, dose_unit=unit,
                    dose_basis=basis, label=t.get("label", "str", OPTIONAL), **t.meta())
    t.finish()
    return lvl


def _frequency_level(t: _T, order: int) -> FrequencyLevel:
    f = FrequencyLevel(code=t.code(), order=order, label=t.get("label", "str", OPTIONAL),
                       infusions=t.get("infusions", "int", DECLARE, positive=True),
                       **t.meta())
    t.finish()
    return f


def _crm(t: _T, levels: tuple[DoseLevel, ...]) -> Crm:
    g = t.get
    c = Crm(model=g("model", "str", choices=CRM_MODELS),
            skeleton=g("skeleton", "num_list") or (),
            prior_variance=g("prior_variance", "num", positive=True),
            intercept=g("intercept", "num", OPTIONAL),
            cohort_size=g("cohort_size", "int", positive=True),
            no_skipping=g("no_skipping", "bool"),
            start_level=g("start_level", "str"),
            tie_break=g("tie_break", "str", choices=CRM_TIE_BREAKS), **t.meta())
    sk = [float(v) for v in c.skeleton]
    if levels and len(sk) != len(levels):
        t.err("skeleton", f"needs one probability per dose level ({len(levels)}), got {len(sk)}")
    if any(not 0 < v < 1 for v in sk) or any(b <= a for a, b in zip(sk, sk[1:], strict=False)):
        t.err("skeleton", "must be strictly increasing probabilities between 0 and 1")
    if c.model == "logistic":
        if c.intercept is None:
            t.err("intercept", "required for the logistic model (dfcrm intcpt, e.g. 3)")
        elif any(0 < v < 1 and math.log(v / (1 - v)) >= c.intercept for v in sk):
            t.err("intercept", "too small: logit(skeleton) - intercept must be < 0 (dfcrm)")
    elif c.intercept is not None:
        t.err("intercept", "only the logistic model has an intercept")
    if c.start_level is not None and c.start_level not in {lv.code for lv in levels}:
        t.err("start_level", f"unknown dose level {c.start_level!r}")
    t.finish()
    return c


def _dose_finding(t: _T) -> DoseFinding:
    g = t.get
    levels = tuple(_dose_level(s, i) for i, s in enumerate(t.subs("levels")))
    crm_t = t.sub("crm", OPTIONAL)
    freqs = tuple(_frequency_level(s, i)
                  for i, s in enumerate(t.subs("frequency_levels", OPTIONAL)))
    df = DoseFinding(
        method=g("method", "str", choices=DF_METHODS),
        model=g("model", "str", OPTIONAL, choices=DF_MODELS),
        direction=g("direction", "str", choices=DF_DIRECTIONS),
        target=g("target", "str", choices=DF_TARGETS),
        intervention=g("intervention", "str"), arms=g("arms", "str_list") or (),
        cohort_size=g("cohort_size", "int", DECLARE, positive=True), levels=levels,
        frequency_levels=freqs,
        de_escalation_pct=g("de_escalation_pct", "num", OPTIONAL, positive=True),
        target_toxicity=g("target_toxicity", "num", OPTIONAL, positive=True),
        trigger_rule=g("trigger_rule", "str", DECLARE),
        stop_rule=g("stop_rule", "str", OPTIONAL),
        open_ended=bool(g("open_ended", "bool", OPTIONAL)),
        crm=_crm(crm_t, levels) if crm_t else None, **t.meta())
    if df.target_toxicity is not None and df.target_toxicity >= 1:
        t.err("target_toxicity", f"must be a fraction below 1, got {df.target_toxicity:g}")
    if df.de_escalation_pct is not None and df.de_escalation_pct >= 100:
        t.err("de_escalation_pct", f"must be below 100, got {df.de_escalation_pct:g}")
    if not levels and "levels" in t.data:
        t.err("levels", "at least one dose level is required")
    _unique(t.ctx, [(lv.code, f"{t.p('levels')}[{lv.order}].code") for lv in levels],
            "dose level code")
    values = [lv.dose_value for lv in levels]
    if df.direction and None not in values and len(values) > 1:
        up = df.direction == "escalation"
        for i in range(1, len(values)):
            if (values[i] <= values[i - 1]) if up else (values[i] >= values[i - 1]):
                t.ctx.err(f"{t.p('levels')}[{i}].dose_value",
                          f"{values[i]:g} does not follow {values[i - 1]:g} in "
                          f"{df.direction} order")
    t.finish()
    return df


def _visit(t: _T) -> Visit:
    kind = t.get("kind", "str", choices=VISIT_KINDS)
    follow_up = DECLARE if kind == "follow_up" else OPTIONAL
    v = Visit(code=t.code(), label=t.get("label", "str"), kind=kind,
              month=t.get("month", "int", OPTIONAL),
              window_days_before=t.get("window_days_before", "int", OPTIONAL, positive=True),
              intervention=t.get("intervention", "str", OPTIONAL),
              interval_weeks=t.get("interval_weeks", "int", follow_up, positive=True),
              window_days=t.get("window_days", "int", OPTIONAL), **t.meta())
    if v.window_days is not None and v.window_days < 0:
        t.err("window_days", f"must be >= 0, got {v.window_days}")
    if v.kind != "follow_up" and v.interval_weeks is not None:
        t.err("interval_weeks", "only a follow_up visit repeats at an interval")
    if v.kind == "month" and v.month is None and "month" not in t.data:
        t.err("month", "required for a visit of kind 'month'")
    if v.month is not None and v.month < 0:
        t.err("month", f"must be >= 0, got {v.month}")
    if v.kind == "cycle" and v.intervention is None and "intervention" not in t.data:
        t.err("intervention", "required for a visit of kind 'cycle'")
    t.finish()
    return v


def _assessment(t: _T) -> Assessment:
    a = Assessment(code=t.code(), label=t.get("label", "str"),
                   kind=t.get("kind", "str_list", choices=ASSESSMENT_KINDS) or (),
                   period=t.get("period", "str", choices=PERIODS),
                   anchor=t.get("anchor", "str", OPTIONAL, choices=ANCHORS),
                   at_baseline=bool(t.get("at_baseline", "bool", OPTIONAL)),
                   interval_weeks=t.get("interval_weeks", "int", DECLARE, positive=True),
                   at_days=t.get("at_days", "int_list", OPTIONAL) or (),
                   until=t.get("until", "str_list", OPTIONAL) or (),
                   instruments=t.get("instruments", "str_list", OPTIONAL) or (),
                   response_criteria=t.get("response_criteria", "str_list", OPTIONAL,
                                           choices=RESPONSE_CRITERIA) or (),
                   unscheduled_in_analysis=bool(t.get("unscheduled_in_analysis", "bool",
                                                      OPTIONAL)),
                   **t.meta())
    t.finish()
    return a


def _visit_plan(t: _T) -> VisitPlan:
    months = t.get("follow_up_months", "int", DECLARE, positive=True)
    vp = VisitPlan(
        screening_window_days=t.get("screening_window_days", "int", DECLARE, positive=True),
        follow_up_months=months,
        follow_up_anchor=t.get("follow_up_anchor", "str",
                               REQUIRED if months is not None else OPTIONAL, choices=ANCHORS),
        response_criteria=t.get("response_criteria", "str_list", DECLARE,
                                choices=RESPONSE_CRITERIA),
        visits=tuple(_visit(s) for s in t.subs("visits")),
        assessments=tuple(_assessment(s) for s in t.subs("assessments", OPTIONAL)),
        **t.meta())
    _unique(t.ctx, [(v.code, f"{t.p('visits')}[{i}].code") for i, v in enumerate(vp.visits)],
            "visit code")
    _unique(t.ctx, [(a.code, f"{t.p('assessments')}[{i}].code")
                    for i, a in enumerate(vp.assessments)], "assessment code")
    t.finish()
    return vp


def _criteria(t: _T, key: str) -> tuple[EligibilityCriterion, ...] | None:
    if key not in t.data:
        t.subs(key, DECLARE)
        return None
    out = []
    for s in t.subs(key, DECLARE):
        s.fields.discard("quote")  # the text itself is checked against the source
        number, text = s.get("number", "int", positive=True), s.get("text", "str")
        if text is not None:
            t.ctx.quotes.append((s.p("text"), text))
        out.append(EligibilityCriterion(number=number, text=text))
        s.finish()
    _unique(t.ctx, [(c.number, f"{t.p(key)}[{i}].number") for i, c in enumerate(out)],
            "criterion number")
    return tuple(out)


def _eligibility(t: _T) -> Eligibility:
    e = Eligibility(min_age_years=t.get("min_age_years", "int", DECLARE),
                    max_age_years=t.get("max_age_years", "int", DECLARE),
                    sex=t.get("sex", "str", DECLARE, choices=SEXES),
                    healthy_volunteers=t.get("healthy_volunteers", "bool", OPTIONAL),
                    numbering=t.get("numbering", "str", OPTIONAL, choices=NUMBERINGS),
                    inclusion=_criteria(t, "inclusion"), exclusion=_criteria(t, "exclusion"),
                    **t.meta())
    for key in ("min_age_years", "max_age_years"):
        age = getattr(e, key)
        if age is not None and not 0 <= age <= 120:
            t.err(key, f"must be within 0-120, got {age}")
    if e.min_age_years is not None and e.max_age_years is not None \
            and e.min_age_years > e.max_age_years:
        t.err("min_age_years", f"min_age_years ({e.min_age_years}) is greater than "
                               f"max_age_years ({e.max_age_years})")
    if (e.inclusion or e.exclusion) and e.numbering is None and "numbering" not in t.data:
        t.err("numbering", "required with criteria ('source' or 'assigned')")
    t.finish()
    return e


def _safety(t: _T) -> Safety:
    version = t.get("ctcae_version", "str")
    if version is not None and version not in CTCAE_VERSIONS:
        t.err("ctcae_version", f"unsupported CTCAE version {version!r} (only "
                               f"{', '.join(repr(v) for v in CTCAE_VERSIONS)} is accepted)")
    s = Safety(ctcae_version=version,
               ae_follow_up_days=t.get("ae_follow_up_days", "int", OPTIONAL, positive=True),
               **t.meta())
    t.finish()
    return s


def _tox_rule(t: _T) -> ToxicityRule:
    g = t.get
    r = ToxicityRule(
        code=t.code(), name=g("name", "str"), kind=g("kind", "str", choices=TOX_KINDS),
        min_grade=g("min_grade", "int"), max_grade=g("max_grade", "int", OPTIONAL),
        min_duration_days=g("min_duration_days", "int", OPTIONAL, positive=True),
        window_days=g("window_days", "int", positive=True),
        window_anchor=g("window_anchor", "str", choices=WINDOW_ANCHORS),
        window_interventions=g("window_interventions", "str_list") or (),
        attribution_interventions=g("attribution_interventions", "str_list") or (),
        min_attribution=g("min_attribution", "str", choices=ATTRIBUTION_LEVELS),
        arms=g("arms", "str_list", OPTIONAL) or (),
        description=g("description", "str", OPTIONAL), **t.meta())
    if r.min_grade is not None and not 1 <= r.min_grade <= 5:
        t.err("min_grade", f"must be a CTCAE grade 1-5, got {r.min_grade}")
    if r.max_grade is not None and r.min_grade is not None \
            and not r.min_grade <= r.max_grade <= 5:
        t.err("max_grade", f"must be within min_grade ({r.min_grade}) and 5, got {r.max_grade}")
    for key in ("window_interventions", "attribution_interventions"):
        if key in t.data and not getattr(r, key):
            t.err(key, "must name at least one intervention")
    t.finish()
    return r


def _endpoint(t: _T) -> Endpoint:
    e = Endpoint(kind=t.get("kind", "str", choices=ENDPOINT_KINDS),
                 measure=t.get("measure", "str"),
                 description=t.get("description", "str", OPTIONAL),
                 time_frame=t.get("time_frame", "str", DECLARE),
                 time_frame_months=t.get("time_frame_months", "int", OPTIONAL, positive=True),
                 time_frame_days=t.get("time_frame_days", "int", OPTIONAL, positive=True),
                 **t.meta())
    t.finish()
    return e


def _unique(ctx: _Ctx, items: list[tuple[Any, str]], what: str) -> None:
    seen: dict[Any, str] = {}
    for value, path in items:
        if value is None:
            continue
        if value in seen:
            ctx.err(path, f"duplicate {what} {value!r} (also {seen[value]})")
        else:
            seen[value] = path
