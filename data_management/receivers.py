"""What data management does when the apps below it change data (their signals)."""

from __future__ import annotations

from visits import dose_checks
from visits.services import dose_findings

from .deviations import RuleFinding, sync_rule_deviations

#: dose-check code -> deviation category (every other dose check is a dosing deviation).
CATEGORY = {dose_checks.PRODUCT: "wrong_treatment"}


def exposure_deviations(sender, exposure, user=None, resolution: str = "", **kwargs) -> None:
    """``visits.signals.exposure_changed``: re-check the dose against the protocol; deviations
    and their queries open or resolve in the writing transaction. Retired exposures resolve
    their deviations."""
    findings = [] if exposure.retired_at else [
        RuleFinding(f.code, CATEGORY.get(f.code, "dosing"), f.text)
        for f in dose_findings(exposure)]
    sync_rule_deviations(exposure, dose_checks.CODES, findings, exposure.administered_on,
                         user, resolution)
