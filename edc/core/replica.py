"""Reading exports, listings and reports from a streaming replica (``DATABASE_REPLICA_URL``).

The replica is opt-in per read, never chosen by the ORM behind a caller's back: everything
else, and every write, stays on the primary, so a request always reads its own writes. The
export engine asks :func:`reporting_connection` for its connection: a long sponsor export then
runs its snapshot on the replica, off the primary that site staff write to. A hot standby
serves ``REPEATABLE READ`` read-only transactions and ``WITH HOLD`` cursors, which is all an
export needs; it may lag the primary by the replication delay, which an export tolerates
(its ``last_modified`` says how recent its data is).
"""

from __future__ import annotations

from django.db import connections

REPLICA = "replica"


def reporting_connection():
    """The replica's connection when one is configured, else the primary's."""
    return connections[REPLICA if REPLICA in connections.settings else "default"]


class PrimaryRouter:
    """``DATABASE_ROUTERS`` when a replica is configured: the ORM reads and writes the primary
    (reads of one's own writes stay consistent) and migrations run on the primary only."""

    def db_for_read(self, model, **hints):
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
