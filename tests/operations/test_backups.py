"""Backups: create (file, manifest, counts, ledger), verify and drill, tiered cleanup with
legal holds, the admin page, the tasks and the commands."""

import json
import shutil
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from operations.backups import (
    CHECKSUM_MISMATCH,
    MANIFEST_FORMAT,
    BackupError,
    backup_create,
    backup_verify,
    backups_cleanup,
    manifest_path,
    manifest_read,
    tool_summary,
)
from operations.models import Backup, BackupCheck
from operations.tasks import backup_drill_latest_task, backups_cleanup_task
from retention.models import LegalHold
from retention.services import hold_place
from shop.models import Customer
from versions.files import file_sha256
from versions.models import LedgerAction, LedgerEntry

MANIFEST_KEYS = {
    "format",
    "file",
    "vendor",
    "database",
    "server_version",
    "dump_tool",
    "migrations",
    "sha256",
    "size",
    "tables",
    "tier",
    "created_at",
}


@pytest.fixture
def backup_dir(settings, tmp_path):
    settings.BACKUP_DIR = tmp_path / "backups"
    return settings.BACKUP_DIR


@pytest.fixture
def rows(transactional_db):
    """A few committed customers, so that pg_dump (another connection) sees them."""
    for number in range(3):
        Customer.objects.create(email=f"backup{number}@example.org", full_name=f"Backup {number}")


def _live_counts() -> dict[str, int]:
    tables = connection.introspection.table_names()
    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_backup_writes_file_manifest_counts_and_ledger_entry(backup_dir, rows):
    """The file and its manifest land in BACKUP_DIR, the sha256 and per-table counts match
    the database, and the Backup row and ledger entry record it without personal data."""
    backup = backup_create(tier="weekly", actor=None, reason="test")
    path = backup_dir / backup.file
    suffix = ".dump" if connection.vendor == "postgresql" else ".sqlite3"
    assert path.is_file() and path.name.endswith(f"-weekly{suffix}")
    manifest = manifest_read(path)
    assert set(manifest) == MANIFEST_KEYS
    assert manifest["format"] == MANIFEST_FORMAT and manifest["vendor"] == connection.vendor
    assert manifest["sha256"] == file_sha256(path) == backup.sha256
    assert manifest["size"] == path.stat().st_size == backup.size
    written_after = {"versions_backup", "versions_ledgerentry", "versions_ledgercheckpoint"}
    live = {t: n for t, n in _live_counts().items() if t not in written_after}
    assert {t: n for t, n in manifest["tables"].items() if t not in written_after} == live
    assert manifest["tables"]["shop_customer"] == 3
    assert "0006_backups" in manifest["migrations"]["versions"]
    assert manifest["tier"] == "weekly" and backup.manifest == manifest
    entry = LedgerEntry.objects.get(action=LedgerAction.BACKUP)
    assert entry.details == {"file": backup.file, "sha256": backup.sha256, "tier": "weekly"}
    assert entry.counts["tables"] == len(manifest["tables"])
    assert entry.counts["rows"] == sum(manifest["tables"].values())
    assert sorted(p.name for p in backup_dir.iterdir()) == [path.name, f"{path.name}.manifest.json"]


def test_backup_counts_describe_the_dump_not_later_writes(backup_dir, rows):
    """The counts are those of the backup: the catalogue row and ledger entry written after
    it are not in them."""
    backup = backup_create(tier="daily", actor=None, reason="")
    assert backup.manifest["tables"]["versions_backup"] == 0
    assert backup.manifest["tables"]["versions_ledgerentry"] == 0
    assert Backup.objects.count() == 1


def test_two_backups_in_one_second_get_two_names(backup_dir, rows):
    """A second backup of the same tier and second gets its own name."""
    first = backup_create(tier="daily", actor=None, reason="")
    second = backup_create(tier="daily", actor=None, reason="")
    assert first.file != second.file
    assert (backup_dir / first.file).is_file() and (backup_dir / second.file).is_file()


def test_backup_failure_leaves_no_file(backup_dir, rows, postgres, monkeypatch):
    """A wrong database name is a BackupError, and no file or temporary file is left."""
    monkeypatch.setitem(connection.settings_dict, "NAME", "no_such_database_for_backup")
    with pytest.raises(BackupError, match="no_such_database_for_backup"):
        backup_create(tier="daily", actor=None, reason="")
    assert list(backup_dir.iterdir()) == []
    assert not Backup.objects.exists()


