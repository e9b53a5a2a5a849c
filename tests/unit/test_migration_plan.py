"""What ``migrate`` runs on an empty database (every deployment and every test run, issue #19).

Each project app is created by one squashed migration (its models in one ``CreateModels``), and
the third-party apps' migrations run before the project's first model: an operation's cost is a
re-render of the models related to the one it changes, and once the project's models exist most
of them relate to ``auth.User``. ``bench/bench_migrate.py`` measures the time; these tests keep
the plan that makes it."""

from __future__ import annotations

from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db.migrations.executor import MigrationExecutor


def _plan() -> list[tuple[str, str]]:
    """The migrations ``migrate`` applies to an empty database, in order."""
    executor = MigrationExecutor(connection=None)
    targets = executor.loader.graph.leaf_nodes()
    return [(migration.app_label, migration.name)
            for migration, _ in executor.migration_plan(targets, clean_start=True)]


def _project_labels() -> set[str]:
    base = Path(settings.BASE_DIR)
    return {config.label for config in apps.get_app_configs()
            if Path(config.path).is_relative_to(base)
            and not Path(config.path).is_relative_to(base / ".venv")}


def test_an_empty_database_creates_each_project_app_by_its_squashed_migration():
    project = _project_labels()
    plan = _plan()
    first = {}
    for label, name in plan:
        if label in project:
            first.setdefault(label, name)
    assert first, "no project migration planned"
    assert {label: name for label, name in first.items()
            if not name.startswith("0001_squashed_")} == {}
    loader = MigrationExecutor(connection=None).loader
    replaced = {key for squash in loader.replacements.values() for key in squash.replaces}
    assert replaced and replaced.isdisjoint(plan)  # the chains the squashes replace do not run


def test_third_party_migrations_run_before_the_project_models():
    project = _project_labels()
    plan = _plan()
    first_project = min(index for index, (label, _) in enumerate(plan) if label in project)
    later = [node for node in plan[first_project:] if node[0] not in project]
    assert later == []
    assert plan[first_project] == ("edc", "0001_squashed_0006")


def test_an_empty_database_runs_only_the_squashed_migrations_of_the_project():
    """A later schema change of an app (the audit chain's triggers, the index drops) is folded
    into the app's squash (which also ``replaces`` it): a fresh database creates the final
    schema at once instead of re-rendering the models once more per change."""
    project = _project_labels()
    assert [(label, name) for label, name in _plan()
            if label in project and not name.startswith("0001_squashed_")] == []
