"""Models of the compliance app: data-subject requests, exports, consents and erasures.

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""

from __future__ import annotations

import calendar
import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from versions.history import TrackedHistory
from versions.models import AppendOnlyModel

from .anonymisers import get_anonymiser
from .registry import registry

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
        RECTIFICATION = "rectification", "Rectification (Art. 16)"

    class Channel(models.TextChoices):
        ADMIN = "admin", "Recorded by an officer"
        CENTER = "center", "Privacy center"

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
        EMAIL_CODE = "email_code", "Code sent to the email the requester gave"

    class Outcome(models.TextChoices):
        """How the delivery of a copy ended (an access request released to the person)."""

        DOWNLOADED = "downloaded", "Downloaded"
        EXPIRED = "expired", "Expired without download"

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
    channel = models.CharField(
        max_length=8,
        choices=Channel.choices,
        default=Channel.ADMIN,
        db_default=Channel.ADMIN,
        editable=False,
    )
    contact_email = models.EmailField(
        blank=True,
        db_default="",
        editable=False,
        help_text="The address the requester gave; we answer there.",
    )
    details = models.TextField(
        blank=True,
        db_default="",
        editable=False,
        help_text="What the requester asks to correct (rectification).",
    )
    language = models.CharField(
        max_length=8,
        blank=True,
        db_default="",
        editable=False,
        help_text="The language we write to them in.",
    )
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
    verified_ip = models.GenericIPAddressField(
        null=True, blank=True, editable=False, help_text="Where the emailed code was entered."
    )
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    rejection_reason = models.TextField(
        blank=True, editable=False, help_text="Told to the subject (GDPR Art. 12(4))."
    )
    outcome = models.CharField(
        max_length=16,
        choices=Outcome.choices,
        blank=True,
        default="",
        db_default="",  # added to a live table: no rewrite
        editable=False,
        help_text="How a released copy ended: downloaded, or its link expired unused.",
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
    subject_key = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",  # added to a live table: no rewrite, no NOT NULL failure
        db_index=True,  # an erasure finds the subject's exports by it
        editable=False,
        help_text="The subject's primary key, kept should the subject row go (or be gone "
        "already: a subject known from history only).",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.TextField(blank=True)
    request = models.ForeignKey(
        SubjectRequest,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exports",
        help_text="The data-subject request this export answers.",
    )
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
    download_key = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text="The unguessable key that addresses the export's download page (never its id).",
    )
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The officer, besides the one who ran it, who may download the export.",
    )
    released_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When an officer released the copy to the person (its link was emailed).",
    )
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    downloads = models.PositiveIntegerField(
        default=0,
        db_default=0,  # added to a live table: no rewrite
        editable=False,
        help_text="Downloads by the person through the privacy center (each a ledger entry).",
    )

    WAITING = (Status.PENDING, Status.RUNNING)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "subject export"
        constraints = [
            # One export of a subject queued or running at a time: two officers queueing at
            # once cannot both insert (the queue's lock alone finds no row to lock).
            models.UniqueConstraint(
                fields=["subject_key"],
                condition=models.Q(status__in=["pending", "running"]) & ~models.Q(subject_key=""),
                name="subject_export_one_waiting",
            )
        ]
        # add: run an export; download: fetch its file (each download is a ledger entry);
        # release: send the person the link to their copy.
        default_permissions = ("add", "change", "delete", "view", "download", "release")

    def __str__(self):
        return f"Export #{self.pk} of subject {self.subject_key or self.subject_id}"

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) if self.counts else 0

    @property
    def answers(self) -> str:
        """What the export answers: its request, or no request and the officer's reason."""
        return answered_text(self.request_id, self.reason)


def answered_text(request_id: int | None, reason: str) -> str:
    """ "request #12", or "no request: <the officer's reason>" (an export or erasure started
    without a request states why)."""
    return f"request #{request_id}" if request_id is not None else f"no request: {reason}"


class RequestMessage(models.Model):
    """A message an officer wrote to the person about their request: emailed to them and
    shown on their status page. Only `request_message_send` writes one; never edited."""

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="messages")
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]
        verbose_name = "message to the requester"
        verbose_name_plural = "messages to the requester"
        default_permissions = ("view",)

    def __str__(self):
        return f"Message #{self.pk} on request #{self.request_id}"


# Consents ------------------------------------------------------------------------------
# A purpose has versioned texts; each grant or withdrawal is an event that is never changed
# or deleted; the state per subject and purpose follows from the events. Only
# `compliance.services.consent_record` writes events and states.


