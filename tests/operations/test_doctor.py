"""The doctor: each check asks for action in a provoked situation and is ok otherwise."""

import json
import os
import subprocess
import threading
import time
from datetime import timedelta
from io import StringIO

import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from operations.doctor import (
    ACTION,
    OK,
    SKIPPED,
    TableStats,
    Thresholds,
    dead_tuples_finding,
    doctor_run,
)
from retention.models import PolicyAction, PurgeRun, RetentionPolicy
from retention.services import _run_lock, _run_unlock, policy_purge
from shop.models import AnalyticsEvent, Session
from versions.ledger import ledger_verify

OLD = timezone.now() - timedelta(days=200)


def _run(check, **overrides):
    """The findings of one check, with these thresholds changed."""
    return doctor_run(thresholds=Thresholds.from_settings(**overrides), names=[check])


def _statuses(findings):
    return {f.status for f in findings}


def _connect():
    """A second session on the test database, as another process would open one."""
    params = connection.settings_dict
    options = {
        "dbname": params["NAME"],
        "user": params["USER"],
        "password": params["PASSWORD"],
        "host": params["HOST"],
        "port": params["PORT"],
    }
    return psycopg.connect(**{k: v for k, v in options.items() if v})


# Soft-delete indexes ----------------------------------------------------------------------


def test_soft_delete_indexes_present_is_ok(db):
    """Every soft-delete table as migrated has its partial index: ok."""
    [finding] = _run("soft-delete-index")
    assert finding.status == OK
    assert "2 soft-delete table(s)" in finding.summary


def test_soft_delete_index_dropped_is_action(db):
    """Dropping a soft-delete model's only live-row index is reported with its fix."""
    with connection.cursor() as cursor:
        cursor.execute('DROP INDEX "shop_document_live"')  # rolled back with the test
    [finding] = _run("soft-delete-index")
    assert finding.status == ACTION
    assert finding.data == {"model": "shop.Document", "table": "shop_document"}
    assert "deleted_at IS NULL" in finding.summary
    assert "declares shop_document_live" in finding.advice


# Checks that need PostgreSQL ----------------------------------------------------------------


def test_postgres_checks_skip_on_sqlite(db):
    """On SQLite the PostgreSQL checks are skipped with the reason."""
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite behaviour; this run is on PostgreSQL")
    findings = doctor_run(
        thresholds=Thresholds.from_settings(),
        names=["table-bloat", "long-transactions", "lock-waits"],
    )
    assert [f.check for f in findings] == ["table-bloat", "long-transactions", "lock-waits"]
    assert _statuses(findings) == {SKIPPED}
    assert all("PostgreSQL only" in f.summary for f in findings)


def test_dead_tuples_decision():
    """Dead rows ask for action only above both thresholds: the count and the share."""
    limits = Thresholds.from_settings(dead_tuples=10_000, dead_tuple_ratio=0.2)
    now = timezone.now()
    bloated = dead_tuples_finding(TableStats("t", 100_000, 30_000), limits, now)
    assert bloated.status == ACTION and "30,000 dead rows for 100,000 live (30%)" in bloated.summary
    assert "never vacuumed" in bloated.summary and "ACCESS EXCLUSIVE" in bloated.advice
    assert dead_tuples_finding(TableStats("t", 200_000, 30_000), limits, now) is None  # 15 %
    assert dead_tuples_finding(TableStats("t", 1_000, 5_000), limits, now) is None  # few
    vacuumed = TableStats("t", 0, 20_000, last_autovacuum=now - timedelta(days=3))
    assert (
        "last vacuumed 3 d ago (autovacuum)" in dead_tuples_finding(vacuumed, limits, now).summary
    )


def test_table_bloat_ok(postgres):
    """No table of the test database has 10,000 dead rows: ok."""
    [finding] = _run("table-bloat")
    assert finding.status == OK


