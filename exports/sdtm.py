"""CDISC SDTM mapping (SDTMIG 3.4) and Dataset-JSON 1.1 documents, in plain Python.

No Django import: the export engine feeds rows in, this module says what they become.

Standards followed (cited per function below):

* CDISC SDTM Implementation Guide v3.4 (SDTMIG 3.4):
  - section 4.4.1 "Formats for Date/Time Variables": ``--DTC`` values are ISO 8601 character
    strings (``YYYY-MM-DD``, ``YYYY-MM-DDThh:mm:ss``); times here are UTC, sent without offset;
  - section 4.4.4 "Use of the 'Study Day' Variables": ``--DY = date - RFSTDTC + 1`` on or after
    RFSTDTC, ``date - RFSTDTC`` before it; there is no study day 0;
  - section 5.2 Demographics (DM); section 6.1 Interventions (EX); section 6.2 Events (AE);
    section 6.3 Findings (QS); section 8.4 "Relating Non-standard Variable Values to a Parent
    Domain" (SUPPAE: ``RDOMAIN``, ``IDVAR``/``IDVARVAL``, ``QNAM``/``QLABEL``/``QVAL``);
  - SDTM variable names are at most 8 characters, labels at most 40, character values at most
    200 (SDTMIG 3.4 section 4.1 / SDTM v2.0 general assumptions); ``--SEQ`` is unique per
    subject within a domain.
* CDISC Dataset-JSON v1.1 (final, 2024-12-05): top-level attributes in the specified order
  (``datasetJSONCreationDateTime``, ``datasetJSONVersion`` "1.1.0", ``fileOID``,
  ``dbLastModifiedDateTime``, ``originator``, ``sourceSystem{name, version}``, ``studyOID``,
  ``metaDataVersionOID``, ``itemGroupOID``, ``records``, ``name``, ``label``, ``columns``,
  ``rows``); column metadata ``itemOID``, ``name``, ``label``, ``dataType``,
  ``targetDataType``, ``length``, ``keySequence``; "decimal" is exchanged as a JSON string with
  ``targetDataType`` "decimal"; dates as ISO 8601 strings; missing values are ``null``.

Controlled terminology: AEACN / AEOUT use the CDISC CT codelists ACN and OUT; AESER and the
seriousness flags use NY; EPOCH uses the EPOCH codelist (SCREENING, TREATMENT, FOLLOW-UP).
AEREL is sponsor-defined (no CDISC codelist): the worst attribution across interventions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from subjects import lifecycle
from subjects.age import completed_years

from . import terminology

DATASET_JSON_VERSION = "1.1.0"
SDTMIG_VERSION = "3.4"

# --------------------------------------------------------------------------- dates (SDTMIG 4.4)


def iso_date(value: dt.date | None) -> str | None:
    """ISO 8601 date ``YYYY-MM-DD`` (SDTMIG 3.4 section 4.4.1); None stays None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat()


def iso_datetime(value: dt.datetime | dt.date | None) -> str | None:
    """ISO 8601 date/time ``YYYY-MM-DDThh:mm:ss`` in UTC (SDTMIG 3.4 section 4.4.1).

    Aware values are converted to UTC and written without offset (the export states UTC);
    a plain date is written as a date (a time that was not collected is not invented).
    """
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0).isoformat()


def study_day(value: dt.date | None, reference: dt.date | None) -> int | None:
    """``--DY`` relative to RFSTDTC (SDTMIG 3.4 section 4.4.4): no day 0.

    ``date - RFSTDTC + 1`` when the date is on or after the reference (the reference is day 1),
    ``date - RFSTDTC`` before it (the day before is day -1). None when either is missing.
    """
    if value is None or reference is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    days = (value - reference).days
    return days + 1 if days >= 0 else days


