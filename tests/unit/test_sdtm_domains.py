"""SDTM SV, DS, IE, TS (``exports.sdtm_domains``) and TU, TR, RS (``exports.sdtm_tumours``)
records (SDTMIG 3.4; no database)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from exports import domains, sdtm, sdtm_domains, sdtm_tumours, terminology
from tests.unit.test_sdtm import DAY0, STUDY, as_dict
from trials.vocabulary import RESPONSE_CODES


@pytest.mark.parametrize("domain", [*sdtm_domains.DOMAINS, *sdtm_tumours.DOMAINS])
def test_variables_follow_sdtm_limits(domain):
    _, variables = domains.ALL_DOMAINS[domain]
    for v in variables:
        assert len(v.name) <= 8 and 0 < len(v.label) <= 40, v.name
        assert v.length is None or 1 <= v.length <= 200, v.name
    assert [v.name for v in variables][:2] == ["STUDYID", "DOMAIN"]
    keys = sorted(v.key_sequence for v in variables if v.key_sequence)
    assert keys == list(range(1, len(keys) + 1))


def visit(**kwargs):
    row = {"site_code": "A1", "subjid": "001", "visitnum": 2, "visit": "C2", "kind": "infusion",
           "status": "done", "status_reason": "", "actual_date": DAY0 + dt.timedelta(days=28),
           "target_date": DAY0 + dt.timedelta(days=28), "day0": DAY0,
           "treatment_stop_date": None}
    return SimpleNamespace(**{**row, **kwargs})


def test_sv_planned_missed_and_unscheduled_visits():
    done = as_dict(sdtm_domains.SV_VARIABLES, sdtm_domains.sv_record(STUDY, visit()))
    assert (done["SVPRESP"], done["SVOCCUR"], done["SVSTDTC"], done["SVSTDY"],
            done["EPOCH"], done["VISITNUM"]) == ("Y", "Y", "2025-03-03", 29, "TREATMENT", 2.0)
    missed = as_dict(sdtm_domains.SV_VARIABLES, sdtm_domains.sv_record(STUDY, visit(
        status="missed", status_reason="Patient hospitalised", actual_date=None)))
    assert (missed["SVOCCUR"], missed["SVREASOC"], missed["SVSTDTC"]) == (
        "N", "Patient hospitalised", None)
    extra = as_dict(sdtm_domains.SV_VARIABLES, sdtm_domains.sv_record(STUDY, visit(
        kind="unscheduled", visitnum=2.01)))
    assert (extra["SVPRESP"], extra["SVOCCUR"], extra["SVUPDES"], extra["VISITNUM"]) == (
        None, None, "UNSCHEDULED VISIT", 2.01)


def subject(**kwargs):
    row = {"site_code": "A1", "subjid": "001", "consent_date": DAY0 - dt.timedelta(days=10),
           "enrolled_on": DAY0, "status": "off_study", "status_date": DAY0 + dt.timedelta(100),
           "status_reason": "progression", "treatment_stop_date": DAY0 + dt.timedelta(60),
           "treatment_stop_reason": "intolerable_toxicity", "day0": DAY0}
    return SimpleNamespace(**{**row, **kwargs})


def test_ds_milestones_and_disposition_events():
    records = [as_dict(sdtm_domains.DS_VARIABLES, r)
               for r in sdtm_domains.DsMapper(STUDY, randomized=True)(subject())]
    assert [(r["DSSEQ"], r["DSDECOD"], r["DSCAT"]) for r in records] == [
        (1, "INFORMED CONSENT OBTAINED", "PROTOCOL MILESTONE"),
        (2, "RANDOMIZED", "PROTOCOL MILESTONE"),
        (3, "ADVERSE EVENT", "DISPOSITION EVENT"),
        (4, "PROGRESSIVE DISEASE", "DISPOSITION EVENT")]
    assert records[0]["EPOCH"] == "SCREENING" and records[0]["DSSTDY"] == -10
    failed = list(sdtm_domains.DsMapper(STUDY, randomized=False)(subject(
        status="screen_failure", status_reason="ANC too low", enrolled_on=None,
        treatment_stop_date=None, status_date=DAY0)))
    assert [r[5] for r in failed] == ["INFORMED CONSENT OBTAINED", "SCREEN FAILURE"]
    assert failed[1][4] == "ANC TOO LOW"
    with pytest.raises(terminology.UnmappedTerm, match="DSDECOD: value 'end_of_study'"):
        list(sdtm_domains.DsMapper(STUDY, randomized=False)(subject(
            treatment_stop_reason="end_of_study")))


def test_ie_records_of_criteria_not_met():
    long_text = "Adequate organ function " + "x" * 300
    inc = as_dict(sdtm_domains.IE_VARIABLES, sdtm_domains.ie_record(STUDY, SimpleNamespace(
        site_code="A1", subjid="001", seq=1, kind="inclusion", number=3, text=long_text)))
    assert (inc["IETESTCD"], inc["IECAT"], inc["IEORRES"], inc["EPOCH"]) == (
        "IN03", "INCLUSION", "N", "SCREENING")
    assert len(inc["IETEST"]) == 200 and inc["IETEST"].endswith(" ...")
    exc = as_dict(sdtm_domains.IE_VARIABLES, sdtm_domains.ie_record(STUDY, SimpleNamespace(
        site_code="A1", subjid="001", seq=2, kind="exclusion", number=12, text="Pregnant")))
    assert (exc["IETESTCD"], exc["IETEST"], exc["IEORRES"]) == ("EX12", "Pregnant", "Y")


def test_ts_parameters_from_the_protocol():
    trial = SimpleNamespace(title="MSC trial", registry="ctgov", registry_id="NCT05699811",
                            sponsor="Sponsor", phase="phase1_2", target_enrollment=40,
                            start_date=dt.date(2023, 2, 23), masking="double",
                            allocation="randomized")
    records = [as_dict(sdtm_domains.TS_VARIABLES, r) for r in sdtm_domains.TsMapper(
        STUDY, 3, ["Blinded study treatment (MSC-AT or matching placebo)"])(trial)]
    values = {r["TSPARMCD"]: r["TSVAL"] for r in records}
    assert values == {
        "TITLE": "MSC trial", "REGID": "NCT05699811", "SPONSOR": "Sponsor",
        "TPHASE": "PHASE I/II TRIAL", "PLANSUB": "40", "TBLIND": "DOUBLE BLIND", "RANDOM": "Y",
        "NARMS": "3", "SSTDTC": "2023-02-23", "STYPE": "INTERVENTIONAL",
        "TRT": "Blinded study treatment (MSC-AT or matching placebo)"}
    checks = terminology.checks_for("TS", [v.name for v in sdtm_domains.TS_VARIABLES])
    terminology.check([tuple(r.values()) for r in records], checks)
    assert sdtm.DOMAINS.keys() <= domains.ALL_DOMAINS.keys()


def test_rs_overall_response():
    row = SimpleNamespace(site_code="A1", subjid="001", seq=1, criteria="iRECIST",
                          overall_response="iUPD", assessment_date=DAY0 + dt.timedelta(55),
                          visitnum=4, visit="A2", day0=DAY0, treatment_stop_date=None)
    record = as_dict(sdtm_tumours.RS_VARIABLES, sdtm_tumours.rs_record(STUDY, row))
    assert (record["RSTESTCD"], record["RSCAT"], record["RSORRES"], record["RSSTRESC"],
            record["RSEVAL"], record["RSDY"], record["EPOCH"], record["VISITNUM"]) == (
        "OVRLRESP", "IRECIST", "iUPD", "iUPD", "INVESTIGATOR", 56, "TREATMENT", 4.0)
    checks = terminology.checks_for("RS", [v.name for v in sdtm_tumours.RS_VARIABLES])
    assert {name for _, name, _ in checks} >= {"RSTESTCD", "RSORRES", "RSSTRESC", "RSEVAL"}
    terminology.check([tuple(record.values())], checks)
    # every response the EDC can record is a CDISC CT ONCRSR term (no silent unmapped term)
    recordable = {code for codes in RESPONSE_CODES.values() for code in codes}
    assert recordable <= terminology.CODELISTS["ONCRSR"].terms
    with pytest.raises(terminology.UnmappedTerm, match="RSORRES: value 'MR'"):
        terminology.check([sdtm_tumours.rs_record(STUDY, SimpleNamespace(
            **{**vars(row), "overall_response": "MR"}))], checks)


def test_tu_and_tr_carry_their_required_and_expected_variables():
    tu = [v.name for v in sdtm_tumours.TU_VARIABLES]
    tr = [v.name for v in sdtm_tumours.TR_VARIABLES]
    assert tu[:4] == ["STUDYID", "DOMAIN", "USUBJID", "TUSEQ"]
    assert {"TULNKID", "TUTESTCD", "TUTEST", "TUORRES", "TUSTRESC", "TULOC", "TUMETHOD",
            "TUEVAL", "VISITNUM", "TUDTC"} <= set(tu)
    assert {"TRLNKID", "TRTESTCD", "TRTEST", "TRORRES", "TRORRESU", "TRSTRESC", "TRSTRESN",
            "TRSTRESU", "TRMETHOD", "TREVAL", "VISITNUM", "TRDTC"} <= set(tr)


def test_criterion_texts_fit_the_200_bytes_of_a_sas_xport_value():
    """A criterion of 199 characters with non-ASCII ones (≥, μ) is over 200 bytes in UTF-8:
    IETEST / TI IETEST are shortened to 200 bytes, or the XPT export stops."""
    text = "Platelets ≥ 100 × 10⁹/L and neutrophils ≥ 1.5 × 10⁹/L " * 4
    text = text[:199]
    assert len(text) <= 200 < len(text.encode("utf-8"))
    short = sdtm_domains.short_text(text)
    assert len(short.encode("utf-8")) <= 200 and short.endswith(" ...")
    assert text.startswith(short[:-4])
    assert sdtm_domains.short_text("Pregnant") == "Pregnant"
