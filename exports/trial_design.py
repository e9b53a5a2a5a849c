"""SDTM trial design datasets TE, TA, TV and TI (SDTMIG 3.4 section 7) from the protocol file,
in plain Python (``trials.protocol_schema.Protocol``; no Django).

* **TE** (Trial Elements, one record per planned element): SCRN "Screening" (informed consent
  to the first study treatment, day 0), one element per treatment phase of an arm (the
  protocol's ``regimens`` of the arm grouped by ``phase``, in cycle order; ELEMENT is the
  phase label, else the products given) and FU "Follow-up" (treatment stop to the end of
  follow-up). Phases with the same description and start/end rules are one element (TE
  assumption: elements differ by treatment and rules, not by arm). TEDUR only where the phase
  has a fixed length (a fixed number of cycles of an interval without window).
* **TA** (Trial Arms, one record per planned element per arm): SCRN (EPOCH SCREENING), the
  arm's treatment elements (TREATMENT), FU (FOLLOW-UP). TABRANCH on the screening element:
  "Randomized to <arm>" in randomized trials, "Assigned to <arm>" otherwise (several arms);
  TATRANS on treatment elements: treatment stopped early goes to follow-up (the visit
  schedule's rule R5, ``visits.scheduling``).
* **TV** (Trial Visits): the visits the EDC schedules (``visits.protocol_plan`` and
  ``visits.scheduling``, the code path of every subject's schedule) for a nominal subject
  starting on the trial's start date with no visit done: screening, baseline, cycles and
  companion administrations, on-treatment assessments up to the follow-up horizon, month and
  one-off visits, for every frequency level of a frequency-finding design; then the
  follow-up visits counted from a treatment stop (the horizon's maximum, a stop on day 0),
  whose VISITDY is null (they depend on the stop date). VISIT is the visit code the EDC
  records (SV VISIT), VISITDY the planned study day (SDTMIG 3.4 4.4.4, no day 0; the earliest
  one where frequency levels differ), TVSTRL the scheduling rule with its window. One record
  per visit with ARMCD null where every arm has the same schedule (TV assumption 3), else one
  per arm and visit.
  VISITNUM (:func:`visit_numbers`): 1, 2, ... by planned study day then code, follow-up visits
  after them by their day after the stop: the numbers SV, EX, QS, RS and ADQS carry.
* **TI** (Trial Inclusion/Exclusion Criteria): one record per criterion of each protocol
  version whose criteria differ from the version before (TIVERS, TI assumption: every
  version's complete set); IETESTCD / IETEST / IECAT as in IE
  (``sdtm_domains.criterion_code``, ``short_text``: texts over 200 bytes are shortened, the
  full text stays in the protocol).

Blinding (ICH E9 2.3.1, ``exports.blinding``): a user blinded to the trial sees one arm,
ARMCD "BLINDED" / ARM "Blinded" as in DM, with one treatment element naming every product any
arm receives as that user sees them (a product and its matching placebo alike), and TV
without arms.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from trials import protocol_schema as schema
from trials.blinding import BLINDED_ARM, blinded_name, masking_groups
from visits import protocol_plan, scheduling

from .sdtm import Study, Variable, _v, code_from_label, study_day
from .sdtm_domains import criterion_code, short_text

_STUDY = _v("STUDYID", "Study Identifier", length=40, key=1)
_DOMAIN = _v("DOMAIN", "Domain Abbreviation", length=2)

TE_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _v("ETCD", "Element Code", length=8, key=2),
    _v("ELEMENT", "Description of Element", length=200),
    _v("TESTRL", "Rule for Start of Element", length=200),
    _v("TEENRL", "Rule for End of Element", length=200),
    _v("TEDUR", "Planned Duration of Element", length=20),
)
TA_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _v("ARMCD", "Planned Arm Code", length=20, key=2),
    _v("ARM", "Description of Planned Arm", length=200),
    _v("TAETORD", "Planned Order of Element within Arm", "integer", key=3),
    _v("ETCD", "Element Code", length=8),
    _v("ELEMENT", "Description of Element", length=200),
    _v("TABRANCH", "Branch", length=200),
    _v("TATRANS", "Transition Rule", length=200),
    _v("EPOCH", "Epoch", length=9),
)
TV_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _v("VISITNUM", "Visit Number", "double", key=2),
    _v("VISIT", "Visit Name", length=40),
    _v("VISITDY", "Planned Study Day of Visit", "integer"),
    _v("ARMCD", "Planned Arm Code", length=20, key=3),
    _v("ARM", "Description of Planned Arm", length=200),
    _v("TVSTRL", "Visit Start Rule", length=200),
)
TI_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _DOMAIN, _v("IETESTCD", "Incl/Excl Criterion Short Name", length=8, key=2),
    _v("IETEST", "Inclusion/Exclusion Criterion", length=200),
    _v("IECAT", "Inclusion/Exclusion Category", length=9),
    _v("TIVERS", "Protocol Criteria Versions", length=20, key=3),
)
DOMAINS = {
    "TE": ("Trial Elements", TE_VARIABLES),
    "TA": ("Trial Arms", TA_VARIABLES),
    "TV": ("Trial Visits", TV_VARIABLES),
    "TI": ("Trial Inclusion/Exclusion Criteria", TI_VARIABLES),
}

SCREENING = ("SCRN", "Screening", "Informed consent", "First study treatment (day 0)", None)
TREATMENT_END = "End of study treatment (treatment stop)"
EARLY_STOP = "Treatment stopped early (progression, toxicity, withdrawal, death): go to FU"


@dataclass(frozen=True)
class Element:
    etcd: str
    name: str
    start: str
    end: str | None
    duration: str | None
    epoch: str


def _follow_up(protocol: schema.Protocol) -> Element:
    plan = protocol.visit_plan
    if plan.follow_up_months is not None:
        anchor = {"enrollment": "enrolment", "first_dose": "the first study treatment"}.get(
            plan.follow_up_anchor or "", "day 0")
        end = f"{plan.follow_up_months} months after {anchor}, death or withdrawal"
    else:
        end = "End of study, death or withdrawal"
    return Element("FU", "Follow-up", TREATMENT_END, end, None, "FOLLOW-UP")


def _phases(protocol: schema.Protocol, arm: str) -> list[list[schema.Regimen]]:
    """The arm's regimens grouped by phase, in the order of their first cycle."""
    phases: dict[str, list[schema.Regimen]] = {}
    for regimen in protocol.regimens_for(arm):
        phases.setdefault(regimen.phase, []).append(regimen)
    return sorted(phases.values(), key=lambda rs: min(r.first_cycle or 1 for r in rs))