def epoch(value: dt.date | None, reference: dt.date | None,
          treatment_end: dt.date | None) -> str | None:
    """EPOCH (CDISC CT): SCREENING before RFSTDTC, TREATMENT up to the end of treatment,
    FOLLOW-UP after it. No reference start (never enrolled): SCREENING."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if reference is None or value < reference:
        return "SCREENING"
    if treatment_end is not None and value > treatment_end:
        return "FOLLOW-UP"
    return "TREATMENT"


# --------------------------------------------------------------- terminology and identifiers


def usubjid(study_id: str, site: str, subject: str) -> str:
    """USUBJID ``<study id>-<site>-<subject>`` (trialdesk convention, unique across studies)."""
    return f"{study_id}-{site}-{subject}"


def mapped(variable: str, table: dict[str, str], value: str | None) -> str | None:
    """The CDISC CT term of a stored value; blank -> None; a value the table lacks stops the
    export (``terminology.UnmappedTerm``), never a silent blank."""
    if value is None or value == "":
        return None
    try:
        return table[value]
    except KeyError:
        raise terminology.UnmappedTerm(variable, value, "trialdesk -> CDISC CT map") from None


def yes_no(value: bool | None) -> str | None:
    """NY codelist: True -> "Y", False -> "N", unknown -> None."""
    if value is None:
        return None
    return "Y" if value else "N"


def decimal_text(value: Decimal | int | float | None) -> str | None:
    """A decimal as plain text without exponent or trailing zeros (Dataset-JSON "decimal")."""
    if value is None:
        return None
    return format(Decimal(value).normalize(), "f")


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` bytes of UTF-8 at a character boundary: a SAS XPORT v5
    character value holds at most 200 bytes, 200 characters of ASCII text only."""
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def code_from_label(label: str, max_length: int = 20) -> str:
    """An ARMCD-style code from a label: upper-case letters and digits, at most 20 characters
    (SDTMIG 3.4 DM: ARMCD is limited to 20 characters)."""
    return "".join(ch for ch in label.upper() if ch.isalnum())[:max_length]


#: AEACN, CDISC CT codelist ACN (Action Taken with Study Treatment).
ACTION_TAKEN = {
    "dose_not_changed": "DOSE NOT CHANGED",
    "dose_reduced": "DOSE REDUCED",
    "dose_increased": "DOSE INCREASED",
    "drug_interrupted": "DRUG INTERRUPTED",
    "drug_withdrawn": "DRUG WITHDRAWN",
    "not_applicable": "NOT APPLICABLE",
    "unknown": "UNKNOWN",
}
#: AEOUT, CDISC CT codelist OUT (Outcome of Event).
OUTCOME = {
    "recovered": "RECOVERED/RESOLVED",
    "recovering": "RECOVERING/RESOLVING",
    "not_recovered": "NOT RECOVERED/NOT RESOLVED",
    "sequelae": "RECOVERED/RESOLVED WITH SEQUELAE",
    "fatal": "FATAL",
    "unknown": "UNKNOWN",
}
#: Attribution levels, weakest first, and their AEREL wording (sponsor-defined terminology).
RELATIONSHIP = {
    "unrelated": "NOT RELATED",
    "unlikely": "UNLIKELY RELATED",
    "possible": "POSSIBLY RELATED",
    "probable": "PROBABLY RELATED",
    "definite": "RELATED",
}
_RANK = {level: rank for rank, level in enumerate(RELATIONSHIP)}


def worst_level(levels: Iterable[str]) -> str | None:
    """The strongest attribution level among ``levels`` (None when there is none)."""
    best = None
    for level in levels:
        if best is None or _RANK[level] > _RANK[best]:
            best = level
    return best


def relationship(levels: Iterable[str]) -> str | None:
    """AEREL: the worst attribution of the AE to any study intervention (ICH E2A scale)."""
    level = worst_level(levels)
    return None if level is None else RELATIONSHIP[level]


def parse_attributions(text: str | None) -> tuple[tuple[int, str], ...]:
    """``"12:possible;14:unlikely"`` (intervention id, level; as the engine's query aggregates
    them) into pairs."""
    if not text:
        return ()
    pairs = []
    for part in text.split(";"):
        key, _, level = part.partition(":")
        pairs.append((int(key), level))
    return tuple(pairs)


# ----------------------------------------------------------------------- variable metadata


@dataclass(frozen=True)
class Variable:
    """One SDTM variable and its Dataset-JSON 1.1 column metadata."""

    name: str
    label: str
    data_type: str = "string"  # Dataset-JSON dataType
    length: int | None = None
    key_sequence: int | None = None

    def column(self, domain: str) -> dict:
        """Dataset-JSON 1.1 column object (attribute order as in the specification)."""
        column = {"itemOID": f"IT.{domain}.{self.name}", "name": self.name,
                  "label": self.label, "dataType": self.data_type}
        if self.data_type == "decimal":
            column["targetDataType"] = "decimal"
        if self.length is not None:
            column["length"] = self.length
        if self.key_sequence is not None:
            column["keySequence"] = self.key_sequence
        return column


