"""ePRO end to end in headless Chromium (issue 21, acceptance 1 and 3).

A site nurse issues a link in the admin; on a phone viewport (390x844) the patient opens it
and answers the QLQ-C30 in zh-Hans placeholder wording, leaving two items out (listed before
submitting), goes back once, submits and sees the confirmation; axe-core (installed by
scripts/install-browser, injected from node_modules/) finds no serious or critical violation
on the pages. The real Celery worker scores the form; the scores and the time to
deterioration appear on the subject page as for staff entry. The admin's language switch
shows the subject page in Simplified Chinese and French (labels, and dates in each language's
format). Screenshots: var/e2e-screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.utils import timezone

from epro.models import EproLink
from tests.conftest import wait_for
from tests.epro_factories import epro_subject
from visits.models import QlqC30Score

pytestmark = [pytest.mark.e2e, pytest.mark.celery_worker,
              pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SKIPPED = (4, 17)
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counts live in the shared Redis cache: those of earlier tests start afresh."""
    from django.core.cache import cache

    cache.clear()


def staff_page(browser, live_server, user):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    return page


def serious_violations(page) -> list[str]:
    """axe-core's violations of impact serious or critical (WCAG 2.1 A/AA and best practice)."""
    assert AXE.exists(), f"{AXE} is missing: run scripts/install-browser"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("""async () => (await axe.run(document, {runOnly: {type: 'tag',
        values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})).violations""")
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in violations
            if v["impact"] in ("serious", "critical")]


def test_patient_completes_the_qlq_c30_on_a_phone(browser, live_server, celery_worker,
                                                  screens):
    subject, visit, nurse = epro_subject(languages=("zh-hans", "fr", "en"))
    desk = staff_page(browser, live_server, nurse)
    desk.goto(f"{live_server.url}/admin/epro/eprolink/issue/")
    desk.select_option("#id_visit", value=str(visit.pk))
    desk.click("input[name=_apply]")
    issued = desk.locator("#epro-url").input_value()
    assert desk.locator("#epro-qr svg").count() == 1
    screens(desk, "issued")
    path = urlparse(issued).path
    assert re.fullmatch(r"/epro/[\w-]{43}/", path)

    phone_context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                        device_scale_factor=2)
    phone_context.set_default_timeout(20_000)
    phone = phone_context.new_page()
    phone.goto(f"{live_server.url}{path}")
    assert phone.locator("html").get_attribute("lang") == "zh-hans"
    assert "【占位】生活质量问卷" in phone.locator("h1").inner_text()
    problems = {"start": serious_violations(phone)}
    screens(phone, "start")
    phone.click("#start")
    for n in range(1, 31):
        phone.wait_for_url(re.compile(rf".*/item/{n}/$"))
        assert f"【占位】第{n}题" in phone.locator("legend").inner_text()
        if n == 1:
            problems["item"] = serious_violations(phone)
            box = phone.locator("label.option").first.bounding_box()
            assert box["height"] >= 44 and box["width"] >= 300  # large touch targets
            screens(phone, "item-1")
        if n not in SKIPPED:
            phone.locator("label.option").nth(1 if n < 29 else 4).click()
        if n == 2:  # back to item 1, whose answer is kept, then on again
            phone.click("#back")
            phone.wait_for_url(re.compile(r".*/item/1/$"))
            assert phone.locator("#answer-2").is_checked()
            phone.click("#next")
            phone.wait_for_url(re.compile(r".*/item/2/$"))
            assert phone.locator("#answer-2").is_checked()
        phone.click("#next")
    phone.wait_for_url(re.compile(r".*/review/$"))
    missing = phone.locator("#unanswered li").all_inner_texts()
    assert missing == [f"第 {n} 题" for n in SKIPPED]
    problems["review"] = serious_violations(phone)
    screens(phone, "review")
    phone.click("#submit")
    phone.wait_for_url(re.compile(r".*/epro/done/.*"))
    assert phone.locator("#thanks").inner_text() == "感谢您的参与"
    problems["done"] = serious_violations(phone)
    screens(phone, "done")
    assert {page: found for page, found in problems.items() if found} == {}

    phone.goto(f"{live_server.url}{path}")  # cannot reopen
    assert phone.locator("#refused").get_attribute("data-code") == "submitted"

    link = EproLink.objects.get(visit=visit)
    form = link.form
    assert form.mode == "epro" and form.q4 is None and form.q17 is None and form.q1 == 2
    assert link.device_submitted_at is not None and link.submitted_at <= timezone.now()
    score = wait_for(lambda: QlqC30Score.objects.filter(form=form, state="done").first(),
                     timeout=60)
    wait_for(lambda: subject.qlq_c30_deterioration.count() == 16, timeout=60)

    desk.goto(f"{live_server.url}/admin/subjects/subject/{subject.pk}/change/")
    qlq = desk.locator("#qlq-c30")
    row = qlq.locator("tbody tr").first.inner_text()
    assert "epro" in row and "done" in row and f"{score.QL2:.1f}" in row
    assert qlq.locator("h3").count() == 1  # time to deterioration, one row per scale
    assert qlq.locator("table").nth(1).locator("tbody tr").count() == 16
    screens(desk, "subject-page-scores")


