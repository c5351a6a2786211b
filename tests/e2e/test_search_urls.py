"""Searching for a person in a real browser: no address the browser loads holds the term
(DESIGN.md contract 8)."""

import pytest
from playwright.sync_api import expect

from shop.models import Customer
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser

EMAIL = "ada.search@example.org"


@pytest.fixture
def ada(transactional_db, admin_user):
    customer = Customer.objects.create(email=EMAIL, full_name="Ada Search")
    customer.full_name = "Ada Searched"
    customer.save()
    return customer


@pytest.fixture
def addresses(page):
    """Every address the page requests: documents, redirects, scripts, lookups."""
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def _holding_the_email(addresses):
    return [url for url in addresses if EMAIL in url or "%40" in url or "ada.search" in url]


def test_searching_a_person_everywhere_keeps_the_email_out_of_every_address(page, ada, addresses):
    """Data subjects, all changes and the customer list, searched by email, as an officer."""
    login(page, "admin", "password")

    page.goto("/admin/compliance/subjects/")
    page.locator("#id_q").fill(EMAIL)
    page.locator("input[type=submit][value=Find]").click()
    expect(page.locator("h1")).to_contain_text("Ada Searched")

    page.goto("/admin/versions/changes/")
    page.locator("#id_subject").fill(EMAIL)
    page.locator("input[type=submit][value=Filter]").click()
    expect(page.locator("#all-changes")).to_contain_text("shop.Customer")

    page.goto("/admin/shop/customer/")
    page.locator("#searchbar").fill(EMAIL)
    page.locator("#changelist-search input[type=submit]").click()
    expect(page.locator("#result_list")).to_contain_text("Ada Searched")
    page.locator("#changelist-filter a", has_text="Deleted").first.click()
    expect(page.locator("#searchbar")).to_have_value(EMAIL)

    assert len(addresses) > 10
    assert _holding_the_email(addresses) == []
