"""Restoring a backup (with what outlives it and the erasure replay), and recovering one
table from a backup."""

import json
import re
import subprocess
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, models, transaction
from django.utils import timezone

from compliance.models import ErasureCertificate, ErasureLogEntry
from compliance.services import subject_erase
from operations.backups import BackupError, manifest_path
from operations.models import ErasureReplayMatch
from operations.restore import (
    _erased_rows_dropped,
    backup_restore,
    erasures_replay,
    replay_match_confirm,
    replay_match_dismiss,
    table_recover,
)
from retention.models import LegalHold
from retention.selectors import held_q
from retention.services import hold_place, hold_release
from shop.models import Customer, Session
from versions.ledger import ledger_append, ledger_verify
from versions.models import LedgerAction, LedgerEntry

pytestmark = pytest.mark.django_db(transaction=True)
REASON = "Restore drill"
SURVIVING_TABLES = {
    "versions_ledgerentry",
    "versions_ledgercheckpoint",
    "compliance_erasurecertificate",
    "compliance_erasurelogentry",
    "versions_erasurereplaymatch",
    "versions_backup",
    "versions_backupcheck",
    "retention_legalhold",
    "retention_historicallegalhold",
    "retention_retentionpolicy",
    "retention_historicalretentionpolicy",
}


def _customers(*names):
    return [
        Customer.objects.create(email=f"{name}@example.org", full_name=name.capitalize())
        for name in names
    ]


