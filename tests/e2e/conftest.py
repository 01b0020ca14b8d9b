"""End-to-end fixtures: a real ``perprisk serve`` process and Debian's Chromium driven by Playwright.

Chromium is never downloaded: Playwright launches the system browser by path (installed by
scripts/test-services.sh when missing).  A missing browser fails the tests with the reason; nothing is skipped.
"""

from __future__ import annotations

import pytest

from perprisk.server.testing import CHROMIUM_ARGS, ServiceMissing, chromium_path


@pytest.fixture(scope="module")  # module: Playwright's sync API holds an event loop while open
def browser():
    try:
        executable = chromium_path()
    except ServiceMissing as err:
        pytest.fail(f"Chromium is required for the dashboard tests and could not be installed: {err}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:  # Playwright gives the browser a fresh temporary profile
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
