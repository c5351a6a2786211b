"""The batch engine: how jobs are planned, shared and closed."""

import threading
import time

from django.db import connection
from django.utils import timezone

from retention.engine import batches_run, job_plan
from retention.models import BatchRange
from shop.models import Session


def _waits_for_advisory_lock() -> bool:
    """Some session of this database waits for an advisory lock."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        return cursor.fetchone()[0] > 0


def test_a_job_planned_while_another_worker_closes_it_keeps_its_ranges(
    postgres, transactional_db, customer, tmp_path, monkeypatch
):
    """Race on two connections: worker A finishes a job and is about to remove its ranges
    when worker B plans the job anew. B's ranges survive: the closing waits for, or runs
    before, the planning (one lock), never after it."""
    for _ in range(4):
        Session.objects.create(customer=customer, expires_at=timezone.now())
    job, paused = "test:race", tmp_path / "paused"
    monkeypatch.setenv("RETENTION_PAUSE_AT", "job-finished")
    monkeypatch.setenv("RETENTION_PAUSE_FILE", str(paused))
    planned, errors = threading.Event(), []

    def run(work):
        try:
            work()
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def worker_a():
        batches_run(
            job=job,
            queryset=Session.objects.all(),
            apply=lambda batch, span: {"rows": batch.count()},
            batch_size=2,
        )

    def worker_b():
        job_plan(job, Session.objects.all(), 2)
        planned.set()

    a = threading.Thread(target=run, args=(worker_a,))
    a.start()
    deadline = time.monotonic() + 30
    while not paused.exists() and a.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert paused.exists(), errors  # A: no range pending, its ranges not yet removed
    b = threading.Thread(target=run, args=(worker_b,))
    b.start()
    # B has planned, or waits for A's planning lock (PostgreSQL shows it not granted):
    # either way B is at the planning before A goes on, however slow the machine.
    deadline = time.monotonic() + 30
    while not (planned.is_set() or _waits_for_advisory_lock()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert planned.is_set() or _waits_for_advisory_lock(), errors
    paused.unlink()
    a.join(timeout=30)
    b.join(timeout=30)
    assert errors == []
    assert BatchRange.objects.filter(job=job, done=False).count() == 2
