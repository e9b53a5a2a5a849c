"""ePRO reminders and completion (issue 21): a scheduled QLQ-C30 of a trial that uses ePRO,
not completed by the middle of its visit's window, is told to the site's team once through
the notification path (beat task by name), in the site's language; the trial dashboard
shows ePRO completion per visit."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.core.cache import cache
from django.urls import reverse

from edc.celery import app
from epro import services
from notifications.models import Notification
from tests.epro_factories import epro_subject

pytestmark = pytest.mark.django_db


def _with_email(user, email):
    user.email = email
    user.save()
    return user


def test_a_form_not_completed_by_the_window_midpoint_reminds_the_site_once():
    subject, visit, nurse = epro_subject(window=(-6, 2))  # middle day: 2 days ago
    _with_email(nurse, "nurse@site.example")
    later, later_visit, _ = epro_subject(trial=subject.trial, window=(-1, 7))  # not yet
    assert settings.CELERY_BEAT_SCHEDULE["epro-reminders"]["task"] == "epro.tasks.remind_due_forms"
    app.loader.import_default_modules()
    assert app.tasks["epro.tasks.remind_due_forms"].apply().get() == 1
    assert app.tasks["epro.tasks.remind_due_forms"].apply().get() == 1  # told once
    row = Notification.objects.get()
    assert row.kind == "epro_due" and row.recipient_email == "nurse@site.example"
    assert row.event_key == f"epro_due:visit:{visit.pk}" and row.subject_id == subject.pk
    assert row.recipient_kind == "site_staff"
    # seed 002's sites are in China: the message is written in Simplified Chinese
    assert "ePRO 问卷未完成" in row.message_subject and "受试者（研究编号）" in row.body
    assert str(subject) in row.body and "试验: " in row.body and "未完成" in row.body
    assert not Notification.objects.filter(subject=later).exists()


def test_no_reminder_once_the_form_is_completed(client, api):
    cache.clear()
    subject, visit, nurse = epro_subject(window=(-6, 2))
    api.force_authenticate(nurse)
    url = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json").json()["url"]
    token = re.search(r"/epro/([\w-]{43})/$", url)[1]
    client.get(f"/epro/{token}/")
    services.submit(services.find_link(token), client.cookies["epro_device"].value)
    assert services.forms_due_for_reminder() == []


def test_the_trial_dashboard_shows_epro_completion_per_visit(client, api):
    cache.clear()
    subject, visit, nurse = epro_subject()
    other, other_visit, _ = epro_subject(trial=subject.trial)
    api.force_authenticate(nurse)
    url = api.post("/api/v1/epro-links/", {"visit": visit.pk}, format="json").json()["url"]
    api.post("/api/v1/epro-links/", {"visit": other_visit.pk}, format="json")
    token = re.search(r"/epro/([\w-]{43})/$", url)[1]
    client.get(f"/epro/{token}/")
    services.submit(services.find_link(token), client.cookies["epro_device"].value)
    client.force_login(nurse)
    page = client.get(reverse("admin:trials_trial_dashboard", args=[subject.trial.pk]))
    assert page.status_code == 200
    a1 = next(row for row in page.context["epro"] if row["code"] == "A1")
    assert (a1["scheduled"], a1["patient"], a1["staff"], a1["links"], a1["missing"]) == (
        2, 1, 0, 1, 1)
    assert a1["percent"] == 50
    assert 'id="epro-completion"' in page.content.decode()
