"""Retention through a real browser: an officer sets up a policy, previews and runs it, reads
the run log, soft-deletes a customer and restores it; the auditor reads and changes nothing."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from retention.models import PurgeRun, RetentionPolicy
from shop.models import Customer, Session
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser


@pytest.fixture
def old_sessions(customer):
    when = timezone.now() - timedelta(days=200)
    return [
        Session.objects.create(customer=customer, created_at=when, expires_at=when)
        for _ in range(3)
    ]


def _run_action(page, label):
    page.locator("select[name=action]").select_option(label=label)
    page.locator("button[name=index]").click()


def test_officer_creates_previews_and_runs_a_policy(page, officer, old_sessions):
    """Create → preview (nothing changes) → run now → the run log shows what went."""
    login(page, "officer", "officer-pass")
    page.goto("/admin/retention/retentionpolicy/add/")
    page.locator("#id_name").fill("Sessions after 90 days")
    page.locator("#id_target").select_option(label="Sessions (shop.Session)")
    page.locator("#id_basis_field").fill("created_at")
    page.locator("#id_period_days").fill("90")
    page.locator("#id_action").select_option("hard_delete")
    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("was added successfully")

    page.locator("#result_list input.action-select").first.check()
    _run_action(page, "Preview purge of selected policies")
    expect(page.locator("h1")).to_have_text("Purge preview")
    expect(page.locator("#content tbody tr").first).to_contain_text("Sessions after 90 days")
    expect(page.locator("#content tbody tr td").nth(2)).to_have_text("3")
    assert Session.objects.count() == 3

    page.goto("/admin/retention/retentionpolicy/")
    page.locator("#result_list input.action-select").first.check()
    _run_action(page, "Run selected policies now")
    expect(page.locator(".messagelist .success")).to_contain_text("Queued 1 purge(s)")

    page.goto("/admin/retention/purgerun/?status__exact=succeeded")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("Sessions after 90 days")
    expect(row).to_contain_text("Succeeded")
    run = PurgeRun.objects.get(status="succeeded")
    assert run.purged == 3 and not Session.objects.exists()


def test_officer_soft_deletes_a_customer_and_restores_it(page, officer, customer):
    """Delete hides the customer; the Deleted filter finds it; Restore brings it back."""
    login(page, "officer", "officer-pass")
    page.goto(f"/admin/shop/customer/{customer.pk}/delete/")
    page.locator("input[type=submit]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("deleted successfully")
    expect(page.locator("#changelist")).not_to_contain_text("Ada Lovelace")
    assert Customer.deleted_objects.filter(pk=customer.pk).exists()

    page.get_by_role("link", name="Deleted", exact=True).click()
    expect(page.locator("#result_list")).to_contain_text("Ada Lovelace")
    expect(page.locator(".deleted-marker")).to_have_count(1)
    page.locator("#result_list input.action-select").first.check()
    _run_action(page, "Restore selected customers")
    expect(page.locator("h1")).to_contain_text("Restore: are you sure?")
    page.locator("#id_reason").fill("deleted by mistake")
    page.locator("input[type=submit]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Restored 1 row(s)")
    assert Customer.objects.filter(pk=customer.pk).exists()
    assert customer.history.latest("history_id").history_change_reason == "deleted by mistake"


def test_auditor_reads_policies_and_runs_and_changes_nothing(page, auditor, old_sessions):
    """The auditor opens the run log and a policy read-only; no add, no actions, no save."""
    from django.contrib.contenttypes.models import ContentType

    from retention.services import policy_purge

    policy = RetentionPolicy.objects.create(
        name="Sessions", target=ContentType.objects.get_for_model(Session), period_days=90
    )
    policy_purge(policy=policy, actor=None)
    login(page, "auditor", "auditor-pass")

    page.goto("/admin/retention/purgerun/")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("select[name=action]")).to_have_count(0)

    page.goto("/admin/retention/retentionpolicy/")
    expect(page.locator("a.addlink")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)
    page.goto(f"/admin/retention/retentionpolicy/{policy.pk}/change/")
    expect(page.locator("h1")).to_have_text(re.compile("View retention policy"))
    expect(page.locator("input[name=_save]")).to_have_count(0)
    assert page.goto("/admin/retention/retentionpolicy/add/").status == 403
