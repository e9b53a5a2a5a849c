"""Unit tests for trials.protocol_schema and the five seed protocol files (pure Python)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import subprocess
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

import pytest

from trials.protocol_schema import (
    DOSE_UNITS,
    Issue,
    Protocol,
    ProtocolError,
    canonical_json,
    load_all,
    load_protocol,
    load_protocol_text,
    parse_protocol,
    protocol_digest,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SEEDS = REPO_ROOT / "seeds"
SHARED_SEEDS = REPO_ROOT.parent / "shared" / "seeds"
STEMS = ["NCT05699811", "SHEH-MSC-L", "NCT05962450", "NCT05672420", "NCT06722105"]
UNITS = ", ".join(DOSE_UNITS)


@pytest.fixture(scope="module")
def protocols() -> dict[str, Protocol]:
    return {stem: load_protocol(SEEDS / f"{stem}.toml") for stem in STEMS}


def raw(stem: str) -> dict:
    return tomllib.loads((SEEDS / f"{stem}.toml").read_text(encoding="utf-8"))


# --- a tiny TOML writer (everything inline) so malformed variants go through the parser ---


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, list):
        return "[\n" + ",\n".join(_toml_value(x) for x in v) + "\n]"
    if isinstance(v, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items())
        return "{" + inner.replace("\n", " ") + "}"
    raise TypeError(type(v))


def dumps(data: dict) -> str:
    return "\n".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items()) + "\n"


def refuse(stem: str, mutate) -> list[str]:
    """Mutate a valid seed, write it as TOML, load it; return the error lines."""
    data = copy.deepcopy(raw(stem))
    mutate(data)
    with pytest.raises(ProtocolError) as info:
        load_protocol_text(dumps(data), f"{stem}.toml", base_dir=SEEDS)
    lines = str(info.value).splitlines()
    assert lines == [str(i) for i in info.value.issues]
    return lines


# --- the five files ------------------------------------------------------------------------


def test_five_files_load_with_names_sources_and_digests(protocols):
    assert sorted(p.stem for p in SEEDS.glob("*.toml")) == sorted(STEMS)
    assert [p.trial.identifier for p in load_all(SEEDS)] == sorted(STEMS)
    for stem, p in protocols.items():
        assert p.trial.short_name == stem
        src = SEEDS / p.source
        assert src.parent == SEEDS / "source" and src.is_file()
        assert p.digest == protocol_digest(SEEDS / f"{stem}.toml")
        assert p.source_digest == protocol_digest(src.read_text(encoding="utf-8"))
        assert p.safety.ctcae_version == "5.0"
    sources = sorted(p.source for p in protocols.values())
    assert sources == sorted(f"source/{f.name}" for f in (SEEDS / "source").glob("*.txt"))


@pytest.mark.skipif(not SHARED_SEEDS.is_dir(), reason="shared/seeds not beside the repo")
def test_sources_are_unchanged_copies():
    for f in SHARED_SEEDS.glob("*.txt"):
        assert (SEEDS / "source" / f.name).read_bytes() == f.read_bytes()


def test_seed000_identity_design_arms(protocols):
    p = protocols["NCT05699811"]
    t = p.trial
    assert (t.registry, t.registry_id, t.phase, t.status) == (
        "ctgov", "NCT05699811", "phase1_2", "recruiting")
    assert t.target_enrollment == 40
    assert (t.start_date, t.completion_date) == (dt.date(2023, 2, 23), dt.date(2026, 12, 31))
    assert [(s.name, s.city, s.country) for s in t.sites] == [
        ("Department of Biotherapeutic, Chinese PLA General Hospital", "Beijing", "China")]
    d = p.design
    assert (d.allocation, d.model, d.masking, d.randomization) == (
        "non_randomized", "sequential", "none", None)
    assert [(a.code, a.type, a.sequence, a.size_min, a.size_max) for a in p.arms] == [
        ("MONO", "experimental", 1, 3, 9), ("COMBO", "experimental", 2, 3, 9)]
    assert p.arm("MONO").cohort_size == 3
    assert all(a.blinded_label is None for a in p.arms)
    assert p.endpoints is None and "endpoints" in p.not_stated


def test_seed000_regimens_intervals_and_offsets(protocols):
    p = protocols["NCT05699811"]
    mono = p.regimens_for("MONO")
    assert len(mono) == 1
    r = mono[0]
    assert (r.dose_mode, r.cycles_min, r.cycles_max) == ("dose_finding", 1, 4)
    assert (r.interval.target_days, r.interval.min_days, r.interval.max_days) == (28, 28, 42)

    induction = {r.intervention: r for r in p.regimens_for("COMBO", "immunochemo")}
    assert set(induction) == {"MSC-IFNA", "NAB-PTX", "CTX", "APD1"}
    offsets = {k: (r.relative_to, r.relative_day) for k, r in induction.items()}
    assert offsets == {"MSC-IFNA": (None, None), "NAB-PTX": ("MSC-IFNA", -5),
                       "CTX": ("MSC-IFNA", -4), "APD1": ("MSC-IFNA", 7)}
    doses = {k: (r.dose_value, r.dose_unit, r.dose_basis) for k, r in induction.items()}
    assert doses["NAB-PTX"] == (125, "mg/m2", "per_m2")
    assert doses["CTX"] == (200, "mg/m2", "per_m2")
    assert doses["APD1"] == (200, "mg", "flat")
    for r in induction.values():
        assert r.interval.allowed == (28, 42)
        assert (r.first_cycle, r.cycles_min, r.cycles_max) == (1, 4, 4)
        if r.relative_day is not None:  # the offset lies inside the cycle
            assert abs(r.relative_day) < r.interval.allowed[1]

    consolidation = {r.intervention: r for r in p.regimens_for("COMBO", "consolidation")}
    assert set(consolidation) == {"MSC-IFNA", "APD1"}
    assert consolidation["APD1"].relative_day == 7
    assert {r.first_cycle for r in consolidation.values()} == {5}

    (maint,) = p.regimens_for("COMBO", "maintenance")
    assert maint.intervention == "APD1" and maint.relative_day is None
    assert (maint.first_cycle, maint.cycles_min, maint.cycles_max) == (9, 4, 4)
    assert maint.interval.target_days == 21 and maint.interval.allowed == (21, 21)
    assert p.intervention("MSC-IFNA").cell_product
    assert not p.intervention("APD1").cell_product


def test_seed000_dose_chain_keeps_the_written_levels(protocols):
    df = protocols["NCT05699811"].dose_finding
    assert (df.method, df.direction, df.target) == ("rule_based", "de_escalation",
                                                    "tolerable_dose")
    assert (df.intervention, df.arms, df.cohort_size, df.trigger_rule) == (
        "MSC-IFNA", ("MONO",), 3, "TI")
    assert df.de_escalation_pct == 70 and df.open_ended
    values = [lv.dose_value for lv in df.levels]
    assert values == [2e6, 6e5, 2e5]
    assert [lv.order for lv in df.levels] == [0, 1, 2]
    assert {lv.dose_unit for lv in df.levels} == {"cells/kg"}
    keep = 1 - Fraction(70, 100)
    assert Fraction(values[0]) * keep == Fraction(values[1])  # first step is exactly 30 %
    assert Fraction(values[1]) * keep == 180_000 != Fraction(values[2])  # written 2e5, not 1.8e5
    assert "1.8×10^5" in df.note


def test_seed000_visit_plan(protocols):
    vp = protocols["NCT05699811"].visit_plan
    a = {x.code: x for x in vp.assessments}
    assert (a["EFF-TX"].interval_weeks, a["EFF-TX"].interval_days, a["EFF-TX"].period) == (
        8, 56, "treatment")
    assert a["EFF-TX"].at_baseline
    assert "confirmed progressive disease" in a["EFF-TX"].until
    assert (a["EFF-FU"].interval_weeks, a["EFF-FU"].period) == (12, "follow_up")
    assert set(a["EFF-FU"].kind) == {"efficacy", "safety"}
    assert a["TRAE"].at_days == (28,)
    assert vp.screening_window_days == 14
    assert vp.response_criteria == ()  # the document names none
    assert vp.follow_up_months is None and "follow_up_months" in vp.not_stated
    assert [v.kind for v in vp.visits] == ["screening", "baseline", "cycle", "cycle"]


def test_seed000_ti_rule(protocols):
    p = protocols["NCT05699811"]
    (rule,) = p.toxicity_rules
    assert (rule.code, rule.kind, rule.min_grade, rule.max_grade) == ("TI", "TI", 3, 4)
    assert (rule.min_duration_days, rule.window_days, rule.window_anchor) == (
        7, 28, "each_administration")
    assert rule.window_interventions == rule.attribution_interventions == ("MSC-IFNA",)
    assert (rule.min_attribution, rule.arms) == ("possible", ("MONO",))
    assert p.safety.ae_follow_up_days == 28 and "ctcae_version" in p.safety.inferred
    ok = {"grade": 3, "attribution": "possible", "duration_days": 7,
          "days_after_administration": 28}
    assert rule.qualifies(**ok)
    assert not rule.qualifies(**{**ok, "days_after_administration": 29})
    assert not rule.qualifies(**{**ok, "duration_days": 6})
    assert not rule.qualifies(**{**ok, "grade": 2})
    assert not rule.qualifies(**{**ok, "grade": 5})
    assert not rule.qualifies(**{**ok, "attribution": "unlikely"})
    assert rule.qualifies(**{**ok, "grade": 4, "attribution": "definite"})
    kwargs = rule.to_rule_kwargs()
    assert (kwargs["code"], kwargs["window_days"], kwargs["min_duration_days"]) == ("TI", 28, 7)


def test_seed000_eligibility(protocols):
    e = protocols["NCT05699811"].eligibility
    assert (e.min_age_years, e.max_age_years, e.sex, e.numbering) == (18, 75, "all", "source")
    assert [c.number for c in e.inclusion] == list(range(2, 11))
    assert [c.number for c in e.exclusion] == list(range(2, 11))
    assert e.inclusion[2].text == "Have at least one measurable target lesion."
    assert "(>10 mg daily prednisone equivalent)" in e.exclusion[1].text
    assert e.age_ok(18) and e.age_ok(75) and not e.age_ok(17) and not e.age_ok(76)
    assert e.sex_ok("female") and e.sex_ok("male")


def test_seed001_no_registry_id_and_crm_levels(protocols):
    p = protocols["SHEH-MSC-L"]
    t = p.trial
    assert (t.registry_id, t.registry, t.identifier) == (None, "sponsor", "SHEH-MSC-L")
    assert "no NCT or other registry id" in t.no_registry_id
    assert {"title", "phase", "sponsor", "start_date"} <= set(t.not_stated)
    assert (t.title, t.phase, t.sponsor, t.target_enrollment) == (None, None, None, 30)
    assert [s.name for s in t.sites] == ["Shanghai East Hospital (South Division)"]
    assert (p.design.allocation, p.design.model, p.design.masking) == (
        "not_applicable", "single_group", "none")
    assert len(p.arms) == 1
    df = p.dose_finding
    assert [lv.dose_value for lv in df.levels] == [1e6, 2e6, 3e6]
    assert (df.method, df.model, df.direction, df.target, df.target_toxicity) == (
        "model_based", "crm", "escalation", "mtd", 0.35)
    assert "model" in df.inferred and df.cohort_size is None
    (r,) = p.regimens
    assert (r.interval.target_days, r.cycles_min, r.cycles_max) == (21, 6, None)
    (rule,) = p.toxicity_rules
    assert (rule.kind, rule.min_grade, rule.max_grade, rule.min_duration_days) == (
        "DLT", 3, None, None)
    assert (rule.window_days, rule.window_anchor) == (120, "first_administration")
    assert rule.attribution_interventions == ("MSC-L",) and rule.min_attribution == "possible"
    assert rule.qualifies(grade=5, attribution="probable", duration_days=None,
                          days_after_administration=100)
    e = p.eligibility
    assert (e.min_age_years, e.max_age_years, e.sex, e.inclusion, e.exclusion) == (
        None, None, None, None, None)
    assert e.age_ok(90)  # no limit stated, nothing to refuse
    frames = [(x.measure.split(" (")[0], x.time_frame_months, x.time_frame_days)
              for x in p.endpoints]
    assert len(frames) == 7 and {x.kind for x in p.endpoints} == {"unclassified"}
    assert frames[0] == ("Dose-Limiting Toxicities rate", 4, None)
    assert frames[-1] == ("MSC-L kinetics in peripheral blood", None, 21)
    assert p.visit_plan.follow_up_months == 24


def test_seed002_randomized_open_label_hcc(protocols):
    p = protocols["NCT05962450"]
    d = p.design
    assert (d.allocation, d.model, d.masking) == ("randomized", "parallel", "none")
    assert d.randomization.ratio == {"RPI": 1, "RP": 1}
    assert d.randomization.block_sizes is None
    assert {"block_sizes", "stratification"} <= set(d.randomization.not_stated)
    assert [(a.code, a.type) for a in p.arms] == [("RPI", "experimental"),
                                                  ("RP", "active_comparator")]
    inkt = next(r for r in p.regimens if r.intervention == "INKT")
    assert inkt.arm == "RPI"
    assert (inkt.dose_mode, inkt.dose_min, inkt.dose_max, inkt.dose_unit) == (
        "range", 1e8, 1e9, "cells/m2")
    assert inkt.dose_value is None and inkt.dose_specified
    assert (inkt.interval.target_days, inkt.cycles_max) == (14, 6)
    label = [r for r in p.regimens if r.intervention in ("PD1", "REGO")]
    assert len(label) == 4 and all(r.dose_mode == "per_label" for r in label)
    assert not any(r.dose_specified for r in label)
    assert {r.arm for r in label} == {"RPI", "RP"}
    vp = p.visit_plan
    img = next(a for a in vp.assessments if a.code == "IMG")
    assert (img.interval_weeks, img.at_baseline, img.response_criteria) == (
        8, True, ("mRECIST", "iRECIST"))
    qol = next(a for a in vp.assessments if a.code == "QOL")
    assert qol.instruments == ("EORTC QLQ-C30",) and qol.interval_weeks is None
    assert vp.response_criteria == ("mRECIST", "iRECIST") and vp.follow_up_months == 36
    assert p.safety.ctcae_version == "5.0" and p.safety.inferred == ()  # stated in the text
    assert p.toxicity_rules is None and "toxicity_rules" in p.not_stated
    kinds = [(x.kind, x.time_frame_months) for x in p.endpoints]
    assert kinds[0] == ("primary", 24) and len(kinds) == 8
    assert {k for k, _ in kinds[1:]} == {"secondary"} and (("secondary", 36) in kinds)
    e = p.eligibility
    assert (e.min_age_years, e.max_age_years, e.sex, e.numbering) == (18, 75, "all",
                                                                      "assigned")
    assert (len(e.inclusion), len(e.exclusion)) == (6, 12)
    assert p.trial.start_date == dt.date(2023, 8, 1)


def test_seed003_grid_without_numbers(protocols):
    p = protocols["NCT05672420"]
    assert [(s.name, s.city) for s in p.trial.sites] == [
        ("Wuhan Central Hospital", "Wuhan"), ("Wuhan Union Hospital", "Wuhan"),
        ("Wuhan Tongji Hospital", "Wuhan")]
    assert p.trial.target_enrollment is None and "target_enrollment" in p.trial.not_stated
    df = p.dose_finding
    assert [lv.code for lv in df.levels] == list("ABCDE")
    assert all(lv.dose_value is None and "dose_value" in lv.not_stated for lv in df.levels)
    assert not any(lv.dose_specified for lv in df.levels)
    assert [f.code for f in df.frequency_levels] == ["F1", "F2", "F3"]
    assert (df.method, df.direction, df.target) == ("not_stated", "escalation", "rp2d")
    (r,) = p.regimens
    assert (r.dose_mode, r.course_days, r.interval) == ("dose_finding", 14, None)
    assert p.visit_plan.follow_up_months == 24
    e = p.eligibility
    assert (e.min_age_years, e.max_age_years, e.sex) == (18, 75, "all")
    assert [c.number for c in e.inclusion] == list(range(1, 9))
    assert [c.number for c in e.exclusion] == list(range(1, 27))
    assert p.toxicity_rules is None and p.endpoints is None


def test_seed004_double_blind_three_arms(protocols):
    p = protocols["NCT06722105"]
    d = p.design
    assert (d.allocation, d.model, d.masking, d.is_blinded) == (
        "randomized", "parallel", "double", True)
    assert d.randomization.ratio == {"MSC_M0_M3": 1, "MSC_M0_PBO_M3": 1, "PBO_M0_M3": 1}
    assert "ratio" in d.randomization.inferred  # not printed: flagged for confirmation
    assert [a.type for a in p.arms] == ["experimental", "experimental", "placebo"]
    labels = [a.blinded_label for a in p.arms]
    assert labels == ["Treatment group A", "Treatment group B", "Treatment group C"]
    assert p.intervention("PBO").type == "placebo"
    assert p.intervention("PBO").placebo_for == "MSC-AT"
    schedule = {a.code: sorted((v, r.intervention) for r in p.regimens_for(a.code)
                               for v in r.at_visits) for a in p.arms}
    assert schedule == {
        "MSC_M0_M3": [("M0", "MSC-AT"), ("M3", "MSC-AT")],
        "MSC_M0_PBO_M3": [("M0", "MSC-AT"), ("M3", "PBO")],
        "PBO_M0_M3": [("M0", "PBO"), ("M3", "PBO")],
    }
    msc = p.regimens_for("MSC_M0_M3")[0]
    assert (msc.dose_value, msc.dose_unit, msc.dose_basis) == (2e6, "cells/kg", "per_kg")
    assert [(v.code, v.month) for v in p.visit_plan.visits] == [("M0", 0), ("M3", 3)]
    e = p.eligibility
    assert (e.min_age_years, e.max_age_years, e.sex) == (18, 70, "all")
    assert not e.age_ok(71)
    # No site in the document: the sponsor is entered as one site, marked inferred.
    assert "sites" in p.trial.inferred and p.trial.note
    (site,) = p.trial.sites
    assert (site.name, site.city, site.country) == (
        "Assistance Publique - Hôpitaux de Paris", "Paris", "France")
    assert site.inferred == ("name", "city", "country") and site.note


def test_to_dict_is_json_and_canonical(protocols):
    for p in protocols.values():
        d = json.loads(json.dumps(p.to_dict()))
        assert "file" not in d and d["digest"] == p.digest
        assert d["trial"]["short_name"] == p.trial.short_name
        assert len(d["arms"]) == len(p.arms)
        assert canonical_json(p) == canonical_json(load_protocol(p.file))
    d = protocols["NCT05699811"].to_dict()
    assert d["trial"]["start_date"] == "2023-02-23"
    assert d["dose_finding"]["levels"][1]["dose_value"] == 600000.0


def test_module_is_pure_python_without_django():
    code = ("import sys, trials.protocol_schema as m; "
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'django'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_digest_is_stable_and_detects_changes(tmp_path):
    path = SEEDS / "NCT05699811.toml"
    text = path.read_text(encoding="utf-8")
    digest = protocol_digest(path)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert protocol_digest(text) == digest == protocol_digest(text.encode())
    assert protocol_digest(text.replace("\n", "\r\n")) == digest
    changed = text.replace("de_escalation_pct = 70", "de_escalation_pct = 70  # same value")
    assert changed != text and protocol_digest(changed) != digest
    assert load_protocol_text(changed, "x.toml", base_dir=SEEDS).digest == protocol_digest(
        changed)


# --- every quote is in its source --------------------------------------------------------


def _walk_quotes(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "quote":
                yield from ((path, q) for q in ([v] if isinstance(v, str) else v))
            elif k == "text" and re.search(r"\.(inclusion|exclusion)\[\d+\]$", path):
                yield path, v
            else:
                yield from _walk_quotes(v, f"{path}.{k}" if path else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_quotes(v, f"{path}[{i}]")


def _norm(s: str) -> str:  # independent of the module's normalise_quote
    return re.sub(r"\s+", " ", s.replace("\\", "")).strip()


@pytest.mark.parametrize("stem", STEMS)
def test_every_quote_occurs_in_its_source(stem):
    data = raw(stem)
    source = _norm((SEEDS / data["source"]).read_text(encoding="utf-8"))
    quotes = list(_walk_quotes(data))
    assert len(quotes) >= 15
    missing = [(p, q) for p, q in quotes if _norm(q) not in source]
    assert missing == []


def test_quote_not_in_source_is_refused():
    def mutate(d):
        d["interventions"][1]["quote"] = "Nab paclitaxel 150mg/m2"
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: interventions[1].quote: quote not found in "
        "source/000_d92a8cda55024447.txt: 'Nab paclitaxel 150mg/m2'"]


def test_criterion_text_not_in_source_is_refused():
    def mutate(d):
        d["eligibility"]["inclusion"][0]["text"] = "Aged between 18 and 80 years old"
    assert refuse("NCT05672420", mutate) == [
        "NCT05672420.toml: eligibility.inclusion[0].text: quote not found in "
        "source/003_cadc227cebf75bce.txt: 'Aged between 18 and 80 years old'"]


# --- malformed variants ------------------------------------------------------------------


def test_missing_arm_refused():
    lines = refuse("SHEH-MSC-L", lambda d: d.update(arms=[]))
    assert "SHEH-MSC-L.toml: arms: at least one arm is required" in lines
    assert "SHEH-MSC-L.toml: regimens[0].arm: unknown arm 'MSC-L'" in lines


def test_absent_arms_table_refused():
    lines = refuse("SHEH-MSC-L", lambda d: d.pop("arms"))
    assert lines[0] == "SHEH-MSC-L.toml: arms: missing required field"


def test_unknown_dose_unit_refused():
    def mutate(d):
        d["regimens"][2]["dose_unit"] = "mg/lb"
    assert refuse("NCT05699811", mutate) == [
        f"NCT05699811.toml: regimens[2].dose_unit: unknown dose unit 'mg/lb' (allowed: {UNITS})"]


def test_dose_basis_must_match_unit():
    def mutate(d):
        d["regimens"][2]["dose_basis"] = "per_kg"
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: regimens[2].dose_basis: 'per_kg' does not match dose_unit "
        "'mg/m2' (expected 'per_m2')"]


def test_negative_interval_refused():
    def mutate(d):
        d["regimens"][0]["interval"]["target_days"] = -28
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: regimens[0].interval.target_days: must be > 0, got -28"]


def test_duplicate_arm_code_refused():
    def mutate(d):
        d["arms"][1]["code"] = "MSC_M0_M3"
    lines = refuse("NCT06722105", mutate)
    assert lines[0] == (
        "NCT06722105.toml: arms[1].code: duplicate arm code 'MSC_M0_M3' (also arms[0].code)")
    assert ("NCT06722105.toml: design.randomization.ratio: keys do not match the arm codes "
            "(unknown MSC_M0_PBO_M3)") in lines


def test_ratio_not_matching_arms_refused():
    def mutate(d):
        d["design"]["randomization"]["ratio"] = {"RPI": 2, "RPX": 1}
    assert refuse("NCT05962450", mutate) == [
        "NCT05962450.toml: design.randomization.ratio: keys do not match the arm codes "
        "(missing RP; unknown RPX)"]


def test_window_narrower_than_target_refused():
    def mutate(d):
        d["regimens"][0]["interval"].update(min_days=30)
        d["regimens"][1]["interval"].update(max_days=21)
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: regimens[0].interval.min_days: min_days (30) is greater than "
        "target_days (28)",
        "NCT05699811.toml: regimens[1].interval.max_days: max_days (21) is less than "
        "target_days (28)",
    ]


def test_unknown_ctcae_version_refused():
    def mutate(d):
        d["safety"]["ctcae_version"] = "4.03"
    assert refuse("NCT05962450", mutate) == [
        "NCT05962450.toml: safety.ctcae_version: unsupported CTCAE version '4.03' "
        "(only '5.0' is accepted)"]


def test_cycle_offset_outside_cycle_refused():
    data = raw("NCT05699811")
    data["regimens"][2]["relative_day"] = -41  # still inside a 28-42 day cycle
    assert parse_protocol(data, "ok.toml", base_dir=SEEDS).regimens[2].relative_day == -41

    def mutate(d):
        d["regimens"][2]["relative_day"] = -42
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: regimens[2].relative_day: -42 lies outside the cycle "
        "(|relative_day| must be < the interval's max_days 42)"]


def test_regimen_unknown_arm_and_intervention_refused():
    def mutate(d):
        d["regimens"][0]["arm"] = "ARM9"
        d["regimens"][1]["intervention"] = "PEMBRO"
    assert refuse("NCT05962450", mutate) == [
        "NCT05962450.toml: regimens[0].arm: unknown arm 'ARM9'",
        "NCT05962450.toml: regimens[1].intervention: unknown intervention 'PEMBRO'",
    ]


def test_age_min_above_max_refused():
    def mutate(d):
        d["eligibility"]["min_age_years"] = 71
    assert refuse("NCT06722105", mutate) == [
        "NCT06722105.toml: eligibility.min_age_years: min_age_years (71) is greater than "
        "max_age_years (70)"]


def test_missing_fields_wrong_types_and_enums_refused():
    def mutate(d):
        del d["design"]["masking"]
        del d["trial"]["title"]
        d["trial"]["target_enrollment"] = "40"
        d["design"]["model"] = "paralel"
        d["arms"][0]["cohort"] = 3
    assert refuse("NCT05962450", mutate) == [
        "NCT05962450.toml: arms[0].cohort: unknown field",
        "NCT05962450.toml: trial.title: missing (give a value or list it in not_stated)",
        "NCT05962450.toml: trial.target_enrollment: expected integer, got string",
        "NCT05962450.toml: design.model: unknown value 'paralel' (allowed: single_group, "
        "parallel, sequential, crossover, factorial)",
        "NCT05962450.toml: design.masking: missing required field",
    ]


def test_blinded_labels_must_be_neutral():
    def mutate(d):
        d["arms"][2]["blinded_label"] = "Placebo group"
    assert refuse("NCT06722105", mutate) == [
        "NCT06722105.toml: arms[2].blinded_label: 'Placebo group' is not neutral "
        "(reveals placebo)",
        "NCT06722105.toml: arms: blinded labels must share one neutral label set "
        "(got 'Treatment group A', 'Treatment group B', 'Placebo group')",
    ]

    def drop(d):
        del d["arms"][0]["blinded_label"]
    assert refuse("NCT06722105", drop) == [
        "NCT06722105.toml: arms[0].blinded_label: required when design.masking is 'double'"]


def test_inferred_and_not_stated_are_checked():
    def mutate(d):
        d["design"]["randomization"].pop("note")
        d["design"]["randomization"]["block_sizes"] = [4]
    assert refuse("NCT06722105", mutate) == [
        "NCT06722105.toml: design.randomization.block_sizes: has a value but is listed in "
        "not_stated",
        "NCT06722105.toml: design.randomization.block_sizes[0]: block size 4 is not a "
        "multiple of the ratio total 3",
        "NCT06722105.toml: design.randomization.note: required when fields are inferred "
        "(say how)",
    ]


def test_randomization_required_when_randomized():
    lines = refuse("NCT05962450", lambda d: d["design"].pop("randomization"))
    assert lines == ["NCT05962450.toml: design.randomization: required when allocation is "
                     "'randomized'"]


def test_multiple_errors_reported_at_once():
    def mutate(d):
        d["regimens"][0]["interval"]["target_days"] = 0
        d["regimens"][2]["dose_unit"] = "mg/lb"
        d["regimens"][3]["relative_day"] = 50
        d["safety"]["ctcae_version"] = "6.0"
        d["eligibility"]["max_age_years"] = 17
    assert refuse("NCT05699811", mutate) == [
        "NCT05699811.toml: regimens[0].interval.target_days: must be > 0, got 0",
        f"NCT05699811.toml: regimens[2].dose_unit: unknown dose unit 'mg/lb' (allowed: {UNITS})",
        "NCT05699811.toml: eligibility.min_age_years: min_age_years (18) is greater than "
        "max_age_years (17)",
        "NCT05699811.toml: safety.ctcae_version: unsupported CTCAE version '6.0' "
        "(only '5.0' is accepted)",
        "NCT05699811.toml: regimens[3].relative_day: +50 lies outside the cycle "
        "(|relative_day| must be < the interval's max_days 42)",
    ]


def test_toml_syntax_error_and_file_path_in_messages(tmp_path):
    with pytest.raises(ProtocolError) as info:
        load_protocol_text("schema_version = \n", "broken.toml")
    (issue,) = info.value.issues
    assert isinstance(issue, Issue) and (issue.file, issue.path) == ("broken.toml", "(toml)")

    text = (SEEDS / "NCT05699811.toml").read_text(encoding="utf-8")
    target = tmp_path / "NCT05699811.toml"
    target.write_text(text.replace('ctcae_version = "5.0"', 'ctcae_version = "4.0"'))
    with pytest.raises(ProtocolError) as info:
        load_protocol(target)  # source/ is not beside the copy: both problems are reported
    assert str(info.value).splitlines() == [
        f"{target}: source: cannot read source/000_d92a8cda55024447.txt: "
        "No such file or directory",
        f"{target}: safety.ctcae_version: unsupported CTCAE version '4.0' "
        "(only '5.0' is accepted)",
    ]


def test_follow_up_visit_must_declare_its_interval():
    def mutate(d):
        visit = d["visit_plan"]["visits"][1]
        del visit["interval_weeks"]
        visit["inferred"] = ["window_days"]
    assert refuse("NCT05672420", mutate) == [
        "NCT05672420.toml: visit_plan.visits[1].interval_weeks: missing (give a value or list "
        "it in not_stated)"]


def test_frequency_level_must_declare_its_infusions_per_course():
    def mutate(d):
        level = d["dose_finding"]["frequency_levels"][0]
        del level["infusions"]
        level.pop("inferred")
    assert refuse("NCT05672420", mutate) == [
        "NCT05672420.toml: dose_finding.frequency_levels[0].infusions: missing (give a value "
        "or list it in not_stated)"]
