"""EDC plausibility defaults (subjects.plausibility), bounds by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from subjects import plausibility as p

TODAY = dt.date(2025, 6, 1)


@pytest.mark.parametrize("height", [0, "29.9", 250.1, 1700, -170, "tall", float("nan")])
def test_implausible_heights(height):
    assert "EDC plausibility default: 30-250 cm" in p.height_problem(height)


@pytest.mark.parametrize("height", [30, "170.5", Decimal(250)])
def test_plausible_heights_inclusive(height):
    assert p.height_problem(height) is None


@pytest.mark.parametrize("weight", [0, "0.49", 500.01, -70, 7000])
def test_implausible_weights(weight):
    assert "EDC plausibility default: 0.5-500 kg" in p.weight_problem(weight)


@pytest.mark.parametrize("weight", [None, "0.5", 70, 500])
def test_plausible_weights(weight):
    assert p.weight_problem(weight) is None


@pytest.mark.parametrize("amount", [0, -1, "-0.001", "x"])
def test_amounts_must_be_positive(amount):
    assert "must be positive" in p.amount_problem(amount)


def test_future_and_birth_dates():
    assert p.future_problem(TODAY, TODAY) is None
    assert "in the future" in p.future_problem(TODAY + dt.timedelta(days=1), TODAY)
    at = dt.datetime(2025, 6, 2, 0, 30, tzinfo=dt.UTC)
    assert "2025-06-02 is in the future" in p.future_problem(at, TODAY)
    consent = dt.date(2025, 1, 2)
    assert p.birth_date_problem(dt.date(1970, 5, 1), consent, TODAY) is None
    assert "not before the consent date 2025-01-02" in p.birth_date_problem(
        dt.date(2025, 1, 3), consent, TODAY)
    assert "not before the consent" in p.birth_date_problem(consent, consent, TODAY)
    assert "in the future" in p.birth_date_problem(dt.date(2026, 1, 1), None, TODAY)
