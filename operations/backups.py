"""Database backups: the file, its manifest, and the environment of the PostgreSQL tools.

A backup is one file under BACKUP_DIR (``<UTC stamp>-<tier>.dump``, PostgreSQL custom
format, or ``.sqlite3``, a SQLite database) and its manifest beside it
(``<file>.manifest.json``): format, vendor, database, server and dump-tool versions,
migration state, sha256, size, per-table row counts, tier and time.

The services: `backup_create` writes one (and its catalogue row and ledger entry),
`backup_verify` checks one against its manifest (with `drill`, restored into a scratch
database), `backups_cleanup` applies tiered retention, sparing backups under a legal hold.
All three need the `operations.run_backup_backup` permission (None acts as the system).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from retention.selectors import held_q
from versions.context import current
from versions.files import file_sha256, fsync_dir, write_atomically
from versions.ledger import _label, ledger_append
from versions.models import LedgerAction

from . import config
from .models import Backup, BackupCheck

__all__ = [
    "BackupError",
    "CleanupPlan",
    "MANIFEST_FORMAT",
    "backup_create",
    "backup_verify",
    "backups_cleanup",
    "manifest_path",
    "manifest_read",
    "pg_environ",
    "tool_summary",
]

MANIFEST_FORMAT = 1
MANIFEST_SUFFIX = ".manifest.json"


class BackupError(Exception):
    """A backup cannot be made, read, verified or restored; the message says why and what to
    do. Commands show it as an error, never a traceback."""


def manifest_path(path: Path) -> Path:
    """The manifest written beside the backup file at `path`."""
    path = Path(path)
    return path.with_name(path.name + MANIFEST_SUFFIX)


def manifest_read(path: Path) -> dict:
    """The manifest of the backup file at `path`; BackupError when the file or its manifest
    is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"No backup file at {path}: give the path of a backup file.")
    source = manifest_path(path)
    try:
        manifest = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{path.name} has no manifest ({source.name} is missing): it was not written by "
            "the backup command, or its manifest was lost; it cannot be verified."
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"The manifest {source.name} cannot be read: {exc}.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BackupError(
            f"The manifest {source.name} is not a backup manifest of format {MANIFEST_FORMAT}."
        )
    return manifest


