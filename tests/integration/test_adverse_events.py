"""Adverse events: the CTCAE v5.0 dictionary, the API, validation and the SAE clock.

CTCAE v5.0 (NCI, 2017-11-27): an empty grade cell means the grade does not apply to the term.
ICH E2A: seriousness criteria; a serious AE is reported to the sponsor within 24 hours of
awareness; SUSARs are expedited within 7 days (fatal or life-threatening) or 15 days.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from adverse_events import services
from adverse_events.models import AdverseEvent, Attribution, CtcaeTerm, GradeEpisode
from adverse_events.validation import AttributionDraft, EpisodeDraft, validate
from edc.core.audit import change_reason, history
from edc.core.models import PendingTask
from subjects.models import Subject
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_exposure,
    make_site,
    make_subject,
    make_user,
    record_ae,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/adverse-events/"
#: SELECTs of one AE create by the API (test_create_reads_only_what_it_needs): the subject
#: (locked) with the term, the protocol's products with the subject's exposures, the locks.
SELECTS_PER_CREATE = 3
#: Savepoints of one AE create in a test (whose own transaction makes the service's atomic
#: a savepoint): the service's only; the rows are written inside it without one each
#: (``edc.core.audit.guarded_write``), none nested around the service.
SAVEPOINTS_PER_CREATE = 1
INFUSION = dt.date(2025, 2, 3)
FATIGUE, ANEMIA, NEUTROPENIA = "10016256", "10002272", "10029366"
UTC = dt.UTC


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


def csv_rows() -> list[dict[str, str]]:
    path = Path(settings.BASE_DIR) / "seeds" / "ctcae_v5.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def setting():
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    site_a, site_b = make_site(trial, "A1"), make_site(trial, "B1")
    nurse = make_user("ae_nurse", "site_staff", (trial, site_a))
    subject = make_subject(trial, site_a, protocol_version=version, status="on_treatment",
                           arm=version.arms.get(code="MONO"))
    make_exposure(subject, "MSC-IFNA", INFUSION)
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "nurse": nurse,
            "subject": subject, "msc": version.interventions.get(code="MSC-IFNA"),
            "ptx": version.interventions.get(code="NAB-PTX")}


def payload(setting, meddra_code=NEUTROPENIA, episodes=((3, 1, 6),), **overrides) -> dict:
    """An AE payload: ``episodes`` as (grade, start day, end day or None) after infusion."""
    eps = [{"grade": g, "start_date": days(s).isoformat(),
            "end_date": None if e is None else days(e).isoformat()} for g, s, e in episodes]
    body = {
        "subject": setting["subject"].pk,
        "term": CtcaeTerm.objects.get(meddra_code=meddra_code).pk,
        "onset_date": eps[0]["start_date"], "resolution_date": eps[-1]["end_date"],
        "grade_episodes": eps,
        "attributions": [{"intervention": setting["msc"].pk, "level": "possible"}],
        "action_taken": "dose_not_changed", "outcome": "recovered",
    }
    body.update(overrides)
    return body


def counts() -> tuple[int, ...]:
    return (AdverseEvent.objects.count(), GradeEpisode.objects.count(),
            Attribution.objects.count(), PendingTask.objects.count(),
            Subject.objects.filter(death_date__isnull=False).count())


# --- 1. the CTCAE v5.0 dictionary ---------------------------------------------------------------


def test_load_ctcae_loads_837_terms_idempotently():
    out = StringIO()
    call_command("load_ctcae", stdout=out)
    assert "837 created, 0 updated, 0 unchanged" in out.getvalue()
    out = StringIO()
    call_command("load_ctcae", stdout=out)
    assert "0 created, 0 updated, 837 unchanged" in out.getvalue()
    assert CtcaeTerm.objects.count() == 837
    assert CtcaeTerm.objects.exclude(grade_4="").count() == 837 - 286
    assert CtcaeTerm.objects.exclude(grade_5="").count() == 837 - 343
    assert CtcaeTerm.objects.get(meddra_code="10011914").allowed_grades() == (5,)


def test_every_term_accepts_exactly_its_csv_grades(setting):
    """All 837 terms x grades 1-5 through the validation the API and the admin use."""
    subject, onset = setting["subject"], days(2)
    terms = {t.meddra_code: t for t in CtcaeTerm.objects.all()}
    exposures = [(setting["msc"].pk, INFUSION)]
    drafts = [AttributionDraft(setting["msc"], "possible")]
    checked = 0
    for row in csv_rows():
        term = terms[row["meddra_code"]]
        csv_allowed = {g for g in range(1, 6) if row[f"grade_{g}"].strip()}
        for grade in range(1, 6):
            values = {"term": term, "onset_date": onset, "resolution_date": onset,
                      "verbatim_term": "verbatim"}
            if grade == 5:
                values.update(serious=True, sae_death=True, death_date=onset,
                              aware_at=dt.datetime(2025, 2, 6, tzinfo=UTC))
            try:
                validate(subject, values, [EpisodeDraft(grade, onset, onset)], drafts,
                         exposures=exposures)
                accepted = True
            except ValidationError as exc:
                assert set(exc.message_dict) == {"grade_episodes[0].grade"}, exc.message_dict
                accepted = False
            assert accepted == (grade in csv_allowed), (row["term"], grade)
            checked += 1
    assert checked == 837 * 5


@pytest.mark.parametrize(("code", "grade", "status"), [
    (FATIGUE, 3, 201), (FATIGUE, 4, 400), ("10016288", 1, 400), ("10016288", 3, 201),
])
def test_grades_via_http(api, setting, code, grade, status):
    api.force_authenticate(setting["nurse"])
    response = api.post(URL, payload(setting, code, ((grade, 1, 3),)), format="json")
    assert response.status_code == status, response.content
    if status == 400:
        (error,) = response.json()["errors"]
        assert error["field"] == "grade_episodes[0].grade"
        assert f"Grade {grade} does not apply" in error["message"]
    else:
        assert response.json()["grade"] == grade


def test_grade5_via_http_records_death(api, setting):
    api.force_authenticate(setting["nurse"])
    body = payload(setting, ANEMIA, ((4, 1, 2), (5, 3, 3)), serious=True, sae_death=True,
                   death_date=days(3).isoformat(), outcome="fatal",
                   aware_at="2025-02-06T08:00:00Z")
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    setting["subject"].refresh_from_db()
    assert setting["subject"].death_date == days(3)


def test_ctcae_search_by_term_and_code(api, setting):
    api.force_authenticate(setting["nurse"])
    hits = api.get("/api/v1/ctcae-terms/", {"search": "anemia"}).json()["results"]
    assert "Anemia" in {h["term"] for h in hits}
    (hit,) = api.get("/api/v1/ctcae-terms/", {"search": "10011914"}).json()["results"]
    assert (hit["term"], hit["allowed_grades"]) == ("Death NOS", [5])
    assert api.post("/api/v1/ctcae-terms/", {}).status_code == 405


# --- 4. validation: refused with the field named, nothing saved --------------------------------


def _set_subject_death(setting, on):
    with change_reason("death reported by the family"):
        Subject.objects.filter(pk=setting["subject"].pk).update(death_date=on)


@pytest.mark.parametrize(("case", "field", "words"), [
    ("grade_not_allowed", "grade_episodes[0].grade", "does not apply"),
    ("onset_before_consent", "onset_date", "before consent"),
    ("resolution_before_onset", "resolution_date", "before onset"),
    ("overlap", "grade_episodes[1].start_date", "overlaps"),
    ("gap", "grade_episodes[1].start_date", "Gap inside the AE"),
    ("grade5_without_death_date", "death_date", "needs the death date"),
    ("death_date_disagrees", "death_date", "disagrees with the subject's"),
    ("agent_never_given", "attributions[1].intervention", "never received NAB-PTX"),
    ("criteria_not_serious", "serious", "not marked serious"),
    ("serious_without_criterion", "serious", "at least one seriousness criterion"),
    ("other_specify_without_verbatim", "verbatim_term", "needs the verbatim term"),
    ("missing_attribution", "attributions", "missing: MSC-IFNA"),
])
def test_validation_refuses_and_saves_nothing(api, setting, case, field, words):
    fatal = {"serious": True, "sae_death": True, "outcome": "fatal",
             "aware_at": "2025-02-08T08:00:00Z"}
    body = {
        "grade_not_allowed": lambda: payload(setting, FATIGUE, ((4, 1, 3),)),
        "onset_before_consent": lambda: payload(setting, onset_date="2024-12-30",
                                                grade_episodes=[{"grade": 3,
                                                                 "start_date": "2024-12-30",
                                                                 "end_date": days(6).isoformat()}]),
        "resolution_before_onset": lambda: payload(setting, resolution_date=days(0).isoformat()),
        "overlap": lambda: payload(setting, episodes=((2, 1, 4), (3, 4, 8))),
        "gap": lambda: payload(setting, episodes=((2, 1, 4), (3, 6, 8))),
        "grade5_without_death_date": lambda: payload(setting, ANEMIA, ((3, 1, 2), (5, 3, 3)),
                                                     **fatal),
        "death_date_disagrees": lambda: payload(setting, ANEMIA, ((5, 3, 3),),
                                                death_date=days(3).isoformat(), **fatal),
        "agent_never_given": lambda: payload(setting, attributions=[
            {"intervention": setting["msc"].pk, "level": "possible"},
            {"intervention": setting["ptx"].pk, "level": "probable"}]),
        "criteria_not_serious": lambda: payload(setting, sae_hospitalization=True),
        "serious_without_criterion": lambda: payload(setting, serious=True,
                                                     aware_at="2025-02-05T10:00:00Z"),
        "other_specify_without_verbatim": lambda: payload(setting, "10018065"),
        "missing_attribution": lambda: payload(setting, attributions=[]),
    }[case]()
    if case == "death_date_disagrees":
        _set_subject_death(setting, days(4))
    api.force_authenticate(setting["nurse"])
    before = counts()
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert counts() == before


def test_services_refuse_the_same_without_http(setting):
    """The service layer validates on its own (admin, other apps), and saves nothing."""
    before = counts()
    with pytest.raises(ValidationError) as caught:
        record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(4)), (3, days(3), None)],
                  {"MSC-IFNA": "possible"})
    assert "grade_episodes[1].start_date" in caught.value.message_dict
    assert counts() == before


def test_update_needs_a_reason_and_is_audited(api, setting):
    api.force_authenticate(setting["nurse"])
    created = api.post(URL, payload(setting), format="json").json()
    url = f"{URL}{created['id']}/"
    response = api.patch(url, {"verbatim_term": "low ANC"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "reason"
    episode = created["grade_episodes"][0]
    response = api.patch(url, {
        "resolution_date": days(8).isoformat(), "reason": "discharge letter received",
        "grade_episodes": [{**episode, "end_date": days(5).isoformat()},
                           {"grade": 2, "start_date": days(6).isoformat(),
                            "end_date": days(8).isoformat()}],
    }, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert [e["grade"] for e in data["grade_episodes"]] == [3, 2]
    assert data["grade_episodes"][0]["id"] == episode["id"]
    rows = history(GradeEpisode.objects.get(pk=episode["id"]))
    assert rows[-1]["reason"] == "discharge letter received"
    assert rows[-1]["changes"]["end_date"] == [days(6), days(5)]
    audit = api.get(f"{url}history/").json()
    assert audit[-1]["changes"]["resolution_date"] == [days(6).isoformat(), days(8).isoformat()]
    assert api.delete(url).status_code == 405


def test_list_is_scoped_filtered_and_constant_in_queries(api, setting):
    other = make_subject(setting["trial"], setting["site_b"],
                         protocol_version=setting["trial"].current_version())
    make_exposure(other, "MSC-IFNA", INFUSION)
    for _ in range(3):
        record_ae(setting["subject"], NEUTROPENIA, [(2, days(1), days(3))],
                  {"MSC-IFNA": "unlikely"})
    record_ae(other, ANEMIA, [(3, days(1), days(3))], {"MSC-IFNA": "unlikely"})
    monitor = make_user("mon", "monitor", (setting["trial"], None))
    api.force_authenticate(setting["nurse"])
    assert len(api.get(URL).json()["results"]) == 3  # site A only
    api.force_authenticate(monitor)
    assert len(api.get(URL).json()["results"]) == 4
    assert len(api.get(URL, {"site": setting["site_b"].pk}).json()["results"]) == 1
    assert len(api.get(URL, {"grade": 3}).json()["results"]) == 1
    with CaptureQueriesContext(connection) as few:
        api.get(URL, {"page_size": 1})
    with CaptureQueriesContext(connection) as many:
        api.get(URL)
    assert len(many) == len(few)
    assert api.post(URL, payload(setting), format="json").status_code == 403


def test_create_reads_only_what_it_needs(api, setting, django_capture_on_commit_callbacks):
    """AE create reads the subject (locked), term and the protocol's products once each, the
    subject's exposures in the products' statement, after the lock (issue 19): the clinical
    checks run once, under the subject's lock, not also before it; the locks and signatures
    covering the new rows (of one subject) in one query; the outbox rows are sent after
    commit without being read back (issue 19); writes and savepoints are not counted."""
    api.force_authenticate(setting["nurse"])
    assert api.post(URL, payload(setting), format="json").status_code == 201  # warm caches
    body = payload(setting, meddra_code=ANEMIA)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(
            execute=True):
        response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    selects = [q["sql"] for q in queries
               if q["sql"].lstrip().startswith("SELECT") and "set_config" not in q["sql"]]
    assert len(selects) == SELECTS_PER_CREATE, "\n".join(s[:120] for s in selects)
    savepoints = [q for q in queries if re.search(r"(^|; )SAVEPOINT", q["sql"])]
    assert len(savepoints) == SAVEPOINTS_PER_CREATE
    lock_checks = [s for s in selects if 'FROM "data_management_lock"' in s]
    assert len(lock_checks) == 1  # the AE, its episodes and attributions: one subject
    queued = [q for q in queries if 'UPDATE "edc_pendingtask" SET "state"' in q["sql"]]
    assert len(queued) == 1  # the edit checks' and the DLT/TI evaluation's rows, sent together
    subject_reads = [s for s in selects if s.startswith('SELECT "subjects_subject"."id"')]
    assert len(subject_reads) == 1 and subject_reads[0].endswith(
        'FOR UPDATE OF "subjects_subject"'), subject_reads  # validated in scope, locked
    terms = [s for s in selects if 'FROM "adverse_events_ctcaeterm"' in s]
    assert terms == subject_reads  # the term read in the subject's statement
    exposures = [i for i, s in enumerate(selects) if 'FROM "visits_exposure"' in s]
    assert exposures == [selects.index(subject_reads[0]) + 1]  # after the lock


@pytest.mark.django_db(transaction=True)
def test_a_create_writes_the_tasks_it_queues_in_one_insert(api, setting, broker_messages):
    """The edit checks' and the DLT/TI evaluation's outbox rows of a new AE: one INSERT in its
    transaction, both sent to the broker after the commit (issue 19)."""
    api.force_authenticate(setting["nurse"])
    before = set(PendingTask.objects.values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        response = api.post(URL, payload(setting), format="json")
    assert response.status_code == 201, response.content
    inserted = [q for q in queries if 'INSERT INTO "edc_pendingtask"' in q["sql"]]
    assert len(inserted) == 1
    subject = response.json()["subject"]
    rows = PendingTask.objects.exclude(pk__in=before).order_by("task_name")
    assert [(r.task_name, r.args, r.state) for r in rows] == [
        ("adverse_events.tasks.evaluate_toxicity", [subject], "queued"),
        ("data_management.tasks.run_edit_checks", [subject], "queued")]
    assert sorted(broker_messages()) == sorted((r.task_name, r.args, r.pk) for r in rows)


@pytest.mark.django_db(transaction=True)
def test_a_create_waiting_on_the_subjects_lock_sees_the_exposure_committed_meanwhile(
        api, setting, broker_messages):
    """The subject's exposures are read after its lock is granted (with the protocol's
    products, issue 19), not in the snapshot of the locking statement: a create that waited
    for a transaction holding the subject's lock, which recorded an exposure, may attribute
    the AE to that product."""
    import threading
    import time

    recorded, committed = threading.Event(), []

    def record_exposure():
        try:
            with transaction.atomic():
                Subject.objects.select_for_update().get(pk=setting["subject"].pk)
                make_exposure(setting["subject"], "NAB-PTX", INFUSION)
                recorded.set()
                time.sleep(0.5)  # the create below waits on the subject's row meanwhile
                committed.append(time.monotonic())
        finally:
            connection.close()

    other = threading.Thread(target=record_exposure)
    other.start()
    assert recorded.wait(10)
    api.force_authenticate(setting["nurse"])
    body = payload(setting)
    body["attributions"].append({"intervention": setting["ptx"].pk, "level": "unlikely"})
    started = time.monotonic()
    response = api.post(URL, body, format="json")
    other.join()
    assert started < committed[0] < time.monotonic()  # it was waiting when that committed
    assert response.status_code == 201, response.content
    assert {a["intervention_code"] for a in response.json()["attributions"]} == {
        "MSC-IFNA", "NAB-PTX"}


def test_create_refuses_a_subject_out_of_scope_with_everything_else_wrong(api, setting):
    """The subject is looked up in the user's scope as a field (DRF's answer for an unknown
    one), reported with the other fields' errors, and nothing is saved."""
    other = make_subject(setting["trial"], setting["site_b"],
                         protocol_version=setting["trial"].current_version())
    api.force_authenticate(setting["nurse"])  # site A only
    before = counts()
    response = api.post(URL, payload(setting, subject=other.pk, term=0), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"field": "subject", "code": "does_not_exist",
         "message": f'Invalid pk "{other.pk}" - object does not exist.'},
        {"field": "term", "code": "does_not_exist",
         "message": 'Invalid pk "0" - object does not exist.'}]
    assert counts() == before


