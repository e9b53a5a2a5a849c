"""Bulk rescoring of QLQ-C30 forms: batched scoring and deterioration, no task per form.

The trial's forms are read by one query (a server-side cursor, binary results) that also
returns each form's stored scores; per batch of subjects, their stored deterioration rows
are read with another. A batch's forms are scored together (``qlq_c30.score_array``, the
rules of ``qlq_c30.score``, over their answers packed by the query into one int2 buffer per
form) and each subject's scales go through ``qlq_c30.time_to_deterioration_all``. Only
results that differ from what is stored are written (a re-run over unchanged forms writes
nothing): rows that do not exist yet with one binary ``COPY`` into the table (new score
rows encoded by numpy for the whole batch), rows that changed with a binary ``COPY`` into a
temporary table and one ``INSERT ... ON CONFLICT DO UPDATE`` per batch. Idempotent: the
result rows are keyed by form and by subject (one row holds every scale's time to
deterioration). As in ``services.recompute_deterioration``, unscheduled forms (at a visit
without a QLQ-C30 due) are scored but count in deterioration only where the protocol allows
it.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

import numpy as np
import psycopg
from django.db import connection, transaction
from django.utils import timezone

from . import qlq_c30
from .models import (
    TTD_FIELDS,
    ComputationState,
    QlqC30Form,
    QlqC30Score,
    QlqC30SubjectDeterioration,
)

SCALES = qlq_c30.SCALES
SCORE_COLUMNS = ["form_id", *SCALES, "state", "error", "computed_at"]
TTD_COLUMNS = ["subject_id", *(f"{scale}_{name}" for scale in SCALES for name in TTD_FIELDS)]
N_TTD = len(TTD_FIELDS)
N_ITEMS = len(qlq_c30.ITEM_KEYS)
_ANSWERS = itemgetter(6)


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@functools.cache
def _forms_sql() -> str:
    """Each form of a trial (subject, date, id order) with its answers (packed) and stored
    scores."""
    form, subject, visit = QlqC30Form._meta.db_table, "subjects_subject", "visits_visit"
    # the 30 answers as one bytea of big-endian int2 (-1: no answer): one value to send and
    # sort instead of 30, and one numpy buffer for the batch's scoring
    items = " || ".join(f"int2send(coalesce(f.{key}, ({qlq_c30.UNANSWERED})::int2))"
                        for key in qlq_c30.ITEM_KEYS)
    stored = ", ".join(f'sc."{s}"' for s in SCALES)
    return (f"SELECT f.id, f.subject_id, f.completion_date, "
            f"coalesce(s.enrolled_on, s.day0, s.consent_date), "
            f"v.qlq_c30_due, s.protocol_version_id, {items}, sc.form_id IS NOT NULL, "
            f"sc.state = %s AND sc.error = '', {stored} "
            f"FROM {form} f JOIN {subject} s ON s.id = f.subject_id "
            f"JOIN {visit} v ON v.id = f.visit_id "
            f"LEFT JOIN {QlqC30Score._meta.db_table} sc ON sc.form_id = f.id "
            f"WHERE s.trial_id = %s AND f.retired_at IS NULL "
            f"ORDER BY f.subject_id, f.completion_date, f.id")


@functools.cache
def _ttd_sql() -> str:
    return (f"SELECT {_quoted(TTD_COLUMNS)} "
            f"FROM {QlqC30SubjectDeterioration._meta.db_table} WHERE subject_id = ANY(%s)")


def _copy(cursor, table: str, columns: list[str], rows) -> None:
    """Binary ``COPY`` of ``rows`` into ``table`` (psycopg packs each value in C; new score
    rows come encoded)."""
    if isinstance(rows, _NewScores):
        with cursor.cursor.copy(f"COPY {table} ({_quoted(columns)}) FROM STDIN "
                                f"(FORMAT BINARY)") as copy:
            copy.write(rows.copy_data())
        return
    cursor.execute("SELECT a.atttypid FROM unnest(%s::text[]) WITH ORDINALITY c(name, n) "
                   "JOIN pg_attribute a ON a.attname = c.name AND a.attrelid = %s::regclass "
                   "ORDER BY c.n", [columns, table])
    types = [oid for (oid,) in cursor.fetchall()]
    with cursor.cursor.copy(f"COPY {table} ({_quoted(columns)}) FROM STDIN (FORMAT BINARY)"
                            ) as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in rows:
            write(row)


def _upsert(cursor, model, columns: list[str], rows: list[tuple], conflict: list[str]) -> None:
    """COPY ``rows`` into a temporary table, then upsert them into ``model``'s table.

    A row whose values are unchanged is not rewritten (its ``computed_at`` columns keep the
    time the result last changed), so a rescoring run costs writes only where results moved.
    """
    if not rows:
        return
    table = model._meta.db_table
    temp = f"_bulk_{table}"
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} AS SELECT {_quoted(columns)} "
                   f"FROM {table} WITH NO DATA")
    cursor.execute(f"TRUNCATE {temp}")
    _copy(cursor, temp, columns, rows)
    updated = [c for c in columns if c not in conflict]
    values = [c for c in updated if not c.endswith("computed_at")]
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in updated)
    changed = " OR ".join(f't."{c}" IS DISTINCT FROM EXCLUDED."{c}"' for c in values)
    cursor.execute(f"INSERT INTO {table} AS t ({_quoted(columns)}) SELECT {_quoted(columns)} "
                   f"FROM {temp} ON CONFLICT ({_quoted(conflict)}) DO UPDATE SET {updates} "
                   f"WHERE {changed}")


def _write(cursor, model, columns: list[str], new, changed: list[tuple],
           conflict: list[str]) -> None:
    """Insert the rows that did not exist when read (plain ``COPY``: no conflict check per
    row), upsert the changed ones. Should another transaction have created one of the new
    rows meanwhile (the unique key refuses the ``COPY``), the new rows are upserted too."""
    if new:
        try:
            with transaction.atomic():  # a savepoint: only the COPY is undone on a conflict
                _copy(cursor, model._meta.db_table, columns, new)
        except psycopg.errors.UniqueViolation:
            changed = changed + list(new)
    _upsert(cursor, model, columns, changed, conflict)


def _subject_batches(forms, subjects_per_batch: int):
    """The rows of a server-side cursor, cut into lists of ``subjects_per_batch`` subjects."""
    batch, subjects, current = [], 0, None
    while rows := forms.fetchmany(10000):
        for row in rows:
            if row[1] != current:
                current = row[1]
                if subjects == subjects_per_batch:
                    yield batch
                    batch, subjects = [], 0
                subjects += 1
            batch.append(row)
    if batch:
        yield batch


def _scores(forms: list[tuple]) -> tuple[np.ndarray, list[tuple]]:
    """Each form's scores in ``SCALES`` order (``qlq_c30.score_array`` over the batch's
    packed answers): the array (NaN where missing) and its rows as tuples (None)."""
    answers = np.frombuffer(b"".join(map(_ANSWERS, forms)), dtype=">i2")
    scores = qlq_c30.score_array(answers.reshape(len(forms), N_ITEMS))
    values = scores.astype(object)
    values[np.isnan(scores)] = None
    return scores, list(map(tuple, values.tolist()))


_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_DONE = ComputationState.DONE.encode()
#: A new score row in COPY's binary format: field count, then each field's length (-1: NULL,
#: no data) and big-endian value: form id, the 16 scales, state, error, computed_at
_SCORE_ROW = np.dtype(
    [("fields", ">i2"), ("id_len", ">i4"), ("id", ">i8")]
    + [(name, kind) for i in range(len(SCALES)) for name, kind in
       ((f"len{i}", ">i4"), (f"scale{i}", ">f8"))]
    + [("state_len", ">i4"), ("state", f"S{len(_DONE)}"), ("error_len", ">i4"),
       ("at_len", ">i4"), ("at", ">i8")])


@dataclass
class _NewScores:
    """The score rows of a batch that do not exist yet (forms' ids, their scores; NaN where
    missing), written by one binary ``COPY`` whose data numpy encodes for all the rows at
    once (psycopg's ``write_row`` packs one row per Python call); as tuples when they must
    be upserted instead."""

    ids: np.ndarray
    scores: np.ndarray
    values: list[tuple]
    now: dt.datetime

    def __bool__(self) -> bool:
        return len(self.ids) > 0

    def __iter__(self):
        done = (ComputationState.DONE, "", self.now)
        return ((form_id, *values, *done)
                for form_id, values in zip(self.ids.tolist(), self.values, strict=True))

    def copy_data(self) -> bytes:
        """The rows in ``COPY ... (FORMAT BINARY)`` (header included; psycopg ends it)."""
        rows = np.zeros(len(self.ids), dtype=_SCORE_ROW)
        rows["fields"], rows["id_len"], rows["id"] = len(SCORE_COLUMNS), 8, self.ids
        missing = np.isnan(self.scores)
        for i in range(len(SCALES)):
            rows[f"len{i}"] = np.where(missing[:, i], -1, 8)
            rows[f"scale{i}"] = self.scores[:, i]
        rows["state_len"], rows["state"] = len(_DONE), _DONE
        rows["at_len"] = 8
        rows["at"] = (self.now - _PG_EPOCH) // dt.timedelta(microseconds=1)
        # a NULL field has no data: drop the 8 bytes of each missing scale
        keep = np.ones((len(rows), _SCORE_ROW.itemsize), dtype=bool)
        for i in range(len(SCALES)):
            offset = _SCORE_ROW.fields[f"scale{i}"][1]
            keep[:, offset:offset + 8] &= ~missing[:, i, None]
        return _COPY_HEADER + rows.view(np.uint8).reshape(len(rows), -1)[keep].tobytes()


def _score_batch(cursor, forms: list[tuple], now, counts_unscheduled) -> int:
    raw = psycopg.Cursor(cursor.connection)  # binary results: no float parsed from text
    raw.execute(_ttd_sql(), [list(dict.fromkeys(row[1] for row in forms))], binary=True)
    stored_ttd = {row[0]: row[1:] for row in raw.fetchall()}
    new_at, changed_scores, new_ttd, changed_ttd = [], [], [], []
    done = (ComputationState.DONE, "", now)
    scores, values_of = _scores(forms)
    stored_at = 7
    current, start, dates, history = None, None, [], []

    def close_subject() -> None:
        results = qlq_c30.time_to_deterioration_all(start, dates, history)
        before = stored_ttd.get(current)
        if before is None:
            new_ttd.append((current, *chain.from_iterable((*r, now) for r in results)))
            return
        row, changed = [current], False
        for i, result in enumerate(results):  # a scale whose result is unchanged keeps its time
            stored = before[i * N_TTD:(i + 1) * N_TTD]
            same = stored[:-1] == result
            row += (*result, stored[-1] if same else now)
            changed |= not same
        if changed:
            changed_ttd.append(tuple(row))

    for i, (row, values) in enumerate(zip(forms, values_of, strict=True)):
        if row[1] != current:
            if current is not None:
                close_subject()
            current, start, dates, history = row[1], row[3], [], []
        if not row[stored_at]:
            new_at.append(i)
        elif not row[stored_at + 1] or row[stored_at + 2:] != values:
            changed_scores.append((row[0], *values, *done))
        if row[4] or counts_unscheduled(row[5]):
            dates.append(row[2])
            history.append(values)
    if current is not None:
        close_subject()
    new_scores = _NewScores(np.fromiter((forms[i][0] for i in new_at), np.int64, len(new_at)),
                            scores[new_at], [values_of[i] for i in new_at], now)
    _write(cursor, QlqC30Score, SCORE_COLUMNS, new_scores, changed_scores, ["form_id"])
    _write(cursor, QlqC30SubjectDeterioration, TTD_COLUMNS, new_ttd, changed_ttd,
           ["subject_id"])
    return len(forms)


def rescore_trial(trial_id: int, subjects_per_batch: int = 2000) -> int:
    """Score every form of a trial and recompute every subject's deterioration."""
    from trials.models import ProtocolVersion

    from .services import counts_unscheduled_forms

    @functools.cache
    def counts_unscheduled(version_id: int) -> bool:
        return counts_unscheduled_forms(ProtocolVersion.objects.get(pk=version_id))

    now = timezone.now()
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        # one statement reads the whole trial (each table scanned once), streamed in binary;
        # every row is read, so it is planned for all of them (a cursor's default, 10 %, picks
        # index probes per form and an incremental sort: 30-40 % more backend time), the
        # setting put back once the cursor is declared (its plan is made then)
        cursor.execute("SELECT current_setting('cursor_tuple_fraction')")
        (previous,) = cursor.fetchone()
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1")
        forms = psycopg.ServerCursor(cursor.connection, "qlq_c30_rescoring")
        forms.execute(_forms_sql(), [ComputationState.DONE, trial_id], binary=True)
        cursor.execute("SELECT set_config('cursor_tuple_fraction', %s, true)", [previous])
        for batch in _subject_batches(forms, subjects_per_batch):
            count += _score_batch(cursor, batch, now, counts_unscheduled)
        forms.close()
    return count
