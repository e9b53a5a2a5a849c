"""The outbox sends a transaction's rows on commit, together where they commit together.

Rows enqueued in the same savepoint are sent by one on-commit callback and marked queued in
one UPDATE; a row whose savepoint rolls back is never sent; a row the broker refuses stays
pending with the error (the sweep sends it again). Inside ``inserted_together`` the rows of
the block's savepoint are written in one INSERT as it ends, none if it ends with an
exception. What was sent is read back from the real broker (Redis), under a key prefix of
the test's own where no worker consumes it.
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from edc.core.models import PendingTask
from edc.core.outbox import enqueue, inserted_together
from tests.conftest import switch_broker

pytestmark = pytest.mark.django_db(transaction=True)
TASK = "adverse_events.tasks.evaluate_toxicity"


@pytest.fixture
def sent(broker_messages):
    """The messages the real broker received from this test (a private key prefix)."""
    return broker_messages


def _queued_updates(queries) -> list[str]:
    return [q["sql"] for q in queries
            if 'UPDATE "edc_pendingtask" SET "state"' in q["sql"]]


def test_rows_of_one_transaction_are_sent_on_commit_and_marked_queued_at_once(sent):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        first, second = enqueue(TASK, 1), enqueue(TASK, 2)
        assert sent() == []  # nothing before the commit
    assert sent() == [(TASK, [1], first.pk), (TASK, [2], second.pk)]
    assert len(_queued_updates(queries)) == 1
    assert set(PendingTask.objects.values_list("state", flat=True)) == {"queued"}


def test_rows_sent_together_reach_the_broker_in_one_round_trip(sent, monkeypatch):
    """Each row is a message of its own, and the messages of one commit are written to the
    broker together (one Redis pipeline: issue 19)."""
    import redis.connection

    with transaction.atomic():
        warm = enqueue(TASK, 0)  # the producer's connection to the broker is open
    trips = []
    write = redis.connection.AbstractConnection.send_packed_command

    def counted(self, command, *args, **kwargs):
        trips.append(command)
        return write(self, command, *args, **kwargs)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)
    with transaction.atomic():
        rows = [enqueue(TASK, 1), enqueue(TASK, 2), enqueue(TASK, 3)]
    monkeypatch.undo()
    assert len(trips) == 1
    assert sent() == [(TASK, [0], warm.pk), *((TASK, row.args, row.pk) for row in rows)]
    assert set(PendingTask.objects.values_list("state", flat=True)) == {"queued"}


def test_a_row_whose_savepoint_rolls_back_is_never_sent(sent):
    with transaction.atomic():
        before = enqueue(TASK, 1)
        try:
            with transaction.atomic():
                enqueue(TASK, 2)
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        after = enqueue(TASK, 3)
        with transaction.atomic():
            inner = enqueue(TASK, 4)  # a savepoint that is released: sent too
    assert sorted(sent()) == [(TASK, [1], before.pk), (TASK, [3], after.pk),
                            (TASK, [4], inner.pk)]
    assert {row.args[0]: row.state for row in PendingTask.objects.all()} == {
        1: "queued", 3: "queued", 4: "queued"}


def test_a_row_the_broker_refuses_stays_pending_with_the_error(sent):
    """The broker is unreachable as the transaction commits: each row stays pending with the
    error (the sweep sends it again); back, the broker takes the next row, which is queued."""
    switch_broker("redis://127.0.0.1:1/0")
    try:
        with transaction.atomic():
            refused = [enqueue(TASK, 1), enqueue(TASK, 2)]
    finally:
        switch_broker(global_keyprefix=sent.prefix)
    with transaction.atomic():
        taken = enqueue(TASK, 5)
    assert sent() == [(TASK, [5], taken.pk)]
    for row in [*refused, taken]:
        row.refresh_from_db()
    assert [row.state for row in [*refused, taken]] == ["pending", "pending", "queued"]
    assert all(row.last_error.startswith("broker: ") for row in refused)


def test_a_row_enqueued_outside_a_transaction_is_sent_at_once(sent):
    pending = enqueue(TASK, 6)
    assert sent() == [(TASK, [6], pending.pk)]
    pending.refresh_from_db()
    assert pending.state == "queued"


def _inserts(queries) -> list[str]:
    return [q["sql"] for q in queries if 'INSERT INTO "edc_pendingtask"' in q["sql"]]


def test_rows_enqueued_together_are_inserted_in_one_statement_at_the_end_and_sent(sent):
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        with inserted_together():
            first, second = enqueue(TASK, 1), enqueue(TASK, 2)
            assert _inserts(queries) == [] and first.pk is None
        assert len(_inserts(queries)) == 1
        assert PendingTask.objects.count() == 2
    assert sent() == [(TASK, [1], first.pk), (TASK, [2], second.pk)]
    assert len(_queued_updates(queries)) == 1
    assert set(PendingTask.objects.values_list("state", flat=True)) == {"queued"}


def test_rows_of_a_block_ending_in_an_exception_are_not_inserted(sent):
    with transaction.atomic():
        kept = enqueue(TASK, 1)
        with pytest.raises(RuntimeError), transaction.atomic(), inserted_together():
            enqueue(TASK, 2)
            raise RuntimeError("refused")
    assert sent() == [(TASK, [1], kept.pk)]
    assert list(PendingTask.objects.values_list("args", flat=True)) == [[1]]


def test_a_row_in_a_savepoint_opened_inside_the_block_is_inserted_at_once(sent):
    with CaptureQueriesContext(connection) as queries, transaction.atomic(), \
            inserted_together():
        outer = enqueue(TASK, 1)
        try:
            with transaction.atomic():
                enqueue(TASK, 2)
                assert len(_inserts(queries)) == 1  # written in its savepoint
                raise RuntimeError("refused")
        except RuntimeError:
            pass
    assert sent() == [(TASK, [1], outer.pk)]  # the rolled-back row is neither kept nor sent
    assert list(PendingTask.objects.values_list("args", flat=True)) == [[1]]


def test_outside_a_transaction_the_block_inserts_and_sends_each_row_at_once(sent):
    with inserted_together():
        pending = enqueue(TASK, 6)
        assert sent() == [(TASK, [6], pending.pk)]
