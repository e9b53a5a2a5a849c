"""Admin labels a nurse can read: subject pickers name the trial, verbose names are human, the
audit trail names users and shows values as entered."""

from __future__ import annotations

import datetime as dt
import re

import pghistory
import pytest
from django.urls import reverse

from adverse_events.models import AdverseEvent
from subjects.enrollment import enroll
from tests.factories import (
    load_seed_trial,
    make_eligible,
    make_exposure,
    make_subject,
    make_user,
)
from visits.models import QlqC30Form

pytestmark = pytest.mark.django_db
DAY0 = dt.date(2025, 1, 6)


def _first_subject(registry_id):
    trial = load_seed_trial(registry_id)
    site = trial.sites.first()
    return enroll(make_eligible(make_subject(trial, site)), enrolled_on=DAY0)


def test_ae_subject_dropdown_names_the_trial_of_each_subject(client):
    first = _first_subject("NCT05699811")
    second = _first_subject("SHEH-MSC-L")
    assert first.subject_number == second.subject_number == "01001"
    nurse = make_user("two_trials", "site_staff", (first.trial, None), (second.trial, None))
    client.force_login(nurse)
    page = client.get(reverse("admin:adverse_events_adverseevent_add")).content.decode()
    select = re.search(r'<select name="subject".*?</select>', page, re.S)[0]
    options = [o for o in re.findall(r"<option[^>]*>([^<]*)</option>", select) if "---" not in o]
    assert sorted(options) == ["NCT05699811 · 01001", "SHEH-MSC-L · 01001"]


def test_verbose_names_are_human():
    fields = {f.name: f.verbose_name for f in AdverseEvent._meta.fields}
    assert fields["sae_death"] == "SAE: death"
    assert fields["sae_life_threatening"] == "SAE: life-threatening"
    assert QlqC30Form._meta.verbose_name_plural == "QLQ-C30 forms"


def test_admin_pages_show_human_labels(client):
    subject = _first_subject("NCT05699811")
    client.force_login(make_user("labels_nurse", "site_staff", (subject.trial, None)))
    index = client.get(reverse("admin:index")).content.decode()
    assert "QLQ-C30 forms" in index and "Qlq c30" not in index
    add = client.get(reverse("admin:adverse_events_adverseevent_add")).content.decode()
    assert "SAE: death" in add and "Sae death" not in add


def test_audit_trail_names_the_user_and_formats_values(client):
    subject = _first_subject("NCT05699811")
    nurse = make_user("audit_nurse", "site_staff", (subject.trial, None))
    nurse.first_name, nurse.last_name = "Ada", "Nurse"
    nurse.save()
    with pghistory.context(user=nurse.pk):  # as the request middleware records it: an id
        exposure = make_exposure(subject, "MSC-IFNA", DAY0, dose_value=5000000000)
    client.force_login(nurse)
    for url in (reverse("admin:visits_exposure_history", args=[exposure.pk]),
                reverse("admin:visits_exposure_change", args=[exposure.pk])):
        page = client.get(url).content.decode()
        assert "Ada Nurse (audit_nurse)" in page, url
        assert "5000000000" in page and "Decimal(" not in page, url
        assert f"user {nurse.pk} " not in page
