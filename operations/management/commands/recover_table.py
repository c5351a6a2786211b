from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from operations.backups import BackupError
from operations.restore import table_recover
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "PostgreSQL only: restore one TABLE of a backup into the `recovery` schema "
        "(recovery.TABLE, same columns as the live table) and count the rows the live table "
        "lacks by primary key; the live table is not touched. With --merge, insert those "
        "rows (ON CONFLICT on the primary key DO NOTHING: a row present in the live table "
        "keeps its live values; a row that clashes with a live row on another unique index, "
        "such as a reused email, is left out and listed by its key and the index), record "
        "them in history, erase again what the erasure log names among their subjects, write "
        "a ledger entry, and drop recovery.TABLE unless --keep or rows clashed. "
        "Drop a kept table with: DROP TABLE recovery.TABLE; "
        "A recovery table that stays holds no row about a person erased since the backup."
    )
    FOUND = (
        "Recovered {recovered} row(s) of {table} from {file} into {recovery}; {missing} of "
        "them are missing from the live table."
    )
    INSPECT = (
        "Look at them with: SELECT * FROM {recovery} r WHERE NOT EXISTS (SELECT 1 FROM "
        "{table} l WHERE l.{pk} = r.{pk});\nMerge them with: manage.py recover_table {file} "
        "{table} --merge --reason …"
    )
    MERGED = (
        "Merged {table} from {file}: {inserted} row(s) inserted, {present} already present "
        "(kept as they are), {clashed} left out (they clash with a live row); {history} "
        "history row(s); {replayed} erasure(s) run again."
    )
    CLASH = "  Left out: {pk}={key} clashes with a live row on {clash}."
    CLASHES_MORE = "  … and {more} more clash(es)."
    #: Clashes listed one by one; the rest are counted.
    CLASHES_SHOWN = 50
    MATCHES = (
        "{listed} subject(s) matched an erased person by an email alone: not erased. An "
        "officer confirms or dismisses each in the admin (Erasure replay matches)."
    )
    KEPT = "{recovery} is kept: drop it with DROP TABLE {recovery};"
    ERASED = (
        "{dropped} row(s) about people erased since the backup were deleted from {recovery} "
        "(the erasure log names them)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("file", help="The PostgreSQL backup file (.dump).")
        parser.add_argument("table", help="The table to recover, as the manifest lists it.")
        parser.add_argument(
            "--merge",
            action="store_true",
            help="Insert the rows the live table lacks (needs --reason).",
        )
        parser.add_argument(
            "--keep", action="store_true", help="With --merge: keep recovery.TABLE afterwards."
        )

    def handle(self, *args, file, table, merge, keep, **options):
        try:
            result = table_recover(
                path=file,
                table=table,
                merge=merge,
                keep=keep,
                actor=self.actor,
                reason=self.reason,
            )
        except (BackupError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from exc
        if not result.merged:
            self.stdout.write(
                self.FOUND.format(
                    recovered=result.recovered,
                    table=table,
                    file=result.file,
                    recovery=result.recovery_table,
                    missing=result.missing,
                )
            )
            self._erased(result)
            self.stdout.write(
                self.INSPECT.format(
                    recovery=result.recovery_table,
                    table=table,
                    pk=result.key,
                    file=file,
                )
            )
            return
        self.stdout.write(
            self.style.SUCCESS(
                self.MERGED.format(
                    table=table,
                    file=result.file,
                    inserted=result.inserted,
                    present=result.already_present,
                    clashed=len({clash.key for clash in result.clashes}),
                    history=result.history_rows,
                    replayed=result.erasures_replayed,
                )
            )
        )
        for clash in result.clashes[: self.CLASHES_SHOWN]:
            self.stdout.write(self.CLASH.format(pk=result.key, key=clash.key, clash=clash))
        if len(result.clashes) > self.CLASHES_SHOWN:
            self.stdout.write(
                self.CLASHES_MORE.format(more=len(result.clashes) - self.CLASHES_SHOWN)
            )
        if result.replay_matches_listed:
            self.stdout.write(self.MATCHES.format(listed=result.replay_matches_listed))
        if result.kept:
            self.stdout.write(self.KEPT.format(recovery=result.recovery_table))
            self._erased(result)

    def _erased(self, result):
        if result.erased_rows_dropped:
            self.stdout.write(
                self.ERASED.format(
                    dropped=result.erased_rows_dropped, recovery=result.recovery_table
                )
            )