def text_sha256(text: str) -> str:
    """The sha256 (hex) of a consent text's exact wording, as UTF-8, nothing normalised."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ConsentTextLocked(Exception):
    """A consent text that somebody consented to is evidence: it is never changed."""


class ConsentPurpose(models.Model):
    """What a subject consents to: marketing emails, analytics, sharing with third parties."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    active = models.BooleanField(
        default=True,
        help_text="Inactive purposes take no new grants; withdrawals are always recorded.",
    )
    sale_or_sharing = models.BooleanField(
        "sale or sharing",
        default=False,
        db_default=False,  # added to a live table: no rewrite, no NOT NULL failure
        help_text=(
            "Selling or sharing personal data (CCPA): a Global Privacy Control signal "
            "withdraws consent to it."
        ),
    )

    history = TrackedHistory()

    class Meta:
        ordering = ["name"]
        verbose_name = "consent purpose"

    def __str__(self):
        return self.name

    def latest_text(self, at=None):
        """The published text with the highest version (at `at`, default now), else None."""
        return (
            self.texts.filter(published_at__lte=at or timezone.now()).order_by("-version").first()
        )


class ConsentTextQuerySet(models.QuerySet):
    def update(self, **kwargs):
        if self.filter(events__isnull=False).exists():
            raise ConsentTextLocked(
                "Some of these consent texts have been consented to and cannot be changed: "
                "publish a new version instead."
            )
        return super().update(**kwargs)


class ConsentText(models.Model):
    """One version of a purpose's wording, with the sha256 of its exact text."""

    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="texts")
    version = models.PositiveIntegerField()
    text = models.TextField(help_text="The exact wording shown to the subject.")
    sha256 = models.CharField(max_length=64, editable=False)
    published_at = models.DateTimeField(default=timezone.now)

    history = TrackedHistory()
    objects = ConsentTextQuerySet.as_manager()

    class Meta:
        ordering = ["purpose", "-version"]
        verbose_name = "consent text"
        constraints = [
            models.UniqueConstraint(
                fields=["purpose", "version"],
                name="compliance_consenttext_version_unique",
                violation_error_message="This purpose already has a text with this version.",
            )
        ]

    def __str__(self):
        return f"{self.purpose} v{self.version}"

    def save(self, *args, **kwargs):
        if self.is_consented:
            raise ConsentTextLocked(
                f"{self} has been consented to and cannot be changed: publish a new version."
            )
        self.sha256 = text_sha256(self.text)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "text" in update_fields:
            kwargs["update_fields"] = {*update_fields, "sha256"}
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_consented:
            raise ConsentTextLocked(f"{self} has been consented to and cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_consented(self) -> bool:
        """Whether any event refers to this text (then it can no longer change)."""
        return self.pk is not None and self.events.exists()


class ConsentEventQuerySet(models.QuerySet):
    """Append-only, like the ledger, with one exception: an erasure may scrub the fields the
    registry declares personal (IP address and user agent), and only to their anonymiser's
    value. The event itself (who, what, which text, when, where) stays."""

    def update(self, **kwargs):
        entry = registry.get(self.model)
        personal = entry.fields if entry is not None else {}
        for name, value in kwargs.items():
            if name not in personal:
                raise PermissionError(
                    f"Consent events are append-only: {name} cannot be updated (only an "
                    f"erasure may anonymise {', '.join(personal) or 'nothing'})."
                )
            field = self.model._meta.get_field(name)
            if value != get_anonymiser(personal[name].anonymiser).expression(field):
                raise PermissionError(
                    f"Consent events are append-only: {name} may only be anonymised."
                )
        return super().update(**kwargs)

    def delete(self):
        raise PermissionError("Consent events are append-only: they cannot be deleted.")


class ConsentEvent(AppendOnlyModel):
    """One grant or withdrawal: evidence of consent (Art. 7(1)); never changed or deleted.

    No history table: the row is its own record and never changes, except that an erasure
    scrubs its IP address and user agent (recorded by the erasure's certificate and ledger
    entry). A history table would only be a second copy of both.
    """

    GRANTED_CHOICES = [(True, "granted"), (False, "withdrawn")]

    subject = models.ForeignKey(
        settings.COMPLIANCE_SUBJECT_MODEL,
        # Evidence outlives its subject's row: a purge of the subject leaves the events,
        # found by the subject's key (subject_id), until a policy on consent events, counted
        # from occurred_at, removes those whose subject row is gone.
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="consent_events",
    )
    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="events")
    text = models.ForeignKey(ConsentText, on_delete=models.PROTECT, related_name="events")
    granted = models.BooleanField(choices=GRANTED_CHOICES)
    occurred_at = models.DateTimeField(default=timezone.now)
    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    collection_point = models.CharField(
        max_length=100, help_text='Where it was given: "signup form", "preference centre", …'
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_constraint=False,  # the evidence outlives staff accounts
        help_text="The staff member who recorded it; empty when the subject acted.",
    )

    objects = ConsentEventQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]
        verbose_name = "consent event"
        indexes = [
            models.Index(fields=["subject", "occurred_at"], name="compliance_consent_subject"),
            models.Index(fields=["purpose", "occurred_at"], name="compliance_consent_purpose"),
        ]

    def __str__(self):
        return f"{self.purpose} {self.get_granted_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


