"""The ledger in a real browser at 1280 pixels: every column on screen, counts as text."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import login
from versions.context import change_context
from versions.ledger import ledger_append
from versions.models import LedgerAction

pytestmark = pytest.mark.browser

DEMO_COUNTS = {
    "shop.Customer": 200,
    "shop.Session": 636,
    "shop.Order": 517,
    "shop.Notification": 601,
    "shop.NotificationPreference": 597,
    "shop.AnalyticsEvent": 1155,
    "shop.Document": 300,
    "shop.PasswordResetToken": 79,
    "shop.Message": 400,
}


@pytest.fixture
def entries(db):
    """A wide entry (nine models counted, through a command) and a plain one."""
    with change_context(channel="command:seed_demo"):
        seeded = ledger_append(
            action=LedgerAction.DEMO_SEED,
            actor=None,
            reason="Demo data",
            target="shop",
            counts=DEMO_COUNTS,
            details={"seed": 1},
        )
    exported = ledger_append(
        action=LedgerAction.EXPORT,
        actor=None,
        reason="ticket 4711",
        target="shop.Customer:17",
        counts={"rows": 3, "files": 1},
    )
    return seeded, exported


def test_ledger_list_fits_a_1280_pixel_window(page, auditor, entries, tmp_path):
    """No column of the ledger list is off-screen behind a horizontal scroll."""
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, "auditor", "auditor-pass")
    page.goto("/admin/versions/ledgerentry/")
    expect(page.locator("#result_list")).to_contain_text("rows: 3, files: 1")
    expect(page.locator("#result_list")).to_contain_text("shop.Message: 400")
    results = page.evaluate(
        "() => { const r = document.querySelector('.results');"
        " return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth]; }"
    )
    assert results[0] <= results[1] and results[2] <= 1280, results
    page.screenshot(path=str(tmp_path / "ledger-list.png"), full_page=True)


def test_ledger_entry_page_has_no_history_button(page, auditor, entries):
    """An entry's page shows counts as text and no History button."""
    page.set_viewport_size({"width": 1280, "height": 800})
    login(page, "auditor", "auditor-pass")
    page.goto(f"/admin/versions/ledgerentry/{entries[1].pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("rows: 3, files: 1")
    expect(page.locator("a.historylink")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
