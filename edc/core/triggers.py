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


class DefinerTriggerSql(StrictTriggerSql):
    """:class:`StrictTriggerSql` whose function runs with its owner's rights (the schema owner
    that migrates), with a fixed ``search_path``."""

    def get_template(self) -> str:
        return super().get_template().replace(
            "$$ LANGUAGE plpgsql;",
            "$$ LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public;")


class Strict:
    """Mixin for a pgtrigger trigger class: compiled with :class:`StrictTriggerSql`."""

    sql_class = StrictTriggerSql

    def compile(self, model):
        compiled = super().compile(model)
        return compiler.Trigger(name=compiled.name, sql=self.sql_class(**compiled.sql.kwargs))


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
#: Transaction-local setting: the audit tables this transaction has written, ``,a,b,``.
CHAIN_TABLES_SETTING = "edc.audit_chains"


class AppendOnly(StrictTrigger):
    """An audit row is never deleted nor changed, except once by :class:`ChainAtCommit`.

    The one update allowed gives a row written by the current transaction and not yet chained
    (``pgh_hash`` NULL) its place and hash: only ``pgh_id`` and ``pgh_hash`` change. A session
    that fills in a hash itself gains nothing: its commit then fails (:class:`ChainAtCommit`
    finds no unchained row) and takes its changes with it.
    """

    name = "append_only"
    when = pgtrigger.Before
    operation = pgtrigger.Update | pgtrigger.Delete
    func = """
        IF TG_OP = 'UPDATE' AND OLD.pgh_hash IS NULL AND NEW.pgh_hash IS NOT NULL
           AND (to_jsonb(NEW) - 'pgh_id' - 'pgh_hash') = (to_jsonb(OLD) - 'pgh_id' - 'pgh_hash')
        THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'pgtrigger: Cannot % rows of the append-only audit table %',
            lower(TG_OP), TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
    """


class HashChain(StrictTrigger):
    """Before an audit row is inserted: stamp the role of the connection, clear any hash the
    INSERT gives and note the table among those this transaction must chain at commit."""

    name = "hash_chain"
    when = pgtrigger.Before
    operation = pgtrigger.Insert
    declare = [("_tables", "TEXT")]
    func = f"""
        NEW.pgh_db_user := current_user;
        NEW.pgh_hash := NULL;
        _tables := coalesce(nullif(current_setting('{CHAIN_TABLES_SETTING}', true), ''), ',');
        IF position(',' || TG_TABLE_NAME || ',' IN _tables) = 0 THEN
            PERFORM set_config('{CHAIN_TABLES_SETTING}', _tables || TG_TABLE_NAME || ',', true);
        END IF;
        RETURN NEW;
    """


class ChainAtCommit(StrictTrigger):
    """At commit (a deferred constraint trigger), chain each audit row the transaction wrote.

    Writers of one audit table are serialised by a transaction-scoped advisory lock, taken
    only now, at commit, so concurrent transactions wait for each other's commit and not for
    each other's work (issue 19). The first row to be chained takes the locks of every audit
    table the transaction wrote, in one order (no lock cycle between transactions), then each
    row gets its id from the table's sequence under the lock, so id order is chain order, and
    its hash, ``sha256(previous row's hash || row as JSONB without nulls and without the
    hash)``, with timestamps rendered in UTC whatever the session's time zone (see
    ``edc.core.audit_integrity.expected_hash_sql``, which must stay the same expression).
    ``SET CONSTRAINTS ... IMMEDIATE`` only chains earlier, holding the locks longer
    (``edc.core.audit_integrity.chain_now``). A row's ``pgh_id`` is final once it is chained.

    The function runs as the schema owner (``SECURITY DEFINER``): the application's role has no
    UPDATE on audit tables (``edc.core.dbroles``), so this trigger is the only way to that
    one update.
    """

    sql_class = DefinerTriggerSql

    name = "chain_at_commit"
    when = pgtrigger.After
    operation = pgtrigger.Insert
    timing = pgtrigger.Deferred
    declare = [("_prev", "TEXT"), ("_tz", "TEXT"), ("_id", "BIGINT"), ("_table", "TEXT")]

    def get_func(self, model):
        table = model._meta.db_table
        return f"""
            FOR _table IN SELECT t FROM unnest(string_to_array(
                    current_setting('{CHAIN_TABLES_SETTING}', true), ',')) t
                    WHERE t <> '' ORDER BY t LOOP
                PERFORM pg_advisory_xact_lock({CHAIN_LOCK_NAMESPACE}, hashtext(_table));
            END LOOP;
            PERFORM set_config('{CHAIN_TABLES_SETTING}', '', true);
            PERFORM pg_advisory_xact_lock({CHAIN_LOCK_NAMESPACE}, hashtext(TG_TABLE_NAME));
            _id := NEW.pgh_id;
            NEW.pgh_id := nextval(pg_get_serial_sequence('"{table}"', 'pgh_id'));
            NEW.pgh_hash := NULL;
            SELECT pgh_hash INTO _prev FROM "{table}" WHERE pgh_hash IS NOT NULL
                ORDER BY pgh_id DESC LIMIT 1;
            _tz := current_setting('TimeZone');
            PERFORM set_config('TimeZone', 'UTC', true);
            NEW.pgh_hash := encode(sha256(convert_to(
                coalesce(_prev, '') || (jsonb_strip_nulls(to_jsonb(NEW)) - 'pgh_hash')::text,
                'UTF8')), 'hex');
            PERFORM set_config('TimeZone', _tz, true);
            UPDATE "{table}" SET pgh_id = NEW.pgh_id, pgh_hash = NEW.pgh_hash
                WHERE pgh_id = _id AND pgh_hash IS NULL;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'audit row % of % was changed before it was chained', _id,
                    TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN NULL;
        """


def audit_event_triggers() -> list[pgtrigger.Trigger]:
    """Triggers of every audit (event) table: append-only and hash-chained, unignorable."""
    return [AppendOnly(), HashChain(), ChainAtCommit()]