def _counts():
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        counts = {}
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT count(*) FROM {quote(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _edit_manifest(path, **changes):
    target = manifest_path(path)
    manifest = json.loads(target.read_text())
    manifest.update(changes)
    target.write_text(json.dumps(manifest))
    return manifest


def test_backup_catalogue_outlives_a_restore(make_backup):
    """Backups made after the restored one stay in the catalogue with their checks, and a
    backup cleanup deleted since keeps its deletion: the catalogue describes the files on
    disk, not the database's past."""
    from operations.backups import backup_verify
    from operations.models import Backup, BackupCheck

    first = make_backup()
    second = make_backup(tier="weekly")
    backup_verify(path=second, actor=None, reason="check")
    Backup.objects.filter(file=first.name).update(deleted_at=timezone.now(), deleted_by="x")
    backup_restore(path=first, actor=None, reason=REASON)
    assert set(Backup.objects.values_list("file", flat=True)) == {first.name, second.name}
    assert Backup.objects.get(file=first.name).deleted_by == "x"
    assert BackupCheck.objects.filter(backup__file=second.name, ok=True).exists()


def test_legal_holds_placed_or_released_since_the_backup_keep_their_state(make_backup):
    """A hold is an obligation, not data: one placed since the backup still holds after the
    restore (so no purge or erasure takes what it keeps), one released since stays
    released, and each keeps its history."""
    ada, bob = _customers("ada", "bob")
    released = hold_place(
        record=bob, reason="Audit", ground=LegalHold.Ground.LEGAL_OBLIGATION, actor=None
    )
    path = make_backup()
    placed = hold_place(
        record=ada, reason="Litigation", ground=LegalHold.Ground.LEGAL_CLAIMS, actor=None
    )
    hold_release(hold=released, reason="Audit closed", actor=None)

    backup_restore(path=path, actor=None, reason=REASON)

    placed = LegalHold.objects.get(pk=placed.pk)
    assert placed.released_at is None and placed.reason == "Litigation"
    assert placed.content_type.model_class() is Customer and placed.object_id == str(ada.pk)
    assert LegalHold.objects.get(pk=released.pk).release_reason == "Audit closed"
    assert list(Customer.all_objects.filter(held_q(Customer)).values_list("pk", flat=True)) == [
        ada.pk
    ]
    assert placed.history.count() == 1  # placed: its creation row came back with it
    assert LegalHold.history.filter(id=released.pk).count() == 2  # placed, then released


def test_retention_policies_changed_since_the_backup_keep_their_state(make_backup, officer):
    """A policy is a decision, not data: one disabled and shortened since the backup stays
    so after the restore (no purge by the old rule), one created since is still there, and
    each keeps its history."""
    from django.contrib.contenttypes.models import ContentType

    from retention.models import RetentionPolicy
    from retention.services import policy_save

    target = ContentType.objects.get_for_model(Session)
    sessions = policy_save(
        policy=RetentionPolicy(name="Sessions", target=target, period_days=90),
        actor=officer,
        reason="seed",
    )
    dropped = policy_save(
        policy=RetentionPolicy(name="Trial", target=target, period_days=1),
        actor=officer,
        reason="trial",
    )
    path = make_backup()
    # Lengthened, not shortened: a shorter period would wait for a second officer.
    sessions.enabled, sessions.period_days, sessions.name = False, 120, "Sessions (paused)"
    policy_save(policy=sessions, actor=officer, reason="paused while we check")
    RetentionPolicy.objects.filter(pk=dropped.pk).delete()  # never ran: it can go
    created = policy_save(  # under the name the first one had at the backup
        policy=RetentionPolicy(name="Sessions", target=target, period_days=400),
        actor=officer,
        reason="new",
    )
    created_at = RetentionPolicy.objects.get(pk=created.pk).created_at

    report = backup_restore(path=path, actor=None, reason=REASON)

    sessions = RetentionPolicy.objects.get(pk=sessions.pk)
    assert (sessions.enabled, sessions.period_days, sessions.name) == (
        False,
        120,
        "Sessions (paused)",
    )
    assert sessions.history.count() == 2
    assert not RetentionPolicy.objects.filter(pk=dropped.pk).exists()  # deleted, stays so
    created = RetentionPolicy.objects.get(pk=created.pk)
    assert (created.name, created.target, created.created_at) == ("Sessions", target, created_at)
    assert created.history.count() == 1
    assert report.survivors_inserted["retention.RetentionPolicy"] == 1


def test_round_trip_restores_every_table_row_count(make_backup):
    """Backup, change data, restore: every table has the manifest's row count again."""
    _customers("ada", "bob")
    path = make_backup()
    manifest = json.loads(manifest_path(path).read_text())
    _customers("cy", "dee")
    Customer.objects.filter(full_name="Ada").update(full_name="Changed")
    models.QuerySet.delete(Customer.all_objects.filter(full_name="Bob"))

    report = backup_restore(path=path, actor=None, reason=REASON)

    counts = _counts()
    for table, rows in manifest["tables"].items():
        if table not in SURVIVING_TABLES:
            assert counts[table] == rows, table
    assert sorted(Customer.all_objects.values_list("full_name", flat=True)) == ["Ada", "Bob"]
    assert report.tables == len(manifest["tables"])
    assert report.rows == sum(manifest["tables"].values())
    assert report.ledger_problem == ""


def test_flipped_byte_is_refused_and_nothing_changes(make_backup):
    """One changed byte in the file: the restore is refused and the database unchanged."""
    _customers("ada")
    path = make_backup()
    _customers("bob")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    before = _counts()

    with pytest.raises(BackupError, match="the file changed since it was written; do not"):
        backup_restore(path=path, actor=None, reason=REASON)

    assert _counts() == before
    assert Customer.objects.filter(full_name="Bob").exists()


def test_unknown_migration_is_refused(make_backup):
    """A backup with a migration this code does not know was made by newer code: refused."""
    _customers("ada")
    path = make_backup()
    manifest = json.loads(manifest_path(path).read_text())
    _edit_manifest(
        path, migrations={**manifest["migrations"], "shop": ["0001_initial", "0999_future"]}
    )
    _customers("bob")

    with pytest.raises(BackupError, match="made by newer code.*shop.0999_future"):
        backup_restore(path=path, actor=None, reason=REASON)
    assert Customer.objects.count() == 2


def test_other_vendor_is_refused(make_backup):
    """A backup of another database vendor is refused before anything changes."""
    path = make_backup()
    other = "sqlite" if connection.vendor == "postgresql" else "postgresql"
    _edit_manifest(path, vendor=other)
    _customers("bob")

    with pytest.raises(BackupError, match=f"backup is of a {other} database"):
        backup_restore(path=path, actor=None, reason=REASON)
    assert Customer.objects.filter(full_name="Bob").exists()


def test_newer_postgresql_is_refused(postgres, make_backup):
    """A dump of a newer PostgreSQL major version, or by a newer pg_dump, is refused."""
    path = make_backup()
    major = connection.pg_version // 10000
    _edit_manifest(path, server_version=f"{major + 1}.0")
    with pytest.raises(BackupError, match=f"made from PostgreSQL {major + 1}"):
        backup_restore(path=path, actor=None, reason=REASON)
    _edit_manifest(path, server_version=str(connection.pg_version))
    _edit_manifest(path, dump_tool=f"pg_dump (PostgreSQL) {major + 1}.1")
    with pytest.raises(BackupError, match=f"written by pg_dump {major + 1}.1"):
        backup_restore(path=path, actor=None, reason=REASON)


def test_backup_lacking_a_migration_is_migrated_after_the_restore(make_backup):
    """A backup without one of the code's migrations restores, then `migrate` runs."""
    path = make_backup()
    manifest = json.loads(manifest_path(path).read_text())
    _edit_manifest(
        path, migrations={**manifest["migrations"], "shop": manifest["migrations"]["shop"][:-1]}
    )
    out = StringIO()
    call_command("restore", str(path), "--yes", reason=REASON, stdout=out)
    assert "Migrated after the restore: shop." in out.getvalue()


def _raw_backup(directory):
    """pg_dump of the test database with a manifest written here (the backup service needs
    the catalogue table, which the migration state of the test may lack)."""
    from django.db.migrations.recorder import MigrationRecorder

    from operations.backups import MANIFEST_FORMAT, pg_environ
    from versions.files import file_sha256

    path = directory / "old-daily.dump"
    subprocess.run(
        ["pg_dump", "-Fc", "-f", str(path)], env=pg_environ(connection.settings_dict), check=True
    )
    version = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout
    migrations = {}
    for app, name in sorted(MigrationRecorder(connection).applied_migrations()):
        migrations.setdefault(app, []).append(name)
    manifest = {
        "format": MANIFEST_FORMAT, "file": path.name, "vendor": "postgresql",
        "database": connection.settings_dict["NAME"], "server_version": str(connection.pg_version),
        "dump_tool": version.strip(), "migrations": migrations, "sha256": file_sha256(path),
        "size": path.stat().st_size, "tables": _counts(), "tier": "daily",
        "created_at": timezone.now().isoformat(),
    }  # fmt: skip
    manifest_path(path).write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_backup_older_than_a_migration_that_made_tables_restores_and_migrates(
    postgres, make_backup, tmp_path
):
    """A backup made before migrations that created tables (the backup catalogue's) and
    added a foreign key to a table the backup holds (exports' recipient): those tables and
    that key are dropped in the restore's transaction, `migrate` creates them again and the
    catalogue's rows written since are put back."""
    from django.db.migrations.recorder import MigrationRecorder

    from operations.models import Backup

    _customers("ada")
    call_command("migrate", "versions", "0005_ledger_compliance_actions", verbosity=0)
    try:
        path = _raw_backup(tmp_path)
    finally:
        call_command("migrate", "versions", verbosity=0)
    assert "versions_backup" not in json.loads(manifest_path(path).read_text())["tables"]
    later = make_backup()
    report = backup_restore(path=path, actor=None, reason=REASON)
    backed_up = json.loads(manifest_path(path).read_text())["migrations"]
    lacked = {
        f"{app}.{name}"
        for app, name in MigrationRecorder(connection).applied_migrations()
        if name not in backed_up.get(app, [])
    }
    assert "versions.0006_backups" in lacked  # and what depends on it
    assert "compliance.0007_export_download_key_one_waiting" in lacked  # the recipient key
    assert sorted(report.migrated) == sorted(lacked)
    assert Backup.objects.filter(file=later.name).exists()
    assert Customer.objects.filter(full_name="Ada").exists()
    assert ledger_verify(actor=None, reason="check").ok


def test_wrong_database_name_aborts_and_changes_nothing(make_backup, monkeypatch):
    """Without --yes, an answer other than the database's name aborts the restore."""
    path = make_backup()
    _customers("bob")
    before = _counts()
    monkeypatch.setattr("builtins.input", lambda prompt: "not-the-database")

    with pytest.raises(CommandError, match="Not confirmed: nothing changed"):
        call_command("restore", str(path), reason=REASON, stdout=StringIO())
    assert _counts() == before


def test_typed_database_name_restores(make_backup, monkeypatch):
    """Typing the database's name restores; the plan names the file and the tables."""
    path = make_backup()
    _customers("bob")
    prompts = []
    monkeypatch.setattr(
        "builtins.input",
        lambda prompt: prompts.append(prompt) or str(connection.settings_dict["NAME"]),
    )
    out = StringIO()
    call_command("restore", str(path), reason=REASON, stdout=out)
    assert path.name in out.getvalue() and "shop_customer: 0" in out.getvalue()
    assert "replaces the database" in prompts[0]
    assert not Customer.objects.exists()


def test_dry_run_checks_and_changes_nothing(make_backup):
    """--dry-run runs the checks, shows the plan, and restores nothing."""
    path = make_backup()
    _customers("bob")
    out = StringIO()
    call_command("restore", str(path), "--dry-run", stdout=out)
    assert "[dry run: checks passed, nothing changed]" in out.getvalue()
    assert Customer.objects.filter(full_name="Bob").exists()


def test_command_shows_a_refusal_as_an_error(make_backup):
    """A refused restore is a CommandError (non-zero exit), never a traceback."""
    path = make_backup()
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CommandError, match="do not restore it"):
        call_command("restore", str(path), "--yes", reason=REASON, stdout=StringIO())


def test_only_a_superuser_or_the_system_restores(make_backup, officer):
    """An officer may not replace the whole database."""
    path = make_backup()
    with pytest.raises(PermissionDenied):
        backup_restore(path=path, actor=officer, reason=REASON)


def test_erasure_after_the_backup_is_replayed(make_backup, officer, admin_user):
    """A customer erased after the backup is erased again when the backup is restored,
    and the erasure log holds no plaintext identifier."""
    ada, bob = _customers("ada", "bob")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")

    report = backup_restore(path=path, actor=admin_user, reason=REASON)

    ada = Customer.all_objects.get(pk=ada.pk)
    assert ada.email != "ada@example.org" and ada.full_name != "Ada"
    assert not ada.history.filter(email="ada@example.org").exists()
    assert Customer.objects.get(pk=bob.pk).email == "bob@example.org"
    assert report.erasures_replayed == 1
    replay = ErasureCertificate.objects.order_by("-id").first()
    assert replay.reason == f"Replayed after restoring backup {path.name}"
    stored = [str(value) for row in ErasureLogEntry.objects.values() for value in row.values()]
    assert not any("ada" in value.lower() for value in stored)
    digests = ErasureLogEntry.objects.values_list("digest", flat=True)
    assert digests and all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)
    assert str(ada.pk) not in digests