def pg_environ(settings_dict: dict) -> dict[str, str]:
    """The environment for pg_dump, pg_restore and psql to reach the database of a Django
    connection's `settings_dict` (libpq variables: no password on a command line)."""
    env = dict(os.environ)
    for variable, key in [
        ("PGHOST", "HOST"),
        ("PGPORT", "PORT"),
        ("PGUSER", "USER"),
        ("PGPASSWORD", "PASSWORD"),
        ("PGDATABASE", "NAME"),
    ]:
        value = settings_dict.get(key)
        if value:
            env[variable] = str(value)
    sslmode = (settings_dict.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = sslmode
    return env


# Create -----------------------------------------------------------------------------------

logger = logging.getLogger(__name__)

RUN_PERMISSION = "operations.run_backup_backup"
SCHEMA = "public"  # where the application's tables are: what a backup counts and restores
# Where `recover_table` puts a table read back from a backup: scratch, never backed up.
RECOVERY_SCHEMA = "recovery"
CHECKSUM_MISMATCH = "checksum mismatch: the file changed since it was written; do not restore it"
_CHUNK = 1 << 20
_TOOL_TIMEOUT = 30  # seconds for `--version` and similar quick calls


def _require_run(actor) -> None:

    if actor is not None and not actor.has_perm(RUN_PERMISSION):
        raise PermissionDenied(f"{actor} may not start backups, verifications or drills.")


def _actor_label(actor) -> str:
    """The name the ledger gives `actor` ("system" for None)."""

    return _label(actor)


def backup_create(*, tier: str = "daily", actor, reason: str = "", progress=None):
    """Write a backup of the default database to BACKUP_DIR with its manifest, and record it
    (a Backup row and a ledger entry, in one transaction).

    PostgreSQL: ``pg_dump -Fc`` of a snapshot exported by a REPEATABLE READ transaction in
    which the rows of every table are counted while pg_dump runs, so the manifest's counts
    describe exactly the dump; the sha256 is computed as the dump streams to disk. SQLite:
    the online backup API, counted in the copy. The file appears under its final name only
    once complete and synced; on any failure nothing is left behind and BackupError says why.
    `progress(bytes_written)` is called as the dump streams (PostgreSQL).
    """

    _require_run(actor)
    if tier not in Backup.Tier.values:
        raise BackupError(f"Unknown tier {tier!r}: choose one of {', '.join(Backup.Tier.values)}.")
    if connection.vendor not in ("postgresql", "sqlite"):
        raise BackupError(f"Backups support PostgreSQL and SQLite, not {connection.vendor}.")
    directory = config.backup_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"The backup directory {directory} cannot be created: {exc}.") from None
    now = timezone.now()
    suffix = ".dump" if connection.vendor == "postgresql" else ".sqlite3"
    final = _free_name(directory, f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{tier}", suffix)
    tmp = directory / f".{final.name}.part"
    written = []
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # it holds personal data
        written.append(tmp)
        with os.fdopen(fd, "wb") as out:
            if connection.vendor == "postgresql":
                facts = _pg_dump(connection.settings_dict, out, progress)
            else:
                facts = _sqlite_copy(connection, tmp, out)
        os.replace(tmp, final)
        written[-1] = final
        fsync_dir(directory)
        manifest = {
            "format": MANIFEST_FORMAT,
            "file": final.name,
            "vendor": connection.vendor,
            "database": _database_name(connection.settings_dict),
            "tier": tier,
            "created_at": now.astimezone(UTC).isoformat(),
            **facts,
        }
        written.append(manifest_path(final))
        write_atomically(manifest_path(final), json.dumps(manifest, indent=2, sort_keys=True))
        with transaction.atomic():
            backup = Backup.objects.create(
                file=final.name,
                tier=tier,
                vendor=connection.vendor,
                created_at=now,
                size=manifest["size"],
                sha256=manifest["sha256"],
                manifest=manifest,
                created_by=_actor_label(actor),
            )
            ledger_append(
                action=LedgerAction.BACKUP,
                actor=actor,
                reason=reason,
                target=f"versions.backup:{backup.pk}",
                counts={
                    "tables": len(manifest["tables"]),
                    "rows": sum(manifest["tables"].values()),
                    "size": manifest["size"],
                },
                details={"file": final.name, "sha256": manifest["sha256"], "tier": tier},
            )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return backup


def _free_name(directory: Path, stem: str, suffix: str) -> Path:
    """`stem + suffix` in `directory`, or with -2, -3 … when a backup of the same second
    already has that name (in the directory or the catalogue)."""

    number = 1
    while True:
        name = f"{stem}{suffix}" if number == 1 else f"{stem}-{number}{suffix}"
        path = directory / name
        if not path.exists() and not Backup.objects.filter(file=name).exists():
            return path
        number += 1


def _database_name(settings_dict: dict) -> str:
    name = str(settings_dict.get("NAME") or "")
    return name if "mode=memory" not in name else "(in-memory)"


def _run_tool(args: list[str], *, env=None, timeout=_TOOL_TIMEOUT) -> subprocess.CompletedProcess:
    """Run a PostgreSQL client tool; BackupError when it is missing."""
    try:
        return subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BackupError(_missing_tool(args[0])) from None


def _missing_tool(tool: str) -> str:
    return (
        f"{tool} is not installed or not on PATH: install the PostgreSQL client tools of the "
        "server's major version (Debian and Ubuntu: postgresql-client)."
    )


# A failing tool's output can quote rows of the backup or the database: PostgreSQL's DETAIL
# ("Failing row contains (…)", "Key (email)=(…)"), CONTEXT (a COPY line) and "Command was:"
# (an INSERT with its values) lines, and quoted values in the message itself ("invalid input
# syntax for type integer: "…""). What is kept of it, wherever it is shown or stored (a
# backup check's detail outlives restores and no erasure reaches it), is its error class:
# the lines that say error, fatal or warning, with every quoted text that is not the name
# of one of the application's tables, constraints or indexes replaced by "…", and
# "(column)=(values)" cut to "(column)=(…)".
_SEVERITY_LINE = re.compile(r"^\s*(?:[\w.-]+:\s+)*(?:error|fatal|warning|panic)\b", re.IGNORECASE)
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_KEY_VALUES = re.compile(r"\)=\(.*")
_SUMMARY_LINES = 3
_SUMMARY_CHARS = 600


def _schema_names() -> frozenset[str]:
    """The application's table, constraint and index names: safe to keep when quoted."""

    names = set()
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        names.add(opts.db_table)
        names.update(c.name for c in opts.constraints if c.name)
        names.update(i.name for i in opts.indexes if i.name)
    return frozenset(names)


def tool_summary(output: str) -> str:
    """A failing tool's output without anything that can quote a row (the rule above)."""
    known = _schema_names()

    def quoted(found: re.Match) -> str:
        text = found.group(0)
        name = text[1:-1].removeprefix("public.")
        return text if name in known else f"{text[0]}…{text[-1]}"

    kept: list[str] = []
    for line in output.splitlines():
        if not _SEVERITY_LINE.match(line):
            continue
        line = _KEY_VALUES.sub(")=(…)", _QUOTED.sub(quoted, line.strip()))
        if line not in kept:
            kept.append(line)
    if not kept:
        return "no error line (the tool's other output is not kept)"
    summary = " | ".join(kept[:_SUMMARY_LINES])
    if len(kept) > _SUMMARY_LINES:
        summary += f" | and {len(kept) - _SUMMARY_LINES} more error line(s)"
    return summary[:_SUMMARY_CHARS]


def _tool_failed(tool: str, returncode: int, stderr: str) -> str:
    return f"{tool} failed (exit status {returncode}): {tool_summary(stderr)}"


def _pg_version(tool: str, env) -> str:
    result = _run_tool([tool, "--version"], env=env)
    if result.returncode != 0:
        raise BackupError(_tool_failed(tool, result.returncode, result.stderr))
    return result.stdout.strip()


def pg_connect(settings_dict: dict, *, dbname: str | None = None, autocommit: bool = False):
    """A psycopg connection of its own to the database of `settings_dict` (or `dbname`)."""
    import psycopg

    options = settings_dict.get("OPTIONS") or {}
    params = {
        "host": settings_dict.get("HOST") or None,
        "port": settings_dict.get("PORT") or None,
        "user": settings_dict.get("USER") or None,
        "password": settings_dict.get("PASSWORD") or None,
        "dbname": dbname or settings_dict.get("NAME"),
        "sslmode": options.get("sslmode"),
        "connect_timeout": 10,
    }
    try:
        return psycopg.connect(
            **{k: v for k, v in params.items() if v is not None}, autocommit=autocommit
        )
    except psycopg.Error as exc:
        raise BackupError(
            f"Cannot connect to the database {params['dbname']!r}: {str(exc).strip()}"
        ) from None


def _pg_counts(conn) -> dict[str, int]:
    """Rows per table of the application's schema, through `conn` (in its transaction)."""
    from psycopg import sql

    names = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
            [SCHEMA],
        )
    ]
    counts = {}
    for name in names:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(SCHEMA), sql.Identifier(name)
        )
        counts[name] = conn.execute(query).fetchone()[0]
    return counts


