"""The project's indexes on the migrated test database (issue #19).

An index on a single column ``x`` is redundant when another valid, non-partial btree index or
unique constraint of the same table starts with ``x`` (same operator class): PostgreSQL uses
the longer one for every lookup by ``x``, while each insert pays for both. Django gives a
foreign key its own index unless ``db_index=False``; the fields whose table already has such an
index set it. In the other direction, every foreign key column must still lead an index (the
lookups of the rows referring to a row, and PostgreSQL's own checks when one is changed).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.db import connection

pytestmark = pytest.mark.django_db

#: (table, single-column index, the index that starts with its column) on the public schema.
REDUNDANT_SQL = """
SELECT t.relname, i.relname, o.relname
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
JOIN pg_am am ON am.oid = i.relam AND am.amname = 'btree'
JOIN pg_index y ON y.indrelid = x.indrelid AND y.indexrelid <> x.indexrelid
     AND y.indisvalid AND y.indpred IS NULL AND y.indkey[0] = x.indkey[0]
     AND y.indclass[0] = x.indclass[0]
JOIN pg_class o ON o.oid = y.indexrelid AND o.relam = i.relam
WHERE x.indnkeyatts = 1 AND x.indkey[0] <> 0 AND x.indpred IS NULL AND NOT x.indisunique
ORDER BY 1, 2, 3
"""

#: (table, column) of each single-column foreign key that leads no valid, non-partial index.
UNINDEXED_FOREIGN_KEYS_SQL = """
SELECT c.conrelid::regclass::text, a.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND cardinality(c.conkey) = 1 AND NOT EXISTS (
    SELECT FROM pg_index x WHERE x.indrelid = c.conrelid AND x.indkey[0] = c.conkey[1]
    AND x.indisvalid AND x.indpred IS NULL)
ORDER BY 1, 2
"""


def _project_tables() -> set[str]:
    """The tables of the project's own models (audit event tables included)."""
    base = Path(settings.BASE_DIR)
    return {model._meta.db_table for config in apps.get_app_configs()
            if Path(config.path).is_relative_to(base)
            and not Path(config.path).is_relative_to(base / ".venv")
            for model in config.get_models() if not model._meta.proxy}


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_no_project_table_has_a_single_column_index_another_index_starts_with():
    tables = _project_tables()
    assert {"visits_visit", "visits_qlqc30deterioration", "visits_visitevent"} <= tables
    redundant = [row for row in _rows(REDUNDANT_SQL) if row[0] in tables]
    assert redundant == []


def test_every_foreign_key_of_a_project_table_leads_an_index():
    tables = _project_tables()
    assert [row for row in _rows(UNINDEXED_FOREIGN_KEYS_SQL) if row[0] in tables] == []


def test_the_scores_are_keyed_by_their_form_alone():
    """A score row is the form's: its primary key is the form (no surrogate key and second
    unique index to maintain for each of the rows a rescoring writes)."""
    rows = _rows("""
        SELECT x.indisprimary, a.attname FROM pg_index x
        JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey)
        WHERE x.indrelid = 'visits_qlqc30score'::regclass""")
    assert rows == [(True, "form_id")]