def test_erasure_of_a_subject_whose_row_the_backup_lacked_is_replayed(
    make_backup, officer, admin_user
):
    """A customer deleted for good before the backup (her history rows in it) and erased
    after it: the restore brings those history rows back, and the replay scrubs them."""
    from compliance.selectors import subject_find
    from retention.services import rows_hard_delete

    (ada,) = _customers("ada")
    rows_hard_delete(queryset=Customer.all_objects.filter(pk=ada.pk), actor=officer, reason="x")
    path = make_backup()
    subject_erase(subject=subject_find("ada@example.org"), actor=officer, reason="Request 1")
    assert not Customer.history.filter(email="ada@example.org").exists()

    report = backup_restore(path=path, actor=admin_user, reason=REASON)

    assert report.erasures_replayed == 1
    assert not Customer.history.filter(email="ada@example.org").exists()
    assert not Customer.history.filter(full_name="Ada").exists()
    assert Customer.history.filter(id=ada.pk).count() == 2  # created, deleted: scrubbed


def test_ledger_written_after_the_backup_outlives_the_restore(make_backup):
    """Ledger entries written after the backup are still there, the chain verifies, and a
    restore entry without personal data is appended."""
    _customers("ada")
    path = make_backup()
    later = ledger_append(action=LedgerAction.POLICY_CHANGE, actor=None, reason="after")

    report = backup_restore(path=path, actor=None, reason=REASON)

    assert LedgerEntry.objects.filter(pk=later.pk, hash=later.hash).exists()
    assert report.survivors_inserted["versions.LedgerEntry"] >= 1
    assert ledger_verify(actor=None, reason="check").ok
    entry = LedgerEntry.objects.filter(action=LedgerAction.BACKUP_RESTORE).get()
    assert entry.pk == report.ledger_entry_id
    assert set(entry.counts) == {
        "tables", "rows", "survivors_inserted", "erasures_replayed", "replay_matches_listed"
    }  # fmt: skip
    assert entry.details == {"file": path.name, "sha256": report.sha256}
    # New entries still chain on (the sequence follows the reinserted rows).
    ledger_append(action=LedgerAction.POLICY_CHANGE, actor=None, reason="after the restore")
    assert ledger_verify(actor=None, reason="check").ok


