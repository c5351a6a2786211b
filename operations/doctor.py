"""The doctor: read-only checks of the live database, each saying what to do about it.
(One write: purge runs still marked running whose process is gone are closed as interrupted,
as the next run of their policy would close them.)

Each check is a function of the `Thresholds` returning `Finding`s: "ok", "action" (something
needs doing; `advice` says what) or "skipped" (with the reason in `summary`). `doctor_run`
runs them; `manage.py doctor` prints them and exits 1 when any finding needs action.

It lives in the versions app because the apps are what a project installs (`project/` is
this repository's host project only) and the command ships here; like the history pages it
reads the retention app's models and selectors when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from compliance.config import export_dir
from compliance.selectors import export_orphans
from retention import config as retention_config
from retention.models import PurgeRun, RetentionPolicy
from retention.selectors import policy_scope, policy_targets, policy_validate
from retention.services import runs_close_interrupted
from retention.softdelete import NOT_DELETED, is_soft_delete_model
from versions.history import history_options
from versions.models import LedgerCheckpoint, LedgerEntry
from versions.setbased import history_model_of

from . import config
from .models import Backup, BackupCheck, ErasureReplayMatch

__all__ = [
    "ACTION",
    "CHECKS",
    "OK",
    "SKIPPED",
    "THRESHOLD_HELP",
    "Check",
    "Finding",
    "TableStats",
    "Thresholds",
    "backups_check",
    "dead_tuples_finding",
    "doctor_run",
]

OK, ACTION, SKIPPED = "ok", "action", "skipped"


@dataclass(frozen=True)
class Finding:
    """What one check found about one thing (a table, a session, a policy) or about all."""

    check: str
    status: str  # OK, ACTION or SKIPPED
    summary: str
    advice: str = ""
    data: dict = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Thresholds:
    """When a check asks for action; each field is the setting DOCTOR_<FIELD> by default."""

    dead_tuple_ratio: float
    dead_tuples: int
    transaction_minutes: float
    lock_wait_seconds: float
    purge_stale_days: float
    purge_running_hours: float
    policy_pending_days: float
    ledger_days: float
    backup_days: float
    backup_verify_days: float
    backup_drill_days: float
    history_ratio: float
    history_rows: int

    @classmethod
    def from_settings(cls, **overrides) -> Thresholds:
        """The settings' values, with the `overrides` that are not None."""
        values = {f.name: config.doctor_threshold(f"DOCTOR_{f.name.upper()}") for f in fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


#: What each threshold means (the command's option help and docs/doctor.md say the same).
THRESHOLD_HELP = {
    "dead_tuple_ratio": "table-bloat: dead rows above this fraction of the live rows",
    "dead_tuples": "table-bloat: ... and above this many dead rows",
    "transaction_minutes": "long-transactions: transactions open longer than this",
    "lock_wait_seconds": "lock-waits: sessions waiting for a lock longer than this",
    "purge_stale_days": "purge-backlog: an enabled policy that has not run for this long",
    "purge_running_hours": "purge-backlog: a run still marked running after this long died",
    "policy_pending_days": "purge-backlog: a policy change awaiting approval longer than this",
    "ledger_days": "ledger-verification: newest passed verification older than this",
    "backup_days": "backups: newest backup older than this",
    "backup_verify_days": "backups: newest passed verification of a backup older than this",
    "backup_drill_days": "backups: newest passed restore drill older than this",
    "history_ratio": "history-growth: history rows per live row above this",
    "history_rows": "history-growth: ... and history rows above this",
}


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Thresholds], list[Finding]]
    description: str
    postgres_only: bool = False


def doctor_run(*, thresholds: Thresholds, names=None) -> list[Finding]:
    """Run the checks (all, or those `names` lists) and return their findings in order.

    A check that fails with a database error (say, the role may not read pg_stat_activity)
    is an "action" naming the error: a monitor must not read it as healthy.
    """
    findings = []
    for check in CHECKS:
        if names and check.name not in names:
            continue
        if check.postgres_only and connection.vendor != "postgresql":
            findings.append(
                Finding(check.name, SKIPPED, f"PostgreSQL only; this database is {_vendor()}.")
            )
            continue
        try:
            with transaction.atomic():  # a savepoint: a failed statement spoils nothing else
                findings.extend(check.run(thresholds))
        except DatabaseError as exc:
            findings.append(
                Finding(
                    check.name,
                    ACTION,
                    f"The check could not run: {str(exc).strip()}",
                    "Run the doctor as a database role that may read the statistics views "
                    "(PostgreSQL: GRANT pg_monitor TO <role>), with every migration applied "
                    "(python manage.py migrate).",
                )
            )
    return findings


# Formatting ------------------------------------------------------------------------------


def _vendor() -> str:
    return connection.display_name


