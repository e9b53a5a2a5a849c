"""The admin: constant queries on every list, scoping, blinding, reasons, history, services.

Every registered ModelAdmin's changelist is rendered as an admin and as site staff with 5 and
then 50 rows of every model; the number of queries must not change. The service pages
(enroll, screen failure, record visit, missed, exposure, SAE report) call the services and
show their refusals; the history page is the audit trail without blinded fields.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from adverse_events.models import AdverseEvent, CtcaeTerm, GradeEpisode, ToxicityFlag
from edc.core.audit import history
from edc.core.models import PendingTask
from epro.models import EproClarification, EproLink, EproWording
from notifications.models import SafetyContact
from notifications.services import notify_new_sae
from subjects.models import (
    DoseConfirmation,
    EligibilityAnswer,
    Membership,
    SafetyReview,
    Site,
    Subject,
)
from tests.factories import (
    load_ctcae_terms,
    load_seed_trial,
    make_arm,
    make_dm_exposure,
    make_dm_qlq_form,
    make_dm_visit,
    make_eligible,
    make_exposure,
    make_site,
    make_subject,
    make_trial,
    make_user,
    record_ae,
)
from trials.models import DoseLevel
from visits import qlq_c30
from visits.models import QlqC30Score, QlqC30SubjectDeterioration, TumourAssessment, Visit

pytestmark = pytest.mark.django_db

_n = itertools.count(1)
TODAY = timezone.localdate()


# ---------------------------------------------------------------- constant queries


@pytest.fixture
def world():
    load_ctcae_terms()
    trial = make_trial(masking="double")
    site_a, site_b = make_site(trial, "A"), make_site(trial, "B")
    arm = make_arm(trial, "ACT", "Active secret arm", blinded_label="Group 1")
    level = DoseLevel.objects.create(protocol_version=trial.current_version(), code="DL0",
                                     order=0, value=Decimal("1"), unit="mg")
    staff = make_user("staff_a", "site_staff", (trial, site_a))
    root = User.objects.create_superuser("root", "root@example.org", "pw-for-tests-1")
    return {"trial": trial, "site_a": site_a, "site_b": site_b, "arm": arm, "level": level,
            "staff": staff, "root": root, "term": CtcaeTerm.objects.get(meddra_code="10029366")}


def _subject_rows(w, subject, i):
    from data_management.models import (
        Lock,
        ProtocolDeviation,
        Query,
        Signature,
        SourceDocument,
        Verification,
    )

    visit = make_dm_visit(subject, code=f"V{i}", intervention="DRUG")
    make_dm_exposure(visit)
    TumourAssessment.objects.create(subject=subject, visit=visit,
                                    assessment_date=dt.date(2025, 2, 1), method="CT",
                                    criteria="RECIST 1.1", overall_response="SD")
    form = make_dm_qlq_form(visit, q29=4, q30=4)
    QlqC30Score.objects.create(form=form, state="done", QL2=50.0, SUM=60.0)
    EproLink.objects.create(subject=subject, visit=visit, language="en",
                            token_digest=f"{i:064x}", issued_by=w["root"],
                            expires_at=timezone.now() + dt.timedelta(days=1))
    EproClarification.objects.create(form=form, subject=subject, item="q1", old_value=1,
                                     new_value=2, reason="the patient meant 2",
                                     patient_confirmation="by telephone",
                                     confirmed_on=dt.date(2025, 2, 5), recorded_by=w["root"])
    QlqC30SubjectDeterioration.objects.create(subject=subject, **{  # every scale censored
        f"{scale}_{name}": value for scale in qlq_c30.SCALES for name, value in (
            ("event", False), ("censor_date", dt.date(2025, 2, 1)), ("days", 10),
            ("computed_at", timezone.now()))})
    ae = AdverseEvent.objects.create(
        subject=subject, term=w["term"], onset_date=dt.date(2025, 2, 2), grade=3,
        serious=True, sae_hospitalization=True,
        aware_at=dt.datetime(2025, 2, 3, 9, tzinfo=dt.UTC))
    GradeEpisode.objects.create(adverse_event=ae, grade=3, start_date=dt.date(2025, 2, 2))
    ToxicityFlag.objects.create(subject=subject, adverse_event=ae, rule_code="TI", kind="TI",
                                computed=True, reason="test flag", evaluated_at=timezone.now())
    SafetyContact.objects.create(trial=w["trial"], email=f"desk{i}@sponsor.example.org")
    notify_new_sae(ae)
    common = {"trial": w["trial"], "site": w["site_a"], "subject": subject}
    ct_visit = ContentType.objects.get_for_model(Visit)
    target = {"content_type": ct_visit, "object_id": visit.pk,
              "target_label": f"visit #{visit.pk}"}
    Query.objects.create(**common, **target, text="Please check", opened_by=w["root"])
    Verification.objects.create(**common, **target, verified_by=w["root"])
    Signature.objects.create(**common, **target, visit=visit, level="visit",
                             signed_by=w["root"], printed_name="Root", meaning="reviewed",
                             data_digest="0" * 64)
    Lock.objects.create(**common, **target, level="form", state="unlocked",
                        changed_by=w["root"])
    ProtocolDeviation.objects.create(**common, **target, category="dosing",
                                     description="Test drug dose differs from the planned",
                                     occurred_on=dt.date(2025, 2, 1))
    SourceDocument.objects.create(**common, **target, kind="pathology",
                                  file=f"source-documents/{i:064x}.pdf", file_name="report.pdf",
                                  media_type="application/pdf", size=10, sha256=f"{i:064x}",
                                  uploaded_by=w["root"])


def _export_rows(w, user):
    from exports.models import ExportDownload, ExportRecord

    export = ExportRecord.objects.create(requested_by=user, dataset="ae_listing", format="csv",
                                         mode="background", trial=w["trial"], state="done")
    ExportDownload.objects.create(export=export, user=w["root"])


def grow(w, rows: int) -> None:
    """``rows`` more rows of every model with an admin list (site A, so staff sees them)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from knox.models import AuthToken

    for _ in range(rows):
        i = next(_n)
        user = make_user(f"user{i}", "monitor", (w["trial"], w["site_a"]))
        AuthToken.objects.create(user=user)
        TOTPDevice.objects.create(user=user, name="phone")
        AccessAttempt.objects.create(username=f"user{i}", failures_since_start=1,
                                     ip_address="127.0.0.1")
        AccessLog.objects.create(username=f"user{i}", ip_address="127.0.0.1")
        AccessFailureLog.objects.create(username=f"user{i}", ip_address="127.0.0.1")
        Group.objects.create(name=f"group {i}")
        PendingTask.objects.create(task_name="tests.noop", args=[i], state="done")
        other = make_trial()
        Membership.objects.create(user=w["staff"], trial=other, site=None)
        EproWording.objects.create(trial=other, language="en", document={},
                                   source_name="wording.en.toml", digest="0" * 64,
                                   is_default=True)
        make_arm(w["trial"], f"ARM{i}", f"Secret arm {i}", blinded_label=f"Group {i + 1}")
        DoseLevel.objects.create(protocol_version=w["trial"].current_version(),
                                 code=f"DL{i}", order=i, value=Decimal(i), unit="mg")
        make_site(w["trial"], f"S{i}")
        _export_rows(w, user)
        DoseConfirmation.objects.create(trial=w["trial"], arm=w["arm"], cohort=i,
                                        dose_level=w["level"], recommendation={},
                                        confirmed_by=w["root"])
        SafetyReview.objects.create(trial=w["trial"], arm=w["arm"], adverse_events=[i],
                                    decision="reviewed", recommendation={},
                                    reviewed_by=w["root"])
        subject = make_subject(w["trial"], w["site_a"], arm=w["arm"], dose_level=w["level"],
                               cohort=1 + i % 3, subject_number=f"A{i:04d}",
                               status="enrolled", enrolled_on=dt.date(2025, 1, 10),
                               day0=dt.date(2025, 1, 10))
        _subject_rows(w, subject, i)


