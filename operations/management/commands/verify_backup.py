from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from operations.backups import backup_verify
from operations.config import backup_dir
from operations.models import Backup
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Check a backup file against its manifest: the sha256 must match and the archive "
        "must list (pg_restore --list; SQLite: integrity check). With --drill, also restore "
        "it into a scratch database (dropped afterwards) and compare the rows of every "
        "table with the manifest. The outcome is recorded on the backup's page. Exits 0 when "
        "it passes, 1 otherwise."
    )
    OK = "OK: {detail}"
    FAILED = "{kind} failed: {detail}"
    NO_BACKUP = (
        "The catalogue holds no backup file: make one with `manage.py backup`, or give the "
        "path of a backup file."
    )
    BOTH = "Give either the path of a backup file or --latest, not both."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "file",
            nargs="?",
            help="Backup file to check (a name in BACKUP_DIR or a path); it needs its "
            "<file>.manifest.json beside it.",
        )
        parser.add_argument(
            "--latest", action="store_true", help="Check the newest backup in the catalogue."
        )
        parser.add_argument(
            "--drill",
            action="store_true",
            help="Also restore into a scratch database and compare the row counts per table.",
        )

    def handle(self, *args, file, latest, drill, **options):
        if bool(file) == bool(latest):
            raise CommandError(
                self.BOTH if file else "Give the path of a backup file, or --latest."
            )
        if latest:
            backup = Backup.objects.filter(deleted_at__isnull=True).first()
            if backup is None:
                raise CommandError(self.NO_BACKUP)
            path = backup_dir() / backup.file
        else:
            path = Path(file)
            if not path.exists() and (backup_dir() / file).exists():
                path = backup_dir() / file
        if drill:
            self.stderr.write(f"Drill of {path.name}: restoring into a scratch database…")
        try:
            check = backup_verify(path=path, drill=drill, actor=self.actor, reason=self.reason)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        if not check.ok:
            raise CommandError(
                self.FAILED.format(kind=check.get_kind_display(), detail=check.detail)
            )
        self.stdout.write(self.style.SUCCESS(self.OK.format(detail=check.detail)))
