"""The Backups page in a real browser: an officer starts a backup and verifies it; an
auditor sees the catalogue and can start or check nothing."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from operations.models import Backup, BackupCheck
from tests.e2e.conftest import login

pytestmark = pytest.mark.browser


def test_officer_starts_a_backup_then_verifies_it(page, officer, postgres, settings, tmp_path):
    """Start (tier chosen on the page) → a message, the file on disk and a row in the list,
    never verified → the Verify action → the row says ok, and the check is recorded."""
    settings.BACKUP_DIR = tmp_path / "backups"
    login(page, "officer", "officer-pass")
    page.goto("/admin/operations/backup/")
    expect(page.locator("#result_list")).to_have_count(0)  # nothing yet

    page.get_by_label("Tier").select_option("weekly")
    page.get_by_role("button", name="Start a backup").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Started a weekly backup")
    backup = Backup.objects.get()
    assert backup.tier == "weekly" and backup.created_by == "officer"
    assert (tmp_path / "backups" / backup.file).is_file()

    page.goto("/admin/operations/backup/")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(backup.file)
    expect(row.locator(".field-checksum")).to_have_text("never verified")
    row.locator("input.action-select").check()
    page.locator("select[name=action]").select_option("verify_selected")
    page.locator("button[name=index]").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Queued 1 verification(s)")
    expect(row.locator(".field-checksum")).to_contain_text("ok, ")
    check = BackupCheck.objects.get(backup=backup)
    assert check.ok and check.kind == BackupCheck.Kind.VERIFY and check.actor_label == "officer"


def test_auditor_sees_backups_and_can_start_or_check_none(page, auditor):
    """The auditor reads the catalogue and a backup's manifest; there is no start button, no
    action to run, and a hand-made start request is refused."""
    Backup.objects.create(
        file="20260101T000000Z-daily.dump",
        tier="daily",
        vendor="postgresql",
        created_at=timezone.now(),
        size=2048,
        sha256="0" * 64,
        manifest={"tables": {"shop_customer": 3}},
        created_by="system",
    )
    login(page, "auditor", "auditor-pass")
    page.goto("/admin/operations/backup/")
    row = page.locator("#result_list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("20260101T000000Z-daily.dump")
    expect(page.get_by_role("button", name="Start a backup")).to_have_count(0)
    expect(page.locator("select[name=action]")).to_have_count(0)
    expect(row.locator("input.action-select")).to_have_count(0)

    row.get_by_role("link", name="20260101T000000Z-daily.dump").click()
    expect(page.locator(".field-tables_text")).to_contain_text("shop_customer")
    expect(page.locator("input[type=submit]")).to_have_count(0)

    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    refused = page.request.post(
        "/admin/operations/backup/start/", form={"csrfmiddlewaretoken": csrf, "tier": "daily"}
    )
    assert refused.status == 403
    assert Backup.objects.count() == 1
