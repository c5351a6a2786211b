"""Browsing history at scale: our pages against the stock admin changelist, p95 latency.

The history of the benchmark's own customers is filled to ROWS rows (set-based, kept between
runs, spread over the customers that exist whatever their ids: other benchmarks create and
delete customers in between), and a run refuses to start below that size. Three
scenarios, each requested REQUESTS times through Django's test client (the whole request:
middleware, queries, template), ours and the stock changelist interleaved:

- ``history_global``: the list of all changes (every tracked model), at a random depth in
  the newest DEPTH rows (a keyset cursor), against the stock changelist of the history
  table at the same depth (``?p=N``: OFFSET pages, a COUNT(*) of the table);
- ``history_subject``: all changes about one data subject (the registry's subject paths, in
  every history table), against the stock changelist filtered to that customer's rows;
- ``history_object``: one customer's history page (the newest 50 versions, keyset pages,
  with the context columns and field diffs), against the same stock filtered changelist.

Target: each at least 4.5x faster than the stock changelist at p95; absolute p95 printed.
"""

from __future__ import annotations

import random
import statistics
import time
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client, override_settings

from shop.models import Customer

from .harness import Config, Result, VariantStats, require_size

DESCRIPTION = "history pages (all changes, one subject, one object) vs the stock changelist, p95"
FULL = {"rows": 5_000_000, "customers": 50_000, "requests": 60, "depth": 20_000}
QUICK = {"rows": 200_000, "customers": 5_000, "requests": 15, "depth": 5_000}
TARGET = 4.5
EMAIL = "history-bench-{}@bench.invalid"
USERNAME = "bench-history-browser"
STOCK_PER_PAGE = 100  # ModelAdmin.list_per_page
SEED = 20261125


def _sizes(config: Config) -> dict:
    return QUICK if config.quick else FULL