def test_create_reads_its_subject_in_the_scope_of_every_shape_of_memberships(api, setting):
    """The create's subject read, compiled once per shape of the user's memberships with the
    trial and site ids as parameters (``roles.scope_shape``), finds exactly the subjects
    ``roles.scope`` finds: a subject out of scope is DRF's unknown id, whatever the shape
    (one site, two sites, a whole trial, two trials, an admin, no membership)."""
    from django.contrib.auth.models import User

    from edc.core import roles

    trial, site_a, site_b = setting["trial"], setting["site_a"], setting["site_b"]
    site_c = make_site(trial, "C1")
    other_trial = load_seed_trial("NCT05962450")
    other_site = make_site(other_trial, "O1")
    version = trial.current_version()
    subjects = [setting["subject"], *(make_subject(trial, site, protocol_version=version)
                                      for site in (site_b, site_c)),
                make_subject(other_trial, other_site,
                             protocol_version=other_trial.current_version())]
    admin = User.objects.create_superuser("ae_admin", password="pw-for-tests-1")
    users = [setting["nurse"],
             make_user("two_sites", "site_staff", (trial, site_a), (trial, site_b)),
             make_user("whole", "investigator", (trial, None)),
             make_user("two_trials", "investigator", (trial, site_c), (other_trial, None)),
             make_user("mixed", "site_staff", (trial, None), (other_trial, other_site)),
             make_user("nowhere", "site_staff"), admin]
    shapes = set()
    for user in users:
        user = User.objects.get(pk=user.pk)  # memberships read afresh
        shape, ids = roles.scope_shape(user)
        shapes.add(shape)
        in_scope = set(roles.scope(Subject.objects.all(), user).values_list("pk", flat=True))
        assert set(roles.scoped_as(Subject.objects.all(), shape, ids).values_list(
            "pk", flat=True)) == in_scope, user
        api.force_authenticate(user)
        for subject in subjects:
            body = payload(setting, subject=subject.pk, attributions=[])
            errors = {e["field"]: e for e in api.post(URL, body, format="json").json().get(
                "errors", [])}
            if subject.pk in in_scope:
                assert "subject" not in errors, (user, subject, errors)
            else:
                assert errors["subject"] == {
                    "field": "subject", "code": "does_not_exist",
                    "message": f'Invalid pk "{subject.pk}" - object does not exist.'}, user
    assert len(shapes) == len(users) - 1  # two_trials and mixed: one statement, their ids