def _v(name, label, data_type="string", length=None, key=None) -> Variable:
    return Variable(name, label, data_type, length, key)


_STUDY = _v("STUDYID", "Study Identifier", length=40, key=1)
_USUBJID = _v("USUBJID", "Unique Subject Identifier", length=102, key=2)
_EPOCH = _v("EPOCH", "Epoch", length=9)
_VISIT = _v("VISIT", "Visit Name", length=40)
_VISITNUM = _v("VISITNUM", "Visit Number", "double")

AE_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("DOMAIN", "Domain Abbreviation", length=2), _USUBJID,
    _v("AESEQ", "Sequence Number", "integer", key=3),
    _v("AETERM", "Reported Term for the Adverse Event", length=200),
    _v("AELLT", "Lowest Level Term", length=200),
    _v("AELLTCD", "Lowest Level Term Code", "integer"),
    _v("AEDECOD", "Dictionary-Derived Term", length=200),
    _v("AEPTCD", "Preferred Term Code", "integer"),
    _v("AEHLT", "High Level Term", length=200),
    _v("AEHLTCD", "High Level Term Code", "integer"),
    _v("AEHLGT", "High Level Group Term", length=200),
    _v("AEHLGTCD", "High Level Group Term Code", "integer"),
    _v("AEBODSYS", "Body System or Organ Class", length=200),
    _v("AEBDSYCD", "Body System or Organ Class Code", "integer"),
    _v("AESOC", "Primary System Organ Class", length=200),
    _v("AESOCCD", "Primary System Organ Class Code", "integer"),
    _v("AESER", "Serious Event", length=1),
    _v("AEACN", "Action Taken with Study Treatment", length=16),
    _v("AEREL", "Causality", length=16),
    _v("AEOUT", "Outcome of Adverse Event", length=32),
    _v("AESCONG", "Congenital Anomaly or Birth Defect", length=1),
    _v("AESDISAB", "Persist or Signif Disability/Incapacity", length=1),
    _v("AESDTH", "Results in Death", length=1),
    _v("AESHOSP", "Requires or Prolongs Hospitalization", length=1),
    _v("AESLIFE", "Is Life Threatening", length=1),
    _v("AESMIE", "Other Medically Important Serious Event", length=1),
    _v("AETOXGR", "Standard Toxicity Grade", length=1),
    _EPOCH,
    _v("AESTDTC", "Start Date/Time of Adverse Event", "date"),
    _v("AEENDTC", "End Date/Time of Adverse Event", "date"),
    _v("AESTDY", "Study Day of Start of Adverse Event", "integer"),
    _v("AEENDY", "Study Day of End of Adverse Event", "integer"),
)

SUPPAE_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("RDOMAIN", "Related Domain Abbreviation", length=2, key=2),
    _v("USUBJID", "Unique Subject Identifier", length=102, key=3),
    _v("IDVAR", "Identifying Variable", length=8, key=4),
    _v("IDVARVAL", "Identifying Variable Value", length=200, key=5),
    _v("QNAM", "Qualifier Variable Name", length=8, key=6),
    _v("QLABEL", "Qualifier Variable Label", length=40),
    _v("QVAL", "Data Value", length=200),
    _v("QORIG", "Origin", length=20),
    _v("QEVAL", "Evaluator", length=20),
)

EX_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("DOMAIN", "Domain Abbreviation", length=2), _USUBJID,
    _v("EXSEQ", "Sequence Number", "integer", key=3),
    _v("EXTRT", "Name of Treatment", length=200),
    _v("EXDOSE", "Dose", "decimal", length=30),
    _v("EXDOSU", "Dose Units", length=40),
    _v("EXDOSFRM", "Dose Form", length=40),
    _v("EXDOSFRQ", "Dosing Frequency per Interval", length=10),
    _v("EXROUTE", "Route of Administration", length=40),
    _v("EXADJ", "Reason for Dose Adjustment", length=200),
    _VISITNUM, _VISIT, _EPOCH,
    _v("EXSTDTC", "Start Date/Time of Treatment", "datetime"),
    _v("EXENDTC", "End Date/Time of Treatment", "datetime"),
    _v("EXSTDY", "Study Day of Start of Treatment", "integer"),
    _v("EXENDY", "Study Day of End of Treatment", "integer"),
)

