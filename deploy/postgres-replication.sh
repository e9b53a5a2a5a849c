#!/usr/bin/env bash
# docker-entrypoint-initdb.d hook of the primary: let the standby (db-replica) stream the WAL.
set -euo pipefail
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
