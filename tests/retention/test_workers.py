"""Scale-out: two real Celery worker processes on Redis share one purge through SKIP LOCKED."""

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from project.celery import app
from retention.models import PurgeRun, RetentionPolicy
from retention.tasks import purge_policy
from shop.models import Customer, Session
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
ROWS = 3000
FINISHED = {PurgeRun.Status.SUCCEEDED, PurgeRun.Status.FAILED, PurgeRun.Status.PARTIAL}


@pytest.fixture
def redis_url():
    import redis

    url = os.environ.get("COMPLIANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at {url}: {exc}")
    return url


@contextmanager
def celery_workers(redis_url: str, queue: str, count: int, **extra_env):
    """`count` `celery worker` processes on the test database and `redis_url`, consuming
    `queue` (send tasks there with ``apply_async(..., queue=queue)``)."""
    settings = connection.settings_dict
    database = (
        f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": database, "CELERY_BROKER_URL": redis_url, **extra_env}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "project",
                "worker",
                "--pool=solo",
                "-Q",
                queue,
                "-n",
                f"w{i}-{queue}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],  # fmt: skip
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(count)
    ]
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_url, task_always_eager=False)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        _wait_until_ready(processes)
        yield processes
    finally:
        app.conf.update(saved)
        app._pool = None
        app.amqp._producer_pool = None
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(redis_url, postgres, transactional_db):
    """Two `celery worker` processes on the test database, consuming a queue of their own."""
    queue = f"test-purge-{uuid.uuid4().hex[:8]}"
    with celery_workers(redis_url, queue, 2, RETENTION_BATCH_SIZE="50"):
        yield queue


def _wait_until_ready(processes, timeout=60.0):
    """Read each worker's log until it says it is ready (bounded)."""
    deadline = time.monotonic() + timeout
    for process in processes:
        for line in process.stdout:
            if " ready." in line:
                break
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"a worker did not start: {line}")


@pytest.mark.worker
def test_two_worker_processes_share_one_purge_and_remove_each_row_once(workers):
    """Both workers run the same policy at once; every expired row goes exactly once."""
    owner = Customer.objects.create(email="bulk@example.org", full_name="Bulk")
    when = timezone.now() - timedelta(days=400)
    Session.objects.bulk_create(
        [
            Session(customer=owner, token=uuid.uuid4().hex, created_at=when, expires_at=when)
            for _ in range(ROWS)
        ]
    )
    policy = RetentionPolicy.objects.create(
        name="sessions", target=ContentType.objects.get_for_model(Session), period_days=90
    )
    for _ in range(2):
        purge_policy.apply_async((policy.pk,), queue=workers)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = list(PurgeRun.objects.filter(policy=policy))
        if len(runs) == 2 and all(run.status in FINISHED for run in runs):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the two purge runs did not finish within 120 s")
    assert [run.status for run in runs] == ["succeeded", "succeeded"], [r.error for r in runs]
    assert sum(run.purged for run in runs) == ROWS
    assert not Session.objects.exists()
    deleted = Session.history.filter(history_type="-")
    assert deleted.count() == ROWS == deleted.values("id").distinct().count()
