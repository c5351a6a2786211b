"""Restoring a backup, and recovering one table from it.

A restore replaces the whole database with the backup's content, except what must outlive
it: the ledger, the erasure log, the backup catalogue, legal holds and retention policies
(`SURVIVING_MODELS`).
Their rows are read before the restore and the ones the restored database lacks are
inserted again, so the ledger's chain and recorded heads still verify, every erasure done
since the backup is still known, and every hold placed since still holds. Those erasures
are then run again (`erasures_replay`): a restore never brings an erased person back.

`table_recover` restores one table of a PostgreSQL backup into the `recovery` schema for
inspection, and with `merge` inserts the rows the live table lacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from uuid import UUID

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.color import no_style
from django.db import IntegrityError, connection, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.utils import timezone

from compliance.models import ErasureLogEntry
from compliance.registry import Erasure, registry
from compliance.selectors import (
    erasure_log_email_matches,
    erasure_log_gone,
    erasure_log_matches,
    erasure_log_names,
    subject_email_fields,
    subject_get,
    subject_ref,
)
from compliance.services import ERASE_PERMISSION, subject_erase
from versions.context import change_context
from versions.files import copy_blocks, file_sha256, write_atomically
from versions.ledger import ledger_append, ledger_verify
from versions.models import AppendOnlyModel, LedgerAction
from versions.setbased import CREATED, history_model_of, history_record

from .backups import (
    RECOVERY_SCHEMA,
    SCHEMA,
    BackupError,
    manifest_read,
    pg_connect,
    pg_environ,
    pg_restore_into,
    scratch_database,
    tool_summary,
)
from .models import ErasureReplayMatch

__all__ = [
    "RECOVERY_SCHEMA",
    "SURVIVING_MODELS",
    "RestoreCheck",
    "ReplayResult",
    "RestoreReport",
    "MergeClash",
    "TableRecovery",
    "restore_check",
    "backup_restore",
    "erasures_replay",
    "replay_match_confirm",
    "replay_match_dismiss",
    "replay_reason",
    "restore_finish",
    "table_recover",
]

# Rows that outlive a restore, in foreign-key order: the append-only ledger (rolling it back
# would look like tampering), the erasure log (erasures since the backup must run again),
# the backup catalogue, legal holds and restrictions with their history (obligations, not
# data: a hold placed since the backup must keep protecting what it holds), and retention
# policies with their history (decisions, not data: a policy disabled or shortened since the
# backup must not purge by the old rule).
SURVIVING_MODELS = [
    "versions.LedgerEntry",
    "versions.LedgerCheckpoint",
    "compliance.ErasureCertificate",
    "compliance.ErasureLogEntry",
    "operations.ErasureReplayMatch",
    "operations.Backup",
    "operations.BackupCheck",
    "retention.LegalHold",
    "retention.HistoricalLegalHold",
    "retention.RetentionPolicy",
    "retention.HistoricalRetentionPolicy",
]


def replay_reason(name: str) -> str:
    """The reason the replayed erasures carry."""
    return f"Replayed after restoring backup {name}"


def _require_superuser(actor, doing: str) -> None:
    """A backup replaces data across every model: only a superuser, or the system (a
    command run without --actor by whoever can run commands), may restore from one."""
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied(f"{actor} may not {doing}: it needs a superuser.")


def _require_reason(reason: str, doing: str) -> None:
    if not (reason or "").strip():
        raise BackupError(f"Give the reason for the {doing} (--reason): it goes in the ledger.")


# Checks ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreCheck:
    """A backup that may be restored here: its manifest, and the migrations it lacks
    (`migrate` runs after the restore when there are some)."""

    path: Path
    manifest: dict
    missing_migrations: list[str] = field(default_factory=list)

    @property
    def tables(self) -> int:
        return len(self.manifest.get("tables") or {})

    @property
    def rows(self) -> int:
        return sum((self.manifest.get("tables") or {}).values())


def _verified_manifest(path: Path) -> dict:
    """The manifest of `path`, once the file's sha256 matches the one it records."""
    manifest = manifest_read(path)
    if file_sha256(path) != manifest.get("sha256"):
        raise BackupError(
            f"{Path(path).name} does not match the sha256 in its manifest: the file changed "
            "since it was written; do not restore it. Use another backup."
        )
    return manifest


def _major_minor(text) -> tuple[int, int]:
    """(major, minor) of a PostgreSQL version: "15.20 (Debian …)", "pg_dump (PostgreSQL)
    15.20", or a server_version_num such as 150020."""
    text = str(text or "")
    if text.isdigit() and int(text) >= 100000:
        return int(text) // 10000, int(text) % 10000
    found = re.search(r"(\d+)(?:\.(\d+))?", text)
    if found is None:
        raise BackupError(f"The manifest's version {text!r} is not a PostgreSQL version.")
    return int(found.group(1)), int(found.group(2) or 0)


