"""Issue 20, acceptance 2, in headless Chromium against a live server with the real Celery
worker. Seed 002 (NCT05962450, open label, QLQ-C30 scheduled): a research nurse screens a
subject in the admin, answers eligibility, enrolls, records the baseline visit, an AE and a
QLQ-C30 form; a data manager opens the status matrix, the audit explorer (filtered by user)
and requests the subject's casebook PDF from the subject page, downloads it, and the test
opens the PDF (pypdf): page count and the subject id on every page.
Screenshots: ``var/e2e-screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from django.utils import timezone
from pypdf import PdfReader

from exports.models import ExportDownload, ExportRecord
from subjects.models import Subject
from tests.e2e.test_admin_browser import (
    PASSWORD,
    add_subject,
    answer_eligibility_favourably,
    enroll,
    login,
    messages_of,
)
from tests.factories import load_ctcae_terms, load_seed_trial, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True)]


def test_nurse_enters_a_seed_002_subject_and_data_manager_downloads_the_casebook(
        browser, live_server, celery_worker, screens):
    load_ctcae_terms()
    trial = load_seed_trial("NCT05962450")
    site = trial.sites.first()
    make_user("nurse_002", "site_staff", (trial, site), password=PASSWORD)
    make_user("dm_002", "data_manager", (trial, None), password=PASSWORD)
    day0 = min(timezone.localdate() - dt.timedelta(days=20),
               trial.completion_date - dt.timedelta(days=60))

    # The research nurse: screening, eligibility, enrolment.
    page = login(browser, live_server, "nurse_002")
    pk = add_subject(page, live_server, trial="NCT05962450", screening="SCR-002-E2E",
                     consent=day0 - dt.timedelta(days=10))
    screens(page, "nurse-subject-screened")
    answer_eligibility_favourably(page)
    enroll(page, day0)
    subject = Subject.objects.get(pk=pk)
    assert subject.status == "enrolled", messages_of(page)
    number = subject.subject_number
    assert f"Enrolled as {number}" in messages_of(page)
    assert page.locator("a.td-casebook").count() == 0  # site staff do not export
    screens(page, "nurse-enrolled")

    # The baseline visit, recorded as done.
    baseline = subject.visits.filter(qlq_c30_due=True).order_by("target_date").first()
    row = f"tr.td-visit[data-code='{baseline.code}']"
    page.click(f"{row} a:has-text('record done')")
    page.fill("#id_actual_date", day0.isoformat())
    page.click("input[name=_apply]")
    page.wait_for_url(re.compile(r".*/subject/\d+/change/.*"))
    assert f"Visit {baseline.code} recorded as done" in messages_of(page)

    # A QLQ-C30 form at that visit.
    page.click(f"{row} a:has-text('QLQ-C30')")
    page.fill("#id_completion_date", day0.isoformat())
    page.select_option("#id_mode", value="paper")
    for item in range(1, 31):
        field = page.locator(f"#id_q{item}")
        value = "5" if item > 28 else "2"
        if field.evaluate("e => e.tagName") == "SELECT":
            field.select_option(value=value)
        else:
            field.fill(value)
    screens(page, "nurse-qlq-c30-form")
    page.click("input[name=_save]")
    page.wait_for_load_state()
    assert "was added successfully" in messages_of(page), messages_of(page)

    # An adverse event.
    onset = day0 + dt.timedelta(days=2)
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    page.click("a.td-add-ae")
    page.click(".field-term .select2-selection")
    page.fill(".select2-search__field", "Fatigue")
    page.click(".select2-results__option:has-text('Fatigue (10016256)')")
    page.fill("#id_onset_date", onset.isoformat())
    page.select_option("#id_grade_episodes-0-grade", value="1")
    page.fill("#id_grade_episodes-0-start_date", onset.isoformat())
    screens(page, "nurse-adverse-event")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/adverseevent/$"))
    assert "was added successfully" in messages_of(page)
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    assert "Fatigue" in page.inner_text("#adverse-events")
    assert page.locator("#qlq-c30 table").first.locator("tbody tr").count() == 1
    screens(page, "nurse-subject-page")
    page.context.close()

    # The data manager: status matrix, audit explorer filtered by the nurse, casebook PDF.
    page = login(browser, live_server, "dm_002")
    page.goto(f"{live_server.url}/admin/trials/trial/{trial.pk}/status-matrix/")
    matrix = page.inner_text("#td-matrix")
    assert number in matrix and "entered" in matrix
    screens(page, "dm-status-matrix")
    page.goto(f"{live_server.url}/admin/trials/trial/{trial.pk}/audit-trail/")
    page.fill("#td-user", "nurse_002")
    page.click("#td-audit-filter input[type=submit]")
    page.wait_for_url(re.compile(r".*audit-trail/\?.*user=nurse_002.*"))
    trail = page.inner_text("#td-audit")
    assert "nurse_002" in trail and "dm_002" not in trail
    screens(page, "dm-audit-explorer-by-user")

    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    page.click("a.td-casebook")
    page.click("input.td-casebook-generate")
    assert "Casebook PDF requested" in messages_of(page)
    screens(page, "dm-casebook-requested")
    link = page.locator("a.td-casebook-download")
    for _ in range(240):  # the page reloads itself while the worker generates the PDF
        if link.count():
            break
        page.wait_for_timeout(500)
    assert link.count() == 1, page.inner_text("table.td-casebooks")
    screens(page, "dm-casebook-ready")
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == f"NCT05962450_casebook_subject-{number}.pdf"
    reader = PdfReader(io.BytesIO(Path(download.path()).read_bytes()))
    pages = [p.extract_text() for p in reader.pages]
    assert len(pages) >= 3
    for n, text in enumerate(pages, 1):
        assert f"Subject {number}" in text and f"Page {n} of {len(pages)}" in text, n
    whole = "\n".join(pages)
    assert "Fatigue" in whole and "QLQ-C30" in whole and "nurse_002" in whole
    record = ExportRecord.objects.get(dataset="casebook", subject=subject)
    assert record.requested_by.username == "dm_002"
    assert ExportDownload.objects.filter(export=record).count() == 1
    print(f"casebook PDF: {len(pages)} pages, generated in "
          f"{(record.finished_at - record.started_at).total_seconds():.2f} s")
    page.context.close()
