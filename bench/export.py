"""Data-subject export: streaming ZIP against Django's serializer, and its peak memory.

One subject per size holds SIZES rows in all, half live rows and half their history rows
(analytics events 80%, sessions 10%, notifications 10%), generated set-based with
``INSERT … SELECT generate_series`` and reused by later runs.

- ``export_throughput`` (target >= 3x): rows per second of ``subject_export`` (the whole ZIP:
  JSON and CSV of every model and history table, manifest, checksums, ledger entry) against
  ``django.core.serializers.serialize("json", …)`` building the same rows' JSON in memory,
  on the large subject (the small one with --quick), two rounds in alternating order.
- ``export_memory`` (target <= 1.3x) and ``export_memory_1m`` (target <= 200 MB): the peak
  resident memory of a fresh process that exports the small and the large subject. Measured
  as the child's own peak resident set (``VmHWM`` of /proc/self/status; ``ru_maxrss`` where
  there is no /proc), not tracemalloc: the peak the operating system has to provide,
  including what Python's allocator does not see (psycopg's result buffers, zlib's state,
  the interpreter and Django themselves). Not ``ru_maxrss`` on Linux: a child started by
  fork and exec reports its parent's peak when that was higher.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.core import serializers
from django.db import connection, transaction

from compliance.selectors import subject_walk
from compliance.services import subject_export
from shop.models import AnalyticsEvent, Customer, Notification, Session
from versions.setbased import history_record

from .harness import Config, Result, SetupError, VariantStats

DESCRIPTION = "subject export (streamed ZIP) vs Django's serializer; its peak memory at 2 sizes"
SMALL, LARGE = 100_000, 1_000_000
EMAIL = "bench-export-{}@bench.invalid"
SHARES = {AnalyticsEvent: 0.8, Session: 0.1, Notification: 0.1}  # of the live rows
MEMORY_TARGET_MB = 200
ROOT = Path(__file__).resolve().parents[1]


def _execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _history_copy(model, subject_pk: int) -> None:
    """One "+" history row per live row of `model` about the subject, set-based."""
    history = model.history.model
    tracked = [f.column for f in history._meta.concrete_fields if not f.name.startswith("history")]
    columns = ", ".join(tracked)
    date = "occurred_at" if model is AnalyticsEvent else "created_at"
    _execute(
        f"INSERT INTO {history._meta.db_table} ({columns}, history_date, history_type, "
        "history_user_id, history_change_reason, history_channel, history_ip, "
        "history_user_agent, history_request_id, history_task_id) "
        f"SELECT {columns}, {date}, '+', NULL, NULL, '', NULL, '', '', '' "
        f"FROM {model._meta.db_table} WHERE customer_id = %s",
        [subject_pk],
    )


def _subject(rows: int) -> Customer:
    """The subject holding `rows` rows (live plus history), made once and then reused."""
    email = EMAIL.format(rows)
    subject = Customer.all_objects.filter(email=email).first()
    if subject is not None and _counted(subject) == rows:
        return subject
    if subject is not None:  # what another run (or benchmark) left on it goes
        for model in SHARES:
            model.history.model.objects.filter(customer_id=subject.pk).delete()
            model.objects.filter(customer_id=subject.pk)._raw_delete("default")
        Customer.history.filter(id=subject.pk).delete()
        history_record(Customer.all_objects.filter(pk=subject.pk), history_type="+")
    else:
        subject = Customer.objects.create(email=email, full_name=f"Bench export {rows}")
    live = rows // 2 - 1  # the customer row and its history row count too
    with transaction.atomic():
        counts = {model: int(live * share) for model, share in SHARES.items()}
        counts[AnalyticsEvent] += live - sum(counts.values())
        pk = subject.pk
        _execute(
            "INSERT INTO shop_analyticsevent (customer_id, name, properties, ip_address, "
            "occurred_at) SELECT %s, 'page_view', jsonb_build_object('path', '/p/' || g, "
            "'ref', 'newsletter'), '192.0.2.1', now() - g * interval '1 second' "
            "FROM generate_series(1, %s) AS g",
            [pk, counts[AnalyticsEvent]],
        )
        _execute(
            "INSERT INTO shop_session (customer_id, token, ip_address, user_agent, created_at, "
            "expires_at) SELECT %s, md5(%s || '-' || g), ('198.51.100.' || (g %% 250))::inet, "
            "'Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0', now() - g * interval '1 minute', "
            "now() + interval '1 day' FROM generate_series(1, %s) AS g",
            [pk, email, counts[Session]],
        )
        _execute(
            "INSERT INTO shop_notification (customer_id, kind, title, body, read_at, "
            "created_at) SELECT %s, 'order', 'Your order ' || g || ' has shipped', "
            "'It should arrive within three working days.', NULL, now() - g * interval "
            "'1 hour' FROM generate_series(1, %s) AS g",
            [pk, counts[Notification]],
        )
        for model in SHARES:
            _history_copy(model, pk)
    for model in SHARES:
        _execute(f"VACUUM ANALYZE {model._meta.db_table}")
        _execute(f"VACUUM ANALYZE {model.history.model._meta.db_table}")
    if _counted(subject) != rows:
        raise SetupError(
            f"export: the subject {email} holds {_counted(subject):,} rows, not {rows:,}: "
            + ", ".join(f"{label} {count:,}" for label, count in _per_model(subject))
            + ". Another benchmark wrote rows about it: drop the bench database and run again."
        )
    return subject


def _per_model(subject) -> list[tuple[str, int]]:
    found = []
    for walked in subject_walk(subject):
        found.append((walked.model._meta.label, walked.rows.count()))
        if walked.history is not None:
            found.append((walked.history.model._meta.label, walked.history.count()))
    return [(label, count) for label, count in found if count]


def _counted(subject) -> int:
    total = 0
    for walked in subject_walk(subject):
        total += walked.rows.count()
        if walked.history is not None:
            total += walked.history.count()
    return total


def setup_fixtures(config: Config) -> None:
    """The two subjects (the large one only for a full run)."""
    _subject(SMALL)
    if not config.quick:
        _subject(LARGE)


def check_fixtures(config: Config) -> str:
    """What the fixture holds, for ``--setup-only``: each subject as a run would find it
    (rebuilt if another benchmark emptied it since `setup_fixtures`)."""
    sizes = [SMALL] if config.quick else [SMALL, LARGE]
    return ", ".join(
        f"{_counted(_subject(size)):,} rows about the subject of {size:,}" for size in sizes
    )


def _export(subject, directory: Path) -> int:
    export = subject_export(subject=subject, actor=None, reason="bench", output=directory / "x.zip")
    return sum(export.counts.values())


def _serialize(subject) -> int:
    """The same rows (exported models and their history) as JSON, built in memory."""
    rows = 0
    for walked in subject_walk(subject):
        if not walked.entry.exported:
            continue
        for queryset in (walked.rows, walked.history):
            if queryset is None:
                continue
            data = serializers.serialize("json", queryset)
            rows += data.count('"model": ')
            del data
    return rows


def _throughput(config: Config) -> Result:
    size = SMALL if config.quick else LARGE
    subject = _subject(size)
    rounds = 2  # the two orders; at 1M rows a round of both takes minutes
    seconds = {"export": [], "serializer": []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(rounds):
            order = ["export", "serializer"] if round_index % 2 == 0 else ["serializer", "export"]
            for name in order:
                started = time.perf_counter()
                rows = _export(subject, Path(tmp)) if name == "export" else _serialize(subject)
                seconds[name].append(time.perf_counter() - started)
                assert rows == size, (name, rows, size)
    export_rate = [size / s for s in seconds["export"]]
    serializer_rate = [size / s for s in seconds["serializer"]]
    return Result(
        name="export_throughput",
        title="subject export to a ZIP (JSON + CSV + manifest) vs serialize('json') in memory",
        variants=[
            VariantStats("subject_export", export_rate),
            VariantStats("serializers.serialize", serializer_rate),
        ],
        ratio_label="export / serializer (rows/s)",
        ratios=[e / s for e, s in zip(export_rate, serializer_rate, strict=True)],
        target=3.0,
        at_least=True,
        unit="rows/s",
        notes=[
            f"{size:,} rows (half history rows) of one subject; {rounds} round(s); the "
            "export also writes the CSV copy, the manifest and the ledger entry"
        ],
    )


_CHILD = """
import os, resource, sys, tempfile
from pathlib import Path
import django
django.setup()
from compliance.services import subject_export
from shop.models import Customer
subject = Customer.all_objects.get(pk=int(sys.argv[1]))
def hwm():
    # VmHWM: this process image's peak resident set, in KiB. ru_maxrss would do but for
    # inheriting, across fork and exec, the peak of the parent that started it.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = hwm()
