"""The admin for site staff, end to end in headless Chromium against a live server.

Seed 000 (NCT05699811, open label, TI rule: grade 3-4 treatment-related AE lasting >= 7 days
within 28 days after an MSC-IFNα infusion): a site nurse screens a subject (enrollment refused
first, with each problem as a message), answers eligibility, enrolls, records the infusion and
a related grade 3 AE lasting 8 days; the real Celery worker evaluates the rule through the
outbox and the TI flag appears on the subject page with its reason. A nurse of another site
cannot find the subject. Seed 004 (NCT06722105, double-blind): a site nurse screens and
enrolls a subject and sees only the blinded label, nowhere the arm.
Screenshots: ``var/e2e-screenshots/``.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from adverse_events.models import ToxicityFlag
from subjects.models import Site, Subject
from tests.factories import load_ctcae_terms, load_seed_trial, make_site, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
#: The true arm labels and codes of seed 004, which blinded users must never see.
TRUE_ARMS_004 = ("2 infusions of MSC", "1 infusion of MSC", "Placebo", "MSC_M0", "PBO_M0")


def login(browser, live_server, username: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    return page


def messages_of(page) -> str:
    return " | ".join(page.locator("ul.messagelist li").all_inner_texts())


def add_subject(page, live_server, *, trial: str, screening: str, consent: dt.date) -> int:
    page.goto(f"{live_server.url}/admin/subjects/subject/add/")
    page.select_option("#id_trial", label=trial)
    site_value = page.locator("#id_site option", has_text=trial).first.get_attribute("value")
    page.select_option("#id_site", value=site_value)
    page.fill("#id_screening_number", screening)
    page.select_option("#id_sex", value="F")
    page.fill("#id_age_at_consent", "54")
    page.fill("#id_consent_date", consent.isoformat())
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/admin/subjects/subject/\d+/change/$"))
    return int(re.search(r"/subject/(\d+)/change/", page.url)[1])


def answer_eligibility_favourably(page) -> int:
    """Inclusion criteria "met", exclusion criteria "absent" (the labels of the inline)."""
    selects = page.locator(
        "select[name^=eligibility_answers-][name$=-met]:not([name*=__prefix__])")
    count = selects.count()
    for i in range(count):
        select = selects.nth(i)
        labels = select.locator("option").all_inner_texts()
        select.select_option(label="met" if "met" in labels else "absent")
    page.click("input[name=_continue]")
    page.wait_for_load_state()
    return count


def enroll(page, on: dt.date) -> None:
    page.click("a.td-enroll")
    page.fill("#id_enrolled_on", on.isoformat())
    page.click("input[name=_apply]")
    page.wait_for_load_state()


def test_site_staff_screen_enroll_infuse_and_see_the_ti_flag(
        browser, live_server, celery_worker, screens):
    load_ctcae_terms()
    trial = load_seed_trial("NCT05699811")
    site_a = trial.sites.get()
    site_b = make_site(trial, "B2")
    make_user("nurse_a", "site_staff", (trial, site_a), password=PASSWORD)
    make_user("nurse_b", "site_staff", (trial, site_b), password=PASSWORD)
    msc = trial.current_version().interventions.get(code="MSC-IFNA")
    # Day 0 a month ago (and inside the trial's dates, whatever today is).
    day0 = min(timezone.localdate() - dt.timedelta(days=30),
               trial.completion_date - dt.timedelta(days=60))

    page = login(browser, live_server, "nurse_a")
    screens(page, "admin-index")
    pk = add_subject(page, live_server, trial="NCT05699811", screening="SCR-E2E-1",
                     consent=day0 - dt.timedelta(days=10))
    screens(page, "subject-added")

    # Enrolling before eligibility is answered: refused, each problem shown as a message.
    enroll(page, day0)
    text = messages_of(page).lower()
    assert "enrollment refused" in text and "inclusion 2 not answered" in text, text
    assert Subject.objects.get(pk=pk).status == "screening"
    screens(page, "enrollment-refused")

    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    answered = answer_eligibility_favourably(page)
    assert answered == trial.current_version().criteria.count()
    assert "eligible: every criterion answered favourably" in page.inner_text(".td-eligibility")
    screens(page, "eligibility-answered")

    enroll(page, day0)
    text = messages_of(page)
    assert "Enrolled as 01001: MSC-IFNα monotherapy, dose level DL1" in text, text
    assert "MSC-IFNα monotherapy" in page.inner_text(".td-allocation")
    assert page.locator("tr.td-visit[data-code=C1]").count() == 1
    screens(page, "enrolled-visit-calendar")

    # The infusion at C1: dose prefilled from the dose level; planned total computed.
    page.click("tr.td-visit[data-code=C1] a.td-record-exposure")
    assert page.input_value("#id_dose_value").startswith("2000000")
    page.fill("#id_administered_on", day0.isoformat())
    page.fill("#id_weight_kg", "70")
    screens(page, "record-exposure")
    page.click("input[name=_apply]")
    page.wait_for_url(re.compile(r".*/subject/\d+/change/#exposures$"))
    exposure_row = page.inner_text("tr.td-exposure")
    assert "140000000 cells" in exposure_row, exposure_row
    assert "Done" in page.inner_text("tr.td-visit[data-code=C1]") or \
        "done" in page.inner_text("tr.td-visit[data-code=C1]")
    screens(page, "exposure-recorded")

    # A related grade 3 AE lasting 8 days, 2 days after the infusion.
    onset, end = day0 + dt.timedelta(days=2), day0 + dt.timedelta(days=9)
    page.click("a.td-add-ae")
    page.wait_for_url(re.compile(rf".*/adverseevent/add/\?subject={pk}$"))
    page.wait_for_load_state()  # the whole form parsed, not only the select's opening tag
    assert page.input_value("#id_subject") == str(pk)
    page.click(".field-term .select2-selection")
    page.fill(".select2-search__field", "Neutrophil count decreased")
    page.click(".select2-results__option:has-text('Neutrophil count decreased')")
    page.fill("#id_onset_date", onset.isoformat())
    page.fill("#id_resolution_date", end.isoformat())
    page.select_option("#id_grade_episodes-0-grade", value="3")
    page.fill("#id_grade_episodes-0-start_date", onset.isoformat())
    page.fill("#id_grade_episodes-0-end_date", end.isoformat())
    page.select_option("#id_attributions-0-intervention", value=str(msc.pk))
    page.select_option("#id_attributions-0-level", value="possible")
    screens(page, "adverse-event-form")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/adverseevent/$"))
    assert "was added successfully" in messages_of(page)

    # The worker evaluates the TI rule (queued through the outbox on commit).
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/#adverse-events")
    for _ in range(60):
        if page.locator(".td-flag-on").count():
            break
        page.wait_for_timeout(500)
        page.reload()
    flag = page.locator(".td-flag-on")
    assert flag.count() == 1, page.inner_text("#adverse-events")
    assert "TI YES" in flag.inner_text()
    reason = page.inner_text(".td-flag-on .td-flag-reason")
    assert "TI (rule TI)" in reason and "for 8 days" in reason, reason
    assert "attribution to MSC-IFNA: possible" in reason
    assert page.inner_text(".td-flag-count") == "1"
    stored = ToxicityFlag.objects.get(subject_id=pk, rule_code="TI")
    assert stored.computed is True and stored.reason == reason
    screens(page, "ti-flag")

    # The audit trail of the subject: who, when, old -> new, reason.
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/history/")
    trail = page.inner_text("#audit-trail")
    assert "nurse_a" in trail and "enrollment" in trail and "subject_number" in trail
    screens(page, "audit-trail")

    # The trial dashboard counts it: one enrolled subject, one TI at DL1.
    page.goto(f"{live_server.url}/admin/trials/trial/{trial.pk}/dashboard/")
    assert page.inner_text("#td-enrolled") == "1"
    level = page.inner_text("tr.td-dose-level")
    assert level.split("\t")[1] == "DL1" and level.split("\t")[5] == "1", level
    screens(page, "dashboard")
    page.context.close()

    # A nurse of site B cannot find the subject, by list, search or address.
    page = login(browser, live_server, "nurse_b")
    page.goto(f"{live_server.url}/admin/subjects/subject/?q=01001")
    assert "SCR-E2E-1" not in page.content()
    assert "0 subjects" in page.inner_text("#changelist-form") or \
        page.locator("#result_list").count() == 0
    screens(page, "site-b-search")
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    assert "doesn’t exist" in messages_of(page) and "SCR-E2E-1" not in page.content()
    response = page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/enroll/")
    assert response.status == 404
    page.goto(f"{live_server.url}/admin/visits/visit/")
    assert "01001" not in page.inner_text("#content")
    screens(page, "site-b-no-access")
    page.context.close()


def test_blinded_site_staff_enroll_and_see_no_arm(browser, live_server, screens):
    load_ctcae_terms()
    trial = load_seed_trial("NCT06722105")
    site = Site.objects.create(trial=trial, code="P1", name="Hôpital Saint-Louis")
    make_user("blind_nurse", "site_staff", (trial, site), password=PASSWORD)
    day0 = min(timezone.localdate() - dt.timedelta(days=7),
               trial.completion_date - dt.timedelta(days=200))

    page = login(browser, live_server, "blind_nurse")
    pk = add_subject(page, live_server, trial="NCT06722105", screening="SSC-E2E-1",
                     consent=day0 - dt.timedelta(days=5))
    answer_eligibility_favourably(page)
    page.click("a.td-enroll")
    assert page.locator("#id_arm").count() == 0  # randomized: the arm is allocated
    page.fill("#id_enrolled_on", day0.isoformat())
    page.click("input[name=_apply]")
    page.wait_for_load_state()
    text = messages_of(page)
    assert re.search(r"Enrolled as P1001: Blinded;", text), text
    subject = Subject.objects.select_related("arm").get(pk=pk)
    assert subject.arm is not None
    screens(page, "blinded-subject-page")

    visit = subject.visits.get(code="M0")
    pages = {
        "subject-page": f"/admin/subjects/subject/{pk}/change/",
        "subject-list": "/admin/subjects/subject/",
        "subject-history": f"/admin/subjects/subject/{pk}/history/",
        "visit-list": "/admin/visits/visit/",
        "visit-page": f"/admin/visits/visit/{visit.pk}/change/",
        "exposure-form": f"/admin/visits/visit/{visit.pk}/exposure/",
        "dashboard": f"/admin/trials/trial/{trial.pk}/dashboard/",
    }
    for name, url in pages.items():
        page.goto(live_server.url + url)
        html = page.content()
        leaks = [label for label in TRUE_ARMS_004 if label in html]
        assert leaks == [], (name, leaks)
        screens(page, f"blinded-{name}")
    # The infusion at M0: the product is the visit's (fixed by the concealed arm), never shown
    # or chosen; the AE is attributed to the blinded study treatment.
    page.goto(live_server.url + pages["exposure-form"])
    assert page.locator("[name=intervention]").count() == 0
    page.fill("#id_administered_on", day0.isoformat())
    page.fill("#id_dose_value", "2000000")
    page.select_option("#id_dose_unit", value="cells/kg")
    page.fill("#id_weight_kg", "61.5")
    page.click("input[name=_apply]")
    page.wait_for_url(re.compile(r".*/subject/\d+/change/#exposures$"))
    assert "123000000 cells" in page.inner_text("tr.td-exposure")
    page.click("a.td-add-ae")
    page.click(".field-term .select2-selection")
    page.fill(".select2-search__field", "Fatigue")
    page.click(".select2-results__option:has-text('Fatigue (10016256)')")
    onset = day0 + dt.timedelta(days=1)
    page.fill("#id_onset_date", onset.isoformat())
    page.select_option("#id_grade_episodes-0-grade", value="1")
    page.fill("#id_grade_episodes-0-start_date", onset.isoformat())
    options = page.locator("#id_attributions-0-intervention option").all_inner_texts()
    assert "NCT06722105: Blinded study treatment (MSC-AT or matching placebo)" in options
    assert not [o for o in options if "Placebo" in o], options
    page.select_option("#id_attributions-0-intervention",
                       label="NCT06722105: Blinded study treatment (MSC-AT or matching placebo)")
    page.select_option("#id_attributions-0-level", value="possible")
    page.click("input[name=_save]")
    page.wait_for_url(re.compile(r".*/adverseevent/$"))
    ae = subject.adverse_events.get()
    for name, url in {"subject-page-treated": pages["subject-page"],
                      "exposure-list": "/admin/visits/exposure/",
                      "ae-page": f"/admin/adverse_events/adverseevent/{ae.pk}/change/"}.items():
        page.goto(live_server.url + url)
        html = page.content()
        assert [label for label in (*TRUE_ARMS_004, "PBO") if label in html] == [], name
        screens(page, f"blinded-{name}")
    page.goto(f"{live_server.url}/admin/subjects/subject/{pk}/change/")
    assert "study product (blinded): possible" in page.inner_text("#adverse-events")
    assert re.match(r"Blinded \(you are blinded to this trial\) · day 0 ",
                    page.inner_text(".td-allocation").strip())
    # Arms themselves are not open to site staff.
    assert page.goto(f"{live_server.url}/admin/trials/arm/").status == 403
    page.context.close()
