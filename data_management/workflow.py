"""State machines of data management: queries, source data verification, signatures, locks.

Pure Python (no Django, no database): each function takes the current state and returns the
next one, or raises :class:`IllegalTransition` with a message fit to show to the user. The
services (``data_management.queries``, ``.sdv``, ``.signatures``, ``.locks``) persist the states;
the rules live here so they are tested without a database.

Query (ICH E6(R3) 3.16.1 / 2.12: data corrected with an attributable, dated explanation)::

    open --answer--> answered --close--> closed --reopen--> open
    open --close--> closed          (the opener withdraws a query raised in error)
    answered --reopen--> open       (the answer does not resolve the query: re-query)

Source data verification (ICH E6(R3) 3.11.4 monitoring)::

    unverified --verify--> verified --clear (the value changed)--> cleared --verify--> verified

Signature (21 CFR 11.50 manifestation, 11.70 linking, 11.200 components)::

    unsigned --sign--> signed --invalidate (signed data changed)--> invalidated --sign--> signed

  Signing is refused while queries on the signed data are unresolved (open or answered) and
  while the data is locked.

Lock (database lock before analysis, ICH E6(R3) 3.16.1)::

    unlocked --freeze--> frozen --lock--> locked
    unlocked --lock--> locked
    frozen|locked --unlock (reason required)--> unlocked

  Frozen and locked data are both read-only. Frozen data can still be queried, verified and
  signed; locked data is final: no new query, answer, verification or signature, and locking
  is refused while queries on the data are unresolved.
"""

from __future__ import annotations


class IllegalTransition(Exception):
    """A workflow action that the current state does not allow."""


# ---------------------------------------------------------------- queries

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
QUERY_STATES = (OPEN, ANSWERED, CLOSED)
UNRESOLVED_QUERY_STATES = (OPEN, ANSWERED)

_QUERY = {
    ("answer", OPEN): ANSWERED,
    ("close", OPEN): CLOSED,
    ("close", ANSWERED): CLOSED,
    ("reopen", CLOSED): OPEN,
    ("reopen", ANSWERED): OPEN,
}


def query_transition(state: str, action: str, *, text: str = "") -> str:
    """Next state of a query; answers and re-opens need a text."""
    if action not in {"answer", "close", "reopen"}:
        raise IllegalTransition(f"Unknown query action {action!r}.")
    nxt = _QUERY.get((action, state))
    if nxt is None:
        raise IllegalTransition(f"A query that is {state} cannot be {_PAST[action]}.")
    if action in {"answer", "reopen"} and not text.strip():
        raise IllegalTransition(f"A text is required to {action} a query.")
    return nxt


_PAST = {"answer": "answered", "close": "closed", "reopen": "re-opened"}


# ---------------------------------------------------------------- source data verification

UNVERIFIED, VERIFIED, CLEARED = "unverified", "verified", "cleared"
VERIFICATION_STATES = (VERIFIED, CLEARED)


def verify(state: str, *, lock_state: str = "unlocked") -> str:
    """Mark verified against source; refused when already verified or when locked."""
    if lock_state == LOCKED:
        raise IllegalTransition("Locked data cannot be verified; it is final.")
    if state == VERIFIED:
        raise IllegalTransition("This value is already verified against source.")
    if state not in (UNVERIFIED, CLEARED):
        raise IllegalTransition(f"Unknown verification state {state!r}.")
    return VERIFIED


def clear_verification(state: str) -> str:
    """A verified value changed: the verification no longer holds."""
    if state != VERIFIED:
        raise IllegalTransition(f"Only a verified value can be cleared (it is {state}).")
    return CLEARED


# ---------------------------------------------------------------- signatures

UNSIGNED, SIGNED, INVALIDATED = "unsigned", "signed", "invalidated"
SIGNATURE_STATES = (SIGNED, INVALIDATED)


def sign(state: str, *, unresolved_queries: int, lock_state: str = "unlocked") -> str:
    """Sign; refused when already signed, while queries are unresolved or when locked."""
    if state == SIGNED:
        raise IllegalTransition("This data is already signed; the signature is still valid.")
    if state not in (UNSIGNED, INVALIDATED):
        raise IllegalTransition(f"Unknown signature state {state!r}.")
    if lock_state == LOCKED:
        raise IllegalTransition("Locked data cannot be signed; it is final.")
    if unresolved_queries:
        raise IllegalTransition(
            f"Signing is refused while {unresolved_queries} "
            f"quer{'y is' if unresolved_queries == 1 else 'ies are'} open or answered on "
            "this data; resolve and close them first."
        )
    return SIGNED


def invalidate_signature(state: str) -> str:
    """Signed data changed: the signature no longer applies to it."""
    if state != SIGNED:
        raise IllegalTransition(f"Only a valid signature can be invalidated (it is {state}).")
    return INVALIDATED


# ---------------------------------------------------------------- locks

UNLOCKED, FROZEN, LOCKED = "unlocked", "frozen", "locked"
LOCK_STATES = (UNLOCKED, FROZEN, LOCKED)
ACTIVE_LOCK_STATES = (FROZEN, LOCKED)

_LOCK = {
    ("freeze", UNLOCKED): FROZEN,
    ("lock", UNLOCKED): LOCKED,
    ("lock", FROZEN): LOCKED,
    ("unlock", FROZEN): UNLOCKED,
    ("unlock", LOCKED): UNLOCKED,
}


def lock_transition(state: str, action: str, *, reason: str = "",
                    unresolved_queries: int = 0) -> str:
    """Next lock state; unlocking needs a reason, locking needs every query resolved."""
    if action not in {"freeze", "lock", "unlock"}:
        raise IllegalTransition(f"Unknown lock action {action!r}.")
    nxt = _LOCK.get((action, state))
    if nxt is None:
        raise IllegalTransition(f"Data that is {state} cannot be {_LOCK_PAST[action]}.")
    if action == "unlock" and not reason.strip():
        raise IllegalTransition("A reason is required to unlock data.")
    if action == "lock" and unresolved_queries:
        raise IllegalTransition(
            f"Locking is refused while {unresolved_queries} "
            f"quer{'y is' if unresolved_queries == 1 else 'ies are'} open or answered on "
            "this data; freeze it instead, or resolve the queries first."
        )
    return nxt


_LOCK_PAST = {"freeze": "frozen", "lock": "locked", "unlock": "unlocked"}
