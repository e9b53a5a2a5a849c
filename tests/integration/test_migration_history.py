"""Databases migrated before a squash keep working (issue #19).

The squashed migrations (``<app>/migrations/0001_squashed_*``) replace migrations that existing
databases applied one by one; those databases recorded only the replaced names. On the test
database (migrated by the owner, as in production) the squashed names are removed from the
history, as such a database has it: ``migrate`` must find the history consistent and nothing to
apply, and with the last replaced migration of an app (and the app's migrations after it)
unapplied it must apply those only (Django then uses the replaced chain, not the squashed
migration).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tests.conftest import _as_owner

pytestmark = pytest.mark.django_db(transaction=True)


class _RolledBack(Exception):
    pass


def _plan_with_history_of_before_the_squash(also_unapplied=()) -> list[tuple[str, str]]:
    """``migrate``'s plan once the squashed names (and ``also_unapplied``) leave the history."""
    migrations = MigrationExecutor(connection).loader.disk_migrations
    squashed = [key for key, migration in migrations.items() if migration.replaces]
    assert squashed, "no squashed migration"
    return _plan_without([*squashed, *also_unapplied])


def _plan_without(unapplied) -> list[tuple[str, str]]:
    """``migrate``'s plan once the migrations ``unapplied`` leave the history."""
    plan: list[tuple[str, str]] = []
    with _as_owner():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    for app, name in unapplied:
                        cursor.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s",
                                       [app, name])
                executor = MigrationExecutor(connection)
                executor.loader.check_consistent_history(connection)
                targets = executor.loader.graph.leaf_nodes()
                plan = [(m.app_label, m.name) for m, _ in executor.migration_plan(targets)]
                raise _RolledBack
        except _RolledBack:
            pass
    return plan


def test_a_database_of_the_replaced_migrations_migrates_as_before():
    # one test: each transactional test flushes every table afterwards
    assert _plan_with_history_of_before_the_squash() == []
    # a database from before the last replaced migration lacks the migrations after it too
    exports = [("exports", "0005_casebook"), ("exports", "0006_audit_chain_at_commit"),
               ("exports", "0007_drop_redundant_fk_indexes")]
    assert _plan_with_history_of_before_the_squash(also_unapplied=exports) == exports
    data_management = [("data_management", "0004_source_documents"),
                       ("data_management", "0005_audit_chain_at_commit"),
                       ("data_management", "0006_drop_redundant_fk_indexes")]
    assert _plan_with_history_of_before_the_squash(
        also_unapplied=data_management) == data_management
    # the visits squash is a dependency of other apps' squashes (by its last migration before
    # 0009, which they do not need): a database from before 0009 is consistent and gets 0009
    visits = [("visits", "0009_qlq_c30_deterioration_per_subject")]
    assert _plan_with_history_of_before_the_squash(also_unapplied=visits) == visits
    # a database created by the squashes before 0009 (their names in its history): the other
    # apps' squashes that depend on the visits squash stay applied without 0009
    assert _plan_without([("visits", "0001_squashed_0006"), *visits]) == visits
