"""`migrate`, with a lock timeout and a statement timeout on PostgreSQL.

A migration that waits for a lock (an ALTER TABLE behind a long transaction) makes every
later query on that table queue behind it: the site stops while the migration waits. So on
PostgreSQL the whole run (every operation, RunSQL and RunPython included, and the
post-migrate handlers) runs with `lock_timeout` and `statement_timeout` set on its session:
a migration that cannot get its lock quickly fails, its transaction rolls back, and the
message says which migration, which statement, who holds the lock and what to do.
"""

import re

from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError
from django.core.management.commands import migrate
from django.db import DatabaseError, connections

from operations import config

LOCK_TIMEOUT = "55P03"  # lock_not_available: lock_timeout expired
STATEMENT_TIMEOUT = "57014"  # query_canceled: statement_timeout expired (or a cancel)

HOLDERS = """
SELECT l.relation::regclass::text, l.mode, a.pid, a.state,
       EXTRACT(EPOCH FROM now() - a.xact_start)::int, left(a.query, 120)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation::regclass::text = ANY(%s)
ORDER BY a.xact_start
"""


class Command(migrate.Command):
    help = (
        migrate.Command.help
        + " On PostgreSQL every statement runs under MIGRATION_LOCK_TIMEOUT and"
        " MIGRATION_STATEMENT_TIMEOUT (docs/migrations.md)."
    )

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            return super().handle(*args, **options)
        try:
            lock, statement = config.migration_lock_timeout(), config.migration_statement_timeout()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        self._migration = self._statement = None
        with connection.cursor() as cursor:
            # Session level (not SET LOCAL): they hold across every migration's transaction.
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, false), "
                "set_config('statement_timeout', %s, false)",
                [lock, statement],
            )
        try:
            with connection.execute_wrapper(self._remember_statement):
                return super().handle(*args, **options)
        except DatabaseError as exc:
            code = getattr(exc.__cause__, "sqlstate", None)
            if code not in (LOCK_TIMEOUT, STATEMENT_TIMEOUT):
                raise
            raise CommandError(self._timeout_message(connection, code, lock, statement)) from None
        finally:
            if connection.connection is not None and not connection.needs_rollback:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute("RESET lock_timeout; RESET statement_timeout")
                except DatabaseError:  # an outer transaction failed: it ends the settings
                    pass

    def migration_progress_callback(self, action, migration=None, fake=False):
        if action in ("apply_start", "unapply_start"):
            self._migration = (migration, action == "apply_start")
        return super().migration_progress_callback(action, migration, fake)

    def _remember_statement(self, execute, sql, params, many, context):
        self._statement = sql
        return execute(sql, params, many, context)

    def _timeout_message(self, connection, code, lock, statement) -> str:
        migration, forwards = self._migration or (None, True)
        name = f"{migration.app_label}.{migration.name}" if migration else "A migration"
        verb = "applying" if forwards else "unapplying"
        sql = " ".join((self._statement or "").split())
        if len(sql) > 300:
            sql = sql[:300] + " …"
        if code == LOCK_TIMEOUT:
            lines = [
                f"{name} stopped while {verb}: it waited longer than {lock} "
                f"(MIGRATION_LOCK_TIMEOUT) for a lock, at the statement:",
                f"  {sql}",
                *self._lock_holders(connection, sql),
            ]
            advice = (
                "What to do: run migrate again when traffic is low; or end the transaction "
                "that holds the lock; or allow a longer wait for this run, e.g. "
                "MIGRATION_LOCK_TIMEOUT=30s python manage.py migrate (while it waits, queries "
                "on the table queue behind it)."
            )
        else:
            lines = [
                f"{name} stopped while {verb}: one statement ran longer than {statement} "
                f"(MIGRATION_STATEMENT_TIMEOUT):",
                f"  {sql}",
            ]
            advice = (
                "What to do: run it when the database is quiet, with a longer limit for this "
                "run, e.g. MIGRATION_STATEMENT_TIMEOUT=2h python manage.py migrate (0: no "
                "limit); for a long data change, use a backfill (docs/migrations.md)."
            )
        if migration is None or migration.atomic:
            lines.append(
                "Nothing of this migration was applied (its transaction was rolled back); "
                "migrations before it in this run stay applied."
            )
        else:
            lines.append(
                "This migration is not atomic: statements before the failed one stay applied. "
                "Read it before you run migrate again."
            )
        return "\n".join([*lines, advice])

    @staticmethod
    def _lock_holders(connection, sql: str) -> list[str]:
        """Who holds locks on the tables the failed statement names (pid, state, age)."""
        names = sorted(set(re.findall(r'"([^"]+)"', sql)))
        if not names:
            return []
        try:
            with connection.cursor() as cursor:
                cursor.execute(HOLDERS, [names])
                rows = cursor.fetchall()
        except DatabaseError:
            return []
        return [
            f"Held by pid {pid} ({state or 'unknown state'}, transaction open {age}s): "
            f"{mode} on {table}; its last query: {query}"
            for table, mode, pid, state, age, query in rows
        ]