def _duration(seconds: float) -> str:
    """A short human duration: 45 s, 7 min, 3 h 20 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def _ago(moment: datetime | None, now: datetime) -> str:
    return "never" if moment is None else f"{_duration((now - moment).total_seconds())} ago"


def _all_ok(check: str, summary: str) -> list[Finding]:
    """The single finding of a check that found nothing to do."""
    return [Finding(check, OK, summary)]


def _fresh_statistics(cursor) -> None:
    """Drop PostgreSQL's per-transaction snapshot of the statistics views, so that a check run
    inside a longer transaction reads them as they are now."""
    cursor.execute("SELECT pg_stat_clear_snapshot()")


def _statistics(sql: str, params=()) -> list[tuple]:
    """The rows of a query of PostgreSQL's statistics views, as they are now."""
    with connection.cursor() as cursor:
        _fresh_statistics(cursor)
        cursor.execute(sql, params)
        return cursor.fetchall()


# A quoted string (also one cut off at the end of a truncated query) or a number.
_LITERAL = re.compile(r"'(?:[^']|'')*'|'[^']*$|\b\d+(?:\.\d+)?\b")


def _query(text: str | None) -> str:
    """The start of a query as one line, its values masked. pg_stat_activity keeps a query
    as sent, and Django sends its parameters inside the text (client-side binding): an
    email or a name there is personal data, which an operator's terminal and a monitoring
    log must not receive."""
    return _LITERAL.sub("?", " ".join((text or "").split()))[:80]


# 1. Soft-delete models without their partial index ---------------------------------------


def _normalised(predicate: str) -> str:
    return " ".join(re.sub(r'[()"`\[\]]', " ", predicate).lower().split())


def _partial_indexes(cursor, table: str) -> dict[str, str] | None:
    """Index name → predicate of the table's valid partial indexes; None without the table."""
    if connection.vendor == "postgresql":
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [connection.ops.quote_name(table)])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(
            "SELECT i.relname, pg_get_expr(x.indpred, x.indrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = to_regclass(%s) AND x.indpred IS NOT NULL AND x.indisvalid",
            [connection.ops.quote_name(table)],
        )
        return dict(cursor.fetchall())
    cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    if cursor.fetchone() is None:
        return None
    cursor.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
        "AND sql IS NOT NULL",
        [table],
    )
    found = {}
    for name, sql in cursor.fetchall():
        where = re.search(r"\bWHERE\b(.*)$", sql, re.IGNORECASE | re.DOTALL)
        if where:
            found[name] = where.group(1)
    return found


def soft_delete_index_check(thresholds: Thresholds) -> list[Finding]:
    """Every soft-delete table has an index WHERE deleted_at IS NULL (live-row queries)."""

    name = "soft-delete-index"
    if connection.vendor not in ("postgresql", "sqlite"):
        return [Finding(name, SKIPPED, f"Reads PostgreSQL and SQLite only, not {_vendor()}.")]
    models = [
        m
        for m in apps.get_models()
        if is_soft_delete_model(m) and m._meta.managed and not m._meta.proxy
    ]
    findings = []
    with connection.cursor() as cursor:
        for model in models:
            table, label = model._meta.db_table, model._meta.label
            column = model._meta.get_field("deleted_at").column
            indexes = _partial_indexes(cursor, table)
            declared = [
                item.name
                for item in [*model._meta.indexes, *model._meta.constraints]
                if getattr(item, "condition", None) == NOT_DELETED
            ]
            if indexes is None:
                findings.append(
                    Finding(
                        name,
                        ACTION,
                        f"{label}: its table {table} does not exist.",
                        "Apply the migrations: python manage.py migrate.",
                        {"model": label, "table": table},
                    )
                )
            elif not any(_normalised(p) == f"{column} is null" for p in indexes.values()):
                findings.append(_missing_index(name, model, table, column, declared))
    return findings or _all_ok(
        name,
        f"{len(models)} soft-delete table(s), each with a partial index WHERE deleted_at IS NULL.",
    )


def _missing_index(name, model, table, column, declared) -> Finding:
    label, app = model._meta.label, model._meta.app_label
    summary = (
        f"{label}: no index of {table} has the condition {column} IS NULL, so queries of "
        "live rows (objects, the admin, related managers) read deleted rows too."
    )
    if declared:
        advice = (
            f"Its Meta declares {', '.join(declared)}, but the database lacks it: dropped by "
            f"hand, or a migration not applied. See python manage.py showmigrations {app}; "
            "if every migration is applied, recreate it with the SQL that python manage.py "
            f"sqlmigrate {app} <migration> prints for the migration that added it."
        )
    else:
        advice = (
            f"Add to {label}'s Meta.indexes models.Index(fields=[<the column live rows are "
            'filtered or sorted by>], condition=Q(deleted_at__isnull=True), name="...") '
            "(retention.softdelete.NOT_DELETED is that condition), then python manage.py "
            f"makemigrations {app} and migrate. On a large PostgreSQL table build it without "
            "blocking writes: AddIndexConcurrently in a migration with atomic = False."
        )
    return Finding(name, ACTION, summary, advice, {"model": label, "table": table})