def _execute(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() if cursor.description else None


def setup_fixtures(config: Config) -> None:
    """A superuser, the customers and ROWS history rows (created once, then reused)."""
    sizes = _sizes(config)
    User = get_user_model()
    if not User.objects.filter(username=USERNAME).exists():
        User.objects.create_superuser(USERNAME, "bench-browser@bench.invalid", None)
    customers = Customer._meta.db_table
    have = Customer.all_objects.filter(email__startswith="history-bench-").count()
    if have < sizes["customers"]:
        _execute(
            f"INSERT INTO {customers} "
            "(email, full_name, phone, avatar_url, created_at, updated_at) "
            "SELECT 'history-bench-' || g || '@bench.invalid', 'Bench person ' || g, '', '', "
            "now() - interval '3 years', now() FROM generate_series(%s, %s) g",
            [have + 1, sizes["customers"]],
        )
    rows = _history_rows()
    if rows < sizes["rows"]:
        _fill(rows, sizes["rows"], User.objects.get(username=USERNAME).pk)
    require_size("history_browser", "customer history rows", _history_rows(), sizes["rows"])


def _bench_customers() -> str:
    """SQL: the benchmark's customers, numbered from 0 in id order."""
    return (
        f"SELECT id, row_number() OVER (ORDER BY id) - 1 AS n "
        f"FROM {Customer._meta.db_table} WHERE email LIKE 'history-bench-%%'"
    )


def _history_rows() -> int:
    """History rows of the benchmark's customers (other benchmarks write customer history
    too: those rows are not counted)."""
    table = Customer.history.model._meta.db_table
    query = f"SELECT count(*) FROM {table} WHERE id IN (SELECT id FROM ({_bench_customers()}) c)"
    return _execute(query, [])[0]


def _fill(first: int, last: int, user_id: int) -> None:
    """History rows number `first + 1` to `last`, row g about the (g mod customers)-th
    customer of the benchmark."""
    history = Customer.history.model
    table = history._meta.db_table
    tracked = [f.column for f in history.tracked_fields]
    context = ["history_date", "history_type", "history_user_id", "history_channel", "history_ip",
               "history_user_agent", "history_request_id", "history_task_id"]  # fmt: skip
    columns = [*tracked, *context]
    values = [
        *(f"c.{column}" for column in tracked),
        "now() - (g * interval '7 seconds')",
        "CASE WHEN g %% 50 = 0 THEN '+' ELSE '~' END",
        f"CASE WHEN g %% 3 = 0 THEN NULL ELSE {int(user_id)} END",
        "''",
        "('203.0.113.' || (g %% 250))::inet",
        "'Mozilla/5.0 bench'",
        "md5(g::text)",
        "''",
    ]
    quote = connection.ops.quote_name
    _execute(
        f"WITH people AS ({_bench_customers()}), "
        "total AS (SELECT count(*) AS customers FROM people) "
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(%s, %s) g CROSS JOIN total "
        f"JOIN people p ON p.n = g %% total.customers "
        f"JOIN {Customer._meta.db_table} c ON c.id = p.id",
        [first + 1, last],
    )
    _execute(f"VACUUM ANALYZE {table}")


def check_fixtures(config: Config) -> str:
    """What the fixture holds (after `setup_fixtures`), for ``--setup-only``."""
    customers = _execute(f"SELECT count(*) FROM ({_bench_customers()}) c", [])[0]
    return f"{_history_rows():,} customer history rows about {customers:,} customers"


def _p95(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=20)[18]


def _timed(client: Client, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url, secure=True)  # production settings redirect to HTTPS
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    return elapsed


def _cursor_at(depth: int) -> str:
    """The keyset cursor of the list of all changes after `depth` newest history rows."""
    row = (
        Customer.history.model._base_manager.order_by("-history_date", "-pk")
        .values_list("history_date", "pk")[depth : depth + 1]
        .get()
    )
    return f"{row[0].isoformat()}|{Customer._meta.label}|{row[1]}"


def _scenario(name, title, ours, stock, requests, note) -> Result:
    """Time `requests` pairs of requests, ours and stock alternating; `ours(i)` and
    `stock(i)` give the i-th URL of each."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=USERNAME))
    for i in range(2):  # warm-up: templates, caches, the planner
        _timed(client, ours(i))
        _timed(client, stock(i))
    times = {"ours": [], "stock": []}
    for i in range(requests):
        pair = [("ours", ours(i)), ("stock", stock(i))]
        for variant, url in pair if i % 2 == 0 else reversed(pair):
            times[variant].append(_timed(client, url))
    p95 = {variant: _p95(values) for variant, values in times.items()}
    return Result(
        name=name,
        title=title,
        variants=[
            VariantStats("ours", times["ours"]),
            VariantStats("stock changelist", times["stock"]),
        ],
        ratio_label="stock p95 / ours p95",
        ratios=[p95["stock"] / p95["ours"]],
        target=TARGET,
        at_least=True,
        notes=[
            note,
            f"p95: ours {p95['ours'] * 1e3:.1f} ms, stock changelist "
            f"{p95['stock'] * 1e3:.1f} ms ({requests} requests each)",
        ],
    )


@override_settings(ROOT_URLCONF="bench.urls", DEBUG=False, ALLOWED_HOSTS=["testserver"])
def run(config: Config) -> list[Result]:
    sizes = _sizes(config)
    rng = random.Random(SEED)
    requests = sizes["requests"]
    table_rows = _history_rows()
    require_size("history_browser", "customer history rows", table_rows, sizes["rows"])
    note = f"{table_rows:,} customer history rows; a page is 50 rows (ours), 100 (stock)"
    stock_url = "/stock-admin/shop/historicalcustomer/"
    depths = [rng.randrange(sizes["depth"]) for _ in range(requests + 2)]
    cursors = [_cursor_at(depth) for depth in depths]
    people = list(
        Customer.all_objects.filter(email__startswith="history-bench-").values_list("pk", "email")[
            : requests + 2
        ]
    )
    rng.shuffle(people)
    return [
        _scenario(
            "history_global",
            "all changes at a random depth vs the stock changelist at that depth",
            lambda i: f"/admin/versions/changes/?{urlencode({'after': cursors[i]})}",
            lambda i: f"{stock_url}?p={depths[i] // STOCK_PER_PAGE + 1}",
            requests,
            note,
        ),
        _scenario(
            "history_subject",
            "all changes about one subject vs the stock changelist filtered to them",
            lambda i: f"/admin/versions/changes/?{urlencode({'subject': people[i][1]})}",
            lambda i: f"{stock_url}?id__exact={people[i][0]}",
            requests,
            note,
        ),
        _scenario(
            "history_object",
            "one customer's history page vs the stock changelist filtered to it",
            lambda i: f"/admin/shop/customer/{people[i][0]}/history/",
            lambda i: f"{stock_url}?id__exact={people[i][0]}",
            requests,
            note,
        ),
    ]
