"""Bulk rescoring of QLQ-C30 forms: batched scoring and deterioration, no task per form.

Forms are read per batch of subjects with one plain query, scored with
``visits.qlq_c30``, and written with binary ``COPY`` into a temporary table followed by one
``INSERT ... ON CONFLICT DO UPDATE`` per batch, so the cost per form is close to the pure
scoring cost. Idempotent: the result rows are keyed by form and by (subject, scale).
As in ``services.recompute_deterioration``, unscheduled forms (at a visit without a QLQ-C30
due) are scored but count in deterioration only where the protocol allows it.
"""

from __future__ import annotations

import functools

from django.db import connection, transaction
from django.utils import timezone

from . import qlq_c30
from .models import ComputationState, QlqC30Deterioration, QlqC30Form, QlqC30Score

ITEMS = ", ".join(f"f.{key}" for key in qlq_c30.ITEM_KEYS)
SCORE_COLUMNS = ["form_id", *qlq_c30.SCALES, "state", "error", "computed_at"]
TTD_COLUMNS = ["subject_id", "scale", "event", "event_date", "confirm_date", "censor_date",
               "days", "computed_at"]


def _quoted(columns: list[str]) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _forms_sql() -> str:
    form, subject, visit = QlqC30Form._meta.db_table, "subjects_subject", "visits_visit"
    return (f"SELECT f.id, f.subject_id, f.completion_date, "
            f"coalesce(s.enrolled_on, s.day0, s.consent_date), "
            f"v.qlq_c30_due, s.protocol_version_id, {ITEMS} "
            f"FROM {form} f JOIN {subject} s ON s.id = f.subject_id "
            f"JOIN {visit} v ON v.id = f.visit_id "
            f"WHERE f.subject_id = ANY(%s) AND f.retired_at IS NULL "
            f"ORDER BY f.subject_id, f.completion_date, f.id")


def _upsert(cursor, model, columns: list[str], rows: list[tuple], conflict: list[str]) -> None:
    """COPY ``rows`` into a temporary table, then upsert them into ``model``'s table.

    A row whose values are unchanged is not rewritten (``computed_at`` keeps the time the
    result last changed), so a rescoring run costs writes only where results moved.
    """
    table = model._meta.db_table
    temp = f"_bulk_{table}"
    cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {temp} AS SELECT {_quoted(columns)} "
                   f"FROM {table} WITH NO DATA")
    cursor.execute(f"TRUNCATE {temp}")
    cursor.execute("SELECT atttypid FROM pg_attribute WHERE attrelid = %s::regclass "
                   "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [temp])
    types = [oid for (oid,) in cursor.fetchall()]
    # Binary COPY: psycopg packs each value in C (text COPY spends its time writing floats)
    with cursor.cursor.copy(f"COPY {temp} ({_quoted(columns)}) FROM STDIN (FORMAT BINARY)"
                            ) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
    values = [c for c in columns if c not in conflict and c != "computed_at"]
    updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in [*values, "computed_at"])
    changed = " OR ".join(f't."{c}" IS DISTINCT FROM EXCLUDED."{c}"' for c in values)
    cursor.execute(f"INSERT INTO {table} AS t ({_quoted(columns)}) SELECT {_quoted(columns)} "
                   f"FROM {temp} ON CONFLICT ({_quoted(conflict)}) DO UPDATE SET {updates} "
                   f"WHERE {changed}")


def _score_batch(cursor, subject_ids: list[int], now, counts_unscheduled) -> int:
    cursor.execute(_forms_sql(), [subject_ids])
    scores, results = [], []
    keys, scales = qlq_c30.ITEM_KEYS, qlq_c30.SCALES
    current, history, start = None, [], None

    def close_subject() -> None:
        for scale in scales:
            ttd = qlq_c30.time_to_deterioration(
                scale, start, [(day, values[scale]) for day, values in history])
            results.append((current, scale, ttd.event, ttd.event_date, ttd.confirm_date,
                            ttd.censor_date, ttd.days, now))

    for row in cursor.fetchall():
        if row[1] != current:
            if current is not None:
                close_subject()
            current, history, start = row[1], [], row[3]
        values = qlq_c30.score(dict(zip(keys, row[6:], strict=True)))
        scores.append((row[0], *(values[s] for s in scales), ComputationState.DONE, "", now))
        if row[4] or counts_unscheduled(row[5]):
            history.append((row[2], values))
    if current is not None:
        close_subject()
    _upsert(cursor, QlqC30Score, SCORE_COLUMNS, scores, ["form_id"])
    _upsert(cursor, QlqC30Deterioration, TTD_COLUMNS, results, ["subject_id", "scale"])
    return len(scores)


def rescore_trial(trial_id: int, subjects_per_batch: int = 2000) -> int:
    """Score every form of a trial and recompute every subject's deterioration."""
    from subjects.models import Subject
    from trials.models import ProtocolVersion

    from .services import counts_unscheduled_forms

    @functools.cache
    def counts_unscheduled(version_id: int) -> bool:
        return counts_unscheduled_forms(ProtocolVersion.objects.get(pk=version_id))

    now = timezone.now()
    subject_ids = list(Subject.objects.filter(trial_id=trial_id).order_by("pk")
                       .values_list("pk", flat=True))
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(subject_ids), subjects_per_batch):
            count += _score_batch(cursor, subject_ids[start:start + subjects_per_batch], now,
                                  counts_unscheduled)
    return count