# 2. Dead rows (table bloat) --------------------------------------------------------------


@dataclass(frozen=True)
class TableStats:
    """A table's row statistics as pg_stat_user_tables keeps them (estimates)."""

    table: str
    live: int
    dead: int
    last_vacuum: datetime | None = None
    last_autovacuum: datetime | None = None


def dead_tuples_finding(stats: TableStats, thresholds: Thresholds, now: datetime):
    """An "action" Finding when the table's dead rows pass both thresholds, else None."""
    if stats.dead <= thresholds.dead_tuples:
        return None
    if stats.dead <= thresholds.dead_tuple_ratio * stats.live:
        return None
    vacuums = [
        (moment, kind)
        for moment, kind in ((stats.last_vacuum, "VACUUM"), (stats.last_autovacuum, "autovacuum"))
        if moment is not None
    ]
    if vacuums:
        moment, kind = max(vacuums)
        vacuumed = f"last vacuumed {_ago(moment, now)} ({kind})"
    else:
        vacuumed = "never vacuumed"
    share = f"{stats.dead / stats.live:.0%}" if stats.live else "no live rows"
    table = stats.table
    return Finding(
        "table-bloat",
        ACTION,
        f"{table}: {stats.dead:,} dead rows for {stats.live:,} live ({share}); {vacuumed}.",
        f"Run VACUUM (ANALYZE) {table}; it runs alongside reads and writes and makes the "
        "space reusable. If dead rows keep piling up, autovacuum does not keep pace with this "
        "table: make it start sooner there, e.g. ALTER TABLE "
        f"{table} SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = "
        "1000); and look for long transactions (long-transactions), which keep VACUUM from "
        "removing rows. VACUUM FULL returns the space to the operating system, but it takes "
        "an ACCESS EXCLUSIVE lock: every read and write of the table waits until it ends "
        "(minutes to hours on a big table), and it needs room for a second copy. Run it only "
        "in a maintenance window. A pg_dump backup does not need it: a dump holds rows, not "
        "pages, so dead rows do not make it larger.",
        {
            "table": table,
            "live": stats.live,
            "dead": stats.dead,
            "last_vacuum": stats.last_vacuum and stats.last_vacuum.isoformat(),
            "last_autovacuum": stats.last_autovacuum and stats.last_autovacuum.isoformat(),
        },
    )


def table_bloat_check(thresholds: Thresholds) -> list[Finding]:
    """Tables (history tables included) whose dead rows outgrow their live rows."""
    rows = _statistics(
        "SELECT CASE WHEN schemaname = 'public' THEN relname "
        "ELSE schemaname || '.' || relname END, "
        "n_live_tup, n_dead_tup, last_vacuum, last_autovacuum "
        "FROM pg_stat_user_tables ORDER BY n_dead_tup DESC, relname"
    )
    rows = [TableStats(*row) for row in rows]
    now = timezone.now()
    findings = [f for f in (dead_tuples_finding(s, thresholds, now) for s in rows) if f]
    return findings or _all_ok(
        "table-bloat",
        f"None of {len(rows)} tables has more than {thresholds.dead_tuples:,} dead rows "
        f"and {thresholds.dead_tuple_ratio:.0%} of its live rows.",
    )


# 3. Long transactions and lock waits -----------------------------------------------------

_SESSION_ADVICE = (
    "A transaction holds its locks until it ends, and while it is open VACUUM cannot remove "
    "rows that died after it began. An 'idle in transaction' session began a transaction "
    "and stopped: its client is stuck or never commits."
)


def long_transactions_check(thresholds: Thresholds) -> list[Finding]:
    """Sessions of this database whose transaction has been open too long."""
    rows = _statistics(
        "SELECT pid, state, EXTRACT(EPOCH FROM clock_timestamp() - xact_start), usename, "
        "application_name, query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' AND xact_start IS NOT NULL "
        "AND xact_start <= clock_timestamp() - make_interval(secs => %s) "
        "ORDER BY xact_start",
        [thresholds.transaction_minutes * 60],
    )
    findings = []
    for pid, state, seconds, user, application, query in rows:
        who = f"user {user}" + (f", {application}" if application else "")
        findings.append(
            Finding(
                "long-transactions",
                ACTION,
                f"pid {pid} ({state}) has had a transaction open for "
                f'{_duration(seconds)} ({who}): "{_query(query)}"',
                f"{_SESSION_ADVICE} See what it does: SELECT * FROM pg_stat_activity WHERE "
                f"pid = {pid}; and what it holds: SELECT * FROM pg_locks WHERE pid = {pid}; "
                f"Stop its running query: SELECT pg_cancel_backend({pid}); end the session, "
                f"rolling its transaction back: SELECT pg_terminate_backend({pid}); To keep "
                "it from recurring, set idle_in_transaction_session_timeout (and "
                "statement_timeout) for the application's role.",
                {"pid": pid, "state": state, "seconds": float(seconds), "user": user},
            )
        )
    return findings or _all_ok(
        "long-transactions",
        f"No transaction open longer than {thresholds.transaction_minutes:g} min.",
    )


