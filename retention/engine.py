"""The batch engine: purge, erasure of large subjects and backfills all run through it.

Rows are taken in primary-key order from a cursor, ``batch_size`` at a time, each batch in
its own transaction: on PostgreSQL the batch's rows are locked with
``FOR UPDATE SKIP LOCKED``, so several workers can share one job without touching a row
twice. The job is bounded to the rows that existed when it started (the highest key then),
stops at a time or row budget, and reports the cursor after every committed batch so a
later run resumes from there. Nothing here knows what a batch does: the caller's `apply`
gets a queryset of the locked rows and returns its counts.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, router, transaction
from django.db.models import Max, QuerySet
from tqdm import tqdm

__all__ = ["BatchReport", "batches_run"]


@dataclass
class BatchReport:
    """What a run did: batches committed, counts summed over them, where it stopped."""

    batches: int = 0
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    cursor: object = None  # the highest key handled; resume after it
    finished: bool = False  # True when no eligible row was left below the upper bound
    upper_bound: object = None
    batch_seconds: list[float] = field(default_factory=list)


def batches_run(
    *,
    queryset: QuerySet,
    apply: Callable[[QuerySet], dict[str, int]],
    batch_size: int = 1000,
    after=None,
    upper_bound=None,
    max_seconds: float | None = None,
    max_rows: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    progress: bool | None = None,
    total: int | None = None,
) -> BatchReport:
    """Apply `apply` to the rows of `queryset` in key order, one transaction per batch.

    `after` resumes behind a cursor of an earlier run; `upper_bound` defaults to the highest
    key now, so rows inserted meanwhile wait for the next run. `on_batch` sees the report
    after each committed batch (to save the cursor). `progress` draws a bar on a terminal
    (default: when stderr is one); `total` sizes it.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    model = queryset.model
    alias = router.db_for_write(model)
    skip_locked = connections[alias].features.has_select_for_update_skip_locked
    report = BatchReport(cursor=after)
    if upper_bound is None:
        upper_bound = queryset.aggregate(top=Max("pk"))["top"]
    report.upper_bound = upper_bound
    if upper_bound is None:
        report.finished = True
        return report
    bar = tqdm(
        total=total,
        unit="rows",
        desc=model._meta.label,
        disable=not (sys.stderr.isatty() if progress is None else progress),
        file=sys.stderr,
    )
    started = time.monotonic()
    try:
        while True:
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
            limit = batch_size
            if max_rows is not None:
                limit = min(limit, max_rows - report.rows)
                if limit <= 0:
                    break
            batch_started = time.monotonic()
            with transaction.atomic(using=alias):
                window = queryset.filter(pk__lte=upper_bound).order_by("pk")
                if report.cursor is not None:
                    window = window.filter(pk__gt=report.cursor)
                if skip_locked:
                    window = window.select_for_update(skip_locked=True, of=("self",))
                keys = list(window.values_list("pk", flat=True)[:limit])
                if not keys:
                    report.finished = True
                    break
                counts = apply(model._base_manager.using(alias).filter(pk__in=keys))
            report.batches += 1
            report.rows += len(keys)
            report.counts.update(counts)
            report.cursor = keys[-1]
            report.batch_seconds.append(time.monotonic() - batch_started)
            bar.update(len(keys))
            if on_batch is not None:
                on_batch(report)
    finally:
        bar.close()
    return report
