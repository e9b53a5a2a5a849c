"""CDISC ODM 1.3.2 export of a whole trial with its audit trail, streamed (plain Python, stdlib
XML writer).

ODM 1.3.2 (2013-12-01): ``Study`` metadata (``MetaDataVersion``: the protocol's study events
= the subjects' visit codes, plus a repeating adverse-event log event; forms DM, EX, QLQ-C30
and AE with their item groups and items), ``AdminData`` (a ``User`` per person who changed
the data, with the login name only, and ``USR.SYSTEM`` for changes no person made; a
``Location`` per site) and ``ClinicalData`` per subject (``SubjectData``), visit
(``StudyEventData``; exposures without a visit, e.g. dosing periods, in a repeating exposure
log event) and form (``FormData``).

The file is ``Transactional`` (ODM 1.3.2 section 2.8): every version of every record in the
audit trail is a transaction on its item group, oldest first, with its ``AuditRecord``
(``UserRef``, ``LocationRef``, ``DateTimeStamp`` in UTC, ``ReasonForChange`` when one was
given): ``Insert`` with the first values, ``Update`` with the items that changed
(``IsNull="Yes"`` for a value removed), ``Remove`` for a record retired (never deleted in the
EDC). Subjects, events and forms are ``Upsert`` containers. Replaying the transactions gives
the current data; versions that change nothing the reader may see (e.g. an allocation field
for a blinded user) are left out. Values are what the user may see (``exports.blinding``: a
blinded user gets one allocation label and masking groups without doses). The document is
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
SUBJECT_EVENT, EX_EVENT, AE_EVENT = "SE.SUBJECT", "SE.EXLOG", "SE.AELOG"
SYSTEM_USER = "USR.SYSTEM"
INSERT, UPDATE, REMOVE = "Insert", "Update", "Remove"


@dataclass(frozen=True)
class Audit:
    """Who (``User`` OID), where (``Location`` OID), when and why a record version was
    written."""

    user: str
    location: str
    at: dt.datetime
    reason: str | None = None


@dataclass(frozen=True)
class Change:
    """One transaction on an item group: its type, audit record and the items it sets
    (None: the value was removed)."""

    kind: str
    audit: Audit
    values: dict[str, str | None]


def _value(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def changes(versions: Iterable[tuple[Audit, dict[str, object], bool]]) -> list[Change]:
    """The transactions of one record from its versions, oldest first: ``(audit, values as
    the user may see them, retired)``. The first version is an Insert of its non-null values,
    each later one an Update of the values that differ from the version before (none: no
    transaction), the version that retires the record a Remove."""
    out: list[Change] = []
    previous: dict[str, str | None] | None = None
    for audit, raw, retired in versions:
        values = {item: _value(value) for item, value in raw.items()}
        if previous is None:
            out.append(Change(INSERT, audit, {k: v for k, v in values.items()
                                              if v is not None}))
        else:
            changed = {k: v for k, v in values.items() if previous.get(k) != v}
            if changed:
                out.append(Change(UPDATE, audit, changed))
        if retired:
            out.append(Change(REMOVE, audit, {}))
            break
        previous = values
    return out


@dataclass
class SubjectRecord:
    """One subject's audit history as the user may see it (built by the ORM adapter)."""

    key: str
    location: str
    dm: list[Change]
    #: visit code -> list of (form OID, form repeat key or None, changes)
    visits: dict[str, list[tuple[str, int | None, list[Change]]]] = field(
        default_factory=dict)
    #: exposures without a visit (dosing periods, products given per label)
    exposures: list[list[Change]] = field(default_factory=list)
    aes: list[list[Change]] = field(default_factory=list)