def _pg_restore_version() -> tuple[int, int]:
    try:
        result = subprocess.run(
            ["pg_restore", "--version"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BackupError(
            f"pg_restore cannot be run ({exc}): install the PostgreSQL client tools."
        ) from None
    return _major_minor(result.stdout)


def _check_versions(manifest: dict) -> None:
    vendor = manifest.get("vendor")
    if vendor != connection.vendor:
        raise BackupError(
            f"The backup is of a {vendor} database and this one is {connection.vendor}: a "
            "backup can only be restored into a database of its own kind."
        )
    if vendor != "postgresql":
        return
    connection.ensure_connection()
    server = (connection.pg_version // 10000, connection.pg_version % 10000)
    dumped = _major_minor(manifest.get("server_version"))
    if dumped[0] > server[0]:
        raise BackupError(
            f"The backup was made from PostgreSQL {dumped[0]} and this server runs "
            f"{server[0]}: restore it into a server of version {dumped[0]} or newer."
        )
    tool, restorer = _major_minor(manifest.get("dump_tool")), _pg_restore_version()
    if restorer < tool:
        raise BackupError(
            f"The backup was written by pg_dump {tool[0]}.{tool[1]} and pg_restore here is "
            f"{restorer[0]}.{restorer[1]}: install client tools of version {tool[0]} or newer."
        )


def _missing_migrations(manifest: dict) -> list[str]:
    """The code's migrations the backup lacks; BackupError for ones the code does not know."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    applied = {
        (app, name) for app, names in (manifest.get("migrations") or {}).items() for name in names
    }
    unknown = sorted(applied - set(loader.disk_migrations))
    if unknown:
        shown = ", ".join(f"{app}.{name}" for app, name in unknown[:5])
        raise BackupError(
            f"The backup was made by newer code: it has migrations this code does not know "
            f"({shown}{', …' if len(unknown) > 5 else ''}). Restore it with the code that "
            "made it."
        )
    return [f"{app}.{name}" for app, name in sorted(set(loader.graph.nodes) - applied)]


def restore_check(*, path) -> RestoreCheck:
    """Everything checked before a restore changes anything: the file's checksum, the
    database vendor and versions, and a migration state this code can run with."""
    path = Path(path)
    manifest = _verified_manifest(path)
    _check_versions(manifest)
    return RestoreCheck(
        path=path, manifest=manifest, missing_migrations=_missing_migrations(manifest)
    )


# Restore --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreReport:
    """What `backup_restore` did."""

    file: str
    sha256: str
    tables: int
    rows: int
    migrated: list[str]
    survivors_inserted: dict[str, int]
    erasures_replayed: int
    ledger_entry_id: int
    ledger_problem: str = ""
    #: Subjects matched by an email alone, listed for an officer to confirm.
    replay_matches_listed: int = 0


def _content_type_columns(model) -> list[str]:
    """A model's foreign keys to content types: the journal names a content type by its
    natural key, since the restored database may number content types differently."""
    return [
        f.attname
        for f in model._meta.concrete_fields
        if f.is_relation and f.related_model is ContentType
    ]


def _survivors_read() -> dict[str, list[dict]]:
    saved = {}
    names = {pk: [app, model] for pk, app, model in ContentType.objects.values_list(
        "pk", "app_label", "model"
    )}  # fmt: skip
    for label in SURVIVING_MODELS:
        model = apps.get_model(label)
        columns = [f.attname for f in model._meta.concrete_fields]
        rows = list(model._base_manager.order_by("pk").values(*columns))
        for column in _content_type_columns(model):
            for row in rows:  # one gone (a history row's, unchecked) stays a bare id
                row[column] = names.get(row[column], row[column])
        saved[label] = rows
    return saved


def _sequences_reset(model_list) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT follows explicit keys by itself
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), model_list):
            cursor.execute(sql)


def _content_types_resolved(row: dict, columns: list[str]) -> dict:
    """The journal's natural keys of content types as this database's ids."""
    resolved = {}
    for column in columns:
        if not isinstance(row[column], list):
            continue  # a bare id (its content type was gone already) or None
        app_label, model = row[column]
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        resolved[column] = content_type.pk
    return resolved


def _survivors_insert(saved: dict[str, list[dict]]) -> dict[str, list]:
    """Insert the saved rows the restored database lacks (by primary key); their keys by
    model. One transaction: all of them, or none."""
    inserted = {}
    with transaction.atomic():
        ContentType.objects.clear_cache()  # the restore replaced the table
        for label, rows in saved.items():
            model = apps.get_model(label)
            key = model._meta.pk.attname
            columns = _content_type_columns(model)
            if columns:
                rows = [{**row, **_content_types_resolved(row, columns)} for row in rows]
            present = set(model._base_manager.values_list("pk", flat=True))
            missing = [row for row in rows if row[key] not in present]
            if not issubclass(model, AppendOnlyModel):
                # The live state is the true one: a row deleted since the backup (a policy)
                # goes again, and one changed since (a backup cleanup marked, a policy
                # disabled or renamed) takes its live values, before any insert can clash
                # with the restored values of a unique column.
                gone = sorted(present - {row[key] for row in rows})
                if gone:
                    model._base_manager.filter(pk__in=gone).delete()
                for row in rows:
                    if row[key] in present:
                        model._base_manager.filter(pk=row[key]).update(**row)
            model._base_manager.bulk_create([model(**row) for row in missing], batch_size=500)
            if not issubclass(model, AppendOnlyModel):
                for row in missing:  # bulk_create set auto_now dates to now: the live ones
                    model._base_manager.filter(pk=row[key]).update(**row)
            inserted[label] = [row[key] for row in missing]
        _sequences_reset([apps.get_model(label) for label in saved])
    return inserted


def _tables_the_backup_lacks(manifest: dict) -> list[str]:
    """The project's tables in the live database that the backup has no copy of: tables
    that migrations newer than the backup created. The restore drops them, so that
    `migrate` can create them again after it."""
    with connection.cursor() as cursor:
        live = connection.introspection.django_table_names(only_existing=True, include_views=False)
        existing = set(connection.introspection.table_names(cursor))
    return sorted(t for t in live if t in existing and t not in manifest["tables"])


def _foreign_keys_of(tables) -> list[tuple[str, str]]:
    """(table, constraint) of each foreign key the live database has on `tables`.

    A table the dump holds may have gained a foreign key since the backup (a newer migration
    added a column): pg_restore's clean step drops only the dump's own constraints, so
    dropping the key that one references would fail. The table is replaced anyway, so the
    restore drops its foreign keys first."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cl.relname, co.conname FROM pg_constraint co "
            "JOIN pg_class cl ON cl.oid = co.conrelid "
            "JOIN pg_namespace ns ON ns.oid = cl.relnamespace "
            "WHERE co.contype = 'f' AND ns.nspname = current_schema() AND cl.relname = ANY(%s) "
            "ORDER BY cl.relname, co.conname",
            [sorted(tables)],
        )
        return cursor.fetchall()


def _restore_postgresql(path: Path, manifest: dict) -> None:
    """Replace the database's tables with the dump's in one transaction: pg_restore's SQL
    (dropping every table the dump holds first) fed to psql with --single-transaction,
    after dropping the tables the dump lacks. Any error rolls it all back."""
    settings_dict = connection.settings_dict
    quote = connection.ops.quote_name
    drops = "".join(
        f"ALTER TABLE {quote(table)} DROP CONSTRAINT IF EXISTS {quote(name)};\n"
        for table, name in _foreign_keys_of(manifest["tables"])
    ) + "".join(
        f"DROP TABLE IF EXISTS {quote(t)} CASCADE;\n" for t in _tables_the_backup_lacks(manifest)
    )
    connections.close_all()  # the restore drops the tables: no session of ours may hold them
    env = pg_environ(settings_dict)
    with tempfile.TemporaryFile() as psql_errors, tempfile.TemporaryFile() as dump_errors:
        psql = subprocess.Popen(
            ["psql", "--no-psqlrc", "--quiet", "--single-transaction", "-v", "ON_ERROR_STOP=1",
             "--dbname", settings_dict["NAME"]],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=psql_errors, env=env,
        )  # fmt: skip
        try:
            psql.stdin.write(drops.encode())
            psql.stdin.flush()
            dump = subprocess.run(
                ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
                 "--file", "-", str(path)],
                stdout=psql.stdin, stderr=dump_errors, env=env, check=False,
            )  # fmt: skip
        except BrokenPipeError:
            dump = None  # psql stopped at an error: it says which
        finally:
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
            psql.wait()
        problems = []
        for returncode, errors in [(dump and dump.returncode, dump_errors),
                                   (psql.returncode, psql_errors)]:  # fmt: skip
            errors.seek(0)
            if returncode:  # the tool's error class: its output can quote rows
                text = tool_summary(errors.read().decode(errors="replace"))
                problems.append(f"exit status {returncode}: {text}")
        if problems:
            raise BackupError(
                "The restore failed; the database is as it was (one transaction): "
                + " ".join(problems)
            )


def _restore_sqlite(path: Path) -> None:
    connections.close_all()  # an in-memory database (tests) stays open and is overwritten
    connection.ensure_connection()
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        source.backup(connection.connection)
    except sqlite3.Error as exc:
        raise BackupError(f"The SQLite backup could not be copied in: {exc}.") from None
    finally:
        source.close()


def journal_path(path: Path) -> Path:
    """Where a restore of the backup at `path` keeps the rows that must outlive it until
    they are back in the database (beside the backup, readable by the application only)."""
    return Path(path).with_name(Path(path).name + ".restore-journal.json")


def _unfinished(name: str, path: Path, step: str, exc: Exception) -> BackupError:
    return BackupError(
        f"The database was restored from {name}, but {step} did not finish: {exc}. Erased "
        f"people may be back in it and the ledger's newest entries are kept in "
        f"{journal_path(path).name}: once the cause is fixed, finish with `manage.py restore "
        f"{path} --replay-erasures --reason …`, then run `verify_ledger`."
    )


def _journal_value(value):
    """A value JSON lacks, as text its field reads back exactly (datetimes to the
    microsecond: a ledger entry's hash covers its time)."""
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot go into a restore journal")


def restore_finish(*, path, actor, reason: str) -> tuple[dict[str, int], ReplayResult]:
    """Finish a restore of the backup at `path` that stopped after the database was
    replaced: put back the rows its journal kept (when the restore got that far, nothing is
    left to put back), then erase again every subject the erasure log names (it cannot tell
    which erasures the backup lacked). Returns (rows put back per model, the replay's result)."""
    _require_superuser(actor, "finish a restore")
    _require_reason(reason, "erasure replay")
    journal = journal_path(path)
    inserted = {}
    if journal.is_file():
        inserted = _survivors_insert(json.loads(journal.read_text(encoding="utf-8")))
    replayed = erasures_replay(actor=actor, reason=reason)
    journal.unlink(missing_ok=True)
    return {label: len(keys) for label, keys in inserted.items()}, replayed


def backup_restore(*, path, actor, reason: str) -> RestoreReport:
    """Replace the database with the backup at `path`, keeping the rows of
    `SURVIVING_MODELS` written since, then run again every erasure the backup does not
    reflect, and append a ledger entry. Refused (BackupError, nothing changed) by
    `restore_check`."""
    _require_superuser(actor, "restore a backup")
    _require_reason(reason, "restore")
    if connection.in_atomic_block:
        # The restore replaces every table under the connections it closes.
        raise BackupError("A restore cannot run inside a transaction: call it outside one.")
    check = restore_check(path=path)
    path, name = check.path, check.path.name
    with change_context(user=actor, reason=reason):
        saved = _survivors_read()
        journal = journal_path(path)
        # On disk before anything changes: if this process dies after the database was
        # replaced, `restore_finish` puts the rows back from it.
        write_atomically(journal, json.dumps(saved, default=_journal_value))
        os.chmod(journal, 0o600)
        if connection.vendor == "postgresql":
            _restore_postgresql(path, check.manifest)
        else:
            _restore_sqlite(path)
        step = "the migrations"
        try:
            if check.missing_migrations:
                call_command("migrate", interactive=False, verbosity=0)
            step = "putting back the ledger and erasure log"
            inserted = _survivors_insert(saved)
            step = "the erasure replay"
            replayed = erasures_replay(
                actor=actor,
                reason=replay_reason(name),
                certificates=inserted.get("compliance.ErasureCertificate", []),
            )
            step = "the ledger entry"
            survivors = {label: len(keys) for label, keys in inserted.items()}
            with transaction.atomic():
                entry = ledger_append(
                    action=LedgerAction.BACKUP_RESTORE,
                    actor=actor,
                    reason=reason,
                    target=connection.alias,
                    counts={
                        "tables": check.tables,
                        "rows": check.rows,
                        "survivors_inserted": sum(survivors.values()),
                        "erasures_replayed": replayed.erased,
                        "replay_matches_listed": replayed.listed,
                    },
                    details={"file": name, "sha256": check.manifest["sha256"]},
                )
        except Exception as exc:
            raise _unfinished(name, path, step, exc) from exc
        journal.unlink()
        verified = ledger_verify(actor=actor, reason=f"After restoring backup {name}")
    return RestoreReport(
        file=name,
        sha256=check.manifest["sha256"],
        tables=check.tables,
        rows=check.rows,
        migrated=check.missing_migrations,
        survivors_inserted=survivors,
        erasures_replayed=replayed.erased,
        ledger_entry_id=entry.pk,
        ledger_problem=verified.problem,
        replay_matches_listed=replayed.listed,
    )


# Erasure replay ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayResult:
    """What an erasure replay did: subjects erased again (matched by key), and matches by
    an email alone listed for an officer to confirm (`ErasureReplayMatch`)."""

    erased: int = 0
    listed: int = 0


def erasures_replay(*, actor, reason: str, certificates=None, subject_keys=None) -> ReplayResult:
    """Erase again every subject in the database the erasure log names by key, those whose
    row is gone but whose history rows remain included; list for an officer the subjects it
    names by an email alone. `certificates` limits the log to those erasures (the ones a
    restored backup lacks), `subject_keys` the subjects (the ones merged rows refer to);
    None means all: run alone, after a restore that stopped before its replay finished, it
    cannot tell which erasures the backup lacked. Each subject erased is one
    `subject_erase`, with its certificate and ledger entry; a subject with nothing left to
    erase changes nothing.

    A match by email alone is never erased here: an email an erased person once had may
    since be someone else's (a new customer who signed up with it). It becomes an
    `ErasureReplayMatch`, naming the log entry and the field that matched, for an officer to
    confirm (`replay_match_confirm`) or dismiss (`replay_match_dismiss`)."""

    _require_superuser(actor, "replay erasures after a restore")
    _require_reason(reason, "erasure replay")
    if certificates is not None and not certificates:
        return ReplayResult()
    if subject_keys is not None and not subject_keys:
        return ReplayResult()
    entries = ErasureLogEntry.objects.all()
    if certificates is not None:
        entries = entries.filter(certificate_id__in=list(certificates))
    subjects = erasure_log_matches(entries.filter(kind=ErasureLogEntry.Kind.KEY))
    if subject_keys is not None:
        subjects = subjects.filter(pk__in=list(subject_keys))
    subjects = list(subjects)
    # People whose row is gone (hard-deleted before the backup): their history rows are back.
    wanted = None if subject_keys is None else {str(key) for key in subject_keys}
    subjects += [
        subject_get(key)
        for key in erasure_log_gone(entries)
        if wanted is None or str(key) in wanted
    ]
    erased = 0
    for subject in subjects:
        result = subject_erase(subject=subject, actor=actor, reason=reason)
        erased += result.certificate is not None
    by_key = {str(subject.pk) for subject in subjects}
    matches = [
        (str(key), name, entry)
        for key, name, entry in erasure_log_email_matches(entries)
        if str(key) not in by_key and (wanted is None or str(key) in wanted)
    ]
    return ReplayResult(erased=erased, listed=_replay_matches_list(matches, reason=reason))


def _replay_matches_list(matches, *, reason: str) -> int:
    """Record the matches by email alone that no earlier replay listed (the same subject,
    field and keyed hash); return how many this call inserted. A match another replay
    inserts meanwhile (its row not yet committed when this one looked) is a conflict on
    the unique key: that insert waits for the other and is dropped, and is not counted."""

    if not matches:
        return 0
    listed = set(
        ErasureReplayMatch.objects.filter(
            subject_key__in={key for key, _, _ in matches}
        ).values_list("subject_key", "field", "log_entry__digest")
    )
    digests = dict(
        apps.get_model("compliance.ErasureLogEntry")
        .objects.filter(pk__in={entry for _, _, entry in matches})
        .values_list("pk", "digest")
    )
    now = timezone.now()
    new = [
        ErasureReplayMatch(
            created_at=now, replay=reason[:300], log_entry_id=entry, field=name, subject_key=key
        )
        for key, name, entry in matches
        if (key, name, digests[entry]) not in listed
    ]
    inserted = 0
    for match in new:  # one savepoint each: a conflict drops that row only
        try:
            with transaction.atomic():
                match.save(force_insert=True)
        except IntegrityError:
            continue
        inserted += 1
    return inserted


def _replay_match_decide(
    *, match, actor, reason: str, status: str, erase: bool, plan_hash: str | None = None
):
    """Confirm or dismiss a pending match in one transaction, with its ledger entry; with
    `erase`, the subject is erased first, through `subject_erase`."""

    if actor is None or not actor.has_perm(ERASE_PERMISSION):
        raise PermissionDenied(f"{actor} may not decide an erasure replay match: it needs the "
                               "erasure permission.")  # fmt: skip
    if not (reason or "").strip():
        raise BackupError("Give the reason for the decision: it goes in the ledger.")
    with change_context(user=actor, reason=reason), transaction.atomic():
        # Two officers deciding at once: the second sees the first's decision.
        match = ErasureReplayMatch.objects.select_for_update().get(pk=match.pk)
        if match.status != ErasureReplayMatch.Status.PENDING:
            raise BackupError(
                f"Match #{match.pk} was already decided ({match.get_status_display()} by "
                f"{match.decided_by})."
            )
        subject = subject_get(match.subject_key)
        result = None
        if erase:
            if subject is None:
                raise BackupError(
                    f"Subject {match.subject_key} is gone and no history row of theirs is "
                    "left: nothing to erase. Dismiss the match."
                )
            result = subject_erase(subject=subject, actor=actor, reason=reason, plan_hash=plan_hash)
        match.status = status
        match.decided_at = timezone.now()
        match.decided_by = str(actor)
        match.decision_reason = reason
        match.erasure = result.certificate if result is not None else None
        match.save()
        ledger_append(
            action=LedgerAction.REPLAY_MATCH,
            actor=actor,
            reason=reason,
            target=match._meta.label,
            counts={"erased": int(result is not None and result.certificate is not None)},
            details={
                "match": match.pk,
                "decision": status,
                "log_entry": match.log_entry_id,
                "erased_by_certificate": match.log_entry.certificate_id,
                "field": match.field,
                **({"subject_ref": subject_ref(subject)} if subject is not None else {}),
                **({"erasure": match.erasure_id} if match.erasure_id else {}),
            },
        )
    return result


def replay_match_confirm(*, match, actor, reason: str, plan_hash: str | None = None):
    """An officer confirms that the subject of a match by email alone is the erased person:
    the subject is erased (`subject_erase`, its certificate and ledger entry; refused if
    its plan differs from `plan_hash`, the one the officer saw), and the decision is a
    ledger entry of its own. Returns the erasure's result."""

    return _replay_match_decide(
        match=match, actor=actor, reason=reason, status=ErasureReplayMatch.Status.CONFIRMED,
        erase=True, plan_hash=plan_hash,
    )  # fmt: skip


def replay_match_dismiss(*, match, actor, reason: str) -> None:
    """An officer dismisses a match by email alone (the subject is someone else): nothing is
    erased; the decision is a ledger entry."""

    _replay_match_decide(
        match=match, actor=actor, reason=reason, status=ErasureReplayMatch.Status.DISMISSED,
        erase=False,
    )  # fmt: skip


# Single-table recovery ----------------------------------------------------------------------


@dataclass(frozen=True)
class MergeClash:
    """A recovered row the live table lacks by primary key that a merge leaves out: its
    values of a unique index's columns are a live row's (a reused email). Named by the
    row's key and the index, never by the value."""

    key: object
    index: str
    columns: tuple[str, ...]

    def __str__(self) -> str:
        return f"{', '.join(self.columns)} (unique index {self.index})"


@dataclass(frozen=True)
class TableRecovery:
    """What `table_recover` found, and with `merge` did."""

    file: str
    table: str
    recovered: int
    missing: int
    #: The table's primary-key column, to compare the two tables by.
    key: str = ""
    merged: bool = False
    inserted: int = 0
    already_present: int = 0
    history_rows: int = 0
    erasures_replayed: int = 0
    #: Subjects of merged rows matched by an email alone, listed for an officer to confirm.
    replay_matches_listed: int = 0
    kept: bool = True
    #: Rows about people erased since the backup, deleted from the kept recovery table.
    erased_rows_dropped: int = 0
    #: Rows left out of the merge because they clash with a live row on a unique index.
    clashes: tuple[MergeClash, ...] = ()

    @property
    def recovery_table(self) -> str:
        return f"{RECOVERY_SCHEMA}.{self.table}"


def _model_of_table(table: str, manifest: dict):
    if table not in (manifest.get("tables") or {}):
        raise BackupError(
            f"The backup has no table {table!r}: give one of the tables its manifest lists."
        )
    models_by_table = {
        m._meta.db_table: m
        for m in apps.get_models(include_auto_created=True)
        if not m._meta.proxy and m._meta.managed
    }
    with connection.cursor() as cursor:
        live = set(connection.introspection.table_names(cursor))
    model = models_by_table.get(table)
    if model is None or table not in live:
        raise BackupError(
            f"{table!r} is not a table of this application's database: give the table of a "
            "model that exists here."
        )
    return model


def _columns(cursor, table: str) -> list[str]:
    """The columns of `table` in order (a Django or a psycopg cursor, either database)."""
    cursor.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
        "AND NOT attisdropped ORDER BY attnum",
        [connection.ops.quote_name(table)],
    )
    return [row[0] for row in cursor.fetchall()]


