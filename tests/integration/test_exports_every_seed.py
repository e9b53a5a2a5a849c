"""Every dataset of the export catalogue, in every format, for each of the five seed trials
(issue 18, acceptance 1), through the API (PostgreSQL).

Each trial gets subjects enrolled through ``subjects.enrollment`` (schedules from its protocol
file), a treatment visit done, an exposure, an AE, a protocol deviation, a tumour assessment
and QLQ-C30 forms where its schedule has them, a screen failure on a criterion. Then every
dataset x format of the catalogue is pulled by a sponsor (in the blinded trial by a blinded
and an unblinded one) and checked: Dataset-JSON against CDISC's official 1.1 schemas (JSON
and NDJSON) and read back by dsjframe; SAS XPORT v5 read back by pyreadstat with the same
names (<= 8 characters), labels (<= 40) and values; CSV with the same header and rows;
Define-XML 2.1 and ODM 1.3.2 against the official XSDs (odmlib's copies, xmlschema). The
datasets agree with each other where SDTM says they must: SV and RS VISITNUM as in TV, DM
arms in TA, IE criteria in TI; TU and TR stay empty (the EDC records no lesion).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from xml.etree import ElementTree

import pyreadstat
import pytest

from data_management.deviations import report_deviation
from exports import odm
from subjects.enrollment import enroll, screen_fail
from subjects.models import EligibilityAnswer
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_dm_qlq_form,
    make_eligible,
    make_exposure,
    make_subject,
    make_user,
    record_ae,
)
from tests.integration import test_exports
from tests.integration.test_exports import content
from tests.integration.test_exports_sdtm_ig34 import _same
from tests.unit.test_define_xml import official_xsd
from tests.unit.test_sdtm_dataset_json import check_dataset_json, check_dataset_ndjson, read_back
from visits import services as visit_services

pytestmark = pytest.mark.django_db

SEEDS = ["NCT05699811", "NCT05962450", "NCT06722105", "NCT05672420", "SHEH-MSC-L"]
CONSENT, DAY0 = dt.date(2024, 12, 20), dt.date(2025, 1, 6)
FATIGUE = "10016256"
ODM_NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}


def _treat(subject, protocol) -> None:
    """First treatment visit done, an exposure, an AE, a deviation; a tumour assessment and
    QLQ-C30 forms where the schedule has them."""
    visits = subject.visits.order_by("target_date", "code")
    first = visits.filter(kind__in=("infusion", "month")).first()
    if first is not None:  # arms given per label only have no treatment visit
        visit_services.record_visit(first, DAY0)
    regimen = protocol.regimens_for(subject.arm.code)[0]
    agent = protocol.intervention(regimen.intervention)
    unit = regimen.dose_unit or ("cells/kg" if agent.cell_product else "mg")
    exposure = make_exposure(subject, agent.code, DAY0, dose_value=2, dose_unit=unit,
                             weight_kg=70)
    record_ae(subject, FATIGUE, [(2, DAY0 + dt.timedelta(days=2), DAY0 + dt.timedelta(days=5))],
              {agent.code: "possible"})
    report_deviation(exposure, "eligibility", "Inclusion 1 waived by the sponsor", None, DAY0)
    assessed = visits.filter(kind__in=("baseline", "assessment")).first()
    if assessed is not None:
        criteria = (protocol.visit_plan.response_criteria or ("RECIST 1.1",))[0]
        visit_services.record_tumour_assessment(
            assessed, assessment_date=assessed.target_date, method="CT", criteria=criteria,
            overall_response="iSD" if criteria == "iRECIST" else "SD")
    for n, visit in enumerate(visits.filter(qlq_c30_due=True)[:2]):
        items = {f"q{i}": 1 + n for i in range(1, 29)} | {"q29": 6 - n, "q30": 6 - n}
        visit_services.score_form(make_dm_qlq_form(visit, **items).pk)
    visit_services.recompute_deterioration(subject.pk)


def build(registry: str):
    """The seed trial with two treated subjects and a screen failure (module doc)."""
    load_ctcae_terms()
    trial = load_seed_trial(registry)
    site = trial.sites.first()
    protocol = trial.current_version().protocol()
    eligibility = protocol.eligibility
    age = max(eligibility.min_age_years or 18, min(eligibility.max_age_years or 99, 50))
    sex = "M" if eligibility.sex == "male" else "F"
    person = {"consent_date": CONSENT, "age_at_consent": age, "sex": sex,
              "birth_date": dt.date(CONSENT.year - age, 1, 1)}
    for _ in range(2):
        subject = enroll(make_eligible(make_subject(trial, site, **person)), enrolled_on=DAY0)
        _treat(subject, protocol)
    failed = make_subject(trial, site, **person)
    criterion = failed.protocol_version.criteria.filter(kind="exclusion").first()
    if criterion is not None:
        EligibilityAnswer.objects.create(subject=failed, criterion=criterion, met=True)
    screen_fail(failed, on=CONSENT + dt.timedelta(days=3), reason="exclusion criterion present")
    return trial


def _rows(body: bytes) -> tuple[list[str], list[dict]]:
    doc = json.loads(body)
    check_dataset_json(doc)
    names = [c["name"] for c in doc["columns"]]
    rows = [dict(zip(names, r, strict=True)) for r in doc["rows"]]
    assert read_back(body) == read_back(json.dumps(doc).encode())  # dsjframe reads it
    return names, rows


def _check_formats(api, dataset: dict) -> list[dict] | None:
    """Every format of one dataset; the records as dicts (row datasets)."""
    urls = {f["format"]: f["url"] for f in dataset["formats"]}
    bodies = {}
    for fmt, url in urls.items():
        response = api.get(url)
        assert response.status_code == 200, (dataset["dataset"], fmt, response.content[:500])
        bodies[fmt] = content(response)
    if "xml" in bodies:
        kind = "define" if dataset["dataset"] == "define_xml" else "odm"
        official_xsd(kind).validate(io.BytesIO(bodies["xml"]))
        return None
    if "xpt" not in bodies:  # listing and summaries: parsed by their own tests
        return None
    names, rows = _rows(bodies["json"])
    nd = check_dataset_ndjson(bodies["ndjson"].decode())
    assert [dict(zip(names, r, strict=True)) for r in nd["rows"]] == rows
    table = list(csv.reader(io.StringIO(bodies["csv"].decode("utf-8"))))
    assert table[0] == names and len(table) == len(rows) + 1
    with tempfile.NamedTemporaryFile(suffix=".xpt") as handle:
        handle.write(bodies["xpt"])
        handle.flush()
        frame, meta = pyreadstat.read_xport(handle.name)
    assert list(frame.columns) == names and all(len(n) <= 8 for n in names)
    labels = json.loads(bodies["json"])["columns"]
    assert meta.column_names_to_labels == {c["name"]: c["label"] for c in labels}
    assert all(len(c["label"]) <= 40 for c in labels)
    back = frame.to_dict("records")
    assert len(back) == len(rows), dataset["dataset"]
    for row, read in zip(rows, back, strict=True):
        bad = [n for n in names if not _same(row[n], read[n])]
        assert bad == [], (dataset["dataset"], bad, row, read)
    return rows


def _check_consistency(data: dict[str, list[dict]], blinded: bool) -> None:
    tv = {r["VISIT"]: r["VISITNUM"] for r in data["sdtm_tv"]}
    planned = [r for r in data["sdtm_sv"] if r["VISIT"] in tv]
    assert planned, "no scheduled visit in SV"
    assert all(r["VISITNUM"] == tv[r["VISIT"]] for r in planned)
    sv = {(r["USUBJID"], r["VISIT"]): r["VISITNUM"] for r in data["sdtm_sv"]}
    assert all(sv[r["USUBJID"], r["VISIT"]] == r["VISITNUM"] for r in data["sdtm_rs"])
    arms = {r["ARMCD"] for r in data["sdtm_ta"]}
    assert {r["ARMCD"] for r in data["sdtm_dm"] if r["ARMCD"]} <= arms
    assert {r["ETCD"] for r in data["sdtm_ta"]} == {r["ETCD"] for r in data["sdtm_te"]}
    assert arms == {"BLINDED"} if blinded else "BLINDED" not in arms
    assert {r["IETESTCD"] for r in data["sdtm_ie"]} <= {r["IETESTCD"] for r in data["sdtm_ti"]}
    assert data["sdtm_tu"] == [] and data["sdtm_tr"] == []
    for name in ("sdtm_dm", "sdtm_ae", "sdtm_ex", "sdtm_sv", "sdtm_ds", "sdtm_ts", "sdtm_dv"):
        assert data[name], name


@pytest.mark.parametrize("registry", SEEDS)
def test_every_dataset_of_every_seed_trial_exports_and_validates(api, registry):
    trial = build(registry)
    users = [make_user("seed_sponsor", "sponsor", (trial, None), unblinded=True)]
    if trial.is_blinded:
        users.append(make_user("seed_blind", "sponsor", (trial, None)))
    for user in users:
        api.force_authenticate(user)
        entry = api.get("/api/v1/exports/catalogue/", {"trial": trial.pk}).json()
        data = {d["dataset"]: _check_formats(api, d) for d in entry["datasets"]}
        _check_consistency(data, blinded=not entry["unblinded"])
        assert data["sdtm_rs"] or registry in ("NCT06722105", "NCT05672420", "SHEH-MSC-L")
        if trial.current_version().criteria.exists():
            assert data["sdtm_ie"] and data["sdtm_ti"]
        if not entry["unblinded"]:
            text = json.dumps({k: v for k, v in data.items() if v})
            arms = trial.current_version().arms.all()
            assert [x for a in arms for x in (a.code, a.label) if x in text] == []


def test_the_odm_export_carries_the_audit_trail(api):
    """ODM 1.3.2 AuditRecords from the audit trail: the enrolling change's reason, a
    corrected dose as an Update with its reason and user, a retired AE as a Remove; every
    UserRef and LocationRef defined in AdminData."""
    trial = build("NCT05699811")
    subject = trial.subjects.exclude(subject_number="").order_by("pk").first()
    nurse = make_user("odm_nurse", "site_staff", (trial, subject.site))
    exposure = subject.exposures.get()
    visit_services.correct_exposure(exposure, {"dose_value": 3}, "dose re-read from the chart",
                                    user=nurse)
    subject.adverse_events.get().retire("entered twice", user=nurse)
    sponsor = make_user("odm_sponsor", "sponsor", (trial, None))
    api.force_authenticate(sponsor)
    data = content(api.get("/api/v1/exports/documents/odm/", {"trial": trial.pk}))
    official_xsd("odm").validate(io.BytesIO(data))
    root = ElementTree.fromstring(data)
    users = {u.get("OID"): u.findtext("odm:LoginName", namespaces=ODM_NS)
             for u in root.findall(".//odm:AdminData/odm:User", ODM_NS)}
    locations = {loc.get("OID") for loc in root.findall(".//odm:Location", ODM_NS)}
    assert {r.get("UserOID") for r in root.findall(".//odm:UserRef", ODM_NS)} <= set(users)
    assert {r.get("LocationOID") for r in root.findall(".//odm:LocationRef", ODM_NS)} <= (
        locations)
    assert users[f"USR.{nurse.pk}"] == "odm_nurse" and odm.SYSTEM_USER in users
    mine = root.find(f".//odm:SubjectData[@SubjectKey='{subject.usubjid}']", ODM_NS)
    dm = mine.findall(".//odm:FormData[@FormOID='F.DM']/odm:ItemGroupData", ODM_NS)
    assert "enrollment" in [g.findtext("odm:AuditRecord/odm:ReasonForChange",
                                       namespaces=ODM_NS) for g in dm]
    ex = mine.findall(".//odm:FormData[@FormOID='F.EX']/odm:ItemGroupData", ODM_NS)
    assert [g.get("TransactionType") for g in ex] == ["Insert", "Update"]
    update = ex[1]
    assert update.findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=ODM_NS) == (
        "dose re-read from the chart")
    assert update.find("odm:AuditRecord/odm:UserRef", ODM_NS).get("UserOID") == (
        f"USR.{nurse.pk}")
    assert update.find("odm:ItemData", ODM_NS).attrib == {"ItemOID": "IT.EX.EXDOSE",
                                                          "Value": "3"}
    ae = mine.findall(".//odm:StudyEventData[@StudyEventOID='SE.AELOG']//odm:ItemGroupData",
                      ODM_NS)
    assert ae[-1].get("TransactionType") == "Remove"
    assert ae[-1].findtext("odm:AuditRecord/odm:ReasonForChange", namespaces=ODM_NS) == (
        "entered twice")


blinded = test_exports.blinded  # the double-blind world of the export tests (a fixture)


def test_a_blinded_sponsor_reads_no_product_or_arm_in_the_reasons_for_change(api, blinded):
    """The ODM audit trail of seed 004: a reason naming the product and the arm reads
    masked for a blinded sponsor, as written for an unblinded one."""
    subject = next(s for s in blinded["subjects"] if s.arm.code == "PBO_M0_M3")
    visit_services.retire_exposure(subject.exposures.get(), "PBO given instead of MSC-AT "
                                                            "(PBO_M0_M3 is Placebo)")
    url, query = "/api/v1/exports/documents/odm/", {"trial": blinded["trial"].pk}
    api.force_authenticate(blinded["blind"])
    masked = content(api.get(url, query))
    official_xsd("odm").validate(io.BytesIO(masked))
    reasons = [r.text for r in ElementTree.fromstring(masked).iter(
        f"{{{ODM_NS['odm']}}}ReasonForChange")]
    retired = [r for r in reasons if "given instead of" in r]
    assert retired == ["study product (blinded) given instead of study product (blinded) "
                       "(Blinded is Blinded)"]
    assert [x for x in test_exports.TRUE_LABELS if x in masked.decode()] == []
    api.force_authenticate(blinded["open"])
    assert b"PBO given instead of MSC-AT (PBO_M0_M3 is Placebo)" in content(api.get(url, query))
