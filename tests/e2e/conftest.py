"""Browser fixtures: Playwright driving Debian's headless Chromium (never a downloaded one).

Install with ``scripts/install-browser``. The tests are skipped, with the reason, only when
``/usr/bin/chromium`` is missing; screenshots go to ``var/e2e-screenshots/`` (CI artifacts).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "e2e-screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def _orm_beside_playwright():
    """Playwright's sync API runs an event loop in the test thread while the browser is open;
    the ORM calls made there meanwhile (fixtures, database flushes, assertions) are ordinary
    synchronous code. Only for the modules that use the browser, and only while it is open."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


def pytest_collection_modifyitems(config, items):
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: run scripts/install-browser "
                                   "(Debian packages chromium and chromium-driver)")
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser(_orm_beside_playwright):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # installed by scripts/install-browser, never skipped silently
        raise RuntimeError("Playwright for Python is missing: run scripts/install-browser") \
            from exc
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Screens:
    """Numbered full-page screenshots of one test under ``var/e2e-screenshots/``."""

    def __init__(self, test_name: str):
        self.prefix = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)
        self.count = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for old in SCREENSHOTS.glob(f"{self.prefix}-*.png"):
            old.unlink()

    def __call__(self, page, step: str, full_page: bool = True) -> Path:
        self.count += 1
        path = SCREENSHOTS / f"{self.prefix}-{self.count:02d}-{step}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def screens(request):
    return Screens(request.node.name)
