"""Dataset-JSON 1.1 documents from ``exports.sdtm``, checked against the specification.

CDISC Dataset-JSON v1.1 (final, 2024-12-05): the JSON Schema below is written from the
specification's tables ("Top-level Metadata Attributes", "Column Metadata", "Supported Column
Data Type Combinations", "Row Data"); :func:`check_dataset_json` adds what a JSON Schema
cannot say (records = number of rows, row width = number of columns, values typed per
column dataType). The integration tests validate the served documents with the same checks.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import jsonschema
import pytest

from exports import sdtm

DATETIME = (r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3])"
            r":[0-5][0-9]:[0-5][0-9](\.[0-9]+)?((\+|-)([01][0-9]|2[0-3]):[0-5][0-9]|Z)?$")
NON_EMPTY = {"type": "string", "minLength": 1}

DATASET_JSON_1_1_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "CDISC Dataset-JSON v1.1 (structure)",
    "type": "object",
    "required": ["datasetJSONCreationDateTime", "datasetJSONVersion", "itemGroupOID",
                 "records", "name", "label", "columns"],
    "properties": {
        "datasetJSONCreationDateTime": {"type": "string", "pattern": DATETIME},
        "datasetJSONVersion": {"type": "string", "pattern": r"^1\.1(\.(0|[1-9][0-9]*))?$"},
        "fileOID": NON_EMPTY,
        "dbLastModifiedDateTime": {"type": "string", "pattern": DATETIME},
        "originator": {"type": "string"},
        "sourceSystem": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "version"],
            "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
        },
        "studyOID": NON_EMPTY,
        "metaDataVersionOID": NON_EMPTY,
        "metaDataRef": {"type": "string"},
        "itemGroupOID": NON_EMPTY,
        "isReferenceData": {"type": "boolean"},
        "records": {"type": "integer", "minimum": 0},
        "name": NON_EMPTY,
        "label": {"type": "string"},
        "columns": {
            "type": "array", "minItems": 1,
            "items": {
                "type": "object", "additionalProperties": False,
                "required": ["itemOID", "name", "label", "dataType"],
                "properties": {
                    "itemOID": NON_EMPTY,
                    "name": NON_EMPTY,
                    "label": {"type": "string"},
                    "dataType": {"enum": ["string", "integer", "decimal", "float", "double",
                                          "boolean", "datetime", "date", "time", "URI"]},
                    "targetDataType": {"enum": ["integer", "decimal"]},
                    "length": {"type": "integer", "minimum": 1},
                    "displayFormat": {"type": "string"},
                    "keySequence": {"type": "integer", "minimum": 1},
                },
            },
        },
        "rows": {
            "type": "array",
            "items": {"type": "array",
                      "items": {"type": ["string", "integer", "number", "boolean", "null"]}},
        },
    },
}
TOP_LEVEL_ORDER = [
    "datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID", "dbLastModifiedDateTime",
    "originator", "sourceSystem", "studyOID", "metaDataVersionOID", "metaDataRef",
    "itemGroupOID", "isReferenceData", "records", "name", "label", "columns", "rows",
]
JSON_TYPE = {"string": str, "date": str, "datetime": str, "time": str, "URI": str,
             "decimal": str, "integer": int, "float": (int, float), "double": (int, float),
             "boolean": bool}
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def check_dataset_json(doc: dict) -> None:
    """Schema, attribute order and per-column value types of a Dataset-JSON 1.1 document."""
    jsonschema.Draft202012Validator(DATASET_JSON_1_1_SCHEMA).validate(doc)
    present = [key for key in TOP_LEVEL_ORDER if key in doc]
    assert list(doc) == present, "top-level attributes out of the specified order"
    assert doc["datasetJSONVersion"] == "1.1.0"
    if "dbLastModifiedDateTime" in doc:
        assert doc["dbLastModifiedDateTime"] <= doc["datasetJSONCreationDateTime"]
    columns = doc["columns"]
    names = [c["name"] for c in columns]
    assert len(set(names)) == len(names)
    assert len({c["itemOID"] for c in columns}) == len(columns)
    keys = sorted(c["keySequence"] for c in columns if "keySequence" in c)
    assert keys == list(range(1, len(keys) + 1))
    rows = doc.get("rows", [])
    assert doc["records"] == len(rows)
    for row in rows:
        assert len(row) == len(columns)
        for column, value in zip(columns, row, strict=True):
            if value is None:
                continue
            expected = JSON_TYPE[column["dataType"]]
            assert isinstance(value, expected) and not (
                expected is int and isinstance(value, bool)), (column["name"], value)
            if column["dataType"] == "date":
                jsonschema.validate(value, {"pattern": ISO_DATE})
            if column["dataType"] == "decimal":
                float(value)  # a decimal number written as a string


HEADER = {
    "domain": "AE", "label": "Adverse Events", "variables": sdtm.AE_VARIABLES,
    "created": dt.datetime(2025, 3, 1, 12, 0, 5, 123456, tzinfo=dt.UTC),
    "study_oid": "NCT00000001", "file_oid": "trialdesk.NCT00000001.AE.x",
    "originator": "Sponsor", "source_system": ("trialdesk", "0.1.0"),
    "db_last_modified": dt.datetime(2025, 3, 1, 11, 0, tzinfo=dt.UTC),
}


def _header(rows: int = 0, **kwargs) -> dict:
    return sdtm.dataset_json_header(**{**HEADER, "records": rows, **kwargs})


def _ae_row(**kwargs) -> tuple:
    row = ["NCT00000001", "AE", "NCT00000001-A1-001", 1, "Neutropenia", "Neutrophil count "
           "decreased", 10029366, "Neutrophil count decreased", 10029366, None, None, None,
           None, "Investigations", 10022891, "Investigations", 10022891, "N",
           "DOSE NOT CHANGED", "POSSIBLY RELATED", "RECOVERED/RESOLVED", None, None, None,
           None, None, None, "3", "TREATMENT", "2025-02-04", "2025-02-09", 2, 7]
    return tuple(row)


def test_header_has_every_required_attribute_in_the_specified_order():
    header = _header()
    doc = sdtm.dataset_json(header, [])
    check_dataset_json(doc)
    assert doc["datasetJSONCreationDateTime"] == "2025-03-01T12:00:05Z"
    assert doc["dbLastModifiedDateTime"] == "2025-03-01T11:00:00Z"
    assert doc["itemGroupOID"] == "IG.AE"
    assert doc["metaDataVersionOID"] == "MDV.NCT00000001.SDTMIG.3.4"
    assert doc["sourceSystem"] == {"name": "trialdesk", "version": "0.1.0"}
    assert doc["columns"][0] == {"itemOID": "IT.AE.STUDYID", "name": "STUDYID",
                                 "label": "Study Identifier", "dataType": "string",
                                 "length": 40, "keySequence": 1}


def test_db_last_modified_is_never_after_creation():
    header = _header(db_last_modified=dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert header["dbLastModifiedDateTime"] == header["datasetJSONCreationDateTime"]


def test_streamed_document_equals_the_whole_document_and_validates():
    rows = [_ae_row() for _ in range(7)]
    header = _header(rows=7)
    chunks = list(sdtm.dataset_json_chunks(header, [rows[:3], [], rows[3:5], rows[5:]]))
    assert len(chunks) == 5  # header, three non-empty chunks, closing
    doc = json.loads("".join(chunks))
    check_dataset_json(doc)
    assert doc["rows"] == [list(r) for r in rows]
    assert doc == sdtm.dataset_json(header, rows)


def test_the_check_refuses_broken_documents():
    header = _header(rows=1)
    good = sdtm.dataset_json(header, [_ae_row()])
    check_dataset_json(good)
    for breaking in (
        lambda d: d.pop("itemGroupOID"),
        lambda d: d.update(datasetJSONVersion="1.0.0"),
        lambda d: d.update(records=2),
        lambda d: d["rows"][0].pop(),
        lambda d: d["columns"][3].update(dataType="number"),
        lambda d: d["rows"][0].__setitem__(3, "1"),  # AESEQ as a string
    ):
        broken = json.loads(json.dumps(good))
        breaking(broken)
        with pytest.raises((AssertionError, jsonschema.ValidationError)):
            check_dataset_json(broken)


def test_decimal_columns_are_strings_with_target_type_decimal():
    (dose,) = [v for v in sdtm.EX_VARIABLES if v.name == "EXDOSE"]
    assert dose.column("EX") == {"itemOID": "IT.EX.EXDOSE", "name": "EXDOSE", "label": "Dose",
                                 "dataType": "decimal", "targetDataType": "decimal",
                                 "length": 30}


def test_the_mapping_modules_import_no_django():
    code = ("import sys; import exports.sdtm, exports.blinding, exports.listing, "
            "exports.writers; assert not [m for m in sys.modules if m.startswith('django')]")
    subprocess.run([sys.executable, "-c", code], check=True)
