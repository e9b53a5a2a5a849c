"""Controlled terminology of the SDTM exports, checked at export time (pure Python).

One release: **CDISC SDTM Controlled Terminology 2024-09-27** (NCI EVS, "SDTM Terminology"),
for the codelists below; COUNTRY uses ISO 3166-1 alpha-3 (SDTMIG 3.4 DM). Every value a
mapper writes into a variable bound to a codelist is checked (:func:`check`); a value the
codelist does not have stops the export with :class:`UnmappedTerm`, naming the variable and
the value, never a silent blank. Extensible codelists may carry sponsor extensions: they are
listed separately (``extensions``) so Define-XML can flag them ``def:ExtendedValue="Yes"``.

EORTC QLQ-C30 V3.0 test codes and names: CDISC QRS terminology, codelists C161619 (QSTESTCD,
``EOR0101``..``EOR0130``) and C161618 (QSTEST), QSCAT "EORTC QLQ-C30 V3.0" (codelist C100129
QSCAT). The test name of item 1 ("EOR01-Trouble Doing Strenuous Activities") was checked
against a published copy of the terminology; the other 29 names follow the same
``EORnn-<short item text>`` pattern from the EORTC item wording and are marked ``inferred``
in :data:`QLQ_C30_TESTS` until checked against the release file.

MedDRA system organ class codes (AESOCCD / AEBDSYCD): in CTCAE v5.0 every SOC has a
"<SOC> - Other, specify" term whose MedDRA code is the SOC's own code, so the 26 codes below
are those rows of ``seeds/ctcae_v5.csv`` (a unit test re-derives them from the file).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

CT_RELEASE = "CDISC SDTM Controlled Terminology 2024-09-27"
CT_VERSION = "2024-09-27"
QRS_TERMINOLOGY = f"CDISC QRS terminology ({CT_RELEASE}): C161619 / C161618"


class UnmappedTerm(ValueError):
    """A value outside its codelist: the export stops (message names variable and value)."""

    def __init__(self, variable: str, value: object, codelist: str):
        self.variable, self.value, self.codelist = variable, value, codelist
        super().__init__(f"{variable}: value {value!r} is not in codelist {codelist} "
                         f"({CT_RELEASE}); the export was stopped")


@dataclass(frozen=True)
class Codelist:
    short: str
    ncit: str | None  # NCI code of the codelist (None: not verified here)
    name: str
    terms: frozenset[str]
    extensible: bool = False
    extensions: frozenset[str] = field(default_factory=frozenset)

    def allows(self, value: str) -> bool:
        return value in self.terms or value in self.extensions


def _cl(short, ncit, name, terms, extensible=False, extensions=()) -> Codelist:
    return Codelist(short, ncit, name, frozenset(terms), extensible, frozenset(extensions))


CODELISTS: dict[str, Codelist] = {c.short: c for c in (
    _cl("NY", "C66742", "No Yes Response", ("N", "Y", "U", "NA")),
    _cl("AGEU", "C66781", "Age Unit", ("YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS")),
    _cl("SEX", "C66731", "Sex", ("F", "M", "U", "UNDIFFERENTIATED")),
    _cl("RACE", "C74457", "Race", (
        "AMERICAN INDIAN OR ALASKA NATIVE", "ASIAN", "BLACK OR AFRICAN AMERICAN",
        "NATIVE HAWAIIAN OR OTHER PACIFIC ISLANDER", "WHITE", "NOT REPORTED", "UNKNOWN",
        "OTHER"), extensible=True),
    _cl("ARMNULRS", "C142179", "Arm Null Reason", (
        "ASSIGNED, NOT TREATED", "NOT ASSIGNED", "SCREEN FAILURE", "UNPLANNED TREATMENT")),
    _cl("ACN", "C66767", "Action Taken with Study Treatment", (
        "DOSE NOT CHANGED", "DOSE REDUCED", "DOSE INCREASED", "DRUG INTERRUPTED",
        "DRUG WITHDRAWN", "NOT APPLICABLE", "UNKNOWN"), extensible=True),
    _cl("OUT", "C66768", "Outcome of Event", (
        "RECOVERED/RESOLVED", "RECOVERING/RESOLVING", "NOT RECOVERED/NOT RESOLVED",
        "RECOVERED/RESOLVED WITH SEQUELAE", "FATAL", "UNKNOWN")),
    _cl("TOXGR", None, "Toxicity Grade (CTCAE)", ("1", "2", "3", "4", "5")),
    _cl("EPOCH", "C99079", "Epoch", ("SCREENING", "TREATMENT", "FOLLOW-UP"),
        extensible=True),
    _cl("ROUTE", "C66729", "Route of Administration Response", (
        "INTRAVENOUS", "ORAL", "SUBCUTANEOUS", "INTRAMUSCULAR", "INTRATHECAL",
        "INTRA-ARTERIAL", "INTRATUMOR", "INTRADERMAL", "TOPICAL"), extensible=True),
    _cl("FRM", "C66726", "Pharmaceutical Dosage Form", (
        "SUSPENSION", "INJECTION", "SOLUTION", "TABLET", "CAPSULE"), extensible=True),
    # cells/kg and cells/m2 are not verified in the release: sponsor extensions.
    _cl("UNIT", "C71620", "Unit", ("mg", "mg/kg", "mg/m2", "g", "ug", "mL"),
        extensible=True, extensions=("cells/kg", "cells/m2")),
    _cl("QSCAT", "C100129", "Category of Questionnaire", ("EORTC QLQ-C30 V3.0",),
        extensible=True),
    _cl("QSSTAT", "C66789", "Not Done", ("NOT DONE",)),
    _cl("DSCAT", "C74558", "Category for Disposition Event", (
        "DISPOSITION EVENT", "PROTOCOL MILESTONE", "OTHER EVENT")),
    # DSDECOD: NCOMPLT (C66727) and PROTMLST (C114118) terms used by trialdesk
    _cl("DSDECOD", "C66727", "Completion/Reason for Non-Completion + Protocol Milestone", (
        "COMPLETED", "PROGRESSIVE DISEASE", "DEATH", "WITHDRAWAL BY SUBJECT",
        "LOST TO FOLLOW-UP", "PHYSICIAN DECISION", "ADVERSE EVENT", "SCREEN FAILURE",
        "INFORMED CONSENT OBTAINED", "RANDOMIZED"), extensible=True),
    _cl("IECAT", "C66797", "Category of Inclusion/Exclusion", ("INCLUSION", "EXCLUSION")),
    # Oncology response (SDTMIG 3.4 RS): the test trialdesk writes, the results of RECIST 1.1,
    # mRECIST and iRECIST (iCR .. iCPD), the evaluator; NCI codes not verified here.
    _cl("ONCRTSCD", None, "Oncology Response Assessment Test Code", ("OVRLRESP",),
        extensible=True),
    _cl("ONCRSR", None, "Oncology Response Assessment Result", (
        "CR", "PR", "SD", "PD", "NE", "NON-CR/NON-PD", "iCR", "iPR", "iSD", "iUPD", "iCPD"),
        extensible=True),
    _cl("EVAL", None, "Evaluator", ("INVESTIGATOR",), extensible=True),
    _cl("TSPARMCD", "C66738", "Trial Summary Parameter Test Code", (
        "TITLE", "REGID", "SPONSOR", "TPHASE", "PLANSUB", "TBLIND", "RANDOM", "NARMS",
        "SSTDTC", "STYPE", "TRT"), extensible=True),
)}

#: (domain, variable) -> codelist short name. SUPPQUAL's QVAL is checked per QNAM (NY).
VARIABLE_CODELISTS: dict[tuple[str, str], str] = {
    ("DM", "AGEU"): "AGEU", ("DM", "SEX"): "SEX", ("DM", "RACE"): "RACE",
    ("DM", "DTHFL"): "NY", ("DM", "ARMNRS"): "ARMNULRS",
    ("AE", "AESER"): "NY", ("AE", "AEACN"): "ACN", ("AE", "AEOUT"): "OUT",
    ("AE", "AESCONG"): "NY", ("AE", "AESDISAB"): "NY", ("AE", "AESDTH"): "NY",
    ("AE", "AESHOSP"): "NY", ("AE", "AESLIFE"): "NY", ("AE", "AESMIE"): "NY",
    ("AE", "AETOXGR"): "TOXGR", ("AE", "EPOCH"): "EPOCH",
    ("SUPPAE", "QVAL"): "NY",
    ("EX", "EXDOSU"): "UNIT", ("EX", "EXDOSFRM"): "FRM", ("EX", "EXROUTE"): "ROUTE",
    ("EX", "EPOCH"): "EPOCH",
    ("QS", "QSCAT"): "QSCAT", ("QS", "QSSTAT"): "QSSTAT", ("QS", "QSLOBXFL"): "NY",
    ("QS", "EPOCH"): "EPOCH",
    ("SV", "SVPRESP"): "NY", ("SV", "SVOCCUR"): "NY", ("SV", "EPOCH"): "EPOCH",
    ("DS", "DSCAT"): "DSCAT", ("DS", "DSDECOD"): "DSDECOD", ("DS", "EPOCH"): "EPOCH",
    ("IE", "IECAT"): "IECAT", ("IE", "IEORRES"): "NY", ("IE", "IESTRESC"): "NY",
    ("IE", "EPOCH"): "EPOCH",
    ("TS", "TSPARMCD"): "TSPARMCD", ("RS", "EPOCH"): "EPOCH",
    ("RS", "RSTESTCD"): "ONCRTSCD", ("RS", "RSORRES"): "ONCRSR", ("RS", "RSSTRESC"): "ONCRSR",
    ("RS", "RSEVAL"): "EVAL",
    ("TU", "TUEVAL"): "EVAL", ("TU", "EPOCH"): "EPOCH",
    ("TR", "TREVAL"): "EVAL", ("TR", "EPOCH"): "EPOCH",
    ("TA", "EPOCH"): "EPOCH", ("TI", "IECAT"): "IECAT",
}

#: ISO 3166-1 alpha-3 codes (SDTMIG 3.4 DM COUNTRY) of the country names sites are entered
#: with; an already 3-letter code must be one of these values.
COUNTRIES = {
    "argentina": "ARG", "australia": "AUS", "austria": "AUT", "belgium": "BEL",
    "brazil": "BRA", "canada": "CAN", "china": "CHN", "czech republic": "CZE",
    "czechia": "CZE", "denmark": "DNK", "finland": "FIN", "france": "FRA", "germany": "DEU",
    "greece": "GRC", "hong kong": "HKG", "hungary": "HUN", "india": "IND", "ireland": "IRL",
    "israel": "ISR", "italy": "ITA", "japan": "JPN", "korea": "KOR", "south korea": "KOR",
    "republic of korea": "KOR", "mexico": "MEX", "netherlands": "NLD",
    "new zealand": "NZL", "norway": "NOR", "poland": "POL", "portugal": "PRT",
    "russia": "RUS", "singapore": "SGP", "spain": "ESP", "sweden": "SWE",
    "switzerland": "CHE", "taiwan": "TWN", "turkey": "TUR", "united kingdom": "GBR",
    "uk": "GBR", "united states": "USA", "usa": "USA", "united states of america": "USA",
}
ISO3166 = frozenset(COUNTRIES.values())


def country_code(name: str | None) -> str | None:
    """COUNTRY (ISO 3166-1 alpha-3) of a site's country; blank -> None; a name or code
    outside the table stops the export (UnmappedTerm), never an invented code."""
    if not name or not name.strip():
        return None
    text = name.strip()
    code = text.upper() if len(text) == 3 and text.isalpha() else COUNTRIES.get(text.lower())
    if code not in ISO3166:
        raise UnmappedTerm("COUNTRY", name, "ISO 3166-1 alpha-3")
    return code


#: MedDRA SOC name -> SOC code (the "Other, specify" terms of CTCAE v5.0, see module doc).
SOC_CODES = {
    "Blood and lymphatic system disorders": 10005329,
    "Cardiac disorders": 10007541,
    "Congenital, familial and genetic disorders": 10010331,
    "Ear and labyrinth disorders": 10013993,
    "Endocrine disorders": 10014698,
    "Eye disorders": 10015919,
    "Gastrointestinal disorders": 10017947,
    "General disorders and administration site conditions": 10018065,
    "Hepatobiliary disorders": 10019805,
    "Immune system disorders": 10021428,
    "Infections and infestations": 10021881,
    "Injury, poisoning and procedural complications": 10022117,
    "Investigations": 10022891,
    "Metabolism and nutrition disorders": 10027433,
    "Musculoskeletal and connective tissue disorders": 10028395,
    "Neoplasms benign, malignant and unspecified (incl cysts and polyps)": 10029104,
    "Nervous system disorders": 10029205,
    "Pregnancy, puerperium and perinatal conditions": 10036585,
    "Psychiatric disorders": 10037175,
    "Renal and urinary disorders": 10038359,
    "Reproductive system and breast disorders": 10038604,
    "Respiratory, thoracic and mediastinal disorders": 10038738,
    "Skin and subcutaneous tissue disorders": 10040785,
    "Social circumstances": 10041244,
    "Surgical and medical procedures": 10042613,
    "Vascular disorders": 10047065,
}


def soc_code(soc: str) -> int:
    """AESOCCD / AEBDSYCD of a CTCAE v5.0 SOC name (UnmappedTerm when unknown)."""
    try:
        return SOC_CODES[soc]
    except KeyError:
        raise UnmappedTerm("AESOC", soc, "MedDRA SOC (CTCAE v5.0)") from None


#: QSTESTCD, QSTEST and provenance of the 30 EORTC QLQ-C30 V3.0 items (see module doc).
QLQ_C30_TESTS: tuple[tuple[str, str, str], ...] = tuple(
    (f"EOR01{n:02d}", name, "verified" if n == 1 else "inferred")
    for n, name in enumerate((
        "EOR01-Trouble Doing Strenuous Activities",
        "EOR02-Trouble Taking a Long Walk",
        "EOR03-Trouble Taking a Short Walk",
        "EOR04-Need to Stay in Bed or a Chair",
        "EOR05-Need Help With Eating, Dressing",
        "EOR06-Limited in Work/Daily Activities",
        "EOR07-Limited Pursuing Hobbies/Leisure",
        "EOR08-Were You Short of Breath",
        "EOR09-Have You Had Pain",
        "EOR10-Did You Need to Rest",
        "EOR11-Have You Had Trouble Sleeping",
        "EOR12-Have You Felt Weak",
        "EOR13-Have You Lacked Appetite",
        "EOR14-Have You Felt Nauseated",
        "EOR15-Have You Vomited",
        "EOR16-Have You Been Constipated",
        "EOR17-Have You Had Diarrhea",
        "EOR18-Were You Tired",
        "EOR19-Pain Interfere With Daily Activity",
        "EOR20-Difficulty in Concentrating",
        "EOR21-Did You Feel Tense",
        "EOR22-Did You Worry",
        "EOR23-Did You Feel Irritable",
        "EOR24-Did You Feel Depressed",
        "EOR25-Difficulty Remembering Things",
        "EOR26-Interfered With Family Life",
        "EOR27-Interfered With Social Activities",
        "EOR28-Caused You Financial Difficulties",
        "EOR29-Rate Your Overall Health",
        "EOR30-Rate Your Overall Quality of Life",
    ), 1)
)


def checks_for(domain: str, names: Sequence[str]) -> tuple[tuple[int, str, Codelist], ...]:
    """(column index, variable, codelist) of every codelist-bound variable of a dataset."""
    return tuple((i, name, CODELISTS[VARIABLE_CODELISTS[(domain, name)]])
                 for i, name in enumerate(names) if (domain, name) in VARIABLE_CODELISTS)


def check(rows: Iterable[Sequence], checks: tuple[tuple[int, str, Codelist], ...]) -> None:
    """Stop at the first value outside its codelist (None is a null, allowed)."""
    if not checks:
        return
    for row in rows:
        for index, name, codelist in checks:
            value = row[index]
            if value is not None and not codelist.allows(value):
                raise UnmappedTerm(name, value, f"{codelist.short} ({codelist.ncit or '-'})")
