"""Browser fixtures: Playwright's sync API driving the system Chromium against `live_server`.

Browsers are never downloaded: without /usr/bin/chromium the tests skip with a reason,
or fail under COMPLIANCE_TEST_STRICT=1.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def playwright():
    """Playwright for one test module, with Django's async-safety guard lifted meanwhile.

    Playwright's sync API keeps an asyncio event loop running in the main thread while it
    is started, so Django would raise SynchronousOnlyOperation on every ORM call the tests
    make, though they are synchronous. Module scope keeps the rest of the suite guarded.
    """
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            yield p
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture(scope="module")
def browser(playwright):
    if not CHROMIUM.is_file():
        unavailable(f"no system Chromium at {CHROMIUM}")
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@pytest.fixture
def context(browser, live_server):
    """A fresh browser profile per test, with relative URLs resolved against the live server."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


def login(page, username: str, password: str) -> None:
    """Log in through the real admin login form and wait for the admin index."""
    from playwright.sync_api import expect

    page.goto("/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("#login-form input[type=submit]").click()
    expect(page.locator("#user-tools")).to_contain_text(username)
