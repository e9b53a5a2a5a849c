"""Languages (issue 21): API error messages follow Accept-Language; the admin's language switch
translates the subject page's labels (English, Simplified Chinese, French)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from tests.epro_factories import epro_subject

pytestmark = pytest.mark.django_db

NOT_AUTHENTICATED = "Authentication credentials were not provided."


@pytest.mark.parametrize("language", ["fr", "zh-hans"])
def test_api_errors_honour_accept_language(api, language):
    with translation.override(language):
        expected = translation.gettext(NOT_AUTHENTICATED)
    assert expected != NOT_AUTHENTICATED
    response = api.get("/api/v1/subjects/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code in (401, 403)
    assert response.json()["errors"][0]["message"] == expected
    english = api.get("/api/v1/subjects/", HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["errors"][0]["message"] == NOT_AUTHENTICATED


def test_api_refusals_of_epro_are_translated(api):
    _, visit, nurse = epro_subject()
    api.force_authenticate(nurse)
    french = api.post("/api/v1/epro-links/", {"visit": visit.pk, "language": "fr"},
                      format="json", HTTP_ACCEPT_LANGUAGE="fr")
    assert french.status_code == 400
    assert french.json()["errors"][0]["message"].startswith("Aucun texte sous licence")
    chinese = api.post("/api/v1/epro-links/", {"visit": visit.pk, "language": "fr"},
                       format="json", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert chinese.json()["errors"][0]["message"].startswith("此试验尚未加载")


@pytest.mark.parametrize(("language", "labels"), [
    ("zh-hans", ["访视日历", "给药记录", "不良事件", "概要"]),
    ("fr", ["Calendrier des visites", "Expositions", "Événements indésirables", "Résumé"]),
    ("en", ["Visit calendar", "Exposures", "Adverse events", "Summary"]),
])
def test_the_admin_language_switch_translates_the_subject_page(client, language, labels):
    subject, _, nurse = epro_subject()
    client.force_login(nurse)
    switched = client.post(reverse("set_language"), {"language": language, "next": "/admin/"})
    assert switched.status_code == 302
    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and f'<html lang="{language}"' in html
    assert 'id="language-select"' in html
    for label in labels:
        assert label in html, label


def test_the_patient_switches_the_questionnaire_language(client, api):
    """Offered: the languages the trial loaded wording in (en is not), the trial's default
    first chosen; the answers are kept and the link records the switch (audited)."""
    import re

    from django.core.cache import cache

    from edc.core.audit import history
    from epro.models import EproLink

    cache.clear()
    _, visit, nurse = epro_subject(languages=("zh-hans", "fr"))
    api.force_authenticate(nurse)
    url = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json").json()["url"]
    token = url.rstrip("/").rsplit("/", 1)[1]
    start = client.get(f"/epro/{token}/").content.decode()
    assert '<html lang="zh-hans">' in start and "【占位】生活质量问卷" in start
    assert re.findall(r'name="language" value="([\w-]+)"', start) == ["zh-hans", "fr"]
    assert re.search(r'value="zh-hans" lang="zh-hans" class="lang" aria-current="true"', start)
    client.post(f"/epro/{token}/item/2/", {"answer": "3", "go": "next"})
    here = f"/epro/{token}/item/2/"
    switched = client.post(f"/epro/{token}/language/", {"language": "fr", "next": here})
    assert switched.status_code == 302 and switched["Location"] == here
    page = client.get(here).content.decode()
    assert '<html lang="fr">' in page and "Question 2 sur 30" in page
    assert "[Texte provisoire] Question 2" in page and 'value="3" checked' in page
    refused = client.post(f"/epro/{token}/language/", {"language": "en", "next": here})
    assert refused.status_code == 400
    away = client.post(f"/epro/{token}/language/", {"language": "zh-hans",
                                                     "next": "https://evil.example/"})
    assert away["Location"] == f"/epro/{token}/"
    link = EproLink.objects.get(visit=visit)
    assert link.language == "zh-hans" and link.answers["2"] == 3
    reasons = [row["reason"] for row in history(link)]
    assert "patient switched the questionnaire to fr" in reasons


def test_no_language_switch_with_one_language_loaded(client, api):
    from django.core.cache import cache

    cache.clear()
    _, visit, nurse = epro_subject()
    api.force_authenticate(nurse)
    url = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json").json()["url"]
    start = client.get(url[url.index("/epro/"):]).content.decode()
    assert 'id="language-switch"' not in start
