"""Data management on real PostgreSQL: queries, edit checks, source data verification,
investigator signatures and form status (locks: test_data_management_locks.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pghistory
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from model_bakery import baker

from adverse_events.models import AdverseEvent, CtcaeTerm, GradeEpisode
from data_management import edit_checks, queries, sdv, signatures
from data_management.models import Query, Signature, Verification
from data_management.status import form_status, trial_data_status
from edc.core.audit import change_reason, history
from tests.factories import (
    make_dm_exposure,
    make_dm_qlq_form,
    make_dm_visit,
    make_site,
    make_subject,
    make_trial,
    make_user,
)
from visits.models import Exposure, Visit

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def world():
    trial = make_trial()
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    subject = make_subject(trial, site_a, subject_number="A-001")
    visit = make_dm_visit(subject, "C1", actual_date=dt.date(2025, 2, 1), status="done")
    exposure = make_dm_exposure(visit, "70.00")
    user = {
        "staff": make_user("nurse_a", "site_staff", (trial, site_a)),
        "staff_b": make_user("nurse_b", "site_staff", (trial, site_b)),
        "inv": make_user("dr_a", "investigator", (trial, site_a)),
        "monitor": make_user("cra", "monitor", (trial, None)),
        "monitor2": make_user("cra2", "monitor", (trial, None)),
        "dm": make_user("dm", "data_manager", (trial, None)),
    }
    user["inv"].first_name, user["inv"].last_name = "Ada", "Lovelace"
    user["inv"].save()
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "subject": subject,
            "visit": visit, "exposure": exposure, **user}


def _open(api, world, field="weight_kg", text="Weight 70 kg? Source says 72 kg."):
    api.force_authenticate(world["monitor"])
    response = api.post("/api/v1/queries/", {
        "form": "visits.exposure", "object_id": world["exposure"].pk, "field_name": field,
        "text": text}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# ---------------------------------------------------------------- queries

def test_query_lifecycle_through_the_api_with_a_correction(api, world):
    query = _open(api, world)
    assert query["state"] == "open" and query["opened_by"] == "cra"
    assert query["form"] == "visits.exposure" and query["site"] == world["site_a"].pk

    api.force_authenticate(world["staff"])
    answered = api.post(f"/api/v1/queries/{query['id']}/answer/", {
        "text": "Transcription error; source shows 72 kg", "value": "72.00"}, format="json")
    assert answered.status_code == 200, answered.content
    assert answered.json()["state"] == "answered"
    assert answered.json()["answered_by"] == "nurse_a"

    exposure = Exposure.objects.get(pk=world["exposure"].pk)
    assert exposure.weight_kg == Decimal("72.00")
    last = history(exposure)[-1]
    assert last["changes"]["weight_kg"] == [Decimal("70.00"), Decimal("72.00")]
    assert last["username"] == "nurse_a"
    assert "Transcription error; source shows 72 kg" in last["reason"]

    api.force_authenticate(world["monitor"])
    closed = api.post(f"/api/v1/queries/{query['id']}/close/", {"text": "ok"}, format="json")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    assert [m["action"] for m in closed.json()["messages"]] == ["open", "answer", "close"]

    reopened = api.post(f"/api/v1/queries/{query['id']}/reopen/",
                        {"text": "Please also send the scale calibration"}, format="json")
    assert reopened.status_code == 200 and reopened.json()["state"] == "open"
    states = [row["changes"].get("state") for row in history(Query.objects.get(pk=query["id"]))]
    assert states[1:] == [["open", "answered"], ["answered", "closed"], ["closed", "open"]]


def test_a_corrected_weight_recomputes_the_planned_total(world):
    visit = make_dm_visit(world["subject"], "C2", actual_date=dt.date(2025, 2, 22),
                          status="done")
    exposure = make_dm_exposure(visit, "70.00", dose_value=Decimal("2000000"),
                                dose_unit="cells/kg", planned_total=Decimal("140000000"),
                                total_unit="cells")
    query = queries.open_query(exposure, "Weight 70 kg? Source says 61.5 kg.", world["monitor"],
                               "weight_kg")
    queries.answer_query(query, "Transcription error", world["staff"], value="61.5")
    exposure.refresh_from_db()
    assert (exposure.weight_kg, exposure.planned_total) == (Decimal("61.50"),
                                                           Decimal("123000000"))
    last = history(exposure)[-1]
    assert last["changes"]["planned_total"] == [Decimal("140000000"), Decimal("123000000")]
    implausible = queries.open_query(exposure, "Weight?", world["monitor"], "weight_kg")
    with pytest.raises(ValidationError) as refused:
        queries.answer_query(implausible, "typo", world["staff"], value="900")
    assert "weight" in str(refused.value.message_dict["value"])


@pytest.mark.parametrize("form, field, value", [
    ("subject", "arm", None), ("subject", "status", "off_study"),
    ("exposure", "intervention", None), ("visit", "target_date", "2025-03-01"),
    ("ae", "onset_date", "2025-02-03"),
])
def test_workflow_fields_are_not_corrected_through_a_query(world, form, field, value):
    """Allocation, status, the schedule, the product and the AE's dates go through their own
    actions with their rules (randomization, lifecycle, ...), never a query answer."""
    from trials.models import Arm, Intervention

    ae = baker.make(AdverseEvent, subject=world["subject"],
                    term=baker.make(CtcaeTerm, meddra_code="99999999"),
                    onset_date=dt.date(2025, 2, 2), grade=1)
    record = {"subject": world["subject"], "exposure": world["exposure"],
              "visit": world["visit"], "ae": ae}[form]
    if value is None:  # a relation: another row of the same kind
        other = {"arm": lambda: baker.make(Arm, protocol_version=record.protocol_version),
                 "intervention": lambda: baker.make(
                     Intervention, protocol_version=world["subject"].protocol_version)}[field]()
        value = other.pk
    before = getattr(record, field + ("_id" if field in ("arm", "intervention") else ""))
    query = queries.open_query(record, f"{field}?", world["monitor"], field)
    with pytest.raises(ValidationError) as refused:
        queries.answer_query(query, "corrected", world["staff"], value=value)
    assert "set by the study workflow" in str(refused.value.message_dict["value"])
    record.refresh_from_db()
    assert getattr(record, field + ("_id" if field in ("arm", "intervention") else "")) == before
    assert Query.objects.get(pk=query.pk).state == "open"


def test_a_corrected_qlq_item_is_rescored(world):
    from edc.core.models import PendingTask
    from visits.models import QlqC30Score

    form = make_dm_qlq_form(world["visit"], q1=1, q2=1)
    query = queries.open_query(form, "Item 1?", world["monitor"], "q1")
    queries.answer_query(query, "source says 3", world["staff"], value=3)
    assert QlqC30Score.objects.get(form=form).state == "pending"
    assert PendingTask.objects.filter(task_name__endswith="score_qlq_c30_form",
                                      args=[form.pk]).exists()


def test_answering_a_closed_query_is_refused_and_changes_nothing(api, world):
    query = Query.objects.get(pk=_open(api, world)["id"])
    queries.close_query(query, world["monitor"], "raised in error")
    api.force_authenticate(world["staff"])
    response = api.post(f"/api/v1/queries/{query.pk}/answer/",
                        {"text": "late answer", "value": "99.00"}, format="json")
    assert response.status_code == 409
    error = response.json()["errors"][0]
    assert error["message"] == "A query that is closed cannot be answered."
    assert error["code"] == "illegal_transition"
    query.refresh_from_db()
    assert query.state == "closed" and query.answer == ""
    assert Exposure.objects.get(pk=world["exposure"].pk).weight_kg == Decimal("70.00")


def test_query_roles_and_scoping(api, world):
    api.force_authenticate(world["staff"])
    refused = api.post("/api/v1/queries/", {"form": "visits.exposure",
                                            "object_id": world["exposure"].pk, "text": "?"},
                       format="json")
    assert refused.status_code == 403
    assert "needs the role data_manager or monitor" in refused.json()["errors"][0]["message"]

    query = _open(api, world)
    api.force_authenticate(world["monitor"])
    assert api.post(f"/api/v1/queries/{query['id']}/answer/", {"text": "x"},
                    format="json").status_code == 403
    api.force_authenticate(world["staff_b"])
    assert api.get(f"/api/v1/queries/{query['id']}/").status_code == 404
    assert api.post(f"/api/v1/queries/{query['id']}/answer/", {"text": "x"},
                    format="json").status_code == 404

    api.force_authenticate(world["staff"])
    api.post(f"/api/v1/queries/{query['id']}/answer/", {"text": "confirmed"}, format="json")
    api.force_authenticate(world["monitor2"])
    other = api.post(f"/api/v1/queries/{query['id']}/close/", {}, format="json")
    assert other.status_code == 403
    assert other.json()["errors"][0]["message"] == (
        "Only the person who opened this query can close it.")


def test_query_on_an_unknown_field_or_form_is_a_400(api, world):
    api.force_authenticate(world["monitor"])
    bad_field = api.post("/api/v1/queries/", {
        "form": "visits.exposure", "object_id": world["exposure"].pk,
        "field_name": "shoe_size", "text": "?"}, format="json")
    assert bad_field.status_code == 400
    assert bad_field.json()["errors"][0]["field"] == "field_name"
    bad_form = api.post("/api/v1/queries/", {
        "form": "trials.trial", "object_id": world["trial"].pk, "text": "?"}, format="json")
    assert bad_form.status_code == 400
    assert "is not a case report form" in bad_form.json()["errors"][0]["message"]


def test_open_query_lists_filter_by_state_site_subject_and_age(api, world):
    other = make_subject(world["trial"], world["site_b"], subject_number="B-001")
    old = queries.open_query(world["exposure"], "old question", world["monitor"], "weight_kg")
    new = queries.open_query(other, "new question", world["dm"], "sex")
    done = queries.open_query(world["visit"], "closed one", world["monitor"])
    queries.close_query(done, world["monitor"])
    with change_reason("test: age the query"):
        Query.objects.filter(pk=old.pk).update(opened_at=timezone.now() - dt.timedelta(days=12))

    api.force_authenticate(world["dm"])

    def ids(params):
        response = api.get("/api/v1/queries/", params)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids({"unresolved": "true"}) == {old.pk, new.pk}
    assert ids({"state": "closed"}) == {done.pk}
    assert ids({"site": world["site_b"].pk}) == {new.pk}
    assert ids({"subject": world["subject"].pk, "state": "open"}) == {old.pk}
    assert ids({"age_min": 10}) == {old.pk}
    assert ids({"age_max": 3, "unresolved": "true"}) == {new.pk}
    assert ids({"form": "subjects.subject"}) == {new.pk}
    row = api.get(f"/api/v1/queries/{old.pk}/").json()
    assert row["age_days"] == 12
    api.force_authenticate(world["staff"])
    assert ids({}) == {old.pk, done.pk}  # site A only


# ---------------------------------------------------------------- edit checks

def test_edit_checks_open_system_queries_idempotently(world):
    subject = world["subject"]
    late = make_dm_visit(subject, "C2", target_date=dt.date(2025, 3, 1),
                         window_low=dt.date(2025, 2, 26), window_high=dt.date(2025, 3, 4),
                         actual_date=dt.date(2025, 3, 9), status="done")
    heavy = make_dm_exposure(late, "78.00")  # +11.4 % over 70 kg
    opened = edit_checks.run_edit_checks(subject)
    found = {(q.check_code, q.object_id, q.field_name) for q in opened}
    assert found == {("visit_out_of_window", late.pk, "actual_date"),
                     ("weight_change", heavy.pk, "weight_kg")}
    assert all(q.origin == "system" and q.opened_by is None for q in opened)
    window = next(q for q in opened if q.check_code == "visit_out_of_window")
    assert "outside its window 2025-02-26 to 2025-03-04" in window.text

    assert edit_checks.run_edit_checks(subject) == []
    assert Query.objects.filter(subject=subject).count() == 2

    queries.close_query(window, world["dm"], "deviation documented in the notes")
    assert edit_checks.run_edit_checks(subject) == []  # the accepted values stay accepted
    with change_reason("date corrected per source"):
        late.actual_date = dt.date(2025, 3, 10)
        late.save()
    reopened = edit_checks.run_edit_checks(subject)
    assert [(q.check_code, q.check_value) for q in reopened] == [
        ("visit_out_of_window", "2025-03-10|2025-02-26..2025-03-04")]


def test_grade_jump_check_on_adverse_event_episodes(world):
    term = CtcaeTerm.objects.first() or baker.make(CtcaeTerm)
    ae = baker.make(AdverseEvent, subject=world["subject"], term=term,
                    onset_date=dt.date(2025, 2, 3))
    GradeEpisode.objects.create(adverse_event=ae, grade=1, start_date=dt.date(2025, 2, 3),
                                end_date=dt.date(2025, 2, 3))
    jump = GradeEpisode.objects.create(adverse_event=ae, grade=4,
                                       start_date=dt.date(2025, 2, 4))
    opened = edit_checks.run_edit_checks(world["subject"])
    ae_queries = [q for q in opened if q.check_code == "ae_grade_jump"]
    assert [(q.object_id, q.field_name, q.check_value) for q in ae_queries] == [
        (jump.pk, "grade", "1->4")]
    assert ae_queries[0].subject_id == world["subject"].pk


# ---------------------------------------------------------------- source data verification

def test_change_to_a_verified_value_clears_the_verification_and_says_so(api, world):
    api.force_authenticate(world["monitor"])
    for field in ("weight_kg", "dose_value"):
        response = api.post("/api/v1/verifications/", {
            "form": "visits.exposure", "object_id": world["exposure"].pk,
            "field_name": field}, format="json")
        assert response.status_code == 201, response.content
    again = api.post("/api/v1/verifications/", {
        "form": "visits.exposure", "object_id": world["exposure"].pk,
        "field_name": "weight_kg"}, format="json")
    assert again.status_code == 409
    assert "already verified" in again.json()["errors"][0]["message"]

    exposure = world["exposure"]
    with change_reason("Weight re-measured: scale was not tared", world["staff"]):
        exposure.weight_kg = Decimal("71.50")
        exposure.save()

    weight = Verification.objects.get(object_id=exposure.pk, field_name="weight_kg")
    dose = Verification.objects.get(object_id=exposure.pk, field_name="dose_value")
    assert (weight.state, dose.state) == ("cleared", "verified")
    assert weight.cleared_by == world["staff"]
    assert "weight_kg: 70.00 → 71.50" in weight.cleared_reason
    assert "scale was not tared" in weight.cleared_reason

    change = history(Exposure.objects.get(pk=exposure.pk))[-1]
    assert change["changes"]["weight_kg"] == [Decimal("70.00"), Decimal("71.50")]
    consequence = history(weight)[-1]
    assert consequence["changes"]["state"] == ["verified", "cleared"]
    assert consequence["username"] == "nurse_a"
    assert consequence["reason"] == "Weight re-measured: scale was not tared"

    api.force_authenticate(world["monitor"])
    listed = api.get("/api/v1/verifications/", {"state": "cleared"}).json()["results"]
    assert [row["id"] for row in listed] == [weight.pk]
    reverified = sdv.verify(exposure, world["monitor"], "weight_kg")
    assert reverified.state == "verified" and reverified.cleared_reason == ""


def test_record_level_verification_cleared_by_a_bulk_update(world):
    verification = sdv.verify(world["visit"], world["monitor"])
    with change_reason("status reason added after review"):
        Visit.objects.filter(pk=world["visit"].pk).update(status_reason="per CRA")
    verification.refresh_from_db()
    assert verification.state == "cleared"
    assert "status_reason:  → per CRA" in verification.cleared_reason


def test_only_monitors_verify(api, world):
    api.force_authenticate(world["staff"])
    response = api.post("/api/v1/verifications/", {
        "form": "visits.visit", "object_id": world["visit"].pk}, format="json")
    assert response.status_code == 403
    assert not Verification.objects.exists()


# ---------------------------------------------------------------- signatures

def _sign(api, world, password=PASSWORD, level="subject", object_id=None):
    api.force_authenticate(world["inv"])
    return api.post("/api/v1/signatures/", {
        "level": level, "object_id": object_id or world["subject"].pk,
        "password": password}, format="json")


def test_sign_with_a_wrong_password_is_refused(api, world):
    response = _sign(api, world, password="not-my-password")
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "signature_rejected"
    assert error["message"].startswith("The password is not correct: nothing was signed.")
    assert not Signature.objects.exists()


def test_failed_signature_passwords_lock_the_account(api, world, settings):
    """21 CFR 11.300(d): like log-ins, signature passwords lock the account after
    ``AXES_FAILURE_LIMIT`` failures; then even the right password signs nothing."""
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = _sign(api, world, password="not-my-password")
        expected = ((403, "signature_rejected") if attempt < settings.AXES_FAILURE_LIMIT
                    else (429, "account_locked"))
        assert (response.status_code, response.json()["errors"][0]["code"]) == expected
    response = _sign(api, world)
    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == "account_locked"
    assert not Signature.objects.exists()


def test_signing_is_refused_while_queries_are_open(api, world):
    query = queries.open_query(world["exposure"], "Confirm weight", world["monitor"],
                               "weight_kg")
    refused = _sign(api, world)
    assert refused.status_code == 409
    assert "Signing is refused while 1 query is open or answered" in (
        refused.json()["errors"][0]["message"])
    assert not Signature.objects.exists()
    queries.answer_query(query, "70 kg confirmed", world["staff"])
    assert _sign(api, world).status_code == 409  # answered is not yet resolved
    queries.close_query(query, world["monitor"])
    assert _sign(api, world).status_code == 201


def test_signature_manifestation_and_invalidation_by_a_later_change(api, world):
    api.force_authenticate(world["inv"])
    meaning = api.get("/api/v1/signatures/meaning/", {"level": "subject"}).json()
    assert meaning["meaning"] == signatures.MEANINGS["subject"]
    signed = _sign(api, world)
    assert signed.status_code == 201, signed.content
    body = signed.json()
    assert body["printed_name"] == "Ada Lovelace" and body["state"] == "signed"
    assert body["meaning"] == "I approve the data in this casebook as complete and accurate."
    assert body["signed_at"].endswith("Z")
    assert body["manifestation"].startswith("Signed by Ada Lovelace on ")
    signature = Signature.objects.get(pk=body["id"])
    assert signatures.is_intact(signature)
    assert "signed" in form_status(world["exposure"])
    assert _sign(api, world).status_code == 409  # already signed

    exposure = world["exposure"]
    with change_reason("Interruption was recorded on the wrong form", world["staff"]):
        exposure.interrupted = True
        exposure.save()
    signature.refresh_from_db()
    assert signature.state == "invalidated"
    assert signature.invalidated_by == world["staff"]
    assert f"exposure #{exposure.pk} changed: interrupted: False → True" in (
        signature.invalidated_reason)
    assert not signatures.is_intact(signature)
    consequence = history(signature)[-1]
    assert consequence["changes"]["state"] == ["signed", "invalidated"]
    assert consequence["reason"] == "Interruption was recorded on the wrong form"
    assert history(Exposure.objects.get(pk=exposure.pk))[-1]["changes"]["interrupted"] == [
        False, True]
    assert "signature invalidated" in form_status(exposure)

    api.force_authenticate(world["inv"])
    shown = api.get("/api/v1/signatures/", {"state": "invalidated"}).json()["results"]
    assert [row["id"] for row in shown] == [signature.pk]
    assert _sign(api, world).status_code == 201  # re-signing after review


def test_a_form_added_to_a_signed_visit_invalidates_its_signature(world):
    signature = signatures.sign(world["inv"], world["visit"], PASSWORD)
    assert signature.level == "visit" and "of this visit" in signature.meaning
    with pghistory.context(user=world["staff"].pk, url="/api/v1/qlq-c30-forms/"):
        form = make_dm_qlq_form(world["visit"], q1=2)
    signature.refresh_from_db()
    assert signature.state == "invalidated"
    assert signature.invalidated_reason == (
        f"Signed data changed after signing: QLQ-C30 form #{form.pk} added")
    assert history(signature)[-1]["reason"].startswith("signature invalidated:")
    assert history(signature)[-1]["user"] == world["staff"].pk
    assert history(form)[0]["reason"] is None  # the insert's own context got no reason


def test_only_investigators_sign(api, world):
    api.force_authenticate(world["staff"])
    response = api.post("/api/v1/signatures/", {
        "level": "subject", "object_id": world["subject"].pk, "password": PASSWORD},
        format="json")
    assert response.status_code == 403
    assert not Signature.objects.exists()


# ---------------------------------------------------------------- status

def test_form_status_api_and_trial_counts(api, world):
    queries.open_query(world["exposure"], "Confirm the dose", world["monitor"], "dose_value")
    sdv.verify(world["visit"], world["monitor"])
    api.force_authenticate(world["monitor"])
    casebook = api.get("/api/v1/form-status/", {"subject": world["subject"].pk})
    assert casebook.status_code == 200, casebook.content
    rows = {(r["form"], r["object_id"]): r["status"] for r in casebook.json()["forms"]}
    assert rows[("visits.exposure", world["exposure"].pk)] == ["entered", "queried"]
    assert rows[("visits.visit", world["visit"].pk)] == ["entered", "verified"]
    assert rows[("subjects.subject", world["subject"].pk)] == ["entered"]
    one = api.get("/api/v1/form-status/", {"form": "visits.visit",
                                           "object_id": world["visit"].pk})
    assert one.json()["status"] == ["entered", "verified"]
    assert api.get("/api/v1/form-status/").status_code == 400
    api.force_authenticate(world["staff_b"])
    assert api.get("/api/v1/form-status/",
                   {"subject": world["subject"].pk}).status_code == 404

    status = trial_data_status(world["trial"])
    assert status["queries"]["open"] == 1
    assert status["queries"]["unresolved_by_site"] == {"A": 1}
    assert status["queries"]["unresolved_by_age_days"]["0-7"] == 1
    assert status["verifications"] == {"verified": 1, "cleared": 0}
    assert status["signatures"] == {"signed": 0, "invalidated": 0}
    assert status["locks"]["database_locked"] is False


def test_schema_lists_the_data_management_endpoints(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in ("/api/v1/queries/", "/api/v1/queries/{id}/answer/", "/api/v1/verifications/",
                 "/api/v1/signatures/", "/api/v1/locks/", "/api/v1/locks/{id}/unlock/",
                 "/api/v1/form-status/"):
        assert path in schema["paths"], path


def test_admin_lists_queries_by_age_and_casebook_status(client, world):
    old = queries.open_query(world["exposure"], "Confirm weight", world["monitor"], "weight_kg")
    queries.open_query(world["visit"], "Confirm date", world["monitor"], "actual_date")
    with change_reason("test: age the query"):
        Query.objects.filter(pk=old.pk).update(opened_at=timezone.now() - dt.timedelta(days=40))
    client.force_login(world["monitor"])
    page = client.get("/admin/data_management/query/", {"age": "31+"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert list(page.context["cl"].result_list) == [old]
    detail = client.get(f"/admin/data_management/query/{old.pk}/change/")
    assert detail.status_code == 200 and b"Audit trail" in detail.content
    casebook = client.get("/admin/data_management/casebook/")
    assert casebook.status_code == 200
    assert b"A-001" in casebook.content
    client.force_login(world["staff_b"])
    assert client.get("/admin/data_management/query/").context["cl"].result_count == 0


# ---------------------------------------------------------------- site moves

def test_a_subject_moved_to_another_site_takes_its_records_along(api, world):
    signatures.sign(world["inv"], world["subject"], PASSWORD)
    sdv.verify(world["visit"], world["monitor"])
    _open(api, world)
    boss = make_user("boss", "admin")
    api.force_authenticate(boss)
    moved = api.patch(f"/api/v1/subjects/{world['subject'].pk}/", {
        "site": world["site_b"].pk, "reason": "subject relocated to site B"}, format="json")
    assert moved.status_code == 200, moved.content
    for url in ("/api/v1/queries/", "/api/v1/verifications/", "/api/v1/signatures/"):
        api.force_authenticate(world["staff"])
        assert api.get(url).json()["results"] == [], url
        api.force_authenticate(world["staff_b"])
        rows = api.get(url).json()["results"]
        assert len(rows) == 1 and rows[0]["site"] == world["site_b"].pk, url
    query = Query.objects.get()
    assert history(query)[-1]["reason"] == "subject relocated to site B"
