from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError
from django.template.defaultfilters import filesizeformat

from operations.backups import BackupError, backups_cleanup
from operations.config import backup_keep
from operations.models import Backup
from versions.management.base import ComplianceCommand


class Command(ComplianceCommand):
    help = (
        "Tiered retention of backups: keep the newest BACKUP_KEEP_DAILY (7), "
        "BACKUP_KEEP_WEEKLY (4) and BACKUP_KEEP_MONTHLY (12) backups of each tier, and every "
        "backup under a legal hold. A dry run unless --apply: it prints what would be "
        "deleted. --apply deletes the files and manifests, keeps their rows in the catalogue "
        "marked deleted, and writes a ledger entry for each."
    )
    KEEP = "Keeping per tier: " + ", ".join(f"{t} {{{t}}}" for t in Backup.Tier.values)
    WOULD = "Would delete {file} ({tier}, {size})"
    DELETED = "Deleted {file} ({tier}, {size})"
    HELD = "Held, kept: {file} ({tier})"
    DRY_DONE = "Dry run: {count} backup(s) would be deleted. Run again with --apply to delete them."
    DONE = "{count} backup(s) deleted."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--apply", action="store_true", help="Delete; without it, only show what would go."
        )

    def handle(self, *args, apply, **options):
        self.stdout.write(self.KEEP.format(**{t: backup_keep(t) for t in Backup.Tier.values}))
        try:
            plan = backups_cleanup(
                actor=self.actor,
                reason=self.reason,
                apply=apply,
                progress=lambda b: self.stdout.write(self._line(self.DELETED, b)),
            )
        except (BackupError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        for backup in plan.held:
            self.stdout.write(self.HELD.format(file=backup.file, tier=backup.tier))
        if not apply:
            for backup in plan.delete:
                self.stdout.write(self._line(self.WOULD, backup))
            self.stdout.write(self.DRY_DONE.format(count=len(plan.delete)))
            return
        self.stdout.write(self.style.SUCCESS(self.DONE.format(count=len(plan.deleted))))

    def _line(self, template, backup):
        return template.format(file=backup.file, tier=backup.tier, size=filesizeformat(backup.size))
