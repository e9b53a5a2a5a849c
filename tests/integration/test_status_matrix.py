"""The data manager's subject x visit status matrix (issue 20): every form of every visit as
due, missing, entered, queried, verified, signed or locked; filterable by site; scoped."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from data_management import locks, queries, sdv, signatures
from tests.factories import (
    make_dm_exposure,
    make_dm_visit,
    make_site,
    make_subject,
    make_trial,
    make_user,
)
from visits.models import Exposure

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-1"


def _window(days_from_today: int) -> dict:
    day = timezone.localdate() + dt.timedelta(days=days_from_today)
    return {"target_date": day, "window_low": day - dt.timedelta(days=2),
            "window_high": day + dt.timedelta(days=2)}


@pytest.fixture
def trial_world():
    trial = make_trial()
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    subject = make_subject(trial, site_a, subject_number="A001",
                           day0=timezone.localdate() - dt.timedelta(days=60))
    other = make_subject(trial, site_b, subject_number="B001",
                         day0=timezone.localdate() - dt.timedelta(days=60))
    past = _window(-60)
    c1 = make_dm_visit(subject, "C1", intervention="DRUG", status="done",
                       actual_date=past["target_date"], **past)
    make_dm_visit(subject, "C2", intervention="DRUG", **_window(-30))  # overdue
    make_dm_visit(subject, "A1", kind="assessment", qlq_c30_due=True, **_window(30))
    q1 = make_dm_visit(subject, "Q1", kind="follow_up", qlq_c30_due=True, status="done",
                       actual_date=timezone.localdate() - dt.timedelta(days=20),
                       **_window(-20))
    make_dm_visit(other, "C1", intervention="DRUG", **_window(5))
    exposure = make_dm_exposure(c1)
    period = Exposure.objects.create(  # a dosing period: a form without a visit
        subject=subject, intervention=exposure.intervention, administered_on=c1.actual_date,
        end_date=c1.actual_date + dt.timedelta(days=20), dose_value=1, dose_unit="mg")
    users = {
        "dm": make_user("mx_dm", "data_manager", (trial, None)),
        "monitor": make_user("mx_cra", "monitor", (trial, None)),
        "inv": make_user("mx_pi", "investigator", (trial, site_a), password=PASSWORD),
        "nurse_b": make_user("mx_nurse_b", "site_staff", (trial, site_b)),
        "stranger": make_user("mx_other", "data_manager", (make_trial(), None)),
    }
    signatures.sign(users["inv"], c1, PASSWORD)
    queries.open_query(exposure, "Weight?", users["monitor"], "weight_kg")
    sdv.verify(c1, users["monitor"])
    locks.change_lock(users["dm"], "visit", q1, "lock", "visit cleaned")
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "subject": subject,
            "other": other, "exposure": exposure, "period": period, **users}


def _cells(body, subject_number):
    row = next(r for r in body["subjects"] if r["subject_number"] == subject_number)
    return row, {code: {f["form"]: f["status"] for f in cell["forms"]}
                 for code, cell in row["visits"].items()}


def test_matrix_shows_every_form_of_every_visit_with_its_status(api, trial_world):
    api.force_authenticate(trial_world["dm"])
    url = f"/api/v1/trials/{trial_world['trial'].pk}/status-matrix/"
    response = api.get(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == ["C1", "C2", "Q1", "A1"]  # schedule order (study day)
    row, cells = _cells(body, "A001")
    # C1 done, exposure entered with an open query; the visit verified; both signed.
    assert cells["C1"]["visits.visit"] == ["entered", "verified", "signed"]
    assert cells["C1"]["visits.exposure"] == ["entered", "queried", "signed"]
    # C2 overdue: the visit and its planned exposure are missing.
    assert row["visits"]["C2"]["overdue"] is True
    assert cells["C2"] == {"visits.visit": ["missing"], "visits.exposure": ["missing"]}
    # A1 ahead: visit, tumour assessment and QLQ-C30 form due.
    assert cells["A1"] == {"visits.visit": ["due"], "visits.tumourassessment": ["due"],
                           "visits.qlqc30form": ["due"]}
    # Q1 done without its QLQ-C30 form, under a visit lock.
    assert cells["Q1"] == {"visits.visit": ["entered", "locked"],
                           "visits.qlqc30form": ["missing"]}
    subject_forms = {f["form"]: f for f in row["subject_forms"]}
    assert subject_forms["subjects.subject"]["status"] == ["entered"]
    assert subject_forms["visits.exposure"]["records"] == [trial_world["period"].pk]
    assert body["totals"]["missing"] == 3 and body["totals"]["due"] == 4 + 1  # B001's C1
    assert {r["subject_number"] for r in body["subjects"]} == {"A001", "B001"}


def test_matrix_is_filtered_by_site_and_scoped(api, trial_world):
    trial = trial_world["trial"]
    url = f"/api/v1/trials/{trial.pk}/status-matrix/"
    api.force_authenticate(trial_world["dm"])
    only_b = api.get(url, {"site": trial_world["site_b"].pk}).json()
    assert [r["subject_number"] for r in only_b["subjects"]] == ["B001"]
    assert only_b["site"] == "B"
    api.force_authenticate(trial_world["nurse_b"])  # site B only
    mine = api.get(url).json()
    assert [r["subject_number"] for r in mine["subjects"]] == ["B001"]
    refused = api.get(url, {"site": trial_world["site_a"].pk})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "site"
    assert api.get(url, {"page": "x"}).json()["errors"][0]["field"] == "page"
    assert api.get(url, {"page": "9"}).status_code == 400
    api.force_authenticate(trial_world["stranger"])
    assert api.get(url).status_code == 404


def test_matrix_admin_page_is_linked_from_the_dashboard(client, trial_world):
    trial = trial_world["trial"]
    client.force_login(trial_world["dm"])
    dashboard = client.get(f"/admin/trials/trial/{trial.pk}/dashboard/")
    assert f"/admin/trials/trial/{trial.pk}/status-matrix/" in dashboard.content.decode()
    page = client.get(f"/admin/trials/trial/{trial.pk}/status-matrix/",
                      {"site": trial_world["site_a"].pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('class="td-matrix-row"') == 1
    assert text.count("td-badge td-missing") == 3 and "td-badge td-locked" in text
    client.force_login(trial_world["stranger"])
    assert client.get(f"/admin/trials/trial/{trial.pk}/status-matrix/").status_code == 404
