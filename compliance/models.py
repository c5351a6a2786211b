"""Models of the compliance app: data-subject exports (consents and requests come here).

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""

from django.conf import settings
from django.db import models

# Exports ---------------------------------------------------------------------------------


class SubjectExport(models.Model):
    """One data-subject export (Art. 15/20): a ZIP of the subject's data, kept in
    COMPLIANCE_EXPORT_DIR until it expires. The record holds no personal data itself: ids,
    counts and the file's name and checksum."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    subject = models.ForeignKey(
        settings.COMPLIANCE_SUBJECT_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    filename = models.CharField(
        max_length=255,
        blank=True,
        help_text="Name of the ZIP in the export directory; empty when the export was "
        "written elsewhere by the export_subject command.",
    )
    size = models.BigIntegerField(null=True, blank=True, help_text="Bytes of the ZIP.")
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the ZIP.")
    counts = models.JSONField(default=dict, blank=True, help_text="Rows per file.")
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "subject export"
        # add: run an export; download: fetch its file (each download is a ledger entry).
        default_permissions = ("add", "change", "delete", "view", "download")

    def __str__(self):
        return f"Export #{self.pk} of subject {self.subject_id or '(erased)'}"

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) if self.counts else 0
