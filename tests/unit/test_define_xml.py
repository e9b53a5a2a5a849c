"""Define-XML 2.1 of the exports, validated against CDISC's Define-XML 2.1 XSD (no database).

The XSDs are CDISC's (Define-XML 2.1.0 on ODM 1.3.2) as shipped by the PyPI package odmlib
(``odmlib/schemas/define/2.1``). Validation uses xmlschema: a pure-Python, fully conformant
XSD 1.0 processor with precise error paths, so no native libxml2 build is needed.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
from functools import cache
from xml.etree import ElementTree

import xmlschema

from exports import define_xml, terminology

NS = {"odm": define_xml.ODM_NS, "def": define_xml.DEF_NS}


@cache
def official_xsd(kind: str = "define") -> xmlschema.XMLSchema:
    base = importlib.resources.files("odmlib") / "schemas"
    path = (base / "define" / "2.1" / "define2-1-0.xsd" if kind == "define"
            else base / "odm" / "1.3.2" / "ODM1-3-2.xsd")
    return xmlschema.XMLSchema(str(path))


def document() -> bytes:
    return "".join(define_xml.define_xml(
        study_id="NCT05699811", study_name="MSC trial", originator="Sponsor",
        source_system=("trialdesk", "0.1.0"),
        created=dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC))).encode("utf-8")


def test_define_xml_validates_against_the_official_schema():
    data = document()
    official_xsd().validate(io.BytesIO(data))
    root = ElementTree.fromstring(data)
    groups = root.findall(".//odm:ItemGroupDef", NS)
    assert {g.get("Name") for g in groups} >= {"DM", "AE", "EX", "QS", "SV", "DS", "IE", "TS",
                                               "SUPPAE", "ADQS", "ADTTE", "DV", "TU", "TR",
                                               "RS", "TE", "TA", "TV", "TI"}
    design = {g.get("Name"): (g.get("Repeating"), g.get("IsReferenceData"),
                              g.find("def:Class", NS).get("Name")) for g in groups}
    for name in ("TS", "TE", "TA", "TV", "TI"):
        assert design[name] == ("No", "Yes", "TRIAL DESIGN"), name
    assert design["TU"] == ("Yes", "No", "FINDINGS")
    items = {i.get("OID"): i for i in root.findall(".//odm:ItemDef", NS)}
    age = items["IT.DM.AGE"]
    assert (age.get("DataType"), age.find("def:Origin", NS).get("Type")) == ("integer",
                                                                            "Derived")
    assert items["IT.AE.AETERM"].find("def:Origin", NS).get("Source") == "Investigator"
    assert items["IT.TV.VISITDY"].find("def:Origin", NS).get("Type") == "Protocol"
    assert items["IT.RS.RSSTRESC"].find("odm:CodeListRef", NS).get("CodeListOID") == (
        "CL.ONCRSR")
    refs = {r.get("ItemOID") for r in root.findall(".//odm:ItemRef", NS)}
    assert refs == set(items)
    lists = {c.get("OID"): c for c in root.findall(".//odm:CodeList", NS)}
    unit = lists["CL.UNIT"]
    extended = {e.get("CodedValue") for e in unit.findall("odm:EnumeratedItem", NS)
                if e.get(f"{{{define_xml.DEF_NS}}}ExtendedValue") == "Yes"}
    assert extended == {"cells/kg", "cells/m2"}
    assert unit.find("odm:Alias", NS).get("Name") == "C71620"
    assert root.find(".//def:Standard[@Type='CT']", NS).get("Version") == (
        terminology.CT_VERSION)


def test_the_schema_refuses_a_broken_define():
    data = document().replace(b'DataType="integer"', b'DataType="number"', 1)
    assert not official_xsd().is_valid(io.BytesIO(data))
