from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.db import connection

from operations.backups import BackupError
from operations.restore import (
    SURVIVING_MODELS,
    backup_restore,
    replay_reason,
    restore_check,
    restore_finish,
)
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Replace the database with a backup (a file written by `backup`). Refused, with "
        "nothing changed, when the file does not match its manifest's sha256, was made by "
        "another database vendor, a newer PostgreSQL or pg_dump, or newer code (migrations "
        "this code does not know); a backup older than the code is migrated after the "
        "restore. The ledger and the erasure log outlive the restore: their rows written "
        "since the backup are put back, and every erasure the backup does not reflect is run "
        "again. Shows what will happen and asks for the database's name unless --yes. "
        "--replay-erasures runs only the erasure replay (after a restore that did not finish)."
    )
    PLAN = (
        "Backup {file}\n  made {created_at} ({tier}) of database {database} ({vendor})\n"
        "  {tables} tables, {rows} rows"
    )
    MIGRATE = "  The backup lacks {count} migration(s) of this code: `migrate` runs after it."
    KEEPS = "  Kept from the live database: rows of {models} written since the backup."
    DRY_RUN = "[dry run: checks passed, nothing changed]"
    PROMPT = "This replaces the database {name}. Type its name to restore: "
    NOT_CONFIRMED = "Not confirmed: nothing changed."
    DONE = (
        "Restored {file}: {tables} tables, {rows} rows; {survivors} row(s) of the ledger, "
        "erasure log and backup catalogue put back; {replayed} erasure(s) run again; ledger "
        "entry #{entry}."
    )
    MIGRATED = "Migrated after the restore: {migrations}."
    LEDGER_BROKEN = (
        "The database was restored, but the ledger does not verify: {problem}. Run "
        "`verify_ledger` and look at the entries it names."
    )
    REPLAYED = "Erasure replay: {replayed} subject(s) erased again."
    MATCHES = (
        "{listed} subject(s) matched an erased person by an email alone: not erased. An "
        "officer confirms or dismisses each in the admin (Erasure replay matches)."
    )
    PUT_BACK = "Put back {rows} row(s) of the ledger, erasure log and catalogue from the journal."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", help="The backup file (its manifest must be beside it).")
        parser.add_argument(
            "--dry-run", action="store_true", help="Run the checks and show the plan only."
        )
        parser.add_argument(
            "--yes", action="store_true", help="Restore without asking for the database name."
        )
        parser.add_argument(
            "--replay-erasures",
            action="store_true",
            help="Finish a restore that stopped after the database was replaced: put back the "
            "ledger, erasure log and catalogue rows its journal kept, then erase again every "
            "subject the erasure log names.",
        )

    def handle(self, *args, file, dry_run, yes, replay_erasures, **options):
        try:
            if replay_erasures:
                put_back, replayed = restore_finish(
                    path=Path(file), actor=self.actor, reason=replay_reason(Path(file).name)
                )
                if put_back:
                    self.stdout.write(self.PUT_BACK.format(rows=sum(put_back.values())))
                self.stdout.write(self.REPLAYED.format(replayed=replayed.erased))
                if replayed.listed:
                    self.stdout.write(self.MATCHES.format(listed=replayed.listed))
                return
            check = restore_check(path=file)
            self._show(check)
            if dry_run:
                self.stdout.write(self.DRY_RUN)
                return
            if not self.reason.strip():
                raise CommandError("Give the reason for the restore with --reason.")
            name = str(connection.settings_dict["NAME"])
            if not yes and self.confirm(self.PROMPT.format(name=name)) != name:
                raise CommandError(self.NOT_CONFIRMED)
            report = backup_restore(path=file, actor=self.actor, reason=self.reason)
        except (BackupError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        if report.migrated:
            self.stdout.write(self.MIGRATED.format(migrations=", ".join(report.migrated)))
        self.stdout.write(
            self.style.SUCCESS(
                self.DONE.format(
                    file=report.file,
                    tables=report.tables,
                    rows=report.rows,
                    survivors=sum(report.survivors_inserted.values()),
                    replayed=report.erasures_replayed,
                    entry=report.ledger_entry_id,
                )
            )
        )
        if report.replay_matches_listed:
            self.stdout.write(self.MATCHES.format(listed=report.replay_matches_listed))
        if report.ledger_problem:
            raise CommandError(self.LEDGER_BROKEN.format(problem=report.ledger_problem))

    def _show(self, check):
        manifest = check.manifest
        self.stdout.write(
            self.PLAN.format(
                file=check.path.name,
                created_at=manifest.get("created_at", "?"),
                tier=manifest.get("tier", "?"),
                database=manifest.get("database", "?"),
                vendor=manifest.get("vendor"),
                tables=check.tables,
                rows=check.rows,
            )
        )
        for table, count in sorted((manifest.get("tables") or {}).items()):
            self.stdout.write(f"    {table}: {count}")
        if check.missing_migrations:
            self.stdout.write(self.MIGRATE.format(count=len(check.missing_migrations)))
        self.stdout.write(self.KEEPS.format(models=", ".join(SURVIVING_MODELS)))
