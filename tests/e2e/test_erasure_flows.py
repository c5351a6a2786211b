"""Erasure through a real browser: an officer previews and erases a customer and lands on
the certificate; the auditor opens the certificate and finds nothing to press."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from compliance.models import ErasureCertificate
from shop.models import Customer, Session
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser


def test_officer_previews_and_erases_then_auditor_reads_the_certificate(
    browser, live_server, officer, auditor, customer
):
    """Preview → reason → erase → certificate; the auditor sees it read-only."""
    soon = timezone.now() + timedelta(days=1)
    Session.objects.create(customer=customer, ip_address="203.0.113.8", expires_at=soon)
    url = reverse("admin:compliance_subject_erasure", args=[customer.pk])

    officer_context = browser.new_context(base_url=live_server.url)
    page = officer_context.new_page()
    login(page, "officer", "officer-pass")
    page.goto(url)
    plan = page.locator("#erasure-plan")
    expect(plan).to_contain_text("Sessions")
    expect(plan).to_contain_text("Delete the rows")
    page.locator("#id_reason").fill("Erasure request R-1")
    page.locator("input[type=submit][value=Erase]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Erased:")
    certificate = ErasureCertificate.objects.get()
    assert page.url.endswith(
        reverse("admin:compliance_erasurecertificate_change", args=[certificate.pk])
    )
    expect(page.locator("#content")).to_contain_text("shop.Session")
    assert Customer.objects.get(pk=customer.pk).full_name == "[redacted]"
    page.goto(url)
    expect(page.locator("#content")).to_contain_text("Nothing left to erase")
    officer_context.close()

    auditor_context = browser.new_context(base_url=live_server.url)
    page = auditor_context.new_page()
    login(page, "auditor", "auditor-pass")
    page.goto(reverse("admin:compliance_erasurecertificate_change", args=[certificate.pk]))
    expect(page.locator("#content")).to_contain_text("Erasure request R-1")
    expect(page.locator("#content input[type=submit]")).to_have_count(0)
    expect(page.locator("#content .deletelink")).to_have_count(0)
    page.goto(url)
    expect(page.locator("#content input[type=submit]")).to_have_count(0)
    auditor_context.close()