@pytest.mark.django_db(transaction=True)
def test_table_bloat_reports_dead_rows(postgres):
    """Updating every row of a table leaves dead rows that the check reports."""
    table = AnalyticsEvent._meta.db_table
    with connection.cursor() as cursor:
        # Autovacuum must not clean up before the check reads the statistics.
        cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        AnalyticsEvent.objects.bulk_create(AnalyticsEvent(name="view") for _ in range(300))
        AnalyticsEvent.objects.update(name="seen")
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        findings = _run("table-bloat", dead_tuples=100, dead_tuple_ratio=0.2)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")
    [finding] = [f for f in findings if f.data.get("table") == table]
    assert finding.status == ACTION
    assert finding.data["dead"] >= 300
    assert f"VACUUM (ANALYZE) {table}" in finding.advice


def test_long_transaction_reported(postgres):
    """A second session idle in its transaction is named with its pid and query."""
    other = _connect()
    try:
        # Opens a transaction and leaves it open; its values are personal data.
        other.execute("SELECT 'ada@example.org' AS email, 4242 AS id")
        pid = other.info.backend_pid
        [finding] = _run("long-transactions", transaction_minutes=0)
    finally:
        other.close()
    assert finding.status == ACTION
    assert finding.data["pid"] == pid
    assert "idle in transaction" in finding.summary
    assert "SELECT ? AS email, ? AS id" in finding.summary  # which query, not its values
    assert "ada@example.org" not in finding.summary and "4242" not in finding.summary
    assert f"pg_terminate_backend({pid})" in finding.advice


def test_long_transactions_ok(postgres):
    """No other session has a transaction open for 5 minutes: ok."""
    [finding] = _run("long-transactions")
    assert finding.status == OK


def test_lock_wait_reported(postgres):
    """A session waiting for a lock that another holds is named, with the one blocking it."""
    holder, waiter = _connect(), _connect()
    holder.execute("SELECT pg_advisory_xact_lock(4242)")
    waiter.execute("SET lock_timeout = '30s'")
    waiter.commit()
    holding_pid, waiting_pid = holder.info.backend_pid, waiter.info.backend_pid
    errors = []

    def wait():
        try:
            waiter.execute("SELECT pg_advisory_xact_lock(4242)")
            waiter.rollback()
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        with connection.cursor() as cursor:
            for _ in range(100):  # until the waiter is seen waiting
                cursor.execute("SELECT pg_stat_clear_snapshot()")
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [waiting_pid]
                )
                if cursor.fetchone()[0] == "Lock":
                    break
                time.sleep(0.05)
        findings = _run("lock-waits", lock_wait_seconds=0)
    finally:
        holder.rollback()
        thread.join(timeout=30)
        holder.close()
        waiter.close()
    assert not errors
    [finding] = findings
    assert finding.status == ACTION
    assert finding.data["pid"] == waiting_pid
    assert finding.data["blocked_by"] == [holding_pid]
    assert f"pg_terminate_backend({holding_pid})" in finding.advice


def test_lock_waits_ok(postgres):
    """Nobody waits for a lock: ok."""
    [finding] = _run("lock-waits", lock_wait_seconds=0)
    assert finding.status == OK


# Purge backlog ----------------------------------------------------------------------------


def _policy(**fields):
    values = {"period_days": 90, "action": PolicyAction.HARD_DELETE, **fields}
    return RetentionPolicy.objects.create(
        name="sessions", target=ContentType.objects.get_for_model(Session), **values
    )


def _sessions(customer, n):
    for _ in range(n):
        Session.objects.create(customer=customer, created_at=OLD, expires_at=OLD)


def test_purge_backlog_ok_after_a_full_run(customer):
    """A policy whose recent run removed everything eligible: ok."""
    _sessions(customer, 3)
    policy_purge(policy=_policy(), actor=None)
    [finding] = _run("purge-backlog")
    assert finding.status == OK


def test_purge_backlog_growing_is_action(customer):
    """A run that left a backlog, and more eligible now than when it started: action."""
    _sessions(customer, 3)
    policy = _policy()
    run = policy_purge(policy=policy, actor=None, batch_size=1, max_rows=1)
    assert (run.eligible, run.backlog) == (3, 2)
    _sessions(customer, 2)  # 4 eligible now
    [finding] = _run("purge-backlog")
    assert finding.status == ACTION
    assert "backlog grows: 4 rows eligible now, 3 when its last run started" in finding.summary
    assert 'purge_expired --policy "sessions"' in finding.advice
    assert "--batch-size" in finding.advice


