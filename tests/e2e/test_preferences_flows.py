"""Consent preferences in the browser: a person whose browser sends Global Privacy Control
sees the honoured notice, and withdraws a purpose with the keyboard alone."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import (
    AccessLink,
    ConsentEvent,
    ConsentPurpose,
    ConsentState,
    ConsentText,
    SubjectRequest,
)
from compliance.services import GPC, PRIVACY_CENTER, consent_record, request_create
from compliance.services.links import access_link_create
from shop.models import Customer

pytestmark = pytest.mark.browser


def _purpose(slug, name, wording, *, sale=False):
    purpose = ConsentPurpose.objects.create(slug=slug, name=name, sale_or_sharing=sale)
    ConsentText.objects.create(
        purpose=purpose, version=1, text=wording, published_at=timezone.now() - timedelta(days=5)
    )
    return purpose


@pytest.fixture
def person(transactional_db):
    """A customer who granted marketing and sharing with partners at sign-up."""
    subject = Customer.objects.create(email="grace@example.org", full_name="Grace Hopper")
    for purpose in (
        _purpose("marketing", "Marketing emails", "Yes, email me offers."),
        _purpose("partners", "Sharing with partners", "Share my data.", sale=True),
    ):
        consent_record(
            subject=subject,
            purpose=purpose,
            granted=True,
            collection_point="signup form",
            at=timezone.now() - timedelta(days=2),
        )
    return subject


def _preferences_link(subject) -> str:
    """The path of a live consent-preferences link for `subject`."""
    request = request_create(
        subject=subject, kind=SubjectRequest.Kind.ACCESS, jurisdiction="gdpr", actor=None
    )
    _link, token = access_link_create(request=request, purpose=AccessLink.Purpose.PREFERENCES)
    return f"/privacy/preferences/{token}/"


@pytest.mark.parametrize("width", [375, 1280])
def test_gpc_notice_and_keyboard_withdrawal(browser, live_server, person, width):
    """With Sec-GPC: 1 the page says the signal is honoured and sharing is already withdrawn;
    Tab to "Withdraw: Marketing emails" and Enter withdraws it through the privacy center."""
    context = browser.new_context(
        base_url=live_server.url,
        extra_http_headers={"Sec-GPC": "1"},
        viewport={"width": width, "height": 800},
    )
    try:
        page = context.new_page()
        page.goto(_preferences_link(person))
        assert page.url.endswith("/privacy/preferences/")  # the token left the address bar
        expect(page.locator(".gpc")).to_have_text("Opt-out preference signal honoured")
        expect(page.locator("#state-partners")).to_have_text("You do not consent.")
        assert page.evaluate("document.documentElement.scrollWidth") <= width

        target = page.get_by_role("button", name="Withdraw: Marketing emails")
        for _ in range(30):
            page.keyboard.press("Tab")
            if target.evaluate("b => b === document.activeElement"):
                break
        else:
            pytest.fail("the withdraw button is not reachable with the keyboard")
        page.keyboard.press("Enter")
        expect(page.locator(".messages")).to_contain_text(
            "You no longer consent to “Marketing emails”."
        )
        expect(page.locator("#state-marketing")).to_have_text("You do not consent.")
    finally:
        context.close()
    state = ConsentState.objects.get(subject=person, purpose__slug="marketing")
    assert state.granted is False
    latest = ConsentEvent.objects.filter(subject=person, purpose__slug="marketing").last()
    assert (latest.collection_point, latest.text.version) == (PRIVACY_CENTER, 1)
    assert ConsentEvent.objects.filter(collection_point=GPC).count() == 1