def _migrations(rows) -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


def _pg_dump(settings_dict: dict, out, progress) -> dict:
    """Stream ``pg_dump -Fc`` of one exported snapshot into `out`, hashing as it goes, while
    the same snapshot's rows are counted on another thread. Returns the manifest's facts."""
    import psycopg

    env = pg_environ(settings_dict)
    dump_tool = _pg_version("pg_dump", env)
    digest, size = hashlib.sha256(), 0
    with pg_connect(settings_dict) as conn:
        try:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            migrations = _migrations(conn.execute("SELECT app, name FROM django_migrations"))
        except psycopg.Error as exc:
            raise BackupError(f"Cannot read the database: {str(exc).strip()}") from None
        counted: dict = {}

        def count():
            try:
                counted["tables"] = _pg_counts(conn)
            except Exception as exc:  # reported on the main thread
                counted["error"] = exc

        with tempfile.TemporaryFile() as stderr:  # a pipe could fill up and stall pg_dump
            try:
                process = subprocess.Popen(
                    [
                        "pg_dump",
                        "-Fc",
                        f"--snapshot={snapshot}",
                        "--no-password",
                        f"--exclude-schema={RECOVERY_SCHEMA}",
                    ],
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    env=env,
                )
            except FileNotFoundError:
                raise BackupError(_missing_tool("pg_dump")) from None
            counter = threading.Thread(target=count, name="backup-count", daemon=True)
            counter.start()
            try:
                _widen_pipe(process.stdout)
                buffer = bytearray(_CHUNK)
                view = memoryview(buffer)
                reader = process.stdout.raw  # unbuffered reads into one reused buffer
                while read := reader.readinto(buffer):
                    chunk = view[:read]
                    digest.update(chunk)
                    out.write(chunk)
                    size += read
                    if progress is not None:
                        progress(size)
            except BaseException:
                process.kill()  # a full disk or an interrupt: pg_dump would block on the pipe
                raise
            finally:
                process.stdout.close()
                returncode = process.wait()
                counter.join()
            if returncode != 0:
                stderr.seek(0)
                message = stderr.read().decode("utf-8", "replace")
                raise BackupError(_tool_failed("pg_dump", returncode, message))
        conn.rollback()
    if "error" in counted:
        raise BackupError(f"Counting the rows failed: {counted['error']}")
    out.flush()
    os.fsync(out.fileno())
    return {
        "server_version": server_version,
        "dump_tool": dump_tool,
        "migrations": migrations,
        "sha256": digest.hexdigest(),
        "size": size,
        "tables": counted["tables"],
    }