QS_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("DOMAIN", "Domain Abbreviation", length=2), _USUBJID,
    _v("QSSEQ", "Sequence Number", "integer", key=3),
    _v("QSTESTCD", "Question Short Name", length=8),
    _v("QSTEST", "Question Name", length=40),
    _v("QSCAT", "Category of Question", length=40),
    _v("QSORRES", "Finding in Original Units", length=11),
    _v("QSSTRESC", "Character Result/Finding in Std Format", length=1),
    _v("QSSTRESN", "Numeric Result/Finding in Standard Units", "integer"),
    _v("QSSTAT", "Completion Status", length=8),
    _v("QSLOBXFL", "Last Observation Before Exposure Flag", length=1),
    _VISITNUM, _VISIT, _EPOCH,
    _v("QSDTC", "Date/Time of Finding", "date"),
    _v("QSDY", "Study Day of Finding", "integer"),
)

DV_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("DOMAIN", "Domain Abbreviation", length=2), _USUBJID,
    _v("DVSEQ", "Sequence Number", "integer", key=3),
    _v("DVSPID", "Sponsor-Defined Identifier", length=20),
    _v("DVTERM", "Protocol Deviation Term", length=200),
    _v("DVDECOD", "Protocol Deviation Coded Term", length=40),
    _v("DVCAT", "Category for Protocol Deviation", length=40),
    _EPOCH,
    _v("DVSTDTC", "Start Date/Time of Deviation", "date"),
    _v("DVSTDY", "Study Day of Start of Deviation", "integer"),
)

BIRTH_DATE = _v("BRTHDTC", "Date/Time of Birth", "date")
DM_VARIABLES: tuple[Variable, ...] = (
    _STUDY, _v("DOMAIN", "Domain Abbreviation", length=2), _USUBJID,
    _v("SUBJID", "Subject Identifier for the Study", length=40),
    _v("RFSTDTC", "Subject Reference Start Date/Time", "date"),
    _v("RFENDTC", "Subject Reference End Date/Time", "date"),
    _v("RFXSTDTC", "Date/Time of First Study Treatment", "date"),
    _v("RFXENDTC", "Date/Time of Last Study Treatment", "date"),
    _v("RFICDTC", "Date/Time of Informed Consent", "date"),
    _v("RFPENDTC", "Date/Time of End of Participation", "date"),
    _v("DTHDTC", "Date/Time of Death", "date"),
    _v("DTHFL", "Subject Death Flag", length=1),
    _v("SITEID", "Study Site Identifier", length=20),
    BIRTH_DATE,
    _v("AGE", "Age", "integer"),
    _v("AGEU", "Age Units", length=6),
    _v("SEX", "Sex", length=1),
    _v("RACE", "Race", length=60),
    _v("ARMCD", "Planned Arm Code", length=20),
    _v("ARM", "Description of Planned Arm", length=200),
    _v("ACTARMCD", "Actual Arm Code", length=20),
    _v("ACTARM", "Description of Actual Arm", length=200),
    _v("ARMNRS", "Reason Arm and/or Actual Arm is Null", length=200),
    _v("ACTARMUD", "Description of Unplanned Actual Arm", length=200),
    _v("COUNTRY", "Country", length=3),
)

DOMAINS = {
    "AE": ("Adverse Events", AE_VARIABLES),
    "SUPPAE": ("Supplemental Qualifiers for AE", SUPPAE_VARIABLES),
    "EX": ("Exposure", EX_VARIABLES),
    "DV": ("Protocol Deviations", DV_VARIABLES),
    "QS": ("Questionnaires", QS_VARIABLES),
    "DM": ("Demographics", DM_VARIABLES),
}


def dm_variables(birth_date: bool) -> tuple[Variable, ...]:
    """DM variables; BRTHDTC only for users allowed to see it (never for sponsors)."""
    return DM_VARIABLES if birth_date else tuple(v for v in DM_VARIABLES if v is not BIRTH_DATE)


# ----------------------------------------------------------------------------- record mapping


@dataclass(frozen=True)
class Study:
    """What every record of one export shares."""

    study_id: str