def test_backup_without_pg_dump_says_what_to_install(backup_dir, rows, postgres, monkeypatch):
    """Without pg_dump on PATH the error says to install the client tools; nothing is left."""
    monkeypatch.setenv("PATH", str(backup_dir.parent))
    with pytest.raises(BackupError, match="pg_dump is not installed"):
        backup_create(tier="daily", actor=None, reason="")
    assert list(backup_dir.iterdir()) == []


def test_backup_refuses_an_unknown_tier_and_an_auditor(backup_dir, db, auditor):
    """An unknown tier and an actor without run_backup are refused before anything runs;
    on SQLite, so is a backup inside a transaction that writes (it would wait forever)."""
    with pytest.raises(BackupError, match="Unknown tier"):
        backup_create(tier="hourly", actor=None, reason="")
    with pytest.raises(PermissionDenied):
        backup_create(tier="daily", actor=auditor, reason="")
    if connection.vendor == "sqlite":
        with pytest.raises(BackupError, match="inside a transaction"):
            backup_create(tier="daily", actor=None, reason="")
    assert not backup_dir.exists() or list(backup_dir.iterdir()) == []


def test_verify_passes_on_a_good_backup(backup_dir, rows):
    """A fresh backup verifies: checksum and listing, recorded as a passed check with its
    reason, and in the ledger."""
    backup = backup_create(tier="daily", actor=None, reason="")
    check = backup_verify(path=backup_dir / backup.file, actor=None, reason="monthly check")
    assert check.ok, check.detail
    assert check.backup == backup and check.kind == BackupCheck.Kind.VERIFY
    assert check.reason == "monthly check"
    entry = LedgerEntry.objects.get(action=LedgerAction.BACKUP_CHECK)
    assert entry.target == f"versions.backupcheck:{check.pk}" and entry.reason == "monthly check"
    assert entry.details == {
        "file": backup.file,
        "kind": "verify",
        "ok": True,
        "problems": 0,
    }
    if connection.vendor == "postgresql":
        assert check.facts["entries"] == len(backup.manifest["tables"])


def test_flipped_byte_makes_verify_refuse(backup_dir, rows):
    """One changed byte: verification fails with the checksum message, recorded on the
    backup, and the command exits with it."""
    backup = backup_create(tier="daily", actor=None, reason="")
    path = backup_dir / backup.file
    _flip_byte(path)
    check = backup_verify(path=path, actor=None)
    assert not check.ok and check.detail == CHECKSUM_MISMATCH
    assert BackupCheck.objects.get(backup=backup).ok is False
    entry = LedgerEntry.objects.get(action=LedgerAction.BACKUP_CHECK)
    assert entry.details == {"file": backup.file, "kind": "verify", "ok": False, "problems": 1}
    with pytest.raises(CommandError, match="checksum mismatch: the file changed"):
        call_command("verify_backup", str(path), stdout=StringIO(), stderr=StringIO())
    with pytest.raises(CommandError, match="do not restore it"):
        call_command("verify_backup", latest=True, drill=True, stdout=StringIO(), stderr=StringIO())


def test_drill_restores_and_matches_counts(backup_dir, rows):
    """A drill restores into a scratch database whose counts match the manifest; on
    PostgreSQL the scratch database is dropped afterwards."""
    backup = backup_create(tier="daily", actor=None, reason="")
    out = StringIO()
    call_command("verify_backup", backup.file, drill=True, stdout=out, stderr=StringIO())
    assert "every count matches" in out.getvalue()
    check = BackupCheck.objects.get(backup=backup)
    assert check.ok and check.kind == BackupCheck.Kind.DRILL
    assert check.facts["tables"] == len(backup.manifest["tables"])
    assert check.facts["rows"] == sum(backup.manifest["tables"].values())
    entry = LedgerEntry.objects.get(action=LedgerAction.BACKUP_CHECK)
    assert entry.details["kind"] == "drill" and entry.counts == {
        "tables": check.facts["tables"],
        "rows": check.facts["rows"],
    }
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_database WHERE datname LIKE '%%_drill_%%'")
            assert cursor.fetchone()[0] == 0


