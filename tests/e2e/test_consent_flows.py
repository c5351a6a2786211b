"""Consents in the browser: an officer withdraws and grants again from a subject's timeline,
an auditor reads it and downloads the receipt without any button to change it."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import ConsentEvent, ConsentPurpose, ConsentState, ConsentText
from compliance.services import consent_record
from shop.models import Customer
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser

WIDTH = 1280
IP = "198.51.100.23"


@pytest.fixture
def consented(transactional_db):
    """A customer who granted marketing at sign-up."""
    subject = Customer.objects.create(email="grace@example.org", full_name="Grace Hopper")
    purpose = ConsentPurpose.objects.create(slug="marketing", name="Marketing emails")
    ConsentText.objects.create(
        purpose=purpose, version=1, text="Yes, email me offers.", published_at=_ago(30)
    )
    consent_record(
        subject=subject,
        purpose=purpose,
        granted=True,
        ip=IP,
        user_agent="Mozilla/5.0 Browser-Test",
        collection_point="signup form",
        at=_ago(10),
    )
    return subject


def _ago(days):
    return timezone.now() - timedelta(days=days)


def _member(username, role):
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username=username, password=f"{username}-pass", is_staff=True)
    user.groups.add(Group.objects.get(name=role))


def _fits(page):
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{page.url} is {width} px wide"


def test_officer_withdraws_and_grants_again_from_the_timeline(page, consented):
    """Withdraw: one button and a confirmation; then Grant the same way. The timeline shows
    all three events and the grant is still there."""
    _member("officer", "Privacy officer")
    page.set_viewport_size({"width": WIDTH, "height": 800})
    login(page, "officer", "officer-pass")
    page.goto(f"/admin/compliance/consentevent/subject/{consented.pk}/timeline/")
    _fits(page)
    page.locator("input[name=withdraw-marketing]").click()
    expect(page.locator("h1")).to_contain_text("Withdraw consent: are you sure?")
    page.locator("#id_collection_point").fill("support call")
    page.locator("input[type=submit][value^=Yes]").click()
    expect(page.locator(".messagelist")).to_contain_text("Recorded 1 consent(s) as withdrawn")
    expect(page.locator("tr.consent-event")).to_have_count(2)
    page.locator("input[name=grant-marketing]").click()
    page.locator("input[type=submit][value^=Yes]").click()
    expect(page.locator("tr.consent-event")).to_have_count(3)
    expect(page.locator("#consent-states")).to_contain_text("granted")
    assert list(ConsentEvent.objects.order_by("pk").values_list("granted", flat=True)) == [
        True,
        False,
        True,
    ]
    state = ConsentState.objects.get()
    assert state.granted and state.revoked_at is not None


def test_auditor_reads_the_timeline_and_downloads_the_receipt(page, consented):
    """No Grant or Withdraw button; the receipt downloads as JSON with the event's hash."""
    _member("auditor", "Auditor")
    page.set_viewport_size({"width": WIDTH, "height": 800})
    login(page, "auditor", "auditor-pass")
    page.goto(f"/admin/compliance/consentevent/subject/{consented.pk}/timeline/")
    expect(page.locator("tr.consent-event")).to_have_count(1)
    expect(page.locator("tr.consent-event")).to_contain_text(IP)
    assert page.locator("input[value=Withdraw], input[value=Grant]").count() == 0
    with page.expect_download() as download:
        page.locator("#consent-receipt").click()
    receipt = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    text = ConsentText.objects.get()
    assert [(e["action"], e["text_sha256"]) for e in receipt["events"]] == [
        ("granted", text.sha256)
    ]
    for url in ("/admin/compliance/consentstate/", "/admin/compliance/consentevent/"):
        page.goto(url)
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        assert page.locator("select[name=action]").count() == 0
        _fits(page)