class AeMapper:
    """AE domain record (SDTMIG 3.4 section 6.2, AE) from one engine row.

    The row provides: ``site_code, subjid, seq, verbatim_term, term, meddra_code, soc,
    serious, sae_*`` (six criteria), ``action_taken, outcome, grade, onset_date,
    resolution_date, attributions`` (``parse_attributions`` text), ``day0`` (RFSTDTC) and
    ``treatment_stop_date``. AETERM is the verbatim term when one was given, else the CTCAE
    term; AEDECOD/AELLT the CTCAE v5.0 term, AELLTCD and AEPTCD its MedDRA code (CTCAE v5.0
    terms are MedDRA terms coded at the level CTCAE publishes; without a licensed MedDRA
    dictionary the term is not re-coded, so AEPTCD = AELLTCD); AEBODSYS = AESOC the MedDRA
    primary SOC and AEBDSYCD = AESOCCD its code (``terminology.SOC_CODES``); AEHLT, AEHLTCD,
    AEHLGT and AEHLGTCD are present and null (they need the MedDRA hierarchy, not licensed
    here). AETOXGR is the worst CTCAE grade. Seriousness flags are populated only for serious
    events (null otherwise), as in the SDTMIG AE examples. AEACN (ACN) and AEOUT (OUT) values
    the codelist lacks stop the export (``terminology.UnmappedTerm``).
    """

    variables = AE_VARIABLES

    def __init__(self, study: Study):
        self.study_id = study.study_id
        self._rel: dict[str | None, str | None] = {}

    def __call__(self, r) -> tuple:
        rel = self._rel.get(r.attributions, 0)
        if rel == 0:
            rel = relationship(level for _, level in parse_attributions(r.attributions))
            self._rel[r.attributions] = rel
        serious = r.serious
        if serious:
            criteria = ("Y" if r.sae_congenital_anomaly else "N",
                        "Y" if r.sae_disability else "N", "Y" if r.sae_death else "N",
                        "Y" if r.sae_hospitalization else "N",
                        "Y" if r.sae_life_threatening else "N",
                        "Y" if r.sae_medically_important else "N")
        else:
            criteria = (None,) * 6
        onset, end, day0 = r.onset_date, r.resolution_date, r.day0
        code, soc_code = int(r.meddra_code), terminology.soc_code(r.soc)
        return (
            self.study_id, "AE", usubjid(self.study_id, r.site_code, r.subjid), r.seq,
            r.verbatim_term or r.term, r.term, code, r.term, code, None, None, None, None,
            r.soc, soc_code, r.soc, soc_code,
            "Y" if serious else "N", mapped("AEACN", ACTION_TAKEN, r.action_taken),
            rel, mapped("AEOUT", OUTCOME, r.outcome), *criteria,
            None if r.grade is None else str(r.grade),
            epoch(onset, day0, r.treatment_stop_date),
            onset.isoformat(), None if end is None else end.isoformat(),
            study_day(onset, day0), study_day(end, day0),
        )


#: SUPPAE qualifiers (SDTMIG 3.4 section 8.4): QNAM -> (toxicity flag kind, QLABEL).
SUPPAE_QUALIFIERS = {"DLT": ("AEDLT", "Dose-Limiting Toxicity"),
                     "TI": ("AETI", "Treatment Intolerance")}


def suppae_record(study: Study, r) -> tuple:
    """SUPPAE record (SDTMIG 3.4 section 8.4) of one AE's DLT or TI result.

    The row provides ``site_code, subjid, seq, kind`` ("DLT"/"TI"), ``value`` (effective flag:
    the investigator's override when set, else the rule's result) and ``overridden``.
    QORIG is DERIVED (computed by the protocol rules) or ASSIGNED (investigator override,
    QEVAL INVESTIGATOR).
    """
    qnam, qlabel = SUPPAE_QUALIFIERS[r.kind]
    return (
        study.study_id, "AE", usubjid(study.study_id, r.site_code, r.subjid), "AESEQ",
        str(r.seq), qnam, qlabel, "Y" if r.value else "N",
        "ASSIGNED" if r.overridden else "DERIVED", "INVESTIGATOR" if r.overridden else None,
    )


@dataclass(frozen=True)
class TreatmentView:
    """How one intervention is shown in EX: name, route, dose form, and whether its dose is
    masked."""

    code: str
    name: str
    route: str | None
    mask_dose: bool = False
    form: str | None = None