def _widen_pipe(stream) -> None:
    """Let pg_dump write up to _CHUNK bytes before it waits for us (Linux; else a no-op)."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), fcntl.F_SETPIPE_SZ, _CHUNK)
    except (ImportError, AttributeError, OSError):
        pass


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table of a SQLite database."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    return {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}


def _sqlite_open(path: Path) -> sqlite3.Connection:
    """A read-only connection to the SQLite file at `path`."""
    return sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)


def _sqlite_copy(connection, tmp: Path, out) -> dict:
    """Copy the Django connection's SQLite database to `tmp` with the online backup API;
    count, hash and sync the copy. Returns the manifest's facts."""
    connection.ensure_connection()
    if connection.connection.in_transaction:
        # The backup API would wait forever for this connection's own write lock.
        raise BackupError(
            "SQLite cannot be backed up from inside a transaction that is writing: run the "
            "backup outside it (the command and the task do)."
        )
    target = sqlite3.connect(tmp)
    try:
        connection.connection.backup(target)
    except sqlite3.Error as exc:
        raise BackupError(f"The SQLite backup failed: {exc}") from None
    finally:
        target.close()
    out.flush()
    os.fsync(out.fileno())
    copy = _sqlite_open(tmp)
    try:
        tables = _sqlite_counts(copy)
        migrations = _migrations(copy.execute("SELECT app, name FROM django_migrations"))
    finally:
        copy.close()
    return {
        "server_version": sqlite3.sqlite_version,
        "dump_tool": f"sqlite3 online backup {sqlite3.sqlite_version}",
        "migrations": migrations,
        "sha256": file_sha256(tmp),
        "size": tmp.stat().st_size,
        "tables": tables,
    }


# Verify and drill -------------------------------------------------------------------------


