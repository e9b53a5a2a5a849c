"""Protective triggers that no session can switch off (21 CFR 11.10(e): audit trails that
cannot be disabled; ICH E6(R3) 3.16.1: locked data stays locked).

django-pgtrigger lets any session skip a trigger with ``set_config('pgtrigger.ignore',
'{pgtrigger_name}', ...)``: its installation template starts every trigger function with
``IF _pgtrigger_should_ignore(TG_NAME) THEN RETURN ...``. The triggers below are installed
from :class:`StrictTriggerSql`, the same template without that escape, so the setting has no
effect on them. Together with the application's role (``edc.core.dbroles``: no superuser, no
owner, hence no ``session_replication_role``, ``ALTER TABLE ... DISABLE TRIGGER`` or
TRUNCATE) nothing short of the owner role gets past them, and what the owner does to the
audit trail is caught by its hash chain (``edc.core.audit_integrity``).
"""

from __future__ import annotations

import pghistory
import pghistory.trigger
import pgtrigger
from pgtrigger import compiler


class StrictTriggerSql(compiler.UpsertTriggerSql):
    """pgtrigger's installation SQL without the ``pgtrigger.ignore`` branch."""

    def get_template(self) -> str:
        return """
            CREATE OR REPLACE FUNCTION {pgid}()
            RETURNS TRIGGER AS $$
                {declare}
                BEGIN
                    {func}
                END;
            $$ LANGUAGE plpgsql;

            DROP TRIGGER IF EXISTS {pgid} ON {table};
            CREATE {constraint} TRIGGER {pgid}
                {when} {operation} ON {table}
                {timing}
                {referencing}
                FOR EACH {level} {condition}
                EXECUTE PROCEDURE {execute};

            COMMENT ON TRIGGER {pgid} ON {table} IS '{hash}';
        """


class Strict:
    """Mixin for a pgtrigger trigger class: compiled with :class:`StrictTriggerSql`."""

    def compile(self, model):
        compiled = super().compile(model)
        return compiler.Trigger(name=compiled.name, sql=StrictTriggerSql(**compiled.sql.kwargs))


class StrictTrigger(Strict, pgtrigger.Trigger):
    pass


class StrictProtect(Strict, pgtrigger.Protect):
    pass


class StrictEvent(Strict, pghistory.trigger.Event):
    """pghistory's event trigger: a change is audited or not made."""


class _StrictRowEvent:
    def add_event_trigger(self, event_model):
        pgtrigger.register(StrictEvent(
            event_model=event_model, label=self.label, name=self.trigger_name, row=self.row,
            operation=self.operation, condition=self.condition, level=self.level,
        ))(event_model.pgh_tracked_model)


class InsertEvent(_StrictRowEvent, pghistory.InsertEvent):
    pass


class UpdateEvent(_StrictRowEvent, pghistory.UpdateEvent):
    pass


#: Advisory-lock namespace of the audit hash chains (the second key is the table's hash).
CHAIN_LOCK_NAMESPACE = 15_015


class HashChain(StrictTrigger):
    """Before an audit row is inserted: stamp the role of the connection and chain the row.

    Writers of one audit table are serialised (a transaction-scoped advisory lock) and the row
    gets its id only once it holds the lock, so id order is chain order; its hash is
    ``sha256(previous row's hash || row as JSONB without nulls and without the hash)``, with
    timestamps rendered in UTC whatever the session's time zone (see
    ``edc.core.audit_integrity.expected_hash_sql``, which must stay the same expression).
    """

    name = "hash_chain"
    when = pgtrigger.Before
    operation = pgtrigger.Insert
    declare = [("_prev", "TEXT"), ("_tz", "TEXT")]

    def get_func(self, model):
        table = model._meta.db_table
        return f"""
            PERFORM pg_advisory_xact_lock({CHAIN_LOCK_NAMESPACE}, hashtext(TG_TABLE_NAME));
            NEW.pgh_id := nextval(pg_get_serial_sequence('"{table}"', 'pgh_id'));
            NEW.pgh_db_user := current_user;
            NEW.pgh_hash := NULL;
            SELECT pgh_hash INTO _prev FROM "{table}" ORDER BY pgh_id DESC LIMIT 1;
            _tz := current_setting('TimeZone');
            PERFORM set_config('TimeZone', 'UTC', true);
            NEW.pgh_hash := encode(sha256(convert_to(
                coalesce(_prev, '') || (jsonb_strip_nulls(to_jsonb(NEW)) - 'pgh_hash')::text,
                'UTF8')), 'hex');
            PERFORM set_config('TimeZone', _tz, true);
            RETURN NEW;
        """


def audit_event_triggers() -> list[pgtrigger.Trigger]:
    """Triggers of every audit (event) table: append-only and hash-chained, unignorable."""
    return [
        StrictProtect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        HashChain(),
    ]
