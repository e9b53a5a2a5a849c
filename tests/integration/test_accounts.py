"""Accounts (21 CFR 11.300): lock-out, inactivity timeout, API tokens with expiry and
revocation, optional TOTP at the admin log-in, password policy, audited role and membership
grants and revocations, and who may create sites and memberships."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from accounts.models import ApiToken, RoleGrant
from accounts.tasks import remove_expired_tokens
from edc.core.audit import history
from subjects.models import Membership, Site
from tests.factories import make_site, make_trial, make_user

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"
TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def fast_hashing(settings):
    """A cheap hasher: these tests log in dozens of times (the policy is not the hasher's)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world():
    trial = make_trial()
    site = make_site(trial, "01")
    root = User.objects.create_superuser("root", password=PASSWORD)
    nurse = make_user("nurse", "site_staff", (trial, site))
    return {"trial": trial, "site": site, "root": root, "nurse": nurse}


def admin_login(client, username, password, **extra):
    return client.post(reverse("admin:login"), {"username": username, "password": password,
                                                **extra})


def logged_in(client) -> bool:
    return client.get(reverse("admin:index")).status_code == 200


# ---------------------------------------------------------------- lock-out

def test_admin_login_locks_the_account_after_repeated_failures(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert admin_login(client, "nurse", "wrong-password-1").status_code == 200
    assert admin_login(client, "nurse", "wrong-password-1").status_code == 429
    locked = admin_login(client, "nurse", PASSWORD)
    assert locked.status_code == 429
    assert "Account locked" in locked.content.decode()
    assert not logged_in(client)


def test_a_success_before_the_limit_resets_the_count(client, world):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        admin_login(client, "nurse", "wrong-password-1")
    assert admin_login(client, "nurse", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        admin_login(client, "nurse", "wrong-password-1")
    assert admin_login(client, "nurse", PASSWORD).status_code == 302


def test_api_session_login_locks_too(client, world):
    url = reverse("rest_framework:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "nurse", "password": "wrong-password-1"})
    response = client.post(url, {"username": "nurse", "password": PASSWORD})
    assert response.status_code == 429
    assert client.get("/api/v1/subjects/").status_code in (401, 403)


# ---------------------------------------------------------------- inactivity timeout

@override_settings(SESSION_COOKIE_AGE=2)
def test_sessions_end_after_inactivity_and_activity_extends_them(client, world):
    assert admin_login(client, "nurse", PASSWORD).status_code == 302
    for _ in range(3):  # 3 x 1.2 s of activity: longer than the timeout, never idle for it
        time.sleep(1.2)
        assert logged_in(client)
    time.sleep(2.5)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]


def test_the_default_inactivity_timeout_is_at_most_30_minutes():
    assert settings.SESSION_COOKIE_AGE <= 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST


# ---------------------------------------------------------------- API tokens

def test_token_endpoint_issues_a_token_with_an_expiry(api, world):
    before = timezone.now()
    response = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    expiry = dt.datetime.fromisoformat(body["expiry"])
    ttl = settings.REST_KNOX["TOKEN_TTL"]
    assert before + ttl <= expiry <= timezone.now() + ttl
    api.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api.get("/api/v1/subjects/").status_code == 200
    stored = AuthToken.objects.get(user=world["nurse"])
    assert body["token"] not in (stored.digest, stored.token_key)  # stored hashed


def test_an_expired_token_is_refused(api, world):
    token = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD},
                     format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/subjects/").status_code == 200
    AuthToken.objects.filter(user=world["nurse"]).update(
        expiry=timezone.now() - dt.timedelta(seconds=1))
    response = api.get("/api/v1/subjects/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "authentication_failed"


def test_a_token_request_reads_only_its_own_token(api, world):
    """One query for the token (with its user and expiry), not a read of every token of the
    user on every request (issue 19): expired tokens are removed by the periodic task."""
    tokens = [AuthToken.objects.create(user=world["nurse"])[1] for _ in range(3)]
    api.credentials(HTTP_AUTHORIZATION=f"Token {tokens[0]}")
    with CaptureQueriesContext(connection) as queries:
        assert api.get("/api/v1/subjects/").status_code == 200
    token_reads = [q["sql"] for q in queries if '"knox_authtoken"' in q["sql"]]
    assert len(token_reads) == 1, token_reads


def test_expired_tokens_are_removed_by_the_periodic_task_and_audited(api, world):
    kept, live = AuthToken.objects.create(user=world["nurse"])
    AuthToken.objects.create(user=world["nurse"])
    AuthToken.objects.create(user=world["root"])
    AuthToken.objects.exclude(pk=kept.pk).update(
        expiry=timezone.now() - dt.timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {live}")
    assert api.get("/api/v1/subjects/").status_code == 200
    assert remove_expired_tokens() == 2
    assert list(AuthToken.objects.values_list("pk", flat=True)) == [kept.pk]
    assert list(ApiToken.pgh_event_model.objects.filter(pgh_label="token.revoke")
                .values_list("user_id", flat=True).order_by("user_id")) == sorted(
        [world["root"].pk, world["nurse"].pk])
    assert api.get("/api/v1/subjects/").status_code == 200


def test_wrong_credentials_get_the_json_error_shape_and_lock_the_account(api, world):
    for attempt in range(1, settings.AXES_FAILURE_LIMIT + 1):
        response = api.post(TOKEN_URL, {"username": "nurse", "password": "nope-nope-1"},
                            format="json")
        expected = ((400, "invalid_credentials") if attempt < settings.AXES_FAILURE_LIMIT
                    else (429, "account_locked"))
        assert (response.status_code, response.json()["errors"][0]["code"]) == expected
    response = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD}, format="json")
    assert response.status_code == 429
    assert response.json()["errors"][0]["code"] == "account_locked"
    assert not AuthToken.objects.exists()
    missing = api.post(TOKEN_URL, {"username": "nurse"}, format="json")
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["field"] == "password"


def test_a_lock_out_also_stops_tokens_issued_before_it(api, client, world):
    token = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD},
                     format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/subjects/").status_code == 200
    for _ in range(settings.AXES_FAILURE_LIMIT):
        admin_login(client, "nurse", "wrong-password-1")
    response = api.get("/api/v1/subjects/")
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "account_locked"


@pytest.mark.parametrize("lockout_parameters", [["username"], [["username", "ip_address"]]])
def test_a_token_is_refused_exactly_when_axes_counts_a_lock_out(api, world,
                                                                lockout_parameters):
    """The token's query counts the failed log-ins as axes does (issue 19: one query): the
    failures within the cool-off period, summed, against the limit; failures older than the
    cool-off do not count. With other lock-out parameters axes itself is asked."""
    from axes.handlers.proxy import AxesProxyHandler
    from axes.models import AccessAttempt
    from django.test import RequestFactory

    token = AuthToken.objects.create(user=world["nurse"])[1]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    limit, cool_off = settings.AXES_FAILURE_LIMIT, settings.AXES_COOLOFF_TIME
    now = timezone.now()
    recent = AccessAttempt.objects.create(
        username="nurse", ip_address="127.0.0.1", user_agent="a",
        failures_since_start=limit - 1, get_data="", post_data="", http_accept="",
        path_info="/")
    old = AccessAttempt.objects.create(
        username="nurse", ip_address="127.0.0.1", user_agent="b", failures_since_start=limit,
        get_data="", post_data="", http_accept="", path_info="/")
    AccessAttempt.objects.filter(pk=old.pk).update(  # attempt_time is auto_now_add
        attempt_time=now - cool_off - dt.timedelta(minutes=1))
    request = RequestFactory().get("/api/v1/subjects/", REMOTE_ADDR="127.0.0.1")
    with override_settings(AXES_LOCKOUT_PARAMETERS=lockout_parameters):
        for failures, attempt_time, locked in ((limit - 1, now, False),
                                               (limit, now, True),
                                               (limit + 3, now, True),
                                               (limit - 1, now, False)):
            recent.failures_since_start, recent.attempt_time = failures, attempt_time
            recent.save()
            assert AxesProxyHandler.is_locked(request, {"username": "nurse"}) is locked
            response = api.get("/api/v1/subjects/")
            if locked:
                assert response.status_code == 401, response.content
                assert response.json()["errors"][0]["code"] == "account_locked"
            else:
                assert response.status_code == 200, response.content
        AccessAttempt.objects.filter(pk=old.pk).update(  # now inside the cool-off
            attempt_time=now - cool_off + dt.timedelta(minutes=1))
        assert api.get("/api/v1/subjects/").status_code == 401


def test_a_revoked_token_is_refused_and_both_events_are_audited(api, world):
    token = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD},
                     format="json").json()["token"]
    other = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD},
                     format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = api.post(f"{TOKEN_URL}revoke/", {}, format="json")
    assert response.status_code == 200 and response.json() == {"revoked": 1}
    assert api.get("/api/v1/subjects/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Token {other}")
    assert api.get("/api/v1/subjects/").status_code == 200
    assert api.post(f"{TOKEN_URL}revoke/", {"all": True}, format="json").json() == {
        "revoked": 1}
    assert api.get("/api/v1/subjects/").status_code == 401
    events = list(ApiToken.pgh_event_model.objects.order_by("pgh_id")
                  .values_list("pgh_label", "user_id"))
    nurse = world["nurse"].pk
    assert events == [("token.issue", nurse), ("token.issue", nurse),
                      ("token.revoke", nurse), ("token.revoke", nurse)]


