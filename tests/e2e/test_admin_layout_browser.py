"""Admin layouts fit a 1,280 px wide screen (no horizontal scrolling) in headless Chromium.

Subjects of every seed trial (long site names, arm labels and dose levels) in one list, seen
by an admin with the filter sidebar open. Screenshots: ``var/e2e-screenshots/``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from subjects.enrollment import enroll
from tests.e2e.test_admin_browser import PASSWORD
from tests.factories import make_eligible, make_subject, make_user
from trials.models import Trial

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_subject_list_fits_1280_px(browser, live_server, screens):
    call_command("seed_protocols", verbosity=0)
    for trial in Trial.objects.all():
        for site in trial.sites.all():
            subject = make_eligible(make_subject(trial, site, consent_date=dt.date(2025, 1, 2)))
            enroll(subject, enrolled_on=dt.date(2025, 1, 6))
    make_user("layout_admin", "admin", password=PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.goto(f"{live_server.url}/admin/login/?next=/admin/subjects/subject/")
    page.fill("#id_username", "layout_admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.locator("#result_list").wait_for()
    screens(page, "subject-list-1280")
    # The page does not scroll sideways, nor does the result table inside its own box
    # (Django's admin puts it in a horizontally scrolling div).
    overflow = page.evaluate("""() => [document.documentElement,
        document.querySelector('#changelist .results')].map(e => e.scrollWidth - e.clientWidth)""")
    assert overflow == [0, 0], f"wider than the screen by {overflow} px (page, result table)"
    assert page.locator("#result_list thead th").count() >= 10