def test_drill_reports_a_count_that_differs_from_the_manifest(backup_dir, rows):
    """A manifest whose count of a table is wrong makes the drill fail, naming the table."""
    backup = backup_create(tier="daily", actor=None, reason="")
    path = backup_dir / backup.file
    manifest = manifest_read(path)
    manifest["tables"]["shop_customer"] = 4
    manifest_path(path).write_text(json.dumps(manifest))
    check = backup_verify(path=path, drill=True, actor=None)
    assert not check.ok
    assert "shop_customer (manifest 4, restored 3)" in check.detail
    assert check.facts["differences"] == {"shop_customer": {"manifest": 4, "restored": 3}}


# What pg_restore printed for a dump whose customer row breaks a check constraint.
PG_RESTORE_QUOTING_A_ROW = """\
pg_restore: error: COPY failed for table "shop_customer": ERROR:  new row for relation \
"shop_customer" violates check constraint "no_example_org"
DETAIL:  Failing row contains (1, ada@example.org, Ada Lovelace, +44 20 7946 0001).
CONTEXT:  COPY shop_customer, line 1: "1\tada@example.org\tAda Lovelace\t+44 20 7946 0001"
pg_restore: error: could not execute query: ERROR:  invalid input syntax for type integer: \
"ada@example.org"
Command was: INSERT INTO public.shop_customer VALUES (1, 'ada@example.org', 'Ada Lovelace');
pg_restore: error: could not execute query: ERROR:  duplicate key value violates unique \
constraint "shop_customer_email_live_unique" Key (email)=(ada@example.org) already exists.
pg_restore: warning: errors ignored on restore: 3
"""


def test_tool_summary_keeps_the_error_class_and_no_row():
    """Of a failing tool's output only the error lines stay, with their table and
    constraint names, and without any quoted value, key value or row."""
    summary = tool_summary(PG_RESTORE_QUOTING_A_ROW)
    for personal in ("ada@", "Ada", "7946", "Failing row", "COPY shop_customer, line"):
        assert personal not in summary
    assert 'COPY failed for table "shop_customer"' in summary
    assert 'violates check constraint "…"' in summary  # a name this application lacks
    assert 'invalid input syntax for type integer: "…"' in summary
    assert 'unique constraint "shop_customer_email_live_unique" Key (email)=(…)' in summary
    assert "and 1 more error line(s)" in summary
    assert tool_summary("pg_restore: creating TABLE x") == (
        "no error line (the tool's other output is not kept)"
    )


def test_failed_drill_keeps_no_row_of_the_backup_in_its_check(postgres, backup_dir, rows):
    """A real pg_restore failure that quotes a customer's row (a check constraint the dump
    holds and its data breaks): the check keeps pg_restore's error class, not the row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE shop_customer ADD CONSTRAINT no_example_org "
            "CHECK (email NOT LIKE '%%@example.org') NOT VALID"
        )
        try:  # marked valid, pg_dump writes it into CREATE TABLE, before the rows
            cursor.execute(
                "UPDATE pg_constraint SET convalidated = true WHERE conname = 'no_example_org'"
            )
            backup = backup_create(tier="daily", actor=None, reason="")
        finally:
            cursor.execute("ALTER TABLE shop_customer DROP CONSTRAINT no_example_org")

    check = backup_verify(path=backup_dir / backup.file, drill=True, actor=None)

    assert not check.ok
    assert check.detail.startswith("drill: pg_restore failed (exit status 1): pg_restore: error:")
    assert 'COPY failed for table "shop_customer"' in check.detail
    assert "@example.org" not in check.detail and "Backup 0" not in check.detail
    assert "@example.org" not in json.dumps(check.facts)


def test_migration_cuts_the_detail_of_checks_written_before(db):
    """Checks recorded with a tool's whole output keep only its error class afterwards; a
    passed check and a failure in the check's own words are left as they were."""
    from importlib import import_module

    from django.db.migrations.loader import MigrationLoader

    name = "0010_replay_matches_check_details"
    migration = import_module(f"versions.migrations.{name}")
    apps = MigrationLoader(connection).project_state(("versions", name)).apps
    now = timezone.now()
    quoted, own, passed = (
        BackupCheck.objects.create(
            file="x.dump", kind="drill", ok=ok, detail=detail, checked_at=now, actor_label="system"
        )
        for ok, detail in [
            (False, f"drill: pg_restore failed (exit status 1): {PG_RESTORE_QUOTING_A_ROW}"),
            (False, CHECKSUM_MISMATCH),
            (True, "x.dump: sha256 matches (ada@example.org)"),
        ]
    )

    migration.checks_scrubbed(apps, None)

    quoted, own, passed = (BackupCheck.objects.get(pk=c.pk) for c in (quoted, own, passed))
    assert quoted.detail.startswith("drill: pg_restore failed (exit status 1): pg_restore: error:")
    assert "ada@" not in quoted.detail and "Failing row" not in quoted.detail
    assert own.detail == CHECKSUM_MISMATCH and "ada@" in passed.detail


