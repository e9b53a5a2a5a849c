"""Protocols as data: the schema, validator and loader of ``seeds/<short-name>.toml``.

A package: ``terms`` (vocabularies), ``model`` (the parsed protocol), ``reading`` (one reader
per table), ``checks`` (cross-table checks), ``loading`` (files, digest, stored versions).

Pure standard library (no Django): the Django side stores ``Protocol.to_dict()`` as JSON.

A protocol file describes one trial as written in one source document
(``source = "source/<file>.txt"``, relative to the TOML file).  Conventions:

* Every record table (trial, site, design, randomization, arm, intervention, regimen, dose
  finding, dose level, visit plan, visit, assessment, eligibility, safety, toxicity rule,
  endpoint) carries ``quote``: a string or a list of strings copied from the source document.
  The validator checks that each quote - and each eligibility criterion's ``text`` - occurs in
  the source after normalising whitespace and dropping backslash escapes (``10\\^6`` -> ``10^6``).
  ``quote = []`` is allowed only with a ``note`` saying why there is nothing to quote.
* Fields the document does not give are absent and listed in the table's ``not_stated``; for
  "declarable" fields the validator insists on one or the other, so a silence is explicit.
  Values that are read into the document rather than out of it are listed in ``inferred`` and
  explained in ``note``.
* Every problem found is reported at once in a ``ProtocolError`` (``file: path: problem``).
"""

from __future__ import annotations

from .loading import (  # noqa: F401
    canonical_json,
    load_all,
    load_protocol,
    load_protocol_text,
    parse_protocol,
    protocol_of,
)
from .model import (  # noqa: F401
    Arm,
    Assessment,
    Crm,
    Design,
    DoseFinding,
    DoseLevel,
    Eligibility,
    EligibilityCriterion,
    Endpoint,
    FrequencyLevel,
    Interval,
    Intervention,
    Issue,
    Protocol,
    ProtocolError,
    Randomization,
    Regimen,
    Safety,
    Site,
    ToxicityRule,
    Trial,
    Visit,
    VisitPlan,
    attribution_at_least,
)
from .reading import (  # noqa: F401
    normalise_quote,
    protocol_digest,
)
from .terms import (  # noqa: F401
    ALLOCATIONS,
    ANCHORS,
    ARM_TYPES,
    ASSESSMENT_KINDS,
    ATTRIBUTION_LEVELS,
    CONTINUOUS_FREQUENCIES,
    CRM_MODELS,
    CRM_TIE_BREAKS,
    CTCAE_VERSIONS,
    DF_DIRECTIONS,
    DF_METHODS,
    DF_MODELS,
    DF_TARGETS,
    DOSE_BASES,
    DOSE_MODES,
    DOSE_UNITS,
    ENDPOINT_KINDS,
    FREQUENCIES,
    INTERVENTION_TYPES,
    MASKINGS,
    MODELS,
    NUMBERINGS,
    PERIODS,
    PHASES,
    PURPOSES,
    REGISTRIES,
    RESPONSE_CRITERIA,
    ROUTES,
    SCHEMA_VERSION,
    SEXES,
    STATUSES,
    TOX_KINDS,
    VISIT_KINDS,
    WINDOW_ANCHORS,
)

__all__ = [
    "SCHEMA_VERSION",
    "CTCAE_VERSIONS",
    "PHASES",
    "STATUSES",
    "REGISTRIES",
    "ALLOCATIONS",
    "MODELS",
    "MASKINGS",
    "PURPOSES",
    "ARM_TYPES",
    "INTERVENTION_TYPES",
    "ROUTES",
    "DOSE_UNITS",
    "DOSE_BASES",
    "DOSE_MODES",
    "FREQUENCIES",
    "CONTINUOUS_FREQUENCIES",
    "ATTRIBUTION_LEVELS",
    "TOX_KINDS",
    "WINDOW_ANCHORS",
    "DF_METHODS",
    "DF_MODELS",
    "DF_DIRECTIONS",
    "CRM_MODELS",
    "CRM_TIE_BREAKS",
    "DF_TARGETS",
    "VISIT_KINDS",
    "ASSESSMENT_KINDS",
    "PERIODS",
    "ANCHORS",
    "RESPONSE_CRITERIA",
    "SEXES",
    "NUMBERINGS",
    "ENDPOINT_KINDS",
    "Issue",
    "ProtocolError",
    "Site",
    "Trial",
    "Randomization",
    "Design",
    "Arm",
    "Intervention",
    "Interval",
    "Regimen",
    "DoseLevel",
    "FrequencyLevel",
    "Crm",
    "DoseFinding",
    "Visit",
    "Assessment",
    "VisitPlan",
    "EligibilityCriterion",
    "Eligibility",
    "Safety",
    "attribution_at_least",
    "ToxicityRule",
    "Endpoint",
    "Protocol",
    "normalise_quote",
    "protocol_digest",
    "parse_protocol",
    "load_protocol_text",
    "load_protocol",
    "load_all",
    "canonical_json",
    "protocol_of",
]
