"""The batch engine: purges and column backfills run through it. (An erasure does not: it
changes one subject's rows in a single transaction, all or nothing, so it is never cut.)

A job (named by the caller, e.g. ``purge:policy:3``) is cut into ranges of the primary key,
each about ``batch_size`` rows of the table, from the lowest key to the highest key that
existed when the job was planned: rows inserted later wait for the next job. The ranges are
rows of `BatchRange`; a worker claims one with ``SELECT … FOR UPDATE SKIP LOCKED``, applies
the caller's work to the rows of that range that the caller's queryset selects, marks the
range done and commits, all in one transaction. So several workers (threads, processes or
machines) share one job without touching a row twice, a killed run leaves its unfinished
ranges for the next one to resume, and each batch is a cheap index range scan, not a rescan.

Nothing here knows what a batch does: `apply` gets the batch's queryset and its range,
returns its counts. The job's ranges are removed once none is pending, under the planning
lock, so a worker finishing a job never removes the ranges another has just planned.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, models, router, transaction
from tqdm import tqdm

from .models import BatchRange
from .pausepoints import pause_point

__all__ = ["BatchReport", "batches_planned", "batches_run", "job_plan"]

_PLAN_LOCK = 0x8A7C4  # advisory lock namespace: one planner per job at a time


@dataclass
class BatchReport:
    """What a run did: batches committed, counts summed over them, whether the job is done."""

    batches: int = 0
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    finished: bool = False  # no range of the job was left pending
    top: object = None  # the highest key the job covers
    batch_seconds: list[float] = field(default_factory=list)
    pauses: int = 0  # waits of `pause` seconds taken between batches


def job_plan(job: str, queryset, batch_size: int):
    """Cut `queryset`'s table into key ranges for `job`, unless ranges are pending already
    (then this run joins or resumes them). Returns the highest key the job covers."""
    model = queryset.model
    alias = router.db_for_write(model)
    with transaction.atomic(using=alias):
        _plan_lock(alias, job)
        ranges = BatchRange.objects.using(alias).filter(job=job)
        if ranges.filter(done=False).exists():
            top = ranges.order_by("-id").values_list("hi", flat=True).first()
            return model._meta.pk.to_python(top)
        ranges.delete()  # a finished job's
        bounds = _bounds(model._base_manager.using(alias), batch_size)
        BatchRange.objects.using(alias).bulk_create(
            [BatchRange(job=job, lo="" if lo is None else str(lo), hi=str(hi)) for lo, hi in bounds]
        )
        return bounds[-1][1] if bounds else None


def _plan_lock(alias: str, job: str) -> None:
    """Hold the planning lock of `job` until the transaction ends (PostgreSQL; SQLite
    serialises writers anyway)."""
    if connections[alias].vendor == "postgresql":
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_PLAN_LOCK, job])


def _job_close(alias: str, job: str) -> None:
    """Remove a finished job's ranges, unless another worker has planned it again since."""
    with transaction.atomic(using=alias):
        _plan_lock(alias, job)
        ranges = BatchRange.objects.using(alias).filter(job=job)
        if not ranges.filter(done=False).exists():
            pause_point("job-finished")
            ranges.delete()


def batches_planned(queryset, batch_size: int) -> int:
    """How many batches a new job over `queryset`'s table would have (a dry run's count)."""
    return len(_bounds(queryset.model._base_manager.using(queryset.db), batch_size))


def _bounds(rows: models.QuerySet, batch_size: int) -> list[tuple]:
    """[(lo, hi)]: ranges lo < key <= hi (lo None: from the start) up to today's top key.

    Integer keys are cut arithmetically (no query per range; gaps make ranges lighter);
    other keys by walking the index, one query per range.
    """
    ends = rows.aggregate(low=models.Min("pk"), top=models.Max("pk"))
    low, top = ends["low"], ends["top"]
    if top is None:
        return []
    if isinstance(rows.model._meta.pk, models.IntegerField):
        return [(lo, min(lo + batch_size, top)) for lo in range(low - 1, top, batch_size)]
    keys = rows.order_by("pk").values_list("pk", flat=True)
    bounds, lo = [], None
    while True:
        window = keys if lo is None else keys.filter(pk__gt=lo)
        found = list(window[batch_size - 1 : batch_size])
        if not found or found[0] >= top:
            bounds.append((lo, top))
            return bounds
        bounds.append((lo, found[0]))
        lo = found[0]


def batches_run(
    *,
    job: str,
    queryset: models.QuerySet,
    apply: Callable[[models.QuerySet, BatchRange], dict[str, int]],
    batch_size: int = 1000,
    max_seconds: float | None = None,
    max_rows: int | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
    progress: bool | None = None,
    total: int | None = None,
    pause: float = 0.0,
) -> BatchReport:
    """Plan `job` if needed, then claim and apply its ranges until none is left or a budget
    (`max_seconds`, `max_rows`) is spent. `apply(batch, span)` runs inside each batch's
    transaction, `span` being the claimed `BatchRange`;
    `on_batch` sees the report after each commit. `progress` draws a bar on a terminal
    (default: when stderr is one), sized by `total`. `pause` seconds pass between two
    batches, leaving the database to other work (a throttle)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    if pause < 0:
        raise ValueError("pause must not be negative")
    model = queryset.model
    alias = router.db_for_write(model)
    skip_locked = connections[alias].features.has_select_for_update_skip_locked
    pk = model._meta.pk
    report = BatchReport(top=job_plan(job, queryset, batch_size))
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
            if max_rows is not None and report.rows >= max_rows:
                break
            if pause and report.batches:
                pending = BatchRange.objects.using(alias).filter(job=job, done=False)
                if pending.exists():  # no wait after the last batch
                    time.sleep(pause)
                    report.pauses += 1
            batch_started = time.monotonic()
            with transaction.atomic(using=alias):
                ranges = BatchRange.objects.using(alias).filter(job=job, done=False).order_by("id")
                if skip_locked:
                    ranges = ranges.select_for_update(skip_locked=True)
                claimed = ranges.first()
                if claimed is None:
                    report.finished = True
                    break
                batch = queryset.filter(pk__lte=pk.to_python(claimed.hi))
                if claimed.lo:
                    batch = batch.filter(pk__gt=pk.to_python(claimed.lo))
                counts = apply(batch.order_by(), claimed)
                rows = sum(counts.values())
                BatchRange.objects.using(alias).filter(pk=claimed.pk).update(done=True, rows=rows)
            report.batches += 1
            report.rows += rows
            report.counts.update(counts)
            report.batch_seconds.append(time.monotonic() - batch_started)
            bar.update(rows)
            if on_batch is not None:
                on_batch(report)
    finally:
        bar.close()
    if report.finished:  # a worker still in a batch holds one range pending: it closes the job
        _job_close(alias, job)
    return report
