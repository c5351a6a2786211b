"""`manage.py backfill shop.Customer full_name --from name`: the backfill of expand-contract."""

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.db import DatabaseError, connection
from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.loader import MigrationLoader

from operations.backfill import BackfillRefused, backfill_planned, column_backfill
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Copy SOURCE into TARGET where TARGET is null, in batches of primary-key ranges up to "
        "the rows that exist when the job starts; a commit per batch, resumable (run it again "
        "after a stop). The middle step of an expand-contract change (docs/migrations.md)."
    )
    DRY = (
        "{model}: {rows} row(s) to backfill ({target} from {source}) in at most {batches} "
        "batch(es) of {batch_size} [dry run: nothing changed]"
    )
    DONE = "{model}: {rows} row(s) backfilled ({target} from {source}) in {batches} batch(es)."
    FINISHED = "Finished: every row up to the job's start is done."
    STOPPED = "Stopped by --max-seconds: run the same command again to resume."
    LEFT = (
        "{left} row(s) written since the job started still lack {target}: run it again to "
        "cover them."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("model", metavar="APP.MODEL", help="The model, e.g. shop.Customer.")
        parser.add_argument("target", help="The column to fill (the new, nullable one).")
        parser.add_argument(
            "--from", dest="source", required=True, metavar="FIELD", help="The column to copy."
        )
        parser.add_argument("--batch-size", type=int, default=1000, metavar="N")
        parser.add_argument(
            "--pause",
            type=float,
            default=0.0,
            metavar="S",
            help="Seconds to wait between batches, leaving the database to the site.",
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            metavar="S",
            help="Stop after S seconds; the next run resumes where it stopped.",
        )
        parser.add_argument(
            "--as-of",
            metavar="MIGRATION",
            help=(
                "Read the model as of this migration of its app (e.g. "
                "0002_customer_full_name_expand): for a column the code no longer declares."
            ),
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count the rows and batches; change nothing."
        )

    def handle(
        self,
        *args,
        model,
        target,
        source,
        batch_size,
        pause,
        max_seconds,
        as_of,
        dry_run,
        **options,
    ):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if pause < 0 or (max_seconds is not None and max_seconds <= 0):
            raise CommandError("--pause must not be negative, --max-seconds must be positive.")
        resolved = self._model(model, as_of)
        values = {"model": resolved._meta.label, "target": target, "source": source}
        try:
            if dry_run:
                rows, batches = backfill_planned(
                    model=resolved, target=target, source=source, batch_size=batch_size
                )
                self.stdout.write(
                    self.DRY.format(**values, rows=rows, batches=batches, batch_size=batch_size)
                )
                return
            report = column_backfill(
                model=resolved,
                target=target,
                source=source,
                actor=self.actor,
                reason=self.reason,
                batch_size=batch_size,
                pause=pause,
                max_seconds=max_seconds,
            )
            left = 0
            if report.finished:
                left, _ = backfill_planned(
                    model=resolved, target=target, source=source, batch_size=batch_size
                )
        except (BackfillRefused, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(
                f"The database refused the backfill of {values['model']}: "
                f"{str(exc).strip().splitlines()[0]}. Is the table at the migration the model "
                "describes (see --as-of and `manage.py showmigrations`)?"
            ) from None
        self.stdout.write(self.DONE.format(**values, rows=report.rows, batches=report.batches))
        self.stdout.write(self.FINISHED if report.finished else self.STOPPED)
        if left:
            self.stdout.write(self.LEFT.format(left=left, target=target))

    @staticmethod
    def _model(label: str, as_of: str | None):
        """The model class: the code's, or the one of a migration state (--as-of)."""
        app_label, _, name = label.partition(".")
        if not name:
            raise CommandError(f"Give the model as APP.MODEL (e.g. shop.Customer), not {label!r}.")
        try:
            current = apps.get_model(app_label, name)
        except LookupError:
            current = None
        if as_of is None:
            if current is None:
                raise CommandError(
                    f"Unknown model {label!r}: give APP.MODEL of an installed app (shop.Customer)."
                )
            return current
        loader = MigrationLoader(connection)
        try:
            migration = loader.get_migration_by_prefix(app_label, as_of)
        except (AmbiguityError, KeyError):
            raise CommandError(
                f"No single migration of {app_label!r} starts with {as_of!r}: see "
                f"`manage.py showmigrations {app_label}`."
            ) from None
        key = (migration.app_label, migration.name)
        if key not in loader.applied_migrations:
            raise CommandError(
                f"{app_label}.{migration.name} is not applied to this database: migrate to it "
                "first."
            )
        state = loader.project_state(key, at_end=True)
        try:
            return state.apps.get_model(app_label, name)
        except LookupError:
            raise CommandError(f"There is no model {label!r} as of {migration.name}.") from None