def _duration(regimens: list[schema.Regimen]) -> str | None:
    """ISO 8601 duration of a phase of fixed length (TEDUR), else None."""
    main = next((r for r in regimens if r.relative_day is None and r.interval), None)
    if main is None or main.cycles_max is None or main.cycles_min != main.cycles_max:
        return None
    interval = main.interval
    if interval.allowed != (interval.target_days, interval.target_days):
        return None
    return f"P{main.cycles_max * interval.target_days}D"


def _agents(protocol: schema.Protocol, codes: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(protocol.intervention(code).agent for code in codes))


def _arm_elements(protocol: schema.Protocol, arm: str) -> list[tuple[str, str, str, str | None]]:
    """(ELEMENT, TESTRL, TEENRL, TEDUR) of the arm's treatment phases, in order."""
    phases = _phases(protocol, arm)
    out = []
    for i, regimens in enumerate(phases):
        name = regimens[0].phase_label or " + ".join(
            _agents(protocol, (r.intervention for r in regimens)))
        first = regimens[0].first_cycle
        start = ("First study treatment (day 0)" if i == 0 else
                 f"Start of cycle {first}" if first else "End of the previous phase")
        following = phases[i + 1][0].first_cycle if i + 1 < len(phases) else None
        end = f"Start of cycle {following}" if following else TREATMENT_END
        out.append((name, start, end, _duration(regimens)))
    return out


@dataclass(frozen=True)
class ArmDesign:
    code: str
    label: str
    elements: tuple[Element, ...]
    branch: str | None


def design(protocol: schema.Protocol, visible: bool) -> list[ArmDesign]:
    """The arms and their element sequences as the user may see them (module doc)."""
    screening = Element(*SCREENING, "SCREENING")
    follow_up = _follow_up(protocol)
    randomized = protocol.design.allocation == "randomized"
    if not visible:
        groups = masking_groups((i.code, i.placebo_for or "") for i in protocol.interventions)
        names = sorted({blinded_name(groups[r.intervention]) if r.intervention in groups
                        else protocol.intervention(r.intervention).agent
                        for r in protocol.regimens})
        arms = [ArmDesign(code_from_label(BLINDED_ARM), BLINDED_ARM, (screening, Element(
            "TRT1", " + ".join(names) or "Study treatment", "First study treatment (day 0)",
            TREATMENT_END, None, "TREATMENT"), follow_up),
            "Randomized (allocation concealed)" if randomized else None)]
        return arms
    codes: dict[tuple, str] = {}
    arms = []
    for arm in protocol.arms:
        elements = [screening]
        for key in _arm_elements(protocol, arm.code):
            etcd = codes.setdefault(key, f"TRT{len(codes) + 1}")
            elements.append(Element(etcd, *key, "TREATMENT"))
        elements.append(follow_up)
        branch = (f"Randomized to {arm.label}" if randomized else
                  f"Assigned to {arm.label}" if len(protocol.arms) > 1 else None)
        arms.append(ArmDesign(arm.code, arm.label, tuple(elements), branch))
    return arms


def te_records(study: Study, arms: list[ArmDesign]) -> Iterator[tuple]:
    seen = {}
    for arm in arms:
        for e in arm.elements:
            seen.setdefault(e.etcd, e)
    for e in seen.values():
        yield (study.study_id, "TE", e.etcd, e.name, e.start, e.end, e.duration)


def ta_records(study: Study, arms: list[ArmDesign]) -> Iterator[tuple]:
    for arm in arms:
        for order, e in enumerate(arm.elements, 1):
            yield (study.study_id, "TA", arm.code, arm.label, order, e.etcd, e.name,
                   arm.branch if e.etcd == "SCRN" else None,
                   EARLY_STOP if e.epoch == "TREATMENT" else None, e.epoch)