def test_purge_not_run_lately_is_action(customer):
    """An enabled policy whose last run is older than the stale threshold: action."""
    policy = _policy()
    run = policy_purge(policy=policy, actor=None)
    PurgeRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(days=3))
    [finding] = _run("purge-backlog", purge_stale_days=2)
    assert finding.status == ACTION
    assert "it has not run for 3 d" in finding.summary
    assert "retention-purge-daily" in finding.advice


def test_purge_failed_run_is_action(db):
    """A policy whose last run failed: action, with the run's error."""
    now = timezone.now()
    PurgeRun.objects.create(
        policy=_policy(), started_at=now, finished_at=now, status="failed", error="disk full"
    )
    [finding] = _run("purge-backlog")
    assert finding.status == ACTION
    assert "failed: disk full" in finding.summary


def test_purge_run_still_running_is_action_only_when_old(db):
    """A run whose process lives is fine while young, and asks for action after the
    threshold."""
    policy = _policy()
    run = PurgeRun.objects.create(
        policy=policy, started_at=timezone.now(), status="running", pid=os.getpid()
    )
    _run_lock(run)  # held as its process holds it
    try:
        assert _statuses(_run("purge-backlog")) == {OK}
        PurgeRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=13))
        [finding] = _run("purge-backlog", purge_running_hours=12)
    finally:
        _run_unlock(run)
    assert finding.status == ACTION
    assert "never finished" in finding.summary


def test_every_interrupted_run_is_reported_not_only_the_latest(customer):
    """Two runs whose process died (one closed already, one still marked running) and a
    later successful run: the doctor closes the second and reports both."""
    policy = _policy()
    earlier = timezone.now() - timedelta(hours=3)
    PurgeRun.objects.create(
        policy=policy, started_at=earlier, status="interrupted", purged=5, batches=1
    )
    dead = subprocess.Popen(["true"])
    dead.wait()
    running = PurgeRun.objects.create(
        policy=policy,
        started_at=earlier + timedelta(hours=1),
        status="running",
        purged=9,
        batches=3,
        pid=dead.pid,
    )
    policy_purge(policy=policy, actor=None)  # the latest run: succeeded
    PurgeRun.objects.filter(pk=running.pk).update(status="running", finished_at=None)
    findings = _run("purge-backlog")
    assert [f.data.get("run") for f in findings] == [
        running.pk - 1,
        running.pk,
    ] and _statuses(findings) == {ACTION}
    assert "interrupted after 3 batch(es), 9 rows purged" in findings[1].summary
    assert PurgeRun.objects.get(pk=running.pk).status == "interrupted"


def test_purge_never_run_is_action(db):
    """A policy created days ago that never ran is action; a new one is not yet."""
    policy = _policy()
    assert _statuses(_run("purge-backlog")) == {OK}
    RetentionPolicy.objects.filter(pk=policy.pk).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    [finding] = _run("purge-backlog")
    assert finding.status == ACTION and "it has never run" in finding.summary


# Backups, ledger, history -------------------------------------------------------------------


@pytest.fixture
def verified_backup(transactional_db, settings, tmp_path):
    """A backup made, verified and restore-drilled now."""
    from operations.backups import backup_create, backup_verify
    from operations.config import backup_dir

    settings.BACKUP_DIR = tmp_path / "backups"
    backup = backup_create(tier="daily", actor=None, reason="doctor test")
    backup_verify(path=backup_dir() / backup.file, drill=True, actor=None, reason="test")
    return backup


def test_backups_empty_catalogue_is_action(db):
    """No backup at all asks for one."""
    [finding] = _run("backups")
    assert finding.status == ACTION
    assert finding.summary == "The backup catalogue holds no backup."


def test_backups_verified_and_drilled_now_are_ok(verified_backup):
    """A fresh backup, verified and drilled, needs nothing."""
    [finding] = _run("backups")
    assert finding.status == OK and verified_backup.file in finding.summary