def _copy_into_recovery(path: Path, table: str) -> int:
    """Restore `table` from the backup into a scratch database, then stream its rows with
    COPY into recovery.<table> (same columns as the live table). The scratch database is
    dropped whatever happens. Returns the rows copied."""
    settings_dict = connection.settings_dict
    quote = connection.ops.quote_name
    target = f"{quote(RECOVERY_SCHEMA)}.{quote(table)}"
    with scratch_database(settings_dict, "recovery") as scratch:
        pg_restore_into(path, settings_dict, scratch, table, schema=SCHEMA)
        with (
            pg_connect(settings_dict, dbname=scratch) as source,
            source.cursor() as source_cursor,
            connection.cursor() as cursor,
        ):
            cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(RECOVERY_SCHEMA)}")
            cursor.execute(f"DROP TABLE IF EXISTS {target}")
            cursor.execute(f"CREATE TABLE {target} (LIKE {quote(table)} INCLUDING DEFAULTS)")
            present = set(_columns(source_cursor, table))
            live = [column for column in _columns(cursor, table) if column in present]
            names = ", ".join(map(quote, live))
            copy_out = f"COPY (SELECT {names} FROM {quote(table)}) TO STDOUT"
            with cursor.cursor.copy(f"COPY {target} ({names}) FROM STDIN") as into:
                for block in copy_blocks(source_cursor, copy_out, []):
                    into.write(block)
            cursor.execute(f"SELECT count(*) FROM {target}")
            return cursor.fetchone()[0]


