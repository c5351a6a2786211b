"""Shared machinery: configuration, database setup, interleaved timing, the report table.

Nothing here imports Django models at module level: `prepare_environment` runs before
``django.setup()`` and everything Django-dependent is imported inside functions.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/compliance_bench"

HOW_TO_START_POSTGRES = """\
Start PostgreSQL and re-run `make bench`, for example:
  sudo service postgresql start            (Debian/Ubuntu package; or: pg_ctlcluster 15 main start)
  docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15
or point the benchmarks elsewhere: make bench BENCH_DATABASE_URL=postgres://user@host:port/db"""


class SetupError(Exception):
    """The benchmarks cannot run: the message says why and what to do."""


@dataclass(frozen=True)
class Config:
    quick: bool
    rounds: int  # interleaved rounds per variant
    batch: int  # operations per timed batch (one transaction per batch)
    warmup: int  # untimed batches per variant before the rounds


@dataclass
class VariantStats:
    name: str
    per_op: list[float]  # seconds per operation, one entry per round
    statements_per_op: float | None = None  # counted with CaptureQueriesContext

    @property
    def median(self) -> float:
        return statistics.median(self.per_op)

    @property
    def minimum(self) -> float:
        return min(self.per_op)


@dataclass
class Result:
    name: str
    title: str
    variants: list[VariantStats]
    ratio_label: str  # e.g. "tracked / untracked"
    ratios: list[float]  # one per round
    target: float | None  # the ratio must be <= target (>= with at_least); None: context only
    notes: list[str] = field(default_factory=list)
    extra_ratios: dict[str, list[float]] = field(default_factory=dict)  # shown, no target
    at_least: bool = False  # a throughput ratio: the target is a floor, not a ceiling
    unit: str = "µs/op"  # what the variants' per_op values are shown in

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "context"
        if self.at_least:
            return "PASS" if self.ratio >= self.target else "UNDER"
        return "PASS" if self.ratio <= self.target else "OVER"

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.at_least else '<='} {self.target:.2f}x"


# --- setup -------------------------------------------------------------------------------


