"""Screening, eligibility, enrollment, randomization under concurrency, blinding."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter, defaultdict

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from edc.core.api.concurrency import etag_for
from edc.core.audit import history
from subjects.enrollment import enroll
from subjects.models import RandomizationSlot, Subject, Unblinding
from tests.factories import (
    load_seed_trial,
    make_eligible,
    make_site,
    make_subject,
    make_user,
)

ENROLL_DAY = dt.date(2025, 3, 3)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_enrollments_get_distinct_balanced_allocations():
    trial = load_seed_trial("NCT05962450")  # 1:1 RPI vs RP, block randomization
    site = trial.sites.first()
    nurse = make_user("concurrent_nurse", "site_staff", (trial, site))
    subjects = [make_eligible(make_subject(trial, site, age_at_consent=55))
                for _ in range(50)]
    results: dict[int, int] = {}
    barrier = threading.Barrier(10)

    def worker(chunk):
        client = APIClient()
        client.force_authenticate(nurse)
        try:
            barrier.wait()
            for subject in chunk:
                response = client.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                                       {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
                results[subject.pk] = response.status_code
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(subjects[i::10],)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 50 and set(results.values()) == {200}, Counter(results.values())
    slots = list(RandomizationSlot.objects.filter(trial=trial, subject__isnull=False))
    assert len(slots) == 50
    assert len({s.subject_id for s in slots}) == 50
    assert len({s.sequence for s in slots}) == 50
    enrolled = Subject.objects.filter(trial=trial, status="enrolled")
    assert enrolled.count() == 50
    assert len(set(enrolled.values_list("subject_number", flat=True))) == 50
    for subject in enrolled.select_related("randomization_slot"):
        assert subject.arm_id == subject.randomization_slot.arm_id
    blocks = defaultdict(list)
    for slot in RandomizationSlot.objects.filter(trial=trial).select_related("arm"):
        blocks[slot.block_number].append(slot)
    complete = [b for b in blocks.values() if all(s.subject_id for s in b)]
    assert complete
    for block in complete:
        counts = Counter(s.arm.code for s in block)
        assert counts["RPI"] == counts["RP"] == len(block) // 2


@pytest.fixture
def blinded():
    trial = load_seed_trial("NCT06722105")
    from subjects.models import Site

    site = Site.objects.create(trial=trial, code="P1", name="Hôpital Saint-Louis")
    nurse = make_user("blind_nurse", "site_staff", (trial, site))
    unblinded = make_user("stat", "data_manager", (trial, None), unblinded=True)
    investigator = make_user("pi", "investigator", (trial, site))
    subject = make_eligible(make_subject(trial, site, age_at_consent=40))
    from subjects.enrollment import enroll

    enroll(subject, enrolled_on=ENROLL_DAY)
    subject.refresh_from_db()
    return {"trial": trial, "subject": subject, "nurse": nurse, "unblinded": unblinded,
            "investigator": investigator}


TRUE_LABELS = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO_M0")


def _leaks(text: str) -> list[str]:
    return [label for label in TRUE_LABELS if label in text]


@pytest.mark.django_db
def test_blinded_user_cannot_find_the_arm_anywhere(api, client, blinded):
    subject = blinded["subject"]
    assert subject.arm is not None
    api.force_authenticate(blinded["nurse"])
    detail = api.get(f"/api/v1/subjects/{subject.pk}/")
    assert detail.json()["arm_label"] == "Blinded"  # one label for every subject
    probes = [
        f"/api/v1/subjects/{subject.pk}/",
        "/api/v1/subjects/",
        f"/api/v1/subjects/?arm={subject.arm_id}",
        f"/api/v1/subjects/?arm__code={subject.arm.code}",
        "/api/v1/subjects/?ordering=arm",
        "/api/v1/subjects/?ordering=arm__code",
        f"/api/v1/subjects/{subject.pk}/history/",
        f"/api/v1/visits/?subject={subject.pk}",
    ]
    for url in probes:
        response = api.get(url)
        assert response.status_code == 200, url
        assert _leaks(response.content.decode()) == [], url
    # Filtering by arm is not possible: the parameter is ignored, so both arms come back alike.
    assert (api.get(f"/api/v1/subjects/?arm={subject.arm_id}").json()["results"]
            == api.get("/api/v1/subjects/").json()["results"])
    history_rows = api.get(f"/api/v1/subjects/{subject.pk}/history/").json()
    assert all("arm_id" not in row["changes"] for row in history_rows)
    assert any("arm_id" in row["changes"] for row in history(subject))  # it is audited

    client.force_login(blinded["nurse"])
    for url in (f"/admin/subjects/subject/{subject.pk}/change/", "/admin/subjects/subject/",
                "/admin/trials/arm/", "/admin/subjects/randomizationslot/"):
        page = client.get(url)
        assert page.status_code in (200, 302, 403, 404), url
        assert _leaks(page.content.decode()) == [], url

    api.force_authenticate(blinded["unblinded"])
    assert api.get(f"/api/v1/subjects/{subject.pk}/").json()["arm_label"] == subject.arm.label


@pytest.mark.django_db
def test_emergency_unblinding_reveals_one_subject_and_is_recorded(api, blinded):
    subject = blinded["subject"]
    api.force_authenticate(blinded["nurse"])
    refused = api.post(f"/api/v1/subjects/{subject.pk}/unblind/",
                       {"reason": "Severe anaphylaxis, treating physician needs the arm"},
                       format="json")
    assert refused.status_code == 403
    api.force_authenticate(blinded["investigator"])
    no_reason = api.post(f"/api/v1/subjects/{subject.pk}/unblind/", {}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json()["errors"][0]["field"] == "reason"
    response = api.post(f"/api/v1/subjects/{subject.pk}/unblind/",
                        {"reason": "Severe anaphylaxis, treating physician needs the arm"},
                        format="json")
    assert response.status_code == 200
    assert response.json()["arm"] == subject.arm.label
    record = Unblinding.objects.get(subject=subject)
    assert record.requested_by == blinded["investigator"]
    assert history(record)[0]["reason"].startswith("emergency unblinding")
    # Still blinded for everything else.
    assert api.get(f"/api/v1/subjects/{subject.pk}/").json()["arm_label"] == "Blinded"


@pytest.fixture
def screening():
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    nurse = make_user("screen_nurse", "site_staff", (trial, site))
    return {"trial": trial, "site": site, "nurse": nurse}


@pytest.mark.django_db
def test_ineligible_subject_is_refused_naming_the_criteria(api, screening):
    subject = make_eligible(make_subject(screening["trial"], screening["site"],
                                         age_at_consent=80))
    exclusion = subject.protocol_version.criteria.filter(kind="exclusion").first()
    answer = subject.eligibility_answers.get(criterion=exclusion)
    from edc.core.audit import change_reason

    with change_reason("brain metastases found on MRI"):
        answer.met = True
        answer.save()
    api.force_authenticate(screening["nurse"])
    response = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                        {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert response.status_code == 409
    messages = [e["message"] for e in response.json()["errors"]]
    assert f"exclusion {exclusion.number} present: {exclusion.text[:100]}" in messages
    assert "age 80 at consent is above the maximum 75" in messages
    subject.refresh_from_db()
    assert (subject.status, subject.arm_id, subject.subject_number) == ("screening", None, "")


@pytest.mark.django_db
def test_unanswered_criteria_and_dates_are_refused(api, screening):
    subject = make_subject(screening["trial"], screening["site"], age_at_consent=50)
    api.force_authenticate(screening["nurse"])
    response = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                        {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert response.status_code == 409
    assert "inclusion 2 not answered" in [e["message"] for e in response.json()["errors"]]
    make_eligible(subject)
    early = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                     {"enrolled_on": "2024-12-31"}, format="json")
    assert early.status_code == 400
    assert early.json()["errors"][0]["field"] == "consent_date"
    future = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                      {"enrolled_on": "2999-01-01"}, format="json")
    assert future.status_code == 400
    assert future.json()["errors"][0]["field"] == "enrolled_on"
    created = api.post("/api/v1/subjects/", {
        "trial": screening["trial"].pk, "site": screening["site"].pk,
        "screening_number": "FUT-1", "sex": "F", "age_at_consent": 40,
        "consent_date": "2999-01-01"}, format="json")
    assert created.status_code == 400
    assert created.json()["errors"][0]["field"] == "consent_date"
    subject.refresh_from_db()
    assert subject.status == "screening"


@pytest.mark.django_db
def test_an_enrollment_answers_with_the_version_it_stored_read_once(api, screening):
    """The answer's subject is read after the enrollment committed: its ETag is that read's
    version, not read a second time (issue 19), and a write naming it is accepted."""
    subject = make_eligible(make_subject(screening["trial"], screening["site"]))
    api.force_authenticate(screening["nurse"])
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                            {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert response.status_code == 200, response.content
    stored = Subject.objects.get(pk=subject.pk)
    assert response["ETag"] == etag_for(subject.pk, stored.updated_at)
    versions = [q for q in queries
                if q["sql"].startswith('SELECT "subjects_subject"."updated_at"')]
    assert versions == []
    changed = api.patch(f"/api/v1/subjects/{subject.pk}/", {"race": "ASIAN", "reason": "typo"},
                        format="json", HTTP_IF_MATCH=response["ETag"])
    assert changed.status_code == 200, changed.content


@pytest.mark.django_db
def test_an_enrollment_reads_its_subject_once_scoped_and_locked(api, screening):
    """The API's enroll reads the subject once, in scope and locked, and hands it to the
    service (issue 19: the view and the service each read it); the answer's read after the
    commit stays. A subject of another site is still not found (404), and nothing changes."""
    subject = make_eligible(make_subject(screening["trial"], screening["site"]))
    api.force_authenticate(screening["nurse"])
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                            {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert response.status_code == 200, response.content
    reads = [q["sql"] for q in queries if q["sql"].startswith('SELECT "subjects_subject"."id", ')
             and f'"subjects_subject"."id" = {subject.pk}' in q["sql"]]
    assert len(reads) == 2, reads  # the enrollment's, the answer's
    assert reads[0].endswith('FOR NO KEY UPDATE OF "subjects_subject"')
    assert "FOR NO KEY UPDATE" not in reads[1]
    assert f'"subjects_subject"."site_id" IN ({screening["site"].pk})' in reads[0]
    elsewhere = make_eligible(make_subject(screening["trial"],
                                           make_site(screening["trial"], "ELSEWHERE")))
    refused = api.post(f"/api/v1/subjects/{elsewhere.pk}/enroll/",
                       {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert refused.status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.status == "screening" and elsewhere.subject_number == ""


@pytest.mark.django_db
def test_an_enrollment_reads_no_protocol_text(api):
    """The protocol version is read without its document and texts (tens of KB) once its
    parsed protocol is known in the process: the subject's version and the trial's current
    one (is the trial stratified by site?)."""
    trial = load_seed_trial("NCT05962450")  # randomized: the stratification is read
    site = trial.sites.first()
    api.force_authenticate(make_user("text_nurse", "site_staff", (trial, site)))
    first, second = (make_eligible(make_subject(trial, site, age_at_consent=55))
                     for _ in range(2))
    assert api.post(f"/api/v1/subjects/{first.pk}/enroll/",
                    {"enrolled_on": ENROLL_DAY.isoformat()}, format="json").status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/api/v1/subjects/{second.pk}/enroll/",
                            {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
    assert response.status_code == 200, response.content
    versions = [q["sql"] for q in queries if '"trials_protocolversion"' in q["sql"]]
    assert versions
    for sql in versions:
        assert '"file_text"' not in sql and '"source_text"' not in sql and '"document"' not in sql
    second.refresh_from_db()
    assert second.arm_id is not None and second.visits.exists()


@pytest.mark.django_db
def test_sequential_cohort_closes_at_its_size(api, screening):
    api.force_authenticate(screening["nurse"])
    enrolled = []
    for _ in range(4):
        subject = make_eligible(make_subject(screening["trial"], screening["site"]))
        enrolled.append(api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                                 {"enrolled_on": ENROLL_DAY.isoformat()}, format="json"))
    assert [r.status_code for r in enrolled] == [200, 200, 200, 409]
    first = enrolled[0].json()
    assert first["cohort"] == 1
    assert first["arm_label"] == "MSC-IFNα monotherapy"
    assert first["usubjid"] == f"NCT05699811-{screening['site'].code}-{first['subject_number']}"
    assert "cohort 2 opens when an investigator confirms" in enrolled[3].json()[
        "errors"][0]["message"]
    levels = Subject.objects.filter(trial=screening["trial"], status="enrolled").values_list(
        "dose_level__code", flat=True)
    assert set(levels) == {"DL1"}
    assert Subject.objects.get(pk=enrolled[0].json()["id"]).visits.filter(code="C1").exists()


@pytest.mark.django_db
def test_illegal_status_transitions_are_refused(api, screening):
    subject = make_subject(screening["trial"], screening["site"])
    api.force_authenticate(screening["nurse"])
    response = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                        {"status": "follow_up", "on": "2025-02-01", "reason": "progression"},
                        format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "status", "code": "invalid",
        "message": "a subject cannot go from screening to follow_up; allowed: enrolled, "
                   "screen_failure"}
    failed = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                      {"status": "screen_failure", "on": "2025-02-01",
                       "reason": "ECOG 3 at screening"}, format="json")
    assert failed.status_code == 200
    again = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                     {"status": "enrolled", "on": "2025-02-02", "reason": "retry"},
                     format="json")
    assert again.status_code == 400
    assert "final status" in again.json()["errors"][0]["message"]
    subject.refresh_from_db()
    assert (subject.status, subject.status_reason) == ("screen_failure", "ECOG 3 at screening")


@pytest.mark.django_db
def test_status_reason_codes_are_in_the_schema_and_checked_as_the_reason(api, screening):
    """The off-study and treatment-stop reasons are fixed codes (subjects.lifecycle): the
    OpenAPI schema lists them, and a free-text reason is refused on the ``reason`` field."""
    from subjects import lifecycle

    api.force_authenticate(screening["nurse"])
    schema = api.get("/api/schema/", {"format": "json"}).json()
    reason = schema["components"]["schemas"]["StatusRequest"]["properties"]["reason"]
    enums = [set(option.get("enum", ())) for option in reason["oneOf"]]
    assert set(lifecycle.OFF_STUDY_REASONS) in enums
    assert set(lifecycle.TREATMENT_STOP_REASONS) in enums
    subject = enroll(make_eligible(make_subject(screening["trial"], screening["site"])),
                     enrolled_on=dt.date(2025, 1, 6))
    response = api.post(f"/api/v1/subjects/{subject.pk}/status/",
                        {"status": "off_study", "on": "2025-02-01", "reason": "moved away"},
                        format="json")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "reason"
    assert "lost_to_follow_up" in error["message"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrollments_at_two_sites_never_overfill_a_cohort():
    """A dose cohort is trial-wide: nurses of two sites enrolling at once fill cohort 1 to its
    size (3, seed NCT05699811) and no further; every other request is refused with 409."""
    from subjects.models import Site

    trial = load_seed_trial("NCT05699811")
    sites = [trial.sites.first(), Site.objects.create(trial=trial, code="99", name="Second")]
    nurses = [make_user(f"cohort_nurse_{i}", "site_staff", (trial, site))
              for i, site in enumerate(sites)]
    subjects = [[make_eligible(make_subject(trial, site)) for _ in range(4)] for site in sites]
    results: list[int] = []
    barrier = threading.Barrier(8)

    def worker(nurse, subject):
        client = APIClient()
        client.force_authenticate(nurse)
        try:
            barrier.wait()
            response = client.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                                   {"enrolled_on": ENROLL_DAY.isoformat()}, format="json")
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(nurses[i], subject))
               for i in range(2) for subject in subjects[i]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == [200] * 3 + [409] * 5, Counter(results)
    enrolled = Subject.objects.filter(trial=trial, status="enrolled")
    assert enrolled.count() == 3
    assert set(enrolled.values_list("cohort", flat=True)) == {1}
