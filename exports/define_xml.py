"""Define-XML 2.1 of the exported datasets (plain Python, streamed with the stdlib).

CDISC Define-XML v2.1 (2019-05-15), on ODM 1.3.2: one ``ItemGroupDef`` per dataset (SDTMIG
3.4 domains and the ADaM datasets, ``def:Structure``, ``def:Class``, key sequence, a
``def:leaf`` to the SAS XPORT file), one ``ItemDef`` per variable (name, label, Define data
type, length, origin) and one ``CodeList`` per CDISC CT codelist bound to a variable
(``exports.terminology``: enumerated values, the NCI code as ``Alias``, sponsor extensions
flagged ``def:ExtendedValue="Yes"``). Data types: Dataset-JSON "string" -> ``text``, "date"
-> ``date``, "integer" -> ``integer``, "decimal"/"double" -> ``float``.

Origins (Define-XML 2.1 section 5.3.11): identifiers and DOMAIN are ``Assigned``; --SEQ,
--DY, EPOCH, VISITNUM, AGE/AGEU, coded values and every ADaM variable ``Derived``; the rest
``Collected`` (source Investigator) except QS results (source Subject) and the trial design
datasets TS, TE, TA, TV, TI (``Protocol``; reference data, not repeating).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from io import StringIO
from xml.sax.saxutils import XMLGenerator

from . import adam, domains, terminology
from .sdtm import SDTMIG_VERSION, Variable

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
DEF_NS = "http://www.cdisc.org/ns/def/v2.1"
XLINK_NS = "http://www.w3.org/1999/xlink"
DATA_TYPES = {"string": "text", "date": "date", "datetime": "datetime", "integer": "integer",
              "decimal": "float", "double": "float", "float": "float"}
#: SDTMIG 3.4 / ADaM IG class and structure of each dataset.
CLASSES = {
    "DM": ("SPECIAL PURPOSE", "One record per subject"),
    "SV": ("SPECIAL PURPOSE", "One record per subject per actual or planned visit"),
    "AE": ("EVENTS", "One record per adverse event per subject"),
    "DS": ("EVENTS", "One record per disposition status or protocol milestone per subject"),
    "EX": ("INTERVENTIONS", "One record per administration per subject"),
    "QS": ("FINDINGS", "One record per questionnaire item per visit per subject"),
    "IE": ("FINDINGS", "One record per inclusion/exclusion criterion not met per subject"),
    "SUPPAE": ("RELATIONSHIP", "One record per supplemental qualifier per AE"),
    "TS": ("TRIAL DESIGN", "One record per trial summary parameter value"),
    "RS": ("FINDINGS", "One record per response assessment per visit per subject"),
    "DV": ("EVENTS", "One record per protocol deviation per subject"),
    "TU": ("FINDINGS", "One record per identified tumor per subject per assessor"),
    "TR": ("FINDINGS", "One record per tumor measurement/assessment per visit per subject "
                       "per assessor"),
    "TE": ("TRIAL DESIGN", "One record per planned Element"),
    "TA": ("TRIAL DESIGN", "One record per planned Element per Arm"),
    "TV": ("TRIAL DESIGN", "One record per planned Visit per Arm"),
    "TI": ("TRIAL DESIGN", "One record per I/E criterion per protocol version"),
    "ADQS": ("BASIC DATA STRUCTURE", "One record per subject per parameter per analysis date"),
    "ADTTE": ("BASIC DATA STRUCTURE", "One record per subject per parameter"),
}
ASSIGNED = {"STUDYID", "DOMAIN", "RDOMAIN", "USUBJID", "SUBJID", "SITEID"}
DERIVED_SUFFIXES = ("SEQ", "DY", "CD")
DERIVED = {"EPOCH", "VISITNUM", "AGE", "AGEU", "AEDECOD", "AEBODSYS", "AESOC", "AELLT",
           "QSLOBXFL", "DTHFL", "ARMNRS", "RFPENDTC", "RFXSTDTC", "RFXENDTC", "QSTEST",
           "QSSTRESC", "QSSTRESN", "IETEST", "IESTRESC", "IDVAR", "IDVARVAL", "QNAM",
           "QLABEL", "QORIG", "QEVAL", "AEREL"}


def origin(dataset: str, name: str) -> tuple[str, str | None]:
    """``def:Origin`` Type and Source of a variable (module doc)."""
    if name in ASSIGNED:
        return "Assigned", "Sponsor"
    if dataset.startswith("AD"):
        return "Derived", None
    if CLASSES[dataset][0] == "TRIAL DESIGN":
        return "Protocol", None
    if name in DERIVED or name.endswith(DERIVED_SUFFIXES):
        return "Derived", None
    return "Collected", "Subject" if dataset == "QS" else "Investigator"


def datasets() -> dict[str, tuple[str, tuple[Variable, ...], str]]:
    """Every exported dataset: name -> (label, variables, standard OID)."""
    out = {name: (label, variables, "STD.SDTMIG")
           for name, (label, variables) in domains.ALL_DOMAINS.items()}
    out.update({name: (label, variables, "STD.ADAMIG")
                for name, (label, variables) in adam.DATASETS.items()})
    return out


class _Writer:
    def __init__(self) -> None:
        self.buffer = StringIO()
        self.xml = XMLGenerator(self.buffer, "UTF-8", short_empty_elements=True)

    def start(self, tag: str, **attrs) -> None:
        self.xml.startElement(tag, {k.replace("__", ":"): str(v) for k, v in attrs.items()
                                    if v is not None})

    def end(self, tag: str) -> None:
        self.xml.endElement(tag)

    def leaf(self, tag: str, text: str | None = None, **attrs) -> None:
        self.start(tag, **attrs)
        if text is not None:
            self.xml.characters(text)
        self.end(tag)

    def description(self, text: str) -> None:
        self.start("Description")
        self.leaf("TranslatedText", text, xml__lang="en")
        self.end("Description")

    def flush(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def define_xml(*, study_id: str, study_name: str, originator: str,
               source_system: tuple[str, str], created: dt.datetime) -> Iterator[str]:
    """The Define-XML 2.1 document of every exported dataset, as text chunks."""
    w = _Writer()
    w.xml.startDocument()
    w.start("ODM", xmlns=ODM_NS, xmlns__def=DEF_NS, xmlns__xlink=XLINK_NS,
            FileType="Snapshot", FileOID=f"DEF.{study_id}", ODMVersion="1.3.2",
            CreationDateTime=created.astimezone(dt.UTC).replace(microsecond=0)
            .isoformat().replace("+00:00", "Z"),
            Originator=originator, SourceSystem=source_system[0],
            SourceSystemVersion=source_system[1], def__Context="Other")
    w.start("Study", OID=study_id)
    w.start("GlobalVariables")
    w.leaf("StudyName", study_id)
    w.leaf("StudyDescription", study_name)
    w.leaf("ProtocolName", study_id)
    w.end("GlobalVariables")
    w.start("MetaDataVersion", OID=f"MDV.{study_id}.SDTMIG.{SDTMIG_VERSION}",
            Name=f"{study_id} SDTMIG {SDTMIG_VERSION} and ADaM", def__DefineVersion="2.1.0")
    w.start("def:Standards")
    w.leaf("def:Standard", OID="STD.SDTMIG", Name="SDTMIG", Type="IG",
           Version=SDTMIG_VERSION, Status="Final")
    w.leaf("def:Standard", OID="STD.ADAMIG", Name="ADaMIG", Type="IG", Version="1.3",
           Status="Final")
    w.leaf("def:Standard", OID="STD.CT", Name="CDISC/NCI", Type="CT", PublishingSet="SDTM",
           Version=terminology.CT_VERSION, Status="Final")
    w.end("def:Standards")
    yield w.flush()
    all_sets = datasets()
    for name, (label, variables, standard) in all_sets.items():
        klass, structure = CLASSES[name]
        design = klass == "TRIAL DESIGN"
        w.start("ItemGroupDef", OID=f"IG.{name}", Name=name, SASDatasetName=name,
                Repeating="No" if design else "Yes",
                IsReferenceData="Yes" if design else "No",
                Purpose="Analysis" if name.startswith("AD") else "Tabulation",
                def__Structure=structure, def__StandardOID=standard,
                def__ArchiveLocationID=f"LF.{name}")
        w.description(label)
        for order, v in enumerate(variables, 1):
            w.leaf("ItemRef", ItemOID=f"IT.{name}.{v.name}", OrderNumber=order,
                   Mandatory="Yes" if v.key_sequence else "No", KeySequence=v.key_sequence)
        w.leaf("def:Class", Name=klass)
        w.start("def:leaf", ID=f"LF.{name}", xlink__href=f"{name.lower()}.xpt")
        w.leaf("def:title", f"{name.lower()}.xpt")
        w.end("def:leaf")
        w.end("ItemGroupDef")
    yield w.flush()
    used: set[str] = set()
    for name, (_, variables, _) in all_sets.items():
        for v in variables:
            data_type = DATA_TYPES[v.data_type]
            length = v.length or (8 if data_type in ("integer", "float", "text") else None)
            if data_type in ("date", "datetime"):
                length = None
            w.start("ItemDef", OID=f"IT.{name}.{v.name}", Name=v.name, DataType=data_type,
                    Length=length, SASFieldName=v.name)
            w.description(v.label)
            codelist = terminology.VARIABLE_CODELISTS.get((name, v.name))
            if codelist:
                used.add(codelist)
                w.leaf("CodeListRef", CodeListOID=f"CL.{codelist}")
            kind, source = origin(name, v.name)
            w.leaf("def:Origin", Type=kind, Source=source)
            w.end("ItemDef")
        yield w.flush()
    for short in sorted(used):
        codelist = terminology.CODELISTS[short]
        w.start("CodeList", OID=f"CL.{short}", Name=codelist.name, DataType="text",
                def__StandardOID="STD.CT" if codelist.ncit else None)
        for term in sorted(codelist.terms) + sorted(codelist.extensions):
            w.leaf("EnumeratedItem", CodedValue=term,
                   def__ExtendedValue="Yes" if term in codelist.extensions else None)
        if codelist.ncit:
            w.leaf("Alias", Name=codelist.ncit, Context="nci:ExtCodeID")
        w.end("CodeList")
    w.end("MetaDataVersion")
    w.end("Study")
    w.end("ODM")
    w.xml.endDocument()
    yield w.flush()