def changelists():
    for model in admin.site._registry:
        opts = model._meta
        yield opts.label, reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")


def measure(client, url) -> tuple[int, int | None, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    count = response.context["cl"].result_count if response.status_code == 200 else None
    return len(queries), count, response.status_code


#: Lists site staff may not open (user administration, outbox, protocol arms, raw events).
STAFF_FORBIDDEN = {"auth.Group", "auth.User", "knox.AuthToken", "otp_totp.TOTPDevice",
                   "axes.AccessAttempt", "axes.AccessLog", "axes.AccessFailureLog",
                   "edc.PendingTask",
                   "subjects.Membership", "trials.Arm", "pghistory.Events",
                   "exports.ExportRecord", "exports.ExportDownload"}


def test_every_changelist_renders_with_a_constant_number_of_queries(client, world):
    grow(world, 5)
    users = {"admin": world["root"], "site staff": world["staff"]}
    before: dict[tuple[str, str], tuple[int, int | None, int]] = {}
    for who, user in users.items():
        client.force_login(user)
        for label, url in changelists():
            measure(client, url)  # warm per-process caches (content types)
            before[who, label] = measure(client, url)
    grow(world, 15)  # 5 rows, then 20: an N+1 query shows as 15 more queries
    problems = []
    for who, user in users.items():
        client.force_login(user)
        for label, url in changelists():
            after = measure(client, url)
            queries5, rows5, status5 = before[who, label]
            queries20, rows20, status20 = after
            if status20 != status5 or status20 not in (200, 403):
                problems.append(f"{who} {label}: status {status5} then {status20}")
            elif status20 == 200 and queries20 != queries5:
                problems.append(f"{who} {label}: {queries5} queries with {rows5} rows, "
                                f"{queries20} with {rows20}")
            if who == "site staff" and (status20 == 403) != (label in STAFF_FORBIDDEN):
                problems.append(f"site staff {label}: status {status20}")
            if status20 == 200 and rows20 is not None and rows20 < 20 and label not in {
                    "subjects.Site", "trials.ProtocolVersion", "trials.Trial",
                    "trials.DoseLevel"}:  # protocol pages: unblinded users only (issue 15)
                problems.append(f"{who} {label}: only {rows20} rows listed")
    assert problems == [], "\n".join(problems)


def test_every_registered_list_is_exercised_by_the_row_builder(client, world):
    """A new admin must get rows in ``grow`` (else the constant-query test proves nothing)."""
    grow(world, 1)
    client.force_login(world["root"])
    empty = [label for label, url in changelists()
             if measure(client, url)[1] == 0]
    assert empty == []


def test_lists_and_filters_never_name_the_arm_of_a_blinded_trial(client, world):
    grow(world, 3)
    client.force_login(world["staff"])
    for label, url in changelists():
        page = client.get(url)
        if page.status_code == 200:
            assert "secret arm" not in page.content.decode().lower(), label
    page = client.get(reverse("admin:subjects_subject_changelist"))
    text = page.content.decode()
    assert "Blinded" in text and "Group 1" not in text  # one label, not the arm's own
    # Filtering or ordering on the arm itself is refused by the admin.
    for lookup in ({"arm__label": "Active secret arm"}, {"arm__id__exact": world["arm"].pk},
                   {"arm": world["arm"].pk}, {"subject__arm__label": "Active secret arm"}):
        for name in ("subject", "visit"):
            url = reverse(f"admin:{'subjects' if name == 'subject' else 'visits'}_{name}"
                          "_changelist")
            response = client.get(url, lookup)
            # Refused (400), or not a lookup of that model at all (Django's "?e=1" redirect).
            assert response.status_code == 400 or (
                response.status_code == 302 and response.url.endswith("?e=1")), (url, lookup)
    visits = reverse("admin:visits_visit_changelist")
    assert client.get(visits, {"intervention": "DRUG"}).status_code == 400
    assert client.get(reverse("admin:visits_exposure_changelist"),
                      {"intervention__code": "DRUG"}).status_code == 400
    # Site B's subjects and site B itself are not offered to site A's staff.
    make_subject(world["trial"], world["site_b"], screening_number="B-ONLY-1")
    page = client.get(reverse("admin:subjects_subject_changelist"))
    assert "B-ONLY-1" not in page.content.decode()
    assert "Site B" not in page.content.decode()
    form = client.get(reverse("admin:visits_qlqc30form_add")).content.decode()
    assert "B-ONLY-1" not in form


# ---------------------------------------------------------------- screening and enrollment


@pytest.fixture
def seed000():
    trial = load_seed_trial("NCT05699811")
    site = trial.sites.get()
    nurse = make_user("nurse000", "site_staff", (trial, site))
    return {"trial": trial, "site": site, "nurse": nurse}


def _subject_form(trial, site, **extra):
    data = {"trial": trial.pk, "site": site.pk, "screening_number": "SCR-ADM-1", "sex": "M",
            "birth_date": "", "age_at_consent": "60",
            "consent_date": (TODAY - dt.timedelta(days=20)).isoformat()}
    data.update(extra)
    return data


def _inline_post(page, subject, answers: dict[int, str], reason: str = "") -> dict:
    """The subject change form as the browser posts it, with eligibility answers by key."""
    formset = next(f for f in page.context["inline_admin_formsets"]).formset
    data = _subject_form(subject.trial, subject.site,
                         screening_number=subject.screening_number,
                         age_at_consent=str(subject.age_at_consent),
                         consent_date=subject.consent_date.isoformat(),
                         reason_for_change=reason)
    prefix = formset.prefix
    data.update({f"{prefix}-TOTAL_FORMS": len(formset.forms),
                 f"{prefix}-INITIAL_FORMS": formset.initial_form_count(),
                 f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000})
    for i, form in enumerate(formset.forms):
        key = form.initial.get("criterion_key")
        if form.instance.pk:
            data[f"{prefix}-{i}-id"] = form.instance.pk
            data[f"{prefix}-{i}-subject"] = subject.pk
        data[f"{prefix}-{i}-criterion_key"] = key
        data[f"{prefix}-{i}-met"] = answers.get(key, form.initial.get("met", ""))
    return data


def test_screening_eligibility_and_enrollment_in_the_admin(client, seed000):
    trial, site = seed000["trial"], seed000["site"]
    client.force_login(seed000["nurse"])
    response = client.post(reverse("admin:subjects_subject_add"), _subject_form(trial, site))
    subject = Subject.objects.get(screening_number="SCR-ADM-1")
    assert response.url == reverse("admin:subjects_subject_change", args=[subject.pk])
    assert subject.protocol_version == trial.current_version()

    enroll_url = reverse("admin:subjects_subject_enroll", args=[subject.pk])
    refused = client.post(enroll_url, {"enrolled_on": TODAY.isoformat(), "arm": "MONO"},
                          follow=True)
    shown = [str(m) for m in refused.context["messages"]]
    assert "Enrollment refused:" in shown and "inclusion 2 not answered" in shown, shown
    subject.refresh_from_db()
    assert subject.status == "screening" and subject.subject_number == ""

    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    criteria = {c.pk: c for c in trial.current_version().criteria.all()}
    formset = page.context["inline_admin_formsets"][0].formset
    assert len(formset.forms) == len(criteria)
    labels = {f.initial["criterion_key"]: [c[1] for c in f.fields["met"].choices]
              for f in formset.forms}
    assert all(labels[pk] == (["—", "met", "not met"] if c.kind == "inclusion"
                              else ["—", "absent", "present"]) for pk, c in criteria.items())
    answers = {pk: "True" if c.kind == "inclusion" else "False" for pk, c in criteria.items()}
    response = client.post(page.request["PATH_INFO"], _inline_post(page, subject, answers))
    assert response.status_code == 302, response.context["errors"]
    assert EligibilityAnswer.objects.filter(subject=subject).count() == len(criteria)

    # Changing a saved answer needs a reason, then it is audited with it.
    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    first = next(iter(criteria))
    flipped = {first: "False" if answers[first] == "True" else "True"}
    refused = client.post(page.request["PATH_INFO"], _inline_post(page, subject, flipped))
    assert refused.status_code == 200
    assert "reason for change is required" in refused.content.decode()
    done = client.post(page.request["PATH_INFO"],
                       _inline_post(page, subject, flipped, reason="wrong box ticked"))
    assert done.status_code == 302
    answer = EligibilityAnswer.objects.get(subject=subject, criterion_id=first)
    assert history(answer)[-1]["reason"] == "wrong box ticked"
    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    client.post(page.request["PATH_INFO"],
                _inline_post(page, subject, {first: answers[first]}, reason="corrected back"))

    enrolled = client.post(enroll_url, {"enrolled_on": (TODAY - dt.timedelta(days=3))
                                        .isoformat(), "arm": "MONO"}, follow=True)
    assert ("Enrolled as 01001: MSC-IFNα monotherapy, dose level DL1 (2000000 cells/kg); "
            "the visit calendar is planned.") in [str(m) for m in enrolled.context["messages"]]
    subject.refresh_from_db()
    assert subject.status == "enrolled" and subject.dose_level.code == "DL1"
    page = enrolled.content.decode()
    assert 'data-code="C1"' in page and "Visit calendar" in page
    assert history(subject)[-1]["username"] == "nurse000"
    # The enroll button is gone; a second enroll is refused by the service.
    assert "td-enroll" not in page
    again = client.post(enroll_url, {"enrolled_on": TODAY.isoformat()}, follow=True)
    assert "not in screening" in " ".join(str(m) for m in again.context["messages"])


def test_the_subject_page_reads_its_eligibility_answers_once(client, seed000):
    """The eligibility inline reads the subject's answers in one query, however many there
    are (it read them again for every form: 182 queries and 1.8 s for 22 criteria)."""
    trial, site = seed000["trial"], seed000["site"]
    criteria = list(trial.current_version().criteria.order_by("kind", "number"))
    assert len(criteria) >= 6
    counts = []
    for answered in (1, len(criteria)):
        subject = make_subject(trial, site, screening_number=f"SCR-Q-{answered}")
        EligibilityAnswer.objects.bulk_create(
            EligibilityAnswer(subject=subject, criterion=c, met=c.kind == "inclusion")
            for c in criteria[:answered])
        client.force_login(seed000["nurse"])
        url = reverse("admin:subjects_subject_change", args=[subject.pk])
        client.get(url)  # per-process caches
        with CaptureQueriesContext(connection) as queries:
            page = client.get(url)
        assert page.status_code == 200
        formset = page.context["inline_admin_formsets"][0].formset
        assert len(formset.initial_forms) == answered
        assert len(formset.forms) == len(criteria)
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_a_subject_post_without_the_inline_leaves_eligibility_alone(client, seed000):
    subject = make_eligible(make_subject(seed000["trial"], seed000["site"],
                                         screening_number="S-NOINL"))
    client.force_login(seed000["nurse"])
    response = client.post(reverse("admin:subjects_subject_change", args=[subject.pk]),
                           _subject_form(seed000["trial"], seed000["site"],
                                         screening_number="S-NOINL", age_at_consent="61",
                                         consent_date=subject.consent_date.isoformat(),
                                         reason_for_change="age per source"))
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.age_at_consent == 61
    assert EligibilityAnswer.objects.filter(subject=subject).count() == \
        seed000["trial"].current_version().criteria.count()


def _enrolled_000(seed000, days_ago: int = 40):
    from subjects.enrollment import enroll

    subject = make_eligible(make_subject(seed000["trial"], seed000["site"],
                                         consent_date=TODAY - dt.timedelta(days=days_ago + 5)))
    return enroll(subject, enrolled_on=TODAY - dt.timedelta(days=days_ago),
                  user=seed000["nurse"])


def test_visit_services_from_the_admin(client, seed000):
    subject = _enrolled_000(seed000)
    client.force_login(seed000["nurse"])
    visits = {v.code: v for v in subject.visits.all()}

    # "Mark missed" list action: a reason page, then the service for each visit.
    url = reverse("admin:visits_visit_changelist")
    chosen = [visits["SCR"].pk, visits["C1"].pk]
    ask = client.post(url, {"action": "mark_missed", "_selected_action": chosen})
    assert ask.status_code == 200 and "Mark visits missed" in ask.content.decode()
    done = client.post(url, {"action": "mark_missed", "_selected_action": chosen, "apply": "1",
                             "reason": "patient hospitalised elsewhere"}, follow=True)
    assert "2 visit(s) marked missed." in [str(m) for m in done.context["messages"]]
    scr = Visit.objects.get(pk=visits["SCR"].pk)
    assert scr.status == "missed" and scr.status_reason == "patient hospitalised elsewhere"
    assert history(scr)[-1]["reason"] == "visit missed: patient hospitalised elsewhere"
    again = client.post(url, {"action": "mark_missed", "_selected_action": [scr.pk],
                              "apply": "1", "reason": "twice"}, follow=True)
    assert any("cannot be marked missed" in str(m) for m in again.context["messages"])

    # Record done: a future date is refused on the field, nothing saved.
    record = reverse("admin:visits_visit_record", args=[visits["BASELINE"].pk])
    page = client.post(record, {"actual_date": (TODAY + dt.timedelta(days=1)).isoformat()})
    assert page.status_code == 200 and "is in the future" in str(page.context["form"].errors)
    ok = client.post(record, {"actual_date": visits["BASELINE"].window_high.isoformat()})
    assert ok.status_code == 302
    assert Visit.objects.get(pk=visits["BASELINE"].pk).status == "done"

    # Exposure at C2: the service's unit check lands on the field; then planned total.
    c2 = visits["C2"]
    msc = subject.protocol_version.interventions.get(code="MSC-IFNA")
    exposure_url = reverse("admin:visits_visit_exposure", args=[c2.pk])
    page = client.get(exposure_url)
    assert page.context["form"].initial["dose_value"] == "2000000"
    bad = client.post(exposure_url, {"intervention": msc.pk,
                                     "administered_on": c2.target_date.isoformat(),
                                     "dose_value": "2000000", "dose_unit": "mg",
                                     "weight_kg": "70"})
    assert "does not match the protocol's unit" in bad.context["form"].errors["dose_unit"][0]
    good = client.post(exposure_url, {"intervention": msc.pk,
                                      "administered_on": c2.target_date.isoformat(),
                                      "dose_value": "2000000", "dose_unit": "cells/kg",
                                      "weight_kg": "70"}, follow=True)
    exposure = subject.exposures.get()
    assert exposure.planned_total == Decimal("140000000") and exposure.total_unit == "cells"
    assert "140000000 cells" in good.content.decode()
    # Computed values are read-only on the exposure page; edits need a reason.
    change = client.get(reverse("admin:visits_exposure_change", args=[exposure.pk]))
    assert set(change.context["adminform"].form.fields) == {
        "administered_on", "end_date", "dose_value", "weight_kg", "height_cm", "start_time",
        "stop_time", "given_total", "interrupted", "interruption_reason", "reason_for_change",
        "loaded_version"}


def test_history_page_is_the_audit_trail(client, seed000):
    subject = _enrolled_000(seed000)
    client.force_login(seed000["nurse"])
    page = client.get(reverse("admin:subjects_subject_history", args=[subject.pk]))
    rows = page.context["rows"]
    assert [r["event"] for r in rows][:2] == ["insert", "update"]
    enrollment_row = next(r for r in rows if r["reason"] == "enrollment")
    assert enrollment_row["who"] == "nurse000"
    assert ("subject_number", "", "01001") in enrollment_row["changes"]
    # Seed 000 is open label: the allocation is part of its audit trail (hidden only from
    # users blinded to a trial, see test_blinded_walk).
    text = page.content.decode()
    assert "Audit trail" in text and "nurse000" in text and "01001" in text


def test_blinded_history_and_pages_hide_the_product(client):
    from subjects.enrollment import enroll

    trial = load_seed_trial("NCT06722105")
    site = Site.objects.create(trial=trial, code="P1", name="Hôpital Saint-Louis")
    nurse = make_user("blind_nurse", "site_staff", (trial, site))
    stat = make_user("stat", "data_manager", (trial, None), unblinded=True)
    subject = enroll(make_eligible(make_subject(trial, site, age_at_consent=40)),
                     enrolled_on=TODAY - dt.timedelta(days=3))
    m3 = subject.visits.get(code="M3")
    true_product = m3.intervention
    assert true_product in ("MSC-AT", "PBO")
    leaks = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO_M0",
             '"PBO"', ">PBO<", ">MSC-AT<")
    client.force_login(nurse)
    for url in (reverse("admin:visits_visit_change", args=[m3.pk]),
                reverse("admin:visits_visit_history", args=[m3.pk]),
                reverse("admin:visits_visit_changelist"),
                reverse("admin:visits_visit_exposure", args=[m3.pk]),
                reverse("admin:subjects_subject_change", args=[subject.pk]),
                reverse("admin:trials_trial_dashboard", args=[trial.pk])):
        text = client.get(url).content.decode()
        assert [leak for leak in leaks if leak in text] == [], url
    history_rows = client.get(reverse("admin:visits_visit_history", args=[m3.pk])
                              ).context["rows"]
    assert all(name != "intervention" for r in history_rows for name, *_ in r["changes"])
    # An unblinded data manager sees the product and the arm.
    client.force_login(stat)
    text = client.get(reverse("admin:visits_visit_change", args=[m3.pk])).content.decode()
    assert true_product in text
    text = client.get(reverse("admin:subjects_subject_change", args=[subject.pk])
                      ).content.decode()
    assert subject.arm.label in text