def _subjects_of(model, keys) -> set | None:
    """The keys of the subjects the rows `keys` of `model` are about, or None when the
    registry does not cover `model`."""

    entry = registry.get(model)
    if entry is None:
        return None
    subjects = set()
    rows = model._base_manager.filter(pk__in=list(keys))
    for subject_path in entry.subject_paths:
        subjects.update(rows.exclude(**{f"{subject_path}__isnull": True}).values_list(
            subject_path, flat=True
        ))  # fmt: skip
    return subjects


def _replayed_after_merge(model) -> bool:
    """Whether a merge of `model`'s rows erases their subjects again (a registered model)."""

    return registry.get(model) is not None


def _erased_rows_dropped(model, table: str) -> int:
    """Delete from recovery.<table> the rows about people the erasure log names, and return
    how many: a table kept for inspection must not bring an erased person's data back.

    A row's subject is found through the registry's subject paths: its own key and emails
    for the subject's table (or its history), a foreign key to the subject, or a longer path
    followed through the live rows it starts at. A row whose subject cannot be told (a
    longer path whose live row is gone) is kept, and so are the rows of a model whose
    erasure retains them for a legal reason: the live table keeps them too."""

    tracked = getattr(model, "instance_type", model)  # a history table: its model's entry
    entry = registry.get(tracked)
    if entry is None or entry.erasure == Erasure.RETAIN:
        return 0
    quote = connection.ops.quote_name
    target = f"{quote(RECOVERY_SCHEMA)}.{quote(table)}"
    doomed: dict[str, set] = {}  # column -> values whose rows go
    with connection.cursor() as cursor:
        own_key = tracked._meta.pk.attname
        for subject_path in entry.subject_lookups(history=True):  # a copy's columns
            if subject_path == own_key:
                columns = [tracked._meta.pk.column] + [
                    tracked._meta.get_field(name).column for name in subject_email_fields(tracked)
                ]
                cursor.execute(f"SELECT {', '.join(map(quote, columns))} FROM {target}")
                rows = cursor.fetchall()
                keys, _ = erasure_log_names(keys={row[0] for row in rows})
                doomed.setdefault(columns[0], set()).update(keys)
                for index, column in enumerate(columns[1:], start=1):
                    _, emails = erasure_log_names(emails={row[index] for row in rows})
                    doomed.setdefault(column, set()).update(emails)
                continue
            first, _, rest = subject_path.partition("__")
            field = tracked._meta.get_field(first)
            cursor.execute(
                f"SELECT DISTINCT {quote(field.column)} FROM {target} "
                f"WHERE {quote(field.column)} IS NOT NULL"
            )
            values = [row[0] for row in cursor.fetchall()]
            subjects = {value: value for value in values}
            if rest:  # through the live rows: a value whose row is gone is not in the map
                subjects = dict(
                    field.related_model._base_manager.filter(pk__in=values).values_list("pk", rest)
                )
            erased, _ = erasure_log_names(keys=set(subjects.values()))
            doomed.setdefault(field.column, set()).update(
                value for value, subject in subjects.items() if subject in erased
            )
        dropped = 0
        for column, values in doomed.items():
            if values:
                cursor.execute(
                    f"DELETE FROM {target} WHERE {quote(column)} = ANY(%s)", [list(values)]
                )
                dropped += cursor.rowcount
    return dropped