def test_create_refuses_an_unknown_term_read_with_its_subject(api, setting):
    """A term id that does not exist, read in the subject's statement: DRF's unknown id, and
    nothing saved; given as text, the subject and term are read as DRF reads them."""
    api.force_authenticate(setting["nurse"])
    before = counts()
    missing = CtcaeTerm.objects.order_by("-pk").values_list("pk", flat=True)[0] + 1
    response = api.post(URL, payload(setting, term=missing), format="json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == [
        {"field": "term", "code": "does_not_exist",
         "message": f'Invalid pk "{missing}" - object does not exist.'}]
    assert counts() == before
    body = payload(setting)
    body["subject"], body["term"] = str(body["subject"]), str(body["term"])
    response = api.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["meddra_code"] == NEUTROPENIA


def test_create_refuses_an_unknown_product_and_one_of_another_protocol(api, setting):
    """An attribution names a product by id: an unknown id is refused as DRF refuses it; a
    product of another protocol is not one the subject received. Each error names the item
    the same way (``attributions[0].intervention``), whichever check refused it."""
    other = load_seed_trial("NCT05962450").current_version().interventions.first()
    api.force_authenticate(setting["nurse"])
    before = counts()
    for intervention, field, message in (
            (0, "attributions[0].intervention", 'Invalid pk "0" - object does not exist.'),
            ("x", "attributions[0].intervention",
             "Incorrect type. Expected pk value, received str."),
            (other.pk, "attributions[0].intervention", "The subject never received")):
        body = payload(setting)
        body["attributions"] = [{"intervention": intervention, "level": "possible"}]
        response = api.post(URL, body, format="json")
        assert response.status_code == 400, response.content
        errors = {e["field"]: e["message"] for e in response.json()["errors"]}
        assert errors.get(field, "").startswith(message), errors
    assert counts() == before


