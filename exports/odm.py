"""CDISC ODM 1.3.2 export of a whole trial, streamed (plain Python, stdlib XML writer).

ODM 1.3.2 (2013-12-01): ``Study`` metadata (``MetaDataVersion``: the protocol's study events
= the subjects' visit codes, plus a repeating adverse-event log event; forms DM, EX, QLQ-C30
and AE with their item groups and items) and ``ClinicalData``: per subject
(``SubjectData``), per visit (``StudyEventData``), per form (``FormData``), the values
(``ItemData``). Dates are ISO 8601; values are what the user may see (``exports.blinding``:
a blinded user gets neutral arm labels and masking groups without doses). The document is
written subject by subject: memory stays flat in the number of subjects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .define_xml import ODM_NS, _Writer

#: form OID -> (name, item group OID, items (OID suffix, name, ODM DataType, length)).
FORMS = {
    "F.DM": ("Demographics", "IG.DM", (("SEX", "Sex", "text", 1),
                                       ("RACE", "Race", "text", 60),
                                       ("RFICDAT", "Informed consent date", "date", None),
                                       ("ARM", "Arm", "text", 200))),
    "F.EX": ("Exposure", "IG.EX", (("EXTRT", "Treatment", "text", 200),
                                   ("EXDOSE", "Dose", "float", 30),
                                   ("EXDOSU", "Dose unit", "text", 40),
                                   ("EXSTDAT", "Administration date", "date", None))),
    "F.QLQC30": ("EORTC QLQ-C30 V3.0", "IG.QLQC30",
                 tuple((f"Q{n}", f"Item {n}", "integer", 1) for n in range(1, 31))),
    "F.AE": ("Adverse event", "IG.AE", (("AETERM", "Reported term", "text", 200),
                                        ("AEDECOD", "CTCAE v5.0 term", "text", 200),
                                        ("AETOXGR", "Worst CTCAE grade", "integer", 1),
                                        ("AESER", "Serious", "text", 1),
                                        ("AESTDAT", "Onset date", "date", None),
                                        ("AEENDAT", "Resolution date", "date", None))),
}
SUBJECT_EVENT, AE_EVENT = "SE.SUBJECT", "SE.AELOG"


@dataclass
class SubjectRecord:
    """One subject's data as the user may see it (built by the engine adapter)."""

    key: str
    dm: dict[str, object]
    #: visit code -> list of (form OID, values)
    visits: dict[str, list[tuple[str, dict[str, object]]]] = field(default_factory=dict)
    aes: list[dict[str, object]] = field(default_factory=list)


def _value(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def odm_document(*, study_id: str, study_name: str, originator: str,
                 source_system: tuple[str, str], created: dt.datetime,
                 visit_codes: list[str], subjects: Iterable[SubjectRecord]) -> Iterator[str]:
    """The ODM 1.3.2 document as text chunks (one chunk per subject)."""
    w = _Writer()
    mdv = f"MDV.{study_id}.ODM"
    w.xml.startDocument()
    w.start("ODM", xmlns=ODM_NS, FileType="Snapshot", Granularity="All",
            FileOID=f"ODM.{study_id}", ODMVersion="1.3.2",
            CreationDateTime=created.astimezone(dt.UTC).replace(microsecond=0)
            .isoformat().replace("+00:00", "Z"),
            Originator=originator, SourceSystem=source_system[0],
            SourceSystemVersion=source_system[1])
    w.start("Study", OID=study_id)
    w.start("GlobalVariables")
    w.leaf("StudyName", study_id)
    w.leaf("StudyDescription", study_name)
    w.leaf("ProtocolName", study_id)
    w.end("GlobalVariables")
    w.start("MetaDataVersion", OID=mdv, Name=f"{study_id} EDC metadata")
    events = [(SUBJECT_EVENT, "Subject", "No", ("F.DM",))]
    events += [(f"SE.{code}", code, "No", ("F.EX", "F.QLQC30")) for code in visit_codes]
    events.append((AE_EVENT, "Adverse event log", "Yes", ("F.AE",)))
    w.start("Protocol")
    for order, (oid, *_rest) in enumerate(events, 1):
        w.leaf("StudyEventRef", StudyEventOID=oid, OrderNumber=order, Mandatory="No")
    w.end("Protocol")
    for oid, name, repeating, forms in events:
        w.start("StudyEventDef", OID=oid, Name=name, Repeating=repeating,
                Type="Common" if oid == AE_EVENT else "Scheduled")
        for order, form in enumerate(forms, 1):
            w.leaf("FormRef", FormOID=form, OrderNumber=order, Mandatory="No")
        w.end("StudyEventDef")
    for oid, (name, group, _) in FORMS.items():
        w.start("FormDef", OID=oid, Name=name, Repeating="Yes" if oid == "F.EX" else "No")
        w.leaf("ItemGroupRef", ItemGroupOID=group, Mandatory="Yes")
        w.end("FormDef")
    for _, (name, group, items) in FORMS.items():
        w.start("ItemGroupDef", OID=group, Name=name, Repeating="No")
        for order, (item, *_rest) in enumerate(items, 1):
            w.leaf("ItemRef", ItemOID=f"IT.{group[3:]}.{item}", OrderNumber=order,
                   Mandatory="No")
        w.end("ItemGroupDef")
    for _, (_, group, items) in FORMS.items():
        for item, label, data_type, length in items:
            w.start("ItemDef", OID=f"IT.{group[3:]}.{item}", Name=item, DataType=data_type,
                    Length=length)
            w.description(label)
            w.end("ItemDef")
    w.end("MetaDataVersion")
    w.end("Study")
    w.start("ClinicalData", StudyOID=study_id, MetaDataVersionOID=mdv)
    yield w.flush()
    for subject in subjects:
        w.start("SubjectData", SubjectKey=subject.key)
        _event(w, SUBJECT_EVENT, None, [("F.DM", subject.dm)])
        for code, forms in subject.visits.items():
            _event(w, f"SE.{code}", None, forms)
        for n, ae in enumerate(subject.aes, 1):
            _event(w, AE_EVENT, n, [("F.AE", ae)])
        w.end("SubjectData")
        yield w.flush()
    w.end("ClinicalData")
    w.end("ODM")
    w.xml.endDocument()
    yield w.flush()


def _event(w: _Writer, oid: str, repeat: int | None, forms) -> None:
    w.start("StudyEventData", StudyEventOID=oid, StudyEventRepeatKey=repeat)
    counts: dict[str, int] = {}
    for form, values in forms:
        counts[form] = counts.get(form, 0) + 1
        name, group, items = FORMS[form]
        w.start("FormData", FormOID=form,
                FormRepeatKey=counts[form] if form == "F.EX" else None)
        w.start("ItemGroupData", ItemGroupOID=group)
        for item, *_rest in items:
            value = _value(values.get(item))
            if value is not None:
                w.leaf("ItemData", ItemOID=f"IT.{group[3:]}.{item}", Value=value)
        w.end("ItemGroupData")
        w.end("FormData")
    w.end("StudyEventData")
