"""The Content-Security-Policy holds in a real browser: every admin page and every page of
the project works under it with no violation reported, and an injected inline script is
refused."""

import pytest
from django.contrib import admin
from django.test import override_settings
from django.urls import reverse

from shop.demo import demo_seed
from shop.models import Customer
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser

CSP_MARKERS = ("Content Security Policy", "Content-Security-Policy")


@pytest.fixture
def demo_data(transactional_db, admin_user):
    with override_settings(DEMO=True):
        demo_seed(customers=3, actor=None, reason="csp")


@pytest.fixture
def violations(page):
    """Every console message about the policy, as the page reports it."""
    found = []
    page.on(
        "console",
        lambda message: (
            found.append(f"{page.url}: {message.text}")
            if any(marker in message.text for marker in CSP_MARKERS)
            else None
        ),
    )
    return found


def _pages() -> list[str]:
    """Every list, add page, first change page and its history, and the project's pages."""
    urls = [reverse("admin:index")]
    for model, _model_admin in sorted(admin.site._registry.items(), key=lambda i: i[0]._meta.label):
        opts = model._meta
        name = f"admin:{opts.app_label}_{opts.model_name}"
        urls += [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
        row = model._default_manager.order_by("pk").first()
        if row is not None:
            urls += [
                reverse(f"{name}_change", args=[row.pk]),
                reverse(f"{name}_history", args=[row.pk]),
            ]
    subject = Customer.objects.order_by("pk").first()
    urls += [
        reverse("admin:compliance_inventory"),
        reverse("admin:compliance_subject_search"),
        reverse("admin:compliance_subject_overview", args=[subject.pk]),
        reverse("admin:compliance_subject_restrict", args=[subject.pk]),
        reverse("admin:compliance_consent_timeline", args=[subject.pk]),
        reverse("admin:compliance_subject_export", args=[subject.pk]),
        reverse("admin:compliance_subject_erasure", args=[subject.pk]),
        reverse("admin:versions_changes"),
        "/admin/no-such-page/",  # the 404 page
        "/admin/shop/customer/?created_at__year=99999",  # the 400 page
    ]
    return urls


def test_every_admin_and_project_page_works_under_the_policy(page, demo_data, violations):
    """Each page loads its scripts and styles with no violation reported in the console."""
    login(page, "admin", "password")
    for url in _pages():
        page.goto(url)
        page.wait_for_load_state("load")
    # The pages' own scripts ran: the action bar of a list counts the selection.
    page.goto(reverse("admin:shop_customer_changelist"))
    page.locator("#action-toggle").check()
    assert "selected" in page.locator(".action-counter").inner_text()
    assert violations == []


def test_an_injected_inline_script_is_refused(page, demo_data, violations):
    """A script element written into a page does not run, and the browser says why."""
    login(page, "admin", "password")
    page.goto(reverse("admin:index"))
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.head.appendChild(script);
        }"""
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.injected === undefined")
    assert violations, "the refusal is reported in the console"