def test_replay_command_runs_the_replay_alone(make_backup, officer):
    """`restore --replay-erasures` erases again every subject the log names."""
    (ada,) = _customers("ada")
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    Customer.all_objects.filter(pk=ada.pk).update(email="ada@example.org", full_name="Ada")
    path = make_backup()
    out = StringIO()
    call_command("restore", str(path), "--replay-erasures", reason="finish", stdout=out)
    assert "1 subject(s) erased again" in out.getvalue()
    assert Customer.all_objects.get(pk=ada.pk).email != "ada@example.org"


def _email_taken_over():
    """Ada changes her email and Bob signs up with her old one: Ada's erasure logs both."""
    (ada,) = _customers("ada")
    ada.email = "ada.lovelace@example.org"
    ada.save()  # her history keeps the old email, which her erasure logs
    bob = Customer.objects.create(email="ada@example.org", full_name="Bob")
    return ada, bob


def _assert_listed_not_erased(bob, certificate):
    bob = Customer.objects.get(pk=bob.pk)
    assert (bob.email, bob.full_name) == ("ada@example.org", "Bob")
    match = ErasureReplayMatch.objects.get()
    assert (match.subject_key, match.field, match.status) == (str(bob.pk), "email", "pending")
    assert match.log_entry.kind == "email" and match.log_entry.certificate_id == certificate.pk
    stored = " ".join(str(value) for value in ErasureReplayMatch.objects.values().get().values())
    assert "example.org" not in stored and "ada" not in stored.lower()
    return match