def backup_verify(*, path: Path, drill: bool = False, actor, reason: str = ""):
    """Check the backup file at `path` against its manifest and record the outcome (a
    BackupCheck, whatever it is), which is returned; `ok` says whether it passed.

    Verify: the sha256 must match the manifest's, then the archive must list (PostgreSQL:
    ``pg_restore --list``, counting its table data entries; SQLite: ``PRAGMA
    integrity_check``). A drill also restores it into a scratch database (dropped afterwards)
    and compares the rows of every table with the manifest. A file that is not in the
    catalogue is checked all the same, from its manifest.
    """

    _require_run(actor)
    path = Path(path)
    backup = None
    if path.parent.resolve() == config.backup_dir().resolve():
        backup = Backup.objects.filter(file=path.name).first()
    facts: dict = {}
    try:
        manifest = manifest_read(path)
        problems = _verify(path, manifest, backup, facts)
        if drill and not problems:
            problems = _drill(path, manifest, connection.settings_dict, facts)
    except BackupError as exc:
        problems = [str(exc)]
    ok = not problems
    if ok:
        detail = f"{path.name}: sha256 matches; {facts.get('listing', '')}"
        if drill:
            detail += f"; drill restored {facts['tables']} tables, every count matches"
    else:
        detail = "; ".join(problems)
    kind = BackupCheck.Kind.DRILL if drill else BackupCheck.Kind.VERIFY
    with transaction.atomic():
        check = BackupCheck.objects.create(
            backup=backup,
            file=str(path),
            kind=kind,
            ok=ok,
            detail=detail,
            facts=facts,
            checked_at=timezone.now(),
            actor_label=_actor_label(actor),
            channel=current().channel,
            reason=reason,
        )
        # Auditors read in the ledger that backups are checked, and what a failure said.
        ledger_append(
            action=LedgerAction.BACKUP_CHECK,
            actor=actor,
            reason=reason,
            target=f"versions.backupcheck:{check.pk}",
            counts={k: facts[k] for k in ("tables", "rows") if isinstance(facts.get(k), int)},
            # Never the detail: a failing tool's message can quote rows of the backup.
            details={"file": path.name, "kind": str(kind), "ok": ok, "problems": len(problems)},
        )
    return check


def _verify(path: Path, manifest: dict, backup, facts: dict) -> list[str]:
    """Problems of the file at `path` against its manifest (checksum, then the listing)."""
    if backup is not None and backup.sha256 != manifest.get("sha256"):
        return [
            f"the manifest's sha256 differs from the catalogue's ({backup.sha256}): the "
            "manifest was replaced; do not restore this file"
        ]
    if file_sha256(path) != manifest.get("sha256"):
        return [CHECKSUM_MISMATCH]
    if manifest.get("vendor") == "postgresql":
        result = _run_tool(["pg_restore", "--list", str(path)], timeout=None)
        if result.returncode != 0:
            return [_tool_failed("pg_restore --list", result.returncode, result.stderr)]
        entries = sum(1 for line in result.stdout.splitlines() if " TABLE DATA " in line)
        facts["entries"] = entries
        facts["listing"] = f"the archive lists {entries} table data entries"
        return []
    if manifest.get("vendor") == "sqlite":
        try:
            conn = _sqlite_open(path)
            try:
                found = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return [f"the file is not a readable SQLite database: {exc}"]
        if found != ["ok"]:
            return [f"integrity check failed: {'; '.join(found[:5])}"]
        facts["listing"] = "the SQLite integrity check passed"
        return []
    return [f"unknown vendor {manifest.get('vendor')!r} in the manifest"]


def _drill(path: Path, manifest: dict, settings_dict: dict, facts: dict) -> list[str]:
    """Restore the file into a scratch database, count its rows and compare them with the
    manifest; the scratch database is removed whatever happens."""
    if manifest["vendor"] == "postgresql":
        found = _pg_drill(path, settings_dict)
    else:
        with tempfile.TemporaryDirectory(prefix="backup-drill-") as scratch:
            copy = Path(scratch) / "drill.sqlite3"
            shutil.copyfile(path, copy)
            conn = _sqlite_open(copy)
            try:
                found = _sqlite_counts(conn)
            finally:
                conn.close()
    expected = manifest.get("tables") or {}
    differences = {
        table: {"manifest": expected.get(table), "restored": found.get(table)}
        for table in sorted(set(expected) | set(found))
        if expected.get(table) != found.get(table)
    }
    facts["tables"] = len(found)
    facts["rows"] = sum(found.values())
    if not differences:
        return []
    facts["differences"] = differences
    listed = ", ".join(
        f"{table} (manifest {d['manifest']}, restored {d['restored']})"
        for table, d in list(differences.items())[:10]
    )
    more = f" and {len(differences) - 10} more" if len(differences) > 10 else ""
    return [f"drill: {len(differences)} table(s) differ from the manifest: {listed}{more}"]


