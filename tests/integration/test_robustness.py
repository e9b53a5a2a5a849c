"""Robustness of the JSON API and the admin: request limits, idempotency keys, optimistic
concurrency (ETag / If-Match, admin versions) and the OpenAPI description of /history/."""

from __future__ import annotations

import datetime as dt
import html
import re
import threading

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from knox.models import AuthToken

from data_management.models import Query
from edc.core.audit import change_reason
from edc.core.models import IdempotencyRecord
from subjects.models import Site, Subject
from tests.factories import make_dm_exposure, make_dm_visit, make_site, make_subject, make_trial
from tests.factories import make_user as _make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"


@pytest.fixture
def world():
    trial = make_trial()
    site = make_site(trial, "01")
    subject = make_subject(trial, site, subject_number="R-001")
    visit = make_dm_visit(subject, "C1", actual_date=dt.date(2025, 2, 1), status="done")
    return {"trial": trial, "site": site, "subject": subject, "visit": visit,
            "exposure": make_dm_exposure(visit, "70.00"),
            "nurse": _make_user("nurse", "site_staff", (trial, site)),
            "monitor": _make_user("cra", "monitor", (trial, None))}


def token_for(user) -> str:
    return AuthToken.objects.create(user=user)[1]


def errors(response) -> list[dict]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = response.json()
    assert set(body) == {"errors"} and body["errors"]
    assert all(set(e) == {"field", "code", "message"} for e in body["errors"])
    return body["errors"]


def subject_body(world, number: str) -> dict:
    return {"trial": world["trial"].pk, "site": world["site"].pk, "screening_number": number,
            "sex": "F", "age_at_consent": 50, "consent_date": "2025-01-02"}


# ---------------------------------------------------------------- request limits

def test_100000_deep_json_is_a_400_in_the_error_shape(api, world):
    api.force_authenticate(world["nurse"])
    body = "[" * 100_000 + "]" * 100_000
    response = api.post("/api/v1/subjects/", body, content_type="application/json")
    assert response.status_code == 400
    assert errors(response)[0]["code"] == "parse_error"


def test_5000_deep_grade_episodes_is_a_400(api, world):
    api.force_authenticate(world["nurse"])
    deep = "[" * 5000 + "]" * 5000
    body = (f'{{"subject": {world["subject"].pk}, "term": 1, "onset_date": "2025-02-01", '
            f'"grade_episodes": {deep}}}')
    response = api.post("/api/v1/adverse-events/", body, content_type="application/json")
    assert response.status_code == 400
    assert "nested deeper" in errors(response)[0]["message"]


def test_json_within_the_depth_limit_is_parsed(api, world):
    api.force_authenticate(world["nurse"])
    nested = "[" * 5 + "]" * 5
    brackets = "[" * 40  # inside a string: not nesting
    body = f'{{"screening_number": "{brackets}", "x": {nested}}}'
    response = api.post("/api/v1/subjects/", body, content_type="application/json")
    assert response.status_code == 400  # invalid subject, but parsed: fields are named
    assert {e["field"] for e in errors(response)} >= {"trial", "site"}


def test_a_10_mb_body_is_a_413_in_the_error_shape(api, world):
    api.force_authenticate(world["nurse"])
    body = '{"screening_number": "%s"}' % ("x" * 10_000_000)
    response = api.post("/api/v1/subjects/", body, content_type="application/json")
    assert response.status_code == 413
    assert errors(response)[0]["code"] == "request_too_large"
    assert not Subject.objects.filter(screening_number__startswith="xxx").exists()


# ---------------------------------------------------------------- idempotency keys

def test_an_over_long_idempotency_key_is_refused_before_anything_is_saved(api, world):
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world['nurse'])}")
    response = api.post("/api/v1/subjects/", subject_body(world, "K-1"), format="json",
                        HTTP_IDEMPOTENCY_KEY="k" * 201)
    assert response.status_code == 400
    assert errors(response)[0]["field"] == "Idempotency-Key"
    assert not Subject.objects.filter(screening_number="K-1").exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_200_character_key_is_replayed_exactly(api, world):
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world['nurse'])}")
    key = "k" * 200
    first = api.post("/api/v1/subjects/", subject_body(world, "K-2"), format="json",
                     HTTP_IDEMPOTENCY_KEY=key)
    again = api.post("/api/v1/subjects/", subject_body(world, "K-2"), format="json",
                     HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]
    assert again["Idempotent-Replayed"] == "true"
    assert Subject.objects.filter(screening_number="K-2").count() == 1


