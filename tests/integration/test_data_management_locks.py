"""Freezes and locks on real PostgreSQL: locked data is read-only through the API, the admin,
bulk updates and services; unlocking needs a reason and is audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from data_management import locks, queries, sdv, signatures
from data_management.exceptions import RecordLocked
from data_management.models import Lock
from data_management.status import form_status, trial_data_status
from edc.core.audit import change_reason, history
from subjects.models import Subject
from tests.factories import (
    make_dm_exposure,
    make_dm_qlq_form,
    make_dm_visit,
    make_site,
    make_subject,
    make_trial,
    make_user,
)
from visits.models import Exposure, QlqC30Form, Visit

pytestmark = pytest.mark.django_db
LOCKED_STATUS = {400, 409}  # 400 until edc.core.api.errors maps RecordLocked to 409 (see report)


@pytest.fixture
def world():
    trial = make_trial()
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    subject = make_subject(trial, site_a, screening_number="A-1", age_at_consent=50)
    other = make_subject(trial, site_a, screening_number="A-2")
    visit = make_dm_visit(subject, "C1", actual_date=dt.date(2025, 2, 1), status="done")
    visit2 = make_dm_visit(subject, "C2", target_date=dt.date(2025, 3, 1))
    return {
        "trial": trial, "site_a": site_a, "site_b": site_b, "subject": subject,
        "other": other, "visit": visit, "visit2": visit2,
        "exposure": make_dm_exposure(visit, "70.00"),
        "form": make_dm_qlq_form(visit, q1=2),
        "staff": make_user("nurse_a", "site_staff", (trial, site_a)),
        "inv": make_user("dr_a", "investigator", (trial, site_a)),
        "monitor": make_user("cra", "monitor", (trial, None)),
        "dm": make_user("dm", "data_manager", (trial, None)),
        "dm_site": make_user("dm_a", "data_manager", (trial, site_a)),
    }


def _lock(api, world, level, object_id, action="lock", form=None, user="dm", reason=""):
    api.force_authenticate(world[user])
    payload = {"level": level, "object_id": object_id, "action": action, "reason": reason}
    if form:
        payload["form"] = form
    return api.post("/api/v1/locks/", payload, format="json")


def _message(response) -> str:
    return response.json()["errors"][0]["message"]


def test_locked_subject_refuses_api_admin_and_bulk_edits(api, client, world):
    subject = world["subject"]
    created = _lock(api, world, "subject", subject.pk, reason="clean after SDV")
    assert created.status_code == 201, created.content
    assert created.json()["state"] == "locked"

    api.force_authenticate(world["staff"])
    patched = api.patch(f"/api/v1/subjects/{subject.pk}/", {
        "age_at_consent": 51, "reason": "Age corrected per ID card"}, format="json")
    assert patched.status_code in LOCKED_STATUS
    assert _message(patched).startswith(
        f"Subject #{subject.pk} is read-only: its subject subject #{subject.pk} "
        "(screening A-1) was locked by dm on ")
    assert "was locked by dm on" in _message(patched)
    assert "(clean after SDV)" in _message(patched)

    client.force_login(world["staff"])
    page = client.post(f"/admin/subjects/subject/{subject.pk}/change/", {
        "trial": world["trial"].pk, "site": world["site_a"].pk, "screening_number": "A-1",
        "sex": "F", "age_at_consent": 52, "consent_date": "2025-01-02", "birth_date": "",
        "reason_for_change": "Age corrected per source"})
    assert page.status_code == 200
    assert b"is read-only: its subject" in page.content

    with pytest.raises(RecordLocked, match="is read-only: its subject"), \
            change_reason("bulk correction"):
        Subject.objects.filter(pk=subject.pk).update(age_at_consent=53)
    subject.age_at_consent = 54
    with pytest.raises(RecordLocked), change_reason("bulk correction"):
        Subject.objects.bulk_update([subject], ["age_at_consent"])
    with pytest.raises(RecordLocked), change_reason("retire"):
        Subject.objects.get(pk=subject.pk).retire("duplicate")

    subject = Subject.objects.get(pk=subject.pk)
    assert subject.age_at_consent == 50 and subject.retired_at is None
    assert [r["event"] for r in history(subject)] == ["insert"]

    # the lock covers the subject's forms, not other subjects
    with pytest.raises(RecordLocked), change_reason("x"):
        Exposure.objects.filter(pk=world["exposure"].pk).update(weight_kg=Decimal("71"))
    with pytest.raises(RecordLocked):
        make_dm_visit(subject, "U1", kind="unscheduled")
    with change_reason("other subject is not locked"):
        Subject.objects.filter(pk=world["other"].pk).update(age_at_consent=60)
    assert Subject.objects.get(pk=world["other"].pk).age_at_consent == 60


def test_locked_form_refuses_the_crf_endpoint(api, world):
    form = world["form"]
    assert _lock(api, world, "form", form.pk, form="visits.qlqc30form").status_code == 201
    api.force_authenticate(world["staff"])
    response = api.patch(f"/api/v1/qlq-c30-forms/{form.pk}/",
                         {"q1": 3, "reason": "patient re-read the item"}, format="json")
    assert response.status_code in LOCKED_STATUS
    assert _message(response).startswith(
        f"QLQ-C30 form #{form.pk} is read-only: the form was locked by dm on ")
    assert QlqC30Form.objects.get(pk=form.pk).q1 == 2
    # a form lock covers that form only
    with change_reason("weight per source"):
        world["exposure"].weight_kg = Decimal("71.00")
        world["exposure"].save()


def test_visit_lock_covers_the_visit_and_its_forms_only(world):
    locks.change_lock(world["dm"], "visit", world["visit"], "freeze")
    with pytest.raises(RecordLocked, match="its visit .* was frozen"), change_reason("x"):
        Exposure.objects.filter(subject=world["subject"]).update(interrupted=True)
    with pytest.raises(RecordLocked), change_reason("x"):
        world["visit"].status_reason = "late"
        world["visit"].save()
    # moving a form out of the frozen visit is a change to frozen data
    form = QlqC30Form.objects.get(pk=world["form"].pk)
    form.visit = world["visit2"]
    with pytest.raises(RecordLocked), change_reason("wrong visit"):
        form.save()
    with change_reason("visit 2 is not frozen"):
        Visit.objects.filter(pk=world["visit2"].pk).update(status_reason="rescheduled")
    assert set(Visit.objects.filter(subject=world["subject"]).unlocked()) == {world["visit2"]}
    assert form_status(world["exposure"]) == ["entered", "frozen"]


def test_trial_database_lock_and_audited_unlock(api, world):
    refused = _lock(api, world, "trial", world["trial"].pk, user="dm_site")
    assert refused.status_code == 403
    assert "trial-wide for a database lock" in _message(refused)
    locked = _lock(api, world, "trial", world["trial"].pk, reason="database lock")
    assert locked.status_code == 201
    lock = Lock.objects.get(pk=locked.json()["id"])
    assert trial_data_status(world["trial"])["locks"]["database_locked"] is True

    with pytest.raises(RecordLocked, match="its trial trial .* was locked"), change_reason("x"):
        Subject.objects.filter(trial=world["trial"]).update(cohort=2)
    with pytest.raises(RecordLocked):
        make_subject(world["trial"], world["site_a"])

    api.force_authenticate(world["dm"])
    no_reason = api.post(f"/api/v1/locks/{lock.pk}/unlock/", {"reason": " "}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    api.force_authenticate(world["staff"])
    assert api.post(f"/api/v1/locks/{lock.pk}/unlock/", {"reason": "x"},
                    format="json").status_code == 403
    api.force_authenticate(world["dm"])
    unlocked = api.post(f"/api/v1/locks/{lock.pk}/unlock/",
                        {"reason": "Late SAE follow-up received"}, format="json")
    assert unlocked.status_code == 200 and unlocked.json()["state"] == "unlocked"

    with change_reason("cohort assigned after unlock"):
        Subject.objects.filter(pk=world["subject"].pk).update(cohort=2)
    trail = history(Lock.objects.get(pk=lock.pk))
    assert [r["changes"].get("state") for r in trail] == [[None, "locked"],
                                                         ["locked", "unlocked"]]
    assert trail[1]["reason"] == "unlock: Late SAE follow-up received"
    assert trail[1]["username"] == "dm"
    api_trail = api.get(f"/api/v1/locks/{lock.pk}/history/").json()
    assert api_trail[1]["reason"] == "unlock: Late SAE follow-up received"


def test_lock_is_refused_with_open_queries_and_locked_data_is_final(api, world):
    query = queries.open_query(world["exposure"], "Confirm weight", world["monitor"],
                               "weight_kg")
    refused = _lock(api, world, "visit", world["visit"].pk)
    assert refused.status_code == 409
    assert "Locking is refused while 1 query is open or answered" in _message(refused)
    assert not Lock.objects.exists()

    frozen = _lock(api, world, "visit", world["visit"].pk, action="freeze")
    assert frozen.status_code == 201
    sdv.verify(world["exposure"], world["monitor"])  # frozen data can still be verified
    queries.answer_query(query, "confirmed", world["staff"])
    queries.close_query(query, world["monitor"])
    escalated = _lock(api, world, "visit", world["visit"].pk, action="lock")
    assert escalated.status_code == 200 and escalated.json()["state"] == "locked"
    assert "locked" in form_status(world["exposure"])

    api.force_authenticate(world["monitor"])
    new_query = api.post("/api/v1/queries/", {"form": "visits.exposure",
                                              "object_id": world["exposure"].pk,
                                              "text": "one more"}, format="json")
    assert new_query.status_code == 409
    assert _message(new_query) == "Locked data cannot be queried; it is final."
    verify = api.post("/api/v1/verifications/", {"form": "visits.qlqc30form",
                                                  "object_id": world["form"].pk},
                      format="json")
    assert verify.status_code == 409
    with pytest.raises(Exception, match="Locked data cannot be signed"):
        signatures.sign(world["inv"], world["visit"], "pw-for-tests-1")
    api.force_authenticate(world["monitor"])
    assert _lock(api, world, "visit", world["visit"].pk, action="freeze",
                 user="monitor").status_code == 403


def test_lock_lists_filter_by_state_and_level(api, world):
    locks.change_lock(world["dm"], "subject", world["other"], "freeze")
    lock, _ = locks.change_lock(world["dm"], "trial", world["trial"], "lock")
    locks.change_lock(world["dm"], "trial", world["trial"], "unlock", "reopened for query")
    api.force_authenticate(world["dm"])

    def ids(params):
        return {row["id"] for row in api.get("/api/v1/locks/", params).json()["results"]}

    assert ids({"active": "true"}) == set(Lock.objects.filter(state="frozen")
                                          .values_list("pk", flat=True))
    assert ids({"level": "trial"}) == {lock.pk}
    assert ids({"state": "unlocked"}) == {lock.pk}
    api.force_authenticate(world["staff"])  # site staff see the trial-wide lock row too
    assert lock.pk in ids({})


def test_bulk_create_checks_its_rows_in_one_query_and_names_the_locked_one(api, world):
    """A bulk create (the schedule at enrollment) checks every row against the locks in one
    query; where a lock covers a row, the refusal names it and nothing is created."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    subject, other = world["subject"], world["other"]
    assert _lock(api, world, "subject", subject.pk).status_code == 201
    rows = [Visit(subject=other, code=f"X{i}", target_date=dt.date(2025, 4, i))
            for i in range(1, 6)]
    with pytest.raises(RecordLocked, match="is read-only: its subject"):
        Visit.objects.bulk_create([*rows, Visit(subject=subject, code="X9",
                                                target_date=dt.date(2025, 4, 9))])
    assert not Visit.objects.filter(code__startswith="X").exists()
    with CaptureQueriesContext(connection) as queries_run:
        Visit.objects.bulk_create(rows)
    lock_reads = [q for q in queries_run.captured_queries
                  if 'FROM "data_management_lock"' in q["sql"]]
    assert len(lock_reads) == 1
    assert Visit.objects.filter(subject=other, code__startswith="X").count() == 5


def test_a_write_inside_the_callers_transaction_is_refused_cleanly_or_rolls_back_whole(world):
    """Rows are written inside the caller's transaction without a savepoint of their own
    (``edc.core.audit.guarded_write``): a refusal by the write guard leaves the transaction
    usable; a failure while writing marks it for rollback, so no half-done write can commit."""
    from django.db import IntegrityError, transaction
    from django.db.transaction import TransactionManagementError

    locks.change_lock(world["dm"], "visit", world["visit"], "freeze")
    with transaction.atomic():
        with pytest.raises(RecordLocked), change_reason("x"):
            world["visit"].status_reason = "late"
            world["visit"].save()
        assert Visit.objects.filter(subject=world["subject"]).count() == 2  # still usable
        with pytest.raises(IntegrityError):
            make_dm_visit(world["subject"], "C2")  # (subject, code) is unique
        with pytest.raises(TransactionManagementError):
            Visit.objects.count()
    assert Visit.objects.filter(subject=world["subject"]).count() == 2