class ConsentState(models.Model):
    """A subject's current consent to one purpose, as the events left it.

    `granted_at` is set when the state turns granted, `revoked_at` when it turns withdrawn;
    a repeated grant or withdrawal changes neither, and a re-grant keeps the last withdrawal.
    """

    subject = models.ForeignKey(
        settings.COMPLIANCE_SUBJECT_MODEL,
        on_delete=models.CASCADE,
        related_name="consent_states",
    )
    purpose = models.ForeignKey(ConsentPurpose, on_delete=models.PROTECT, related_name="states")
    granted = models.BooleanField()
    granted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    text = models.ForeignKey(
        ConsentText,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The text of the latest event.",
    )
    updated_at = models.DateTimeField(help_text="When the latest event occurred.")

    history = TrackedHistory()

    class Meta:
        ordering = ["subject", "purpose"]
        verbose_name = "consent state"
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "purpose"], name="compliance_consentstate_unique"
            )
        ]
        indexes = [
            models.Index(fields=["purpose", "granted"], name="compliance_consentstate_filter"),
            models.Index(fields=["updated_at"], name="compliance_consent_updated"),
        ]

    def __str__(self):
        return f"{self.purpose}: {'granted' if self.granted else 'withdrawn'}"


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
    request = models.ForeignKey(
        SubjectRequest,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="erasure_certificates",
        # A certificate outlives a restore of an older backup, which may lack the request.
        db_constraint=False,
        help_text="The data-subject request this erasure answers.",
    )
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
    def answers(self) -> str:
        """What the erasure answers: its request, or no request and the officer's reason."""
        return answered_text(self.request_id, self.reason)

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


# The privacy center's mechanisms ---------------------------------------------------------


class Challenge(models.Model):
    """A 6-digit code emailed to a requester, kept only as a keyed hash (HMAC): it proves they
    read that mailbox, to verify a request or before a download. Resending replaces the code
    on the same row; `tries` counts wrong codes; a consumed challenge never counts again."""

    class Purpose(models.TextChoices):
        VERIFY = "verify", "Verify a request"
        DOWNLOAD = "download", "Prove the email again before a download"

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="challenges")
    purpose = models.CharField(max_length=10, choices=Purpose.choices)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    tries = models.PositiveSmallIntegerField(default=0)
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ("view",)
        indexes = [models.Index(fields=["request", "purpose"], name="challenge_request_idx")]

    def __str__(self):
        return f"Challenge #{self.pk} ({self.purpose}) of request #{self.request_id}"


class AccessLink(models.Model):
    """A random token handed to a requester, bound to one request and one purpose. Only its
    sha256 is stored: the token itself travels in the URL path and nowhere else."""

    class Purpose(models.TextChoices):
        STATUS = "status", "Follow the request"
        DOWNLOAD = "download", "Download the copy"
        PREFERENCES = "preferences", "Consent preferences"

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="links")
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ("view",)

    def __str__(self):
        return f"Link #{self.pk} ({self.purpose}) of request #{self.request_id}"


class RequestEmail(models.Model):
    """An email sent about a request: its kind, a keyed digest of the recipient and the sha256
    of what was sent. Never the address or the body."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    request = models.ForeignKey(SubjectRequest, on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(max_length=32)
    recipient_digest = models.CharField(max_length=64)
    content_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)

    class Meta:
        default_permissions = ("view",)
        ordering = ["created_at", "pk"]

    def __str__(self):
        return f"Email {self.kind} of request #{self.request_id}"