def _merge_clashes(cursor, table: str, target: str, pk: str) -> list[MergeClash]:
    """The rows of `target` that the live `table` lacks by primary key but whose values of a
    unique index (other than the primary key; its predicate and expressions included) are
    a live row's: inserting them would fail, so a merge leaves them out. One query per
    unique index, the index read from the catalogue; NULLs never clash, as in the index."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid), ARRAY(SELECT "
        "pg_get_indexdef(i.indexrelid, k, true) FROM generate_series(1, i.indnkeyatts) k) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = "
        "to_regclass(%s) AND i.indisunique AND NOT i.indisprimary AND i.indisvalid "
        "ORDER BY c.relname",
        [connection.ops.quote_name(table)],
    )
    live = connection.ops.quote_name(table)
    clashes = []
    for index, predicate, keys in cursor.fetchall():
        where = f"({predicate})" if predicate else "TRUE"
        # Unqualified, each key and the predicate name the columns of the innermost FROM:
        # the recovery table's in the derived table, the live table's in EXISTS.
        computed = ", ".join(f"({key}) AS _clash_{n}" for n, key in enumerate(keys))
        same = " AND ".join(f"({key}) = r._clash_{n}" for n, key in enumerate(keys))
        cursor.execute(
            f"SELECT r.{pk} FROM (SELECT {pk}, {computed} FROM {target} WHERE {where}) r "
            f"WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE l.{pk} = r.{pk}) "
            f"AND EXISTS (SELECT 1 FROM {live} WHERE {where} AND {same}) ORDER BY 1"
        )
        clashes += [MergeClash(row[0], index, tuple(keys)) for row in cursor.fetchall()]
    return clashes


def table_recover(
    *, path, table: str, merge: bool, actor, reason: str, keep: bool = False
) -> TableRecovery:
    """Restore `table` from the PostgreSQL backup at `path` into recovery.<table>, and say
    how many of its rows the live table lacks (by primary key). With `merge`, insert those
    rows (history rows "+" for a tracked model), erase again what the erasure log names
    among the subjects they refer to, append a ledger entry, and drop recovery.<table>
    unless `keep`."""
    _require_superuser(actor, "recover a table from a backup")
    if connection.vendor != "postgresql":
        raise BackupError(
            "recover_table needs PostgreSQL; on SQLite restore the whole backup with `restore`."
        )
    if merge:
        _require_reason(reason, "table recovery")
    path = Path(path)
    manifest = _verified_manifest(path)
    _check_versions(manifest)
    model = _model_of_table(table, manifest)
    quote = connection.ops.quote_name
    target, live = f"{quote(RECOVERY_SCHEMA)}.{quote(table)}", quote(table)
    pk = quote(model._meta.pk.column)
    with change_context(user=actor, reason=reason):
        copied = _copy_into_recovery(path, table)
        # Rows about people erased since go before anything reads the copy: all of them for
        # an inspection; before a merge, those the erasure replay after it cannot reach (a
        # history table's). A merge of a registered model's rows inserts them, then erases
        # those people again, so that what their erasure kept (anonymised) comes back so.
        erased = 0
        if not merge or not _replayed_after_merge(model):
            erased = _erased_rows_dropped(model, table)
        recovered = copied - erased
        missing_sql = (
            f"SELECT count(*) FROM {target} r WHERE NOT EXISTS "
            f"(SELECT 1 FROM {live} l WHERE l.{pk} = r.{pk})"
        )
        with connection.cursor() as cursor:
            cursor.execute(missing_sql)
            missing = cursor.fetchone()[0]
        if not merge:
            return TableRecovery(
                path.name,
                table,
                recovered,
                missing,
                key=model._meta.pk.column,
                erased_rows_dropped=erased,
            )
        with transaction.atomic():
            with connection.cursor() as cursor:
                # A row the live table has (by primary key) keeps its live values; one that
                # clashes on another unique index is left out and reported, never inserted
                # over a live row or silently counted as present.
                clashes = _merge_clashes(cursor, table, target, pk)
                names = ", ".join(quote(column) for column in _columns(cursor, table))
                cursor.execute(
                    f"INSERT INTO {live} ({names}) SELECT {names} FROM {target} "
                    f"WHERE NOT ({pk} = ANY(%s)) ON CONFLICT ({pk}) DO NOTHING RETURNING {pk}",
                    [sorted({clash.key for clash in clashes})],
                )
                keys = [row[0] for row in cursor.fetchall()]
            clashed = len({clash.key for clash in clashes})
            _sequences_reset([model])
            history_rows = 0
            if keys and history_model_of(model) is not None:
                history_rows = history_record(
                    model._base_manager.filter(pk__in=keys), history_type=CREATED
                )
            subjects = _subjects_of(model, keys) if keys else None
            replayed = ReplayResult()
            if subjects:
                replayed = erasures_replay(
                    actor=actor, reason=replay_reason(path.name), subject_keys=subjects
                )
            ledger_append(
                action=LedgerAction.TABLE_RECOVER,
                actor=actor,
                reason=reason,
                target=model._meta.label,
                counts={
                    "recovered": recovered,
                    "inserted": len(keys),
                    "already_present": recovered - len(keys) - clashed,
                    "clashed": clashed,
                    "history_rows": history_rows,
                    "erasures_replayed": replayed.erased,
                    "replay_matches_listed": replayed.listed,
                },
                details={"file": path.name, "table": table},
            )
            keep = keep or bool(clashes)  # the clashing rows stay there to be looked at
            if keep:
                erased += _erased_rows_dropped(model, table)
            else:
                with connection.cursor() as cursor:
                    cursor.execute(f"DROP TABLE {target}")
    return TableRecovery(
        path.name,
        table,
        recovered,
        missing,
        key=model._meta.pk.column,
        merged=True,
        inserted=len(keys),
        already_present=recovered - len(keys) - clashed,
        history_rows=history_rows,
        erasures_replayed=replayed.erased,
        replay_matches_listed=replayed.listed,
        kept=keep,
        erased_rows_dropped=erased,
        clashes=tuple(clashes),
    )