def test_sponsor_and_monitor_are_read_only(client, seed000):
    subject = _enrolled_000(seed000)
    sponsor = make_user("sponsor1", "sponsor", (seed000["trial"], None))
    monitor = make_user("monitor1", "monitor", (seed000["trial"], None))
    visit = subject.visits.get(code="C2")
    for user in (sponsor, monitor):
        client.force_login(user)
        page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert 'name="_save"' not in text and "record exposure" not in text
        assert page.context["has_change_permission"] is False
        for url in (reverse("admin:subjects_subject_status", args=[subject.pk]),
                    reverse("admin:visits_visit_record", args=[visit.pk]),
                    reverse("admin:visits_visit_exposure", args=[visit.pk])):
            assert client.post(url, {}).status_code == 403, url
        assert client.get(reverse("admin:adverse_events_adverseevent_add")).status_code == 403
    client.force_login(sponsor)
    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    assert "birth_date" not in page.context["adminform"].form.fields
    assert "Birth date" not in page.content.decode()


def test_other_site_staff_cannot_reach_the_subject(client, seed000):
    subject = _enrolled_000(seed000)
    other = make_site(seed000["trial"], "B9")
    nurse_b = make_user("nurse_b9", "site_staff", (seed000["trial"], other))
    client.force_login(nurse_b)
    visit = subject.visits.first()
    assert client.get(reverse("admin:subjects_subject_change", args=[subject.pk])
                      ).status_code == 302
    for url in (reverse("admin:subjects_subject_enroll", args=[subject.pk]),
                reverse("admin:subjects_subject_history", args=[subject.pk]),
                reverse("admin:visits_visit_record", args=[visit.pk]),
                reverse("admin:visits_visit_exposure", args=[visit.pk])):
        assert client.get(url).status_code in (302, 404), url
    listed = client.get(reverse("admin:subjects_subject_changelist"), {"q": "01001"})
    assert listed.context["cl"].result_count == 0


