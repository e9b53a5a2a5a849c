"""Blinding in the seed-004 trial (double-blind: MSC(AT) at M0 and M3 / MSC(AT) then matching
placebo / placebo twice): a user without unblinded access cannot tell the arms apart through
any API field, filter, ordering, error message, admin page or audit trail (issue 4
acceptance 3; issue 10 "see no arm").

The strongest check compares whole responses: once identifiers are set aside, what a blinded
nurse reads of a subject of each arm (visits, exposures, AEs with attributions, audit trails)
is identical; an unblinded statistician reading the same records sees the true products.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from adverse_events.models import Attribution, CtcaeTerm
from subjects.enrollment import enroll
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_eligible,
    make_site,
    make_subject,
    make_user,
)
from trials.models import Intervention
from visits.models import Exposure

pytestmark = pytest.mark.django_db

FATIGUE = "10016256"
DAY0 = timezone.localdate() - dt.timedelta(days=150)
#: Text that names a true arm or product, or one arm's own label (the masked
#: "BLINDED:MSC-AT" / "matching placebo" names are allowed).
TRUE_TEXT = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO",
             "Treatment group")
#: Keys whose values differ between any two subjects, whatever their arm.
IDENTIFIERS = frozenset({
    "id", "subject", "visit", "adverse_event", "subject_id", "visit_id", "adverse_event_id",
    "screening_number", "subject_number", "usubjid", "at", "created_at",
    "updated_at", "aware_at", "pgh_obj_id",
})


def _leaks(text: str) -> list[str]:
    return [t for t in TRUE_TEXT if t in text]


def _without_identifiers(data):
    if isinstance(data, dict):
        return {k: _without_identifiers(v) for k, v in data.items() if k not in IDENTIFIERS}
    if isinstance(data, list):
        return [_without_identifiers(v) for v in data]
    return data


@pytest.fixture
def trial004():
    load_ctcae_terms()
    trial = load_seed_trial("NCT06722105")
    site = make_site(trial, "P1")
    users = {
        "nurse": make_user("blind_nurse", "site_staff", (trial, site)),
        "sponsor": make_user("blind_sponsor", "sponsor", (trial, None)),
        "stat": make_user("stat", "data_manager", (trial, None), unblinded=True),
    }
    by_arm = {}
    for _ in range(12):  # the concealed list is followed: enroll until every arm has one
        subject = enroll(make_eligible(make_subject(
            trial, site, age_at_consent=40, birth_date=dt.date(1985, 5, 17),
            consent_date=DAY0 - dt.timedelta(days=7))), enrolled_on=DAY0)
        by_arm.setdefault(subject.arm.code, subject)
        if len(by_arm) == 3:
            break
    assert set(by_arm) == {"MSC_M0_M3", "MSC_M0_PBO_M3", "PBO_M0_M3"}
    msc = Intervention.objects.get(protocol_version=trial.current_version(), code="MSC-AT")
    pbo = Intervention.objects.get(protocol_version=trial.current_version(), code="PBO")
    return {"trial": trial, "site": site, "by_arm": by_arm, "msc": msc, "pbo": pbo, **users}


def _record_treatment(api, subject, product_pk: int) -> dict:
    """What a blinded nurse does for one subject: two infusions, one AE attributed to the
    study treatment (naming it by ``product_pk``, either member of the masking group)."""
    m0, m3 = subject.visits.get(code="M0"), subject.visits.get(code="M3")
    dose = {"dose_value": "2000000", "dose_unit": "cells/kg", "weight_kg": "61.5"}
    first = api.post("/api/v1/exposures/", {"visit": m0.pk, "administered_on": str(
        m0.target_date), **dose}, format="json")
    wrong_unit = api.post("/api/v1/exposures/", {
        "visit": m3.pk, "administered_on": str(m3.target_date), **dose, "dose_unit": "mg"},
        format="json")
    second = api.post("/api/v1/exposures/", {
        "visit": m3.pk, "administered_on": str(m3.target_date), "intervention_code":
        "BLINDED:MSC-AT", **dose}, format="json")
    onset = m3.target_date + dt.timedelta(days=2)
    ae = api.post("/api/v1/adverse-events/", {
        "subject": subject.pk, "term": CtcaeTerm.objects.get(meddra_code=FATIGUE).pk,
        "onset_date": str(onset), "resolution_date": str(onset + dt.timedelta(days=3)),
        "grade_episodes": [{"grade": 2, "start_date": str(onset),
                            "end_date": str(onset + dt.timedelta(days=3))}],
        "attributions": [{"intervention": product_pk, "level": "possible"}],
        "serious": False, "expected": False, "action_taken": "dose_not_changed",
        "outcome": "recovered"}, format="json")
    return {"first": first, "wrong_unit": wrong_unit, "second": second, "ae": ae}


def _reads(api, subject) -> dict:
    """Everything a user reads of one subject through the API, as parsed JSON."""
    exposures = api.get(f"/api/v1/exposures/?subject={subject.pk}").json()["results"]
    aes = api.get(f"/api/v1/adverse-events/?subject={subject.pk}").json()["results"]
    return {
        "subject": api.get(f"/api/v1/subjects/{subject.pk}/").json(),
        "subject_history": api.get(f"/api/v1/subjects/{subject.pk}/history/").json(),
        "visits": api.get(f"/api/v1/visits/?subject={subject.pk}&ordering=target_date"
                          ).json()["results"],
        "exposures": exposures,
        "exposure_history": [api.get(f"/api/v1/exposures/{e['id']}/history/").json()
                             for e in exposures],
        "adverse_events": aes,
        "ae_history": [api.get(f"/api/v1/adverse-events/{a['id']}/history/").json()
                       for a in aes],
    }


def test_a_blinded_nurse_reads_the_same_of_every_arm(api, trial004):
    api.force_authenticate(trial004["nurse"])
    results = {arm: _record_treatment(api, subject, trial004["msc"].pk)
               for arm, subject in trial004["by_arm"].items()}
    for arm, result in results.items():
        assert result["first"].status_code == 201, (arm, result["first"].json())
        assert result["second"].status_code == 201, (arm, result["second"].json())
        assert result["ae"].status_code == 201, (arm, result["ae"].json())
        # A wrong unit is refused alike: a matching placebo is prescribed in the MSC's unit.
        assert result["wrong_unit"].status_code == 400
        assert result["wrong_unit"].json() == results["MSC_M0_M3"]["wrong_unit"].json()
        assert _leaks(result["wrong_unit"].content.decode()) == []

    reads = {arm: _reads(api, subject) for arm, subject in trial004["by_arm"].items()}
    for arm, read in reads.items():
        assert _leaks(str(read)) == [], arm
        assert {v["intervention"] for v in read["visits"]} == {"BLINDED:MSC-AT"}
        assert [e["intervention"] for e in read["exposures"]] == ["BLINDED:MSC-AT"] * 2
        assert read["adverse_events"][0]["attributions"] == [{
            "intervention": trial004["msc"].pk, "intervention_code": "BLINDED:MSC-AT",
            "level": "possible"}]
        assert all("intervention_id" not in row["changes"]
                   for rows in read["exposure_history"] for row in rows)
        assert _without_identifiers(read) == _without_identifiers(reads["MSC_M0_M3"]), arm

    # The truth is recorded: the statistician sees which product each subject received.
    api.force_authenticate(trial004["stat"])
    placebo_subject = trial004["by_arm"]["PBO_M0_M3"]
    read = _reads(api, placebo_subject)
    assert [e["intervention"] for e in read["exposures"]] == ["PBO", "PBO"]
    assert {v["intervention"] for v in read["visits"]} == {"PBO"}
    assert any("intervention_id" in row["changes"]
               for rows in read["exposure_history"] for row in rows)
    assert read["subject"]["arm_label"] == "Placebo"


def test_either_member_of_the_masking_group_names_the_study_treatment(api, trial004):
    """Causality is assessed against the blinded study treatment: an attribution naming the
    placebo is recorded against the group, like one naming the MSC, in every arm."""
    api.force_authenticate(trial004["nurse"])
    for subject in trial004["by_arm"].values():
        result = _record_treatment(api, subject, trial004["pbo"].pk)
        assert result["ae"].status_code == 201, result["ae"].json()
        assert result["ae"].json()["attributions"][0]["intervention_code"] == "BLINDED:MSC-AT"
    stored = Attribution.objects.filter(adverse_event__subject__trial=trial004["trial"])
    assert stored.count() == 3
    assert set(stored.values_list("intervention__code", flat=True)) == {"MSC-AT"}
    # The exposures keep the true product, taken from the visit's (concealed) plan.
    placebo = trial004["by_arm"]["PBO_M0_M3"]
    assert set(Exposure.objects.filter(subject=placebo).values_list(
        "intervention__code", flat=True)) == {"PBO"}


def test_filters_and_orderings_on_the_product_are_ignored(api, trial004):
    api.force_authenticate(trial004["nurse"])
    for subject in trial004["by_arm"].values():
        _record_treatment(api, subject, trial004["msc"].pk)
    pbo = trial004["pbo"]
    for base, probes in {
        "/api/v1/exposures/": [f"intervention={pbo.pk}", "intervention__code=PBO",
                               "ordering=intervention", "ordering=-intervention__code"],
        "/api/v1/visits/": ["intervention=PBO", "ordering=intervention",
                            "ordering=-intervention"],
        "/api/v1/adverse-events/": [f"attributions__intervention={pbo.pk}",
                                    "ordering=attributions__intervention"],
        "/api/v1/subjects/": ["arm__code=PBO_M0_M3", "ordering=-arm"],
    }.items():
        unfiltered = api.get(f"{base}?ordering=id").json()["results"]
        assert unfiltered
        for probe in probes:
            response = api.get(f"{base}?{probe}")
            assert response.status_code == 200, probe
            rows = sorted(response.json()["results"], key=lambda r: r["id"])
            assert rows == unfiltered, probe


def test_masking_costs_a_constant_number_of_queries(api, trial004):
    """Masking is decided per trial and protocol version, not per row."""
    api.force_authenticate(trial004["nurse"])
    subjects = list(trial004["by_arm"].values())
    for subject in subjects:
        _record_treatment(api, subject, trial004["msc"].pk)
    for base in ("/api/v1/visits/", "/api/v1/exposures/", "/api/v1/adverse-events/"):
        counts = []
        for page_size in (1, 3):
            for cache in ("_trialdesk_blinded", "_trialdesk_masking"):  # a fresh request
                trial004["nurse"].__dict__.pop(cache, None)
            with CaptureQueriesContext(connection) as queries:
                response = api.get(f"{base}?page_size={page_size}")
            counts.append((len(response.json()["results"]), len(queries)))
        (few, few_queries), (many, many_queries) = counts
        assert (few, many) == (1, 3), base
        assert many_queries == few_queries, (base, counts)


def test_admin_pages_show_no_arm_or_product(client, trial004):
    client.force_login(trial004["nurse"])
    for subject in trial004["by_arm"].values():
        m3 = subject.visits.get(code="M3")
        form = client.get(reverse("admin:visits_visit_exposure", args=[m3.pk]))
        assert form.status_code == 200
        # Not even a hidden field carries the product's id.
        assert 'name="intervention"' not in form.content.decode()
        saved = client.post(reverse("admin:visits_visit_exposure", args=[m3.pk]), {
            "administered_on": str(m3.target_date), "dose_value": "2000000",
            "dose_unit": "cells/kg", "weight_kg": "61.5"})
        assert saved.status_code == 302, saved.content.decode()[-2000:]
        exposure = Exposure.objects.get(visit=m3)
        assert exposure.intervention.code == m3.intervention
        for url in (reverse("admin:subjects_subject_change", args=[subject.pk]),
                    reverse("admin:visits_exposure_changelist") + f"?subject__id={subject.pk}",
                    reverse("admin:visits_exposure_change", args=[exposure.pk]),
                    reverse("admin:visits_exposure_history", args=[exposure.pk]),
                    reverse("admin:adverse_events_adverseevent_add")):
            page = client.get(url)
            assert page.status_code == 200, url
            assert _leaks(page.content.decode()) == [], url
    add = client.get(reverse("admin:adverse_events_adverseevent_add")).content.decode()
    assert "Blinded study treatment (MSC-AT or matching placebo)" in add


def test_sponsors_see_no_birth_dates(api, trial004):
    subject = trial004["by_arm"]["MSC_M0_M3"]
    api.force_authenticate(trial004["sponsor"])
    detail = api.get(f"/api/v1/subjects/{subject.pk}/").json()
    assert "birth_date" not in detail and detail["age_at_consent"] == 40
    assert all("birth_date" not in row for row in api.get("/api/v1/subjects/").json()["results"])
    history = api.get(f"/api/v1/subjects/{subject.pk}/history/").json()
    assert history and all("birth_date" not in row["changes"] for row in history)
    api.force_authenticate(trial004["nurse"])
    assert api.get(f"/api/v1/subjects/{subject.pk}/").json()["birth_date"] == "1985-05-17"


def test_an_emergency_unblinding_reveals_its_one_subject_only(api, trial004):
    """Every subject shows one allocation, "Blinded": knowing one subject's arm tells
    nothing of the others (a label per arm would reveal every subject sharing it)."""
    investigator = make_user("blind_investigator", "investigator",
                             (trial004["trial"], trial004["site"]))
    api.force_authenticate(investigator)
    placebo = trial004["by_arm"]["PBO_M0_M3"]
    unblinded = api.post(f"/api/v1/subjects/{placebo.pk}/unblind/",
                         {"reason": "emergency: anaphylaxis at M3"}, format="json")
    assert unblinded.status_code == 200, unblinded.json()
    assert (unblinded.json()["arm_code"], unblinded.json()["arm"]) == ("PBO_M0_M3", "Placebo")
    listed = api.get("/api/v1/subjects/").json()["results"]
    assert {row["arm_label"] for row in listed} == {"Blinded"}
    assert _leaks(str(listed)) == []
