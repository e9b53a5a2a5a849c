"""One-time ePRO links (issue 21): issued by site staff for a visit's scheduled QLQ-C30
(API and admin, with a QR code), unguessable, stored as a digest, nothing personal in the
URL, open only inside the visit's window, once, on one device, revocable, rate-limited."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from edc.core.audit import change_reason
from epro import services
from epro.models import EproLink
from tests.epro_factories import epro_subject
from visits.models import Visit

pytestmark = pytest.mark.django_db

URL = re.compile(r"^http://[^/]+/epro/([A-Za-z0-9_-]{43})/$")


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def issue(api, user, visit, **extra):
    api.force_authenticate(user)
    return api.post("/api/v1/epro-links/", {"visit": visit.pk, **extra}, format="json")


def token_of(response) -> str:
    return URL.match(response.json()["url"])[1]


def test_issued_link_carries_only_an_unguessable_token_stored_as_a_digest(api):
    subject, visit, nurse = epro_subject()
    response = issue(api, nurse, visit)
    assert response.status_code == 201, response.json()
    body = response.json()
    token = token_of(response)
    # the path is the token alone (URL above): no subject, visit, site or trial in it
    for personal in (subject.usubjid, subject.screening_number, subject.trial.registry_id):
        assert personal not in body["url"]
    link = EproLink.objects.get(pk=body["id"])
    assert link.token_digest == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(EproLink.objects.filter(pk=link.pk).values().get())
    assert body["language"] == "zh-hans" and body["state"] == "active"
    assert body["qr_svg"].lstrip().startswith(("<svg", "<?xml")) and "path" in body["qr_svg"]
    # the token is shown once: neither the list nor the record shows it again
    again = api.get(f"/api/v1/epro-links/{link.pk}/").json()
    assert "url" not in again and token not in str(again)
    assert issue(api, nurse, visit).status_code == 201  # a new link replaces the open one
    link.refresh_from_db()
    assert link.state() == "revoked" and link.revoked_reason == "replaced by a new link"


def test_a_guessed_token_is_refused(client, api):
    _, visit, nurse = epro_subject()
    assert issue(api, nurse, visit).status_code == 201
    guessed = client.get("/epro/" + "A" * 43 + "/")
    assert guessed.status_code == 404
    assert guessed.context["code"] == "unknown"


def test_a_submitted_link_cannot_be_used_again(client, api):
    _, visit, nurse = epro_subject()
    token = token_of(issue(api, nurse, visit))
    assert client.get(f"/epro/{token}/").status_code == 200
    form = services.submit(services.find_link(token), client.cookies["epro_device"].value)
    assert form.mode == "epro"
    reused = client.get(f"/epro/{token}/")
    assert reused.status_code == 410 and reused.context["code"] == "submitted"
    assert client.post(f"/epro/{token}/submit/").status_code == 410


def test_an_expired_link_is_refused(client, api):
    _, visit, nurse = epro_subject()
    response = issue(api, nurse, visit)
    token = token_of(response)
    expires = dt.datetime.fromisoformat(response.json()["expires_at"])
    assert expires <= timezone.now() + dt.timedelta(hours=72, seconds=5)
    with change_reason("expiry reached (test)"):
        EproLink.objects.filter(pk=response.json()["id"]).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1))
    refused = client.get(f"/epro/{token}/")
    assert refused.status_code == 410 and refused.context["code"] == "expired"


def test_a_revoked_link_is_refused(client, api):
    _, visit, nurse = epro_subject()
    response = issue(api, nurse, visit)
    token, pk = token_of(response), response.json()["id"]
    missing = api.post(f"/api/v1/epro-links/{pk}/revoke/", {}, format="json")
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "reason"
    revoked = api.post(f"/api/v1/epro-links/{pk}/revoke/",
                       {"reason": "patient prefers paper"}, format="json")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    refused = client.get(f"/epro/{token}/")
    assert refused.status_code == 410 and refused.context["code"] == "revoked"
    history = api.get(f"/api/v1/epro-links/{pk}/").json()
    assert history["revoked_reason"] == "patient prefers paper"


def test_a_link_opens_only_inside_the_visit_window(client, api):
    _, visit, nurse = epro_subject(window=(2, 9))  # opens in two days
    token = token_of(issue(api, nurse, visit))
    early = client.get(f"/epro/{token}/")
    assert early.status_code == 403 and early.context["code"] == "not_yet"
    today = timezone.localdate()
    with change_reason("window ended (test)"):
        Visit.objects.filter(pk=visit.pk).update(window_low=today - dt.timedelta(days=9),
                                                 window_high=today - dt.timedelta(days=1))
    late = client.get(f"/epro/{token}/")
    assert late.status_code == 410 and late.context["code"] == "window_ended"
    ended = issue(api, nurse, visit)  # and no new link once the window has ended
    assert ended.status_code == 400 and ended.json()["errors"][0]["field"] == "visit"


def test_a_link_is_bound_to_the_first_device_that_opens_it(client, api):
    from django.test import Client

    _, visit, nurse = epro_subject()
    token = token_of(issue(api, nurse, visit))
    assert client.get(f"/epro/{token}/").status_code == 200
    assert client.get(f"/epro/{token}/item/1/").status_code == 200
    other = Client().get(f"/epro/{token}/")
    assert other.status_code == 403 and other.context["code"] == "other_device"


def test_no_link_for_a_language_without_licensed_wording(api):
    _, visit, nurse = epro_subject(languages=("zh-hans",))
    refused = issue(api, nurse, visit, language="fr")
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "language"
    assert not EproLink.objects.exists()


def test_patient_pages_and_link_issue_are_rate_limited(client, api, settings):
    settings.EPRO_PAGE_RATE = "3/min"
    settings.EPRO_ISSUE_RATE = "2/hour"
    _, visit, nurse = epro_subject()
    assert [issue(api, nurse, visit).status_code for _ in range(3)] == [201, 201, 429]
    guesses = [client.get(f"/epro/{'B' * 42}{n}/").status_code for n in range(4)]
    assert guesses == [404, 404, 404, 429]


def test_site_staff_issue_and_revoke_a_link_in_the_admin(client):
    subject, visit, nurse = epro_subject()
    client.force_login(nurse)
    page = client.post(reverse("admin:epro_eprolink_issue"), {"visit": visit.pk,
                                                               "language": ""})
    assert page.status_code == 200, page.content[:2000]
    html = page.content.decode()
    url = re.search(r'id="epro-url" readonly value="([^"]+)"', html)[1]
    assert URL.match(url) and "<svg" in html
    link = EproLink.objects.get(visit=visit)
    assert link.issued_by == nurse and link.language == "zh-hans"
    revoke = client.post(reverse("admin:epro_eprolink_revoke", args=[link.pk]),
                         {"reason": "issued to the wrong tablet"})
    assert revoke.status_code == 302
    link.refresh_from_db()
    assert link.state() == "revoked"


def test_wording_is_loaded_per_trial_and_language_and_replaced_not_deleted(tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from epro.models import EproWording
    from tests.epro_factories import wording_file
    from tests.factories import load_seed_trial

    trial = load_seed_trial("NCT05962450")
    out = StringIO()
    call_command("load_epro_wording", trial.registry_id, str(wording_file("fr")), "--default",
                 stdout=out)
    call_command("load_epro_wording", trial.registry_id, str(wording_file("zh-hans")),
                 stdout=out)
    assert services.default_language(trial) == "fr"
    changed = tmp_path / "fr.toml"
    changed.write_text(wording_file("fr").read_text(encoding="utf-8").replace(
        "Question 3", "Question trois"), encoding="utf-8")
    call_command("load_epro_wording", trial.registry_id, str(changed), stdout=out)
    rows = EproWording.objects.filter(trial=trial, language="fr").order_by("pk")
    assert [r.retired_at is None for r in rows] == [False, True]
    assert rows[1].wording().items[3] == "[Texte provisoire] Question trois"
    assert services.default_language(trial) == "fr"  # the replacement keeps the default
    broken = tmp_path / "broken.toml"
    broken.write_text('instrument = "EORTC QLQ-C30"\nlanguage = "fr"\n', encoding="utf-8")
    with pytest.raises(CommandError, match="no text for item"):
        call_command("load_epro_wording", trial.registry_id, str(broken))


def test_a_blinded_trials_epro_pages_reveal_no_arm_or_product(client, api):
    """Seed 002 made double-blind: the patient's pages name no arm and no product."""
    from trials.models import Arm, Intervention, Trial

    subject, visit, nurse = epro_subject()
    with change_reason("blinded for the test"):
        Trial.objects.filter(pk=subject.trial_id).update(masking="double")
    token = token_of(issue(api, nurse, visit))
    forbidden = set()
    for arm in Arm.objects.filter(protocol_version__trial=subject.trial):
        forbidden |= {arm.label, arm.code} - {""}
    for product in Intervention.objects.filter(protocol_version__trial=subject.trial):
        forbidden |= {product.code, product.agent} - {""}
    pages = [client.get(f"/epro/{token}/"), client.get(f"/epro/{token}/item/1/"),
             client.get(f"/epro/{token}/review/")]
    services.submit(services.find_link(token), client.cookies["epro_device"].value)
    pages += [client.get(f"/epro/{token}/"), client.get("/epro/done/?lang=zh-hans")]
    for page in pages:
        html = page.content.decode()
        # as words: the random link token and CSRF token may hold an arm code's letters
        assert not [text for text in forbidden
                    if re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", html)], \
            page.request["PATH_INFO"]
