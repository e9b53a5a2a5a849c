"""SDTM derivations and mappings of ``exports.sdtm`` / ``exports.blinding`` (no database).

SDTMIG 3.4 section 4.4.4: study day 1 is RFSTDTC, the day before is -1, there is no day 0.
Section 4.4.1: ISO 8601 dates. Variable names <= 8 characters, labels <= 40, character
lengths <= 200; --SEQ unique per subject.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
from decimal import Decimal
from types import SimpleNamespace

import pytest

from exports import blinding, listing, sdtm, terminology, writers

DAY0 = dt.date(2025, 2, 3)
STUDY = sdtm.Study("NCT05699811")


def test_study_day_has_no_day_zero():
    assert sdtm.study_day(DAY0, DAY0) == 1
    assert sdtm.study_day(DAY0 + dt.timedelta(days=1), DAY0) == 2
    assert sdtm.study_day(DAY0 - dt.timedelta(days=1), DAY0) == -1
    assert sdtm.study_day(DAY0 - dt.timedelta(days=10), DAY0) == -10
    days = [sdtm.study_day(DAY0 + dt.timedelta(days=n), DAY0) for n in range(-400, 400)]
    assert 0 not in days
    assert days == sorted(days) and len(set(days)) == len(days)
    assert sdtm.study_day(None, DAY0) is None and sdtm.study_day(DAY0, None) is None
    assert sdtm.study_day(dt.datetime(2025, 2, 3, 23, 59), DAY0) == 1


def test_iso_8601_dates_and_times():
    assert sdtm.iso_date(dt.date(2025, 1, 9)) == "2025-01-09"
    assert sdtm.iso_date(None) is None
    aware = dt.datetime(2025, 1, 9, 10, 30, 15, 999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert sdtm.iso_datetime(aware) == "2025-01-09T02:30:15"
    assert sdtm.iso_datetime(dt.datetime(2025, 1, 9, 2, 30)) == "2025-01-09T02:30:00"
    assert sdtm.iso_datetime(dt.date(2025, 1, 9)) == "2025-01-09"


def test_epoch():
    stop = DAY0 + dt.timedelta(days=30)
    assert sdtm.epoch(DAY0 - dt.timedelta(days=1), DAY0, stop) == "SCREENING"
    assert sdtm.epoch(DAY0, DAY0, stop) == "TREATMENT"
    assert sdtm.epoch(stop, DAY0, stop) == "TREATMENT"
    assert sdtm.epoch(stop + dt.timedelta(days=1), DAY0, stop) == "FOLLOW-UP"
    assert sdtm.epoch(DAY0, None, None) == "SCREENING"


def test_terminology():
    assert sdtm.relationship(["unlikely", "probable", "possible"]) == "PROBABLY RELATED"
    assert sdtm.relationship([]) is None
    assert sdtm.parse_attributions("12:possible;3:definite") == ((12, "possible"),
                                                                 (3, "definite"))
    assert sdtm.parse_attributions(None) == ()
    assert set(sdtm.ACTION_TAKEN.values()) <= {
        "DOSE NOT CHANGED", "DOSE REDUCED", "DOSE INCREASED", "DRUG INTERRUPTED",
        "DRUG WITHDRAWN", "NOT APPLICABLE", "UNKNOWN"}
    assert terminology.country_code("China") == "CHN"
    assert terminology.country_code("fra") == "FRA"
    assert terminology.country_code("") is None
    with pytest.raises(terminology.UnmappedTerm, match="COUNTRY.*Atlantis"):
        terminology.country_code("Atlantis")
    assert sdtm.decimal_text(Decimal("2000000.000000")) == "2000000"
    assert sdtm.decimal_text(Decimal("0.500")) == "0.5"
    assert sdtm.code_from_label("Treatment group A") == "TREATMENTGROUPA"


@pytest.mark.parametrize("domain", list(sdtm.DOMAINS))
def test_variable_metadata_follows_sdtm_limits(domain):
    label, variables = sdtm.DOMAINS[domain]
    names = [v.name for v in variables]
    assert len(set(names)) == len(names)
    for v in variables:
        assert v.name.isupper() and v.name.isalnum() and len(v.name) <= 8, v.name
        assert 0 < len(v.label) <= 40, v.name
        assert v.length is None or 1 <= v.length <= 200, v.name
    assert names[0] == "STUDYID" and "USUBJID" in names
    if domain not in ("SUPPAE", "DM"):
        assert names[1] == "DOMAIN" and names[3] == f"{domain}SEQ"
        assert all(n.startswith(domain) for n in names[4:]
                   if n not in ("EPOCH", "VISIT", "VISITNUM"))
    keys = sorted(v.key_sequence for v in variables if v.key_sequence)
    assert keys == list(range(1, len(keys) + 1))


AE_ROW = {
    "site_code": "A1", "subjid": "001", "seq": 1, "verbatim_term": "", "term": "Anemia",
    "meddra_code": "10002272", "soc": "Blood and lymphatic system disorders",
    "serious": False, "sae_death": False, "sae_life_threatening": False,
    "sae_hospitalization": False, "sae_disability": False, "sae_congenital_anomaly": False,
    "sae_medically_important": False, "expected": False, "action_taken": "dose_not_changed",
    "outcome": "recovered", "grade": 3, "onset_date": DAY0 + dt.timedelta(days=4),
    "resolution_date": DAY0 + dt.timedelta(days=9), "day0": DAY0, "treatment_stop_date": None,
    "arm_id": 1, "dose_level_id": None, "cohort": None,
    "attributions": "7:possible;8:unlikely", "dlt": None, "ti": True,
}


def ae_row(**kwargs):
    return SimpleNamespace(**{**AE_ROW, **kwargs})


def as_dict(variables, record):
    assert len(record) == len(variables)
    return dict(zip((v.name for v in variables), record, strict=True))


def test_ae_record():
    record = as_dict(sdtm.AE_VARIABLES, sdtm.AeMapper(STUDY)(ae_row()))
    assert record == {
        "STUDYID": "NCT05699811", "DOMAIN": "AE", "USUBJID": "NCT05699811-A1-001", "AESEQ": 1,
        "AETERM": "Anemia", "AELLT": "Anemia", "AELLTCD": 10002272, "AEDECOD": "Anemia",
        "AEPTCD": 10002272, "AEHLT": None, "AEHLTCD": None, "AEHLGT": None, "AEHLGTCD": None,
        "AEBODSYS": "Blood and lymphatic system disorders", "AEBDSYCD": 10005329,
        "AESOC": "Blood and lymphatic system disorders", "AESOCCD": 10005329, "AESER": "N",
        "AEACN": "DOSE NOT CHANGED", "AEREL": "POSSIBLY RELATED",
        "AEOUT": "RECOVERED/RESOLVED", "AESCONG": None, "AESDISAB": None, "AESDTH": None,
        "AESHOSP": None, "AESLIFE": None, "AESMIE": None, "AETOXGR": "3",
        "EPOCH": "TREATMENT", "AESTDTC": "2025-02-07", "AEENDTC": "2025-02-12", "AESTDY": 5,
        "AEENDY": 10,
    }


def test_serious_ae_before_day1_ongoing():
    row = ae_row(serious=True, sae_hospitalization=True, verbatim_term="Low haemoglobin",
                 onset_date=DAY0 - dt.timedelta(days=2), resolution_date=None,
                 attributions=None, outcome="not_recovered", action_taken="drug_interrupted")
    record = as_dict(sdtm.AE_VARIABLES, sdtm.AeMapper(STUDY)(row))
    assert (record["AETERM"], record["AEDECOD"]) == ("Low haemoglobin", "Anemia")
    assert record["AESER"] == "Y" and record["AESHOSP"] == "Y" and record["AESDTH"] == "N"
    assert (record["AESTDY"], record["AEENDY"], record["AEENDTC"]) == (-2, None, None)
    assert record["EPOCH"] == "SCREENING" and record["AEREL"] is None
    assert record["AEOUT"] == "NOT RECOVERED/NOT RESOLVED"


def test_suppae_records():
    row = SimpleNamespace(site_code="A1", subjid="001", seq=4, kind="TI", value=True,
                          overridden=False)
    record = as_dict(sdtm.SUPPAE_VARIABLES, sdtm.suppae_record(STUDY, row))
    assert record == {"STUDYID": "NCT05699811", "RDOMAIN": "AE",
                      "USUBJID": "NCT05699811-A1-001", "IDVAR": "AESEQ", "IDVARVAL": "4",
                      "QNAM": "AETI", "QLABEL": "Treatment Intolerance", "QVAL": "Y",
                      "QORIG": "DERIVED", "QEVAL": None}
    overridden = sdtm.suppae_record(STUDY, SimpleNamespace(**{
        **vars(row), "kind": "DLT", "value": False, "overridden": True}))
    assert overridden[5:] == ("AEDLT", "Dose-Limiting Toxicity", "N", "ASSIGNED",
                              "INVESTIGATOR")


def form_row(rank: int, **answers):
    values = {f"q{n}": answers.get(f"q{n}", 2) for n in range(1, 31)}
    lobx = {f"lobx{n}": answers.get(f"lobx{n}") for n in range(1, 31)}
    return SimpleNamespace(id=100 + rank, site_code="B1", subjid="007", rank=rank,
                           completion_date=DAY0 + dt.timedelta(days=28), visitnum=3,
                           visit="C2", day0=DAY0, treatment_stop_date=None, **values, **lobx)


def test_qs_records_are_unique_per_subject():
    mapper = sdtm.QsMapper(STUDY)
    records = [as_dict(sdtm.QS_VARIABLES, r) for rank in (1, 2, 3)
               for r in mapper(form_row(rank, q5=None, q29=7))]
    assert len(records) == 90
    assert sorted(r["QSSEQ"] for r in records) == list(range(1, 91))
    first = records[0]
    assert (first["QSTESTCD"], first["QSTEST"], first["QSCAT"], first["QSORRES"],
            first["QSSTRESC"], first["QSSTRESN"]) == (
        "EOR0101", "EOR01-Trouble Doing Strenuous Activities", "EORTC QLQ-C30 V3.0",
        "A little", "2", 2)
    missing = records[4]
    assert (missing["QSTESTCD"], missing["QSORRES"], missing["QSSTRESN"],
            missing["QSSTAT"]) == ("EOR0105", None, None, "NOT DONE")
    assert (records[28]["QSORRES"], records[28]["QSSTRESC"]) == ("Excellent", "7")
    assert records[29]["QSORRES"] == "2" and records[0]["VISITNUM"] == 3.0
    assert {r["QSDTC"] for r in records} == {"2025-03-03"} and records[0]["QSDY"] == 29


def test_ex_record_and_masked_dose():
    start = dt.datetime(2025, 2, 3, 9, 0, tzinfo=dt.UTC)
    row = SimpleNamespace(site_code="A1", subjid="001", seq=1, intervention_id=5,
                          dose_value=Decimal("2000000.000000"), dose_unit="cells/kg",
                          frequency="", administered_on=DAY0, end_date=None, start_time=start,
                          stop_time=start + dt.timedelta(hours=1), visitnum=2, visit="C1",
                          interrupted=False, interruption_reason="", day0=DAY0,
                          treatment_stop_date=None)
    open_view = {5: sdtm.TreatmentView("MSC", "MSC cells", "intravenous")}
    record = as_dict(sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, open_view)(row))
    assert (record["EXTRT"], record["EXDOSE"], record["EXDOSU"], record["EXROUTE"]) == (
        "MSC cells", "2000000", "cells/kg", "INTRAVENOUS")
    assert (record["EXSTDTC"], record["EXENDTC"], record["EXSTDY"]) == (
        "2025-02-03T09:00:00", "2025-02-03T10:00:00", 1)
    assert record["EXDOSFRQ"] == "ONCE"
    masked = {5: sdtm.TreatmentView("BLINDED:X", "Blinded", "intravenous", mask_dose=True)}
    record = as_dict(sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, masked)(row))
    assert (record["EXTRT"], record["EXDOSE"], record["EXDOSU"]) == ("Blinded", None, None)


def test_ex_dosing_period_and_dv_record():
    period = SimpleNamespace(site_code="A1", subjid="001", seq=2, intervention_id=7,
                             dose_value=Decimal("160.000000"), dose_unit="mg", frequency="QD",
                             administered_on=DAY0, end_date=DAY0 + dt.timedelta(days=20),
                             start_time=None, stop_time=None, visitnum=None, visit=None,
                             interrupted=False, interruption_reason="", day0=DAY0,
                             treatment_stop_date=None)
    views = {7: sdtm.TreatmentView("REGO", "Regorafenib", "oral")}
    record = as_dict(sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, views)(period))
    assert (record["EXDOSE"], record["EXDOSFRQ"], record["EXROUTE"], record["VISIT"]) == (
        "160", "QD", "ORAL", None)
    # SDTMIG 3.4 EX: one record per constant-dosing interval; day 21 of dosing is EXENDY 21.
    assert (record["EXSTDTC"], record["EXENDTC"], record["EXSTDY"], record["EXENDY"]) == (
        DAY0.isoformat(), (DAY0 + dt.timedelta(days=20)).isoformat(), 1, 21)
    row = SimpleNamespace(site_code="A1", subjid="001", seq=1, id=42,
                          description="MSC dose 2E+6 cells/kg differs", category="dosing",
                          occurred_on=DAY0 + dt.timedelta(days=1), day0=DAY0,
                          treatment_stop_date=None)
    dv = as_dict(sdtm.DV_VARIABLES, sdtm.DvMapper(
        STUDY, {"dosing": "study treatment dose"}, lambda t: t.replace("MSC", "X"))(row))
    assert (dv["DOMAIN"], dv["DVSEQ"], dv["DVSPID"], dv["DVDECOD"], dv["DVCAT"]) == (
        "DV", 1, "42", "DOSING", "STUDY TREATMENT DOSE")
    assert (dv["DVTERM"], dv["DVSTDY"], dv["EPOCH"]) == (
        "X dose 2E+6 cells/kg differs", 2, "TREATMENT")
    # DVTERM fits the 200 bytes of an XPT value, also with non-ASCII text (μ: 2 bytes)
    long = sdtm.DvMapper(STUDY, {}, None)(SimpleNamespace(**{
        **vars(row), "description": "Dose 10 μg/kg given " * 12}))
    term = as_dict(sdtm.DV_VARIABLES, long)["DVTERM"]
    assert len(term.encode("utf-8")) <= 200 < len(term) * 1.1 and "\ufffd" not in term


DM_ROW = {
    "site_code": "A1", "country": "China", "subjid": "001", "consent_date": DAY0,
    "day0": DAY0 + dt.timedelta(days=7), "status": "on_treatment", "status_date": None,
    "birth_date": dt.date(1970, 5, 1), "age_at_consent": 54, "sex": "F", "race": "ASIAN",
    "arm_id": 1, "death_date": None, "first_dose": DAY0 + dt.timedelta(days=7),
    "last_dose": DAY0 + dt.timedelta(days=35), "last_contact": DAY0 + dt.timedelta(days=40),
    "actual_arm_id": None,
}


def dm_row(**kwargs):
    return SimpleNamespace(**{**DM_ROW, **kwargs})


def test_dm_actual_arm_of_an_allocation_error():
    """SDTMIG 3.4 DM: ARM is the arm allocated, ACTARM the arm whose treatment the subject
    received (an allocation error recorded by the statistician)."""
    arms = {1: sdtm.ArmView("A", "Arm A"), 2: sdtm.ArmView("B", "Arm B")}
    mapper = sdtm.DmMapper(STUDY, arms, birth_date=False)
    record = as_dict(mapper.variables, mapper(dm_row(actual_arm_id=2)))
    assert (record["ARMCD"], record["ARM"], record["ACTARMCD"], record["ACTARM"]) == (
        "A", "Arm A", "B", "Arm B")
    untreated = as_dict(mapper.variables, mapper(dm_row(actual_arm_id=2, first_dose=None)))
    assert (untreated["ARMCD"], untreated["ACTARMCD"]) == ("A", None)


def test_dm_records_and_direct_identifiers():
    arms = {1: sdtm.ArmView("MONO", "MSC-IFNa monotherapy")}
    sponsor = sdtm.DmMapper(STUDY, arms, birth_date=False)
    assert "BRTHDTC" not in [v.name for v in sponsor.variables]
    record = as_dict(sponsor.variables, sponsor(dm_row()))
    assert (record["RFSTDTC"], record["RFXSTDTC"], record["RFICDTC"]) == (
        "2025-02-10", "2025-02-10", "2025-02-03")
    assert (record["ARMCD"], record["ACTARMCD"], record["ARMNRS"], record["COUNTRY"]) == (
        "MONO", "MONO", None, "CHN")
    assert (record["AGE"], record["AGEU"], record["SEX"]) == (54, "YEARS", "F")
    staff = sdtm.DmMapper(STUDY, arms, birth_date=True)
    assert as_dict(staff.variables, staff(dm_row()))["BRTHDTC"] == "1970-05-01"
    untreated = as_dict(sponsor.variables, sponsor(dm_row(first_dose=None, last_dose=None)))
    assert (untreated["ACTARM"], untreated["ARMNRS"]) == (None, "ASSIGNED, NOT TREATED")
    failed = as_dict(sponsor.variables, sponsor(dm_row(arm_id=None, status="screen_failure")))
    assert (failed["ARM"], failed["ARMNRS"]) == (None, "SCREEN FAILURE")
    dead = as_dict(sponsor.variables, sponsor(dm_row(death_date=DAY0 + dt.timedelta(days=90),
                                                     status="off_study",
                                                     status_date=dt.date(2025, 5, 4))))
    assert (dead["DTHFL"], dead["DTHDTC"], dead["RFENDTC"]) == ("Y", "2025-05-04",
                                                                  "2025-05-04")


ARMS = [blinding.ArmInfo(1, "MSC_M0_M3", "2 infusions of MSC"),
        blinding.ArmInfo(2, "PBO_M0_M3", "Placebo")]
INTERVENTIONS = [blinding.InterventionInfo(10, "MSC-AT", "Adipose MSC", "intravenous", ""),
                 blinding.InterventionInfo(11, "PBO", "Placebo", "", "MSC-AT"),
                 blinding.InterventionInfo(12, "PCM", "Paracetamol", "oral", "")]


def test_blinded_users_see_neutral_arms_and_confounded_treatments():
    assert blinding.arm_views(ARMS, visible=True)[2] == sdtm.ArmView("PBO_M0_M3", "Placebo")
    hidden = blinding.arm_views(ARMS, visible=False)
    assert hidden[1] == hidden[2] == sdtm.ArmView("BLINDED", "Blinded")
    views = blinding.treatment_views(INTERVENTIONS, visible=False)
    assert views[10] == views[11]
    assert views[10].mask_dose and views[10].route == "intravenous"
    assert "Placebo" not in views[11].name and "PBO" not in views[11].code
    assert views[12] == sdtm.TreatmentView("PCM", "Paracetamol", "oral")
    merged = blinding.attribution_text(((10, "unlikely"), (11, "probable"), (12, "possible")),
                                       views)
    assert merged == "BLINDED:MSC-AT: probable; PCM: possible"
    shown = blinding.treatment_views(INTERVENTIONS, visible=True)
    assert blinding.attribution_text(((10, "unlikely"), (11, "probable")), shown) == (
        "MSC-AT: unlikely; PBO: probable")


def test_listing_row():
    mapper = listing.ListingMapper(
        "NCT05699811", {1: sdtm.ArmView("MONO", "Mono")}, {},
        {7: sdtm.TreatmentView("MSC", "MSC", None), 8: sdtm.TreatmentView("PTX", "PTX", None)})
    row = dict(zip(listing.NAMES, mapper(ae_row(serious=True, sae_death=True,
                                                 sae_medically_important=True)), strict=True))
    assert row["usubjid"] == "NCT05699811-A1-001" and row["arm"] == "Mono"
    assert row["attribution"] == "MSC: possible; PTX: unlikely"
    assert row["seriousness_criteria"] == "death; medically important"
    assert (row["dlt"], row["ti"], row["ongoing"]) == (None, "Y", "N")


def test_csv_writer_and_tally():
    tally = writers.Tally()
    chunks = [[("a", None, 1)], [('quote "me"', "x,y", 2)]]
    data = b"".join(tally.encode(writers.csv_chunks(("A", "B", "C"), tally.count(chunks))))
    text = data.decode()
    assert text.endswith("\r\n")
    assert list(csv.reader(io.StringIO(text))) == [["A", "B", "C"], ["a", "", "1"],
                                                   ['quote "me"', "x,y", "2"]]
    assert tally.rows == 2 and tally.size == len(data)
    assert tally.sha256 == hashlib.sha256(data).hexdigest()


def test_aeseq_style_numbering_is_unique_per_subject():
    """QSSEQ of many forms of many subjects: unique within each subject."""
    mapper = sdtm.QsMapper(STUDY)
    records = []
    for subject, rank in itertools.product(("001", "002"), (1, 2)):
        row = form_row(rank)
        row.subjid = subject
        records.extend(mapper(row))
    keys = [(r[2], r[3]) for r in records]
    assert len(set(keys)) == len(keys) == 120
