"""Closed vocabularies shared by the protocol schema (what a protocol file may name) and the
recording code (what a visit or exposure may record): one list each, so that a protocol
cannot load with a term its data could never be recorded in. Plain Python.
"""

from __future__ import annotations

#: Overall response categories per criteria: RECIST 1.1 (Eisenhauer et al., Eur J Cancer
#: 2009;45:228-247, sections 4.3/4.4), mRECIST for HCC (Lencioni & Llovet, Semin Liver Dis
#: 2010;30:52-60: same categories), iRECIST (Seymour et al., Lancet Oncol 2017;18:e143-e152).
RESPONSE_CODES: dict[str, frozenset[str]] = {
    "RECIST 1.1": frozenset({"CR", "PR", "SD", "PD", "NE"}),
    "mRECIST": frozenset({"CR", "PR", "SD", "PD", "NE"}),
    "iRECIST": frozenset({"iCR", "iPR", "iSD", "iUPD", "iCPD", "NE"}),
}
#: Responses that confirm progression (RECIST 1.1 PD; iRECIST confirmed PD).
CONFIRMED_PROGRESSION = {"RECIST 1.1": "PD", "mRECIST": "PD", "iRECIST": "iCPD"}

#: Dose unit -> (the unit its total multiplies out to, the dose basis it needs).
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
