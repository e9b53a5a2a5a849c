"""SDTMIG 3.4 Required/Expected variables, CDISC CT and QRS terminology (no database).

Defects of issue 18 under test: DM AGE empty where a birth date was entered (AGE at consent
in completed years, birthday edge cases); DM RFPENDTC, RACE, ACTARMUD; AE AEPTCD, AESOCCD,
AEBDSYCD (CTCAE v5.0 MedDRA codes), AEHLT..AEHLGTCD present and null; EX EXDOSFRM, VISITNUM;
QS CDISC QRS test codes EOR0101..EOR0130 (not sponsor codes QLQ01..), VISITNUM, QSLOBXFL;
controlled terminology checked at export time (an unmapped value stops the export, naming
the variable and value).
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from exports import blinding, sdtm, terminology
from subjects.age import completed_years
from tests.unit.test_sdtm import DAY0, STUDY, ae_row, as_dict, dm_row, form_row

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

#: Required and Expected variables of SDTMIG 3.4, in the SDTMIG's order (Permissible ones
#: the export also carries may sit between them).
REQUIRED_EXPECTED = {
    "DM": ["STUDYID", "DOMAIN", "USUBJID", "SUBJID", "RFSTDTC", "RFENDTC", "RFXSTDTC",
           "RFXENDTC", "RFICDTC", "RFPENDTC", "DTHDTC", "DTHFL", "SITEID", "AGE", "AGEU", "SEX",
           "RACE", "ARMCD", "ARM", "ACTARMCD", "ACTARM", "ARMNRS", "ACTARMUD", "COUNTRY"],
    "AE": ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AELLT", "AELLTCD", "AEDECOD",
           "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD", "AEBODSYS", "AEBDSYCD", "AESOC",
           "AESOCCD", "AESER", "AEACN", "AEREL", "AESTDTC", "AEENDTC"],
    "EX": ["STUDYID", "DOMAIN", "USUBJID", "EXSEQ", "EXTRT", "EXDOSE", "EXDOSU", "EXDOSFRM",
           "EXSTDTC", "EXENDTC"],
    "QS": ["STUDYID", "DOMAIN", "USUBJID", "QSSEQ", "QSTESTCD", "QSTEST", "QSCAT", "QSORRES",
           "QSSTRESC", "QSSTRESN", "QSSTAT", "QSLOBXFL", "VISITNUM", "QSDTC"],
}


@pytest.mark.parametrize("domain", list(REQUIRED_EXPECTED))
def test_required_and_expected_variables_in_sdtmig_order(domain):
    names = [v.name for v in sdtm.DOMAINS[domain][1]]
    wanted = REQUIRED_EXPECTED[domain]
    assert [n for n in names if n in wanted] == wanted


@pytest.mark.parametrize(("birth", "on", "years"), [
    (dt.date(1970, 5, 1), dt.date(2025, 4, 30), 54),  # day before the birthday
    (dt.date(1970, 5, 1), dt.date(2025, 5, 1), 55),  # the birthday
    (dt.date(1970, 5, 1), dt.date(2025, 5, 2), 55),  # day after
    (dt.date(2000, 2, 29), dt.date(2023, 2, 28), 22),  # leapling, common year: not yet
    (dt.date(2000, 2, 29), dt.date(2023, 3, 1), 23),  # ... reached on 1 March
    (dt.date(2000, 2, 29), dt.date(2024, 2, 28), 23),  # leap year, day before
    (dt.date(2000, 2, 29), dt.date(2024, 2, 29), 24),  # leap year, the birthday
    (dt.date(1999, 12, 31), dt.date(2000, 1, 1), 0),
])
def test_age_in_completed_years_at_consent(birth, on, years):
    assert completed_years(birth, on) == years
    mapper = sdtm.DmMapper(STUDY, {}, birth_date=False)
    record = as_dict(mapper.variables, mapper(dm_row(birth_date=birth, consent_date=on,
                                                     age_at_consent=None, arm_id=None)))
    assert (record["AGE"], record["AGEU"]) == (years, "YEARS")


def test_dm_age_from_birth_date_even_when_not_shown_and_new_variables():
    mapper = sdtm.DmMapper(STUDY, {1: sdtm.ArmView("MONO", "Mono")}, birth_date=False)
    record = as_dict(mapper.variables, mapper(dm_row(age_at_consent=None)))
    assert "BRTHDTC" not in record and record["AGE"] == 54
    assert (record["RFPENDTC"], record["RACE"], record["ACTARMUD"]) == (
        "2025-03-15", "ASIAN", None)
    no_birth = as_dict(mapper.variables, mapper(dm_row(birth_date=None, age_at_consent=61)))
    assert no_birth["AGE"] == 61
    unknown = as_dict(mapper.variables, mapper(dm_row(birth_date=None, age_at_consent=None,
                                                      race="")))
    assert (unknown["AGE"], unknown["AGEU"], unknown["RACE"]) == (None, None, None)


def test_ae_codes_from_ctcae_meddra():
    record = as_dict(sdtm.AE_VARIABLES, sdtm.AeMapper(STUDY)(ae_row(
        term="Fatigue", meddra_code="10016256",
        soc="General disorders and administration site conditions")))
    assert (record["AELLTCD"], record["AEPTCD"], record["AESOCCD"], record["AEBDSYCD"]) == (
        10016256, 10016256, 10018065, 10018065)
    assert [record[n] for n in ("AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD")] == [None] * 4


def test_soc_codes_are_the_ctcae_other_specify_codes():
    with (SEEDS / "ctcae_v5.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # one "... - Other, specify" term per SOC (the musculoskeletal one says "disorder")
    derived = {r["soc"]: int(r["meddra_code"]) for r in rows
               if r["term"].endswith(" - Other, specify")}
    assert derived == terminology.SOC_CODES
    assert {r["soc"] for r in rows} == set(terminology.SOC_CODES)


def test_qs_uses_qrs_test_codes_and_flags_last_observation_before_exposure():
    codes = [code for code, _, _ in terminology.QLQ_C30_TESTS]
    assert codes == [f"EOR01{n:02d}" for n in range(1, 31)]
    for n, (_, name, provenance) in enumerate(terminology.QLQ_C30_TESTS, 1):
        assert name.startswith(f"EOR{n:02d}-") and len(name) <= 40
        assert provenance in ("verified", "inferred")
    mapper = sdtm.QsMapper(STUDY)
    # form 101 holds the last pre-exposure answer of item 1; item 2 was last answered on
    # another form (lobx2 = 99); item 3 unanswered here.
    records = [as_dict(sdtm.QS_VARIABLES, r)
               for r in mapper(form_row(1, lobx1=101, lobx2=99, q3=None, lobx3=101))]
    assert [r["QSLOBXFL"] for r in records[:3]] == ["Y", None, None]
    assert {r["VISITNUM"] for r in records} == {3.0}


def test_ex_dose_form_and_visit_number():
    interventions = [blinding.InterventionInfo(5, "MSC", "MSC cells", "intravenous", "", True),
                     blinding.InterventionInfo(6, "PTX", "Paclitaxel", "intravenous", "")]
    views = blinding.treatment_views(interventions, visible=True)
    row = SimpleNamespace(site_code="A1", subjid="001", seq=1, intervention_id=5,
                          dose_value=Decimal("2"), dose_unit="cells/kg", frequency="",
                          administered_on=DAY0, end_date=None,
                          start_time=None, stop_time=None, visitnum=Decimal("2.01"),
                          visit="X1", interrupted=False, interruption_reason="", day0=DAY0,
                          treatment_stop_date=None)
    record = as_dict(sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, views)(row))
    assert (record["EXDOSFRM"], record["VISITNUM"], record["EXROUTE"]) == (
        "SUSPENSION", 2.01, "INTRAVENOUS")
    record = as_dict(sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, views)(
        SimpleNamespace(**{**vars(row), "intervention_id": 6})))
    assert record["EXDOSFRM"] is None  # the protocol states no dose form


def _checked(domain, variables, record):
    names = [v.name for v in variables]
    terminology.check([record], terminology.checks_for(domain, names))


def test_unmapped_terms_stop_the_export_naming_variable_and_value():
    with pytest.raises(terminology.UnmappedTerm, match="AEACN: value 'held'"):
        sdtm.AeMapper(STUDY)(ae_row(action_taken="held"))
    with pytest.raises(terminology.UnmappedTerm, match="AESOC"):
        sdtm.AeMapper(STUDY)(ae_row(soc="Not a SOC"))
    row = SimpleNamespace(site_code="A1", subjid="001", seq=1, intervention_id=5,
                          dose_value=Decimal("2"), dose_unit="cells/kg", frequency="",
                          administered_on=DAY0, end_date=None,
                          start_time=None, stop_time=None, visitnum=1, visit="C1",
                          interrupted=False, interruption_reason="", day0=DAY0,
                          treatment_stop_date=None)
    views = {5: sdtm.TreatmentView("X", "X", "intravenous")}
    _checked("EX", sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, views)(row))  # extension: fine
    with pytest.raises(terminology.UnmappedTerm, match="EXDOSU: value 'vials'"):
        _checked("EX", sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, views)(
            SimpleNamespace(**{**vars(row), "dose_unit": "vials"})))
    bad_route = {5: sdtm.TreatmentView("X", "X", "by magic")}
    with pytest.raises(terminology.UnmappedTerm, match="EXROUTE: value 'BY MAGIC'"):
        _checked("EX", sdtm.EX_VARIABLES, sdtm.ExMapper(STUDY, bad_route)(row))
    mapper = sdtm.DmMapper(STUDY, {}, birth_date=False)
    with pytest.raises(terminology.UnmappedTerm, match="COUNTRY"):
        mapper(dm_row(country="Narnia"))
    _checked("DM", mapper.variables, mapper(dm_row()))
    with pytest.raises(terminology.UnmappedTerm, match="RACE: value 'martian'"):
        _checked("DM", mapper.variables, mapper(dm_row(race="martian")))
