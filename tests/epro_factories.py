"""Builders for the ePRO tests: placeholder wording (never the EORTC's licensed text) and a
seed 002 subject (NCT05962450 schedules the QLQ-C30) with a visit whose window is open."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.utils import timezone

from edc.core.audit import change_reason
from subjects.enrollment import enroll
from tests.factories import load_seed_trial, make_eligible, make_subject, make_user
from visits.models import Visit

DATA = Path(__file__).resolve().parent / "data"
LANGUAGES = {"en": "en", "zh-hans": "zh-Hans", "fr": "fr"}


def wording_file(language: str) -> Path:
    """The placeholder wording file of a language (``tests/data/epro_wording.<tag>.toml``)."""
    return DATA / f"epro_wording.{LANGUAGES[language]}.toml"


def load_wording(trial, language: str, default: bool = False):
    from epro import services

    path = wording_file(language)
    return services.load_wording(trial, path.read_text(encoding="utf-8"), path.name,
                                 default=default)


def epro_subject(trial=None, languages=("zh-hans",), window=(-3, 3)):
    """An enrolled subject of seed 002 whose first scheduled QLQ-C30 after baseline (A1) has
    its window around today; returns ``(subject, visit, site staff user)``."""
    trial = trial or load_seed_trial("NCT05962450")
    for n, language in enumerate(languages):
        if not trial.epro_wordings.filter(language=language, retired_at__isnull=True).exists():
            load_wording(trial, language, default=n == 0)
    site = trial.sites.first()
    today = timezone.localdate()
    subject = enroll(make_eligible(make_subject(trial, site,
                                                consent_date=today - dt.timedelta(days=70))),
                     enrolled_on=today - dt.timedelta(days=60))
    visit = subject.visits.get(code="A1")
    assert visit.qlq_c30_due
    with change_reason("window moved around today for the test"):
        Visit.objects.filter(pk=visit.pk).update(
            target_date=today, window_low=today + dt.timedelta(days=window[0]),
            window_high=today + dt.timedelta(days=window[1]))
    visit.refresh_from_db()
    staff = trial.memberships.filter(user__groups__name="site_staff").first()
    user = staff.user if staff else make_user(f"epro-nurse-{trial.pk}", "site_staff",
                                              (trial, site))
    return subject, visit, user