def test_an_admin_revokes_a_token_in_the_admin(client, api, world):
    token = api.post(TOKEN_URL, {"username": "nurse", "password": PASSWORD},
                     format="json").json()["token"]
    client.force_login(world["root"])
    stored = AuthToken.objects.get(user=world["nurse"])
    url = reverse("admin:knox_authtoken_delete", args=[stored.pk])
    assert client.post(url, {"post": "yes"}).status_code == 302
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/subjects/").status_code == 401
    revoke = ApiToken.pgh_event_model.objects.get(pgh_label="token.revoke")
    assert revoke.pgh_context["user"] == world["root"].pk
    client.force_login(world["nurse"])
    assert client.get(reverse("admin:knox_authtoken_changelist")).status_code == 403


# ---------------------------------------------------------------- TOTP

def test_admin_login_asks_a_totp_code_of_users_who_enabled_one(client, world):
    device = TOTPDevice.objects.create(user=world["nurse"], name="phone", confirmed=True)
    assert admin_login(client, "nurse", PASSWORD).status_code == 200  # form shown again
    assert not logged_in(client)
    assert admin_login(client, "nurse", PASSWORD, otp_token="000000").status_code == 200
    assert not logged_in(client)
    time.sleep(1.1)  # django-otp throttles the device for a second after a wrong code
    code = f"{totp(device.bin_key, step=device.step, digits=device.digits):06d}"
    assert admin_login(client, "nurse", PASSWORD, otp_token=code).status_code == 302
    assert logged_in(client)


