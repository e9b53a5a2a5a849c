"""Foundation: audit trail, reasons for change, no hard delete, site scoping, health."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, InternalError, connection, transaction
from django.db.utils import DatabaseError

from edc.core.audit import ReasonRequired, change_reason, history
from subjects.models import Subject
from tests.factories import make_site, make_subject, make_trial, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    trial = make_trial()
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    staff_a = make_user("nurse_a", "site_staff", (trial, site_a))
    staff_b = make_user("nurse_b", "site_staff", (trial, site_b))
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "staff_a": staff_a,
            "staff_b": staff_b}


def test_create_and_update_through_api_leave_audit_rows(api, world):
    api.force_authenticate(world["staff_a"])
    created = api.post("/api/v1/subjects/", {
        "trial": world["trial"].pk, "site": world["site_a"].pk, "screening_number": "SCR-1",
        "sex": "F", "age_at_consent": 44, "consent_date": "2025-01-02",
    }, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]

    updated = api.patch(f"/api/v1/subjects/{pk}/", {
        "age_at_consent": 45, "reason": "Transcription error: age is 45 per source ID card",
    }, format="json")
    assert updated.status_code == 200, updated.content

    rows = history(Subject.objects.get(pk=pk))
    assert [r["event"] for r in rows] == ["insert", "update"]
    insert, update = rows
    assert insert["user"] == world["staff_a"].pk
    assert insert["changes"]["age_at_consent"] == [None, 44]
    assert update["user"] == world["staff_a"].pk
    assert update["username"] == "nurse_a"
    assert update["reason"] == "Transcription error: age is 45 per source ID card"
    assert update["changes"]["age_at_consent"] == [44, 45]
    assert update["at"].utcoffset() == dt.timedelta(0)

    api_history = api.get(f"/api/v1/subjects/{pk}/history/").json()
    assert api_history[1]["changes"]["age_at_consent"] == [44, 45]


def test_update_without_reason_is_refused_and_changes_nothing(api, world):
    subject = make_subject(world["trial"], world["site_a"], age_at_consent=50)
    api.force_authenticate(world["staff_a"])
    response = api.patch(f"/api/v1/subjects/{subject.pk}/", {"age_at_consent": 51}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors[0]["field"] == "reason"
    assert "reason for change is required" in errors[0]["message"]
    subject.refresh_from_db()
    assert subject.age_at_consent == 50
    assert len(history(subject)) == 1


def test_orm_and_raw_sql_updates_need_a_reason(world):
    subject = make_subject(world["trial"], world["site_a"])
    subject.age_at_consent = 60
    with pytest.raises(ReasonRequired):
        subject.save()
    with pytest.raises(DatabaseError, match="reason for change required"), transaction.atomic():
        Subject.objects.filter(pk=subject.pk).update(age_at_consent=61)
    with pytest.raises(DatabaseError, match="reason for change required"), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute("UPDATE subjects_subject SET age_at_consent = 62 WHERE id = %s",
                       [subject.pk])
    with change_reason("bulk correction after source review"):
        Subject.objects.filter(pk=subject.pk).update(age_at_consent=63)
    rows = history(Subject.objects.get(pk=subject.pk))
    assert rows[-1]["reason"] == "bulk correction after source review"
    assert rows[-1]["changes"]["age_at_consent"] == [50, 63]


def test_a_reason_ends_with_its_block_not_with_the_transaction(world):
    """pghistory keeps its context in the database until the transaction ends: after a
    reason block, a change in the same transaction gets neither that reason in its audit row
    nor past the database's reason-required check."""
    first = make_subject(world["trial"], world["site_a"])
    with transaction.atomic():
        with change_reason("consent re-signed on the new version"):
            Subject.objects.filter(pk=first.pk).update(age_at_consent=51)
        later = make_subject(world["trial"], world["site_a"])
        with pytest.raises(DatabaseError, match="reason for change required"), \
                transaction.atomic():
            Subject.objects.filter(pk=first.pk).update(age_at_consent=52)
    assert history(later)[0]["reason"] is None
    assert history(Subject.objects.get(pk=first.pk))[-1]["reason"] == (
        "consent re-signed on the new version")