def test_restore_lists_a_match_by_email_alone_and_erases_only_by_key(
    make_backup, officer, admin_user
):
    """An email the erased person had is someone else's in the backup: the replay erases
    the erased person (by key) and only lists the other one, with the log entry and the
    field that matched, for an officer to confirm."""
    ada, bob = _email_taken_over()
    path = make_backup()
    certificate = subject_erase(subject=ada, actor=officer, reason="Request 1").certificate

    report = backup_restore(path=path, actor=admin_user, reason=REASON)

    assert (report.erasures_replayed, report.replay_matches_listed) == (1, 1)
    assert Customer.all_objects.get(pk=ada.pk).email != "ada.lovelace@example.org"
    _assert_listed_not_erased(bob, certificate)
    entry = LedgerEntry.objects.filter(action=LedgerAction.BACKUP_RESTORE).get()
    assert entry.counts["replay_matches_listed"] == 1


def test_replay_of_the_whole_log_leaves_an_email_taken_over_after_the_erasure(
    make_backup, officer, monkeypatch
):
    """Bob signs up with the email of Ada, erased before him; a restore that stopped is
    finished with `--replay-erasures`, which replays the whole log: Bob is listed for an
    officer to confirm, never erased."""
    (ada,) = _customers("ada")
    certificate = subject_erase(subject=ada, actor=officer, reason="Request 1").certificate
    bob = Customer.objects.create(email="ada@example.org", full_name="Bob")
    path = make_backup()
    monkeypatch.setattr("operations.restore._survivors_insert", lambda saved: 1 / 0)
    with pytest.raises(BackupError, match="restore-journal.json"):
        backup_restore(path=path, actor=None, reason=REASON)
    monkeypatch.undo()

    out = StringIO()
    call_command("restore", str(path), "--replay-erasures", stdout=out)

    assert "1 subject(s) matched an erased person by an email alone: not erased" in (out.getvalue())
    _assert_listed_not_erased(bob, certificate)
    # A second replay lists nothing again.
    call_command("restore", str(path), "--replay-erasures", stdout=StringIO())
    assert ErasureReplayMatch.objects.count() == 1


def test_two_replays_listing_the_same_match_count_it_once(officer, admin_user):
    """Replayed twice, the same email match is listed by the first replay only: 1, then 0."""
    ada, bob = _email_taken_over()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    first = erasures_replay(actor=admin_user, reason="replay", subject_keys=[bob.pk])
    second = erasures_replay(actor=admin_user, reason="replay", subject_keys=[bob.pk])
    assert (first.listed, second.listed) == (1, 0)
    assert ErasureReplayMatch.objects.count() == 1


def test_two_replays_at_once_count_the_match_they_both_list_once(
    postgres, transactional_db, officer, admin_user
):
    """Race on two connections: replay A has inserted Bob's match and not committed when
    replay B, which did not see it, inserts it too (and waits for A). A commits; B's insert
    is dropped as a conflict, and B counts 0: the two report 1 match in all, the one row."""
    import threading
    import time

    ada, bob = _email_taken_over()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    a_listed, commit, results, errors = threading.Event(), threading.Event(), {}, []

    def replay(name, hold):
        try:
            with transaction.atomic():
                results[name] = erasures_replay(
                    actor=admin_user, reason=f"replay {name}", subject_keys=[bob.pk]
                ).listed
                if hold:
                    a_listed.set()
                    assert commit.wait(timeout=60)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    a = threading.Thread(target=replay, args=("a", True))
    a.start()
    assert a_listed.wait(timeout=60), errors
    b = threading.Thread(target=replay, args=("b", False))
    b.start()

    def b_waits():
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
            return cursor.fetchone()[0] > 0

    deadline = time.monotonic() + 30
    while not b_waits() and b.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b_waits(), errors  # B inserts the match A has not committed yet
    commit.set()
    a.join(timeout=60)
    b.join(timeout=60)
    assert errors == []
    assert results == {"a": 1, "b": 0}
    assert ErasureReplayMatch.objects.count() == 1


@pytest.fixture
def listed(officer, admin_user):
    """Ada erased; Bob has her old email; a replay of the whole log lists Bob."""
    ada, bob = _email_taken_over()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    assert erasures_replay(actor=admin_user, reason="replay").listed == 1
    return bob, ErasureReplayMatch.objects.get()


def test_confirmed_match_erases_the_subject_with_a_ledger_entry(listed, officer):
    """Confirming runs the erasure service on the subject and records the decision."""
    bob, match = listed
    result = replay_match_confirm(match=match, actor=officer, reason="Same person, new key")

    assert result.certificate is not None
    assert Customer.all_objects.get(pk=bob.pk).email != "ada@example.org"
    match.refresh_from_db()
    assert (match.status, match.erasure, match.decided_by) == (
        "confirmed", result.certificate, "officer"
    )  # fmt: skip
    entry = LedgerEntry.objects.filter(action=LedgerAction.REPLAY_MATCH).get()
    assert entry.details["decision"] == "confirmed" and entry.details["match"] == match.pk
    assert entry.details["erasure"] == result.certificate.pk
    assert "ada@example.org" not in json.dumps([entry.details, entry.counts, entry.target])
    with pytest.raises(BackupError, match="already decided"):
        replay_match_dismiss(match=match, actor=officer, reason="changed my mind")