with tempfile.TemporaryDirectory() as tmp:
    export = subject_export(subject=subject, actor=None, reason="bench", output=Path(tmp) / "x.zip")
peak = hwm()
print(before, peak, sum(export.counts.values()), export.size)
"""


def _peak_mb(subject) -> tuple[float, float, int]:
    """(peak MB, MB before the export, ZIP bytes) of a fresh process exporting `subject`."""
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(subject.pk)],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        check=True,
    )
    before, peak, rows, size = (int(v) for v in result.stdout.split())
    return peak / 1024, before / 1024, size


def _memory(config: Config) -> list[Result]:
    small_peak, small_base, _ = _peak_mb(_subject(SMALL))
    if config.quick:
        large_peak, large_base, label = small_peak, small_base, "100k (quick: no 1M run)"
    else:
        large_peak, large_base, _ = _peak_mb(_subject(LARGE))
        label = "1M"
    notes = [
        "peak resident memory (VmHWM) of a fresh process running subject_export; "
        f"before the export it held {small_base:.0f} MB (100k) and {large_base:.0f} MB "
        f"({label}): the interpreter, Django and the project"
    ]
    return [
        Result(
            name="export_memory",
            title=f"peak memory of an export, {label} rows against 100k rows",
            variants=[VariantStats("100k rows", [small_peak]), VariantStats(label, [large_peak])],
            ratio_label=f"{label} / 100k (peak MB)",
            ratios=[large_peak / small_peak],
            target=1.3,
            unit="MB",
            notes=notes,
        ),
        Result(
            name="export_memory_1m",
            title=f"peak memory of an export of {label} rows against {MEMORY_TARGET_MB} MB",
            variants=[VariantStats(label, [large_peak])],
            ratio_label=f"peak / {MEMORY_TARGET_MB} MB",
            ratios=[large_peak / MEMORY_TARGET_MB],
            target=1.0,
            unit="MB",
            notes=[f"peak {large_peak:.0f} MB"],
        ),
    ]


def run(config: Config) -> list[Result]:
    memory = _memory(config)  # first, in children of a process that is still small
    return [_throughput(config), *memory]
