"""One vocabulary each for response criteria and dose units: a protocol file cannot name a
term that the recording code refuses (issue 17: irRC and Lugano 2014 loaded, then every
assessment in them was refused)."""

from trials import protocol_schema
from visits import dosing


def test_every_criteria_a_protocol_may_name_can_be_recorded():
    assert set(protocol_schema.RESPONSE_CRITERIA) == set(dosing.RESPONSE_CODES)
    for criteria in protocol_schema.RESPONSE_CRITERIA:
        dosing.check_response(criteria, "NE")  # NE is a category of every criteria


def test_every_dose_unit_a_protocol_may_name_has_a_total():
    assert set(protocol_schema.DOSE_UNITS) == set(dosing.UNIT_TOTALS)
    for unit, basis in protocol_schema.DOSE_UNITS.items():
        assert dosing.UNIT_TOTALS[unit][1] == basis
