"""Issue 15, acceptance 2: the guarantees hold in the database, below the ORM.

The tests run the application code as the application's least-privilege role (see
``tests/conftest.py``: the test database is created and migrated by the owner role of
``DATABASE_URL``, then every connection of the tests, the live server and the Celery worker
logs in as ``DATABASE_APP_ROLE``). Each bypass a hostile session could try is either refused
by PostgreSQL or detected by ``verify_audit``; ``owner_connection`` plays the owner (a
superuser on the test machine) rewriting an audit row behind the triggers' back.
"""

from __future__ import annotations

import datetime as dt
import json

import psycopg
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from data_management import locks
from edc.core import audit_integrity
from edc.core.audit import change_reason, history
from subjects.models import Subject
from tests.conftest import owner_connection
from tests.factories import (
    make_dm_exposure,
    make_dm_visit,
    make_site,
    make_subject,
    make_trial,
    make_user,
)
from visits.models import Exposure

pytestmark = pytest.mark.django_db
#: For the tests where the owner's own connection must see (and change) committed rows.
committed = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    trial = make_trial()
    site = make_site(trial, "A")
    dm = make_user("dm", "data_manager", (trial, None))
    locked = make_subject(trial, site, screening_number="A-1", age_at_consent=50)
    visit = make_dm_visit(locked, "C1", actual_date=dt.date(2025, 2, 1), status="done")
    exposure = make_dm_exposure(visit, "70.00")
    locks.change_lock(dm, "subject", locked, "lock", reason="clean after SDV")
    free = make_subject(trial, site, screening_number="A-2", age_at_consent=60)
    return {"trial": trial, "dm": dm, "locked": locked, "exposure": exposure, "free": free}


