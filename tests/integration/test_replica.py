"""A real streaming replica (issue 19): exports read from it, everything else from the primary.

The test builds its own primary and hot standby (``initdb``, ``pg_basebackup -R``, streaming
replication) on free ports on this machine, migrates the primary and runs the project against
the pair in a separate process (``DATABASE_URL`` + ``DATABASE_REPLICA_URL``), as a deployment
does. The shared PostgreSQL of the test suite is not touched (its ``pg_hba.conf`` allows no
replication connections).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(not BIN, reason="PostgreSQL server binaries not installed")


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Server binaries refuse to run as root: run them as the ``postgres`` user then."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + args, check=True, capture_output=True, text=True, **kwargs)


class Cluster:
    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port

    def start(self) -> None:
        _as_postgres([f"{BIN[-1]}/pg_ctl", "-D", str(self.directory), "-w", "-t", "60", "-l",
                      str(self.directory / "server.log"), "-o",
                      f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                      "-c fsync=off -c synchronous_commit=off",
                      "start"])

    def stop(self) -> None:
        subprocess.run((["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) +
                       [f"{BIN[-1]}/pg_ctl", "-D", str(self.directory), "-m", "fast", "-w",
                        "stop"], capture_output=True)

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/trialdesk"


@pytest.fixture(scope="module")
def replica_pair():
    base = Path(tempfile.mkdtemp(prefix="trialdesk-replica-", dir="/tmp"))
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    primary = Cluster(base / "primary", _free_port())
    standby = Cluster(base / "standby", _free_port())
    try:
        _as_postgres([f"{BIN[-1]}/initdb", "-D", str(primary.directory), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"])
        with open(primary.directory / "pg_hba.conf", "a") as hba:  # runs as this test's user
            hba.write("host replication all 127.0.0.1/32 trust\n")
        primary.start()
        _as_postgres([f"{BIN[-1]}/createdb", "-h", "127.0.0.1", "-p", str(primary.port),
                      "-U", "postgres", "trialdesk"])
        _as_postgres([f"{BIN[-1]}/pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                      "-U", "postgres", "-D", str(standby.directory), "-R", "-X", "stream",
                      "--no-sync", "--checkpoint=fast"])  # a spread checkpoint waited ~90 s
        standby.start()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)


def _project(primary: Cluster, standby: Cluster, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": primary.url(), "DATABASE_REPLICA_URL": standby.url(),
           "CELERY_TASK_ALWAYS_EAGER": "true"}
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


SCRIPT = """
import json, time
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.contrib.auth.models import User
from trials.models import Trial

call_command("seed_protocols", verbosity=0)
admin = User.objects.create_superuser("replica-admin", "a@example.org", "x" * 16)
standby = connections["replica"].cursor()
deadline = time.monotonic() + 60
while True:  # the seed has reached the standby
    standby.execute("SELECT count(*) FROM trials_trial")
    if standby.fetchone()[0] == Trial.objects.count():
        break
    assert time.monotonic() < deadline, "the standby did not catch up"
    time.sleep(0.2)
connections["replica"].close()

client = Client()
client.force_login(admin)
trial = Trial.objects.get(registry_id="NCT05699811")
site = trial.sites.first()
created = client.post("/api/v1/subjects/", {
    "trial": trial.pk, "site": site.pk, "screening_number": "REPL-1", "sex": "F",
    "age_at_consent": 58, "consent_date": "2025-01-02"}, content_type="application/json")
read = client.get(f"/api/v1/subjects/{created.json()['id']}/")
export = client.get(f"/api/v1/exports/sdtm/dm/?trial={trial.pk}&output=csv")
body = b"".join(export.streaming_content).decode()
replica = connections["replica"].connection
print(json.dumps({
    "created": created.status_code, "read": read.status_code,
    "read_number": read.json().get("screening_number"),
    "export": export.status_code, "export_lines": body.count("\\n"),
    "export_server_port": replica.info.port if replica else None,
    "export_in_recovery": (replica.execute("SELECT pg_is_in_recovery()").fetchone()[0]
                           if replica else None),
}))
"""


def test_exports_read_the_replica_and_writes_read_back_from_the_primary(replica_pair):
    primary, standby = replica_pair
    _project(primary, standby, "migrate", "-v0")
    result = json.loads(_project(primary, standby, "shell", "-c", SCRIPT).strip()
                        .splitlines()[-1])
    # a write and the read that follows it go to the primary: consistent at once
    assert result["created"] == 201 and result["read"] == 200
    assert result["read_number"] == "REPL-1"
    # the export ran on the standby, in recovery (read-only), and returned its rows
    assert result["export"] == 200, result
    assert result["export_server_port"] == standby.port
    assert result["export_in_recovery"] is True
    assert result["export_lines"] >= 1  # the header at least
