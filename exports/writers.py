"""File formats of the exports, written incrementally (pure Python, no Django).

* CSV (RFC 4180, UTF-8, CRLF line ends): a header of variable names, then the rows; None is
  written as an empty field.
* Dataset-JSON 1.1: ``exports.sdtm.dataset_json_chunks`` (JSON) and
  ``exports.sdtm.dataset_ndjson_chunks`` (NDJSON).
* SAS XPORT v5 (SAS TS-140): :func:`write_xpt` (pyreadstat, chunk by chunk).
* XLSX (Office Open XML, ECMA-376): rust_xlsxwriter (through rustpy-xlsxwriter) in
  constant-memory mode (:func:`write_xlsx`), which streams rows to a temporary file instead of
  building the sheet in memory.

Every writer takes an iterable of row *chunks* (lists of tuples) so the database cursor, the
mapping and the encoding all work in batches and memory stays flat in the number of rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from . import sdtm


def csv_chunks(header: Sequence[str], row_chunks: Iterable[Sequence[Sequence]]
               ) -> Iterator[str]:
    """CSV text, one chunk per row chunk (the header first)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue()
    for chunk in row_chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(chunk)
        yield buffer.getvalue()


class Tally:
    """Counts rows and hashes bytes (SHA-256) as they go by, for the export record."""

    def __init__(self) -> None:
        self.rows = 0
        self.size = 0
        self._sha = hashlib.sha256()

    def count(self, row_chunks: Iterable[Sequence], on_chunk: Callable[[int], None] | None = None
              ) -> Iterator[Sequence]:
        for chunk in row_chunks:
            self.rows += len(chunk)
            if on_chunk is not None:
                on_chunk(self.rows)
            yield chunk

    def encode(self, texts: Iterable[str]) -> Iterator[bytes]:
        for text in texts:
            data = text.encode("utf-8")
            self.size += len(data)
            self._sha.update(data)
            yield data

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self._sha.update(data)

    def hash_bytes(self, blocks: Iterable[bytes]) -> Iterator[bytes]:
        for data in blocks:
            self.size += len(data)
            self._sha.update(data)
            yield data

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def text_chunks(fmt: str, *, header: Sequence[str], row_chunks: Iterable[Sequence[Sequence]],
                dataset_json_header: dict | None = None) -> Iterator[str]:
    """The document of a text format ("csv", or Dataset-JSON as "json" or "ndjson") as
    text chunks."""
    if fmt == "csv":
        return csv_chunks(header, row_chunks)
    if fmt in ("json", "ndjson"):
        if dataset_json_header is None:
            raise ValueError("Dataset-JSON needs its header")
        write = sdtm.dataset_json_chunks if fmt == "json" else sdtm.dataset_ndjson_chunks
        return write(dataset_json_header, row_chunks)
    raise ValueError(f"not a text format: {fmt}")


def write_xlsx(target: BinaryIO | str, *, title: str, header: Sequence[str],
               row_chunks: Iterable[Sequence[Sequence]]) -> None:
    """An XLSX workbook of one sheet (frozen header row), written row by row.

    rust_xlsxwriter (Rust, through rustpy-xlsxwriter) in constant-memory mode encodes each row
    and flushes it to a temporary file once the next one starts (strings inline, no
    shared-string table), so memory stays flat in the rows; a path as ``target`` gets the
    workbook zipped straight into it (a buffer gets it whole at the end). Rows go in as dicts
    keyed by the header, read one at a time from ``row_chunks``. A cell is typed by its
    value: text is always text (never turned into a formula, a link or a number, so a value
    such as ``=1+1`` reads back as the site entered it), ints and floats are numbers, None is
    an empty cell. Text over Excel's 32,767 characters per cell stops the export (an error,
    never a silent truncation).
    """
    import rustpy_xlsxwriter

    if len(set(header)) != len(header):
        raise ValueError("XLSX headers must be unique (rows are keyed by them)")
    records = (dict(zip(header, values, strict=True))
               for chunk in row_chunks for values in chunk)
    first = next(records, None)
    # No rows: one row of empty cells, which writes the header row alone.
    rustpy_xlsxwriter.write_worksheet(
        [dict.fromkeys(header)] if first is None else itertools.chain((first,), records),
        target, sheet_name=title[:31], freeze_row=1)


#: SAS XPORT v5 limits (SAS TS-140): 8-character names, 40-character labels, 200-byte
#: character values; numbers are 8-byte IBM floating point.
XPT_NAME, XPT_LABEL, XPT_VALUE = 8, 40, 200
XPT_NUMERIC = frozenset({"integer", "decimal", "float", "double"})


class XptValueTooLong(ValueError):
    """A character value longer than XPORT v5 allows: the export stops (SDTMIG 3.4 4.5.3.2:
    text over 200 characters goes to SUPP-- variables, it is never truncated silently)."""


#: The record that opens the observations of an XPORT v5 member (SAS TS-140); every record
#: is 80 bytes.
XPT_OBS_HEADER = b"HEADER RECORD*******OBS     HEADER RECORD!!!!!!!" + b"0" * 30 + b"  "
XPT_NAMESTR_HEADER = b"HEADER RECORD*******NAMESTR HEADER RECORD"
XPT_RECORD = 80