def test_create_refuses_ids_beyond_the_database_integers_as_unknown(api, setting):
    """A term or product id no database integer holds is an id that does not exist (a 400 as
    DRF answers it), not a database error."""
    api.force_authenticate(setting["nurse"])
    before = counts()
    huge = 2**70
    body = payload(setting, term=huge)
    body["attributions"] = [{"intervention": huge, "level": "possible"}]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400, response.content
    errors = {e["field"]: e["code"] for e in response.json()["errors"]}
    assert errors == {"term": "does_not_exist", "attributions[0].intervention": "does_not_exist"}
    assert counts() == before


def test_create_under_a_lock_is_refused_and_saves_nothing(api, setting):
    """A freeze or lock of the subject or of its trial refuses a new AE: a JSON 4xx naming
    the AE, and nothing saved (no AE, episode, attribution or outbox row)."""
    from data_management import locks

    dm = make_user("ae_dm", "data_manager", (setting["trial"], None))
    api.force_authenticate(setting["nurse"])
    for level, record in (("subject", setting["subject"]), ("trial", setting["trial"])):
        locks.change_lock(dm, level, record, "freeze")
        before = counts()
        response = api.post(URL, payload(setting), format="json")
        assert response.status_code in (400, 409), response.content
        assert response.json()["errors"][0]["message"].startswith(
            f"This adverse event is read-only: its {level} "), response.content
        assert counts() == before
        locks.change_lock(dm, level, record, "unlock", reason="freeze lifted for the test")
    assert api.post(URL, payload(setting), format="json").status_code == 201