def test_file_outside_the_catalogue_verifies_from_its_manifest(backup_dir, rows, tmp_path):
    """A backup copied elsewhere, with its manifest, verifies; its check names no backup."""
    backup = backup_create(tier="daily", actor=None, reason="")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(backup_dir / backup.file, elsewhere)
    shutil.copy(manifest_path(backup_dir / backup.file), elsewhere)
    check = backup_verify(path=elsewhere / backup.file, actor=None)
    assert check.ok and check.backup is None


def test_file_without_manifest_fails_verification(backup_dir, db, tmp_path):
    """A file without a manifest cannot be verified: a failed check says so."""
    stray = tmp_path / "stray.dump"
    stray.write_bytes(b"not a backup")
    check = backup_verify(path=stray, actor=None)
    assert not check.ok and "has no manifest" in check.detail


# Cleanup --------------------------------------------------------------------------------


def _catalogued(backup_dir, tier: str, days_ago: int) -> Backup:
    """A catalogued backup file of `tier`, made `days_ago` days ago (content irrelevant)."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    created = timezone.now() - timedelta(days=days_ago)
    name = f"{created:%Y%m%dT%H%M%SZ}-{tier}.dump"
    (backup_dir / name).write_bytes(b"x" * 10)
    manifest_path(backup_dir / name).write_text("{}")
    return Backup.objects.create(
        file=name,
        tier=tier,
        vendor="postgresql",
        created_at=created,
        size=10,
        sha256="0" * 64,
        created_by="system",
    )


@pytest.fixture
def catalogue(backup_dir, db, settings):
    """Four dailies and two weeklies; cleanup keeps two dailies and one weekly."""
    settings.BACKUP_KEEP_DAILY = 2
    settings.BACKUP_KEEP_WEEKLY = 1
    daily = [_catalogued(backup_dir, "daily", days) for days in (1, 2, 3, 4)]
    weekly = [_catalogued(backup_dir, "weekly", days) for days in (7, 14)]
    return {"daily": daily, "weekly": weekly}


def test_cleanup_dry_run_deletes_nothing(catalogue, backup_dir):
    """Without --apply the command lists what would go and deletes nothing."""
    out = StringIO()
    call_command("cleanup_backups", stdout=out)
    assert "Would delete" in out.getvalue() and "3 backup(s) would be deleted" in out.getvalue()
    assert len(list(backup_dir.iterdir())) == 12
    assert not Backup.objects.filter(deleted_at__isnull=False).exists()


def test_cleanup_keeps_the_newest_per_tier(catalogue, backup_dir):
    """--apply deletes the older files and manifests, marks their rows and writes a ledger
    entry for each; the newest of each tier stay."""
    call_command("cleanup_backups", apply=True, stdout=StringIO())
    kept = {b.file for b in (*catalogue["daily"][:2], *catalogue["weekly"][:1])}
    gone = {b.file for b in (*catalogue["daily"][2:], *catalogue["weekly"][1:])}
    on_disk = {p.name for p in backup_dir.iterdir()}
    assert on_disk == kept | {f"{name}.manifest.json" for name in kept}
    assert set(Backup.objects.filter(deleted_at__isnull=False).values_list("file", flat=True)) == (
        gone
    )
    entries = LedgerEntry.objects.filter(action=LedgerAction.BACKUP_CLEANUP)
    assert {e.details["file"] for e in entries} == gone


def test_held_backup_survives_apply(catalogue, backup_dir, officer):
    """A backup under a legal hold is kept by --apply and listed as held."""
    oldest = catalogue["daily"][-1]
    hold_place(
        record=oldest, reason="litigation", ground=LegalHold.Ground.LEGAL_CLAIMS, actor=officer
    )
    out = StringIO()
    call_command("cleanup_backups", apply=True, stdout=out)
    assert f"Held, kept: {oldest.file}" in out.getvalue()
    assert (backup_dir / oldest.file).is_file()
    oldest.refresh_from_db()
    assert oldest.deleted_at is None
    assert Backup.objects.filter(deleted_at__isnull=False).count() == 2


def test_cleanup_task_applies(catalogue):
    """The beat task applies the cleanup."""
    result = backups_cleanup_task()
    assert len(result["deleted"]) == 3 and result["kept"] == 3


def test_cleanup_refuses_an_auditor(catalogue, auditor):
    """Cleanup needs the run_backup permission."""
    with pytest.raises(PermissionDenied):
        backups_cleanup(actor=auditor, reason="", apply=True)


# Admin, tasks and commands ----------------------------------------------------------------


def test_officer_starts_a_backup(backup_dir, transactional_db, officer_client):
    """The button's POST queues the task (run in-process here): a backup is written."""
    response = officer_client.post(reverse("admin:operations_backup_start"), {"tier": "monthly"})
    assert response.status_code == 302
    backup = Backup.objects.get()
    assert backup.tier == "monthly" and backup.created_by == "officer"
    assert (backup_dir / backup.file).is_file()
    page = officer_client.get(reverse("admin:operations_backup_changelist"))
    assert b"Started a monthly backup" in page.content
    assert b"Start a backup" in page.content