def lock_waits_check(thresholds: Thresholds) -> list[Finding]:
    """Sessions of this database waiting for a lock, and the sessions that block them."""
    waiting = _statistics(
        "SELECT pid, state, EXTRACT(EPOCH FROM clock_timestamp() - query_start), "
        "wait_event, pg_blocking_pids(pid), query FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND wait_event_type = 'Lock' "
        "AND query_start <= clock_timestamp() - make_interval(secs => %s) "
        "ORDER BY query_start",
        [thresholds.lock_wait_seconds],
    )
    blockers = sorted({pid for row in waiting for pid in row[4]})
    holding = _statistics(
        "SELECT pid, state, EXTRACT(EPOCH FROM clock_timestamp() - xact_start), query "
        "FROM pg_stat_activity WHERE pid = ANY(%s)",
        [blockers],
    )
    holding = {row[0]: row[1:] for row in holding}
    findings = []
    for pid, state, seconds, event, blocked_by, query in waiting:
        described = []
        for blocker in blocked_by:
            b_state, b_seconds, b_query = holding.get(blocker, ("gone", None, ""))
            open_for = f", transaction open {_duration(b_seconds)}" if b_seconds else ""
            described.append(f'pid {blocker} ({b_state}{open_for}): "{_query(b_query)}"')
        first = blocked_by[0] if blocked_by else "<pid>"
        findings.append(
            Finding(
                "lock-waits",
                ACTION,
                f"pid {pid} ({state}) has waited {_duration(seconds)} for a lock ({event}), "
                f"blocked by pid {', '.join(map(str, blocked_by)) or 'none listed'}: "
                f'"{_query(query)}"',
                f"Blocking: {'; '.join(described) or 'none listed (the lock was freed)'}. "
                "A lock is held until the holder's transaction ends. If the holder is stuck "
                f"(idle in transaction), end it: SELECT pg_terminate_backend({first}); or "
                f"cancel its running query: SELECT pg_cancel_backend({first}); Migrations and "
                "bulk changes should set lock_timeout so they fail fast instead of queueing "
                "everyone behind them, and change a large table in batches (the purge's "
                "batch engine does: key ranges, FOR UPDATE SKIP LOCKED).",
                {"pid": pid, "seconds": float(seconds), "blocked_by": list(blocked_by)},
            )
        )
    return findings or _all_ok(
        "lock-waits",
        f"No session has waited longer than {thresholds.lock_wait_seconds:g} s for a lock.",
    )


# 4. Purges falling behind ----------------------------------------------------------------


def purge_backlog_check(thresholds: Thresholds) -> list[Finding]:
    """Enabled policies that fail, stall, stopped running, or leave a growing backlog; and
    every run interrupted within PURGE_STALE_DAYS (closing first, as the next run would,
    the runs still marked running whose process is gone)."""

    now = timezone.now()
    runs_close_interrupted()
    interrupted = PurgeRun.objects.filter(
        status=PurgeRun.Status.INTERRUPTED,
        started_at__gte=now - timedelta(days=thresholds.purge_stale_days),
    ).select_related("policy")
    findings = [_interrupted_finding(run, now) for run in interrupted.order_by("started_at")]
    waiting = RetentionPolicy.objects.filter(
        pending_change__isnull=False,
        proposed_at__lt=now - timedelta(days=thresholds.policy_pending_days),
    ).select_related("proposed_by")
    findings += [_pending_finding(policy, now) for policy in waiting.order_by("proposed_at")]
    policies = list(RetentionPolicy.objects.filter(enabled=True).select_related("target"))
    findings += [f for policy in policies if (f := _policy_finding(policy, thresholds, now))]
    return findings or _all_ok(
        "purge-backlog",
        f"{len(policies)} enabled polic{'y' if len(policies) == 1 else 'ies'}: none "
        f"failed, stalled, went {thresholds.purge_stale_days:g} d without a run, or fell "
        "behind.",
    )


