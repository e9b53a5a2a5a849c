"""Plausibility at the door: values that cannot be true are refused before anything is saved.

Pure Python (no Django).  Each function returns the problem as a sentence (to show against the
field) or None.  These are **EDC plausibility defaults**, not protocol rules: they bound what a
human body or a past event can be, whatever the trial, and are named as such in every message.

* Height 30-250 cm and weight 0.5-500 kg, inclusive (EDC plausibility default): wide enough for
  any human a trial may enrol, from a preterm neonate (about 30 cm, 0.5 kg) to the tallest
  and heaviest adults on record (272 cm and about 600 kg are single historical cases; 250 cm
  and 500 kg already lie beyond every dosing table), narrow enough to catch a unit or typing
  error (0 cm, 1,700 cm, 70 g instead of 70 kg).  The same bounds guard the Mosteller BSA
  (``visits.scheduling.mosteller_bsa``).
* Amounts (doses, totals given) are positive: a zero or negative amount is never a dose.
* Things that have happened (consent, birth, visits, administrations, forms completed) are not
  dated after today; a birth date comes before the consent date (ICH E6(R3) 2.8: consent is
  given by a living person).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

DEFAULT = "EDC plausibility default"
HEIGHT_CM = (Decimal(30), Decimal(250))
WEIGHT_KG = (Decimal("0.5"), Decimal(500))


def _number(value) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _in_range(value, bounds: tuple[Decimal, Decimal], what: str, unit: str) -> str | None:
    if value is None:
        return None
    number = _number(value)
    low, high = bounds
    if number is None or not low <= number <= high:
        return (f"{value} {unit} is not a plausible {what} ({DEFAULT}: {low:g}-{high:g} {unit}).")
    return None


def height_problem(height_cm) -> str | None:
    return _in_range(height_cm, HEIGHT_CM, "height", "cm")


def weight_problem(weight_kg) -> str | None:
    return _in_range(weight_kg, WEIGHT_KG, "body weight", "kg")


def amount_problem(amount) -> str | None:
    """An amount given or prescribed must be positive (None: not recorded)."""
    if amount is None:
        return None
    number = _number(amount)
    if number is None or number <= 0:
        return f"{amount} is not a plausible amount: it must be positive ({DEFAULT})."
    return None


def future_problem(on: dt.date | dt.datetime | None, today: dt.date) -> str | None:
    """Something that has happened cannot be dated after today."""
    if on is None:
        return None
    day = on.date() if isinstance(on, dt.datetime) else on
    if day > today:
        return f"{day.isoformat()} is in the future ({DEFAULT}: it has already happened)."
    return None


def birth_date_problem(birth: dt.date | None, consent: dt.date | None,
                       today: dt.date) -> str | None:
    """A birth date is not in the future and comes before the consent date."""
    if birth is None:
        return None
    if (problem := future_problem(birth, today)) is not None:
        return problem
    if consent is not None and birth >= consent:
        return (f"{birth.isoformat()} is not before the consent date {consent.isoformat()} "
                f"({DEFAULT}).")
    return None
