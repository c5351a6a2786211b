"""Models of the compliance app: erasure certificates and their log (consents and
data-subject requests come here too).

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""

from django.conf import settings
from django.db import models

# Erasure --------------------------------------------------------------------------------


class ErasureCertificate(models.Model):
    """What one erasure did: counts per model, the plan's hash, who and why — never the
    personal data, nor the subject's key (a keyed hash of it stands in)."""

    created_at = models.DateTimeField(db_index=True)
    subject_model = models.CharField(max_length=200, help_text="app_label.Model of the subject.")
    subject_ref = models.CharField(
        "subject reference",
        max_length=64,
        db_index=True,
        help_text="Keyed hash of the subject's key: finds the certificate, reveals no one.",
    )
    plan_hash = models.CharField(max_length=64, help_text="sha256 of the plan that was run.")
    #: {model label: {"action", "anonymised", "deleted", "history_scrubbed",
    #: "admin_log_scrubbed", "kept", "grounds"}}
    counts = models.JSONField(default=dict)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,  # a certificate outlives the account that ran it
    )
    actor_label = models.CharField("run by", max_length=150)
    reason = models.TextField()
    ledger_entry = models.ForeignKey(
        "versions.LedgerEntry",
        on_delete=models.DO_NOTHING,
        related_name="+",
        # The ledger is append-only and checks its own chain; a constraint would only stand
        # in the way of its TRUNCATE guard (a trigger that must be what refuses it).
        db_constraint=False,
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        # run_erasure_erasurecertificate: preview and run erasures (admin page, command).
        default_permissions = ("view", "run_erasure")

    def __str__(self):
        return f"Erasure certificate #{self.pk}"

    @property
    def totals(self) -> dict[str, int]:
        """The counts summed over every model."""
        keys = ("anonymised", "deleted", "history_scrubbed", "admin_log_scrubbed", "kept")
        return {key: sum(c.get(key, 0) for c in self.counts.values()) for key in keys}


class ErasureLogEntry(models.Model):
    """A keyed hash of one identifier of an erased subject (its key, an email it had), so an
    erasure can be replayed after a backup is restored. Never the identifier itself."""

    class Kind(models.TextChoices):
        KEY = "key", "Primary key"
        EMAIL = "email", "Email"

    certificate = models.ForeignKey(
        ErasureCertificate, on_delete=models.PROTECT, related_name="log_entries"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    digest = models.CharField(max_length=64, db_index=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["certificate", "kind", "digest"], name="compliance_erasurelog_unique"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.digest[:12]}… (certificate #{self.certificate_id})"