def test_backups_old_unverified_undrilled_or_failed_are_action(verified_backup):
    """An old newest backup, old checks and a failed last check each ask for action."""
    from operations.backups import backup_verify
    from operations.config import backup_dir
    from operations.models import Backup

    long_ago = timezone.now() - timedelta(days=10)
    Backup.objects.update(created_at=long_ago)
    summaries = [f.summary for f in _run("backups", backup_verify_days=0, backup_drill_days=0)]
    assert any("was made" in s and "more than 2 d ago" in s for s in summaries)
    assert any("was verified successfully" in s for s in summaries)
    assert any("was restore-drilled successfully" in s for s in summaries)
    path = backup_dir() / verified_backup.file
    with open(path, "r+b") as handle:
        byte = handle.read(1)
        handle.seek(0)
        handle.write(bytes([byte[0] ^ 0xFF]))
    backup_verify(path=path, actor=None, reason="test")
    findings = _run("backups")
    assert all(f.status == ACTION for f in findings)
    assert any("failed their last check" in f.summary for f in findings)


def test_ledger_never_verified_is_action(db):
    """A ledger never verified asks for verify_ledger."""
    [finding] = _run("ledger-verification")
    assert finding.status == ACTION
    assert finding.summary == "The ledger has never been verified."
    assert "python manage.py verify_ledger" in finding.advice


def test_ledger_verified_now_is_ok_and_old_is_action(db):
    """Verified just now: ok; the same verification past the threshold: action."""
    ledger_verify(actor=None, reason="test")
    assert _statuses(_run("ledger-verification")) == {OK}
    [finding] = _run("ledger-verification", ledger_days=0)
    assert finding.status == ACTION and "last verified" in finding.summary


def test_ledger_head_cut_after_verification_is_action(postgres):
    """Entries from the verified head on deleted (triggers disabled) and one appended:
    doctor no longer says the ledger was verified up to a head that is gone."""
    from tests.versions.test_ledger import _owner_sql
    from versions.ledger import ledger_append
    from versions.models import LedgerEntry

    for n in range(4):
        ledger_append(action="export", actor=None, reason=f"entry {n}")
    report = ledger_verify(actor=None, reason="test")
    assert report.ok and _statuses(_run("ledger-verification")) == {OK}
    head = LedgerEntry.objects.order_by("-id").first()
    _owner_sql(("DELETE FROM versions_ledgerentry WHERE id >= %s", [head.pk - 1]))
    ledger_append(action="export", actor=None, reason="after the cut")
    [finding] = _run("ledger-verification")
    assert finding.status == ACTION
    assert f"entry #{head.pk}" in finding.summary and "no longer exists" in finding.summary
    assert "python manage.py verify_ledger" in finding.advice


def test_ledger_head_with_another_hash_is_action(postgres):
    """The verified head entry is still there but its hash is not the one recorded."""
    from tests.versions.test_ledger import _owner_sql
    from versions.ledger import ledger_append
    from versions.models import LedgerEntry

    ledger_append(action="export", actor=None, reason="one")
    ledger_verify(actor=None, reason="test")
    head = LedgerEntry.objects.order_by("-id").first()
    _owner_sql(("UPDATE versions_ledgerentry SET hash = %s WHERE id = %s", ["f" * 64, head.pk]))
    [finding] = _run("ledger-verification")
    assert finding.status == ACTION and "hash" in finding.summary


def test_ledger_entries_missing_before_the_head_are_action(postgres):
    """An entry deleted below the verified head leaves the count short of its sequence
    number: action."""
    from tests.versions.test_ledger import _owner_sql
    from versions.ledger import ledger_append
    from versions.models import LedgerEntry

    for n in range(3):
        ledger_append(action="export", actor=None, reason=f"entry {n}")
    ledger_verify(actor=None, reason="test")
    head = LedgerEntry.objects.order_by("-id").first()
    _owner_sql(("DELETE FROM versions_ledgerentry WHERE id = %s", [head.pk - 1]))
    [finding] = _run("ledger-verification")
    assert finding.status == ACTION and "missing" in finding.summary