def test_auditor_cannot_start_a_backup(backup_dir, auditor_client):
    """An auditor sees the list without the button; the POST is refused."""
    page = auditor_client.get(reverse("admin:operations_backup_changelist"))
    assert page.status_code == 200 and b"Start a backup" not in page.content
    response = auditor_client.post(reverse("admin:operations_backup_start"), {"tier": "daily"})
    assert response.status_code == 403
    assert not Backup.objects.exists()


def test_list_shows_checksum_drill_and_hold(catalogue, officer, auditor_client):
    """The list shows each backup's last verification, last drill and whether it is held."""
    verified, failed, _never, *_ = catalogue["daily"]
    now = timezone.now()
    for backup, ok, kind in [(verified, True, "drill"), (failed, False, "verify")]:
        BackupCheck.objects.create(
            backup=backup, file=backup.file, kind=kind, ok=ok, checked_at=now, actor_label="t"
        )
    hold_place(record=failed, reason="audit", ground=LegalHold.Ground.LEGAL_CLAIMS, actor=officer)
    page = auditor_client.get(reverse("admin:operations_backup_changelist")).content.decode()
    assert page.count("never verified") == 4
    assert "<strong>FAILED</strong>" in page and "ok, " in page
    assert page.count('alt="True"') == 1  # the held one


def test_officer_queues_a_drill_from_the_list(backup_dir, transactional_db, officer_client):
    """The Drill action queues a drill of the selected backup; its outcome is recorded."""
    officer_client.post(reverse("admin:operations_backup_start"), {"tier": "daily"})
    backup = Backup.objects.get()
    response = officer_client.post(
        reverse("admin:operations_backup_changelist"),
        {"action": "drill_selected", "_selected_action": [backup.pk]},
    )
    assert response.status_code == 302
    check = BackupCheck.objects.get(backup=backup)
    assert check.kind == "drill" and check.actor_label == "officer"


def test_list_filters_backups_on_disk_and_deleted_by_cleanup(
    backup_dir, transactional_db, officer_client
):
    """The file filter tells backups still on disk from those cleanup deleted."""
    kept = backup_create(tier="daily", actor=None)
    gone = backup_create(tier="daily", actor=None)
    Backup.objects.filter(pk=gone.pk).update(deleted_at=timezone.now(), deleted_by="system")
    url = reverse("admin:operations_backup_changelist")
    on_disk = officer_client.get(url, {"file": "on_disk"}).content.decode()
    deleted = officer_client.get(url, {"file": "deleted"}).content.decode()
    assert kept.file in on_disk and gone.file not in on_disk
    assert gone.file in deleted and kept.file not in deleted


def test_backup_rows_cannot_be_changed_in_the_admin(catalogue, officer_client):
    """Nobody adds, changes or deletes a backup row through the admin's forms."""
    backup = catalogue["daily"][0]
    assert officer_client.get(reverse("admin:operations_backup_add")).status_code == 403
    change = reverse("admin:operations_backup_change", args=[backup.pk])
    assert officer_client.post(change, {"tier": "monthly"}).status_code == 403
    delete = reverse("admin:operations_backup_delete", args=[backup.pk])
    assert officer_client.post(delete, {"post": "yes"}).status_code == 403
    assert officer_client.get(change).status_code == 200


