"""Models of the compliance app: data-subject requests and exports.

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from versions.history import TrackedHistory

# Data-subject requests ------------------------------------------------------------------
# The statutory clocks: GDPR Art. 12(3) (one month from receipt, extendable once by two
# further months, the extension given within the first month) and CCPA §1798.130(a)(2)
# (45 days from receipt, extendable once by 45 more, within the first 45 days). Both run
# from receipt: verifying the requester's identity does not stop them.


def add_months(moment: datetime, months: int) -> datetime:
    """The same local wall-clock time `months` calendar months later; a day the target month
    lacks (31 January + 1 month) becomes its last day (28 or 29 February)."""
    local = timezone.localtime(moment)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return timezone.make_aware(local.replace(tzinfo=None, year=year, month=month, day=day))


def add_days(moment: datetime, days: int) -> datetime:
    """The same local wall-clock time `days` calendar days later."""
    local = timezone.localtime(moment).replace(tzinfo=None)
    return timezone.make_aware(local + timedelta(days=days))


class Jurisdiction(models.TextChoices):
    GDPR = "gdpr", "GDPR"
    CCPA = "ccpa", "CCPA"


def request_due(jurisdiction: str, received_at: datetime) -> datetime:
    """When the answer is due without an extension."""
    if jurisdiction == Jurisdiction.CCPA:
        return add_days(received_at, 45)
    return add_months(received_at, 1)


def request_latest_due(jurisdiction: str, received_at: datetime) -> datetime:
    """The latest due date one extension can reach: three months (GDPR) or 90 days (CCPA)
    from receipt."""
    if jurisdiction == Jurisdiction.CCPA:
        return add_days(received_at, 90)
    return add_months(received_at, 3)


def _acting_user() -> models.ForeignKey:
    """Who took a step; the step stays recorded when the account goes."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )


class SubjectRequest(models.Model):
    """A data-subject request and its statutory clock. It holds no personal data of its own:
    the subject is a link (and, should the subject row go, its key)."""

    class Kind(models.TextChoices):
        ACCESS = "access", "Access / export (Art. 15/20)"
        ERASURE = "erasure", "Erasure (Art. 17)"
        RESTRICTION = "restriction", "Restriction (Art. 18)"

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        VERIFIED = "verified", "Verified"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        REJECTED = "rejected", "Rejected"

    class VerificationMethod(models.TextChoices):
        ACCOUNT = "account", "Signed in to the subject's account"
        EMAIL = "email", "Confirmed from the email address on record"
        DOCUMENT = "document", "Identity document checked (not kept)"
        KNOWLEDGE = "knowledge", "Answered questions only the subject can answer"
        AGENT = "agent", "Authorised agent with the subject's signed permission"

    FINAL_STATES = (State.COMPLETED, State.REJECTED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    subject = models.ForeignKey(
        settings.COMPLIANCE_SUBJECT_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,  # an erasure may delete the subject; the record stays
        related_name="subject_requests",
    )
    subject_key = models.CharField(
        max_length=64,
        editable=False,
        help_text="The subject's primary key at receipt, kept should the subject row go.",
    )
    jurisdiction = models.CharField(
        max_length=8, choices=Jurisdiction.choices, default=Jurisdiction.GDPR
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.RECEIVED)
    received_at = models.DateTimeField(help_text="When the request reached us; the clock starts.")
    due_at = models.DateTimeField(
        editable=False, help_text="Computed from the receipt, the jurisdiction and any extension."
    )
    extended_at = models.DateTimeField(null=True, blank=True, editable=False)
    extended_by = _acting_user()
    extension_reason = models.TextField(blank=True, editable=False)
    verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    verified_by = _acting_user()
    verification_method = models.CharField(
        max_length=16, choices=VerificationMethod.choices, blank=True, editable=False
    )
    verification_note = models.TextField(
        blank=True, editable=False, help_text="How the check went; never a copy of the document."
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejection_reason = models.TextField(
        blank=True, editable=False, help_text="Told to the subject (GDPR Art. 12(4))."
    )

    history = TrackedHistory()

    class Meta:
        ordering = ["due_at", "pk"]
        verbose_name = "request"
        verbose_name_plural = "requests"
        indexes = [models.Index(fields=["state", "due_at"], name="request_state_due_idx")]

    def __str__(self):
        return f"Request #{self.pk}"

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES

    @property
    def is_overdue(self) -> bool:
        return not self.is_final and self.due_at < timezone.now()

    @property
    def can_extend(self) -> bool:
        """Open, not extended yet, and still within the original period."""
        return (
            not self.is_final and self.extended_at is None and timezone.now() < self.original_due_at
        )

    @property
    def original_due_at(self) -> datetime:
        return request_due(self.jurisdiction, self.received_at)

    @property
    def latest_due_at(self) -> datetime:
        return request_latest_due(self.jurisdiction, self.received_at)


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
