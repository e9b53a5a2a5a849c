"""Pure state machines (queries, verification, signatures, locks) and edit-check rules."""

from __future__ import annotations

import ast
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from data_management import rules
from data_management import workflow as wf
from data_management.workflow import IllegalTransition

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["workflow.py", "rules.py"])
def test_rule_modules_do_not_import_django(module):
    tree = ast.parse((ROOT / "data_management" / module).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name and name.startswith("django")}


# ---------------------------------------------------------------- queries

def test_query_happy_path_and_reopen():
    state = wf.OPEN
    state = wf.query_transition(state, "answer", text="Weight is 70 kg per source")
    assert state == wf.ANSWERED
    state = wf.query_transition(state, "close")
    assert state == wf.CLOSED
    assert wf.query_transition(state, "reopen", text="Source shows 72 kg") == wf.OPEN
    assert wf.query_transition(wf.ANSWERED, "reopen", text="not resolved") == wf.OPEN
    assert wf.query_transition(wf.OPEN, "close") == wf.CLOSED


@pytest.mark.parametrize("state, action, message", [
    (wf.CLOSED, "answer", "A query that is closed cannot be answered."),
    (wf.ANSWERED, "answer", "A query that is answered cannot be answered."),
    (wf.CLOSED, "close", "A query that is closed cannot be closed."),
    (wf.OPEN, "reopen", "A query that is open cannot be re-opened."),
])
def test_illegal_query_transitions(state, action, message):
    with pytest.raises(IllegalTransition) as err:
        wf.query_transition(state, action, text="some text")
    assert str(err.value) == message


def test_answer_and_reopen_need_a_text_and_unknown_actions_are_refused():
    with pytest.raises(IllegalTransition, match="A text is required to answer"):
        wf.query_transition(wf.OPEN, "answer", text="  ")
    with pytest.raises(IllegalTransition, match="A text is required to reopen"):
        wf.query_transition(wf.CLOSED, "reopen")
    with pytest.raises(IllegalTransition, match="Unknown query action 'delete'"):
        wf.query_transition(wf.OPEN, "delete")


# ---------------------------------------------------------------- verification

def test_verification_cycle():
    assert wf.verify(wf.UNVERIFIED) == wf.VERIFIED
    assert wf.clear_verification(wf.VERIFIED) == wf.CLEARED
    assert wf.verify(wf.CLEARED) == wf.VERIFIED
    assert wf.verify(wf.UNVERIFIED, lock_state=wf.FROZEN) == wf.VERIFIED


def test_illegal_verification_transitions():
    with pytest.raises(IllegalTransition, match="already verified"):
        wf.verify(wf.VERIFIED)
    with pytest.raises(IllegalTransition, match="Locked data cannot be verified"):
        wf.verify(wf.UNVERIFIED, lock_state=wf.LOCKED)
    with pytest.raises(IllegalTransition, match="Only a verified value can be cleared"):
        wf.clear_verification(wf.CLEARED)


# ---------------------------------------------------------------- signatures

def test_signature_cycle():
    assert wf.sign(wf.UNSIGNED, unresolved_queries=0) == wf.SIGNED
    assert wf.invalidate_signature(wf.SIGNED) == wf.INVALIDATED
    assert wf.sign(wf.INVALIDATED, unresolved_queries=0, lock_state=wf.FROZEN) == wf.SIGNED


def test_signing_is_refused_with_open_queries_when_signed_or_locked():
    with pytest.raises(IllegalTransition) as err:
        wf.sign(wf.UNSIGNED, unresolved_queries=2)
    assert "Signing is refused while 2 queries are open or answered" in str(err.value)
    with pytest.raises(IllegalTransition, match="1 query is open or answered"):
        wf.sign(wf.INVALIDATED, unresolved_queries=1)
    with pytest.raises(IllegalTransition, match="already signed"):
        wf.sign(wf.SIGNED, unresolved_queries=0)
    with pytest.raises(IllegalTransition, match="Locked data cannot be signed"):
        wf.sign(wf.UNSIGNED, unresolved_queries=0, lock_state=wf.LOCKED)
    with pytest.raises(IllegalTransition, match="Only a valid signature"):
        wf.invalidate_signature(wf.INVALIDATED)


# ---------------------------------------------------------------- locks

def test_lock_transitions():
    assert wf.lock_transition(wf.UNLOCKED, "freeze") == wf.FROZEN
    assert wf.lock_transition(wf.FROZEN, "lock") == wf.LOCKED
    assert wf.lock_transition(wf.UNLOCKED, "lock") == wf.LOCKED
    assert wf.lock_transition(wf.LOCKED, "unlock", reason="late lab result") == wf.UNLOCKED
    assert wf.lock_transition(wf.FROZEN, "unlock", reason="query answer") == wf.UNLOCKED
    assert wf.lock_transition(wf.UNLOCKED, "freeze", unresolved_queries=3) == wf.FROZEN


@pytest.mark.parametrize("state, action, kwargs, message", [
    (wf.LOCKED, "freeze", {}, "Data that is locked cannot be frozen."),
    (wf.LOCKED, "lock", {}, "Data that is locked cannot be locked."),
    (wf.UNLOCKED, "unlock", {"reason": "x"}, "Data that is unlocked cannot be unlocked."),
    (wf.LOCKED, "unlock", {"reason": " "}, "A reason is required to unlock data."),
    (wf.FROZEN, "lock", {"unresolved_queries": 1}, "Locking is refused while 1 query is"),
])
def test_illegal_lock_transitions(state, action, kwargs, message):
    with pytest.raises(IllegalTransition) as err:
        wf.lock_transition(state, action, **kwargs)
    assert str(err.value).startswith(message)


# ---------------------------------------------------------------- edit-check rules

def test_out_of_window():
    low, high = dt.date(2025, 1, 29), dt.date(2025, 2, 4)
    assert rules.out_of_window(dt.date(2025, 2, 5), low, high)
    assert rules.out_of_window(dt.date(2025, 1, 28), low, high)
    assert not rules.out_of_window(dt.date(2025, 2, 4), low, high)
    assert not rules.out_of_window(None, low, high)


def test_weight_change_over_ten_percent_between_consecutive_known_weights():
    weights = [Decimal("70"), Decimal("77"), None, Decimal("85"), Decimal("76")]
    # 70 -> 77 is exactly 10 % (not more); 77 -> 85 is 10.4 %; 85 -> 76 is 10.6 %.
    assert rules.weight_changes(weights) == [3, 4]
    assert rules.weight_change(Decimal("80"), Decimal("88")) == Decimal("0.1")
    with pytest.raises(ValueError):
        rules.weight_change(Decimal("0"), Decimal("70"))


def test_grade_jump_by_three_within_a_day():
    day = dt.date(2025, 3, 1)
    episodes = [(day, 1), (day + dt.timedelta(days=1), 4), (day + dt.timedelta(days=5), 1),
                (day + dt.timedelta(days=7), 4), (day + dt.timedelta(days=7), 5)]
    # 1 -> 4 next day: flagged; 1 -> 4 two days later: not; 4 -> 5: only +1.
    assert rules.grade_jumps(episodes) == [1]
    assert rules.grade_jumps([(day, 2), (day, 5)]) == [1]
    assert rules.grade_jumps([(day, 1), (day, 3)]) == []
