import sys

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.template.defaultfilters import filesizeformat
from tqdm import tqdm

from operations.backups import BackupError, backup_create
from operations.config import backup_dir
from operations.models import Backup
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Back up the database into BACKUP_DIR: pg_dump -Fc of one snapshot on PostgreSQL "
        "(the SQLite online backup on SQLite), with a manifest beside it (sha256, size, "
        "rows per table of that same snapshot, migrations, server and tool versions). The "
        "file appears only once complete and synced; it is recorded in the catalogue and "
        "the ledger. Exits 1 with the reason when the backup cannot be made."
    )
    DONE = "Backup written: {path} ({size}, {tables} tables, {rows} rows, sha256 {sha256})"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--tier",
            choices=Backup.Tier.values,
            default=Backup.Tier.DAILY,
            help="Retention tier of the backup; cleanup keeps the newest of each tier "
            "(BACKUP_KEEP_DAILY, _WEEKLY, _MONTHLY). Default: daily.",
        )

    def handle(self, *args, tier, **options):
        bar = tqdm(
            unit="B",
            unit_scale=True,
            desc="backup",
            disable=not sys.stderr.isatty(),
            file=sys.stderr,
        )
        try:
            backup = backup_create(
                tier=tier,
                actor=self.actor,
                reason=self.reason,
                progress=lambda written: bar.update(written - bar.n),
            )
        except (BackupError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        tables = backup.manifest["tables"]
        self.stdout.write(
            self.style.SUCCESS(
                self.DONE.format(
                    path=backup_dir() / backup.file,
                    size=filesizeformat(backup.size),
                    tables=len(tables),
                    rows=sum(tables.values()),
                    sha256=backup.sha256,
                )
            )
        )
