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
