"""Admin pages at a 1280-pixel window, as a person sees them: screenshots and layout checks.

Screenshots go to $COMPLIANCE_SCREENSHOT_DIR when it is set (to look at them), else to
pytest's temporary directory.
"""

import os
import re
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import expect

from retention.models import RetentionPolicy
from retention.services import _proposal
from shop.demo import demo_seed
from shop.models import Customer
from tests.e2e.conftest import login
from tests.operations.test_restore import _email_taken_over, listed  # noqa: F401
from versions.models import LedgerEntry

pytestmark = pytest.mark.browser

WIDTH = 1280
HEIGHT = 800
CUSTOMERS = 120  # more than one list page of 100


@pytest.fixture
def shots(tmp_path):
    """The directory screenshots are saved to."""
    directory = Path(os.environ.get("COMPLIANCE_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture
def wide_page(context):
    page = context.new_page()
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    return page


@pytest.fixture
def demo_data(transactional_db):
    with override_settings(DEMO=True):
        demo_seed(customers=CUSTOMERS, actor=None, reason="screenshots")


def _shoot(page, shots: Path, name: str) -> Path:
    """The whole page as NAME.png, and the first screenful as NAME-top.png."""
    page.screenshot(path=str(shots / f"{name}-top.png"))
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


# Cells whose text takes more than one line: the height of their contents over a line.
_WRAPPED_CELLS = """cells => cells.filter(cell => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const lineHeight = parseFloat(getComputedStyle(cell).lineHeight);
    return range.getBoundingClientRect().height > 1.5 * lineHeight;
}).map(cell => cell.className + ": " + cell.innerText)"""


def _assert_fits(page, may_wrap: tuple[str, ...] = ()):
    """No horizontal scroll at 1280 px, in the page or in the list, and no wrapped cell
    except in the columns named in MAY_WRAP."""
    assert _scroll_width(page) <= WIDTH, f"{page.url} is {_scroll_width(page)} px wide"
    results = page.locator(".results")
    if results.count():
        inner, outer = results.evaluate("r => [r.scrollWidth, r.clientWidth]")
        assert inner <= outer, f"{page.url}: the list scrolls sideways ({inner} > {outer} px)"
    wrapped = page.locator("#result_list tbody td, #result_list tbody th").evaluate_all(
        _WRAPPED_CELLS
    )
    wrapped = [cell for cell in wrapped if cell.split(":")[0] not in may_wrap]
    assert not wrapped, f"{page.url}: {len(wrapped)} cells wrap, e.g. {wrapped[:3]}"


@pytest.mark.parametrize(
    ("name", "url", "rows"),
    [
        ("customer-list", "/admin/shop/customer/", 100),  # names may take two lines
        ("order-list", "/admin/shop/order/", 100),
        ("session-list", "/admin/shop/session/", 100),
        ("reset-token-list", "/admin/shop/passwordresettoken/", None),
        ("notification-list", "/admin/shop/notification/", 100),
        ("preference-list", "/admin/shop/notificationpreference/", 100),
        ("analytics-list", "/admin/shop/analyticsevent/", 100),
        ("message-list", "/admin/shop/message/", 100),
        ("document-list", "/admin/shop/document/", 100),
    ],
)
def test_shop_lists_fit_a_1280_pixel_window(
    wide_page, admin_user, demo_data, shots, name, url, rows
):
    """The shop's lists fit 1280 px without horizontal scrolling and without wrapped rows."""
    login(wide_page, "admin", "password")
    wide_page.goto(url)
    if rows:
        expect(wide_page.locator("#result_list tbody tr")).to_have_count(rows)
    _shoot(wide_page, shots, name)
    _assert_fits(wide_page, may_wrap=("field-name",) if name == "customer-list" else ())


def test_history_version_and_ledger_pages_fit_a_1280_pixel_window(
    wide_page, admin_user, demo_data, shots
):
    """A customer's history page, one version from it and the ledger list: no wider than 1280 px."""
    login(wide_page, "admin", "password")
    edited = Customer.history.filter(history_type="~").values_list("id", flat=True)
    customer = Customer.objects.filter(pk__in=edited, deleted_at__isnull=True).first()
    wide_page.goto(f"/admin/shop/customer/{customer.pk}/history/")
    expect(wide_page.locator("#change-history tbody tr")).to_have_count(2)
    assert _shoot(wide_page, shots, "customer-history").stat().st_size
    assert _scroll_width(wide_page) <= WIDTH

    wide_page.locator("#change-history tbody tr a").first.click()
    expect(wide_page).to_have_url(re.compile(rf"/admin/shop/customer/{customer.pk}/history/\d+/"))
    assert _shoot(wide_page, shots, "customer-version").stat().st_size
    assert _scroll_width(wide_page) <= WIDTH

    wide_page.goto("/admin/versions/ledgerentry/")
    expect(wide_page.locator("#result_list tbody tr")).to_have_count(LedgerEntry.objects.count())
    assert _shoot(wide_page, shots, "ledger-list").stat().st_size
    assert _scroll_width(wide_page) <= WIDTH


def test_refused_page_keeps_the_admin_layout_and_fits(wide_page, auditor, customer, shots):
    """An auditor refused an add sees the admin's layout, what was refused and a way back."""
    login(wide_page, "auditor", "auditor-pass")
    wide_page.goto("/admin/shop/customer/")
    response = wide_page.goto("/admin/shop/customer/add/")
    assert response.status == 403
    expect(wide_page.locator("#site-name")).to_contain_text("Compliance administration")
    expect(wide_page.locator(".errornote")).to_have_text(
        "Your account (auditor) may not add a customer."
    )
    _shoot(wide_page, shots, "refused")
    _assert_fits(wide_page)
    wide_page.get_by_role("link", name="Back to customers").click()
    expect(wide_page).to_have_url(re.compile(r"/admin/shop/customer/$"))
    expect(wide_page.locator("#result_list")).to_contain_text("Ada Lovelace")


def test_compliance_and_history_pages_fit_a_1280_pixel_window(
    wide_page, admin_user, demo_data, shots
):
    """The pages of the data-subject lifecycle and of history browsing: no wider than 1280 px."""
    from compliance.models import SubjectRequest

    login(wide_page, "admin", "password")
    edited = Customer.history.filter(history_type="~").values_list("id", flat=True)
    customer = Customer.objects.filter(pk__in=edited, deleted_at__isnull=True).first()
    first = customer.history.order_by("history_date").first()
    request = SubjectRequest.objects.order_by("pk").first()
    pages = {
        "subject-search": "/admin/compliance/subjects/",
        "subject-overview": f"/admin/compliance/subjects/{customer.pk}/",
        "restriction-form": f"/admin/compliance/subjects/{customer.pk}/restrict/",
        "all-changes": "/admin/versions/changes/",
        "restore-preview": f"/admin/shop/customer/{customer.pk}/history/{first.pk}/restore/",
        "deleted-records": "/admin/shop/customer/deleted/",
        "request-list": "/admin/compliance/subjectrequest/",
        "request-page": f"/admin/compliance/subjectrequest/{request.pk}/change/",
        "consent-timeline": f"/admin/compliance/consentevent/subject/{customer.pk}/timeline/",
        "erasure-preview": f"/admin/compliance/erasurecertificate/erasure/{customer.pk}/",
        "export-run": f"/admin/compliance/subjectexport/run/{customer.pk}/",
    }
    too_wide = {}
    for name, url in pages.items():
        response = wide_page.goto(url)
        assert response.status == 200, (name, response.status)
        _shoot(wide_page, shots, name)
        if _scroll_width(wide_page) > WIDTH:
            too_wide[name] = _scroll_width(wide_page)
    assert not too_wide


def test_policy_list_with_changes_awaiting_approval_fits_a_1280_pixel_window(
    wide_page, admin_user, shots
):
    """The retention policy list, with two changes awaiting approval, fits 1280 px: the
    approval column says only that a change awaits approval (its detail is on the change
    page) and every column, "last run" included, is in view."""
    with override_settings(DEMO=True):
        demo_seed(customers=2, actor=None, reason="screenshots")
    for policy in RetentionPolicy.objects.order_by("name")[:2]:
        RetentionPolicy.objects.filter(pk=policy.pk).update(
            pending_change=_proposal(policy), proposed_by=admin_user, proposed_at=timezone.now()
        )
    login(wide_page, "admin", "password")
    wide_page.goto("/admin/retention/retentionpolicy/")
    expect(wide_page.locator("#result_list td.field-approval_state strong")).to_have_count(2)
    _shoot(wide_page, shots, "policy-list-pending")
    _assert_fits(wide_page, may_wrap=("field-name", "field-target_model", "field-period",
                                      "field-action", "field-approval_state"))  # fmt: skip
    expect(wide_page.locator("#result_list th.column-last_run")).to_be_in_viewport(ratio=1)


def test_replay_match_decision_uses_the_admin_buttons_and_spacing(
    wide_page,
    admin_user,
    listed,  # noqa: F811
    shots,
):
    """The decision page's buttons are the admin's own, and the reason box stands apart
    from the plan's table."""
    login(wide_page, "admin", "password")
    wide_page.goto(f"/admin/operations/erasurereplaymatch/{listed[1].pk}/decide/")
    _shoot(wide_page, shots, "replay-match-decide")
    buttons = wide_page.locator(".submit-row button")
    expect(buttons).to_have_count(2)
    for index in range(2):
        assert "button" in buttons.nth(index).get_attribute("class").split()
        assert buttons.nth(index).evaluate("b => getComputedStyle(b).borderTopStyle") == "none"
    table = wide_page.locator("#erasure-plan").bounding_box()
    reason = wide_page.locator("#id_reason").bounding_box()
    assert reason["y"] - (table["y"] + table["height"]) >= 20
    _assert_fits(wide_page)