def prepare_environment() -> None:
    """Environment defaults for the settings module; explicit variables win."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")
    os.environ.setdefault("LEDGER_SECRET", "bench-only-ledger-key-not-for-production-use")
    os.environ.setdefault("DEBUG", "false")  # DEBUG=true would record every query
    os.environ.setdefault("COMPLIANCE_READ_DOTENV", "false")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)


def database_config() -> dict:
    """DATABASE_URL parsed the way the settings parse it; PostgreSQL only."""
    import environ

    url = os.environ["DATABASE_URL"]
    config = environ.Env.db_url_config(url)
    if "postgresql" not in config.get("ENGINE", ""):
        raise SetupError(
            f"DATABASE_URL must point at PostgreSQL for the benchmarks, got {url!r}.\n"
            f"Use e.g. {DEFAULT_DATABASE_URL}"
        )
    if not config.get("NAME"):
        raise SetupError(f"DATABASE_URL has no database name: {url!r}")
    return config


def ensure_database(config: dict) -> bool:
    """Create the bench database if missing (via the `postgres` maintenance DB).

    Returns True when it was created.
    """
    import psycopg
    from psycopg import sql

    host, port = config.get("HOST") or "127.0.0.1", config.get("PORT") or 5432
    params = {
        "host": host,
        "port": port,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    name = config["NAME"]
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True
    except psycopg.OperationalError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SetupError(
            f"PostgreSQL is not reachable at {host}:{port} as user "
            f"{config.get('USER') or '(default)'}: {detail}\n{HOW_TO_START_POSTGRES}"
        ) from exc
    except psycopg.Error as exc:
        raise SetupError(f"Could not create database {name!r}: {exc}") from exc


def setup_django() -> str:
    """Create the database if needed, django.setup(), migrate quietly.

    Returns a one-line description of the database for the report.
    """
    prepare_environment()
    config = database_config()
    created = ensure_database(config)

    import django
    from django.core.management import call_command

    try:
        django.setup()
    except Exception as exc:  # settings errors, missing SECRET_KEY, …
        raise SetupError(f"django.setup() failed: {type(exc).__name__}: {exc}") from exc
    try:
        call_command("migrate", verbosity=0, interactive=False)
    except Exception as exc:
        raise SetupError(f"migrate failed: {type(exc).__name__}: {exc}") from exc

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
    where = f"{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}/{config['NAME']}"
    return f"PostgreSQL {version} at {where}" + (" (database created)" if created else "")


def require_size(benchmark: str, what: str, have: int, want: int) -> None:
    """A fixture below its stated size would report ratios at another size: refuse."""
    if have < want:
        raise SetupError(
            f"{benchmark}: the fixture holds {have:,} {what}, below the {want:,} this run "
            "states, so its results would not be at that size. Drop the bench database "
            "(or point BENCH_DATABASE_URL at a new one) and run again."
        )


# --- measuring ---------------------------------------------------------------------------


def measure_interleaved(
    variants: dict[str, Callable[[int], None]], config: Config, batch: int | None = None
) -> dict[str, list[float]]:
    """Time each variant's batch, alternating the order every round (ABBA…).

    A variant is ``fn(round_index)`` running ``batch`` (default ``config.batch``)
    operations, transactions included. Returns seconds per operation per round, per variant.
    The garbage collector is run before each batch, not disabled: allocation cost
    is part of what is measured.
    """
    batch = batch or config.batch
    names = list(variants)
    for _ in range(config.warmup):
        for name in names:
            variants[name](-1)
    per_op: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(config.rounds):
        order = names if round_index % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            start = time.perf_counter()
            variants[name](round_index)
            elapsed = time.perf_counter() - start
            per_op[name].append(elapsed / batch)
    return per_op


def ratios(numerator: Sequence[float], denominator: Sequence[float]) -> list[float]:
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


# --- reporting ---------------------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        )

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def report(result: Result, out=sys.stdout) -> None:
    def us(value: float) -> str:
        return f"{value * 1e6:.1f}" if result.unit == "µs/op" else f"{value:,.0f}"

    print(f"\n== {result.name}: {result.title}", file=out)
    for note in result.notes:
        print(f"   {note}", file=out)
    unit = result.unit
    headers = ["variant", f"median {unit}", f"min {unit}", f"max {unit}", "statements/op"]
    rows = [
        [
            v.name,
            us(v.median),
            us(v.minimum),
            us(max(v.per_op)),
            "-" if v.statements_per_op is None else f"{v.statements_per_op:g}",
        ]
        for v in result.variants
    ]
    for line in _table(headers, rows):
        print(f"   {line}", file=out)
    spread = f"per-round range {min(result.ratios):.2f}x-{max(result.ratios):.2f}x"
    target = "" if result.target is None else f"  target {result.target_text}"
    print(
        f"   ratio {result.ratio_label}: {result.ratio:.2f}x (median of "
        f"{len(result.ratios)} per-round ratios; {spread}){target}  {result.verdict}",
        file=out,
    )
    for label, values in result.extra_ratios.items():
        print(
            f"   ratio {label}: {statistics.median(values):.2f}x "
            f"(per-round range {min(values):.2f}x-{max(values):.2f}x)",
            file=out,
        )


def summary(results: list[Result], out=sys.stdout) -> None:
    print("\n== summary", file=out)
    headers = ["benchmark", "ratio", "", "target", "verdict", "also"]
    rows = [
        [
            r.name,
            f"{r.ratio:.2f}x",
            r.ratio_label,
            r.target_text,
            r.verdict,
            "; ".join(
                f"{label} {statistics.median(values):.2f}x"
                for label, values in r.extra_ratios.items()
            ),
        ]
        for r in results
    ]
    for line in _table(headers, rows):
        print(f"   {line}", file=out)