def test_a_new_ae_invalidates_the_subjects_signature_once(api, setting):
    """A new AE (with its episodes and attributions) changes a signed casebook: the signature
    is invalidated, once, naming the AE (21 CFR 11.70)."""
    from data_management import signatures

    investigator = make_user("ae_inv", "investigator", (setting["trial"], setting["site_a"]))
    signature = signatures.sign(investigator, setting["subject"], "pw-for-tests-1")
    api.force_authenticate(setting["nurse"])
    response = api.post(URL, payload(setting), format="json")
    assert response.status_code == 201, response.content
    signature.refresh_from_db()
    assert signature.state == "invalidated"
    assert signature.invalidated_reason == (
        f"Signed data changed after signing: adverse event #{response.json()['id']} added")
    assert [r["event"] for r in history(signature)] == ["insert", "update"]


def test_a_created_ae_is_answered_as_it_is_read(api, setting):
    """The create response is built from the rows just written (not read back): it is the
    record as a read of it shows it, episodes and attributions in the read's order."""
    api.force_authenticate(setting["nurse"])
    make_exposure(setting["subject"], "NAB-PTX", INFUSION)
    body = payload(setting, episodes=((3, 4, 6), (2, 1, 3)), serious=True,
                   sae_hospitalization=True, aware_at="2025-02-06T08:00:00Z",
                   resolution_date=days(6).isoformat(), onset_date=days(1).isoformat())
    body["attributions"] = [{"intervention": setting["ptx"].pk, "level": "unlikely"},
                            {"intervention": setting["msc"].pk, "level": "probable"}]
    created = api.post(URL, body, format="json")
    assert created.status_code == 201, created.content
    answer = created.json()
    assert [e["grade"] for e in answer["grade_episodes"]] == [2, 3]
    assert len(answer["attributions"]) == 2 and answer["sae"] is not None
    assert answer == api.get(f"{URL}{answer['id']}/").json()


