"""The admin through a real browser: an officer's edit lands in history, an auditor can't edit."""

import re

import pytest
from playwright.sync_api import expect

from shop.models import Customer
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser

NEW_PHONE = "+44 20 7946 0000"


def test_officer_edit_shows_in_history_with_user_and_ip(page, officer, customer):
    """An officer's edit through the form is recorded with their user, IP and request id."""
    login(page, "officer", "officer-pass")

    page.goto("/admin/shop/customer/")
    page.locator("#searchbar").fill("Lovelace")
    page.locator("#searchbar").press("Enter")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.locator("#result_list").get_by_role("link", name="Ada Lovelace").click()
    expect(page).to_have_url(re.compile(rf"/admin/shop/customer/{customer.pk}/change/(\?|$)"))

    page.locator("#id_phone").fill(NEW_PHONE)
    with page.expect_response(
        lambda r: r.request.method == "POST" and "/change/" in r.url
    ) as posted:
        page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("was changed successfully")
    request_id = posted.value.headers["x-request-id"]

    page.goto(f"/admin/shop/customer/{customer.pk}/change/")
    page.locator("#content-main").get_by_role("link", name="History", exact=True).click()
    expect(page.locator("#change-history thead")).to_contain_text("IP address")
    rows = page.locator("#change-history tbody tr")
    expect(rows).to_have_count(2)  # created by the fixture, changed by the officer
    change = rows.filter(has_text="Changed")
    expect(change).to_have_count(1)
    expect(change).to_contain_text("officer")
    expect(change).to_contain_text("127.0.0.1")
    expect(change).to_contain_text(request_id)
    expect(change).to_contain_text(NEW_PHONE)

    record = Customer.history.get(id=customer.pk, history_type="~")
    assert record.phone == NEW_PHONE
    assert record.history_user == officer
    assert record.history_ip == "127.0.0.1"
    assert record.history_request_id == request_id
    assert record.history_user_agent == page.evaluate("navigator.userAgent")


def test_auditor_sees_customer_read_only_and_cannot_add_or_change(page, auditor, customer):
    """An auditor sees the customer read-only; adding and posting a change are refused."""
    login(page, "auditor", "auditor-pass")

    change_url = f"/admin/shop/customer/{customer.pk}/change/"
    page.goto(change_url)
    expect(page.locator("h1")).to_have_text("View customer")
    expect(page.locator(".field-email .readonly")).to_have_text("ada@example.org")
    expect(page.locator(".field-phone .readonly")).to_have_text("+44 20 7946 0001")
    expect(page.locator("input[name=_save]")).to_have_count(0)
    expect(page.locator("#id_full_name, #id_email, #id_phone")).to_have_count(0)

    response = page.goto("/admin/shop/customer/add/")
    assert response.status == 403

    # A hand-made POST with a valid CSRF token: refused by permission, not by CSRF.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    posted = page.request.post(
        change_url,
        form={
            "csrfmiddlewaretoken": csrf,
            "email": "ada@example.org",
            "full_name": "Ada Lovelace",
            "phone": NEW_PHONE,
            "_save": "Save",
        },
        max_redirects=0,
    )
    assert posted.status == 403
    assert "CSRF" not in posted.text()

    customer.refresh_from_db()
    assert customer.phone == "+44 20 7946 0001"
    assert list(Customer.history.filter(id=customer.pk).values_list("history_type", flat=True)) == [
        "+"
    ]