def test_dismissed_match_erases_nothing(listed, officer, auditor):
    """Dismissing keeps the subject; only someone who may erase decides."""
    bob, match = listed
    with pytest.raises(PermissionDenied):
        replay_match_confirm(match=match, actor=auditor, reason="x")
    replay_match_dismiss(match=match, actor=officer, reason="Bob is someone else")

    assert Customer.objects.get(pk=bob.pk).email == "ada@example.org"
    match.refresh_from_db()
    assert match.status == "dismissed" and match.erasure is None
    entry = LedgerEntry.objects.filter(action=LedgerAction.REPLAY_MATCH).get()
    assert entry.details["decision"] == "dismissed" and entry.counts == {"erased": 0}


def test_officer_confirms_a_match_on_its_confirmation_page(listed, officer_client):
    """The page says what matched and what the erasure would do; a POST without a reason
    is refused; with one, the subject is erased and the officer told so."""
    bob, match = listed
    url = f"/admin/operations/erasurereplaymatch/{match.pk}/decide/"
    page = officer_client.get(url)
    assert page.status_code == 200
    assert f"certificate #{match.log_entry.certificate_id}" in page.content.decode()
    assert Customer.objects.get(pk=bob.pk).email == "ada@example.org"  # a GET erases nothing

    refused = officer_client.post(url, {"decision": "confirm", "reason": ""})
    assert refused.status_code == 200 and b"Give the reason" in refused.content
    assert Customer.objects.get(pk=bob.pk).email == "ada@example.org"

    plan_hash = page.context["plan"].hash
    done = officer_client.post(
        url, {"decision": "confirm", "reason": "Same person", "plan_hash": plan_hash},
        follow=True,
    )  # fmt: skip
    assert f"Match #{match.pk} confirmed" in done.content.decode()
    assert Customer.all_objects.get(pk=bob.pk).email != "ada@example.org"
    assert LedgerEntry.objects.filter(action=LedgerAction.REPLAY_MATCH).count() == 1


def test_auditor_cannot_decide_a_match(listed, auditor_client):
    """An auditor sees the list, but the confirmation page and its POST are refused."""
    bob, match = listed
    url = f"/admin/operations/erasurereplaymatch/{match.pk}/decide/"
    assert auditor_client.get("/admin/operations/erasurereplaymatch/").status_code == 200
    assert auditor_client.get(url).status_code == 403
    assert auditor_client.post(url, {"decision": "confirm", "reason": "x"}).status_code == 403
    assert Customer.objects.get(pk=bob.pk).email == "ada@example.org"
    match.refresh_from_db()
    assert match.status == "pending"


# Single-table recovery ----------------------------------------------------------------------


def test_recover_table_needs_postgresql(make_backup):
    """On SQLite recover_table says to restore the whole backup instead."""
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite refusal")
    path = make_backup()
    with pytest.raises(CommandError, match="recover_table needs PostgreSQL; on SQLite restore"):
        call_command("recover_table", str(path), "shop_customer", stdout=StringIO())


def test_recover_table_refuses_an_unknown_table(postgres, make_backup):
    """A table the backup does not list, or one of no model here, is refused."""
    path = make_backup()
    with pytest.raises(BackupError, match="has no table 'no_such_table'"):
        table_recover(path=path, table="no_such_table", merge=False, actor=None, reason="")
    with pytest.raises(BackupError, match="has no table"):
        table_recover(path=path, table='shop_customer"; DROP', merge=False, actor=None, reason="")


