"""SAS XPORT v5 files written chunk by chunk (``exports.writers.write_xpt``; no database).

The file must be the one pyreadstat writes from the whole dataset at once, byte for byte after
the header's timestamps, whatever the chunking; read back by pyreadstat with 8-character
names, 40-character labels and the same values.
"""

from __future__ import annotations

import random

import pandas as pd
import pyreadstat
import pytest

from exports import sdtm, writers

VARIABLES = (
    sdtm._v("STUDYID", "Study Identifier", length=40),
    sdtm._v("AESEQ", "Sequence Number", "integer"),
    sdtm._v("AETERM", "Reported Term for the Adverse Event", length=200),
    sdtm._v("EXDOSE", "Dose", "decimal"),
    sdtm._v("AEENDTC", "End Date/Time of Adverse Event", "date"),
)


def rows(n: int) -> list[tuple]:
    rng = random.Random(n)
    return [("NCT05699811", i, None if i % 7 == 0 else "Fatigue α" + "x" * rng.randint(0, 60),
             None if i % 5 == 0 else str(rng.randint(1, 10**7)),
             None if i % 3 == 0 else "2025-02-09") for i in range(1, n + 1)]


def whole_frame_file(path, data: list[tuple]) -> None:
    """What pyreadstat writes from one frame of the dataset (the reference)."""
    frame = pd.DataFrame.from_records(data, columns=[v.name for v in VARIABLES])
    for v in VARIABLES:
        numeric = v.data_type in writers.XPT_NUMERIC
        frame[v.name] = frame[v.name].map(
            (lambda x: None if x is None else float(x)) if numeric else (lambda x: x))
        frame[v.name] = frame[v.name].astype("float64" if numeric else object)
    pyreadstat.write_xport(frame, str(path), file_label="Adverse Events", table_name="AE",
                           column_labels=[v.label for v in VARIABLES], file_format_version=5)


def body(path) -> bytes:
    data = path.read_bytes()
    return data[data.index(writers.XPT_NAMESTR_HEADER):]


@pytest.mark.parametrize("size", [1, 1999, 2000, 5003])
def test_chunked_file_is_pyreadstats_whole_frame_file(tmp_path, size):
    data = rows(size)
    chunked, whole = tmp_path / "chunked.xpt", tmp_path / "whole.xpt"
    writers.write_xpt(str(chunked), name="AE", label="Adverse Events", variables=VARIABLES,
                      row_chunks=(data[i:i + 700] for i in range(0, size, 700)))
    whole_frame_file(whole, data)
    assert body(chunked) == body(whole)
    assert chunked.stat().st_size % 80 == 0
    frame, meta = pyreadstat.read_xport(str(chunked))
    assert meta.table_name == "AE" and len(frame) == size
    assert meta.column_names_to_labels == {v.name: v.label for v in VARIABLES}
    assert list(frame["AESEQ"]) == list(range(1, size + 1))
    assert list(frame["AETERM"]) == [r[2] or "" for r in data]


def test_an_empty_dataset_has_its_variables_and_no_row(tmp_path):
    path = tmp_path / "tu.xpt"
    writers.write_xpt(str(path), name="TU", label="Tumor/Lesion Identification",
                      variables=VARIABLES, row_chunks=iter([[], []]))
    frame, meta = pyreadstat.read_xport(str(path))
    assert len(frame) == 0 and list(frame.columns) == [v.name for v in VARIABLES]


def test_too_long_values_and_names_stop_the_file(tmp_path):
    with pytest.raises(writers.XptValueTooLong, match="AETERM"):
        writers.write_xpt(str(tmp_path / "a.xpt"), name="AE", label="AE", variables=VARIABLES,
                          row_chunks=[[("S", 1, "x" * 201, None, None)]])
    with pytest.raises(ValueError, match="8 characters"):
        writers.write_xpt(str(tmp_path / "b.xpt"), name="SUPPAEXX", label="x",
                          variables=(sdtm._v("LONGNAME9", "x"),), row_chunks=[])
