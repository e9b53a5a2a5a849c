"""The trial-wide audit explorer (issue 20): every audit event of a trial's records, filtered
by user, subject, record type, site, date range and reason text, exported as CSV; scoped by
membership and blinded (allocation rows and fields hidden, products masked)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone

from edc.core.audit import change_reason
from subjects.enrollment import enroll
from tests.factories import (
    load_seed_trial,
    make_dm_visit,
    make_eligible,
    make_site,
    make_subject,
    make_trial,
    make_user,
)

pytestmark = pytest.mark.django_db
DAY0 = timezone.localdate() - dt.timedelta(days=30)


@pytest.fixture
def audited():
    trial = make_trial()
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    users = {
        "dm": make_user("ax_dm", "data_manager", (trial, None)),
        "nurse_a": make_user("ax_nurse_a", "site_staff", (trial, site_a)),
        "nurse_b": make_user("ax_nurse_b", "site_staff", (trial, site_b)),
        "sponsor": make_user("ax_sponsor", "sponsor", (trial, None)),
        "stranger": make_user("ax_other", "data_manager", (make_trial(), None)),
    }
    a = make_subject(trial, site_a, subject_number="A001", birth_date=dt.date(1970, 3, 4),
                     age_at_consent=None)
    b = make_subject(trial, site_b, subject_number="B001")
    visit = make_dm_visit(a, "C1")
    with change_reason("=HYPERLINK(\"http://x\") sex corrected from source", users["nurse_a"]):
        a.sex = "M"
        a.save()
    with change_reason("window moved after the amendment", users["nurse_b"]):
        visit.window_high = visit.window_high + dt.timedelta(days=1)
        visit.save()
    with change_reason("consent date corrected", users["nurse_b"]):
        b.consent_date = dt.date(2025, 1, 3)
        b.save()
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "a": a, "b": b,
            "visit": visit, **users}


def _url(trial, suffix=""):
    return f"/api/v1/trials/{trial.pk}/audit-trail/{suffix}"


def _get(api, trial, **params):
    response = api.get(_url(trial), params)
    assert response.status_code == 200, response.content
    return response.json()


def test_trial_audit_trail_lists_every_change_with_old_and_new_values(api, audited):
    trial = audited["trial"]
    api.force_authenticate(audited["dm"])
    body = _get(api, trial)
    rows = body["results"]
    assert body["count"] == len(rows) >= 7  # 2 sites, 2 subjects, a visit, 3 changes
    a001 = [r["event"] for r in rows if r["record_type"] == "subjects.subject"
            and r["subject"] == "A001"]
    assert a001 == ["update", "insert"]  # newest first
    sex = next(r for r in rows if r["reason"] and "sex corrected" in r["reason"])
    assert sex["record_type"] == "subjects.subject" and sex["subject"] == "A001"
    assert sex["site"] == "A" and sex["username"] == "ax_nurse_a"
    assert sex["changes"] == {"sex": ["F", "M"]}  # only what changed, no bookkeeping
    window = next(r for r in rows if r["record_type"] == "visits.visit" and r["reason"])
    old, new = window["changes"]["window_high"]
    assert dt.date.fromisoformat(new) - dt.date.fromisoformat(old) == dt.timedelta(days=1)


def test_filters_by_user_subject_record_type_site_dates_and_reason(api, audited):
    trial = audited["trial"]
    api.force_authenticate(audited["dm"])

    def reasons(**params):
        return sorted(r["reason"] or "" for r in _get(api, trial, **params)["results"])

    assert reasons(user="ax_nurse_b") == ["consent date corrected",
                                          "window moved after the amendment"]
    assert reasons(user=str(audited["nurse_a"].pk))[0].endswith("sex corrected from source")
    assert {r["subject"] for r in _get(api, trial, subject=audited["a"].pk)["results"]} == {
        "A001"}
    assert {r["record_type"] for r in _get(api, trial, record_type="visits.visit")[
        "results"]} == {"visits.visit"}
    assert {r["site"] for r in _get(api, trial, site=audited["site_b"].pk)["results"]} == {"B"}
    today = timezone.now().date()
    assert _get(api, trial, date_from=str(today + dt.timedelta(days=1)))["count"] == 0
    assert _get(api, trial, date_to=str(today - dt.timedelta(days=1)))["count"] == 0
    assert _get(api, trial, date_from=str(today), date_to=str(today))["count"] >= 7
    assert reasons(reason="AMENDMENT") == ["window moved after the amendment"]
    for bad in ({"subject": audited["b"].pk + 999}, {"record_type": "auth.user"},
                {"date_from": "yesterday"}, {"site": "x"}, {"page": "0"},
                {"user": "a\x00"}, {"reason": "\x00"}):
        response = api.get(_url(trial), bad)
        assert response.status_code == 400, (bad, response.content)
        assert response.json()["errors"][0]["field"] == next(iter(bad))


def test_audit_trail_is_scoped_by_membership(api, audited):
    trial = audited["trial"]
    api.force_authenticate(audited["nurse_b"])
    rows = _get(api, trial)["results"]
    assert {r["site"] for r in rows} <= {"B", None} and "A001" not in {r["subject"] for r in rows}
    assert api.get(_url(trial), {"subject": audited["a"].pk}).status_code == 400
    api.force_authenticate(audited["sponsor"])  # sponsors read no birth date
    inserted = next(r for r in _get(api, trial, subject=audited["a"].pk)["results"]
                    if r["record_type"] == "subjects.subject" and r["event"] == "insert")
    assert "birth_date" not in inserted["changes"] and "sex" in inserted["changes"]
    api.force_authenticate(audited["stranger"])
    assert api.get(_url(trial)).status_code == 404


def test_csv_export_has_one_line_per_changed_value_and_defuses_formulas(api, client, audited):
    trial = audited["trial"]
    api.force_authenticate(audited["dm"])
    response = api.get(_url(trial, "export/"), {"subject": audited["a"].pk})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    sex = [line for line in lines if line["field"] == "sex" and line["old"]]
    assert [(line["old"], line["new"], line["username"]) for line in sex] == [
        ("F", "M", "ax_nurse_a")]
    assert sex[0]["reason"].startswith("'=HYPERLINK")  # not a formula in a spreadsheet
    assert {line["subject"] for line in lines} == {"A001"}
    assert lines[0]["event"] == "insert"  # oldest first
    client.force_login(audited["dm"])
    page = client.get(f"/admin/trials/trial/{trial.pk}/audit-trail/",
                      {"reason": "consent", "site": audited["site_b"].pk})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count('class="audit-row"') == 1 and "consent date corrected" in text
    assert f"/admin/trials/trial/{trial.pk}/audit-trail/export/?reason=consent" in text
    export = client.get(f"/admin/trials/trial/{trial.pk}/audit-trail/export/",
                        {"user": "ax_nurse_b"})
    assert b"window moved" in b"".join(export.streaming_content)
    dashboard = client.get(f"/admin/trials/trial/{trial.pk}/dashboard/").content.decode()
    assert f"/admin/trials/trial/{trial.pk}/audit-trail/" in dashboard


def test_blinded_users_see_no_allocation_in_the_audit_trail(api):
    trial = load_seed_trial("NCT06722105")  # double-blind, placebo-controlled
    site = trial.sites.first()
    blinded = make_user("ax_blind_dm", "data_manager", (trial, None))
    unblinded = make_user("ax_stat", "data_manager", (trial, None), unblinded=True)
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)
    api.force_authenticate(unblinded)
    seen = _get(api, trial, subject=subject.pk)["results"]
    assert any("arm_id" in r["changes"] for r in seen)
    assert "subjects.randomizationslot" in {r["record_type"] for r in seen}
    api.force_authenticate(blinded)
    body = _get(api, trial)
    types = {r["record_type"] for r in body["results"]}
    assert types & {"subjects.randomizationslot", "trials.arm", "trials.intervention",
                    "trials.protocolversion"} == set()
    assert not any({"arm_id", "intervention"} & set(r["changes"]) for r in body["results"])
    text = api.get(_url(trial, "export/")).getvalue().decode()
    for secret in ("PBO", "Placebo", "MSC_M0_PBO_M3", "arm_id"):
        assert secret not in text and secret not in str(body)
    assert api.get(_url(trial), {"record_type": "subjects.randomizationslot"}).status_code == 400
