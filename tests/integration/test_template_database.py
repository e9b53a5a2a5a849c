"""The test database is a copy of the migrated template, and is fully migrated (#19)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from edc.core.template_database import template_name
from tests.conftest import owner_connection

pytestmark = pytest.mark.django_db


def test_the_test_database_has_every_migration_applied_and_a_template_of_them_exists():
    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    with owner_connection() as cursor:
        cursor.execute("SELECT datallowconn FROM pg_database WHERE datname = %s",
                       [template_name()])
        assert cursor.fetchall() == [(False,)]  # published, and nobody can write to it
