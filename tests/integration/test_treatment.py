"""Every arm's treatment recordable, dose checks with protocol deviations, corrections (issue 16).

Acceptance 1: seed 002 control arm RP records daily regorafenib periods and PD-1
administrations; an AE is attributed to regorafenib; both are in SDTM EX and AE.
Acceptance 2: seed 000 2x10^6 cells/kg for a 6x10^5 subject is saved with a deviation and an
open query, corrected through the API with a reason, the deviation resolves, the audit shows
old and new, SDTM EX shows the corrected dose.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from data_management.models import ProtocolDeviation, Query
from edc.core.audit import change_reason
from subjects.enrollment import enroll
from subjects.models import DoseConfirmation, Subject
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_eligible,
    make_subject,
    make_user,
)
from tests.integration.test_blinding import (  # noqa: F401 (the seed 004 fixture)
    _leaks,
    _without_identifiers,
    trial004,
)
from visits.models import Exposure

pytestmark = pytest.mark.django_db
DAY0 = dt.date(2025, 3, 3)
NEUTROPENIA = "10029366"


def sdtm(api, user, domain: str, trial) -> list[dict]:
    api.force_authenticate(user)
    response = api.get(f"/api/v1/exports/sdtm/{domain}/", {"trial": trial.pk})
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def rp_subject() -> Subject:
    """A seed 002 subject randomized to the control arm RP (enroll until one is)."""
    trial = load_seed_trial("NCT05962450")
    site = trial.sites.first()
    for _ in range(12):
        subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                         enrolled_on=DAY0)
        if subject.arm.code == "RP":
            return subject
    raise AssertionError("no RP allocation in 12 enrollments")


def test_seed002_rp_arm_records_regorafenib_periods_and_pd1_and_attributes_an_ae(api):
    load_ctcae_terms()
    subject = rp_subject()
    trial, site = subject.trial, subject.site
    nurse = make_user("rp_nurse", "site_staff", (trial, site))
    pi = make_user("rp_pi", "investigator", (trial, site))
    api.force_authenticate(nurse)
    # Regorafenib: two daily periods of a 21/28-day cycle, the first interrupted on day 10.
    first = api.post("/api/v1/exposures/", {
        "subject": subject.pk, "intervention_code": "REGO", "administered_on": "2025-03-03",
        "end_date": "2025-03-12", "dose_value": "160", "dose_unit": "mg",
        "interrupted": True, "interruption_reason": "hand-foot skin reaction"}, format="json")
    assert first.status_code == 201, first.content
    assert (first.json()["frequency"], first.json()["visit"]) == ("QD", None)
    second = api.post("/api/v1/exposures/", {
        "subject": subject.pk, "intervention_code": "REGO", "administered_on": "2025-03-17",
        "end_date": "2025-03-27", "dose_value": "120", "dose_unit": "mg"}, format="json")
    assert second.status_code == 201, second.content
    pd1 = api.post("/api/v1/exposures/", {
        "subject": subject.pk, "intervention_code": "PD1", "administered_on": "2025-03-03",
        "dose_value": "200", "dose_unit": "mg"}, format="json")
    assert pd1.status_code == 201, pd1.content
    # A daily product is never tied to a visit; a period cannot end before it starts.
    visit = subject.visits.exclude(kind="screening").first()
    tied = api.post("/api/v1/exposures/", {
        "visit": visit.pk, "intervention_code": "REGO", "administered_on": "2025-03-03",
        "dose_value": "160", "dose_unit": "mg"}, format="json")
    assert tied.status_code == 400 and tied.json()["errors"][0]["field"] == "visit"
    backwards = api.post("/api/v1/exposures/", {
        "subject": subject.pk, "intervention_code": "REGO", "administered_on": "2025-03-17",
        "end_date": "2025-03-10", "dose_value": "160", "dose_unit": "mg"}, format="json")
    assert backwards.status_code == 400
    assert backwards.json()["errors"][0]["field"] == "end_date"
    subject.refresh_from_db()
    assert subject.status == "on_treatment"
    assert not ProtocolDeviation.objects.filter(subject=subject).exists()  # per label

    # The AE is attributed to regorafenib (and PD-1, both received before onset).
    from adverse_events.models import CtcaeTerm

    rego = subject.protocol_version.interventions.get(code="REGO")
    anti_pd1 = subject.protocol_version.interventions.get(code="PD1")
    ae = api.post("/api/v1/adverse-events/", {
        "subject": subject.pk, "term": CtcaeTerm.objects.get(meddra_code=NEUTROPENIA).pk,
        "onset_date": "2025-03-12", "resolution_date": "2025-03-20",
        "grade_episodes": [{"grade": 2, "start_date": "2025-03-12", "end_date": "2025-03-20"}],
        "attributions": [{"intervention": rego.pk, "level": "probable"},
                         {"intervention": anti_pd1.pk, "level": "unlikely"}],
        "action_taken": "drug_interrupted", "outcome": "recovered"}, format="json")
    assert ae.status_code == 201, ae.content

    ex = sdtm(api, pi, "ex", trial)
    rows = sorted((r["EXTRT"], r["EXDOSE"], r["EXDOSFRQ"], r["EXSTDTC"], r["EXENDTC"],
                   r["EXROUTE"], r["EXADJ"]) for r in ex)
    assert rows == [
        ("PD-1 monoclonal antibody", "200", "ONCE", "2025-03-03", "2025-03-03", "INTRAVENOUS",
         ""),
        ("Regorafenib", "120", "QD", "2025-03-17", "2025-03-27", "ORAL", ""),
        ("Regorafenib", "160", "QD", "2025-03-03", "2025-03-12", "ORAL",
         "hand-foot skin reaction"),
    ]
    (row,) = sdtm(api, pi, "ae", trial)
    assert (row["AEDECOD"], row["AEREL"]) == (CtcaeTerm.objects.get(
        meddra_code=NEUTROPENIA).term, "PROBABLY RELATED")


def dl1_subject() -> Subject:
    """A seed 000 MONO subject of cohort 2, assigned 6x10^5 cells/kg (DL-1)."""
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    for _ in range(3):
        enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)), enrolled_on=DAY0)
    version = trial.current_version()
    pi = make_user("dl_pi", "investigator", (trial, site))
    with change_reason("TI in cohort 1: 70% reduced dose confirmed"):
        DoseConfirmation.objects.create(
            trial=trial, arm=version.arms.get(code="MONO"), cohort=2,
            dose_level=version.dose_levels.get(code="DL-1"),
            recommendation={"action": "enroll", "next_dose_level": "DL-1"}, confirmed_by=pi)
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)
    assert subject.dose_level.code == "DL-1"
    return subject


def test_seed000_wrong_dose_gets_a_deviation_and_a_query_then_is_corrected(api):
    subject = dl1_subject()
    trial, site = subject.trial, subject.site
    nurse = make_user("dose_nurse", "site_staff", (trial, site))
    monitor = make_user("dose_monitor", "monitor", (trial, site))
    c1 = subject.visits.get(code="C1")
    api.force_authenticate(nurse)
    response = api.post("/api/v1/exposures/", {
        "visit": c1.pk, "intervention_code": "MSC-IFNA", "administered_on": "2025-03-03",
        "dose_value": "2000000", "dose_unit": "cells/kg", "weight_kg": "60"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert Decimal(body["planned_dose"]) == Decimal("6E+5")
    assert Decimal(body["planned_total"]) == Decimal("3.6E+7")  # 6x10^5 x 60 kg
    exposure = Exposure.objects.get(pk=body["id"])
    (deviation,) = ProtocolDeviation.objects.filter(object_id=exposure.pk)
    assert (deviation.category, deviation.state, deviation.check_code) == (
        "dosing", "open", "dose_tolerance")
    assert "233%" in deviation.description and "EDC default" in deviation.description
    assert deviation.query.state == "open" and deviation.query.object_id == exposure.pk

    # The monitor sees the deviation and its query, per subject and per trial.
    api.force_authenticate(monitor)
    listed = api.get("/api/v1/deviations/", {"subject": subject.pk}).json()["results"]
    assert [d["id"] for d in listed] == [deviation.pk]
    assert listed[0]["query"] == deviation.query_id
    assert api.get("/api/v1/deviations/", {"trial": trial.pk}).json()["results"]
    assert Query.objects.filter(pk=deviation.query_id, state="open").exists()

    # Refused corrections: no reason, a negative or zero amount, the product.
    api.force_authenticate(nurse)
    url = f"/api/v1/exposures/{exposure.pk}/"
    assert api.patch(url, {"dose_value": "600000"}, format="json").status_code == 400
    for field, value in (("dose_value", "-1"), ("given_total", "0"), ("given_total", "-5")):
        refused = api.patch(url, {field: value, "reason": "typo"}, format="json")
        assert refused.status_code == 400, refused.content
        assert refused.json()["errors"][0]["field"] == field
    exposure.refresh_from_db()
    assert exposure.dose_value == Decimal("2000000")

    corrected = api.patch(url, {"dose_value": "600000",
                                "reason": "transcription error: 6x10^5 given per CRF source"},
                          format="json")
    assert corrected.status_code == 200, corrected.content
    deviation.refresh_from_db()
    assert deviation.state == "resolved" and deviation.resolved_by == nurse
    assert "transcription error" in deviation.resolution
    history = api.get(f"{url}history/").json()
    last = history[-1]
    assert last["reason"] == "transcription error: 6x10^5 given per CRF source"
    old, new = last["changes"]["dose_value"]
    assert (Decimal(str(old)), Decimal(str(new))) == (Decimal("2000000"), Decimal("600000"))

    ex = sdtm(api, monitor, "ex", trial)
    assert [(r["EXTRT"], r["EXDOSE"], r["EXDOSU"]) for r in ex] == [
        ("MSC-IFNα", "600000", "cells/kg")]
    (dv,) = sdtm(api, monitor, "dv", trial)
    assert (dv["DVCAT"], dv["DVSPID"]) == ("STUDY TREATMENT DOSE", str(deviation.pk))

    # A dose beyond tolerance again re-opens a deviation; retiring the record resolves it.
    api.force_authenticate(nurse)
    again = api.patch(url, {"dose_value": "700000", "reason": "re-checked source"},
                      format="json")
    assert again.status_code == 200, again.content
    reopened = ProtocolDeviation.objects.get(object_id=exposure.pk, state="open")
    retire = api.post(f"{url}retire/", {"reason": "entered in error"}, format="json")
    assert retire.status_code == 200, retire.content
    reopened.refresh_from_db()
    assert reopened.state == "resolved"
    assert ProtocolDeviation.objects.filter(object_id=exposure.pk).count() == 2  # none deleted
    assert api.delete(url).status_code == 405


def test_seed002_inkt_outside_the_range_gets_a_deviation(api):
    trial = load_seed_trial("NCT05962450")
    site = trial.sites.first()
    for _ in range(12):
        subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                         enrolled_on=DAY0)
        if subject.arm.code == "RPI":
            break
    nurse = make_user("inkt_nurse", "site_staff", (trial, site))
    api.force_authenticate(nurse)
    response = api.post("/api/v1/exposures/", {
        "visit": subject.visits.get(code="C1").pk, "administered_on": "2025-03-03",
        "dose_value": "5000000000", "dose_unit": "cells/m2", "weight_kg": "70",
        "height_cm": "170"}, format="json")
    assert response.status_code == 201, response.content
    (deviation,) = ProtocolDeviation.objects.filter(object_id=response.json()["id"])
    assert deviation.check_code == "dose_range" and "outside the protocol's range" in (
        deviation.description)


def test_seed004_deviations_do_not_tell_the_arms_apart(api, trial004):  # noqa: F811
    """A placebo is prescribed like the MSC it masks (``trials.blinding``): the same wrong dose
    gives the same deviation in every arm, and a blinded user reads no product in it."""
    api.force_authenticate(trial004["nurse"])
    reads = {}
    for arm, subject in trial004["by_arm"].items():
        m0 = subject.visits.get(code="M0")
        response = api.post("/api/v1/exposures/", {
            "visit": m0.pk, "administered_on": str(m0.target_date), "dose_value": "3000000",
            "dose_unit": "cells/kg", "weight_kg": "61.5"}, format="json")
        assert response.status_code == 201, response.content
        rows = api.get("/api/v1/deviations/", {"subject": subject.pk}).json()["results"]
        assert len(rows) == 1 and rows[0]["state"] == "open", arm
        query = api.get(f"/api/v1/queries/{rows[0]['query']}/").json()
        reads[arm] = {"deviations": rows, "query": query}
    moments = {"target_label", "object_id", "query", "reported_at", "opened_at", "age_days"}

    def neutral_of(data):  # record ids and timestamps differ whatever the arm
        data = _without_identifiers(data)
        if isinstance(data, dict):
            return {k: neutral_of(v) for k, v in data.items() if k not in moments}
        if isinstance(data, list):
            return [neutral_of(v) for v in data]
        return re.sub(r"#\d+", "#N", data) if isinstance(data, str) else data

    neutral = {arm: neutral_of(read) for arm, read in reads.items()}
    for arm, read in reads.items():
        assert _leaks(str(read)) == [] and "MSC-AT" not in str(read), arm
        assert "study product (blinded)" in read["deviations"][0]["description"]
        assert neutral[arm] == neutral["MSC_M0_M3"], arm
    # Unblinded, the truth: the placebo subject's deviation names the placebo.
    api.force_authenticate(trial004["stat"])
    placebo = trial004["by_arm"]["PBO_M0_M3"]
    (row,) = api.get("/api/v1/deviations/", {"subject": placebo.pk}).json()["results"]
    assert row["description"].startswith("PBO dose 3E+6 cells/kg differs from the planned "
                                          "2E+6 cells/kg")


def test_corrections_keep_signatures_and_locks_meaningful(api):
    """A correction of signed data invalidates the signature; locked data refuses it (409)."""
    from data_management import locks, signatures
    from data_management.models import Signature

    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)  # cohort 1, 2x10^6 cells/kg
    nurse = make_user("lock_nurse", "site_staff", (trial, site))
    pi = make_user("lock_pi", "investigator", (trial, site))
    dm = make_user("lock_dm", "data_manager", (trial, site))
    c1 = subject.visits.get(code="C1")
    api.force_authenticate(nurse)
    created = api.post("/api/v1/exposures/", {
        "visit": c1.pk, "administered_on": "2025-03-03", "dose_value": "2000000",
        "dose_unit": "cells/kg", "weight_kg": "60"}, format="json")
    assert created.status_code == 201, created.content
    assert not ProtocolDeviation.objects.exists()
    url = f"/api/v1/exposures/{created.json()['id']}/"
    signature = signatures.sign(pi, c1, "pw-for-tests-1")
    fixed = api.patch(url, {"weight_kg": "62", "reason": "weight re-measured"}, format="json")
    assert fixed.status_code == 200, fixed.content
    assert Decimal(fixed.json()["planned_total"]) == Decimal("1.24E+8")
    signature.refresh_from_db()
    assert signature.state == Signature.State.INVALIDATED
    locks.change_lock(dm, "form", Exposure.objects.get(pk=created.json()["id"]), "lock")
    locked = api.patch(url, {"weight_kg": "63", "reason": "again"}, format="json")
    assert locked.status_code == 409, locked.content
    assert Exposure.objects.get(pk=created.json()["id"]).weight_kg == Decimal("62")


def test_admin_corrects_a_dose_and_records_a_dosing_period(client):
    from django.urls import reverse

    from visits import services

    trial = load_seed_trial("NCT05699811")
    site = trial.sites.first()
    subject = enroll(make_eligible(make_subject(trial, site, consent_date=DAY0)),
                     enrolled_on=DAY0)  # 2x10^6 cells/kg
    nurse = make_user("adm_nurse", "site_staff", (trial, site))
    exposure = services.record_exposure(
        subject.visits.get(code="C1"), intervention=subject.protocol_version.interventions.get(
            code="MSC-IFNA"), administered_on=DAY0, dose_value=Decimal("2500000"),
        dose_unit="cells/kg", weight_kg=Decimal("60"), user=nurse)
    deviation = ProtocolDeviation.objects.get(object_id=exposure.pk)
    client.force_login(nurse)
    url = reverse("admin:visits_exposure_change", args=[exposure.pk])
    form = {"administered_on": DAY0.isoformat(), "end_date": "", "dose_value": "2000000",
            "weight_kg": "60", "height_cm": "", "given_total": "", "start_time_0": "",
            "start_time_1": "", "stop_time_0": "", "stop_time_1": "",
            "interruption_reason": ""}
    refused = client.post(url, {**form, "reason_for_change": ""})
    assert refused.status_code == 200 and "A reason for change is required" in (
        refused.content.decode())
    negative = client.post(url, {**form, "dose_value": "-5", "reason_for_change": "typo"})
    assert negative.status_code == 200 and "it must be positive" in negative.content.decode()
    done = client.post(url, {**form, "reason_for_change": "2x10^6 per infusion record"})
    assert done.status_code == 302, done.content.decode()[:2000]
    exposure.refresh_from_db()
    deviation.refresh_from_db()
    assert exposure.dose_value == Decimal("2000000") and deviation.state == "resolved"
    assert exposure.planned_total == Decimal("120000000")

    rp = rp_subject()
    rp_nurse = make_user("adm_rp_nurse", "site_staff", (rp.trial, rp.site))
    client.force_login(rp_nurse)
    page = client.get(reverse("admin:subjects_subject_change", args=[rp.pk]))
    record = reverse("admin:visits_exposure_record", args=[rp.pk])
    assert record in page.content.decode()
    rego = rp.protocol_version.interventions.get(code="REGO")
    saved = client.post(record, {"intervention": rego.pk, "administered_on": "2025-03-03",
                                 "end_date": "2025-03-23", "dose_value": "160",
                                 "dose_unit": "mg"})
    assert saved.status_code == 302, saved.content.decode()[:2000]
    period = rp.exposures.get()
    assert (period.frequency, period.end_date, period.visit) == ("QD", dt.date(2025, 3, 23),
                                                                 None)
