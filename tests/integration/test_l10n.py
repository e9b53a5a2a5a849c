"""Dates and numbers per locale in pages, ISO 8601 in the API and exports (issue 21).

Pages (admin subject page, ePRO patient page) follow the active language's formats (Django
``formats``; English pages keep ISO-like short dates, ``edc/formats/en``); the API and the
exports answer the same values in ISO 8601 and with a decimal point whatever the language.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.urls import reverse

from tests.epro_factories import epro_subject, load_wording
from tests.factories import make_user
from visits import services as visit_services
from visits.models import QlqC30Form

pytestmark = pytest.mark.django_db

FRENCH_MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre"]


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def _scored_form(subject, visit):
    """A staff-entered form (every item 2, PF2 = 66.67), scored by the task's own service."""
    form = QlqC30Form.objects.create(subject=subject, visit=visit,
                                     completion_date=visit.window_low,
                                     **{f"q{n}": 2 for n in range(1, 31)})
    visit_services.score_form(form.pk)
    return form


def _short(day: dt.date, language: str) -> str:
    return {"zh-hans": f"{day.year}年{day.month}月{day.day}日",
            "fr": f"{day:%d/%m/%Y}", "en": f"{day:%Y-%m-%d}"}[language]


@pytest.mark.parametrize(("language", "score"), [("zh-hans", "66.7"), ("fr", "66,7"),
                                                  ("en", "66.7")])
def test_the_admin_subject_page_formats_dates_and_numbers_per_language(client, language,
                                                                         score):
    subject, visit, nurse = epro_subject()
    _scored_form(subject, visit)
    client.force_login(nurse)
    client.post(reverse("set_language"), {"language": language, "next": "/admin/"})
    html = client.get(reverse("admin:subjects_subject_change", args=[subject.pk])
                      ).content.decode()
    window = f"{_short(visit.window_low, language)} … {_short(visit.window_high, language)}"
    assert window in html
    assert f"<td>{score}</td>" in html  # PF2 of the form
    if language != "en":
        assert visit.window_low.isoformat() not in html


@pytest.mark.parametrize("language", ["zh-hans", "fr"])
def test_the_epro_page_shows_the_visit_window_in_the_links_language(client, api, language):
    subject, visit, nurse = epro_subject(languages=(language,))
    api.force_authenticate(nurse)
    url = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json").json()["url"]
    html = client.get(url[url.index("/epro/"):]).content.decode()
    low, high = visit.window_low, visit.window_high
    if language == "zh-hans":
        expected = [f"{d.year}年{d.month}月{d.day}日" for d in (low, high)]
    else:
        expected = [f"{d.day} {FRENCH_MONTHS[d.month - 1]} {d.year}" for d in (low, high)]
    assert all(text in html for text in expected), expected
    assert low.isoformat() not in html


def test_the_api_and_exports_stay_iso_8601_in_every_language(api):
    subject, visit, nurse = epro_subject()
    load_wording(subject.trial, "fr")
    form = _scored_form(subject, visit)
    api.force_authenticate(nurse)
    for language in ("fr", "zh-hans"):
        shown = api.get(f"/api/v1/visits/{visit.pk}/", HTTP_ACCEPT_LANGUAGE=language).json()
        assert (shown["window_low"], shown["target_date"]) == (
            visit.window_low.isoformat(), visit.target_date.isoformat())
        scored = api.get(f"/api/v1/qlq-c30-forms/{form.pk}/",
                         HTTP_ACCEPT_LANGUAGE=language).json()
        assert scored["completion_date"] == visit.window_low.isoformat()
        assert dt.datetime.fromisoformat(scored["score"]["computed_at"])  # ISO 8601
        assert scored["score"]["PF2"] == pytest.approx(200 / 3)  # a JSON number
    sponsor = make_user("l10n-sponsor", "sponsor", (subject.trial, None))
    api.force_authenticate(sponsor)
    response = api.get("/api/v1/exports/sdtm/qs/", {"trial": subject.trial_id},
                       HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    text = body.decode()
    assert visit.window_low.isoformat() in text
    assert _short(visit.window_low, "fr") not in text


@pytest.mark.parametrize(("language", "since"), [("zh-hans", "自 {} 起"), ("fr", "depuis le {}"),
                                                  ("en", "since {}")])
def test_the_subject_page_status_line_is_translated(client, language, since):
    subject, _visit, nurse = epro_subject()
    assert subject.status_date  # enrolled on a date
    client.force_login(nurse)
    client.post(reverse("set_language"), {"language": language, "next": "/admin/"})
    html = client.get(reverse("admin:subjects_subject_change", args=[subject.pk])
                      ).content.decode()
    assert since.format(_short(subject.status_date, language)) in html
