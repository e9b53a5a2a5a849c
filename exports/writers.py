"""File formats of the exports, written incrementally (pure Python, no Django).

* CSV (RFC 4180, UTF-8, CRLF line ends): a header of variable names, then the rows; None is
  written as an empty field.
* Dataset-JSON 1.1: ``exports.sdtm.dataset_json_chunks``.
* XLSX (Office Open XML, ECMA-376): openpyxl's write-only workbook, which streams rows to a
  temporary file instead of building the sheet in memory.

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
    """The document of a text format ("csv" or "json", i.e. Dataset-JSON) as text chunks."""
    if fmt == "csv":
        return csv_chunks(header, row_chunks)
    if fmt == "json":
        if dataset_json_header is None:
            raise ValueError("Dataset-JSON needs its header")
        return sdtm.dataset_json_chunks(dataset_json_header, row_chunks)
    raise ValueError(f"not a text format: {fmt}")


def write_xlsx(target: BinaryIO | str, *, title: str, header: Sequence[str],
               row_chunks: Iterable[Sequence[Sequence]]) -> None:
    """An XLSX workbook of one sheet (frozen header row), written row by row."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.freeze_panes = "A2"
    sheet.append(list(header))
    for chunk in row_chunks:
        for row in chunk:
            sheet.append(row)
    workbook.save(target)


def file_blocks(handle: BinaryIO, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes in blocks."""
    while True:
        block = handle.read(size)
        if not block:
            return
        yield block