def test_recover_table_merge_adds_only_the_missing_rows(postgres, make_backup):
    """Three rows deleted after the backup come back; a row changed since keeps its live
    value; the inserted rows get history rows and a ledger entry."""
    customers = _customers("ada", "bob", "cy", "dee", "eve")
    path = make_backup()
    gone = [c.pk for c in customers[:3]]
    models.QuerySet.delete(Customer.all_objects.filter(pk__in=gone))
    Customer.objects.filter(pk=customers[3].pk).update(full_name="Changed")

    out = StringIO()
    call_command("recover_table", str(path), "shop_customer", stdout=out)
    assert "3 of them are missing" in out.getvalue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM recovery.shop_customer")
        assert cursor.fetchone()[0] == 5
    assert Customer.all_objects.count() == 2  # inspection changes nothing

    result = table_recover(
        path=path, table="shop_customer", merge=True, actor=None, reason="lost rows"
    )

    assert (result.inserted, result.already_present) == (3, 2)
    assert set(Customer.all_objects.values_list("pk", flat=True)) == {c.pk for c in customers}
    assert Customer.objects.get(pk=customers[3].pk).full_name == "Changed"
    assert Customer.history.filter(id__in=gone, history_type="+").count() >= 3
    entry = LedgerEntry.objects.get(action=LedgerAction.TABLE_RECOVER)
    assert entry.counts["inserted"] == 3
    assert entry.details == {"file": path.name, "table": "shop_customer"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('recovery.shop_customer')")
        assert cursor.fetchone()[0] is None  # dropped after the merge (no --keep)
    assert Customer.objects.create(email="new@example.org", full_name="New").pk > max(gone)


def test_recover_table_merge_reports_a_row_whose_email_was_reused(postgres, make_backup):
    """A deleted customer whose email a new customer has taken since is left out of the
    merge and reported by its key and the unique index, not counted as already present;
    the other missing row comes back; the recovery table keeps the clashing row."""
    ada, bob, cy = _customers("ada", "bob", "cy")
    path = make_backup()
    models.QuerySet.delete(Customer.all_objects.filter(pk__in=[ada.pk, cy.pk]))
    ann = Customer.objects.create(email="ada@example.org", full_name="Ann")

    out = StringIO()
    call_command("recover_table", str(path), "shop_customer", merge=True, reason="r", stdout=out)

    assert Customer.objects.get(email="ada@example.org").pk == ann.pk
    assert set(Customer.all_objects.values_list("pk", flat=True)) == {bob.pk, cy.pk, ann.pk}
    text = out.getvalue()
    assert "1 row(s) inserted, 1 already present (kept as they are), 1 left out" in text
    assert (
        f"Left out: id={ada.pk} clashes with a live row on email (unique index "
        "shop_customer_email_live_unique)"
    ) in text
    assert "ada@example.org" not in text
    entry = LedgerEntry.objects.get(action=LedgerAction.TABLE_RECOVER)
    assert (entry.counts["inserted"], entry.counts["already_present"]) == (1, 1)
    assert entry.counts["clashed"] == 1
    assert "recovery.shop_customer is kept" in text
    assert _recovered("shop_customer") == sorted([ada.pk, bob.pk, cy.pk])


def test_recover_table_merge_erases_an_erased_customer_again(postgres, make_backup, officer):
    """A merged customer row that the erasure log names is erased again."""
    ada, _ = _customers("ada", "bob")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    models.QuerySet.delete(Customer.all_objects.filter(pk=ada.pk))

    result = table_recover(path=path, table="shop_customer", merge=True, actor=None, reason="r")

    assert result.inserted == 1 and result.erasures_replayed == 1
    assert Customer.all_objects.get(pk=ada.pk).email != "ada@example.org"


def _recovered(table, column="id"):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM recovery.{table} ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def test_recovery_table_kept_for_inspection_holds_no_erased_person(postgres, make_backup, officer):
    """A table read back from a backup for inspection leaves out the rows about people
    erased since: their own row, matched by key or by email, and the rows that refer to
    them (a session of theirs); the others are all there, and the command says so."""
    ada, bob = _customers("ada", "bob")
    for customer in (ada, bob):
        Session.objects.create(customer=customer, expires_at=timezone.now())
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    models.QuerySet.delete(Customer.all_objects.filter(pk=ada.pk))  # and then lost

    out = StringIO()
    call_command("recover_table", str(path), "shop_customer", stdout=out)
    assert _recovered("shop_customer") == [bob.pk]
    assert "Recovered 1 row(s) of shop_customer" in out.getvalue()
    assert "0 of them are missing" in out.getvalue()  # counted after ada's row went
    assert "1 row(s) about people erased since the backup were deleted" in out.getvalue()

    call_command("recover_table", str(path), "shop_session", stdout=StringIO())
    assert _recovered("shop_session", "customer_id") == [bob.pk]

    # A row with the erased person's email under another key is theirs too.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO recovery.shop_customer (id, email, full_name, phone, avatar_url, "
            "created_at, updated_at) VALUES (9999, ' ADA@example.org', 'Ada', '', '', now(), "
            "now())"
        )
    assert _erased_rows_dropped(Customer, "shop_customer") == 1
    assert _recovered("shop_customer") == [bob.pk]


def test_recovery_table_kept_after_a_merge_holds_no_erased_person(postgres, make_backup, officer):
    """--merge --keep: the merged row is erased again, and the kept table loses its copy."""
    ada, bob = _customers("ada", "bob")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    models.QuerySet.delete(Customer.all_objects.filter(pk__in=[ada.pk, bob.pk]))

    result = table_recover(
        path=path, table="shop_customer", merge=True, keep=True, actor=None, reason="r"
    )

    assert (result.inserted, result.erasures_replayed, result.erased_rows_dropped) == (2, 1, 1)
    assert Customer.all_objects.get(pk=ada.pk).email != "ada@example.org"
    assert _recovered("shop_customer") == [bob.pk]

    # The kept table is scratch: a backup leaves it out, and recovering from that backup
    # finds the application's table alone.
    later = make_backup()
    listing = subprocess.run(
        ["pg_restore", "--list", str(later)], capture_output=True, text=True, check=True
    ).stdout
    assert " recovery " not in listing and "SCHEMA - recovery" not in listing
    again = table_recover(path=later, table="shop_customer", merge=False, actor=None, reason="")
    # Both customers, one of them left out as erased (by key: the anonymised row too).
    assert (again.recovered, again.erased_rows_dropped) == (1, 1)


