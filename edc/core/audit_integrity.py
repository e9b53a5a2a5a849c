"""Tamper evidence of the audit trail (21 CFR 11.10(e); ICH E6(R3) 4.2: attributable records).

* **Hash chain**: every audit (event) row carries ``pgh_hash``, computed by the database when
  the transaction that wrote the row commits (``edc.core.triggers.ChainAtCommit``) from the
  previous row's hash and the row itself. Rewriting, deleting or inserting a row anywhere but
  at the end breaks the chain at that row (or, if the rewritten row was re-hashed, at the next
  one). :func:`verify` recomputes each table's chain and reports its first broken link;
  ``manage.py verify_audit`` and the beat task ``edc.core.tasks.verify_audit_trail`` run it
  and print each table's head hash, which an operator can keep outside the database to anchor
  the chain's end.
* **Who**: ``pgh_db_user`` is the role of the connection, set by the database; the
  application's user and reason come from the pghistory context, which the application signs
  (:class:`SigningEncoder`: HMAC-SHA256 with ``AUDIT_SIGNING_KEY`` over the context id and the
  metadata). A context set by hand in a session (``set_config('pghistory.context_metadata',
  ...)``) has no valid signature and :func:`verify` reports it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from .audit import pghistory_context
from .triggers import ChainAtCommit

SIGNATURE_KEY = "sig"


def _canonical(metadata: dict) -> str:
    plain = json.loads(json.dumps(metadata, cls=DjangoJSONEncoder))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def sign(context_id: str, metadata: dict) -> str:
    """HMAC-SHA256 of a context (its id and its metadata without the signature)."""
    body = {k: v for k, v in metadata.items() if k != SIGNATURE_KEY}
    message = f"{context_id}\n{_canonical(body)}".encode()
    return hmac.new(settings.AUDIT_SIGNING_KEY.encode(), message, hashlib.sha256).hexdigest()


class SigningEncoder(DjangoJSONEncoder):
    """``PGHISTORY_JSON_ENCODER``: pghistory serialises the context metadata with it just
    before sending it to the database; the encoded object gains its signature."""

    def encode(self, o):
        if isinstance(o, dict):
            ctx = pghistory_context()
            o = {**o, SIGNATURE_KEY: sign(str(ctx.id) if ctx else "", o)}
        return super().encode(o)


@dataclass(frozen=True)
class Problem:
    table: str
    pgh_id: int
    kind: str  # "hash mismatch", "unsigned context", "bad signature"

    def __str__(self) -> str:
        return f"{self.table} pgh_id={self.pgh_id}: {self.kind}"


def event_tables() -> list[str]:
    from .audit import AuditEvent

    return sorted(m._meta.db_table for m in apps.get_models()
                  if issubclass(m, AuditEvent) and not m._meta.proxy)


def _row_hash(prev: str, row: str) -> str:
    return (f"encode(sha256(convert_to(coalesce({prev}, '') || "
            f"(jsonb_strip_nulls(to_jsonb({row})) - 'pgh_hash')::text, 'UTF8')), 'hex')")


def expected_hash_sql(table: str) -> str:
    """The hash a row of ``table`` should have, as an SQL expression over that row (same
    expression as the trigger's; run with ``TimeZone`` UTC)."""
    prev = (f'(SELECT p.pgh_hash FROM "{table}" p WHERE p.pgh_id < "{table}".pgh_id '
            "ORDER BY p.pgh_id DESC LIMIT 1)")
    return _row_hash(prev, f'"{table}"')


def _first_broken_link(cursor, table: str) -> int | None:
    cursor.execute(f"""
        SELECT pgh_id FROM (
            SELECT pgh_id, pgh_hash,
                   {_row_hash("lag(pgh_hash) OVER (ORDER BY pgh_id)", "t")} AS expected
            FROM "{table}" t) chain
        WHERE pgh_hash IS DISTINCT FROM expected ORDER BY pgh_id LIMIT 1""")
    row = cursor.fetchone()
    return row[0] if row else None


def _context_problems(cursor, table: str) -> list[Problem]:
    problems, seen = [], {}
    cursor.execute(f'SELECT pgh_id, pgh_context_id, pgh_context FROM "{table}" '
                   "WHERE pgh_context IS NOT NULL ORDER BY pgh_id")
    for pgh_id, context_id, context in cursor.fetchall():
        metadata = json.loads(context) if isinstance(context, str) else context
        key = (str(context_id or ""), _canonical(metadata))
        if key not in seen:
            sig = metadata.get(SIGNATURE_KEY) if isinstance(metadata, dict) else None
            if not isinstance(sig, str):
                seen[key] = "unsigned context"
            elif not hmac.compare_digest(sig, sign(key[0], metadata)):
                seen[key] = "bad signature"
            else:
                seen[key] = None
        if seen[key]:
            problems.append(Problem(table, pgh_id, seen[key]))
    return problems


def chain_now(cursor) -> None:
    """Chain the audit rows this transaction has written so far, as its commit would
    (``SET CONSTRAINTS ... IMMEDIATE`` fires the deferred chain triggers), and defer again."""
    cursor.execute("SELECT string_agg(quote_ident(tgname), ', ') FROM pg_trigger "
                   "WHERE tgname LIKE %s", [f"pgtrigger_{ChainAtCommit.name}_%"])
    names = cursor.fetchone()[0]
    if names:
        cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE; SET CONSTRAINTS {names} DEFERRED")


def verify(*tables: str) -> list[Problem]:
    """The first broken link of each audit table's chain and every row whose context is not
    the application's, ordered by table and row. Rows the calling transaction wrote are
    chained first (:func:`chain_now`)."""
    problems = []
    with transaction.atomic(), connection.cursor() as cursor:
        chain_now(cursor)
        cursor.execute("SET LOCAL TimeZone = 'UTC'")
        for table in tables or event_tables():
            broken = _first_broken_link(cursor, table)
            if broken is not None:
                problems.append(Problem(table, broken, "hash mismatch"))
            problems.extend(_context_problems(cursor, table))
    return sorted(problems, key=lambda p: (p.table, p.pgh_id))


def heads() -> dict[str, tuple[int, str | None]]:
    """Each audit table's row count and last hash (to be kept outside the database)."""
    out = {}
    with connection.cursor() as cursor:
        for table in event_tables():
            cursor.execute(f'SELECT count(*), (SELECT pgh_hash FROM "{table}" '
                           f'ORDER BY pgh_id DESC LIMIT 1) FROM "{table}"')
            out[table] = tuple(cursor.fetchone())
    return out
