"""Randomization administration (issue 20, acceptance 3): the unblinded statistician views a
list and its use, extends an exhausted list from its secret-seeded generator (audited) and
records an allocation error (ARM kept, ACTARM the arm received); every other role gets 403."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone

from edc.core.audit import history
from subjects import randomization
from subjects.enrollment import list_seed
from subjects.models import AllocationError, RandomizationSlot
from tests.factories import make_eligible, make_exposure, make_subject, make_user
from trials.models import Trial

pytestmark = pytest.mark.django_db
DAY0 = timezone.localdate() - dt.timedelta(days=10)
OTHER_ROLES = ("site_staff", "investigator", "monitor", "data_manager", "sponsor", "admin")


@pytest.fixture
def small_list(tmp_path):
    """Seed 002 (1:1, no block size stated: blocks of 4 or 8) loaded with a target enrollment
    of 2, so that its list is one block (2 x target / smallest block, enrollment)."""
    seeds = Path(settings.BASE_DIR) / "seeds"
    text = (seeds / "NCT05962450.toml").read_text().replace("target_enrollment = 84",
                                                            "target_enrollment = 2")
    source = re.search(r'^source = "(.+)"$', text, re.MULTILINE)[1]
    (tmp_path / source).parent.mkdir(parents=True)
    shutil.copy(seeds / source, tmp_path / source)
    (tmp_path / "NCT05962450.toml").write_text(text)
    call_command("seed_protocols", str(tmp_path / "NCT05962450.toml"), verbosity=0)
    trial = Trial.objects.get(registry_id="NCT05962450")
    site = trial.sites.first()
    stat = make_user("rz_stat", "statistician", (trial, None), unblinded=True)
    nurse = make_user("rz_nurse", "site_staff", (trial, site))
    return {"trial": trial, "site": site, "stat": stat, "nurse": nurse}


def _enroll(api, trial, site, nurse):
    subject = make_eligible(make_subject(trial, site, consent_date=DAY0))
    api.force_authenticate(nurse)
    return subject, api.post(f"/api/v1/subjects/{subject.pk}/enroll/",
                             {"enrolled_on": str(DAY0)}, format="json")


def test_exhaust_extend_and_allocate_again(api, small_list):
    trial, site, stat, nurse = (small_list[k] for k in ("trial", "site", "stat", "nurse"))
    response = None
    for _ in range(9):  # one block of 4 or 8
        _, response = _enroll(api, trial, site, nurse)
        if response.status_code != 200:
            break
    assert response.status_code == 409, response.content
    message = response.json()["errors"][0]["message"]
    assert "exhausted" in message and "statistician" in message
    base = f"/api/v1/trials/{trial.pk}/randomization/"
    api.force_authenticate(stat)
    listed = api.get(base).json()
    (only,) = listed["lists"]
    assert only["exhausted"] is True and only["remaining"] == 0 and only["blocks"] == 1
    assert all(r["subject_number"] for r in only["rows"])
    refused = api.post(f"{base}extend/", {"stratum": "", "blocks": 2}, format="json")
    assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "reason"
    extended = api.post(f"{base}extend/", {"stratum": "", "blocks": 2,
                                           "reason": "recruitment extended by amendment 2"},
                        format="json")
    assert extended.status_code == 201, extended.content
    slots = list(RandomizationSlot.objects.filter(trial=trial).order_by("sequence"))
    expected = randomization.generate_list({"RP": 1, "RPI": 1}, [4, 8], 3, list_seed(trial))
    assert [(s.sequence, s.block_number, s.block_size, s.arm.code) for s in slots] == [
        (s.sequence, s.block_number, s.block_size, s.arm) for s in expected]
    assert extended.json()["added"] == len(expected) - only["slots"]
    new = slots[-1]
    audit = history(new)[0]
    assert audit["username"] == "rz_stat"
    assert audit["reason"].startswith("allocation list extended by 2 block(s)")
    assert audit["reason"].endswith("recruitment extended by amendment 2")
    subject, again = _enroll(api, trial, site, nurse)
    assert again.status_code == 200, again.content
    assert subject.randomization_slot.sequence == only["slots"] + 1


def test_allocation_error_keeps_the_arm_and_sets_actarm(api, small_list):
    trial, site, stat, nurse = (small_list[k] for k in ("trial", "site", "stat", "nurse"))
    subject, enrolled = _enroll(api, trial, site, nurse)
    assert enrolled.status_code == 200, enrolled.content
    subject.refresh_from_db()
    allocated = subject.arm.code
    received = "RP" if allocated == "RPI" else "RPI"
    make_exposure(subject, "PD1", DAY0, dose_value=200, dose_unit="mg")
    url = f"/api/v1/trials/{trial.pk}/randomization/allocation-errors/"
    api.force_authenticate(stat)
    same = api.post(url, {"subject": subject.pk, "error": "x", "correction": "y",
                          "actual_arm": allocated}, format="json")
    assert same.status_code == 400 and same.json()["errors"][0]["field"] == "actual_arm"
    done = api.post(url, {"subject": subject.pk, "actual_arm": received,
                          "error": "the pharmacy dispensed the kit of the other arm",
                          "correction": "treated per allocation from cycle 2; analysed as "
                                        "randomized"}, format="json")
    assert done.status_code == 201, done.content
    subject.refresh_from_db()
    assert subject.arm.code == allocated  # the allocation never changes
    record = AllocationError.objects.get(subject=subject)
    assert history(record)[0]["reason"].startswith("allocation error recorded: the pharmacy")
    assert api.get(f"/api/v1/trials/{trial.pk}/randomization/").json()[
        "allocation_errors"][0]["actual_arm"] == received
    dm_user = make_user("rz_dm", "data_manager", (trial, None), unblinded=True)
    api.force_authenticate(dm_user)
    export = api.get("/api/v1/exports/sdtm/dm/", {"trial": trial.pk})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    (row,) = [r for r in rows if r["SUBJID"] == subject.subject_number]
    assert (row["ARMCD"], row["ACTARMCD"]) == (allocated, received)


def test_every_other_role_gets_403(api, client, small_list):
    trial, site = small_list["trial"], small_list["site"]
    subject, _ = _enroll(api, trial, site, small_list["nurse"])
    users = [make_user(f"rz_{role}", role, (trial, None if role not in (
        "site_staff", "investigator") else site), unblinded=role == "admin")
        for role in OTHER_ROLES]
    users.append(User.objects.create_superuser("rz_root", password="pw-for-tests-1"))
    users.append(make_user("rz_blind_stat", "statistician", (trial, None)))  # not unblinded
    base = f"/api/v1/trials/{trial.pk}/randomization/"
    admin_base = f"/admin/trials/trial/{trial.pk}/randomization/"
    for user in users:
        api.force_authenticate(user)
        assert api.get(base).status_code == 403, user
        assert api.post(f"{base}extend/", {"blocks": 1, "reason": "x"},
                        format="json").status_code == 403, user
        assert api.post(f"{base}allocation-errors/", {
            "subject": subject.pk, "error": "x", "correction": "y"},
            format="json").status_code == 403, user
        client.force_login(user)
        for page in ("", "extend/", "allocation-error/"):
            assert client.get(f"{admin_base}{page}").status_code == 403, (user, page)
        dashboard = client.get(f"/admin/trials/trial/{trial.pk}/dashboard/")
        assert admin_base not in dashboard.content.decode()
    assert not AllocationError.objects.exists()
    assert RandomizationSlot.objects.filter(trial=trial).count() in (4, 8)


def test_statistician_admin_pages(api, client, small_list):
    trial, stat = small_list["trial"], small_list["stat"]
    subject, _ = _enroll(api, trial, small_list["site"], small_list["nurse"])
    before = RandomizationSlot.objects.filter(trial=trial).count()
    client.force_login(stat)
    dashboard = client.get(f"/admin/trials/trial/{trial.pk}/dashboard/").content.decode()
    assert f"/admin/trials/trial/{trial.pk}/randomization/" in dashboard
    page = client.get(f"/admin/trials/trial/{trial.pk}/randomization/").content.decode()
    assert f"List (not stratified): 1 of {before} used" in page
    assert subject.randomization_slot.arm.code in page
    extend = f"/admin/trials/trial/{trial.pk}/randomization/extend/"
    assert client.post(extend, {"stratum": "", "blocks": 1}).status_code == 200  # no reason
    assert RandomizationSlot.objects.filter(trial=trial).count() == before
    done = client.post(extend, {"stratum": "", "blocks": 1, "reason": "more sites"})
    assert done.status_code == 302
    assert RandomizationSlot.objects.filter(trial=trial).count() > before
    error = f"/admin/trials/trial/{trial.pk}/randomization/allocation-error/"
    missing = client.post(error, {"subject": subject.pk, "error": "wrong kit"})
    assert missing.status_code == 200 and not AllocationError.objects.exists()
    recorded = client.post(error, {"subject": subject.pk, "error": "wrong stratum",
                                   "correction": "none needed; analysed as randomized"})
    assert recorded.status_code == 302
    assert AllocationError.objects.get().actual_arm is None
