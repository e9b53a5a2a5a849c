"""Edit checks run by themselves: a write to a record an edit check reads queues the checks of
its subject through the outbox (``data_management.tasks.run_edit_checks``), once per subject
and transaction.  Called by ``data_management.guards`` on every save, bulk update and bulk
create of a CRF record -- explicitly, not through a signal."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection


def _queued_in_this_transaction() -> set[int] | None:
    """Subjects already queued in the current transaction (None outside one).  The set lives
    as long as the connection's list of on-commit callbacks, which Django replaces on commit
    and on rollback."""
    if not connection.in_atomic_block:
        return None
    state = getattr(connection, "_edit_checks_queued", None)
    if state is None or state[0] is not connection.run_on_commit:
        state = (connection.run_on_commit, set())
        connection._edit_checks_queued = state
    return state[1]


def watched(model) -> bool:
    from .edit_checks import WATCHED

    return model._meta.label_lower in WATCHED


def written(model, subject_ids: Iterable[int | None]) -> None:
    """Records of ``model`` belonging to ``subject_ids`` were written: queue their checks."""
    if not watched(model):
        return
    from edc.core.outbox import enqueue

    seen = _queued_in_this_transaction()
    for subject_id in {s for s in subject_ids if s is not None}:
        if seen is not None:
            if subject_id in seen:
                continue
            seen.add(subject_id)
        enqueue("data_management.tasks.run_edit_checks", subject_id)
