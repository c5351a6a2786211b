"""A purge killed with `kill -9` at each step of a batch, then run again, accounts for every
row exactly once: in the archives, the deletion history, the ledger and the run log."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils import timezone

from retention.archive import archive_verify
from retention.models import PurgeRun, RetentionPolicy
from retention.services import policy_purge
from shop.models import Customer, Session
from versions.models import LedgerEntry

ROOT = Path(__file__).resolve().parents[2]
OLD = timezone.now() - timedelta(days=400)
NEW = timezone.now() - timedelta(days=1)


def _sessions(owner, when, n):
    return [
        Session.objects.create(customer=owner, created_at=when, expires_at=when).pk
        for _ in range(n)
    ]


def _purge_process(tmp_path, pause_at):
    """`manage.py purge_expired` on the test database, paused at `pause_at`; returns the
    process once it is waiting there."""
    settings = connection.settings_dict
    database = (
        f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    )
    signal_file = tmp_path / "paused"
    env = {
        **os.environ,
        "PGAPPNAME": _app_name(tmp_path),  # libpq names its sessions so: see _backends
        "DATABASE_URL": database,
        "RETENTION_ARCHIVE_DIR": str(tmp_path / "archives"),
        "RETENTION_PAUSE_AT": pause_at,
        "RETENTION_PAUSE_FILE": str(signal_file),
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "purge_expired", "--policy", "sessions", "--batch-size", "3"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not signal_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the purge never reached {pause_at}: {process.stdout.read()}")
        time.sleep(0.02)
    return process


def _app_name(tmp_path) -> str:
    return f"purge-kill-{tmp_path.name}"[:63]


def _backends(tmp_path) -> list[int]:
    """The server sessions of the purge process, and those holding a lock for it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid FROM pg_stat_activity a WHERE a.application_name = %s UNION "
            "SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE a.application_name = %s",
            [_app_name(tmp_path)] * 2,
        )
        return [row[0] for row in cursor.fetchall()]


def _kill(process, tmp_path) -> None:
    """SIGKILL the purge, then wait until the server has ended its session: until then
    the dead client's backend still holds the run's lock and the range's row lock."""
    assert _backends(tmp_path), "the paused purge has no session to watch"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    process.stdout.close()
    deadline = time.monotonic() + 30
    while _backends(tmp_path):
        if time.monotonic() > deadline:
            pytest.fail(f"the killed purge's session lives on: {_backends(tmp_path)}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    "pause_at, rename",
    [
        ("claimed:3", False),
        ("archived:3", False),
        ("archived:3", True),
        ("deleted:3", False),
        ("committed:3", False),
    ],
    ids=["claimed", "archived", "archived-renamed", "deleted", "committed"],
)
def test_a_killed_purge_loses_and_doubles_nothing(
    postgres, transactional_db, settings, tmp_path, pause_at, rename
):
    """Killed before the third batch's archive, after it (and the policy renamed before the
    retry), before its commit and after it: after a second run, 0 rows lost, 0 archived
    twice, archived = deleted = the ledger's counts, and no run left running."""
    settings.RETENTION_ARCHIVE_DIR = tmp_path / "archives"
    owner = Customer.objects.create(email="kill@example.org", full_name="Kill")
    # Ranges of 3 keys: expired, recent only (an empty batch), expired, expired.
    expired = _sessions(owner, OLD, 3)
    recent = _sessions(owner, NEW, 3)
    expired += _sessions(owner, OLD, 6)
    policy = RetentionPolicy.objects.create(
        name="sessions",
        target=ContentType.objects.get_for_model(Session),
        period_days=90,
        archive=True,
    )

    _kill(_purge_process(tmp_path, pause_at), tmp_path)
    killed = PurgeRun.objects.get()
    assert killed.status == "running"  # as the killed process left it
    if rename:  # a rename needs no approval: the retry's archive must not depend on it
        RetentionPolicy.objects.filter(pk=policy.pk).update(name="old sessions")
        policy.refresh_from_db()

    again = policy_purge(policy=policy, actor=None, batch_size=3)

    assert again.status == "succeeded", again.error
    killed.refresh_from_db()
    assert killed.status == "interrupted" and killed.finished_at is not None
    assert not PurgeRun.objects.filter(status="running").exists()
    # 0 rows lost: the recent rows stay, every expired row is gone and in its history.
    assert sorted(Session.objects.values_list("pk", flat=True)) == recent
    deleted = list(Session.history.filter(history_type="-").values_list("id", flat=True))
    assert sorted(deleted) == sorted(expired)
    # 0 rows archived twice, and archived rows = deleted rows.
    files = sorted((tmp_path / "archives").rglob("*.jsonl.gz"))
    archived = []
    for path in files:
        assert archive_verify(path)
        with gzip.open(path) as stream:
            archived += [json.loads(line)["fields"]["id"] for line in stream]
    assert len(archived) == len(set(archived)) and sorted(archived) == sorted(expired)
    assert not list((tmp_path / "archives").rglob("*.part"))
    # The run logs list each file once, with the rows it holds.
    logged = [a for run in PurgeRun.objects.all() for a in run.archives]
    assert sorted(a["file"] for a in logged) == sorted(
        str(p.relative_to(tmp_path / "archives")) for p in files
    )
    assert sum(a["rows"] for a in logged) == len(expired)
    assert killed.purged + again.purged == len(expired)
    # The ledger's batch entries count every deleted and archived row once.
    batches = LedgerEntry.objects.filter(action="purge_batch")
    assert sum(e.counts["purged"] for e in batches) == len(expired)
    assert sum(e.counts["archived"] for e in batches) == len(expired)
    closing = LedgerEntry.objects.filter(action="purge")
    assert {e.details["status"] for e in closing} == {"interrupted", "succeeded"}