def _timestamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def odm_document(*, study_id: str, study_name: str, originator: str,
                 source_system: tuple[str, str], created: dt.datetime, effective: dt.date,
                 visit_codes: list[str], users: Iterable[tuple[str, str]],
                 locations: Iterable[tuple[str, str]],
                 subjects: Iterable[SubjectRecord]) -> Iterator[str]:
    """The ODM 1.3.2 document as text chunks (one chunk per subject). ``users``: (User OID,
    login name) of everyone an audit record names but ``SYSTEM_USER``; ``locations``:
    (Location OID, name) of the sites; ``effective``: the date the metadata version took
    effect at the sites."""
    w = _Writer()
    mdv = f"MDV.{study_id}.ODM"
    w.xml.startDocument()
    w.start("ODM", xmlns=ODM_NS, FileType="Transactional", Granularity="All",
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
    events.append((EX_EVENT, "Exposure log (dosing periods, administrations without a visit)",
                   "Yes", ("F.EX",)))
    events.append((AE_EVENT, "Adverse event log", "Yes", ("F.AE",)))
    w.start("Protocol")
    for order, (oid, *_rest) in enumerate(events, 1):
        w.leaf("StudyEventRef", StudyEventOID=oid, OrderNumber=order, Mandatory="No")
    w.end("Protocol")
    for oid, name, repeating, forms in events:
        w.start("StudyEventDef", OID=oid, Name=name, Repeating=repeating,
                Type="Common" if oid in (EX_EVENT, AE_EVENT) else "Scheduled")
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
    w.start("AdminData", StudyOID=study_id)
    for oid, login in [(SYSTEM_USER, "trialdesk"), *users]:
        w.start("User", OID=oid)
        w.leaf("LoginName", login)
        w.end("User")
    for oid, name in locations:
        w.start("Location", OID=oid, Name=name, LocationType="Site")
        w.leaf("MetaDataVersionRef", StudyOID=study_id, MetaDataVersionOID=mdv,
               EffectiveDate=effective.isoformat())
        w.end("Location")
    w.end("AdminData")
    w.start("ClinicalData", StudyOID=study_id, MetaDataVersionOID=mdv)
    yield w.flush()
    for subject in subjects:
        w.start("SubjectData", SubjectKey=subject.key, TransactionType="Upsert")
        w.leaf("SiteRef", LocationOID=subject.location)
        _event(w, SUBJECT_EVENT, None, [("F.DM", None, subject.dm)])
        for code, forms in subject.visits.items():
            _event(w, f"SE.{code}", None, forms)
        for n, exposure in enumerate(subject.exposures, 1):
            _event(w, EX_EVENT, n, [("F.EX", 1, exposure)])
        for n, ae in enumerate(subject.aes, 1):
            _event(w, AE_EVENT, n, [("F.AE", None, ae)])
        w.end("SubjectData")
        yield w.flush()
    w.end("ClinicalData")
    w.end("ODM")
    w.xml.endDocument()
    yield w.flush()


def _event(w: _Writer, oid: str, repeat: int | None,
           forms: list[tuple[str, int | None, list[Change]]]) -> None:
    w.start("StudyEventData", StudyEventOID=oid, StudyEventRepeatKey=repeat,
            TransactionType="Upsert")
    for form, form_repeat, history in forms:
        _, group, _ = FORMS[form]
        w.start("FormData", FormOID=form, FormRepeatKey=form_repeat, TransactionType="Upsert")
        for change in history:
            w.start("ItemGroupData", ItemGroupOID=group, TransactionType=change.kind)
            _audit(w, change.audit)
            for item, value in change.values.items():
                oid_ = f"IT.{group[3:]}.{item}"
                if value is None:
                    w.leaf("ItemData", ItemOID=oid_, IsNull="Yes")
                else:
                    w.leaf("ItemData", ItemOID=oid_, Value=value)
            w.end("ItemGroupData")
        w.end("FormData")
    w.end("StudyEventData")


def _audit(w: _Writer, audit: Audit) -> None:
    w.start("AuditRecord")
    w.leaf("UserRef", UserOID=audit.user)
    w.leaf("LocationRef", LocationOID=audit.location)
    w.leaf("DateTimeStamp", _timestamp(audit.at))
    if audit.reason:
        w.leaf("ReasonForChange", audit.reason)
    w.end("AuditRecord")
