"""File formats of the exports, written incrementally (pure Python, no Django).

* CSV (RFC 4180, UTF-8, CRLF line ends): a header of variable names, then the rows; None is
  written as an empty field.
* Dataset-JSON 1.1: ``exports.sdtm.dataset_json_chunks`` (JSON) and
  ``exports.sdtm.dataset_ndjson_chunks`` (NDJSON).
* SAS XPORT v5 (SAS TS-140): :func:`write_xpt` (pyreadstat).
* XLSX (Office Open XML, ECMA-376): XlsxWriter in constant-memory mode (:func:`write_xlsx`),
  which streams rows to a temporary file instead of building the sheet in memory.

Every writer takes an iterable of row *chunks* (lists of tuples) so the database cursor, the
mapping and the encoding all work in batches and memory stays flat in the number of rows.
"""

from __future__ import annotations

import csv
import hashlib
import io
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

    XlsxWriter in constant-memory mode flushes each row to a temporary file once the next one
    starts (strings inline, no shared-string table), so memory stays flat in the rows. Text is
    always written as text: never turned into a formula, a link or a number, so a value such
    as ``=1+1`` reads back as the site entered it.
    """
    import xlsxwriter

    workbook = xlsxwriter.Workbook(target, {
        "constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False,
        "strings_to_numbers": False})
    sheet = workbook.add_worksheet(title[:31])
    sheet.freeze_panes(1, 0)
    sheet.write_row(0, 0, header)
    write_row, row = sheet.write_row, 1
    for chunk in row_chunks:
        for values in chunk:
            write_row(row, 0, values)
            row += 1
    workbook.close()


#: SAS XPORT v5 limits (SAS TS-140): 8-character names, 40-character labels, 200-byte
#: character values; numbers are 8-byte IBM floating point.
XPT_NAME, XPT_LABEL, XPT_VALUE = 8, 40, 200
XPT_NUMERIC = frozenset({"integer", "decimal", "float", "double"})


class XptValueTooLong(ValueError):
    """A character value longer than XPORT v5 allows: the export stops (SDTMIG 3.4 4.5.3.2:
    text over 200 characters goes to SUPP-- variables, it is never truncated silently)."""


def write_xpt(target: str, *, name: str, label: str, variables: Sequence[sdtm.Variable],
              row_chunks: Iterable[Sequence[Sequence]]) -> None:
    """One SDTM dataset as a SAS XPORT version 5 file, written by pyreadstat (ReadStat).

    Character variables stay character (ISO 8601 dates included, as SDTM requires); integer,
    decimal and double variables are numeric. The whole dataset is handed to the writer as
    one frame: XPORT files are bounded (sync exports above the row limit go to Celery).
    """
    import pandas as pd
    import pyreadstat

    if len(name) > XPT_NAME or any(len(v.name) > XPT_NAME for v in variables):
        raise ValueError("XPORT v5 names are at most 8 characters")
    columns: list[list] = [[] for _ in variables]
    for chunk in row_chunks:
        for row in chunk:
            for values, value in zip(columns, row, strict=True):
                values.append(value)
    frame = {}
    for variable, values in zip(variables, columns, strict=True):
        if variable.data_type in XPT_NUMERIC:
            frame[variable.name] = pd.Series(
                [None if v is None else float(v) for v in values], dtype="float64")
        else:
            for value in values:
                if value is not None and len(str(value).encode("utf-8")) > XPT_VALUE:
                    raise XptValueTooLong(
                        f"{variable.name}: a value is longer than {XPT_VALUE} bytes")
            frame[variable.name] = pd.Series(values, dtype=object)
    pyreadstat.write_xport(
        pd.DataFrame(frame), target, file_label=label[:XPT_LABEL], table_name=name,
        column_labels=[v.label[:XPT_LABEL] for v in variables], file_format_version=5)


def file_blocks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in blocks."""
    while True:
        block = handle.read(size)
        if not block:
            return
        yield block