def test_users_without_a_device_log_in_with_the_password(client, world):
    assert admin_login(client, "nurse", PASSWORD).status_code == 302
    assert logged_in(client)


def test_a_session_not_verified_by_the_device_does_not_reach_the_admin(client, world):
    TOTPDevice.objects.create(user=world["nurse"], name="phone", confirmed=True)
    client.force_login(world["nurse"])  # e.g. through /api-auth/login/
    assert not logged_in(client)


def test_an_admin_page_reads_the_users_devices_once(client, world):
    """The site asks whether the user has a device on every page (the view's guard, and
    again for the page's navigation): one query a page, not one a question."""
    client.force_login(world["nurse"])
    for url in (reverse("admin:index"), reverse("admin:subjects_subject_changelist")):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url).status_code == 200
        devices = [q["sql"] for q in queries.captured_queries
                   if TOTPDevice._meta.db_table in q["sql"]]
        assert len(devices) == 1, (url, devices)


# ---------------------------------------------------------------- password policy

@pytest.mark.parametrize("password", ["short-1", "123456789012345", "password1234",
                                      "nightingale2025"])
def test_weak_passwords_are_refused(world, password):
    world["nurse"].last_name = "Nightingale"
    with pytest.raises(ValidationError):
        validate_password(password, world["nurse"])


