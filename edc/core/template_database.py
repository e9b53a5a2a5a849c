"""Test databases copied from a migrated template (#19: creating the test database).

Every test run creates its databases (one per xdist worker) by running every migration, ~4 s
each, most of it Django rendering the migration state. The first run publishes its freshly
migrated test database as a PostgreSQL template; later runs create theirs with ``CREATE
DATABASE ... TEMPLATE`` (a copy of the files, no migration state rendered). The migrations
stay the one source of the schema: the template is what they built, and Django's
``create_test_db`` still runs ``migrate`` on the copy, which finds every migration applied and
sends ``post_migrate`` (permissions, content types, the application role's grants) as after any
``migrate``.

A template is named by the fingerprint of what a migrated database is a function of: every
file of every installed app's migrations package, the project modules those migrations and the
``pre_migrate``/``post_migrate`` receivers are defined in, the versions of the installed
distributions (Django, pgtrigger, pghistory ...) and the application role's name. Changing any
of them names a new template; a run that finds none builds it. Templates unused for a day
(another checkout's, an older fingerprint's) are dropped by the run that publishes a new one;
a younger one may be a concurrent run's, which could be copying it.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import time
import weakref
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.loader import MigrationLoader
from django.db.models.signals import post_migrate, pre_migrate

PREFIX = "trialdesk_template_"
#: Seconds after which another fingerprint's template is dropped (a concurrent run may be
#: copying a younger one).
STALE_AFTER = 24 * 3600


def fingerprint(files: Iterable[Path], facts: Iterable[str]) -> str:
    """The SHA-256 of ``files`` (name and content, in sorted order) and ``facts``.

    A file is named relative to the import root it is under (the checkout, site-packages), so
    two checkouts of the same migrations, a clean clone in CI say, share one template.
    """
    entries = [*sys.path, settings.BASE_DIR]
    roots = sorted({Path(entry).resolve() for entry in entries if entry and Path(entry).is_dir()},
                   key=lambda root: len(root.parts), reverse=True)
    named = {}
    for path in (Path(f).resolve() for f in files):
        root = next((root for root in roots if path.is_relative_to(root)), path.parent)
        named[path.relative_to(root).as_posix()] = path
    digest = hashlib.sha256()
    for name, path in sorted(named.items()):
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for fact in sorted(facts):
        digest.update(fact.encode() + b"\0")
    return digest.hexdigest()


def _project_file(obj) -> Path | None:
    module = inspect.getmodule(obj)
    path = getattr(module, "__file__", None)
    if not path:
        return None
    path = Path(path).resolve()
    inside = path.is_relative_to(Path(settings.BASE_DIR).resolve())
    return path if inside and not path.is_relative_to(Path(sys.prefix).resolve()) else None


def _migration_files() -> set[Path]:
    """Every file of every migrations package, and the project modules the migrations use."""
    files: set[Path] = set()
    for config in apps.get_app_configs():
        name, _ = MigrationLoader.migrations_module(config.label)
        try:
            package = import_module(name)
        except ImportError:
            continue
        for directory in getattr(package, "__path__", ()):
            for path in Path(directory).glob("*.py"):
                files.add(path)
                module = import_module(f"{name}.{path.stem}")
                files.update(filter(None, map(_project_file, vars(module).values())))
    return files


def _receiver_files() -> set[Path]:
    files = set()
    for signal in (pre_migrate, post_migrate):
        for entry in signal.receivers:
            receiver = entry[1]
            if isinstance(receiver, weakref.ReferenceType):
                receiver = receiver()
            files.add(_project_file(receiver))
    files.discard(None)
    return files


def template_name() -> str:
    """The name of the template a migrated database of this checkout would be."""
    versions = {path.name for entry in sys.path if Path(entry).is_dir()
                for path in Path(entry).glob("*.dist-info")}  # name-version.dist-info
    key = fingerprint(_migration_files() | _receiver_files(),
                      versions | {f"app_role={settings.DATABASE_APP_ROLE}"})
    return PREFIX + key[:20]


def _cursor(alias: str):
    return connections[alias].creation._nodb_cursor()


def _exists(cursor, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def use_template(alias: str = "default") -> str | None:
    """Create ``alias``'s test database from its template if one exists; the template's name."""
    name = template_name()
    with _cursor(alias) as cursor:
        if not _exists(cursor, name):
            return None
        cursor.execute(f'COMMENT ON DATABASE "{name}" IS %s', [str(int(time.time()))])
    connections[alias].settings_dict["TEST"]["TEMPLATE"] = name
    return name


def publish_template(alias: str = "default") -> str:
    """Copy ``alias``'s freshly migrated test database to its template; the template's name.

    Call right after the test database was created by migrations, before anything is written
    to it and while nothing else is connected to it. Concurrent publishers of the same
    fingerprint (xdist workers) are harmless: the first rename wins, the others drop theirs.
    """
    name = template_name()
    source = connections[alias].settings_dict["NAME"]
    building = f"{name}_{int(time.time() * 1000) % 10**9}"
    connections.close_all()
    with _cursor(alias) as cursor:
        if _exists(cursor, name):
            return name
        cursor.execute(f'CREATE DATABASE "{building}" TEMPLATE "{source}"')
        cursor.execute(f'ALTER DATABASE "{building}" WITH ALLOW_CONNECTIONS false')
        cursor.execute(f'COMMENT ON DATABASE "{building}" IS %s', [str(int(time.time()))])
        if _exists(cursor, name):
            cursor.execute(f'DROP DATABASE "{building}"')
        else:
            cursor.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
        _drop_stale(cursor, keep=name)
    return name


def _drop_stale(cursor, keep: str) -> None:
    cursor.execute(
        "SELECT datname FROM pg_database d"
        " LEFT JOIN pg_shdescription c ON c.objoid = d.oid"
        "  AND c.classoid = 'pg_database'::regclass"
        " WHERE datname LIKE %s AND datname <> %s"
        "  AND coalesce(nullif(c.description, '')::bigint, 0) < %s",
        [PREFIX.replace("_", r"\_") + "%", keep, int(time.time()) - STALE_AFTER])
    for (stale,) in cursor.fetchall():
        try:
            cursor.execute(f'DROP DATABASE IF EXISTS "{stale}"')
        except DatabaseError:  # in use: another run is copying it; the next publisher drops it
            continue
