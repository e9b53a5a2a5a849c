"""ODM 1.3.2 transactions from the audit trail (``exports.odm``), validated against CDISC's
ODM 1.3.2 XSD as odmlib ships it (no database)."""

from __future__ import annotations

import datetime as dt
import io
from xml.etree import ElementTree

from exports import odm
from tests.unit.test_define_xml import official_xsd

NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
T0 = dt.datetime(2025, 2, 3, 9, 30, tzinfo=dt.UTC)


def audit(minutes: int, user: str = "USR.7", reason: str | None = None) -> odm.Audit:
    return odm.Audit(user, "LOC.A1", T0 + dt.timedelta(minutes=minutes), reason)


def test_versions_become_insert_update_and_remove():
    versions = [
        (audit(0), {"AETERM": "Fatigue", "AETOXGR": 1, "AEENDAT": None}, False),
        (audit(1, reason="no change visible"), {"AETERM": "Fatigue", "AETOXGR": 1,
                                                "AEENDAT": None}, False),
        (audit(2, reason="grade corrected"), {"AETERM": "Fatigue", "AETOXGR": 2,
                                              "AEENDAT": dt.date(2025, 2, 9)}, False),
        (audit(3, reason="end date entered in error"), {"AETERM": "Fatigue", "AETOXGR": 2,
                                                       "AEENDAT": None}, False),
        (audit(4, "USR.9", "duplicate record"), {"AETERM": "Fatigue", "AETOXGR": 2,
                                                 "AEENDAT": None}, True),
    ]
    changes = odm.changes(versions)
    assert [(c.kind, c.audit.reason, c.values) for c in changes] == [
        ("Insert", None, {"AETERM": "Fatigue", "AETOXGR": "1"}),
        ("Update", "grade corrected", {"AETOXGR": "2", "AEENDAT": "2025-02-09"}),
        ("Update", "end date entered in error", {"AEENDAT": None}),
        ("Remove", "duplicate record", {}),
    ]
    assert changes[-1].audit.user == "USR.9"


def document(subjects) -> bytes:
    return "".join(odm.odm_document(
        study_id="NCT05699811", study_name="MSC trial", originator="Sponsor",
        source_system=("trialdesk", "0.1.0"), created=T0, effective=dt.date(2025, 1, 2),
        visit_codes=["C1"], users=[("USR.7", "nurse_a"), ("USR.9", "dm_b")],
        locations=[("LOC.A1", "Site A")], subjects=subjects)).encode("utf-8")


def test_the_audit_trail_validates_against_the_odm_xsd_and_replays_to_the_current_data():
    dm = odm.changes([(audit(0, reason="enrollment"), {"SEX": "F", "ARM": "Blinded"}, False)])
    exposure = odm.changes([
        (audit(5), {"EXTRT": "MSC-IFNα", "EXDOSE": "2000000", "EXDOSU": "cells/kg"}, False),
        (audit(6, reason="dose re-weighed"), {"EXTRT": "MSC-IFNα", "EXDOSE": "1800000",
                                              "EXDOSU": "cells/kg"}, False)])
    period = odm.changes([(audit(7, odm.SYSTEM_USER), {"EXTRT": "Regorafenib"}, False)])
    ae = odm.changes([(audit(8), {"AETERM": "Fatigue"}, False),
                      (audit(9, reason="entered in error"), {"AETERM": "Fatigue"}, True)])
    subject = odm.SubjectRecord("NCT05699811-A1-A001", "LOC.A1", dm,
                                {"C1": [("F.EX", 1, exposure)]}, [period], [ae])
    data = document([subject])
    official_xsd("odm").validate(io.BytesIO(data))
    root = ElementTree.fromstring(data)
    assert root.get("FileType") == "Transactional"
    users = {u.get("OID") for u in root.findall(".//odm:AdminData/odm:User", NS)}
    locations = {loc.get("OID") for loc in root.findall(".//odm:AdminData/odm:Location", NS)}
    assert {r.get("UserOID") for r in root.findall(".//odm:UserRef", NS)} <= users
    assert {r.get("LocationOID") for r in root.findall(".//odm:LocationRef", NS)} <= locations
    groups = root.findall(".//odm:ItemGroupData", NS)
    assert [g.get("TransactionType") for g in groups] == [
        "Insert", "Insert", "Update", "Insert", "Insert", "Remove"]
    update = groups[2]
    record = update.find("odm:AuditRecord", NS)
    assert (record.find("odm:UserRef", NS).get("UserOID"),
            record.find("odm:DateTimeStamp", NS).text,
            record.find("odm:ReasonForChange", NS).text) == (
        "USR.7", "2025-02-03T09:36:00Z", "dose re-weighed")
    assert [(i.get("ItemOID"), i.get("Value")) for i in update.findall("odm:ItemData", NS)] == [
        ("IT.EX.EXDOSE", "1800000")]
    assert root.find(".//odm:StudyEventData[@StudyEventOID='SE.EXLOG']", NS) is not None
    # an inserted record carries no ReasonForChange unless one was given
    assert groups[1].find("odm:AuditRecord/odm:ReasonForChange", NS) is None


def test_the_xsd_refuses_an_audit_record_without_its_user():
    subject = odm.SubjectRecord("S-1", "LOC.A1", odm.changes(
        [(audit(0), {"SEX": "F"}, False)]))
    broken = document([subject]).replace(b'<UserRef UserOID="USR.7"/>', b"", 1)
    assert not official_xsd("odm").is_valid(io.BytesIO(broken))
