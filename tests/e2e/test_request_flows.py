"""A data-subject request end to end in a real browser: the officer records it, verifies the
requester's identity, runs the export and downloads the ZIP, then previews and runs the
erasure; the auditor opens the certificate and finds nothing to press."""

import json
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import ErasureCertificate, SubjectExport, SubjectRequest
from shop.models import Customer, Session
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser


def test_officer_handles_a_request_from_receipt_to_erasure(
    browser, live_server, officer, auditor, customer, settings, tmp_path
):
    """Record → verify → export → download → erasure preview → erase → certificate."""
    settings.COMPLIANCE_EXPORT_DIR = tmp_path / "exports"
    soon = timezone.now() + timedelta(days=1)
    Session.objects.create(customer=customer, ip_address="203.0.113.9", expires_at=soon)
    context = browser.new_context(base_url=live_server.url, accept_downloads=True)
    page = context.new_page()
    login(page, "officer", "officer-pass")

    # Record the request.
    page.goto(reverse("admin:compliance_subjectrequest_add"))
    page.locator("#id_kind").select_option("access")
    page.locator("#id_subject").fill(str(customer.pk))
    page.locator("#id_jurisdiction").select_option("gdpr")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    request = SubjectRequest.objects.get()
    page.goto(reverse("admin:compliance_subjectrequest_change", args=[request.pk]))

    # Verify the requester's identity.
    page.locator("a.request-transition", has_text="Verify").click()
    page.locator("input[name=method][value=email]").check()
    page.locator("#id_note").fill("Replied from the address on record")
    page.locator("input[type=submit].default").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.VERIFIED
    assert request.verified_by == officer

    # Run the export from the request's page, then download the ZIP.
    page.locator("a.request-tool", has_text="Run export").click()
    page.locator("#id_reason").fill(f"Access request #{request.pk}")
    page.locator("input[type=submit][value='Run export']").click()
    export = SubjectExport.objects.get()
    assert export.status == SubjectExport.Status.DONE
    request.refresh_from_db()
    assert request.state == SubjectRequest.State.IN_PROGRESS  # awaiting delivery
    # The link opens a confirmation page (a GET writes nothing); its button downloads.
    page.locator("a", has_text="Download ZIP").first.click()
    expect(page.locator("#content form[method=post]")).to_be_visible()
    with page.expect_download() as download_info:
        page.locator("input[type=submit][value='Download ZIP']").click()
    path = tmp_path / "download.zip"
    download_info.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        sessions = json.loads(archive.read("shop.session.json"))
    assert manifest["files"] and sessions[0]["ip_address"] == "203.0.113.9"

    # Preview the erasure from the subject's overview, then run it.
    page.goto(reverse("admin:compliance_subject_overview", args=[customer.pk]))
    page.locator(".subject-tools a", has_text="Preview erasure").click()
    expect(page.locator("#erasure-plan")).to_contain_text("Sessions")
    page.locator("#id_reason").fill(f"Erasure after request #{request.pk}")
    page.locator("input[type=submit][value=Erase]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Erased:")
    certificate = ErasureCertificate.objects.get()
    assert Customer.objects.get(pk=customer.pk).full_name == "[redacted]"
    assert not Session.objects.exists()
    context.close()

    # The auditor reads the certificate and the request; nothing to press.
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    login(page, "auditor", "auditor-pass")
    page.goto(reverse("admin:compliance_erasurecertificate_change", args=[certificate.pk]))
    expect(page.locator("#content")).to_contain_text(f"Erasure after request #{request.pk}")
    expect(page.locator("#content input[type=submit]")).to_have_count(0)
    expect(page.locator("#content .deletelink")).to_have_count(0)
    page.goto(reverse("admin:compliance_subjectrequest_change", args=[request.pk]))
    expect(page.locator("a.request-transition")).to_have_count(0)
    expect(page.locator("a.request-tool", has_text="Run export")).to_have_count(0)
    context.close()