def _interrupted_finding(run, now: datetime) -> Finding:
    return Finding(
        "purge-backlog",
        ACTION,
        f'Purge run #{run.pk} of policy "{run.policy.name}" (started '
        f"{_ago(run.started_at, now)}) was interrupted after {run.batches:,} batch(es), "
        f"{run.purged:,} rows purged and {run.archived:,} archived: {run.error}",
        "Its committed batches are in the ledger and the next run resumes after them. Find "
        "what stopped the process (out-of-memory killer, a restart during a deploy, a task "
        "time limit) in the system's log at that time.",
        {"policy": run.policy.name, "run": run.pk, "status": run.status},
    )


def _pending_finding(policy, now: datetime) -> Finding:
    proposer = policy.proposed_by.get_username() if policy.proposed_by else "the system"
    effect = (
        "purges run the values in effect meanwhile"
        if policy.enabled
        else "the policy is not in effect until then"
    )
    return Finding(
        "purge-backlog",
        ACTION,
        f'Policy "{policy.name}": a change proposed by {proposer} '
        f"{_ago(policy.proposed_at, now)} awaits approval by a second officer ({effect}).",
        "Have another officer approve it (Retention policies, Approve pending changes), or "
        "save the policy with the values in effect to withdraw the change.",
        {"policy": policy.name, "proposed_at": policy.proposed_at.isoformat()},
    )


def _policy_finding(policy, thresholds: Thresholds, now: datetime) -> Finding | None:

    name, quoted = "purge-backlog", f'"{policy.name}"'
    try:
        policy_validate(policy)
    except ValidationError as exc:
        return Finding(
            name,
            ACTION,
            f"Policy {quoted} cannot run as written: {' '.join(exc.messages)}",
            "Correct it in the admin (Retention policies); purges refuse it until then.",
            {"policy": policy.name},
        )
    scope = policy_scope(policy, now=now)
    if scope is None:
        return None  # it keeps rows forever: nothing can fall behind
    eligible = scope.eligible.count()  # what a purge would take now, holds left out
    runs = policy.runs.exclude(status=PurgeRun.Status.DRY_RUN)  # dry runs remove nothing
    last = runs.order_by("-started_at", "-id").first()
    stale = timedelta(days=thresholds.purge_stale_days)
    problems, advice = [], []
    if last is None:
        if policy.created_at < now - stale:
            problems.append(f"it has never run (created {_ago(policy.created_at, now)})")
    else:
        if last.status == PurgeRun.Status.FAILED:
            problems.append(f"its last run ({_ago(last.started_at, now)}) failed: {last.error}")
            advice.append("Read the error in the run log (Purge runs) and remove its cause.")
        running_for = (now - last.started_at).total_seconds()
        if last.status == PurgeRun.Status.RUNNING and running_for > (
            thresholds.purge_running_hours * 3600
        ):
            problems.append(
                f"its last run started {_ago(last.started_at, now)} and never finished (the "
                "worker or command running it was stopped)"
            )
        if last.started_at < now - stale:
            problems.append(
                f"it has not run for {_duration((now - last.started_at).total_seconds())}"
            )
        if last.status != PurgeRun.Status.RUNNING and last.backlog > 0 and eligible > last.eligible:
            problems.append(
                f"its backlog grows: {eligible:,} rows eligible now, {last.eligible:,} when "
                f"its last run started, which left {last.backlog:,}"
            )
            advice.append(
                "Purging removes less than expires: raise the batch size (--batch-size, "
                f"RETENTION_BATCH_SIZE, now {retention_config.batch_size():,}) or the time "
                "budget (--max-seconds), or fan the policy out over more workers "
                "(retention.tasks.purge_scheduled(workers=N); they share its key ranges)."
            )
    if not problems:
        return None
    if last is None or last.started_at < now - stale:
        advice.append(
            "Check that Celery beat runs retention-purge-daily "
            "(retention.tasks.purge_scheduled) and a worker consumes it, or that cron runs "
            "purge_expired."
        )
    if last is not None and last.held:
        advice.append(
            f"{last.held:,} rows were held at the last run: holds keep rows out of every "
            "purge; release those that no longer apply (Legal holds)."
        )
    return Finding(
        name,
        ACTION,
        f"Policy {quoted}: {'; '.join(problems)}.",
        f"Run it now: python manage.py purge_expired --policy {quoted} (add --max-seconds to "
        "bound it; the next run goes on where it stopped). " + " ".join(advice),
        {
            "policy": policy.name,
            "eligible": eligible,
            "last_run": last and last.pk,
            "last_status": last and last.status,
        },
    )


# 5. Backups ------------------------------------------------------------------------------


