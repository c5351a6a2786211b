"""Backup: ``backup_create`` against a raw ``pg_dump -Fc`` of the same database.

- ``backup_overhead`` (target <= 1.15x): seconds of a whole backup — ``pg_dump -Fc`` of an
  exported snapshot streamed through Python into the file while its sha256 is computed, the
  rows of every table counted in that snapshot at the same time, fsync, rename, manifest,
  catalogue row and ledger entry — against ``pg_dump -Fc -f <file>`` alone, alternating
  which runs first, several rounds; the ratio is the median of the per-round ratios.

The database is the bench database with the export benchmark's subjects in it (1.1M rows in
a full run, 100k with --quick), generated set-based on the first run and reused. The
erasure benchmark, which runs before this one, empties the tables those rows are in, so the
run makes sure of them again before it measures.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from django.db import connection
from django.test import override_settings

from operations.backups import backup_create, pg_environ

from . import export
from .harness import Config, Result, VariantStats

DESCRIPTION = "backup (snapshot counts, streamed sha256, manifest, ledger) vs raw pg_dump -Fc"
TARGET = 1.15
ROUNDS = {"full": 5, "quick": 2}


def setup_fixtures(config: Config) -> None:
    """The export benchmark's subjects: the rows the dumps carry."""
    export.setup_fixtures(config)


def check_fixtures(config: Config) -> str:
    """What the dumps carry, for ``--setup-only``."""
    subjects = export.check_fixtures(config)  # made again if the erasure's rebuild emptied them
    return f"database {_database_size() / 2**20:,.0f} MiB on disk; {subjects}"


def _database_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return cursor.fetchone()[0]


def _raw_dump(directory: Path) -> int:
    target = directory / "raw.dump"
    subprocess.run(
        ["pg_dump", "-Fc", "--no-password", "-f", str(target)],
        env=pg_environ(connection.settings_dict),
        check=True,
    )
    size = target.stat().st_size
    target.unlink()
    return size


def _backup(directory: Path) -> int:
    with override_settings(BACKUP_DIR=directory):
        backup = backup_create(tier="daily", actor=None, reason="bench")
    for path in directory.iterdir():
        path.unlink()
    return backup.size


def run(config: Config) -> list[Result]:
    export.setup_fixtures(config)  # again: the erasure benchmark's rebuild empties them
    rounds = ROUNDS["quick" if config.quick else "full"]
    seconds: dict[str, list[float]] = {"backup": [], "pg_dump": []}
    sizes = {}
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        directory = Path(tmp)
        _raw_dump(directory)  # warm the cache for both
        for round_index in range(rounds):
            order = ["backup", "pg_dump"] if round_index % 2 == 0 else ["pg_dump", "backup"]
            for name in order:
                started = time.perf_counter()
                sizes[name] = _backup(directory) if name == "backup" else _raw_dump(directory)
                seconds[name].append(time.perf_counter() - started)
    ms = {name: [s * 1000 for s in values] for name, values in seconds.items()}
    return [
        Result(
            name="backup_overhead",
            title="backup_create (counts, sha256, manifest, ledger) vs pg_dump -Fc alone",
            variants=[
                VariantStats("backup_create", ms["backup"]),
                VariantStats("pg_dump -Fc", ms["pg_dump"]),
            ],
            ratio_label="backup / pg_dump (seconds)",
            ratios=[b / p for b, p in zip(seconds["backup"], seconds["pg_dump"], strict=True)],
            target=TARGET,
            unit="ms",
            notes=[
                f"database {_database_size() / 2**20:,.0f} MiB on disk, dump "
                f"{sizes['pg_dump'] / 2**20:,.1f} MiB; {rounds} rounds, order alternating; "
                f"{os.cpu_count()} CPU(s) shared by pg_dump, the server and Python"
            ],
        )
    ]
