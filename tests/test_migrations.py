"""Zero-downtime migrations: the linter over every migration, and `migrate`'s timeouts."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.signals import pre_migrate

ROOT = Path(__file__).resolve().parents[1]


def _lint(tmp_path, *arguments, settings="project.settings"):
    """`manage.py lintmigrations` in a subprocess, on this run's kind of database."""
    if connection.vendor == "postgresql":
        s = connection.settings_dict  # the test database: it exists while the tests run
        login = quote(s["USER"]) + (f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else "")
        url = f"postgres://{login}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    else:
        url = f"sqlite:///{tmp_path / 'lint.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", "lintmigrations", "--no-cache", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings, "DATABASE_URL": url},
        timeout=300,
    )


def test_linter_passes_the_projects_own_migrations(db, tmp_path):
    """Every migration of the project is safe, or ignored with its reason in settings."""
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Erroneous migrations: 0/" in result.stdout
    assert "(shop, 0002_customer_full_name_expand)" in result.stdout


def test_linter_fails_on_an_unsafe_migration(db, tmp_path):
    """A dropped column and a NOT NULL column without default fail the lint, by name."""
    result = _lint(tmp_path, settings="tests.unsafe_migrations_settings")
    assert result.returncode != 0
    assert "(unsafe_migrations, 0002_drop_serial_add_owner)... ERR" in result.stdout
    assert "DROPPING columns (table: unsafe_migrations_gadget, column: serial)" in result.stdout
    assert "NOT NULL constraint on columns" in result.stdout


def _show(name):
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def test_migrate_sets_both_timeouts_for_the_whole_run_then_resets_them(postgres, settings):
    """Inside migrate (its signals, operations, RunPython) the session has both timeouts."""
    settings.MIGRATION_LOCK_TIMEOUT = "3s"
    settings.MIGRATION_STATEMENT_TIMEOUT = "7min"
    seen = []

    def record(**kwargs):
        seen.append((_show("lock_timeout"), _show("statement_timeout")))

    pre_migrate.connect(record, weak=False)
    try:
        call_command("migrate", verbosity=0)
    finally:
        pre_migrate.disconnect(record)
    assert seen and set(seen) == {("3s", "7min")}
    assert (_show("lock_timeout"), _show("statement_timeout")) == ("0", "0")


def test_migrate_refuses_a_timeout_that_is_not_a_duration(postgres, settings):
    """A wrong MIGRATION_LOCK_TIMEOUT is a clear error before anything runs."""
    settings.MIGRATION_LOCK_TIMEOUT = "soon"
    with pytest.raises(CommandError, match="MIGRATION_LOCK_TIMEOUT='soon' is not a duration"):
        call_command("migrate", verbosity=0)


@pytest.fixture
def at_latest(transactional_db):
    yield
    call_command("migrate", verbosity=0)


def _migrate_behind_a_lock():
    """Apply the shop's contract while another session holds its table; the CommandError's
    message and the seconds it took."""
    s = connection.settings_dict
    holder = psycopg.connect(
        dbname=s["NAME"],
        user=s["USER"],
        password=s["PASSWORD"] or None,
        host=s["HOST"],
        port=s["PORT"] or 5432,
    )
    locked, release = threading.Event(), threading.Event()

    def hold():
        with holder.transaction():
            holder.execute("LOCK TABLE shop_customer IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        locked.wait(10)
        started = time.monotonic()
        with pytest.raises(CommandError) as timed_out:
            call_command("migrate", "shop", verbosity=0)
        return str(timed_out.value), time.monotonic() - started
    finally:
        release.set()
        thread.join()
        holder.close()


def _contract_not_applied():
    applied = MigrationRecorder(connection).migration_qs.filter(app="shop")
    with connection.cursor() as cursor:
        columns = connection.introspection.get_table_description(cursor, "shop_customer")
    return not applied.filter(name="0005_customer_full_name_contract").exists() and "name" in {
        c.name for c in columns
    }


def test_migration_behind_a_lock_fails_fast_and_changes_nothing(postgres, at_latest, settings):
    """Another session holds the table: the migration gives up after the lock timeout, says
    which migration, statement and holder, and leaves the schema as it was."""
    call_command("migrate", "shop", "0004", verbosity=0)
    settings.MIGRATION_LOCK_TIMEOUT = "300ms"

    message, elapsed = _migrate_behind_a_lock()

    assert elapsed < 5
    assert "shop.0005_customer_full_name_contract stopped while applying" in message
    assert "longer than 300ms (MIGRATION_LOCK_TIMEOUT)" in message
    assert '"shop_customer"' in message and "AccessExclusiveLock on shop_customer" in message
    assert "Nothing of this migration was applied" in message
    assert "run migrate again when traffic is low" in message
    assert _contract_not_applied()


def test_migration_statement_over_its_time_fails_with_what_to_do(postgres, at_latest, settings):
    """With no lock timeout, the statement timeout still ends the wait, and says so."""
    call_command("migrate", "shop", "0004", verbosity=0)
    settings.MIGRATION_LOCK_TIMEOUT = "0"
    settings.MIGRATION_STATEMENT_TIMEOUT = "300ms"

    message, elapsed = _migrate_behind_a_lock()

    assert elapsed < 5
    assert "one statement ran longer than 300ms (MIGRATION_STATEMENT_TIMEOUT)" in message
    assert "MIGRATION_STATEMENT_TIMEOUT=2h python manage.py migrate" in message
    assert _contract_not_applied()
