"""Response codes per criteria and exposure plausibility limits (pure Python).

Overall response categories: RECIST 1.1 (Eisenhauer et al., Eur J Cancer 2009;45:228-247,
section 4.3/4.4: CR, PR, SD, PD, NE), mRECIST for HCC (Lencioni & Llovet, Semin Liver Dis
2010;30:52-60: same categories), iRECIST (Seymour et al., Lancet Oncol 2017;18:e143-e152:
iCR, iPR, iSD, iUPD, iCPD, NE).
"""

from __future__ import annotations

RESPONSE_CODES: dict[str, frozenset[str]] = {
    "RECIST 1.1": frozenset({"CR", "PR", "SD", "PD", "NE"}),
    "mRECIST": frozenset({"CR", "PR", "SD", "PD", "NE"}),
    "iRECIST": frozenset({"iCR", "iPR", "iSD", "iUPD", "iCPD", "NE"}),
}
#: Responses that confirm progression (RECIST 1.1 PD; iRECIST confirmed PD).
CONFIRMED_PROGRESSION = {"RECIST 1.1": "PD", "mRECIST": "PD", "iRECIST": "iCPD"}

#: The total a dose unit multiplies out to, and the basis it needs.
UNIT_TOTALS: dict[str, tuple[str, str]] = {
    "cells/kg": ("cells", "per_kg"),
    "cells/m2": ("cells", "per_m2"),
    "cells": ("cells", "flat"),
    "mg/kg": ("mg", "per_kg"),
    "mg/m2": ("mg", "per_m2"),
    "mg": ("mg", "flat"),
    "ug/kg": ("ug", "per_kg"),
    "ug": ("ug", "flat"),
    "mL": ("mL", "flat"),
}


def check_response(criteria: str, response: str) -> None:
    """Raise ``ValueError`` when ``response`` is not a category of ``criteria``."""
    codes = RESPONSE_CODES.get(criteria)
    if codes is None:
        raise ValueError(f"unknown response criteria {criteria!r}; "
                         f"use one of {', '.join(RESPONSE_CODES)}")
    if response not in codes:
        raise ValueError(f"{response!r} is not a {criteria} response; "
                         f"use one of {', '.join(sorted(codes))}")