def dose_form(cell_product: bool) -> str | None:
    """EXDOSFRM (CDISC CT FRM). The protocol files state no dosage form; a cell product given
    by infusion is a cell suspension, so cell products are "SUSPENSION" (inferred from the
    nature of the product, stated as such in Define-XML); other products: null (not stated)."""
    return "SUSPENSION" if cell_product else None


class ExMapper:
    """EX domain record (SDTMIG 3.4 section 6.1, EX) from one engine row.

    The row provides ``site_code, subjid, seq, intervention_id, dose_value, dose_unit,
    frequency, administered_on, end_date, start_time, stop_time, visitnum, visit, interrupted,
    interruption_reason, day0, treatment_stop_date``. EXSTDTC/EXENDTC are the infusion
    start/stop times when recorded, else the administration date; a dosing period (a daily
    product) runs from its start to its end date with its frequency (EXDOSFRQ, CDISC FREQ;
    ONCE for a single administration), one record per constant-dosing interval (SDTMIG 3.4
    section 6.1 EX assumptions). VISIT is empty for periods and unscheduled products.
    ``treatments`` maps intervention ids to how they are shown (see ``exports.blinding``: a
    blinded user sees active and matching placebo alike, with no dose).
    """

    variables = EX_VARIABLES

    def __init__(self, study: Study, treatments: dict[int, TreatmentView]):
        self.study_id = study.study_id
        self.treatments = treatments

    def __call__(self, r) -> tuple:
        view = self.treatments[r.intervention_id]
        day0, on = r.day0, r.administered_on
        start = iso_datetime(r.start_time) if r.start_time else on.isoformat()
        end_day = r.end_date or (r.stop_time.date() if r.stop_time else on)
        end = (r.end_date.isoformat() if r.end_date else
               iso_datetime(r.stop_time) if r.stop_time else on.isoformat())
        return (
            self.study_id, "EX", usubjid(self.study_id, r.site_code, r.subjid), r.seq,
            view.name, None if view.mask_dose else decimal_text(r.dose_value),
            None if view.mask_dose else (r.dose_unit or None), view.form, r.frequency or "ONCE",
            view.route.upper() if view.route else None,
            (r.interruption_reason or "INTERRUPTED") if r.interrupted else None,
            visit_number(r.visitnum), r.visit, epoch(on, day0, r.treatment_stop_date),
            start, end, study_day(on, day0), study_day(end_day, day0),
        )


def visit_number(value) -> float | None:
    """VISITNUM as a number (planned visits 1, 2, ...; unscheduled ones n.01, n.02 after the
    planned visit n before them; see ``exports.engine.VISITNUM``)."""
    return None if value is None else float(value)


class DvMapper:
    """DV domain record (SDTMIG 3.4 section 6.2, DV) from one engine row.

    The row provides ``site_code, subjid, seq, id, description, category, occurred_on, day0,
    treatment_stop_date``. DVTERM is the deviation's description (``mask`` hides product names
    from users blinded to the trial), DVDECOD the trialdesk category code and DVCAT its label
    (sponsor-defined: CDISC CT has no codelist for either), DVSPID the deviation's id.
    """

    variables = DV_VARIABLES

    def __init__(self, study: Study, categories: dict[str, str], mask=None):
        self.study_id = study.study_id
        self.categories = categories
        self.mask = mask or (lambda text: text)

    def __call__(self, r) -> tuple:
        on, day0 = r.occurred_on, r.day0
        return (
            self.study_id, "DV", usubjid(self.study_id, r.site_code, r.subjid), r.seq,
            str(r.id), clip(self.mask(r.description)), r.category.upper(),
            self.categories.get(r.category, r.category).upper(),
            epoch(on, day0, r.treatment_stop_date), iso_date(on), study_day(on, day0),
        )


QS_CATEGORY = "EORTC QLQ-C30 V3.0"
QS_ITEMS = 30
#: QSTESTCD / QSTEST per item (CDISC QRS terminology, see ``exports.terminology``).
QS_TESTS = tuple((code, name) for code, name, _ in terminology.QLQ_C30_TESTS)
#: QSORRES as worded on the form (QRS convention: the text of the response, its number in
#: QSSTRESC/QSSTRESN): items 1-28 "Not at all" .. "Very much"; items 29-30 are rated 1
#: ("Very poor") to 7 ("Excellent"), the points between have no text.
FOUR_POINT = {1: "Not at all", 2: "A little", 3: "Quite a bit", 4: "Very much"}
SEVEN_POINT = {1: "Very poor", 7: "Excellent"}