def test_merged_history_table_brings_no_erased_person_back(postgres, make_backup, officer):
    """History rows are no registered model's: no erasure replay follows their merge, so
    the rows about people erased since leave the copy before it is merged."""
    ada, bob = _customers("ada", "bob")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    history = Customer.history.model
    models.QuerySet.delete(history.objects.all())  # then every history row was lost

    result = table_recover(
        path=path, table=history._meta.db_table, merge=True, actor=None, reason="lost history"
    )

    assert result.erased_rows_dropped == 1 and result.inserted == 1
    assert list(history.objects.values_list("id", "email")) == [(bob.pk, "bob@example.org")]


def test_replay_that_fails_says_the_database_was_restored_and_how_to_finish(
    make_backup, officer, monkeypatch
):
    """A failure after the database was replaced is an error naming the way to finish."""
    (ada,) = _customers("ada")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")

    def fail(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("operations.restore.subject_erase", fail)
    with pytest.raises(BackupError) as refused:
        backup_restore(path=path, actor=None, reason=REASON)
    message = str(refused.value)
    assert "database was restored" in message and "erasure replay did not finish" in message
    assert f"restore {path} --replay-erasures" in message
    # The erasure log survived, so the replay can still be finished.
    assert ErasureCertificate.objects.exists()


def test_a_restore_that_dies_after_the_database_was_replaced_is_finished_from_its_journal(
    make_backup, officer, monkeypatch
):
    """The ledger and erasure log rows written since the backup are on disk before the
    database is replaced; if putting them back fails, `restore --replay-erasures` puts them
    back from that journal, erases again and leaves a ledger that verifies."""
    from operations.restore import journal_path

    (ada,) = _customers("ada")
    path = make_backup()
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    later = ledger_append(action=LedgerAction.POLICY_CHANGE, actor=None, reason="after")

    def crash(saved):
        raise RuntimeError("killed")

    monkeypatch.setattr("operations.restore._survivors_insert", crash)
    with pytest.raises(BackupError, match="restore-journal.json"):
        backup_restore(path=path, actor=None, reason=REASON)
    assert journal_path(path).is_file()
    assert not LedgerEntry.objects.filter(pk=later.pk).exists()  # the backup's ledger
    assert Customer.objects.get(pk=ada.pk).email == "ada@example.org"  # erased person back
    monkeypatch.undo()

    out = StringIO()
    call_command("restore", str(path), "--replay-erasures", stdout=out)
    assert "Put back" in out.getvalue() and "1 subject(s) erased again" in out.getvalue()
    assert LedgerEntry.objects.filter(pk=later.pk).exists()
    assert Customer.objects.get(pk=ada.pk).email != "ada@example.org"
    assert not journal_path(path).exists()
    assert ledger_verify(actor=None, reason="check").ok


def test_ledger_head_file_still_verifies_after_the_restore(make_backup, settings, tmp_path):
    """The head kept outside the database names an entry written after the backup: the
    restore keeps that entry, so the restored database does not look tampered with."""
    settings.LEDGER_HEAD_FILE = str(tmp_path / "ledger.head")
    path = make_backup()
    later = ledger_append(action=LedgerAction.POLICY_CHANGE, actor=None, reason="after")
    assert f"entry={later.pk} " in (tmp_path / "ledger.head").read_text()

    report = backup_restore(path=path, actor=None, reason=REASON)

    assert report.ledger_problem == ""
    assert ledger_verify(actor=None, reason="check").ok


def test_erasure_before_the_backup_is_not_replayed(make_backup, officer):
    """Someone erased before the backup who signed up again with the same email is left
    alone: only the erasures the backup lacks run again."""
    (ada,) = _customers("ada")
    subject_erase(subject=ada, actor=officer, reason="Request 1")
    (again,) = _customers("ada")
    path = make_backup()

    report = backup_restore(path=path, actor=None, reason=REASON)

    assert report.erasures_replayed == 0
    assert Customer.objects.get(pk=again.pk).email == "ada@example.org"


def test_restore_inside_a_transaction_is_refused(make_backup):
    """A restore closes the connections and replaces every table: never inside a
    transaction, where it would break the caller's."""
    path = make_backup()
    with (
        pytest.raises(BackupError, match="cannot run inside a transaction"),
        transaction.atomic(),
    ):
        backup_restore(path=path, actor=None, reason=REASON)
