"""Issue 19: what a list page builds once per process (filterset classes, serializer fields) or
reads with the token (roles, memberships) still answers every request as its own user: the
masking, the scoping and the withheld fields of one user never reach the next one."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken

from subjects.enrollment import enroll
from subjects.models import Site
from tests.factories import load_seed_trial, make_eligible, make_subject, make_user
from trials.blinding import BLINDED_ARM

pytestmark = pytest.mark.django_db


@pytest.fixture
def blinded():
    """The blinded seed trial with two sites and three enrolled subjects at each."""
    trial = load_seed_trial("NCT06722105")
    sites = [Site.objects.create(trial=trial, code=code, name=f"Site {code}")
             for code in ("C1", "C2")]
    for site in sites:
        for _ in range(3):
            enroll(make_eligible(make_subject(trial, site, age_at_consent=50,
                                              birth_date=dt.date(1975, 1, 1))),
                   enrolled_on=dt.date(2025, 1, 6))
    return trial, sites


def _as(api, user):
    api.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return api


def test_a_token_list_page_reads_roles_memberships_and_lock_out_with_the_token(api, blinded):
    trial, (site, _) = blinded
    _as(api, make_user("token_nurse", "site_staff", (trial, site)))
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/subjects/?trial={trial.pk}")
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 3
    statements = [q["sql"] for q in queries]
    # the token with its user, roles, memberships and the lock-out count; the page
    assert len(statements) == 2, statements
    assert sum('"auth_user_groups"' in sql for sql in statements) == 1
    assert sum('"axes_accessattempt"' in sql for sql in statements) == 1
    assert all(table in statements[0] for table in (
        '"knox_authtoken"', '"subjects_membership"', '"axes_accessattempt"'))


def test_masking_and_withheld_fields_follow_each_request_not_the_first(api, blinded):
    """Alternating users on the same list and detail: the blinded see ``Blinded``, the
    unblinded the arm; the sponsor no birth date, the data manager theirs."""
    trial, _ = blinded
    unblinded = make_user("open_dm", "data_manager", (trial, None), unblinded=True)
    dm = make_user("blind_dm", "data_manager", (trial, None))
    sponsor = make_user("blind_sponsor", "sponsor", (trial, None))
    for user in (unblinded, sponsor, dm, unblinded, dm, sponsor):
        rows = _as(api, user).get(f"/api/v1/subjects/?trial={trial.pk}").json()["results"]
        detail = api.get(f"/api/v1/subjects/{rows[0]['id']}/").json()
        assert len(rows) == 6
        for row in (*rows, detail):
            assert row["usubjid"].startswith(f"{trial.registry_id}-C")
            if user is unblinded:
                assert row["arm_label"] not in (None, BLINDED_ARM), row
            else:
                assert row["arm_label"] == BLINDED_ARM, (user, row)
            assert ("birth_date" in row) is (user is not sponsor), (user, row)
        if user is not sponsor:
            assert {row["birth_date"] for row in rows} == {"1975-01-01"}


def test_a_site_filter_is_scoped_per_request(api, blinded):
    """The filterset class is built once; each request's site choices are its user's."""
    trial, (mine, theirs) = blinded
    nurse = make_user("site_one_nurse", "site_staff", (trial, mine))
    other = make_user("site_two_nurse", "site_staff", (trial, theirs))
    for user, site, allowed in ((nurse, mine, True), (other, mine, False),
                                (nurse, mine, True), (other, theirs, True),
                                (nurse, theirs, False)):
        response = _as(api, user).get(f"/api/v1/subjects/?site={site.pk}")
        if allowed:
            assert response.status_code == 200, response.content
            assert {row["site"] for row in response.json()["results"]} == {site.pk}
            assert len(response.json()["results"]) == 3
        else:
            assert response.status_code == 400, response.content
            assert response.json()["errors"][0]["code"] == "invalid_choice"
    # filters the query does not name filter nothing
    assert len(_as(api, nurse).get("/api/v1/subjects/?status=").json()["results"]) == 3


def test_the_browsable_api_form_still_shows_every_filter(api, blinded):
    trial, (site, _) = blinded
    _as(api, make_user("html_nurse", "site_staff", (trial, site)))
    page = api.get("/api/v1/subjects/", HTTP_ACCEPT="text/html").content.decode()
    for name in ("trial", "site", "status", "cohort", "dose_level"):
        assert f'name="{name}"' in page, name