def backups_check(thresholds: Thresholds) -> list[Finding]:
    """A recent backup exists, and a backup was verified and restore-drilled recently, with
    no check of a backup still on disk failing since."""

    now = timezone.now()
    live = Backup.objects.filter(deleted_at__isnull=True)
    newest = live.order_by("-created_at").first()
    if newest is None:
        return [
            Finding(
                "backups",
                ACTION,
                "The backup catalogue holds no backup.",
                "Run python manage.py backup, and check that Celery beat runs backup-daily, "
                "backup-weekly and backup-monthly (docs/backups.md).",
            )
        ]
    findings = []
    if newest.created_at < now - timedelta(days=thresholds.backup_days):
        findings.append(
            Finding(
                "backups",
                ACTION,
                f"The newest backup, {newest.file}, was made {_ago(newest.created_at, now)}, "
                f"more than {thresholds.backup_days:g} d ago.",
                "Run python manage.py backup; check that beat runs backup-daily and a worker "
                "consumes it, and that BACKUP_DIR has room (the task log says why it failed).",
                {"newest": newest.file},
            )
        )
    passed = BackupCheck.objects.filter(ok=True, backup__in=live)
    for kinds, days, what, command in [
        # A drill verifies the checksum and the archive first: it counts as a verification.
        (BackupCheck.Kind.values, thresholds.backup_verify_days, "verified", "verify_backup"),
        ([BackupCheck.Kind.DRILL], thresholds.backup_drill_days, "restore-drilled",
         "verify_backup --drill"),
    ]:  # fmt: skip
        last = passed.filter(kind__in=kinds).order_by("-checked_at").first()
        if last is None or last.checked_at < now - timedelta(days=days):
            when = "never" if last is None else _ago(last.checked_at, now)
            findings.append(
                Finding(
                    "backups",
                    ACTION,
                    f"No backup on disk was {what} successfully in the last {days:g} d "
                    f"(last: {when}).",
                    f"Run python manage.py {command} --latest; check that beat runs "
                    "backup-drill-weekly. A backup never restored is not known to restore.",
                    {"checks": list(kinds), "last": last and last.checked_at.isoformat()},
                )
            )
    failed = [
        backup
        for backup in live.order_by("-created_at")[:50]
        if (check := backup.checks.order_by("-checked_at", "-id").first()) and not check.ok
    ]
    if failed:
        findings.append(
            Finding(
                "backups",
                ACTION,
                f"{len(failed)} backup(s) failed their last check: "
                f"{', '.join(b.file for b in failed[:5])}.",
                "Read the check's detail on the backup's admin page. A checksum mismatch means "
                "the file changed: never restore it, make a new backup and find out what "
                "wrote to BACKUP_DIR.",
                {"failed": [b.file for b in failed]},
            )
        )
    return findings or _all_ok(
        "backups",
        f"Newest backup {newest.file} made {_ago(newest.created_at, now)}; verified and "
        "drilled recently.",
    )


# 6. The ledger's verification ------------------------------------------------------------


def ledger_verification_check(thresholds: Thresholds) -> list[Finding]:
    """The newest passed verification of the ledger is recent."""

    now = timezone.now()
    newest = (
        LedgerCheckpoint.objects.filter(kind=LedgerCheckpoint.Kind.VERIFICATION)
        .order_by("-id")
        .first()
    )
    limit = timedelta(days=thresholds.ledger_days)
    broken = newest is not None and _verified_head_problem(newest)
    if broken:
        return [
            Finding(
                "ledger-verification",
                ACTION,
                f"The ledger was verified {_ago(newest.created_at, now)} up to entry "
                f"#{newest.entry_id}, but {broken}: entries were deleted or altered since.",
                "Run python manage.py verify_ledger: it names the first broken or missing "
                "entry. Treat it as an incident: restore the ledger tables from a backup made "
                "before it and find who had the tables' owner's rights.",
                {"verified_head": newest.entry_id, "problem": broken},
            )
        ]
    if newest is not None and newest.created_at >= now - limit:
        return [
            Finding(
                "ledger-verification",
                OK,
                f"The ledger was verified {_ago(newest.created_at, now)}, up to entry "
                f"#{newest.entry_id}.",
            )
        ]
    if newest is None:
        summary = "The ledger has never been verified."
    else:
        summary = (
            f"The ledger was last verified {_ago(newest.created_at, now)} "
            f"({newest.created_at:%Y-%m-%d %H:%M} UTC), more than "
            f"{thresholds.ledger_days:g} d ago."
        )
    return [
        Finding(
            "ledger-verification",
            ACTION,
            summary,
            "Run python manage.py verify_ledger: it exits 1 and names the first broken entry "
            "if the chain was altered. Only a verification that passes is recorded, so a "
            "scheduled one that fails shows here as missing: read the versions.tasks log. "
            "Check that Celery beat runs ledger-verify-daily "
            f"(versions.tasks.ledger_verify_scheduled){_beat_state(now)}.",
            {"last_verified": newest and newest.created_at.isoformat()},
        )
    ]


