"""Browser fixtures: Playwright driving Debian's headless Chromium (``.ci/run`` installs it) against the
test API server, which serves the pages too. A failed test leaves a screenshot of its page in
``.test-screenshots/`` (or ``$SKYBROKER_SCREENSHOTS``)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(os.environ.get("SKYBROKER_SCREENSHOTS", Path(__file__).parents[3] / ".test-screenshots"))


def chromium_path() -> str:
    path = os.environ.get("SKYBROKER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("no Chromium: install Debian's chromium package (.ci/run does) or set SKYBROKER_CHROMIUM")
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def page(browser, api_server, request):
    """A fresh browser context (no cookies) on the test server; a screenshot on failure."""
    context = browser.new_context(base_url=api_server.url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors
    yield pg
    failed = any(getattr(request.node, f"rep_{w}", None) is not None and getattr(request.node, f"rep_{w}").failed
                 for w in ("setup", "call"))
    if failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOTS / (re.sub(r"[^\w.-]+", "_", request.node.nodeid) + ".png")
        try:
            pg.screenshot(path=str(shot), full_page=True)
            print(f"screenshot of the failed page: {shot}")
        except Exception as exc:  # the page may have crashed: the failure itself is what matters
            print(f"no screenshot ({exc})")
    context.close()


def sign_in(pg, client) -> None:
    """Sign in as a test client's user, through the sign-in form."""
    pg.goto("/login")
    pg.fill("#token", client.token)
    pg.click(".signin button[type=submit]")
    pg.wait_for_url(re.compile(r".*/candidates.*"))
