"""The privacy center in a real browser: a person makes a request, enters the emailed code
and follows it, on a phone-sized and a desktop-sized window."""

import re

import pytest
from playwright.sync_api import expect

from compliance.models import SubjectRequest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _code(inbox) -> str:
    body = inbox.messages[-1].get_body(("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", body).group(1)


@pytest.mark.parametrize("width", [375, 1280])
def test_person_makes_confirms_and_follows_a_request(page, customer, smtp_inbox, width):
    """Make a request, enter the emailed code, land on the status page; nothing overflows."""
    page.set_viewport_size({"width": width, "height": 800})
    page.goto("/privacy/")
    page.get_by_role("link", name="Make a request").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_label("Your email address").fill("ada@example.org")
    page.get_by_label("What would you like us to do?").select_option("access")
    page.get_by_label("Where do you live?").select_option("gdpr")
    page.get_by_role("button", name="Send me a code").click()
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    assert "ada" not in page.url
    page.get_by_label("The 6-digit code from the email").fill(_code(smtp_inbox))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Your request")).to_be_visible()
    expect(page.get_by_text("Confirmed, waiting to be handled")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert "ada" not in page.url and re.search(r"/privacy/status/[\w-]{40,}/$", page.url)
    assert SubjectRequest.objects.get().state == SubjectRequest.State.VERIFIED


def test_language_switch_turns_the_center_german(page):
    """Choosing Deutsch on the page shows the center in German."""
    page.goto("/privacy/")
    page.get_by_label("Language").select_option("de")
    page.get_by_role("button", name="Change").click()
    expect(page.get_by_role("link", name="Anfrage stellen")).to_be_visible()
