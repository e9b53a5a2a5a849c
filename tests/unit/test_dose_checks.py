"""Dose checks (visits.dose_checks) and the protocol fields they read (pure, no database)."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_protocol_schema import SEEDS, refuse
from trials.protocol_schema import load_protocol
from visits import dose_checks as dc


def codes(findings):
    return [f.code for f in findings]


def test_seed000_two_million_for_a_six_hundred_thousand_subject_is_a_deviation():
    findings = dc.check_dose(product="MSC-IFNA", unit="cells/kg", prescribed=Decimal("2e6"),
                             planned=Decimal("6e5"))
    assert codes(findings) == [dc.TOLERANCE]
    # (2e6 - 6e5) / 6e5 = 233 %; no tolerance in the document: the EDC default, named.
    assert "233%" in findings[0].text and "EDC default" in findings[0].text


def test_within_tolerance_edge_and_just_beyond():
    assert dc.check_dose(product="X", unit="mg", prescribed=Decimal("110"),
                         planned=Decimal("100")) == []
    assert codes(dc.check_dose(product="X", unit="mg", prescribed=Decimal("110.01"),
                               planned=Decimal("100"))) == [dc.TOLERANCE]
    # A protocol tolerance replaces the default and is named as the protocol's.
    found = dc.check_dose(product="X", unit="mg", prescribed=Decimal("104"),
                          planned=Decimal("100"), tolerance_pct=3.0)
    assert codes(found) == [dc.TOLERANCE] and "3% (protocol)" in found[0].text


def test_given_total_against_planned_total():
    found = dc.check_dose(product="X", unit="mg/m2", prescribed=Decimal("125"),
                          planned=Decimal("125"), planned_total=Decimal("219"),
                          given_total=Decimal("150"), total_unit="mg")
    assert codes(found) == [dc.TOTAL_TOLERANCE]


def test_seed002_inkt_range_is_checked_as_written():
    inside = dc.check_dose(product="INKT", unit="cells/m2", prescribed=Decimal("1e9"),
                           dose_min=Decimal("1e8"), dose_max=Decimal("1e9"))
    assert inside == []
    outside = dc.check_dose(product="INKT", unit="cells/m2", prescribed=Decimal("5e9"),
                            dose_min=Decimal("1e8"), dose_max=Decimal("1e9"))
    assert codes(outside) == [dc.RANGE]


def test_product_not_in_the_arm():
    assert codes(dc.check_dose(product="INKT", unit="cells/m2", prescribed=Decimal("1e8"),
                               in_arm=False)) == [dc.PRODUCT]


def test_seed002_regorafenib_is_a_daily_regimen_in_both_arms_marked_inferred():
    p = load_protocol(SEEDS / "NCT05962450.toml")
    rego = [r for r in p.regimens if r.intervention == "REGO"]
    assert {r.arm for r in rego} == {"RP", "RPI"}
    for r in rego:
        assert (r.frequency, r.days_on, r.cycle_days, r.dose_unit) == ("QD", 21, 28, "mg")
        assert r.continuous and {"frequency", "days_on", "cycle_days"} <= set(r.inferred)
        assert "drug instructions" in r.note
    pd1 = [r for r in p.regimens if r.intervention == "PD1"]
    assert not any(r.continuous for r in pd1)


def test_bad_frequency_and_tolerance_refused():
    def mutate(d):
        d["regimens"][0]["dose_tolerance_pct"] = 150
        d["regimens"][1]["frequency"] = "daily"
        d["regimens"][3]["days_on"] = 5
    lines = refuse("NCT05962450", mutate)
    assert any("regimens[0].dose_tolerance_pct: must be below 100" in line for line in lines)
    assert any("regimens[1].frequency: unknown value 'daily'" in line for line in lines)
    assert any("regimens[3].days_on: days_on and cycle_days go together" in line
               for line in lines)