def test_a_strong_password_passes(world):
    validate_password("tall-orange-violin-42", world["nurse"])


# ---------------------------------------------------------------- roles and memberships

def test_role_grants_and_revocations_in_the_admin_are_audited(client, world):
    monitor = Group.objects.get_or_create(name="monitor")[0]
    staff = Group.objects.get(name="site_staff")
    nurse = world["nurse"]
    client.force_login(world["root"])
    url = reverse("admin:auth_user_change", args=[nurse.pk])
    form = {"username": "nurse", "is_active": "on", "is_staff": "on",
            "groups": [monitor.pk], "date_joined_0": "2025-01-01",
            "date_joined_1": "00:00:00", "initial-date_joined_0": "2025-01-01",
            "initial-date_joined_1": "00:00:00"}
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    assert set(nurse.groups.values_list("name", flat=True)) == {"monitor"}
    events = RoleGrant.pgh_event_model.objects.filter(user_id=nurse.pk).order_by("pgh_id")
    changes = [(e.pgh_label, e.group_id) for e in events]
    assert changes == [("role.grant", staff.pk), ("role.revoke", staff.pk),
                       ("role.grant", monitor.pk)]
    by_admin = [e.pgh_context["user"] for e in events[1:]]
    assert by_admin == [world["root"].pk, world["root"].pk]


def test_an_admin_revokes_a_membership_with_a_reason_and_it_is_audited(client, api, world):
    membership = Membership.objects.get(user=world["nurse"])
    url = reverse("admin:subjects_membership_revoke", args=[membership.pk])
    client.force_login(world["nurse"])
    assert client.get(url).status_code == 403
    client.force_login(world["root"])
    assert client.post(url, {"reason": ""}).status_code == 200  # the reason is required
    membership.refresh_from_db()
    assert membership.retired_at is None
    response = client.post(url, {"reason": "left the site team"})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert membership.retired_at is not None
    last = history(membership)[-1]
    assert last["reason"] == "left the site team" and last["user"] == world["root"].pk
    assert "retired_at" in last["changes"]
    api.force_authenticate(world["nurse"])
    assert api.get(f"/api/v1/sites/{world['site'].pk}/").status_code == 404
    # a revoked access may be granted again (a new, audited membership)
    Membership.objects.create(user=world["nurse"], trial=world["trial"], site=world["site"])
    assert api.get(f"/api/v1/sites/{world['site'].pk}/").status_code == 200


def test_only_admins_create_sites_and_memberships(client, world):
    client.force_login(world["nurse"])
    assert client.get(reverse("admin:subjects_site_add")).status_code == 403
    assert client.post(reverse("admin:subjects_site_add"), {
        "trial": world["trial"].pk, "code": "99", "name": "Rogue"}).status_code == 403
    assert client.get(reverse("admin:subjects_membership_add")).status_code == 403
    site_page = reverse("admin:subjects_site_change", args=[world["site"].pk])
    assert client.post(site_page, {"trial": world["trial"].pk, "code": "01",
                                   "name": "Renamed", "reason_for_change": "x"}
                       ).status_code == 403
    assert not Site.objects.filter(code="99").exists()
    client.force_login(world["root"])
    assert client.get(reverse("admin:subjects_site_add")).status_code == 200
    assert client.get(reverse("admin:subjects_membership_add")).status_code == 200