# --- 5. the SAE clock -----------------------------------------------------------------------


def serious_ae(setting, aware_at, **values):
    return record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(6))],
                     {"MSC-IFNA": values.pop("level", "unlikely")}, serious=True,
                     sae_hospitalization=True, aware_at=aware_at, **values)


def test_sae_overdue_24_hours_after_awareness_and_cleared_by_the_report(api, setting):
    aware = dt.datetime(2025, 2, 5, 10, 0, tzinfo=UTC)
    ae = serious_ae(setting, aware)
    due = dt.datetime(2025, 2, 6, 10, 0, tzinfo=UTC)
    assert ae.sae_status(due) == "due"  # exactly at the deadline: still on time
    assert ae.sae_status(due + dt.timedelta(seconds=1)) == "overdue"
    assert services.raise_overdue_saes(now=due) == 0
    assert services.raise_overdue_saes(now=due + dt.timedelta(minutes=1)) == 1
    assert services.raise_overdue_saes(now=due + dt.timedelta(minutes=6)) == 0  # idempotent
    ae.refresh_from_db()
    assert ae.sae_overdue_raised_at == due + dt.timedelta(minutes=1)
    assert history(ae)[-1]["reason"].startswith("SAE report overdue")

    fresh = serious_ae(setting, dt.datetime.now(UTC) - dt.timedelta(hours=1))
    sponsor = make_user("sponsor", "sponsor", (setting["trial"], None))
    api.force_authenticate(sponsor)
    overdue = api.get(URL, {"sae_status": "overdue"}).json()["results"]
    assert [r["id"] for r in overdue] == [ae.pk]
    assert overdue[0]["sae"]["status"] == "overdue"
    assert [r["id"] for r in api.get(URL, {"sae_status": "due"}).json()["results"]] == [fresh.pk]
    assert len(api.get(URL, {"sae_status": "due,overdue",
                             "site": setting["site_a"].pk}).json()["results"]) == 2
    assert api.post(f"{URL}{ae.pk}/report-sae/").status_code == 403  # sponsor reads only

    api.force_authenticate(setting["nurse"])
    response = api.post(f"{URL}{ae.pk}/report-sae/", {}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["sae"]["status"] == "reported_late"
    assert api.get(URL, {"sae_status": "overdue"}).json()["results"] == []
    again = api.post(f"{URL}{ae.pk}/report-sae/", {}, format="json")
    assert again.status_code == 400 and again.json()["errors"][0]["field"] == "reported_at"
    assert history(AdverseEvent.objects.get(pk=ae.pk))[-1]["username"] == "ae_nurse"

    on_time = api.post(f"{URL}{fresh.pk}/report-sae/", {}, format="json").json()
    assert on_time["sae"]["status"] == "reported"
    assert services.raise_overdue_saes() == 0


def test_susar_expedited_deadlines(setting):
    aware = dt.datetime(2025, 2, 5, 10, 0, tzinfo=UTC)
    related_unexpected = serious_ae(setting, aware, level="possible")
    life_threatening = serious_ae(setting, aware, level="probable", sae_life_threatening=True)
    expected = serious_ae(setting, aware, level="definite", expected=True)
    not_serious = record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(6))],
                            {"MSC-IFNA": "definite"})
    assert related_unexpected.sae_deadlines().expedited_days == 15
    assert related_unexpected.sae_deadlines().expedited_due == aware + dt.timedelta(days=15)
    assert life_threatening.sae_deadlines().expedited_days == 7
    assert expected.sae_deadlines().expedited_due is None
    assert expected.sae_deadlines().report_due == aware + dt.timedelta(hours=24)
    assert not_serious.sae_deadlines() is None
    assert not_serious.sae_status(dt.datetime.now(UTC)) == "not_serious"


