"""What an operator runs on the database as a whole leaves its record here: the catalogue of
database backups, the checks made on them, and the subjects an erasure replay after a restore
matched by an email alone.

The tables keep the names they had when these models lived in `versions` (moved by state
only: operations/migrations/0001_initial.py)."""

from django.db import models

from versions.models import AppendOnlyModel, AppendOnlyQuerySet

__all__ = ["Backup", "BackupCheck", "ErasureReplayMatch"]


class Backup(models.Model):
    """One backup file in BACKUP_DIR, as the backup command wrote it (its manifest copied
    here). Cleanup deletes the file and keeps the row, with the time it was deleted."""

    class Tier(models.TextChoices):
        DAILY = "daily", "Daily"
        WEEKLY = "weekly", "Weekly"
        MONTHLY = "monthly", "Monthly"

    file = models.CharField(max_length=200, unique=True, help_text="Name in BACKUP_DIR.")
    tier = models.CharField(max_length=10, choices=Tier.choices, db_index=True)
    vendor = models.CharField(max_length=20, help_text="postgresql or sqlite.")
    created_at = models.DateTimeField(db_index=True)
    size = models.BigIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64)
    manifest = models.JSONField(default=dict)
    created_by = models.CharField(max_length=150, help_text="Who made it; system for beat.")
    deleted_at = models.DateTimeField(
        "file deleted at",
        null=True,
        blank=True,
        help_text="When cleanup deleted the file; the row stays.",
    )
    deleted_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # run_backup_backup: start backups, verify and drill them (admin, command, task).
        db_table = "versions_backup"  # the table it had before the app existed
        default_permissions = ("view", "run_backup")

    def __str__(self):
        return self.file


class BackupCheck(AppendOnlyModel):
    """One verification or drill of a backup file, whatever its outcome: never changed."""

    class Kind(models.TextChoices):
        VERIFY = "verify", "Verify"
        DRILL = "drill", "Drill"

    backup = models.ForeignKey(
        Backup,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="checks",
        help_text="Empty for a file that is not in the catalogue (copied from elsewhere).",
    )
    file = models.CharField(max_length=500, help_text="The file that was checked.")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    ok = models.BooleanField()
    detail = models.TextField(blank=True)
    facts = models.JSONField(default=dict, blank=True, help_text="Entries, tables, differences.")
    checked_at = models.DateTimeField()
    actor_label = models.CharField(max_length=150)
    channel = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at", "-id"]
        db_table = "versions_backupcheck"
        default_permissions = ()  # read through the backup's admin page
        indexes = [models.Index(fields=["backup", "kind", "-checked_at"], name="backup_check_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} of {self.file}: {'ok' if self.ok else 'failed'}"


class ErasureReplayMatch(models.Model):
    """A subject an erasure replay found by an email alone: an email an erased person once
    had is this subject's now, and may since have become someone else's. Never erased
    unasked: an officer confirms it (the erasure runs) or dismisses it. It names the erasure
    log entry and the field that matched, never the email."""

    class Status(models.TextChoices):
        PENDING = "pending", "To confirm"
        CONFIRMED = "confirmed", "Confirmed: erased"
        DISMISSED = "dismissed", "Dismissed: someone else"

    created_at = models.DateTimeField(db_index=True)
    replay = models.CharField(max_length=300, help_text="The replay that listed it (its reason).")
    log_entry = models.ForeignKey(
        "compliance.ErasureLogEntry",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The erasure log entry whose keyed hash the subject's email matched.",
    )
    field = models.CharField(max_length=100, help_text="The subject's field whose value matched.")
    subject_key = models.CharField(max_length=64, db_index=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decision_reason = models.TextField(blank=True)
    erasure = models.ForeignKey(
        "compliance.ErasureCertificate",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The certificate of the erasure a confirmation ran.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        db_table = "versions_erasurereplaymatch"
        default_permissions = ("view",)  # decided with the erasure permission
        verbose_name = "erasure replay match"
        verbose_name_plural = "erasure replay matches"
        constraints = [
            models.UniqueConstraint(
                fields=["log_entry", "field", "subject_key"], name="erasure_replay_match_unique"
            )
        ]

    def __str__(self):
        return f"Replay match #{self.pk}: {self.field} of subject {self.subject_key}"