@contextmanager
def scratch_database(settings_dict: dict, purpose: str):
    """A new, empty PostgreSQL database beside the one of `settings_dict`, for a drill or a
    table recovery: its name is yielded, and it is dropped afterwards whatever happens (a
    drop that fails is logged, with the name, for the operator to drop it by hand)."""
    import psycopg
    from psycopg import sql

    base = _database_name(settings_dict) or "backup"
    scratch = f"{base[:40]}_{purpose}_{secrets.token_hex(6)}"
    with pg_connect(settings_dict, dbname="postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            yield scratch
        finally:
            try:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(scratch)
                    )
                )
            except psycopg.Error as exc:
                logger.error("drop the scratch database %s by hand: %s", scratch, exc)


def pg_restore_into(
    path: Path, settings_dict: dict, dbname: str, *tables: str, schema: str = ""
) -> None:
    """pg_restore the dump at `path` (only `tables` of `schema`, if given) into the database
    `dbname` of the server of `settings_dict`; BackupError with pg_restore's own words on
    failure."""
    args = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--no-password"]
    if schema:
        args += ["--schema", schema]
    for table in tables:
        args += ["--table", table]
    result = _run_tool(
        [*args, "-d", dbname, str(path)],
        env=pg_environ({**settings_dict, "NAME": dbname}),
        timeout=None,
    )
    if result.returncode != 0:
        raise BackupError(_tool_failed("pg_restore", result.returncode, result.stderr))


def _pg_drill(path: Path, settings_dict: dict) -> dict[str, int]:
    """Rows per table of the dump at `path`, restored into a scratch database."""
    with scratch_database(settings_dict, "drill") as scratch:
        try:
            pg_restore_into(path, settings_dict, scratch)
        except BackupError as exc:
            raise BackupError(f"drill: {exc}") from None
        with pg_connect(settings_dict, dbname=scratch) as conn:
            return _pg_counts(conn)


# Cleanup ----------------------------------------------------------------------------------


@dataclass
class CleanupPlan:
    """What cleanup keeps and deletes per tier; `held` are kept by a legal hold."""

    keep: list = field(default_factory=list)
    delete: list = field(default_factory=list)
    held: list = field(default_factory=list)
    deleted: list = field(default_factory=list)


def backups_cleanup(
    *, actor, reason: str = "", apply: bool = False, progress: Callable | None = None
) -> CleanupPlan:
    """Keep the newest backups of each tier (config.backup_keep) and those under a legal
    hold; with `apply`, delete the others' files and manifests, mark their rows deleted
    and write a ledger entry for each, one transaction per backup. Without `apply` only
    the plan is returned."""

    _require_run(actor)
    plan = CleanupPlan()
    live = Backup.objects.filter(deleted_at__isnull=True)
    held_ids = set(live.filter(held_q(Backup)).values_list("pk", flat=True))
    for tier in Backup.Tier.values:
        backups = list(live.filter(tier=tier).order_by("-created_at", "-id"))
        keep = config.backup_keep(tier)
        plan.keep += backups[:keep]
        for backup in backups[keep:]:
            (plan.held if backup.pk in held_ids else plan.delete).append(backup)
    if not apply:
        return plan
    directory = config.backup_dir()
    for backup in plan.delete:
        with transaction.atomic():
            # A hold placed since the plan was made still wins.
            row = (
                Backup.objects.select_for_update()
                .filter(pk=backup.pk, deleted_at__isnull=True)
                .exclude(held_q(Backup))
                .first()
            )
            if row is None:
                continue
            row.deleted_at, row.deleted_by = timezone.now(), _actor_label(actor)
            row.save(update_fields=["deleted_at", "deleted_by"])
            ledger_append(
                action=LedgerAction.BACKUP_CLEANUP,
                actor=actor,
                reason=reason,
                target=f"versions.backup:{row.pk}",
                counts={"files": 2, "size": row.size},
                details={"file": row.file, "sha256": row.sha256, "tier": row.tier},
            )
            # Last in the transaction: a file that cannot be removed leaves the row live.
            for path in (directory / row.file, manifest_path(directory / row.file)):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    raise BackupError(f"{path} cannot be deleted: {exc}") from None
        fsync_dir(directory)
        plan.deleted.append(row)
        if progress is not None:
            progress(row)
    return plan