def test_report_of_a_non_serious_ae_is_refused(api, setting):
    ae = record_ae(setting["subject"], NEUTROPENIA, [(2, days(1), days(2))],
                   {"MSC-IFNA": "unlikely"})
    api.force_authenticate(setting["nurse"])
    response = api.post(f"{URL}{ae.pk}/report-sae/", {}, format="json")
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "serious"


def test_only_investigators_override_flags(api, setting):
    record_ae(setting["subject"], NEUTROPENIA, [(3, days(1), days(8))], {"MSC-IFNA": "possible"})
    services.evaluate_toxicity(setting["subject"].pk)
    investigator = make_user("inv", "investigator", (setting["trial"], setting["site_a"]))
    api.force_authenticate(setting["nurse"])
    (flag,) = api.get("/api/v1/toxicity-flags/", {"kind": "TI"}).json()["results"]
    assert flag["computed"] is True and "rule TI" in flag["reason"]
    url = f"/api/v1/toxicity-flags/{flag['id']}/override/"
    assert api.post(url, {"override": False, "reason": "x"}, format="json").status_code == 403
    api.force_authenticate(investigator)
    assert api.post(url, {"override": False}, format="json").status_code == 400
    response = api.post(url, {"override": False, "reason": "pre-existing neutropenia"},
                        format="json")
    assert response.status_code == 200
    assert (response.json()["effective"], response.json()["override_by"]) == (
        False, investigator.pk)
    assert api.get(URL, {"kind": "TI"}).json()["results"] == []
    assert api.get("/api/v1/toxicity-flags/", {"effective": "false"}).json()["results"]