def _overdue_sae(seed000):
    """An enrolled seed-000 subject, infused on day 0, with a serious AE the site became aware
    of 30 hours ago and has not reported (past the 24-hour clock)."""
    load_ctcae_terms()
    subject = _enrolled_000(seed000)
    make_exposure(subject, "MSC-IFNA", subject.day0)
    onset = subject.day0 + dt.timedelta(days=1)
    ae = record_ae(subject, "10029366", [(3, onset, onset + dt.timedelta(days=2))],
                   {"MSC-IFNA": "possible"}, serious=True, sae_hospitalization=True,
                   aware_at=timezone.now() - dt.timedelta(hours=30))
    return subject, ae


def test_sae_reported_from_the_adverse_event_list(client, seed000):
    subject, sae = _overdue_sae(seed000)
    onset = sae.onset_date
    mild = record_ae(subject, "10016256", [(1, onset, onset + dt.timedelta(days=2))],
                     {"MSC-IFNA": "unlikely"})
    url = reverse("admin:adverse_events_adverseevent_changelist")
    client.force_login(seed000["nurse"])
    response = client.post(url, {"action": "record_sae_reported",
                                 "_selected_action": [sae.pk, mild.pk]}, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert "1 SAE(s) recorded as reported to the sponsor." in shown
    assert any("Only a serious AE is reported" in m for m in shown), shown
    sae.refresh_from_db()
    mild.refresh_from_db()
    assert sae.reported_by == seed000["nurse"] and sae.reported_at is not None
    assert mild.reported_at is None
    assert history(sae)[-1]["reason"] == "SAE reported to the sponsor"
    sponsor = make_user("sponsor_sae", "sponsor", (seed000["trial"], None))
    client.force_login(sponsor)
    page = client.get(url)
    assert "record_sae_reported" not in page.content.decode()


def test_sae_reported_from_the_subject_page_and_the_dashboard(client, seed000, monkeypatch):
    subject, ae = _overdue_sae(seed000)
    client.force_login(seed000["nurse"])
    dashboard = client.get(reverse("admin:trials_trial_dashboard",
                                   args=[seed000["trial"].pk]))
    assert [a.pk for a in dashboard.context["overdue_saes"]] == [ae.pk]
    assert dashboard.context["enrolled_total"] == 1
    recommendation = dashboard.context["dose_finding"]["recommendation"]
    assert recommendation["cohorts"][0]["dose_level"] == "DL1"
    assert recommendation["action"]
    assert dashboard.context["overdue_visits_total"] >= 1  # screening window has passed

    url = reverse("admin:adverse_events_adverseevent_report_sae", args=[ae.pk])
    now = timezone.now()
    response = client.post(url, {"reported_at_0": now.date().isoformat(),
                                 "reported_at_1": now.strftime("%H:%M:%S")}, follow=True)
    assert f"SAE {ae.pk} recorded as reported to the sponsor." in [
        str(m) for m in response.context["messages"]]
    ae.refresh_from_db()
    assert ae.reported_by == seed000["nurse"]
    assert history(ae)[-1]["reason"] == "SAE reported to the sponsor"
    twice = client.post(url, {"reported_at_0": now.date().isoformat(),
                              "reported_at_1": now.strftime("%H:%M:%S")})
    assert "Already reported" in str(twice.context["form"].errors)
    dashboard = client.get(reverse("admin:trials_trial_dashboard",
                                   args=[seed000["trial"].pk]))
    assert dashboard.context["overdue_saes"] == []

    # A recommendation that fails does not take the dashboard down; the page says so.
    def broken(trial):
        raise ValueError("protocol file unreadable")

    monkeypatch.setattr("adverse_events.dose_escalation.recommendation", broken)
    page = client.get(reverse("admin:trials_trial_dashboard", args=[seed000["trial"].pk]))
    assert page.context["dose_finding"]["recommendation"] is None
    assert "could not be computed: protocol file unreadable" in page.content.decode()


def test_qlq_c30_form_entered_in_the_admin_is_queued_for_scoring(
        client, django_capture_on_commit_callbacks):
    from tests.integration.test_visits import enrolled_subject

    subject = enrolled_subject("NCT05962450")  # seed 002 schedules the QLQ-C30
    visit = subject.visits.get(code="BASELINE")
    client.force_login(make_user("nurse002", "site_staff", (subject.trial, subject.site)))
    data = {"subject": subject.pk, "visit": visit.pk, "mode": "paper",
            "completion_date": visit.target_date.isoformat(),
            **{f"q{i}": "2" for i in range(1, 29)}, "q29": "5", "q30": "5"}
    bad = client.post(reverse("admin:visits_qlqc30form_add"), {**data, "q3": "9"})
    assert bad.status_code == 200 and "q3" in bad.context["adminform"].form.errors
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("admin:visits_qlqc30form_add"), data)
    assert response.status_code == 302
    form = subject.qlq_c30_forms.get()
    assert form.score.state == "pending"
    assert PendingTask.objects.filter(task_name="visits.tasks.score_qlq_c30_form",
                                      args=[form.pk]).exists()
    page = client.get(reverse("admin:subjects_subject_change", args=[subject.pk]))
    assert re.search(r"<td>paper</td>\s*<td>pending", page.content.decode())