def test_a_failed_request_releases_its_key(api, world):
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(world['nurse'])}")
    bad = api.post("/api/v1/subjects/", {**subject_body(world, "K-3"), "sex": "?"},
                   format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert bad.status_code == 400
    good = api.post("/api/v1/subjects/", {**subject_body(world, "K-3"), "sex": "?"},
                    format="json", HTTP_IDEMPOTENCY_KEY="retry-me")
    assert good.status_code == 400 and "Idempotent-Replayed" not in good
    assert not IdempotencyRecord.objects.exists()


def test_a_key_in_progress_is_a_409_and_a_dead_claim_is_taken_over(api, world):
    """A claim whose request is still running answers 409; one older than
    IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS (its process died) is taken over by the retry."""
    import hashlib
    import json

    nurse = world["nurse"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token_for(nurse)}")
    body = json.dumps(subject_body(world, "K-4"))
    fingerprint = hashlib.sha256(b"POST/api/v1/subjects/" + body.encode()).hexdigest()
    claim = IdempotencyRecord.objects.create(user=nurse, key="k-4", fingerprint=fingerprint)
    busy = api.post("/api/v1/subjects/", body, content_type="application/json",
                    HTTP_IDEMPOTENCY_KEY="k-4")
    assert busy.status_code == 409
    assert errors(busy)[0]["code"] == "idempotency_key_in_progress"
    assert not Subject.objects.filter(screening_number="K-4").exists()
    IdempotencyRecord.objects.filter(pk=claim.pk).update(
        created_at=claim.created_at
        - dt.timedelta(seconds=settings.IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS + 1))
    retried = api.post("/api/v1/subjects/", body, content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY="k-4")
    assert retried.status_code == 201
    assert IdempotencyRecord.objects.get().status_code == 201


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_posts_with_one_key_create_one_record(world):
    """Eight clients send the same first POST at once: the key is claimed before the work
    starts, so one query is opened; the others get 409 (in progress) or the replay."""
    token = token_for(world["monitor"])
    body = {"form": "visits.exposure", "object_id": world["exposure"].pk,
            "field_name": "weight_kg", "text": "Source says 72 kg"}
    barrier = threading.Barrier(8)
    statuses = []

    def post():
        client = Client()
        barrier.wait()
        try:
            response = client.post("/api/v1/queries/", body, content_type="application/json",
                                   HTTP_AUTHORIZATION=f"Token {token}",
                                   HTTP_IDEMPOTENCY_KEY="same-key")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Query.objects.count() == 1
    assert 201 in statuses and set(statuses) <= {201, 409}, statuses
    assert IdempotencyRecord.objects.get().status_code == 201


# ---------------------------------------------------------------- optimistic concurrency

def test_reads_carry_an_etag_and_a_stale_if_match_is_refused(api, world):
    api.force_authenticate(world["nurse"])
    url = f"/api/v1/subjects/{world['subject'].pk}/"
    etag = api.get(url)["ETag"]
    assert etag
    first = api.patch(url, {"age_at_consent": 51, "reason": "typo"}, format="json",
                      HTTP_IF_MATCH=etag)
    assert first.status_code == 200, first.content
    assert first["ETag"] != etag
    stale = api.patch(url, {"age_at_consent": 52, "reason": "another typo"}, format="json",
                      HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert errors(stale)[0]["code"] == "precondition_failed"
    assert Subject.objects.get(pk=world["subject"].pk).age_at_consent == 51
    fresh = api.patch(url, {"age_at_consent": 52, "reason": "another typo"}, format="json",
                      HTTP_IF_MATCH=first["ETag"])
    assert fresh.status_code == 200
    assert api.get(url)["ETag"] == fresh["ETag"]


def test_detail_actions_honour_if_match(api, world):
    api.force_authenticate(world["monitor"])
    opened = api.post("/api/v1/queries/", {
        "form": "visits.exposure", "object_id": world["exposure"].pk,
        "field_name": "weight_kg", "text": "Source says 72 kg"}, format="json")
    url = f"/api/v1/queries/{opened.json()['id']}/"
    seen = api.get(url)["ETag"]
    api.force_authenticate(world["nurse"])
    assert api.post(f"{url}answer/", {"text": "checked: 70 kg"},
                    format="json").status_code == 200
    api.force_authenticate(world["monitor"])
    stale = api.post(f"{url}close/", {"text": "ok"}, format="json", HTTP_IF_MATCH=seen)
    assert stale.status_code == 412
    assert Query.objects.get().state == "answered"
    current = api.get(url)["ETag"]
    assert api.post(f"{url}close/", {"text": "ok"}, format="json",
                    HTTP_IF_MATCH=current).status_code == 200


def test_the_admin_refuses_a_save_over_a_newer_version(client, world):
    root = User.objects.create_superuser("root", password=PASSWORD)
    client.force_login(root)
    site = world["site"]
    url = reverse("admin:subjects_site_change", args=[site.pk])
    page = client.get(url).content.decode()
    version = html.unescape(re.search(r'name="loaded_version" value="([^"]+)"', page)[1])
    with change_reason("city corrected by a colleague"):
        Site.objects.filter(pk=site.pk).update(city="Lyon")  # a bulk update: a new version too
    form = {"trial": world["trial"].pk, "code": "01", "name": "Renamed", "city": "Paris",
            "country": "", "reason_for_change": "rename", "loaded_version": version}
    refused = client.post(url, form)
    assert refused.status_code == 200
    assert "Someone else changed this record" in refused.content.decode()
    assert Site.objects.get(pk=site.pk).city == "Lyon"
    page = client.get(url).content.decode()
    form["loaded_version"] = html.unescape(
        re.search(r'name="loaded_version" value="([^"]+)"', page)[1])
    saved = client.post(url, form)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert Site.objects.get(pk=site.pk).name == "Renamed"


# ---------------------------------------------------------------- OpenAPI

def test_history_endpoints_are_documented_as_the_arrays_they_return(api, world):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    history = {path: ops["get"]["responses"]["200"]["content"]["application/json"]["schema"]
               for path, ops in schema["paths"].items() if path.endswith("/history/")}
    assert len(history) >= 8
    assert {path: s.get("type") for path, s in history.items()} == dict.fromkeys(history,
                                                                               "array")
    api.force_authenticate(world["nurse"])
    rows = api.get(f"/api/v1/subjects/{world['subject'].pk}/history/").json()
    assert isinstance(rows, list) and set(rows[0]) == {"at", "event", "user", "username",
                                                       "reason", "changes"}


def test_412_and_413_are_documented():
    from edc.core.api.schema import ERRORS

    assert {"412", "413", "429"} <= set(ERRORS)
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE < 10_000_000
