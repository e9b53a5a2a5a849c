"""The closed vocabularies a protocol file may use (with ``trials.vocabulary``, shared
with the recording code)."""

from __future__ import annotations

import re

from trials.vocabulary import RESPONSE_CODES, UNIT_TOTALS

SCHEMA_VERSION = 1
# Only CTCAE v5.0 (NCI, 2017) is accepted; seed 002 names it, the others default to it.
CTCAE_VERSIONS = ("5.0",)

PHASES = ("early_phase1", "phase1", "phase1_2", "phase2", "phase2_3", "phase3", "phase4")
STATUSES = ("not_yet_recruiting", "recruiting", "enrolling_by_invitation",
            "active_not_recruiting", "suspended", "terminated", "completed", "withdrawn",
            "unknown")
REGISTRIES = ("ctgov", "sponsor")
ALLOCATIONS = ("randomized", "non_randomized", "not_applicable")
MODELS = ("single_group", "parallel", "sequential", "crossover", "factorial")
MASKINGS = ("none", "single", "double", "triple", "quadruple")
PURPOSES = ("treatment", "prevention", "supportive_care", "diagnostic", "other")
ARM_TYPES = ("experimental", "placebo", "active_comparator")
INTERVENTION_TYPES = ("biological", "drug", "placebo", "procedure", "device", "other")
ROUTES = ("intravenous", "oral", "subcutaneous", "intramuscular", "intratumoral",
          "intrathecal")
#: Closed set of dose units and the dose basis each implies (``trials.vocabulary``).
DOSE_UNITS = {unit: basis for unit, (_, basis) in UNIT_TOTALS.items()}
DOSE_BASES = ("per_kg", "per_m2", "flat")
#: fixed: dose_value; range: dose_min..dose_max; dose_finding: the level assigned by
#: ``[dose_finding]``; per_label: "according to the drug instructions"; not_stated: no number.
DOSE_MODES = ("fixed", "range", "dose_finding", "per_label", "not_stated")
#: Dosing frequencies: CDISC Controlled Terminology codelist FREQ (C71113), submission values.
FREQUENCIES = ("ONCE", "QD", "BID", "TID", "QID", "QOD", "QW", "Q2W", "Q3W", "Q4W")
#: Frequencies of continuous (daily) dosing, recorded as dosing periods (SDTMIG 3.4 section
#: 6.1 EX: one record per constant-dosing interval, EXSTDTC..EXENDTC with EXDOSFRQ).
CONTINUOUS_FREQUENCIES = ("QD", "BID", "TID", "QID", "QOD")
#: Ordered; "related" means possible or more (ICH E2A "reasonable possibility").
ATTRIBUTION_LEVELS = ("unrelated", "unlikely", "possible", "probable", "definite")
TOX_KINDS = ("TI", "DLT")
WINDOW_ANCHORS = ("each_administration", "first_administration")
DF_METHODS = ("rule_based", "model_based", "not_stated")
DF_MODELS = ("crm", "bayesian_crm", "boin", "3+3")
DF_DIRECTIONS = ("escalation", "de_escalation")
CRM_MODELS = ("empiric", "logistic")
CRM_TIE_BREAKS = ("largest", "smallest")
DF_TARGETS = ("tolerable_dose", "mtd", "rp2d")
VISIT_KINDS = ("screening", "baseline", "cycle", "month", "end_of_treatment", "follow_up")
ASSESSMENT_KINDS = ("efficacy", "safety", "imaging", "qol", "pk", "laboratory")
PERIODS = ("screening", "treatment", "follow_up", "any")
ANCHORS = ("enrollment", "randomization", "first_dose", "each_administration")
#: The criteria a tumour assessment can be recorded in (``trials.vocabulary``).
RESPONSE_CRITERIA = tuple(RESPONSE_CODES)
SEXES = ("all", "female", "male")
NUMBERINGS = ("source", "assigned")
ENDPOINT_KINDS = ("primary", "secondary", "exploratory", "unclassified")

_NCT = re.compile(r"NCT\d{8}")
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