class QsMapper:
    """QS domain records (SDTMIG 3.4 section 6.3, QS): 30 per QLQ-C30 v3.0 form.

    The row provides ``id, site_code, subjid, rank`` (the form's order for the subject),
    ``completion_date, visitnum, visit, day0, treatment_stop_date``, the answers
    ``q1``..``q30`` and ``lobx1``..``lobx30``: the id of the subject's form holding the last
    non-missing answer to each item on or before the first exposure (SDTMIG 3.4 --LOBXFL
    "Last Observation Before Exposure Flag"; null when never exposed). QSSEQ = (rank - 1) * 30
    + item number: unique per subject and stable. An unanswered item is QSSTAT "NOT DONE" with
    empty results (SDTMIG 3.4 findings assumptions).
    """

    variables = QS_VARIABLES
    expands = True  # one engine row (a form) gives several records

    def __init__(self, study: Study):
        self.study_id = study.study_id
        self._results = {}
        for n in range(1, QS_ITEMS + 1):
            words = FOUR_POINT if n <= 28 else SEVEN_POINT
            for v in range(1, (4 if n <= 28 else 7) + 1):
                self._results[n, v] = (words.get(v, str(v)), str(v), v, None)
        self._missing = (None, None, None, "NOT DONE")

    def __call__(self, r) -> Iterator[tuple]:
        subject = usubjid(self.study_id, r.site_code, r.subjid)
        date, day0 = r.completion_date, r.day0
        qsdtc, qsdy = date.isoformat(), study_day(date, day0)
        ep = epoch(date, day0, r.treatment_stop_date)
        base = (r.rank - 1) * QS_ITEMS
        results, missing, visitnum = self._results, self._missing, visit_number(r.visitnum)
        for n, (testcd, test) in enumerate(QS_TESTS, 1):
            value = getattr(r, f"q{n}")
            result = missing if value is None else results[n, value]
            lobx = "Y" if value is not None and getattr(r, f"lobx{n}") == r.id else None
            yield (self.study_id, "QS", subject, base + n, testcd, test, QS_CATEGORY,
                   *result, lobx, visitnum, r.visit, ep, qsdtc, qsdy)


@dataclass(frozen=True)
class ArmView:
    """ARMCD / ARM as the user may see them (blinded label for blinded users)."""

    code: str
    label: str


def age(birth_date: dt.date | None, consent_date: dt.date | None,
        entered_age: int | None) -> int | None:
    """DM AGE at informed consent (RFICDTC) in completed years (``subjects.age``) from the
    birth date; the age entered at consent when no birth date was collected."""
    if birth_date is not None and consent_date is not None:
        return completed_years(birth_date, consent_date)
    return entered_age


class DmMapper:
    """DM domain record (SDTMIG 3.4 section 5.2, DM) from one engine row.

    The row provides ``site_code, country, subjid, consent_date, day0, status, status_date,
    birth_date, age_at_consent, sex, race, arm_id, death_date, first_dose, last_dose,
    last_contact, actual_arm_id``. RFSTDTC = day 0 of the schedule; RFENDTC = the off-study date;
    RFXSTDTC/RFXENDTC = first and last exposure; RFICDTC = consent; RFPENDTC = the last date
    the subject is known in the trial (off-study or death date, else the latest visit,
    exposure, AE or questionnaire date); AGE/AGEU at consent (:func:`age`). ACTARM = ARM once
    treated, or the arm actually received where the statistician recorded an allocation error
    (``actual_arm_id``; the subject stays in ARM, as randomized); the actual arm is always one
    of the trial's arms, so ACTARMUD is null; ARMNRS explains a null
    ARM/ACTARM (CT ARMNULRS). ARM/ARMCD/ACTARM/ACTARMCD are what ``arms`` shows the user
    (``exports.blinding``). No direct identifiers: BRTHDTC only when ``birth_date`` is allowed
    for the user (the birth date is still used for AGE).
    """

    def __init__(self, study: Study, arms: dict[int, ArmView], birth_date: bool):
        self.study_id = study.study_id
        self.arms = arms
        self.birth_date = birth_date
        self.variables = dm_variables(birth_date)

    def __call__(self, r) -> tuple:
        arm = self.arms.get(r.arm_id) if r.arm_id is not None else None
        actual = self.arms.get(r.actual_arm_id, arm) if r.actual_arm_id is not None else arm
        treated = r.first_dose is not None
        if arm is None:
            reason = "SCREEN FAILURE" if r.status == lifecycle.SCREEN_FAILURE else "NOT ASSIGNED"
        else:
            reason = None if treated else "ASSIGNED, NOT TREATED"
        years = age(r.birth_date, r.consent_date, r.age_at_consent)
        record = [
            self.study_id, "DM", usubjid(self.study_id, r.site_code, r.subjid), r.subjid,
            iso_date(r.day0), iso_date(r.status_date) if r.status == lifecycle.OFF_STUDY else None,
            iso_date(r.first_dose), iso_date(r.last_dose), iso_date(r.consent_date),
            iso_date(r.last_contact), iso_date(r.death_date), "Y" if r.death_date else None,
            r.site_code,
        ]
        if self.birth_date:
            record.append(iso_date(r.birth_date))
        record += [
            years, "YEARS" if years is not None else None, r.sex, r.race or None,
            arm.code if arm else None, arm.label if arm else None,
            actual.code if actual and treated else None,
            actual.label if actual and treated else None,
            reason, None, terminology.country_code(r.country),
        ]
        return tuple(record)