def _verified_head_problem(checkpoint) -> str:
    """What is wrong with the head a verification recorded ("" when nothing): the entry must
    still exist with the hash recorded, and as many entries as its sequence number must
    lead up to it (one indexed count)."""

    if checkpoint.entry_id == 0:
        return ""
    entry = LedgerEntry.objects.filter(pk=checkpoint.entry_id).values("hash", "seq").first()
    if entry is None:
        return f"entry #{checkpoint.entry_id} no longer exists"
    if entry["hash"] != checkpoint.head:
        return f"entry #{checkpoint.entry_id} no longer has the hash recorded then"
    if entry["seq"] is not None:
        count = LedgerEntry.objects.filter(pk__lte=checkpoint.entry_id).count()
        if count != entry["seq"]:
            return (
                f"{entry['seq'] - count} of the {entry['seq']} entries up to it are missing"
                if count < entry["seq"]
                else f"{count} entries lead up to it where its number says {entry['seq']}"
            )
    return ""


def _beat_state(now: datetime) -> str:
    """What django-celery-beat's table says of the scheduled verification, if installed."""
    if not apps.is_installed("django_celery_beat"):
        return ""

    task = PeriodicTask.objects.filter(task="versions.tasks.ledger_verify_scheduled").first()
    if task is None:
        return "; beat has not loaded it yet: start celery beat"
    state = "enabled" if task.enabled else "DISABLED in the admin (Periodic tasks)"
    return f"; its schedule is {state}, last sent {_ago(task.last_run_at, now)}"


# 7. History growth -----------------------------------------------------------------------


def _row_estimate(cursor, table: str) -> int:
    """Rows of `table`: PostgreSQL's planner estimate (no scan); SQLite counts them."""
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT c.reltuples, s.n_live_tup FROM pg_class c "
            "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = to_regclass(%s)",
            [connection.ops.quote_name(table)],
        )
        row = cursor.fetchone()
        if row is None:
            return 0
        reltuples, live = row
        # -1: never analysed yet; the statistics collector's count is the next best.
        return int(reltuples) if reltuples >= 0 else int(live or 0)
    cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
    return cursor.fetchone()[0]


def history_growth_check(thresholds: Thresholds) -> list[Finding]:
    """History tables far larger than the tables they record."""
    tracked = [
        m
        for m in apps.get_models()
        if history_model_of(m) is not None and m._meta.managed and not m._meta.proxy
    ]
    findings = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            _fresh_statistics(cursor)
        for model in tracked:
            history = history_model_of(model)
            live = _row_estimate(cursor, model._meta.db_table)
            rows = _row_estimate(cursor, history._meta.db_table)
            if rows > thresholds.history_rows and rows > thresholds.history_ratio * max(live, 1):
                findings.append(_history_finding(model, history, live, rows))
    how = "planner estimates" if connection.vendor == "postgresql" else "counted"
    return findings or _all_ok(
        "history-growth",
        f"No history table of {len(tracked)} has more than {thresholds.history_rows:,} "
        f"rows and {thresholds.history_ratio:g} per live row ({how}).",
    )


def _history_finding(model, history, live: int, rows: int) -> Finding:

    label = model._meta.label
    per_row = f"{rows / live:,.0f} per live row" if live else "no live rows"
    policies = RetentionPolicy.objects.filter(target=ContentType.objects.get_for_model(history))
    if history not in policy_targets():
        retention = (
            "No retention policy can target it, as its model is not in the personal-data "
            "registry: declare the model in a privacy.py, or remove old versions with "
            "simple-history's python manage.py clean_old_history --days N --auto"
        )
    elif policies:
        retention = "; ".join(
            f'policy "{p.name}" targets it ({p.period_days or "no"} days'
            f"{'' if p.enabled else ', disabled'}): shorten its period or see its backlog "
            "(purge-backlog)"
            for p in policies
        )
    else:
        retention = (
            f'Add a retention policy targeting "{history._meta.verbose_name}" '
            f"({history._meta.label}; its period counts from history_date), e.g. 365 days, "
            "action Delete permanently: purge_expired then removes old versions in batches"
        )
    options = history_options(model)
    if options is not None and options.unchanged_saves:
        saves = (
            "It records every save (TrackedHistory(unchanged_saves=True)): drop that, so a "
            "save that changes nothing writes no version."
        )
    else:
        saves = (
            "A save that changes nothing writes no version already; a field that changes on "
            "every save without meaning (a timestamp, a counter) belongs in "
            "TrackedHistory(ignore_changes_to=[...]), and code that saves in a loop should "
            "batch its changes (bulk_update_with_context) and save once per real change."
        )
    return Finding(
        "history-growth",
        ACTION,
        f"{label}: about {rows:,} history rows for {live:,} live ({per_row}).",
        f"{retention}. {saves}",
        {"model": label, "history_table": history._meta.db_table, "rows": rows, "live": live},
    )


