"""Celery tasks run inside a change context: task id, actor, and the enqueuing user."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from project.celery import app
from shop.models import Customer
from tests.conftest import unavailable
from versions.context import change_context
from versions.ledger import ledger_append
from versions.models import LedgerAction, LedgerCheckpoint
from versions.tasks import ledger_verify_scheduled


@app.task(name="tests.rename_customer")
def rename_customer(customer_id, name):
    customer = Customer.objects.get(pk=customer_id)
    customer.full_name = name
    customer.save()


def _eager_with(**env) -> str:
    """Whether the Celery app of a fresh process runs tasks eagerly, given these variables."""
    base = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    result = subprocess.run(
        [sys.executable, "-c", EAGER_PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**base, "DEMO": "true", **env},
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


EAGER_PROBE = (
    "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'project.settings'); "
    "django.setup(); from project.celery import app; print(app.conf.task_always_eager)"
)
ROOT = Path(__file__).resolve().parents[2]


def test_tasks_run_in_process_without_a_broker():
    """With CELERY_BROKER_URL unset tasks run eagerly; with a broker they are queued."""
    assert _eager_with() == "True"
    assert _eager_with(CELERY_BROKER_URL="redis://127.0.0.1:6379/0") == "False"


def test_suite_runs_tasks_in_process_whatever_the_developer_set():
    """The test settings never take a developer's broker: tasks run in-process."""
    assert settings.CELERY_BROKER_URL == ""
    assert app.conf.task_always_eager is True


def test_eager_task_records_task_id_and_keeps_the_caller(db, officer, customer):
    """An in-process task adds its id and name to the caller's context."""
    with change_context(user=officer, reason="merge duplicates"):
        result = rename_customer.delay(customer.pk, "Ada King")
    row = customer.history.latest()
    assert row.full_name == "Ada King"
    assert row.history_task_id == result.id
    assert row.history_channel == "task:tests.rename_customer"
    assert row.history_user == officer
    assert row.history_change_reason == "merge duplicates"


def test_ledger_verify_task_reports_the_chain(db):
    """The scheduled verification task returns what it found."""
    entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    assert ledger_verify_scheduled.delay().get() == {
        "ok": True,
        "checked": 1,
        "broken_id": None,
        "head": entry.hash,
    }


def test_ledger_verify_task_records_the_head(db, caplog, django_capture_on_commit_callbacks):
    """The daily verification records the head it verified: a checkpoint and a log line."""
    entry = ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    with django_capture_on_commit_callbacks(execute=True):
        ledger_verify_scheduled.delay()
    checkpoint = LedgerCheckpoint.objects.latest("id")
    assert (checkpoint.kind, checkpoint.entry_id, checkpoint.head) == (
        "verification",
        entry.pk,
        entry.hash,
    )
    assert checkpoint.channel == "task:versions.tasks.ledger_verify_scheduled"
    assert (checkpoint.actor_label, checkpoint.reason) == ("system", "scheduled")
    assert f"ledger head entry={entry.pk} head={entry.hash}" in caplog.text


def test_ledger_verify_task_logs_missing_entries(db, caplog):
    """Entries removed from the end are reported by the task, with no head given to it."""
    ledger_append(action=LedgerAction.BACKUP, actor=None, reason="")
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("DELETE FROM versions_ledgerentry")
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = origin")
    result = ledger_verify_scheduled.delay().get()
    assert result["ok"] is False and result["checked"] == 0
    assert "is no longer in the chain" in caplog.text


@pytest.fixture
def redis_worker():
    """A real Celery worker thread consuming from Redis."""
    import redis
    from celery.contrib.testing.worker import start_worker

    url = os.environ.get("COMPLIANCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at {url}: {exc}")
    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}

    def switch(conf):
        app.conf.update(conf)
        # Celery caches its connection and producer pools from the first broker URL it saw.
        app._pool = None
        app.amqp._producer_pool = None

    switch({"broker_url": url, "task_always_eager": False})
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        switch(saved)


def _wait_for_history(customer, name, timeout=30.0):
    """Poll until the worker's history row is committed (bounded; fails on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = customer.history.filter(full_name=name).first()
        if row is not None:
            return row
        time.sleep(0.1)
    pytest.fail(f"the worker wrote no history row within {timeout}s")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_worker_task_records_task_id_and_enqueuing_user(redis_worker, officer, customer):
    """On a real worker the history row names the task and the user who enqueued it."""
    with change_context(user=officer, reason="customer asked by phone"):
        result = rename_customer.delay(customer.pk, "Ada Byron")
    row = _wait_for_history(customer, "Ada Byron")
    assert row.full_name == "Ada Byron"
    assert row.history_task_id == result.id
    assert row.history_channel == "task:tests.rename_customer"
    assert row.history_user_id == officer.pk
    assert row.history_change_reason == "customer asked by phone"