def test_the_admin_language_switch_translates_the_subject_page(browser, live_server, screens):
    subject, visit, nurse = epro_subject()
    low = visit.window_low
    desk = staff_page(browser, live_server, nurse)
    desk.goto(f"{live_server.url}/admin/subjects/subject/{subject.pk}/change/")
    assert "Visit calendar" in desk.locator("#visit-calendar h2").inner_text()
    assert low.isoformat() in desk.locator("#visit-calendar").inner_text()
    for language, label, day in (
            ("zh-hans", "访视日历", f"{low.year}年{low.month}月{low.day}日"),
            ("fr", "Calendrier des visites", f"{low:%d/%m/%Y}")):
        with desk.expect_navigation():
            desk.select_option("#language-select", value=language)
        desk.wait_for_load_state()
        assert desk.locator("html").get_attribute("lang") == language
        assert label in desk.locator("#visit-calendar h2").inner_text()
        assert day in desk.locator("#visit-calendar").inner_text()  # dates in its format
        screens(desk, f"subject-page-{language}")


def test_the_patient_switches_language_on_a_phone(browser, live_server, screens):
    """The trial loaded zh-Hans (its default) and French: the patient's page starts in
    Chinese, shows the visit's window in Chinese dates, and switches to French (dates too)
    with a button large enough to tap; axe-core finds no serious violation either way."""
    from epro import services

    subject, visit, nurse = epro_subject(languages=("zh-hans", "fr"))
    _, token = services.issue_link(visit, user=nurse)
    low = visit.window_low
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(20_000)
    phone = context.new_page()
    phone.goto(f"{live_server.url}/epro/{token}/")
    assert phone.locator("html").get_attribute("lang") == "zh-hans"
    assert f"{low.year}年{low.month}月{low.day}日" in phone.locator("#window").inner_text()
    french = phone.locator('button.lang[value="fr"]')
    box = french.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 44
    problems = {"zh-hans": serious_violations(phone)}
    screens(phone, "start-zh-hans")
    with phone.expect_navigation():
        french.tap()
    assert phone.locator("html").get_attribute("lang") == "fr"
    assert "[Texte provisoire]" in phone.locator("h1").inner_text()
    assert f"{low.day} " in phone.locator("#window").inner_text()
    assert str(low.year) in phone.locator("#window").inner_text()
    assert phone.locator('button.lang[aria-current="true"]').get_attribute("value") == "fr"
    problems["fr"] = serious_violations(phone)
    screens(phone, "start-fr")
    assert {page: found for page, found in problems.items() if found} == {}
    assert EproLink.objects.get(visit=visit).language == "fr"
