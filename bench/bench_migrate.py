"""Creating the schema: ``migrate`` on an empty database against restoring the same schema.

Floor: ``pg_restore`` of a schema-only dump (``pg_dump -s -Fc``) of a migrated database, into an
empty database. Project: ``manage.py migrate`` into an empty database (what every deployment
and every test run pays; pytest-django creates the test database the same way). Both run as
separate processes, interleaved, medians of the rounds; the databases are
``<BENCH_MIGRATE_DATABASE>_a`` / ``_b`` (dropped and created each round). Goal (#19): <= 3x.

Second figure, the goal's own words ("creating the test database"): what pytest-django does
once its process is set up, ``connection.creation.create_test_db`` (``migrate`` through
``call_command``: no system checks, no process start), timed inside a process against the same
restore; the database is ``test_<BENCH_MIGRATE_DATABASE>_c``. Third figure: the same on a
repeat run, the test database copied from the migrated template this checkout's first run
published (``edc.core.template_database``, what ``tests/conftest.py`` does).

The app's bytecode is compiled first (``compileall``, as the Docker image and ``scripts/test``
do): with ``PYTHONDONTWRITEBYTECODE`` set, each ``migrate`` would otherwise compile the ~250
modules again.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Figure, print_figures

ROOT = Path(__file__).resolve().parent.parent
BASE = os.environ.get("BENCH_MIGRATE_DATABASE", "trialdesk_bench_migrate")
PG = ["-h", "127.0.0.1", "-U", "postgres"]
ROUNDS = int(os.environ.get("BENCH_MIGRATE_ROUNDS", "3"))


def _psql(sql: str) -> None:
    subprocess.run(["psql", *PG, "-q", "-d", "postgres", "-c", sql], check=True)


def _fresh(name: str) -> None:
    _psql(f'DROP DATABASE IF EXISTS "{name}"')
    _psql(f'CREATE DATABASE "{name}"')


def _migrate(name: str) -> float:
    _fresh(name)
    env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def _create_test_db(name: str, template: bool = False) -> float:
    """Seconds ``create_test_db`` takes in a set-up process (its own clock, printed last).

    With ``template``, as a repeat test run does (``tests/conftest.py``): the database is copied
    from the migrated template (``edc.core.template_database``; its fingerprint is in the time),
    then ``migrate`` finds everything applied. Without, every migration runs, as on a first
    run, and the result is published as the template.
    """
    env = dict(os.environ, DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{name}",
               DJANGO_SETTINGS_MODULE="edc.settings")
    code = ("import time, django; django.setup(); from django.db import connection; "
            "from edc.core import template_database as t; "
            "start = time.perf_counter(); "
            f"used = {template} and t.use_template(); "
            f"assert used or not {template}, 'no template'; "
            "connection.creation.create_test_db("
            "verbosity=0, autoclobber=True, serialize=False); "
            "took = time.perf_counter() - start; "
            "used or t.publish_template(); print(took)")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True)
    return float(run.stdout.split()[-1])


def _restore(name: str, dump: str) -> float:
    _fresh(name)
    start = time.perf_counter()
    subprocess.run(["pg_restore", *PG, "-d", name, dump], check=True)
    return time.perf_counter() - start


def main() -> None:
    migrated, restored, tested = f"{BASE}_a", f"{BASE}_b", f"{BASE}_c"
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-x",
                    r"/(\.venv|node_modules|var)/", "."], cwd=ROOT, check=True)
    _migrate(migrated)
    with tempfile.TemporaryDirectory() as tmp:
        dump = str(Path(tmp) / "schema.dump")
        subprocess.run(["pg_dump", *PG, "-s", "-Fc", "-f", dump, migrated], check=True)
        project, test_db, copied, floor = [], [], [], []
        for _ in range(ROUNDS):
            project.append(_migrate(migrated))
            floor.append(_restore(restored, dump))
            test_db.append(_create_test_db(tested))
            copied.append(_create_test_db(tested, template=True))
    for name in (migrated, restored, f"test_{tested}"):
        _psql(f'DROP DATABASE IF EXISTS "{name}"')
    p, t, c, f = (statistics.median(x) for x in (project, test_db, copied, floor))
    print_figures([Figure("migrate an empty database vs pg_restore schema", p, f, "s",
                          p / f, goal=3),
                   Figure("create the test database vs pg_restore schema", t, f, "s",
                          t / f, goal=3),
                   Figure("create it from the migrated template (a repeat run)", c, f, "s",
                          c / f, goal=3)])


if __name__ == "__main__":
    main()
