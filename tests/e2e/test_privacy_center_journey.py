"""The whole privacy-center journey in a real browser, with a real SMTP server: a person asks
for a copy of their data and confirms with the emailed code; an officer runs the export and
releases it; the person proves their email again and downloads a ZIP that holds their data
and no one else's."""

import json
import re
import zipfile

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from compliance.models import SubjectExport, SubjectRequest
from shop.models import Customer
from tests.e2e.conftest import TIMEOUT_MS, login
from versions.models import LedgerAction, LedgerEntry

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _plain(inbox, index=-1) -> str:
    return inbox.messages[index].get_body(("plain",)).get_content()


def _code(inbox) -> str:
    return re.search(r"\b(\d{6})\b", _plain(inbox)).group(1)


def test_person_requests_confirms_receives_and_downloads_their_copy(
    browser, live_server, customer, officer, smtp_inbox, tmp_path
):
    """Request → code → status → officer exports and releases → code again → ZIP of theirs."""
    other = Customer.objects.create(
        email="grace@example.net", full_name="Grace Hopper", phone="+1 202 555 0199"
    )
    person = browser.new_context(base_url=live_server.url, accept_downloads=True)
    person.set_default_timeout(TIMEOUT_MS)
    page = person.new_page()

    # The person starts an access request and confirms it with the code from the email.
    page.goto("/privacy/")
    page.get_by_role("link", name="Make a request").click()
    page.get_by_label("Your email address").fill("ada@example.org")
    page.get_by_label("What would you like us to do?").select_option("access")
    page.get_by_label("Where do you live?").select_option("gdpr")
    page.get_by_role("button", name="Send me a code").click()
    page.get_by_label("The 6-digit code from the email").fill(_code(smtp_inbox))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("Confirmed, waiting to be handled")).to_be_visible()
    status_url = page.url
    request = SubjectRequest.objects.get()
    assert request.subject == customer and request.channel == SubjectRequest.Channel.CENTER

    # An officer, in the admin, sees where it came from and how it was verified, runs the
    # export and releases it.
    staff = browser.new_context(base_url=live_server.url)
    staff.set_default_timeout(TIMEOUT_MS)
    admin = staff.new_page()
    login(admin, "officer", "officer-pass")
    admin.goto(reverse("admin:compliance_subjectrequest_change", args=[request.pk]))
    expect(admin.locator(".field-channel")).to_contain_text("Privacy center")
    expect(admin.locator(".field-verification_method")).to_contain_text("Code sent")
    expect(admin.locator(".field-verified_ip")).to_contain_text("127.0.0.1")
    admin.locator("a.request-tool", has_text="Run export").click()
    admin.locator("input[type=submit][value='Run export']").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("queued")
    assert SubjectExport.objects.get().status == SubjectExport.Status.DONE
    admin.goto(reverse("admin:compliance_subjectrequest_changelist") + "?delivery=awaiting_release")
    admin.locator("#result_list a", has_text=f"Request #{request.pk}").click()
    admin.locator("a.request-transition", has_text="Release the copy").click()
    admin.locator("input[type=submit][value='Release the copy']").click()
    expect(admin.locator(".messagelist .success")).to_contain_text("released")
    expect(admin.locator(".field-delivery")).to_contain_text("Export #")

    # The person's status page says the copy is ready; the email holds the link.
    page.goto(status_url)
    expect(page.get_by_text("Ready: use the link in the email we sent you.")).to_be_visible()
    ready = _plain(smtp_inbox)
    assert "ada" not in smtp_inbox.messages[-1]["Subject"].lower()
    link = re.search(r"https?://\S+/privacy/download/[\w-]+/", ready).group(0)
    page.goto(link)
    expect(page.get_by_role("heading", name="Download your copy")).to_be_visible()

    # Proving the email again: a fresh code, then the download.
    page.get_by_role("button", name="Email me a code").click()
    page.get_by_label("Code from the email").fill(_code(smtp_inbox))
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download").click()
    path = tmp_path / "copy.zip"
    download_info.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        customers = json.loads(archive.read("shop.customer.json"))
        everything = b"".join(archive.read(name) for name in archive.namelist())
    assert manifest["subject"]["pk"] == customer.pk
    assert [row["email"] for row in customers] == ["ada@example.org"]
    assert b"Ada Lovelace" in everything
    for theirs in (other.email, other.full_name, other.phone):
        assert str(theirs).encode() not in everything

    # The request completed on the first download, and says so, to both sides.
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.COMPLETED
    assert request.outcome == SubjectRequest.Outcome.DOWNLOADED
    page.goto(status_url)
    expect(page.get_by_text("Downloaded", exact=True)).to_be_visible()
    admin.goto(reverse("admin:compliance_subjectrequest_change", args=[request.pk]))
    expect(admin.locator(".field-outcome")).to_contain_text("Downloaded")
    download = LedgerEntry.objects.filter(action=LedgerAction.EXPORT_DOWNLOAD).get()
    assert download.details["by"] == "subject" and download.actor is None
    person.close()
    staff.close()
