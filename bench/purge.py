"""Purge and soft delete at database speed, each against its one-statement baseline.

Every round rebuilds the same rows (a fixed random seed) before each variant, and the
variants alternate their order round by round. Throughput is rows per second of the whole
operation, transactions included; each ratio is ours over the baseline, higher is better.

- ``purge_plain`` (target >= 0.5x): a policy purging a table nothing else tracks (the history
  table of analytics events: ROWS rows, half older than the cutoff, interleaved at random)
  through the batch engine, against one ``DELETE … WHERE history_date < cutoff``. The
  median batch time is reported with it (``purge_batch``, target <= 100 ms).
- ``purge_tracked`` (target >= 150x): a policy purging TRACKED_ROWS analytics events, which
  records their deletion history set-based, against django-simple-history's own
  ``queryset.delete()`` (one history row per deleted object, through its signal), and the
  database's floor: the one raw statement that deletes the rows and writes their history.
- ``soft_delete`` (target >= 0.5x): ``Customer.objects.filter(…).delete()`` on SOFT_ROWS
  customers (one UPDATE per model and their history rows, set-based), against one plain
  ``UPDATE … SET deleted_at = now()``.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.utils import timezone

from retention.models import PolicyAction, PurgeRun, RetentionPolicy
from retention.services import policy_purge
from shop.models import AnalyticsEvent, Customer

from .harness import Config, Result, VariantStats, ratios

DESCRIPTION = "purge and soft delete (batch engine) vs one DELETE/UPDATE and stock delete()"
FULL = {"plain": 1_000_000, "tracked": 50_000, "soft": 100_000, "rounds": 3}
QUICK = {"plain": 100_000, "tracked": 5_000, "soft": 10_000, "rounds": 2}
BATCH_SIZE = 50_000  # rows of the table per batch; the median batch stays far under 100 ms
PERIOD_DAYS = 200  # rows are 0–400 days old: half expire
SOFT_EMAIL = "bench-soft-{}@bench.invalid"


def setup_fixtures(config: Config) -> None:
    """Nothing lasting: each round builds its own rows."""


def check_fixtures(config: Config) -> str:
    """For ``--setup-only``: the rows each round builds (truncating what was there)."""
    sizes = _sizes(config)
    return (
        f"each round builds its own rows: {sizes['plain']:,} plain, {sizes['tracked']:,} "
        f"tracked, {sizes['soft']:,} customers"
    )


def _sizes(config: Config) -> dict:
    return QUICK if config.quick else FULL


def _execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _vacuum(*tables) -> None:
    for table in tables:
        _execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


def _policy(model, name: str) -> RetentionPolicy:
    policy, _ = RetentionPolicy.objects.update_or_create(
        name=name,
        defaults={
            "target": ContentType.objects.get_for_model(model),
            "period_days": PERIOD_DAYS,
            "action": PolicyAction.HARD_DELETE,
            "archive": False,
            "exclusions": [],
            "enabled": False,  # never run by the daily purge of the bench database
        },
    )
    PurgeRun.objects.filter(policy=policy).delete()
    return policy


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _alternating(rounds, prepare, variants):
    """{name: [seconds per round]}, with `prepare()` before every variant of every round."""
    seconds = {name: [] for name in variants}
    for round_index in range(rounds):
        order = list(variants) if round_index % 2 == 0 else list(variants)[::-1]
        for name in order:
            prepare()
            seconds[name].append(_time(variants[name]))
    return seconds


def _throughput(rows: int, seconds: list[float]) -> list[float]:
    return [rows / s for s in seconds]


# --- purge_plain -------------------------------------------------------------------------


def _fill_history_table(rows: int) -> int:
    """`rows` history rows of analytics events aged 0–400 days at random; return how many
    are older than the cutoff."""
    history = AnalyticsEvent.history.model
    table = history._meta.db_table
    _execute(f"TRUNCATE {connection.ops.quote_name(table)}")
    _execute("SELECT setseed(0.42)")
    _execute(
        f"INSERT INTO {table} (id, name, properties, ip_address, occurred_at, customer_id, "
        "history_date, history_type, history_user_id, history_change_reason, history_channel, "
        "history_ip, history_user_agent, history_request_id, history_task_id) "
        "SELECT g, 'page_view', '{}', NULL, now(), NULL, "
        "now() - random() * interval '400 days', '+', NULL, NULL, '', NULL, '', '', '' "
        "FROM generate_series(1, %s) AS g",
        [rows],
    )
    _vacuum(table)
    cutoff = timezone.now() - timedelta(days=PERIOD_DAYS)
    return history.objects.filter(history_date__lt=cutoff).count()


def _purge_plain(config: Config) -> list[Result]:
    rows = _sizes(config)["plain"]
    history = AnalyticsEvent.history.model
    policy = _policy(history, "bench: analytics history")
    expired = {}
    batches: list[float] = []

    def prepare():
        expired["n"] = _fill_history_table(rows)

    def engine():
        run = policy_purge(policy=policy, actor=None, batch_size=BATCH_SIZE, progress=False)
        assert run.purged == expired["n"], (run.purged, expired["n"], run.error)
        batches.append(run.batch_median_ms / 1000)

    def one_delete():
        cutoff = timezone.now() - timedelta(days=PERIOD_DAYS)
        with transaction.atomic():
            deleted = history.objects.filter(history_date__lt=cutoff)._raw_delete("default")
        assert deleted == expired["n"]

    seconds = _alternating(
        _sizes(config)["rounds"], prepare, {"engine": engine, "one DELETE": one_delete}
    )
    gone = expired["n"]
    engine_rate, delete_rate = (_throughput(gone, seconds[k]) for k in ("engine", "one DELETE"))
    note = (
        f"{rows:,} rows, {gone:,} expired at random positions; batches of {BATCH_SIZE:,} "
        f"rows; {len(seconds['engine'])} rounds"
    )
    median_batch = statistics.median(batches)
    return [
        Result(
            name="purge_plain",
            title="policy purge of an untracked table vs one DELETE",
            variants=[
                VariantStats("engine", engine_rate),
                VariantStats("one DELETE", delete_rate),
            ],
            ratio_label="engine / one DELETE (rows/s)",
            ratios=ratios(engine_rate, delete_rate),
            target=0.5,
            at_least=True,
            unit="rows/s",
            notes=[note],
        ),
        Result(
            name="purge_batch",
            title="median time of one committed batch of the purge above",
            variants=[VariantStats("batch", [b * 1000 for b in batches])],
            ratio_label="median batch / 100 ms",
            ratios=[b / 0.1 for b in batches],
            target=1.0,
            unit="ms",
            notes=[f"median batch {median_batch * 1000:.1f} ms per {BATCH_SIZE:,} rows"],
        ),
    ]


# --- purge_tracked -----------------------------------------------------------------------


def _fill_events(rows: int) -> None:
    """`rows` analytics events, all older than the cutoff, with no history yet."""
    tables = [AnalyticsEvent._meta.db_table, AnalyticsEvent.history.model._meta.db_table]
    _execute("TRUNCATE " + ", ".join(connection.ops.quote_name(t) for t in tables))
    _execute(
        f"INSERT INTO {tables[0]} (name, properties, ip_address, occurred_at, customer_id) "
        "SELECT 'page_view', '{}', '192.0.2.1', now() - interval '300 days', NULL "
        "FROM generate_series(1, %s)",
        [rows],
    )
    _vacuum(*tables)


def _one_statement_sql() -> str:
    """The database's floor for a purge that keeps deletion history: one statement that
    deletes the expired rows and inserts their history rows from what it deleted."""
    event, history = AnalyticsEvent._meta.db_table, AnalyticsEvent.history.model._meta.db_table
    copied = "id, name, properties, ip_address, occurred_at, customer_id"
    return (
        f"WITH gone AS (DELETE FROM {event} WHERE occurred_at < %s RETURNING {copied}) "
        f"INSERT INTO {history} ({copied}, history_date, history_type, history_user_id, "
        "history_change_reason, history_channel, history_ip, history_user_agent, "
        "history_request_id, history_task_id) "
        f"SELECT {copied}, now(), '-', NULL, 'bench', '', NULL, '', '', '' FROM gone"
    )


def _purge_tracked(config: Config) -> Result:
    rows = _sizes(config)["tracked"]
    policy = _policy(AnalyticsEvent, "bench: analytics events")
    one_statement_sql = _one_statement_sql()

    def engine():
        run = policy_purge(policy=policy, actor=None, batch_size=BATCH_SIZE, progress=False)
        assert run.purged == rows, (run.purged, run.error)

    def one_statement():
        cutoff = timezone.now() - timedelta(days=PERIOD_DAYS)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(one_statement_sql, [cutoff])
            assert cursor.rowcount == rows

    def stock():
        cutoff = timezone.now() - timedelta(days=PERIOD_DAYS)
        with transaction.atomic():
            deleted, _ = AnalyticsEvent.objects.filter(occurred_at__lt=cutoff).delete()
        assert deleted == rows

    seconds = _alternating(
        _sizes(config)["rounds"],
        lambda: _fill_events(rows),
        {"engine": engine, "stock": stock, "one statement": one_statement},
    )
    history_rows = AnalyticsEvent.history.filter(history_type="-").count()
    assert history_rows == rows, history_rows  # the last variant recorded every deletion
    engine_rate, stock_rate, floor_rate = (
        _throughput(rows, seconds[k]) for k in ("engine", "stock", "one statement")
    )
    return Result(
        name="purge_tracked",
        title="policy purge of a tracked model (deletion history set-based) vs stock delete()",
        variants=[
            VariantStats("engine", engine_rate),
            VariantStats("simple-history delete()", stock_rate),
            VariantStats("one statement (floor)", floor_rate),
        ],
        ratio_label="engine / simple-history delete() (rows/s)",
        ratios=ratios(engine_rate, stock_rate),
        target=150.0,
        at_least=True,
        unit="rows/s",
        notes=[
            f"{rows:,} expired rows, each leaving a deletion history row in every variant",
            "one statement: DELETE … RETURNING into the history INSERT, in raw SQL; the "
            "fastest any purge that keeps deletion history can be on this database, whose "
            "ratio to simple-history's delete() bounds the engine's",
        ],
        extra_ratios={
            "engine / one statement": ratios(engine_rate, floor_rate),
            "one statement / simple-history delete()": ratios(floor_rate, stock_rate),
        },
    )


# --- soft_delete -------------------------------------------------------------------------


def _fill_customers(rows: int) -> None:
    table = Customer._meta.db_table
    history = Customer.history.model._meta.db_table
    _execute(f"DELETE FROM {history} WHERE email LIKE 'bench-soft-%%'")
    _execute(f"DELETE FROM {table} WHERE email LIKE 'bench-soft-%%'")
    _vacuum(table, history)
    _execute(
        f"INSERT INTO {table} (email, full_name, phone, avatar_url, date_of_birth, created_at, "
        "updated_at, deleted_at, deleted_by_id, deletion_id) "
        f"SELECT 'bench-soft-' || g || '@bench.invalid', 'Bench ' || g, '', '', NULL, now(), "
        "now(), NULL, NULL, NULL FROM generate_series(1, %s) AS g",
        [rows],
    )
    _vacuum(table)


def _soft_delete(config: Config) -> Result:
    rows = _sizes(config)["soft"]
    table = Customer._meta.db_table

    def soft():
        deleted, _ = Customer.objects.filter(email__startswith="bench-soft-").delete()
        assert deleted == rows, deleted

    def plain_update():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET deleted_at = now() "
                "WHERE email LIKE 'bench-soft-%%' AND deleted_at IS NULL"
            )
            assert cursor.rowcount == rows

    seconds = _alternating(
        _sizes(config)["rounds"],
        lambda: _fill_customers(rows),
        {"queryset delete()": soft, "one UPDATE": plain_update},
    )
    soft_rate, update_rate = (
        _throughput(rows, seconds[k]) for k in ("queryset delete()", "one UPDATE")
    )
    _fill_customers(0)
    return Result(
        name="soft_delete",
        title="soft delete through the queryset (with history rows) vs one plain UPDATE",
        variants=[
            VariantStats("queryset delete()", soft_rate),
            VariantStats("one UPDATE", update_rate),
        ],
        ratio_label="queryset delete() / one UPDATE (rows/s)",
        ratios=ratios(soft_rate, update_rate),
        target=0.5,
        at_least=True,
        unit="rows/s",
        notes=[f"{rows:,} customers; the soft delete also writes {rows:,} history rows"],
    )


def run(config: Config) -> list[Result]:
    return [*_purge_plain(config), _purge_tracked(config), _soft_delete(config)]
