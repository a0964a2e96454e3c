"""Browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

A failed test leaves a screenshot of each page it opened in var/browser-failures/.
"""

import os
import re
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking ones Chromium keeps trying to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

_reports = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_reports, {})[report.when] = report
    return report


@pytest.fixture(scope="package")
def browser():
    """One headless Chromium for the browser tests, closed after the last of them.

    Package-scoped, not session-scoped: Playwright's sync API keeps an event loop running in the test
    thread while it is started, and Django refuses ORM calls under a running loop. Allowing them
    (DJANGO_ALLOW_ASYNC_UNSAFE) only while the browser lives keeps that switch off for every other test.
    """
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium (Playwright's own browser download is not used)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {message}. .ci/run installs it.", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # An assertion waits up to 15 s for the page to get there, not Playwright's 5 s: with the test suite on both
    # cores (pytest -n 2, the live server in the same process as the test), an htmx answer took longer than 5 s
    # in CI, and a test failed on a page that was only slow.
    expect.set_options(timeout=15_000)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()


@pytest.fixture
def log_in(request, browser, live_server, transactional_db, personas):
    """`log_in("manny")` logs a persona in through the login form in a browser context of its own (its own
    cookies) and returns the page, showing the campaign list."""
    from playwright.sync_api import expect

    from tests.conftest import PASSWORD

    contexts = []
    errors = []

    def log_in(username):
        context = browser.new_context(base_url=live_server.url)
        contexts.append(context)
        page = context.new_page()
        # Confirmations (htmx's hx-confirm) are accepted, as the person clicking the button would.
        page.on("dialog", lambda dialog: dialog.accept())

        # A script blocked by the CSP, a failed htmx request or an exception shows here and nowhere else.
        def console(message):
            if message.type == "error":
                errors.append(f"{page.url}: {message.text}")

        page.on("console", console)
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
        page.goto("/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Campaigns", level=1)).to_be_visible()
        expect(page.locator(".usermenu-name")).to_have_text(username)
        return page

    yield log_in

    reports = request.node.stash.get(_reports, {})
    if any(report.failed for report in reports.values()):
        _screenshot(request.node.name, [page for context in contexts for page in context.pages])
    for context in contexts:
        context.close()
    if errors:
        pytest.fail("Errors in the browser console:\n" + "\n".join(errors), pytrace=False)


def _screenshot(test_name: str, pages) -> None:
    directory = Path(settings.VAR_DIR) / "browser-failures"
    directory.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", test_name)
    for number, page in enumerate(pages, start=1):
        path = directory / f"{stem}-{number}.png"
        try:
            page.screenshot(path=path, full_page=True)
        except Exception as error:  # a crashed page must not hide the test's own failure
            print(f"No screenshot of {page.url}: {error}")
        else:
            print(f"Screenshot of {page.url}: {path}")