def export_orphans_check(thresholds: Thresholds) -> list[Finding]:
    """Files in the export directory that no finished export keeps (an erased subject's
    ZIP left by a crash, a file with no row, a stale .part): personal data nobody tracks."""

    orphans = export_orphans()
    if not orphans:
        return _all_ok(
            "export-orphans", f"Every file in {export_dir()} belongs to a finished export."
        )
    return [
        Finding(
            "export-orphans",
            ACTION,
            f"{len(orphans)} file(s) in {export_dir()} belong to no finished export: they may "
            "hold the personal data of an erased or expired export.",
            "Run the daily clean-up now (celery call compliance.tasks.exports_expire_scheduled, "
            "or let beat run it): it deletes them. Check that beat runs it every day.",
            data={"files": [path.name for path in orphans]},
        )
    ]


# 9. Erasure replay matches -----------------------------------------------------------------


def erasure_replay_matches_check(thresholds: Thresholds) -> list[Finding]:
    """Subjects an erasure replay matched by an email alone, still waiting for an officer
    to confirm (erase) or dismiss them."""

    pending = ErasureReplayMatch.objects.filter(status=ErasureReplayMatch.Status.PENDING)
    count = pending.count()
    if not count:
        return _all_ok("erasure-replay-matches", "No erasure replay match awaits a decision.")
    oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
    return [
        Finding(
            "erasure-replay-matches",
            ACTION,
            f"{count} subject(s) matched by an email alone in an erasure replay await an "
            f"officer's decision, the oldest listed {_ago(oldest, timezone.now())}.",
            "In the admin (Versions › Erasure replay matches), confirm or dismiss each: a "
            "confirmed match is erased; until then an erased person's data may be live again.",
            {"pending": count},
        )
    ]


CHECKS = [
    Check(
        "soft-delete-index",
        soft_delete_index_check,
        "Every soft-delete model's table has an index WHERE deleted_at IS NULL (PostgreSQL: "
        "pg_index; SQLite: sqlite_master). Without one, queries of live rows read the deleted "
        "ones too.",
    ),
    Check(
        "table-bloat",
        table_bloat_check,
        "Tables (history tables included) with more than DEAD_TUPLES dead rows and more than "
        "DEAD_TUPLE_RATIO of their live rows (pg_stat_user_tables), with their last vacuum.",
        postgres_only=True,
    ),
    Check(
        "long-transactions",
        long_transactions_check,
        "Sessions of this database with a transaction open longer than TRANSACTION_MINUTES "
        "(pg_stat_activity): pid, state, age, query.",
        postgres_only=True,
    ),
    Check(
        "lock-waits",
        lock_waits_check,
        "Sessions waiting longer than LOCK_WAIT_SECONDS for a lock, and the sessions blocking "
        "them (pg_blocking_pids).",
        postgres_only=True,
    ),
    Check(
        "purge-backlog",
        purge_backlog_check,
        "Every purge run interrupted (its process gone: closed here if still marked running) "
        "in PURGE_STALE_DAYS; enabled retention policies whose last run failed or never "
        "finished (RUNNING after PURGE_RUNNING_HOURS), that have not run for "
        "PURGE_STALE_DAYS, or whose eligible rows now outnumber those at their last run, "
        "which left a backlog; policy changes awaiting approval longer than "
        "POLICY_PENDING_DAYS.",
    ),
    Check(
        "backups",
        backups_check,
        "No backup made in BACKUP_DAYS, none verified in BACKUP_VERIFY_DAYS or restore-drilled "
        "in BACKUP_DRILL_DAYS, or a backup on disk whose last check failed.",
    ),
    Check(
        "ledger-verification",
        ledger_verification_check,
        "The ledger's newest passed verification (verify_ledger, or the daily beat task) is "
        "younger than LEDGER_DAYS; never verified asks for action too.",
    ),
    Check(
        "history-growth",
        history_growth_check,
        "History tables with more than HISTORY_ROWS rows and more than HISTORY_RATIO per live "
        "row (PostgreSQL: the planner's estimate, no COUNT; SQLite: counted).",
    ),
    Check(
        "export-orphans",
        export_orphans_check,
        "Files in COMPLIANCE_EXPORT_DIR that no finished export keeps (no row, or its export "
        "expired, failed or was erased), older than ten minutes; the daily clean-up deletes "
        "them.",
    ),
    Check(
        "erasure-replay-matches",
        erasure_replay_matches_check,
        "Subjects an erasure replay after a restore matched by an email alone, still waiting "
        "for an officer to confirm or dismiss them.",
    ),
]
