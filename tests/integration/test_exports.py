"""Sponsor safety exports: roles, site scope, blinding, SDTM content, records (PostgreSQL).

Decisions under test (exports.services): sponsor, data manager, monitor, investigator and admin
may export; site staff are refused (403); a site-level membership (the investigator of site A)
gets site A's rows only and a 404 for site B; a blinded user sees neutral arm labels and
confounded treatments, an unblinded one the true arms; sponsors get no birth dates.
SDTMIG 3.4: variable names, ISO 8601 dates, --DY without day 0, AESEQ unique per subject;
CDISC Dataset-JSON 1.1 structure (tests.unit.test_sdtm_dataset_json).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections import Counter

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from openpyxl import load_workbook

from adverse_events import services as ae_services
from data_management.deviations import report_deviation
from edc.core.audit import history
from exports.models import ExportRecord
from subjects.enrollment import enroll
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_dm_qlq_form,
    make_dm_visit,
    make_eligible,
    make_exposure,
    make_site,
    make_subject,
    make_user,
    record_ae,
)
from tests.unit.test_sdtm_dataset_json import check_dataset_json

pytestmark = pytest.mark.django_db

INFUSION = dt.date(2025, 2, 3)
NEUTROPENIA, ANEMIA, FATIGUE = "10029366", "10002272", "10016256"
AE_VARIABLES = ["STUDYID", "DOMAIN", "USUBJID", "AESEQ", "AETERM", "AELLT", "AELLTCD",
                "AEDECOD", "AEPTCD", "AEHLT", "AEHLTCD", "AEHLGT", "AEHLGTCD", "AEBODSYS",
                "AEBDSYCD", "AESOC", "AESOCCD", "AESER", "AEACN", "AEREL", "AEOUT", "AESCONG",
                "AESDISAB", "AESDTH", "AESHOSP", "AESLIFE", "AESMIE", "AETOXGR", "EPOCH",
                "AESTDTC", "AEENDTC", "AESTDY", "AEENDY"]
ISO_DATE = "%Y-%m-%d"


def days(n: int) -> dt.date:
    return INFUSION + dt.timedelta(days=n)


# --------------------------------------------------------------------------------- the world


@pytest.fixture
def world():
    """Open-label seed trial NCT05699811: site A (2 subjects), site B (1), AEs, a TI flag."""
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    version = trial.current_version()
    site_a, site_b = make_site(trial, "A1"), make_site(trial, "B1")
    mono, dl1 = version.arms.get(code="MONO"), version.dose_levels.get(code="DL1")

    def subject(site, number, **kwargs):
        s = make_subject(trial, site, protocol_version=version, status="on_treatment",
                         arm=mono, subject_number=number, day0=INFUSION, enrolled_on=INFUSION,
                         dose_level=dl1, cohort=1, birth_date=dt.date(1970, 5, 1), **kwargs)
        make_exposure(s, "MSC-IFNA", INFUSION, dose_value=2000000, dose_unit="cells/kg")
        return s

    a1, a2, b1 = subject(site_a, "A001"), subject(site_a, "A002"), subject(site_b, "B001")
    for s in (a1, b1):  # SDTM DV rows at both sites
        report_deviation(s.exposures.get(), "eligibility", "Inclusion 7 waived by sponsor",
                         None, INFUSION)
    ti = record_ae(a1, NEUTROPENIA, [(3, days(1), days(8))], {"MSC-IFNA": "possible"})
    record_ae(a1, ANEMIA, [(2, days(-3), days(2))], {"MSC-IFNA": "unrelated"})
    record_ae(a2, FATIGUE, [(1, days(10), None)], {"MSC-IFNA": "unlikely"})
    record_ae(b1, FATIGUE, [(2, days(3), days(5)), (3, days(6), days(9))],
              {"MSC-IFNA": "probable"}, serious=True, sae_hospitalization=True,
              aware_at=dt.datetime(2025, 2, 9, 8, tzinfo=dt.UTC), outcome="recovered",
              action_taken="drug_interrupted")
    for s in (a1, a2, b1):
        ae_services.evaluate_toxicity(s.pk)
    make_dm_qlq_form(make_dm_visit(a1, "Q1", target_date=days(14)), q1=2, q29=6)
    make_dm_qlq_form(make_dm_visit(b1, "Q1", target_date=days(14)), q1=1)
    users = {
        "sponsor": make_user("x_sponsor", "sponsor", (trial, None)),
        "data_manager": make_user("x_dm", "data_manager", (trial, None)),
        "monitor": make_user("x_monitor", "monitor", (trial, None)),
        "investigator": make_user("x_pi", "investigator", (trial, site_a)),
        "site_staff": make_user("x_nurse", "site_staff", (trial, site_a)),
        "admin": User.objects.create_superuser("x_admin", password="pw-for-tests-1"),
        "outsider": make_user("x_other", "sponsor"),
    }
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "subjects": (a1, a2, b1),
            "ti_ae": ti, "users": users}


ROW_ENDPOINTS = [("/api/v1/exports/ae-listing/", fmt) for fmt in ("csv", "xlsx")] + [
    (f"/api/v1/exports/sdtm/{domain}/", fmt)
    for domain in ("ae", "suppae", "ex", "qs", "dm", "dv") for fmt in ("csv", "json")]
SUMMARY_ENDPOINTS = [(f"/api/v1/exports/summaries/{name}/", fmt)
                     for name in ("ae-incidence", "dlt") for fmt in ("json", "csv")]
ENDPOINTS = ROW_ENDPOINTS + SUMMARY_ENDPOINTS


def fetch(api, user, url, **params):
    api.force_authenticate(user)
    return api.get(url, params)


def content(response) -> bytes:
    """The body (a streamed one is read once and kept)."""
    if not response.streaming:
        return response.content
    if not hasattr(response, "_test_body"):
        response._test_body = b"".join(response.streaming_content)
    return response._test_body


def rows_of(response, fmt: str) -> list[dict]:
    """Records of any export format as dicts (Dataset-JSON and summaries included)."""
    data = content(response)
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    if fmt == "xlsx":
        sheet = load_workbook(io.BytesIO(data), read_only=True).active
        header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
        width = len(header)  # read-only sheets drop trailing empty cells
        return [dict(zip(header, r + [None] * (width - len(r)), strict=True)) for r in rows]
    doc = json.loads(data)
    if "datasetJSONVersion" in doc:
        check_dataset_json(doc)
        names = [c["name"] for c in doc["columns"]]
        return [dict(zip(names, r, strict=True)) for r in doc["rows"]]
    return doc["rows"]


def text_of(response, fmt: str) -> str:
    if fmt == "xlsx":
        return json.dumps(rows_of(response, fmt), default=str)
    return content(response).decode("utf-8")


# ------------------------------------------------------------------------- roles and scope


ROLE_STATUS = [("sponsor", 200), ("data_manager", 200), ("monitor", 200), ("admin", 200),
               ("investigator", 200), ("site_staff", 403), ("outsider", 404), (None, 401)]


def test_roles_on_every_export_endpoint(api, world):
    """Every endpoint x format x role (one fixture: the loop keeps the suite fast)."""
    problems = []
    for url, fmt in ENDPOINTS:
        for role, status in ROLE_STATUS:
            user = world["users"][role] if role else None
            before = ExportRecord.objects.filter(state="done").count()
            response = fetch(api, user, url, trial=world["trial"].pk, output=fmt)
            if response.status_code != status:
                problems.append((url, fmt, role, response.status_code))
                continue
            if status != 200:
                body = json.loads(content(response))
                if response["Content-Type"] != "application/json" or not body["errors"]:
                    problems.append((url, fmt, role, "error shape"))
                continue
            rows_of(response, fmt)  # parses (and Dataset-JSON validates); completes the record
            if ExportRecord.objects.filter(state="done").count() != before + 1:
                problems.append((url, fmt, role, "no export record"))
    assert problems == []


def test_roles_on_background_exports(api, world):
    for role, status in (("sponsor", 202), ("investigator", 202), ("site_staff", 403),
                         ("outsider", 404), (None, 401)):
        api.force_authenticate(world["users"][role] if role else None)
        response = api.post("/api/v1/exports/records/", {
            "dataset": "sdtm_ae", "format": "json", "trial": world["trial"].pk}, format="json")
        assert response.status_code == status, (role, response.content)
    api.force_authenticate(world["users"]["site_staff"])
    assert api.get("/api/v1/exports/records/").status_code == 403
    assert api.get("/api/v1/exports/sdtm/").status_code == 403
    api.force_authenticate(world["users"]["sponsor"])
    wrong = api.post("/api/v1/exports/records/", {
        "dataset": "sdtm_ae", "format": "xlsx", "trial": world["trial"].pk}, format="json")
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["field"] == "format"


def test_site_level_membership_gets_its_site_only(api, world):
    trial, site_a, site_b = world["trial"], world["site_a"], world["site_b"]
    pi, sponsor = world["users"]["investigator"], world["users"]["sponsor"]
    for url, fmt in ENDPOINTS:
        mine = fetch(api, pi, url, trial=trial.pk, output=fmt)
        everyone = fetch(api, sponsor, url, trial=trial.pk, output=fmt)
        assert mine.status_code == everyone.status_code == 200, url
        if "summaries" in url:
            if fmt == "json":
                assert json.loads(content(mine))["site_ids"] == [site_a.pk]
                assert {site_a.pk, site_b.pk} <= set(json.loads(content(everyone))["site_ids"])
            subjects = "arm_subjects" if "incidence" in url else "subjects"
            assert {int(r[subjects]) for r in rows_of(mine, fmt)} == {2}, url
            assert {int(r[subjects]) for r in rows_of(everyone, fmt)} == {3}, url
        else:
            key = "USUBJID" if "sdtm" in url else "Subject (USUBJID)"
            mine_rows, all_rows = rows_of(mine, fmt), rows_of(everyone, fmt)
            assert mine_rows and all(f"-{site_a.code}-" in r[key] for r in mine_rows), url
            assert any(f"-{site_b.code}-" in r[key] for r in all_rows), url
            assert len(all_rows) > len(mine_rows), url
        refused = fetch(api, pi, url, trial=trial.pk, site=site_b.pk, output=fmt)
        assert refused.status_code == 404, url
        only_b = fetch(api, sponsor, url, trial=trial.pk, site=site_b.pk, output=fmt)
        assert only_b.status_code == 200, url
        content(only_b)


def test_dm_has_no_birth_date_for_sponsors(api, world):
    url = "/api/v1/exports/sdtm/dm/"
    sponsor = rows_of(fetch(api, world["users"]["sponsor"], url, trial=world["trial"].pk,
                            output="csv"), "csv")
    assert "BRTHDTC" not in sponsor[0] and "1970" not in json.dumps(sponsor)
    dm = rows_of(fetch(api, world["users"]["data_manager"], url, trial=world["trial"].pk,
                       output="json"), "json")
    assert {r["BRTHDTC"] for r in dm} == {"1970-05-01"}
    assert ExportRecord.objects.get(requested_by=world["users"]["sponsor"]).birth_dates is False


# ----------------------------------------------------------------------------- SDTM content


def test_sdtm_ae_csv_and_dataset_json(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    csv_response = fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk)
    assert csv_response.streaming and csv_response["Content-Type"].startswith("text/csv")
    assert csv_response["Content-Disposition"] == 'attachment; filename="NCT05699811_ae.csv"'
    text = content(csv_response).decode()
    assert text.splitlines()[0].split(",") == AE_VARIABLES
    rows = rows_of(csv_response, "csv")
    assert len(rows) == 4
    keys = [(r["USUBJID"], r["AESEQ"]) for r in rows]
    assert len(set(keys)) == len(keys)  # AESEQ unique per subject
    for r in rows:
        assert r["STUDYID"] == "NCT05699811" and r["DOMAIN"] == "AE"
        start = dt.datetime.strptime(r["AESTDTC"], ISO_DATE).date()
        assert int(r["AESTDY"]) == ((start - INFUSION).days + 1 if start >= INFUSION
                                    else (start - INFUSION).days)
        assert int(r["AESTDY"]) != 0
        if r["AEENDTC"]:
            dt.datetime.strptime(r["AEENDTC"], ISO_DATE)
    early = next(r for r in rows if r["AEDECOD"] == "Anemia")
    assert (early["AESTDTC"], early["AESTDY"], early["EPOCH"]) == ("2025-01-31", "-3",
                                                                    "SCREENING")
    serious = next(r for r in rows if r["USUBJID"] == "NCT05699811-B1-B001")
    assert (serious["AESER"], serious["AESHOSP"], serious["AESDTH"], serious["AETOXGR"],
            serious["AEREL"], serious["AEACN"]) == ("Y", "Y", "N", "3", "PROBABLY RELATED",
                                                    "DRUG INTERRUPTED")
    ongoing = next(r for r in rows if r["USUBJID"].endswith("A002"))
    assert (ongoing["AEENDTC"], ongoing["AEENDY"]) == ("", "")

    json_response = fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk,
                          output="json")
    assert json_response["Content-Type"] == "application/json"
    doc = json.loads(content(json_response))
    check_dataset_json(doc)
    assert (doc["name"], doc["itemGroupOID"], doc["studyOID"], doc["records"]) == (
        "AE", "IG.AE", "NCT05699811", 4)
    record = ExportRecord.objects.get(pk=json_response["X-Export-Record"])
    assert doc["fileOID"].endswith(str(record.uid))
    names = [c["name"] for c in doc["columns"]]
    assert names == AE_VARIABLES
    as_text = [{k: "" if v is None else str(v) for k, v in zip(names, row, strict=True)}
               for row in doc["rows"]]
    assert as_text == rows  # the same records in both formats


def test_suppae_carries_the_effective_ti_flag(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    ae_rows = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk), "csv")
    supp = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/suppae/", trial=trial.pk), "csv")
    neutropenia = next(r for r in ae_rows if r["AEDECOD"] == "Neutrophil count decreased")
    hits = [r for r in supp if r["QVAL"] == "Y"]
    assert [(r["USUBJID"], r["IDVAR"], r["IDVARVAL"], r["QNAM"], r["QORIG"]) for r in hits] == [
        (neutropenia["USUBJID"], "AESEQ", neutropenia["AESEQ"], "AETI", "DERIVED")]
    parents = {(r["USUBJID"], r["AESEQ"]) for r in ae_rows}
    assert all((r["USUBJID"], r["IDVARVAL"]) in parents for r in supp)
    assert {r["RDOMAIN"] for r in supp} == {"AE"}
    listing = rows_of(fetch(api, sponsor, "/api/v1/exports/ae-listing/", trial=trial.pk), "csv")
    flagged = next(r for r in listing if r["CTCAE term"] == "Neutrophil count decreased")
    assert (flagged["TI"], flagged["Worst grade (CTCAE v5.0)"]) == ("Y", "3")
    assert flagged["Attribution"] == "MSC-IFNA: possible"
    assert flagged["Arm"] == "MSC-IFNα monotherapy"


def test_ex_qs_dm_domains(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    ex = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/ex/", trial=trial.pk,
                       output="json"), "json")
    assert len(ex) == 3
    assert {(r["EXDOSE"], r["EXDOSU"], r["EXSTDTC"], r["EXSTDY"], r["EPOCH"]) for r in ex} == {
        ("2000000", "cells/kg", "2025-02-03", 1, "TREATMENT")}
    qs = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/qs/", trial=trial.pk), "csv")
    assert len(qs) == 60
    assert Counter(r["USUBJID"] for r in qs) == {"NCT05699811-A1-A001": 30,
                                                  "NCT05699811-B1-B001": 30}
    assert [r["QSTESTCD"] for r in qs[:30]] == [f"EOR01{n:02d}" for n in range(1, 31)]
    first, item29, missing = qs[0], qs[28], qs[1]
    assert (first["QSCAT"], first["QSORRES"], first["QSSTRESN"], first["QSDTC"],
            first["QSDY"], first["VISIT"]) == ("EORTC QLQ-C30 V3.0", "A little", "2",
                                                "2025-02-17", "15", "Q1")
    assert item29["QSSTRESN"] == "6"
    assert (missing["QSORRES"], missing["QSSTAT"]) == ("", "NOT DONE")
    dm = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/dm/", trial=trial.pk), "csv")
    assert len(dm) == 3
    a1 = next(r for r in dm if r["SUBJID"] == "A001")
    assert (a1["RFSTDTC"], a1["RFXSTDTC"], a1["SITEID"], a1["ARMCD"], a1["ACTARMCD"],
            a1["AGE"], a1["AGEU"], a1["SEX"]) == ("2025-02-03", "2025-02-03", "A1", "MONO",
                                                  "MONO", "54", "YEARS", "F")


def test_date_range_filters_on_onset(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    rows = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk,
                         date_from=days(1).isoformat(), date_to=days(3).isoformat()), "csv")
    assert sorted(r["AESTDTC"] for r in rows) == ["2025-02-04", "2025-02-06"]
    every = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk), "csv")
    numbering = {(r["USUBJID"], r["AETERM"]): r["AESEQ"] for r in every}
    assert all(numbering[(r["USUBJID"], r["AETERM"])] == r["AESEQ"] for r in rows)
    bad = fetch(api, sponsor, "/api/v1/exports/sdtm/ae/", trial=trial.pk,
                date_from="2025-03-01", date_to="2025-02-01")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "date_to"


def test_xlsx_listing(api, world):
    response = fetch(api, world["users"]["monitor"], "/api/v1/exports/ae-listing/",
                     trial=world["trial"].pk, output="xlsx")
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    rows = rows_of(response, "xlsx")
    assert len(rows) == 4 and rows[0]["Study"] == "NCT05699811"
    record = ExportRecord.objects.get(pk=response["X-Export-Record"])
    assert record.sha256 == hashlib.sha256(content(response)).hexdigest()


def test_summaries(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    table = json.loads(content(fetch(api, sponsor, "/api/v1/exports/summaries/ae-incidence/",
                                     trial=trial.pk)))
    fatigue = [r for r in table["rows"] if r["term"] == "Fatigue"]
    assert sorted((r["worst_grade"], r["subjects"], r["events"], r["arm_subjects"])
                  for r in fatigue) == [(1, 1, 1, 3), (3, 1, 1, 3)]
    assert {r["arm"] for r in table["rows"]} == {"MSC-IFNα monotherapy"}
    assert all(r["percent"] == round(100 * r["subjects"] / 3, 1) for r in table["rows"])
    dlt = json.loads(content(fetch(api, sponsor, "/api/v1/exports/summaries/dlt/",
                                   trial=trial.pk)))
    assert dlt["rows"] == [{"dose_level": "DL1: 2e+6 cells/kg", "cohort": 1, "subjects": 3,
                            "subjects_with_dlt": 0, "dlt_events": 0, "subjects_with_ti": 1,
                            "ti_events": 1}]


# ------------------------------------------------------------------------------- blinding


TRUE_LABELS = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO_M0",
               "PBO")


@pytest.fixture
def blinded():
    load_ctcae_terms()
    trial = load_seed_trial("NCT06722105")
    site = make_site(trial, "P1")
    version = trial.current_version()
    subjects = []
    for n in range(3):
        s = make_eligible(make_subject(trial, site, age_at_consent=40 + n))
        enroll(s, enrolled_on=dt.date(2025, 1, 6))
        s.refresh_from_db()
        agent = "PBO" if s.arm.code == "PBO_M0_M3" else "MSC-AT"
        make_exposure(s, agent, dt.date(2025, 1, 6), dose_value=5 if agent == "PBO" else 2e6,
                      dose_unit="mL" if agent == "PBO" else "cells/kg")
        record_ae(s, FATIGUE, [(1, dt.date(2025, 1, 8), dt.date(2025, 1, 9))],
                  {agent: "possible"})
        subjects.append(s)
    return {
        "trial": trial, "site": site, "subjects": subjects, "version": version,
        "blind": make_user("b_sponsor", "sponsor", (trial, None)),
        "open": make_user("b_stat", "sponsor", (trial, None), unblinded=True),
    }


def test_blinded_sponsor_sees_neutral_labels_everywhere(api, blinded):
    trial = blinded["trial"]
    arms = {s.arm.label for s in blinded["subjects"]}
    for url, fmt in ENDPOINTS:
        response = fetch(api, blinded["blind"], url, trial=trial.pk, output=fmt)
        assert response.status_code == 200, url
        text = text_of(response, fmt)
        assert [label for label in TRUE_LABELS if label in text] == [], (url, fmt)
        unblinded = fetch(api, blinded["open"], url, trial=trial.pk, output=fmt)
        assert unblinded.status_code == 200, url
        if "listing" in url or "/dm/" in url or "incidence" in url:
            assert "Blinded" in text and "Treatment group " not in text, url
            assert all(label in text_of(unblinded, fmt) for label in arms), url
        else:
            content(unblinded)
        if "/ex/" in url:
            rows = rows_of(fetch(api, blinded["blind"], url, trial=trial.pk, output=fmt), fmt)
            assert {r["EXDOSE"] or None for r in rows} == {None}
            assert all(r["EXTRT"].startswith("Blinded study treatment") for r in rows)


def test_unblinded_export_is_recorded_as_such(api, blinded):
    for user, unblinded in ((blinded["blind"], False), (blinded["open"], True)):
        fetch(api, user, "/api/v1/exports/sdtm/dm/", trial=blinded["trial"].pk)
        assert ExportRecord.objects.get(requested_by=user).unblinded is unblinded


# --------------------------------------------------------------------------- export records


def test_every_pull_is_recorded_with_checksum_and_rows(api, world):
    sponsor = world["users"]["sponsor"]
    response = fetch(api, sponsor, "/api/v1/exports/sdtm/qs/", trial=world["trial"].pk,
                     site=world["site_a"].pk, output="json")
    data = content(response)
    record = ExportRecord.objects.get(pk=response["X-Export-Record"])
    assert (record.state, record.mode, record.dataset, record.format) == (
        "done", "stream", "sdtm_qs", "json")
    assert (record.row_count, record.rows_total, record.size_bytes) == (30, 30, len(data))
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert (record.site_id, record.site_ids, record.unblinded) == (
        world["site_a"].pk, [world["site_a"].pk], True)
    assert record.requested_by == sponsor and record.finished_at >= record.started_at
    events = history(record)
    assert [e["event"] for e in events][0] == "insert"
    assert events[-1]["reason"] == "export completed"
    listed = api.get("/api/v1/exports/records/").json()["results"]
    assert [r["id"] for r in listed] == [record.pk]
    assert listed[0]["sha256"] == record.sha256 and listed[0]["progress"] == 1.0
    api.force_authenticate(world["users"]["monitor"])
    assert api.get(f"/api/v1/exports/records/{record.pk}/").status_code == 404
    with (pytest.raises(DatabaseError, match="Cannot delete"), transaction.atomic(),
          connection.cursor() as cursor):
        cursor.execute("DELETE FROM exports_exportrecord WHERE id = %s", [record.pk])


def test_too_large_to_stream_is_refused_and_recorded(api, world, settings):
    settings.EXPORT_SYNC_MAX_ROWS = 2
    response = fetch(api, world["users"]["sponsor"], "/api/v1/exports/sdtm/ae/",
                     trial=world["trial"].pk)
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "too_large"
    record = ExportRecord.objects.get()
    assert (record.state, record.rows_total) == ("refused", 4)


@pytest.mark.django_db(transaction=True)  # closing the response closes the connection
def test_a_client_that_goes_away_leaves_an_aborted_record(api, world, monkeypatch):
    monkeypatch.setattr("exports.engine.BATCH", 1)
    response = fetch(api, world["users"]["sponsor"], "/api/v1/exports/sdtm/ae/",
                     trial=world["trial"].pk)
    stream = iter(response.streaming_content)
    next(stream), next(stream)
    response.close()  # what a WSGI server does when the client goes away
    record = ExportRecord.objects.get()
    assert record.state == "aborted" and record.row_count == 1 and not record.sha256


def test_domain_catalogue_and_unknown_domain(api, world):
    api.force_authenticate(world["users"]["sponsor"])
    catalogue = api.get("/api/v1/exports/sdtm/").json()
    assert [d["domain"] for d in catalogue] == ["AE", "SUPPAE", "EX", "DV", "QS", "DM", "SV",
                                                "DS", "IE", "TS", "TU", "TR", "RS", "TE", "TA",
                                                "TV", "TI"]
    assert api.get("/api/v1/exports/sdtm/lb/", {"trial": world["trial"].pk}).status_code == 404
    missing = api.get("/api/v1/exports/sdtm/ae/")
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "trial"