# ------------------------------------------------------------------------------ trial visits


@dataclass(frozen=True)
class PlannedVisit:
    """One visit of TV: its code, planned study day (VISITDY; None: counted from the
    treatment stop, ``after_stop`` days after it) and start rule."""

    code: str
    day: int | None
    after_stop: int | None
    rule: str

    @property
    def order(self) -> tuple:
        if self.day is not None:
            return (0, self.day, self.code)
        return (1, self.after_stop, self.code)


_REGIMEN = re.compile(r" \([^()]*:[^()]*\)")  # "(ARM:phase)": the arm, not a rule


def _rule(visit: scheduling.PlannedVisit, anchor: str) -> str:
    before, after = (visit.target - visit.window_low).days, (visit.window_high - visit.target).days
    window = "" if before == after == 0 else f", window -{before} to +{after} days"
    return f"{anchor}{window}"


def _arm_visits(protocol: schema.Protocol, arm: str, start: dt.date,
                end_of_study: dt.date | None) -> dict[str, PlannedVisit]:
    visits: dict[str, PlannedVisit] = {}
    levels = protocol.dose_finding.frequency_levels if protocol.dose_finding else ()
    for level in [f.code for f in levels] or [None]:
        plan = protocol_plan.build_visit_plan(protocol, arm, start, frequency_level=level,
                                              end_of_study=end_of_study, enrolled_on=start)
        for stop in (None, (start, "nominal treatment stop")):
            state = scheduling.SubjectState(day0=start, treatment_stop=stop)
            for v in scheduling.plan_visits(plan, state):
                if stop is None:
                    anchor = _REGIMEN.sub("", v.anchor).replace(" target", "")
                    found = PlannedVisit(v.key, study_day(v.target, start), None,
                                         _rule(v, anchor))
                elif v.kind == "follow_up":
                    days = (v.target - start).days
                    found = PlannedVisit(v.key, None, days,
                                         _rule(v, f"treatment stop + {days} d"))
                else:
                    continue
                known = visits.get(v.key)
                if known is None or found.order < known.order:
                    visits[v.key] = found
    return visits


def planned_visits(protocols: Iterable[schema.Protocol], start: dt.date,
                   end_of_study: dt.date | None) -> dict[str, dict[str, PlannedVisit]]:
    """Arm code -> visit code -> planned visit, over every protocol version given (a code
    planned by several keeps its earliest day)."""
    arms: dict[str, dict[str, PlannedVisit]] = {}
    for protocol in protocols:
        for arm in protocol.arms:
            mine = arms.setdefault(arm.code, {})
            for code, visit in _arm_visits(protocol, arm.code, start, end_of_study).items():
                if code not in mine or visit.order < mine[code].order:
                    mine[code] = visit
    return arms


def visit_numbers(arms: dict[str, dict[str, PlannedVisit]]) -> dict[str, int]:
    """VISITNUM of every planned visit code (module doc)."""
    merged: dict[str, PlannedVisit] = {}
    for visits in arms.values():
        for code, visit in visits.items():
            if code not in merged or visit.order < merged[code].order:
                merged[code] = visit
    ordered = sorted(merged.values(), key=lambda v: v.order)
    return {v.code: n for n, v in enumerate(ordered, 1)}


def tv_records(study: Study, arms: dict[str, dict[str, PlannedVisit]], labels: dict[str, str],
               visible: bool) -> Iterator[tuple]:
    """TV records (module doc); ``labels``: arm code -> ARM."""
    numbers = visit_numbers(arms)
    schedules = list(arms.values())
    per_arm = visible and any(s != schedules[0] for s in schedules[1:])
    rows = []
    if per_arm:
        for code, visits in arms.items():
            rows += [(numbers[v.code], v, code, labels.get(code)) for v in visits.values()]
    else:
        merged: dict[str, PlannedVisit] = {}
        for visits in schedules:
            for v in visits.values():
                if v.code not in merged or v.order < merged[v.code].order:
                    merged[v.code] = v
        rows = [(numbers[v.code], v, None, None) for v in merged.values()]
    for number, v, armcd, arm in sorted(rows, key=lambda r: (r[0], r[2] or "")):
        yield (study.study_id, "TV", float(number), v.code, v.day, armcd, arm, v.rule)


# ------------------------------------------------------------------------ trial eligibility


def ti_records(study: Study, versions: Iterable[tuple[int, schema.Protocol]]) -> Iterator[tuple]:
    """TI records of every protocol version whose criteria differ from the one before."""
    previous = None
    for number, protocol in versions:
        eligibility = protocol.eligibility
        criteria = [("inclusion", c) for c in eligibility.inclusion or ()] + [
            ("exclusion", c) for c in eligibility.exclusion or ()]
        current = [(kind, c.number, c.text) for kind, c in criteria]
        if current == previous:
            continue
        previous = current
        for kind, c in criteria:
            yield (study.study_id, "TI", criterion_code(kind, c.number), short_text(c.text),
                   kind.upper(), str(number))