def test_backup_command_prints_what_it_wrote(backup_dir, rows):
    """`backup --tier monthly` prints the file, its size and checksum."""
    out = StringIO()
    call_command("backup", tier="monthly", stdout=out, stderr=StringIO())
    backup = Backup.objects.get()
    assert f"Backup written: {backup_dir / backup.file}" in out.getvalue()
    assert backup.sha256 in out.getvalue()


def test_backup_command_failure_is_a_command_error(backup_dir, rows, postgres, monkeypatch):
    """A backup that cannot be made exits with the reason, not a traceback."""
    monkeypatch.setenv("PATH", str(backup_dir.parent))
    with pytest.raises(CommandError, match="pg_dump is not installed"):
        call_command("backup", stdout=StringIO(), stderr=StringIO())


def test_verify_command_needs_a_file_or_latest(backup_dir, db):
    """No argument, both, or an empty catalogue with --latest: a clear error."""
    with pytest.raises(CommandError, match="or --latest"):
        call_command("verify_backup", stdout=StringIO())
    with pytest.raises(CommandError, match="not both"):
        call_command("verify_backup", "x.dump", latest=True, stdout=StringIO())
    with pytest.raises(CommandError, match="holds no backup file"):
        call_command("verify_backup", latest=True, stdout=StringIO())


def test_drill_task_without_backups_logs_an_error(db, caplog):
    """The weekly drill with an empty catalogue logs an error and returns nothing."""
    assert backup_drill_latest_task() is None
    assert "no backup to drill" in caplog.text


def test_beat_schedules_backups_cleanup_and_drill():
    """Beat's backup entries name tasks the worker registers, with arguments they take, at
    their documented times: a backup every night (weekly on Sundays, monthly on the 1st),
    cleanup after the backups, a drill of the newest after the weekly one."""
    import inspect

    from project.celery import app

    app.loader.import_default_modules()  # what a worker imports before it runs anything
    schedule = django_settings.CELERY_BEAT_SCHEDULE
    expected = {  # entry: (task, args, hour, minute, days of the week, days of the month)
        "backup-daily": ("backup_create_task", ("daily",), 2, 30, range(7), range(1, 32)),
        "backup-weekly": ("backup_create_task", ("weekly",), 3, 0, [0], range(1, 32)),
        "backup-monthly": ("backup_create_task", ("monthly",), 3, 30, range(7), [1]),
        "backups-cleanup-daily": ("backups_cleanup_task", (), 4, 0, range(7), range(1, 32)),
        "backup-drill-weekly": ("backup_drill_latest_task", (), 4, 30, [0], range(1, 32)),
    }
    for name, (task, args, hour, minute, weekdays, monthdays) in expected.items():
        entry = schedule[name]
        assert entry["task"] == f"operations.tasks.{task}", name
        registered = app.tasks[entry["task"]]  # KeyError: the worker would not know it
        inspect.signature(registered.run).bind(*entry.get("args", ()))
        assert tuple(entry.get("args", ())) == args, name
        when = entry["schedule"]
        assert (when.hour, when.minute) == ({hour}, {minute}), name
        assert (when.day_of_week, when.day_of_month) == (set(weekdays), set(monthdays)), name
    # On a Sunday the 1st: every backup, then cleanup, then the drill.
    times = [(min(schedule[n]["schedule"].hour), min(schedule[n]["schedule"].minute))
             for n in expected]  # fmt: skip
    assert times == sorted(times)


def test_officer_places_a_hold_on_a_backup_in_the_admin(catalogue, officer_client):
    """The hold form offers backups as a kind of record; the hold keeps the backup."""
    from django.contrib.contenttypes.models import ContentType

    oldest = catalogue["daily"][-1]
    kind = ContentType.objects.get_for_model(Backup)
    form = officer_client.get(reverse("admin:retention_legalhold_add"))
    assert f'value="{kind.pk}"'.encode() in form.content
    response = officer_client.post(
        reverse("admin:retention_legalhold_add"),
        {
            "content_type": kind.pk,
            "object_id": oldest.pk,
            "ground": LegalHold.Ground.LEGAL_CLAIMS,
            "reason": "claim",
            "requested_by": "",
        },
    )
    assert response.status_code == 302
    backups_cleanup(actor=None, reason="", apply=True)
    oldest.refresh_from_db()
    assert oldest.deleted_at is None