def _clears(queries) -> list[str]:
    return [q["sql"] for q in queries
            if q["sql"].startswith("SELECT set_config('pghistory.context_id', '', true)")]


def test_under_an_enclosing_context_a_reason_block_ends_without_a_statement(world):
    """Inside an enclosing audit context (a request's), every later write sets the context in
    the database again: the end of a reason block there costs no clearing statement (issue
    19), outside one it does; the change has its reason, a later insert is audited in the
    enclosing context."""
    import pghistory
    from django.test.utils import CaptureQueriesContext

    subject = make_subject(world["trial"], world["site_a"])
    with transaction.atomic(), CaptureQueriesContext(connection) as alone, change_reason(
            "consent re-signed"):
        Subject.objects.filter(pk=subject.pk).update(age_at_consent=50)
    assert len(_clears(alone)) == 1
    with transaction.atomic(), pghistory.context(url="/request") as request:
        with CaptureQueriesContext(connection) as queries, change_reason(
                "consent re-signed on the new version"):
            Subject.objects.filter(pk=subject.pk).update(age_at_consent=51)
        later = make_subject(world["trial"], world["site_a"])
    assert _clears(queries) == [] and len(queries) == len(alone) - 1
    assert history(Subject.objects.get(pk=subject.pk))[-1]["reason"] == (
        "consent re-signed on the new version")
    assert later.events.get().pgh_context_id == request.id


def test_a_reason_block_inside_a_request_context_lends_its_reason_to_no_later_write(world):
    """pghistory merges a nested context's metadata into the enclosing one (a request's) and
    writes it in front of every later statement: after a reason block, a later update in the
    same request must meet the database's reason-required check without the block's reason,
    and a later insert's audit row must not name it."""
    import pghistory

    subject = make_subject(world["trial"], world["site_a"])
    with transaction.atomic(), pghistory.context(url="/request"):
        with change_reason("consent re-signed", world["staff_a"]):
            Subject.objects.filter(pk=subject.pk).update(age_at_consent=50)
        later = make_subject(world["trial"], world["site_a"])
        with pytest.raises(DatabaseError, match="reason for change required"), \
                transaction.atomic():
            Subject.objects.filter(pk=subject.pk).update(age_at_consent=51)
    assert history(Subject.objects.get(pk=subject.pk))[-1]["reason"] == "consent re-signed"
    assert "reason" not in later.events.get().pgh_context
    assert Subject.objects.get(pk=subject.pk).age_at_consent == 50


def test_delete_is_refused_everywhere(api, world):
    subject = make_subject(world["trial"], world["site_a"])
    api.force_authenticate(world["staff_a"])
    response = api.delete(f"/api/v1/subjects/{subject.pk}/")
    assert response.status_code == 405
    assert "never deleted" in response.json()["errors"][0]["message"]
    with pytest.raises(PermissionError):
        subject.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        Subject.objects.filter(pk=subject.pk).delete()
    assert Subject.objects.filter(pk=subject.pk).exists()


@pytest.mark.parametrize("statement", [
    "UPDATE subjects_subjectevent SET age_at_consent = 99",
    "DELETE FROM subjects_subjectevent",
])
def test_audit_table_is_append_only(world, statement):
    make_subject(world["trial"], world["site_a"])
    with pytest.raises((InternalError, IntegrityError, DatabaseError)), transaction.atomic(), \
            connection.cursor() as cursor:
        cursor.execute(statement)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM subjects_subjectevent")
        assert cursor.fetchone()[0] == 1


def test_retire_keeps_the_record_with_its_reason(world):
    subject = make_subject(world["trial"], world["site_a"])
    subject.retire("Entered twice by mistake; duplicate of S0001", user=world["staff_a"])
    subject.refresh_from_db()
    assert subject.retired_at is not None
    assert history(subject)[-1]["reason"] == "Entered twice by mistake; duplicate of S0001"


