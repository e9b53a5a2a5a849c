"""Dose checks of one administration against the protocol (pure Python, no Django).

ICH E6(R3) defines a protocol deviation as any departure from the protocol; a dose that is not
the protocol's is one (CDISC SDTMIG 3.4 section 6.2, DV). The rules, applied by
``visits.services`` when an exposure is recorded or corrected:

D1  Planned dose: a ``fixed`` regimen's ``dose_value``; a ``dose_finding`` regimen's dose is the
    subject's dose level; ``range``, ``per_label`` and ``not_stated`` regimens have none (the
    site records the dose given). The planned total is the planned dose x body weight (per kg)
    or x Mosteller BSA (per m2), see ``scheduling.planned_dose``.
D2  Tolerance: the prescribed dose, and the total given when recorded, may differ from the
    planned dose / planned total by at most the regimen's ``dose_tolerance_pct``; where the
    protocol states none, :data:`DEFAULT_TOLERANCE_PCT` (10 %) applies, an *EDC default* named
    as such in the finding (no seed document gives a tolerance).
D3  Range: a ``range`` regimen's dose must lie within ``dose_min``..``dose_max`` (as written,
    no tolerance on the bounds).
D4  Product: a product the subject's arm does not receive.
A finding never refuses the record: it is saved with a protocol deviation and a query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

#: EDC default dose tolerance (percent) where the protocol states none.
DEFAULT_TOLERANCE_PCT = Decimal("10")

TOLERANCE = "dose_tolerance"
TOTAL_TOLERANCE = "dose_total_tolerance"
RANGE = "dose_range"
PRODUCT = "wrong_product"
#: Every check code this module can return (the deviations they open are resolved when the
#: corrected record no longer gives them).
CODES = (TOLERANCE, TOTAL_TOLERANCE, RANGE, PRODUCT)


@dataclass(frozen=True)
class DoseFinding:
    code: str
    text: str


def _plain(value: Decimal) -> str:
    value = Decimal(value)
    if value == value.to_integral_value() and abs(value) >= Decimal("1e5"):
        return f"{value:.2E}".replace("E+0", "E+").replace(".00E", "E")
    return format(value.normalize(), "f")


def relative_difference(given: Decimal, planned: Decimal) -> Decimal:
    """``|given - planned| / planned`` (0.1 = 10 %); planned must be positive."""
    if planned <= 0:
        raise ValueError("the planned dose must be positive")
    return abs(Decimal(given) - Decimal(planned)) / Decimal(planned)


def tolerance_of(stated_pct: float | Decimal | None) -> tuple[Decimal, str]:
    """The tolerance in percent and where it comes from (the protocol, or the EDC default)."""
    if stated_pct is None:
        return DEFAULT_TOLERANCE_PCT, f"{DEFAULT_TOLERANCE_PCT}% (EDC default: the protocol " \
                                      "states no dose tolerance)"
    pct = Decimal(str(stated_pct))
    return pct, f"{_plain(pct)}% (protocol)"


def check_dose(*, product: str, unit: str, prescribed: Decimal,
               planned: Decimal | None = None, planned_total: Decimal | None = None,
               given_total: Decimal | None = None, total_unit: str = "",
               dose_min: Decimal | None = None, dose_max: Decimal | None = None,
               tolerance_pct: float | Decimal | None = None,
               in_arm: bool = True) -> list[DoseFinding]:
    """The findings D2-D4 for one administration (an empty list: nothing to report)."""
    findings: list[DoseFinding] = []
    if not in_arm:
        findings.append(DoseFinding(PRODUCT, (
            f"{product} was given, but the subject's arm does not receive it per protocol.")))
    pct, source = tolerance_of(tolerance_pct)
    limit = pct / 100
    if planned is not None and planned > 0:
        diff = relative_difference(prescribed, planned)
        if diff > limit:
            findings.append(DoseFinding(TOLERANCE, (
                f"{product} dose {_plain(prescribed)} {unit} differs from the planned "
                f"{_plain(planned)} {unit} by {diff * 100:.0f}% (tolerance {source}).")))
    if given_total is not None and planned_total is not None and planned_total > 0:
        diff = relative_difference(given_total, planned_total)
        if diff > limit:
            findings.append(DoseFinding(TOTAL_TOLERANCE, (
                f"{product} total given {_plain(given_total)} {total_unit} differs from the "
                f"planned total {_plain(planned_total)} {total_unit} by {diff * 100:.0f}% "
                f"(tolerance {source}).")))
    if dose_min is not None and dose_max is not None and not (
            Decimal(dose_min) <= Decimal(prescribed) <= Decimal(dose_max)):
        findings.append(DoseFinding(RANGE, (
            f"{product} dose {_plain(prescribed)} {unit} is outside the protocol's range "
            f"{_plain(dose_min)}-{_plain(dose_max)} {unit}.")))
    return findings