def write_xpt(target: str, *, name: str, label: str, variables: Sequence[sdtm.Variable],
              row_chunks: Iterable[Sequence[Sequence]]) -> None:
    """One SDTM dataset as a SAS XPORT version 5 file (SAS TS-140), encoded by pyreadstat
    (ReadStat) chunk by chunk: memory stays flat in the number of rows.

    Character variables stay character (ISO 8601 dates included, as SDTM requires); integer,
    decimal and double variables are numeric. A character variable is as wide as its widest
    value (as pyreadstat sets it; FDA Study Data Technical Conformance Guide: lengths fitted
    to the data), so the rows are read twice: the first pass spools them to a temporary file
    (pickled chunks) and measures the widths; the second writes each chunk with pyreadstat,
    after one row of values at those widths that gives every chunk the same variable layout,
    and appends the chunk's observation records (the bytes after its OBS header record, less
    that first row) to the first chunk's file. XPORT v5 stores no row count: observations
    follow each other across the 80-byte records, the last record padded with blanks.
    """
    if len(name) > XPT_NAME or any(len(v.name) > XPT_NAME for v in variables):
        raise ValueError("XPORT v5 names are at most 8 characters")
    numeric = [v.data_type in XPT_NUMERIC for v in variables]
    widths = [8 if is_number else 1 for is_number in numeric]
    with tempfile.TemporaryFile() as spool, tempfile.TemporaryDirectory() as directory:
        for chunk in row_chunks:
            if chunk:
                pickle.dump(_xpt_columns(chunk, variables, numeric, widths), spool,
                            protocol=pickle.HIGHEST_PROTOCOL)
        spool.seek(0)
        part = os.path.join(directory, "part.xpt")
        header = None
        size = 0
        with open(target, "wb") as out:
            for columns in _spooled(spool, len(variables)):
                head, observations = _xpt_chunk(part, columns, name, label, variables,
                                                numeric, widths)
                if header is None:
                    header = head
                    out.write(head)
                elif head[head.index(XPT_NAMESTR_HEADER):] != header[
                        header.index(XPT_NAMESTR_HEADER):]:
                    raise RuntimeError("pyreadstat wrote another variable layout for a chunk")
                out.write(observations)
                size += len(observations)
            out.write(b" " * (-size % XPT_RECORD))


def _xpt_columns(chunk: Sequence[Sequence], variables: Sequence[sdtm.Variable],
                 numeric: list[bool], widths: list[int]) -> list[list]:
    """A chunk's columns as XPORT takes them (numbers as floats, text as str), widening
    ``widths`` to the widest value of each character variable."""
    columns = []
    for i, values in enumerate(zip(*chunk, strict=True)):
        if numeric[i]:
            columns.append([None if v is None else float(v) for v in values])
            continue
        texts = [v if v is None or isinstance(v, str) else str(v) for v in values]
        present = [t for t in texts if t is not None]
        width = max(map(len, present), default=0)
        if not "".join(present).isascii():
            width = max(len(t.encode("utf-8")) for t in present)
        if width > XPT_VALUE:
            raise XptValueTooLong(f"{variables[i].name}: a value is longer than {XPT_VALUE} "
                                  "bytes")
        widths[i] = max(widths[i], width)
        columns.append(texts)
    return columns


def _spooled(spool: BinaryIO, width: int) -> Iterator[list[list]]:
    """The spooled chunks again; one empty chunk when there were none (the header)."""
    empty = True
    while True:
        try:
            columns = pickle.load(spool)
        except EOFError:
            break
        empty = False
        yield columns
    if empty:
        yield [[] for _ in range(width)]


def _xpt_chunk(path: str, columns: list[list], name: str, label: str,
               variables: Sequence[sdtm.Variable], numeric: list[bool], widths: list[int]
               ) -> tuple[bytes, bytes]:
    """(header, observation bytes) of one chunk written by pyreadstat at ``widths``: a first
    row of values at those widths fixes the layout and is cut out."""
    import pandas as pd
    import pyreadstat

    frame = pd.DataFrame({
        v.name: pd.Series([None, *values], dtype="float64") if is_number
        else pd.Series(["x" * width, *values], dtype=object)
        for v, values, is_number, width in zip(variables, columns, numeric, widths,
                                                 strict=True)})
    pyreadstat.write_xport(
        frame, path, file_label=label[:XPT_LABEL], table_name=name,
        column_labels=[v.label[:XPT_LABEL] for v in variables], file_format_version=5)
    with open(path, "rb") as handle:
        data = handle.read()
    start = data.index(XPT_OBS_HEADER) + XPT_RECORD
    row_size = sum(widths)
    body = data[start + row_size:]
    end = row_size * (len(frame) - 1)
    if len(body) < end or body[end:].strip(b" ") or len(body) - end >= XPT_RECORD:
        raise RuntimeError("pyreadstat wrote observations of an unexpected size")
    return data[:start], body[:end]


def file_blocks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in blocks."""
    while True:
        block = handle.read(size)
        if not block:
            return
        yield block