def test_replay_matches_awaiting_a_decision_are_action(customer, officer):
    """A match by email alone waits for an officer: doctor asks for the decision; once
    decided, all is well."""
    from compliance.services import subject_erase
    from operations.models import ErasureReplayMatch

    assert _statuses(_run("erasure-replay-matches")) == {OK}
    certificate = subject_erase(subject=customer, actor=officer, reason="Request 1").certificate
    match = ErasureReplayMatch.objects.create(
        created_at=timezone.now(),
        replay="restore",
        log_entry=certificate.log_entries.first(),
        field="email",
        subject_key="12345",
    )
    [finding] = _run("erasure-replay-matches")
    assert finding.status == ACTION and "1 subject(s)" in finding.summary
    assert "confirm or dismiss" in finding.advice
    ErasureReplayMatch.objects.filter(pk=match.pk).update(status="dismissed")
    assert _statuses(_run("erasure-replay-matches")) == {OK}


def test_history_growth_ok(db):
    """With the default thresholds no history table of the test database is too large."""
    [finding] = _run("history-growth")
    assert finding.status == OK


def test_history_growth_is_action(customer):
    """A record with many versions passes the thresholds: action, naming a history policy."""
    for n in range(5):
        customer.full_name = f"Ada {n}"
        customer.save()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the estimate comes from the planner's statistics
            cursor.execute("ANALYZE shop_customer, shop_historicalcustomer")
    findings = _run("history-growth", history_rows=3, history_ratio=2)
    [finding] = [f for f in findings if f.data.get("model") == "shop.Customer"]
    assert finding.status == ACTION
    assert finding.data["rows"] == 6 and finding.data["live"] == 1
    assert "Add a retention policy targeting" in finding.advice
    assert "ignore_changes_to" in finding.advice


# The command --------------------------------------------------------------------------------


def test_command_exits_1_when_action_needed(verified_backup):
    """Something needs action (the ledger was never verified): exit status 1, with advice."""
    out = StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("doctor", stdout=out)
    assert raised.value.returncode == 1
    assert "1 finding(s) need action: ledger-verification." in str(raised.value)
    report = out.getvalue()
    assert "ACTION   ledger-verification" in report
    assert "What to do:" in report and "verify_ledger" in report


def test_command_exits_0_when_healthy(verified_backup):
    """Nothing needs action: the command returns normally (exit 0) and says so."""
    ledger_verify(actor=None, reason="test")
    out = StringIO()
    call_command("doctor", stdout=out)
    report = out.getvalue()
    assert "Nothing needs action." in report
    assert "ok       soft-delete-index" in report
    assert "ok       backups" in report


def test_command_json(db):
    """--json prints every finding for machines, and still exits 1 on action."""
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("doctor", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["action_needed"] is True
    assert report["thresholds"]["dead_tuples"] == 10_000
    checks = [f["check"] for f in report["findings"]]
    assert checks[0] == "soft-delete-index" and "ledger-verification" in checks
    [ledger] = [f for f in report["findings"] if f["check"] == "ledger-verification"]
    assert ledger["status"] == ACTION and ledger["advice"]


def test_command_refuses_negative_threshold(db):
    """A negative threshold is a usage error, not a report."""
    with pytest.raises(CommandError, match="--ledger-days cannot be negative"):
        call_command("doctor", "--ledger-days", "-1", stdout=StringIO())


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--ledger-days", "nan"),
        ("--ledger-days", "inf"),
        ("--dead-tuple-ratio", "nan"),
        ("--transaction-minutes", "infinity"),
        ("--dead-tuples", "-1"),
        ("--history-rows", "-3"),
    ],
)
def test_command_refuses_a_threshold_that_is_no_finite_number(db, option, value):
    """NaN compares false with everything and infinity never triggers: both would silence
    a check, so they are refused like a negative threshold, before any check runs."""
    out = StringIO()
    with pytest.raises(CommandError, match=f"{option} (must be a finite number|cannot be)"):
        call_command("doctor", option, value, stdout=out)
    assert out.getvalue() == ""
