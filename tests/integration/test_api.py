"""API behaviour shared by every endpoint: query counts per page, idempotency keys."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from subjects.enrollment import enroll
from subjects.models import Subject
from tests.factories import load_seed_trial, make_eligible, make_subject, make_user

pytestmark = pytest.mark.django_db


def _fill(trial, site, n: int) -> None:
    for _ in range(n):
        enroll(make_eligible(make_subject(trial, site, age_at_consent=50)),
               enrolled_on=dt.date(2025, 1, 6))


def _queries(api, user, url: str) -> int:
    from django.contrib.auth.models import User

    api.force_authenticate(User.objects.get(pk=user.pk))  # no per-user caches carried over
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(url)
    assert response.status_code == 200, (url, response.content)
    return len(ctx.captured_queries)


#: Queries of a list page (force-authenticated: no token read): the user's roles with the
#: memberships and the masking of their trials (one query, issue 19), the page, and per page
#: what the rows need (visits: the protocol's masking groups), never per row.
@pytest.mark.parametrize(("url", "expected"), [
    ("/api/v1/subjects/?page_size={n}", 2),
    ("/api/v1/subjects/?page_size={n}&trial={trial}", 2),  # checked against the memberships
    ("/api/v1/visits/?page_size={n}", 3),
    ("/api/v1/visits/?page_size={n}&subject__trial={trial}", 3),
    ("/api/v1/sites/?page_size={n}", 2),
    ("/api/v1/trials/?page_size={n}", 2),
])
def test_list_pages_cost_a_constant_number_of_queries(api, url, expected):
    trial = load_seed_trial("NCT06722105")  # blinded: arm labels are resolved per row
    from subjects.models import Site

    site = Site.objects.create(trial=trial, code="P1", name="Site P1")
    nurse = make_user("counting_nurse", "site_staff", (trial, site))
    _fill(trial, site, 5)
    small = _queries(api, nurse, url.format(n=5, trial=trial.pk))
    _fill(trial, site, 45)
    large = _queries(api, nurse, url.format(n=50, trial=trial.pk))
    assert small == large == expected, url


@pytest.mark.parametrize("url", ["/api/v1/subjects/?trial={trial}",
                                 "/api/v1/visits/?subject__trial={trial}"])
def test_a_trial_filter_accepts_only_the_users_trials(api, url):
    mine, other = load_seed_trial("NCT06722105"), load_seed_trial("NCT05699811")
    nurse = make_user("filtering_nurse", "site_staff", (mine, mine.sites.first()))
    api.force_authenticate(nurse)
    assert api.get(url.format(trial=mine.pk)).status_code == 200
    for value in (other.pk, "x"):
        refused = api.get(url.format(trial=value))
        assert refused.status_code == 400, refused.content
        assert refused.json()["errors"][0]["code"] == "invalid_choice"


def test_idempotency_key_replays_the_first_response(api):
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=make_user("integration", "site_staff",
                                                       (trial, site)))
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    body = {"trial": trial.pk, "site": site.pk, "screening_number": "LAB-77", "sex": "M",
            "age_at_consent": 61, "consent_date": "2025-01-02"}
    first = api.post("/api/v1/subjects/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post("/api/v1/subjects/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Subject.objects.filter(screening_number="LAB-77").count() == 1
    other = api.post("/api/v1/subjects/", {**body, "screening_number": "LAB-78"},
                     format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency_key_reused"
    assert not Subject.objects.filter(screening_number="LAB-78").exists()


def test_errors_share_one_shape(api):
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    api.force_authenticate(make_user("shape", "site_staff", (trial, site)))
    bad = api.post("/api/v1/subjects/", {"sex": "X"}, format="json")
    assert bad.status_code == 400
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"sex", "trial", "site", "consent_date", "screening_number"} <= fields
    assert all(set(e) == {"field", "code", "message"} for e in bad.json()["errors"])
    missing = api.get("/api/v1/subjects/999999/")
    assert missing.status_code == 404
    assert set(missing.json()["errors"][0]) == {"field", "code", "message"}
    api.force_authenticate(None)
    assert api.get("/api/v1/subjects/").status_code in (401, 403)
