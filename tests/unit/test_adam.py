"""ADaM ADQS / ADTTE records of the QLQ-C30 results (``exports.adam``; no database)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from exports import adam, sdtm
from tests.unit.test_sdtm import DAY0, STUDY, as_dict
from visits import qlq_c30

ARMS = {1: sdtm.ArmView("TREATMENTGROUPA", "Treatment group A")}


def form(form_id, on, base_form=1, **scores):
    values = {s.lower(): scores.get(s, 50.0) for s in qlq_c30.SCALES}
    bases = {f"base_{s.lower()}": 50.0 for s in qlq_c30.SCALES}
    return SimpleNamespace(id=form_id, site_code="A1", subjid="001", arm_id=1,
                           completion_date=on, visitnum=1, visit="C1", day0=DAY0,
                           base_form=base_form, base_date=DAY0 - dt.timedelta(days=2),
                           **values, **bases)


def test_adqs_baseline_and_change():
    mapper = adam.AdqsMapper(STUDY, ARMS)
    base = [as_dict(adam.ADQS_VARIABLES, r)
            for r in mapper(form(1, DAY0 - dt.timedelta(days=2), QL2=None))]
    assert len(base) == len(qlq_c30.SCALES)
    pf2 = next(r for r in base if r["PARAMCD"] == "PF2")
    assert (pf2["ABLFL"], pf2["BASE"], pf2["CHG"], pf2["TRTP"], pf2["ADY"]) == (
        "Y", 50.0, None, "Treatment group A", -2)
    assert next(r for r in base if r["PARAMCD"] == "QL2")["ABLFL"] is None  # no score
    later = [as_dict(adam.ADQS_VARIABLES, r) for r in mapper(form(2, DAY0 + dt.timedelta(28),
                                                                   PF2=30.0))]
    pf2 = next(r for r in later if r["PARAMCD"] == "PF2")
    assert (pf2["ABLFL"], pf2["AVAL"], pf2["CHG"], pf2["PARAM"]) == (
        None, 30.0, -20.0, "EORTC QLQ-C30 V3.0 Physical functioning")


def test_adtte_event_and_censoring():
    row = SimpleNamespace(site_code="A1", subjid="001", arm_id=1, start_date=DAY0,
                          scale="FA", event=True, event_date=DAY0 + dt.timedelta(56),
                          censor_date=None, days=56)
    event = as_dict(adam.ADTTE_VARIABLES, adam.adtte_record(STUDY, ARMS, row))
    assert (event["PARAMCD"], event["CNSR"], event["AVAL"], event["ADT"], event["STARTDT"]) == (
        "TTDFA", 0, 56, "2025-03-31", "2025-02-03")
    censored = as_dict(adam.ADTTE_VARIABLES, adam.adtte_record(STUDY, ARMS, SimpleNamespace(
        **{**vars(row), "event": False, "event_date": None, "censor_date": DAY0, "days": 0})))
    assert (censored["CNSR"], censored["CNSDTDSC"]) == (1, "NO BASELINE SCORE")
    for variables in (adam.ADQS_VARIABLES, adam.ADTTE_VARIABLES):
        assert all(len(v.name) <= 8 and len(v.label) <= 40 for v in variables)