# --- admin: same validation through the inlines, reason for change ----------------------------


def _admin_post(setting, episodes, reason=None, ae=None, **fields) -> dict:
    data = {"subject": setting["subject"].pk,
            "term": CtcaeTerm.objects.get(meddra_code=NEUTROPENIA).pk,
            "verbatim_term": "", "onset_date": episodes[0][1].isoformat(),
            "resolution_date": episodes[-1][2].isoformat(), "action_taken": "dose_not_changed",
            "outcome": "recovered", "aware_at_0": "", "aware_at_1": "", "death_date": "",
            **fields}
    existing = list(ae.grade_episodes.order_by("start_date")) if ae else []
    data.update({"grade_episodes-TOTAL_FORMS": len(episodes),
                 "grade_episodes-INITIAL_FORMS": len(existing),
                 "grade_episodes-MIN_NUM_FORMS": 0, "grade_episodes-MAX_NUM_FORMS": 1000})
    for i, (grade, start, end) in enumerate(episodes):
        data.update({f"grade_episodes-{i}-grade": grade,
                     f"grade_episodes-{i}-start_date": start.isoformat(),
                     f"grade_episodes-{i}-end_date": end.isoformat(),
                     f"grade_episodes-{i}-adverse_event": ae.pk if ae else "",
                     f"grade_episodes-{i}-id": existing[i].pk if i < len(existing) else ""})
    attribution = ae.attributions.get() if ae else None
    data.update({"attributions-TOTAL_FORMS": 1, "attributions-INITIAL_FORMS": int(bool(ae)),
                 "attributions-MIN_NUM_FORMS": 0, "attributions-MAX_NUM_FORMS": 1000,
                 "attributions-0-intervention": setting["msc"].pk,
                 "attributions-0-level": "possible",
                 "attributions-0-adverse_event": ae.pk if ae else "",
                 "attributions-0-id": attribution.pk if attribution else "",
                 "toxicity_flags-TOTAL_FORMS": 0, "toxicity_flags-INITIAL_FORMS": 0,
                 "toxicity_flags-MIN_NUM_FORMS": 0, "toxicity_flags-MAX_NUM_FORMS": 1000})
    if reason is not None:
        data["reason_for_change"] = reason
    return data


def test_admin_validates_inlines_and_asks_for_a_reason(client, setting):
    investigator = make_user("admin_pi", "investigator", (setting["trial"], setting["site_a"]))
    client.force_login(investigator)
    add = "/admin/adverse_events/adverseevent/add/"
    assert client.get(add).status_code == 200
    before = counts()
    overlap = [(2, days(1), days(4)), (3, days(4), days(8))]
    response = client.post(add, _admin_post(setting, overlap))
    assert response.status_code == 200 and "overlaps" in response.content.decode()
    assert counts() == before

    response = client.post(add, _admin_post(setting, [(2, days(1), days(3)),
                                                      (3, days(4), days(8))]))
    assert response.status_code == 302, response.content.decode()[:3000]
    ae = AdverseEvent.objects.get()
    assert (ae.grade, ae.grade_episodes.count(), ae.attributions.get().level) == (
        3, 2, "possible")
    assert PendingTask.objects.filter(task_name="adverse_events.tasks.evaluate_toxicity",
                                      args=[setting["subject"].pk]).exists()

    change = f"/admin/adverse_events/adverseevent/{ae.pk}/change/"
    assert client.get(change).status_code == 200
    longer = [(2, days(1), days(3)), (3, days(4), days(9))]
    response = client.post(change, _admin_post(setting, longer, ae=ae,
                                               resolution_date=days(9).isoformat()))
    assert response.status_code == 200 and "reason for change is required" in (
        response.content.decode())
    response = client.post(change, _admin_post(setting, longer, ae=ae, reason="CRF corrected",
                                               resolution_date=days(9).isoformat()))
    assert response.status_code == 302, response.content.decode()[:3000]
    episode = ae.grade_episodes.get(grade=3)
    assert episode.end_date == days(9)
    assert history(episode)[-1]["reason"] == "CRF corrected"
    assert client.get("/admin/adverse_events/toxicityflag/").status_code == 200
    assert client.get("/admin/adverse_events/ctcaeterm/?q=anemia").status_code == 200