def test_site_scoping_in_api(api, world):
    subject_b = make_subject(world["trial"], world["site_b"])
    api.force_authenticate(world["staff_a"])
    assert api.get(f"/api/v1/subjects/{subject_b.pk}/").status_code == 404
    assert api.get(f"/api/v1/subjects/{subject_b.pk}/history/").status_code == 404
    listed = api.get("/api/v1/subjects/").json()["results"]
    assert subject_b.pk not in [row["id"] for row in listed]
    api.force_authenticate(world["staff_b"])
    assert api.get(f"/api/v1/subjects/{subject_b.pk}/").status_code == 200


def test_site_staff_cannot_create_a_subject_at_another_site(api, world):
    api.force_authenticate(world["staff_a"])
    response = api.post("/api/v1/subjects/", {
        "trial": world["trial"].pk, "site": world["site_b"].pk, "screening_number": "SCR-9",
        "sex": "M", "age_at_consent": 40, "consent_date": "2025-01-02",
    }, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "site"
    assert not Subject.objects.filter(screening_number="SCR-9").exists()


def test_site_scoping_in_admin(client, world):
    subject_b = make_subject(world["trial"], world["site_b"], screening_number="B-ONLY-77")
    subject_a = make_subject(world["trial"], world["site_a"], screening_number="A-OWN-12")
    client.force_login(world["staff_a"])
    page = client.get("/admin/subjects/subject/")
    assert page.status_code == 200
    assert b"A-OWN-12" in page.content
    assert b"B-ONLY-77" not in page.content
    change = client.get(f"/admin/subjects/subject/{subject_b.pk}/change/")
    assert change.status_code == 302  # the admin redirects: "does not exist"
    assert client.get(f"/admin/subjects/subject/{subject_a.pk}/change/").status_code == 200


def test_admin_edit_requires_reason(client, world):
    subject = make_subject(world["trial"], world["site_a"], screening_number="A-1")
    client.force_login(world["staff_a"])
    form = {
        "trial": world["trial"].pk, "site": world["site_a"].pk, "screening_number": "A-1",
        "sex": "F", "age_at_consent": 51, "consent_date": "2025-01-02",
        "birth_date": "", "reason_for_change": "",
    }
    page = client.post(f"/admin/subjects/subject/{subject.pk}/change/", form)
    assert page.status_code == 200
    assert b"A reason for change is required." in page.content
    subject.refresh_from_db()
    assert subject.age_at_consent == 50
    form["reason_for_change"] = "Age corrected per source"
    page = client.post(f"/admin/subjects/subject/{subject.pk}/change/", form)
    assert page.status_code == 302
    subject.refresh_from_db()
    assert subject.age_at_consent == 51
    assert history(subject)[-1]["reason"] == "Age corrected per source"


def test_schema_and_docs_and_admin_login(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/subjects/" in document["paths"]
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/admin/login/").status_code == 200


def test_health_reports_database_and_broker(client, settings):
    ok = client.get("/health/")
    assert ok.status_code == 200, ok.content
    assert ok.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_health_is_503_when_broker_is_down(client):
    from edc.celery import app

    app.conf.broker_write_url = "redis://127.0.0.1:1/0"
    try:
        down = client.get("/health/")
    finally:
        app.conf.broker_write_url = None
    assert down.status_code == 503
    assert down.json()["broker"].startswith("down")
    assert down.json()["database"] == "ok"


def test_a_retired_membership_no_longer_gives_access(api, world):
    subject_a = make_subject(world["trial"], world["site_a"])
    api.force_authenticate(world["staff_a"])
    assert api.get(f"/api/v1/subjects/{subject_a.pk}/").status_code == 200
    world["staff_a"].memberships.get().retire("Left the site team")
    assert api.get(f"/api/v1/subjects/{subject_a.pk}/").status_code == 404


def test_static_files_are_served_by_the_application_itself(settings, tmp_path):
    """gunicorn serves no static files: without WhiteNoise the admin and the API docs had no
    CSS or JavaScript in production (DEBUG off)."""
    from django.core.management import call_command
    from django.test import Client

    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", interactive=False, verbosity=0)
    response = Client().get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"body" in b"".join(response.streaming_content)
    assert Client().get("/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css"
                        ).status_code == 200
