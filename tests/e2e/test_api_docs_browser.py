"""The API documentation renders with the network cut off: Swagger UI and Redoc are served
from the installed package (drf-spectacular-sidecar), never from a CDN.

Headless Chromium against a live server; every request to a host other than the live server
is aborted and recorded, as on a machine without internet access.
Screenshots: ``var/e2e-screenshots/``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.e2e]


def offline_page(browser, live_server):
    """A page whose requests outside the live server fail, and the list of those it tried."""
    local = urlsplit(live_server.url).netloc
    blocked: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)

    def route(route):
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", route)
    return context.new_page(), blocked


def test_swagger_ui_renders_offline(browser, live_server, screens):
    page, blocked = offline_page(browser, live_server)
    page.goto(f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "trialdesk API" in page.locator(".swagger-ui .info .title").inner_text()
    operations = page.locator(".swagger-ui .opblock")
    operations.first.wait_for()
    assert operations.count() > 20
    assert page.locator(".opblock-summary-path", has_text="/api/v1/subjects/").count() > 0
    screens(page, "swagger-offline", full_page=False)
    assert blocked == []


def test_redoc_renders_offline(browser, live_server, screens):
    page, blocked = offline_page(browser, live_server)
    page.goto(f"{live_server.url}/api/redoc/")
    page.locator("h1", has_text="trialdesk API").wait_for(timeout=90_000)  # parses the schema
    assert page.locator("[data-section-id*='operation/']").count() > 20
    screens(page, "redoc-offline", full_page=False)  # one long page: the viewport
    # Redoc's "API docs by Redocly" footer logo is an image its bundle links to; nothing the
    # page needs to render comes from outside.
    assert [url for url in blocked if not url.endswith("/logo-mini.svg")] == []
