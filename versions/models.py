"""The ledger: an append-only, hash-chained record of privileged actions, and the
append-only model base it and other records stand on."""

from django.conf import settings
from django.db import models

__all__ = [
    "AppendOnlyModel",
    "AppendOnlyQuerySet",
    "LedgerAction",
    "LedgerCheckpoint",
    "LedgerEntry",
]


class LedgerAction(models.TextChoices):
    EXPORT = "export", "Export"
    EXPORT_DOWNLOAD = "export_download", "Export downloaded"
    ERASURE = "erasure", "Erasure"
    RESTORE = "restore", "Restore"
    RECOVER = "recover", "Recover"
    PURGE = "purge", "Purge"
    PURGE_BATCH = "purge_batch", "Purge batch committed"
    HARD_DELETE = "hard_delete", "Hard delete"
    BACKUP = "backup", "Backup"
    BACKUP_RESTORE = "backup_restore", "Restore of a backup"
    TABLE_RECOVER = "table_recover", "Table recovered from a backup"
    BACKUP_CLEANUP = "backup_cleanup", "Backup deleted by cleanup"
    BACKUP_CHECK = "backup_check", "Backup verified or drilled"
    POLICY_CHANGE = "policy_change", "Policy change"
    POLICY_APPROVE = "policy_approve", "Policy change approved"
    HOLD_PLACE = "hold_place", "Legal hold placed"
    HOLD_RELEASE = "hold_release", "Legal hold released"
    ROLE_CHANGE = "role_change", "Role change"
    DEMO_SEED = "demo_seed", "Demo data seeded"
    REQUEST = "request", "Data-subject request"
    REPLAY_MATCH = "replay_match", "Erasure replay match decided"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError(f"{_rows(self.model)} are append-only: they cannot be updated.")

    def delete(self):
        raise PermissionError(f"{_rows(self.model)} are append-only: they cannot be deleted.")


def _rows(model) -> str:
    return str(model._meta.verbose_name_plural).capitalize()


class AppendOnlyModel(models.Model):
    """A row written once: saving it again or deleting it is refused (ledger entries,
    checkpoints, consent events). Set-based updates and deletes are refused by
    `AppendOnlyQuerySet`, or by a queryset of the model's own."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError(f"{_rows(type(self))} are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError(f"{_rows(type(self))} are append-only: they cannot be deleted.")


class LedgerEntry(AppendOnlyModel):
    """One privileged action: who, when, what and how many — never personal data."""

    created_at = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=32, choices=LedgerAction.choices, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,  # the chain outlives user accounts; the label keeps the name
    )
    actor_label = models.CharField(max_length=150)
    channel = models.CharField(
        max_length=150, blank=True, help_text="Command or task that acted; empty for the admin."
    )
    reason = models.TextField(blank=True)
    target = models.CharField(max_length=200, blank=True, help_text="Model, policy or object.")
    counts = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(
        max_length=16, help_text="Fingerprint of the ledger key that signed the entry."
    )
    seq = models.BigIntegerField(
        "sequence number",
        null=True,
        blank=True,
        unique=True,
        help_text="Place in the chain from 1, the previous entry's plus one, covered by the "
        "hash; empty only on entries written before sequence numbers were kept.",
    )
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = "ledger entry"
        verbose_name_plural = "ledger"
        constraints = [
            # Two appends racing for the same head cannot both land: the chain never forks.
            models.UniqueConstraint(fields=["prev_hash"], name="ledger_prev_hash_unique"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.get_action_display()} by {self.actor_label}"


class LedgerCheckpoint(AppendOnlyModel):
    """The ledger's head as the application last knew it, signed with the ledger key.

    One is recorded with every append (in its transaction) and every verification that
    passed; `verify_ledger` then finds entries missing from the end of the chain.
    """

    class Kind(models.TextChoices):
        APPEND = "append", "Append"
        VERIFICATION = "verification", "Verification"

    created_at = models.DateTimeField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    entry_id = models.BigIntegerField(help_text="Id of the head entry; 0 for an empty ledger.")
    head = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)
    mac = models.CharField(max_length=64)
    actor_label = models.CharField(max_length=150)
    channel = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["entry_id", "id"], name="ledger_checkpoint_head_idx")]

    def __str__(self):
        return f"checkpoint #{self.pk}: entry #{self.entry_id}"