# ------------------------------------------------------------------------ Dataset-JSON 1.1


def _timestamp(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
        return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    return value.replace(microsecond=0).isoformat()


def dataset_json_header(*, domain: str, label: str, variables: Sequence[Variable],
                        records: int, created: dt.datetime, study_oid: str, file_oid: str,
                        originator: str, source_system: tuple[str, str],
                        db_last_modified: dt.datetime | None = None,
                        metadata_version_oid: str | None = None) -> dict:
    """Every Dataset-JSON 1.1 top-level attribute except ``rows``, in the specified order.

    ``dbLastModifiedDateTime`` must not be after ``datasetJSONCreationDateTime`` (spec); it is
    clamped to it. ``metaDataVersionOID`` defaults to ``MDV.<study>.SDTMIG.3.4``.
    """
    header = {
        "datasetJSONCreationDateTime": _timestamp(created),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": file_oid,
    }
    if db_last_modified is not None:
        header["dbLastModifiedDateTime"] = _timestamp(min(db_last_modified, created))
    header.update({
        "originator": originator,
        "sourceSystem": {"name": source_system[0], "version": source_system[1]},
        "studyOID": study_oid,
        "metaDataVersionOID": metadata_version_oid or f"MDV.{study_oid}.SDTMIG.{SDTMIG_VERSION}",
        "itemGroupOID": f"IG.{domain}",
        "records": records,
        "name": domain,
        "label": label,
        "columns": [v.column(domain) for v in variables],
    })
    return header


def dataset_json_chunks(header: dict, row_chunks: Iterable[Sequence[Sequence]]) -> Iterator[str]:
    """The Dataset-JSON document as text chunks: the header, then ``rows`` chunk by chunk.

    Rows are never held all at once (constant memory); each chunk is encoded in one call.
    """
    head = json.dumps(header, ensure_ascii=False, separators=(",", ":"))
    yield head[:-1] + ',"rows":['
    first = True
    for chunk in row_chunks:
        if not chunk:
            continue
        text = json.dumps(chunk, ensure_ascii=False, separators=(",", ":"))[1:-1]
        yield text if first else "," + text
        first = False
    yield "]}"


def dataset_ndjson_chunks(header: dict, row_chunks: Iterable[Sequence[Sequence]]
                          ) -> Iterator[str]:
    """Dataset-JSON 1.1 NDJSON: the first line is the metadata (every top-level attribute
    but ``rows``), then one JSON array per row and line (Dataset-JSON v1.1 "NDJSON
    representation"); constant memory like :func:`dataset_json_chunks`."""
    yield json.dumps(header, ensure_ascii=False, separators=(",", ":")) + "\n"
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for chunk in row_chunks:
        if chunk:
            yield "".join(encode(list(row)) + "\n" for row in chunk)


def dataset_json(header: dict, rows: Sequence[Sequence]) -> dict:
    """The whole Dataset-JSON document as a dict (small datasets, tests)."""
    return json.loads("".join(dataset_json_chunks(header, [rows])))