def _sql(statement: str, params=None):
    """Run ``statement`` on the application's connection in its own (sub)transaction."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def _with_reason(statement: str, params=None):
    """A hostile statement that sets a reason for change itself, as pghistory would."""
    metadata = json.dumps({"reason": "hostile session"})
    return _sql(f"SELECT set_config('pghistory.context_metadata', %s, true); {statement}",
                [metadata, *(params or [])])


def _age(pk) -> int:
    return Subject.objects.values_list("age_at_consent", flat=True).get(pk=pk)


def test_the_application_connects_as_a_least_privileged_role():
    user, superuser, replication, bypass = _sql(
        "SELECT current_user, rolsuper, rolreplication, rolbypassrls "
        "FROM pg_roles WHERE rolname = current_user")[0]
    assert user == settings.DATABASE_APP_ROLE
    assert not (superuser or replication or bypass)
    owned = _sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                 "AND tableowner = current_user")[0][0]
    assert owned == 0


def test_base_manager_update_on_a_locked_row_is_refused(world):
    locked, exposure = world["locked"], world["exposure"]
    with change_reason("bulk correction"):
        with pytest.raises(DatabaseError, match="locked"), transaction.atomic():
            Subject._base_manager.filter(pk=locked.pk).update(age_at_consent=51)
        with pytest.raises(DatabaseError, match="locked"), transaction.atomic():
            Exposure._base_manager.filter(pk=exposure.pk).update(weight_kg="71.00")
        # a row of another subject is not covered
        Subject._base_manager.filter(pk=world["free"].pk).update(age_at_consent=61)
    assert _age(locked.pk) == 50 and _age(world["free"].pk) == 61
    assert Exposure.objects.get(pk=exposure.pk).weight_kg == 70


def test_raw_update_and_delete_on_a_locked_row_are_refused(world):
    locked = world["locked"]
    with pytest.raises(DatabaseError, match="locked"):
        _with_reason("UPDATE subjects_subject SET age_at_consent = 52 WHERE id = %s",
                     [locked.pk])
    with pytest.raises(DatabaseError, match="locked"):
        _with_reason("UPDATE visits_exposure SET weight_kg = 72 WHERE id = %s",
                     [world["exposure"].pk])
    with pytest.raises(DatabaseError, match="locked"):  # moving a row under the lock
        _with_reason("UPDATE visits_exposure SET subject_id = %s WHERE subject_id = %s",
                     [world["free"].pk, locked.pk])
    for table in ("subjects_subject", "visits_exposure"):
        with pytest.raises(DatabaseError):
            _sql(f"DELETE FROM {table}")
    assert _age(locked.pk) == 50 and Exposure.objects.count() == 1


def test_pgtrigger_ignore_does_not_switch_off_a_protective_trigger(world):
    names = [row[0] for row in _sql(
        "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN "
        "('subjects_subject'::regclass, 'subjects_subjectevent'::regclass)")]
    assert len(names) >= 5
    ignore = "SELECT set_config('pgtrigger.ignore', %s, true); "
    everything = "{" + ",".join(names) + "}"
    free = world["free"]
    with pytest.raises(DatabaseError, match="reason for change required"):
        _sql(ignore + "UPDATE subjects_subject SET age_at_consent = 70 WHERE id = %s",
             [everything, free.pk])
    with pytest.raises(DatabaseError, match="locked"):
        _sql(ignore + "SELECT set_config('pghistory.context_metadata', '{\"reason\": \"x\"}', "
             "true); UPDATE subjects_subject SET age_at_consent = 70 WHERE id = %s",
             [everything, world["locked"].pk])
    with pytest.raises(DatabaseError):
        _sql(ignore + "DELETE FROM subjects_subject WHERE id = %s", [everything, free.pk])
    with pytest.raises(DatabaseError):
        _sql(ignore + "UPDATE subjects_subjectevent SET age_at_consent = 99", [everything])
    with pytest.raises(DatabaseError):
        _sql(ignore + "DELETE FROM subjects_subjectevent", [everything])
    # the tracking trigger cannot be skipped either: a change is audited or not made
    with change_reason("age per ID card"), transaction.atomic():
        _sql("SELECT set_config('pgtrigger.ignore', %s, true)", [everything])
        Subject.objects.filter(pk=free.pk).update(age_at_consent=61)
    assert [r["reason"] for r in history(Subject.objects.get(pk=free.pk))] == [
        None, "age per ID card"]


@pytest.mark.parametrize("statement", [
    "SET session_replication_role = replica",
    "SET LOCAL session_replication_role = replica",
    "SELECT set_config('session_replication_role', 'replica', true)",
    "TRUNCATE subjects_subjectevent",
    "TRUNCATE subjects_subject CASCADE",
    "ALTER TABLE subjects_subject DISABLE TRIGGER ALL",
    "ALTER TABLE subjects_subject DISABLE TRIGGER USER",
    "ALTER TABLE subjects_subjectevent DISABLE TRIGGER USER",
    "DROP TRIGGER {trigger} ON subjects_subject",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "SET ROLE postgres",
])
def test_the_application_role_cannot_switch_guarantees_off(world, statement):
    trigger = _sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal "
                   "AND tgrelid = 'subjects_subject'::regclass LIMIT 1")[0][0]
    with pytest.raises(DatabaseError, match="(?i)permission denied|must be"):
        _sql(statement.format(trigger=trigger))
    assert Subject.objects.count() == 2


def test_a_forged_audit_context_is_detected(world, capsys):
    free, dm = world["free"], world["dm"]
    with change_reason("age per ID card", dm):
        Subject.objects.filter(pk=free.pk).update(age_at_consent=61)
    call_command("verify_audit")  # the application's own context verifies
    assert "OK" in capsys.readouterr().out

    forged = json.dumps({"user": dm.pk, "username": "dm", "reason": "corrected per source"})
    _sql("SELECT set_config('pghistory.context_metadata', %s, true); "
         "UPDATE subjects_subject SET age_at_consent = 62 WHERE id = %s", [forged, free.pk])
    with connection.cursor() as cursor:  # an audit row's id is final once it is chained
        audit_integrity.chain_now(cursor)
    event = _sql("SELECT pgh_id, pgh_db_user FROM subjects_subjectevent "
                 "ORDER BY pgh_id DESC LIMIT 1")[0]
    assert event[1] == settings.DATABASE_APP_ROLE  # who really connected, from the database
    problems = audit_integrity.verify()
    assert [(p.table, p.pgh_id, p.kind) for p in problems] == [
        ("subjects_subjectevent", event[0], "unsigned context")]
    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit")
    assert f"subjects_subjectevent pgh_id={event[0]}: unsigned context" in capsys.readouterr().out

    # a signature copied from another row does not fit the forged content either
    signed = _sql("SELECT pgh_context FROM subjects_subjectevent "
                  "WHERE pgh_context ? 'sig' LIMIT 1")[0][0]
    signed = signed if isinstance(signed, dict) else json.loads(signed)
    signed["user"] = dm.pk + 1000
    _sql("SELECT set_config('pghistory.context_metadata', %s, true); "
         "UPDATE subjects_subject SET age_at_consent = 63 WHERE id = %s",
         [json.dumps(signed), free.pk])
    assert [p.kind for p in audit_integrity.verify()] == ["unsigned context", "bad signature"]


@committed
def test_each_audit_row_is_chained_to_the_previous_row_of_its_table(world):
    rows = _sql("SELECT pgh_id, pgh_hash FROM subjects_subjectevent ORDER BY pgh_id")
    assert len(rows) == 2 and all(len(h) == 64 for _, h in rows)
    assert rows[0][1] != rows[1][1]
    assert audit_integrity.verify() == []


def _app_connection():
    """A second connection of the application's role to the test database (a psycopg
    connection, not in autocommit)."""
    db = settings.DATABASES["default"]
    return psycopg.connect(host=db.get("HOST") or "127.0.0.1", port=db.get("PORT") or 5432,
                           dbname=db["NAME"], user=db["USER"],
                           password=db.get("PASSWORD") or None)


def _change_age(cursor, subject, age) -> None:
    cursor.execute("SELECT set_config('pghistory.context_metadata', %s, true)",
                   [json.dumps({"reason": "concurrent writer"})])
    cursor.execute("UPDATE subjects_subject SET age_at_consent = %s WHERE id = %s",
                   [age, subject.pk])


@committed
def test_writers_of_one_audit_table_wait_only_for_each_others_commit(world):
    """Issue 19: the hash chain serialised every writer of an audit table from its first
    audited write to its commit; now only the chaining at commit is serialised."""
    free = world["free"]
    other = make_subject(world["trial"], free.site, screening_number="A-3", age_at_consent=50)
    with _app_connection() as first, _app_connection() as second:
        with first.cursor() as cursor:  # an audited write, its transaction still open
            _change_age(cursor, free, 70)
        with second.cursor() as cursor:  # another writer of the same audit table
            cursor.execute("SET lock_timeout = '2s'")
            _change_age(cursor, other, 51)
        second.commit()  # did not wait for the first transaction
        first.commit()  # committed last, so chained last, whatever the order of the writes
    rows = _sql("SELECT pgh_obj_id, age_at_consent FROM subjects_subjectevent "
                "ORDER BY pgh_id DESC LIMIT 2")
    assert rows == [(free.pk, 70), (other.pk, 51)]
    assert [p.kind for p in audit_integrity.verify()] == ["unsigned context"] * 2  # raw SQL


def test_rows_of_the_open_transaction_are_chained_before_they_are_verified(world):
    free = world["free"]
    with change_reason("age per ID card"):
        Subject.objects.filter(pk=free.pk).update(age_at_consent=61)
    assert _sql("SELECT count(*) FROM subjects_subjectevent WHERE pgh_hash IS NULL")[0][0] > 0
    assert audit_integrity.verify() == []
    assert _sql("SELECT count(*) FROM subjects_subjectevent WHERE pgh_hash IS NULL")[0][0] == 0


@committed
def test_an_audit_row_rewritten_by_the_owner_is_caught_by_verify_audit(world, capsys):
    free = world["free"]
    with change_reason("age per ID card"):
        Subject.objects.filter(pk=free.pk).update(age_at_consent=61)
    with change_reason("age per birth certificate"):
        Subject.objects.filter(pk=free.pk).update(age_at_consent=62)
    call_command("verify_audit")
    events = _sql("SELECT pgh_id FROM subjects_subjectevent WHERE pgh_obj_id = %s "
                  "ORDER BY pgh_id", [free.pk])
    target = events[1][0]
    with owner_connection() as cursor:  # the owner (superuser here) gets past every trigger
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE subjects_subjectevent SET age_at_consent = 99 "
                       "WHERE pgh_id = %s", [target])
        cursor.execute("RESET session_replication_role")
    problems = audit_integrity.verify()
    assert [(p.table, p.pgh_id, p.kind) for p in problems] == [
        ("subjects_subjectevent", target, "hash mismatch")]
    with pytest.raises(CommandError, match="1 problem"):
        call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"subjects_subjectevent pgh_id={target}: hash mismatch" in out

    # re-hashing the rewritten row moves the break to the next link; deleting a row is caught
    def first_break():
        return [p.pgh_id for p in audit_integrity.verify("subjects_subjectevent")
                if p.kind == "hash mismatch"]

    rehash = audit_integrity.expected_hash_sql("subjects_subjectevent")
    with owner_connection() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute(f"UPDATE subjects_subjectevent SET pgh_hash = {rehash} "
                       "WHERE pgh_id = %s", [target])
    assert first_break() == [events[2][0]]
    with owner_connection() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM subjects_subjectevent WHERE pgh_id = %s", [events[0][0]])
    assert first_break() == [target]


@committed
def test_the_beat_task_reports_the_first_broken_link(world):
    from edc.core.tasks import verify_audit_trail

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "edc.core.tasks.verify_audit_trail" in schedule
    assert verify_audit_trail() == []
    with owner_connection() as cursor:
        cursor.execute("ALTER TABLE subjects_subjectevent DISABLE TRIGGER USER")
        cursor.execute("UPDATE subjects_subjectevent SET age_at_consent = 1")
        cursor.execute("ALTER TABLE subjects_subjectevent ENABLE TRIGGER USER")
    report = verify_audit_trail()
    first = _sql("SELECT min(pgh_id) FROM subjects_subjectevent")[0][0]
    assert report == [f"subjects_subjectevent pgh_id={first}: hash mismatch"]


def test_a_loaded_protocol_version_is_never_rewritten(world):
    """A protocol version is what was loaded (an amendment is a new version): its file, texts,
    digest, number and trial cannot be changed, even with a reason, below the ORM; what the
    data manager may correct (the eligibility ages, the sex) still can. The parsed protocol is
    cached per version id and digest (``trials.protocol_schema.loading``), so it relies on this."""
    version = world["trial"].current_version()
    for column, value in [("file_text", "x"), ("source_text", "x"), ("digest", "0" * 64),
                          ("document", '{"changed": true}'), ("source_file", "x.toml"),
                          ("version", 99)]:
        with pytest.raises(DatabaseError, match="protocol version"):
            _with_reason(f"UPDATE trials_protocolversion SET {column} = %s WHERE id = %s",
                         [value, version.pk])
    _with_reason("UPDATE trials_protocolversion SET max_age_years = 80 WHERE id = %s",
                 [version.pk])
    version.refresh_from_db()
    assert version.max_age_years == 80
