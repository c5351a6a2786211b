"""Retention policies, legal holds and the purge run log."""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from versions.history import TrackedHistory

__all__ = ["BatchRange", "LegalHold", "PolicyAction", "PurgeRun", "RetentionPolicy"]


class PolicyAction(models.TextChoices):
    SOFT_DELETE = "soft_delete", "Soft delete"
    HARD_DELETE = "hard_delete", "Delete permanently"
    ANONYMISE = "anonymise", "Anonymise (per the registry)"


class RetentionPolicy(models.Model):
    """How long the rows of one model live, counted from a date field."""

    name = models.CharField(max_length=100, unique=True)
    target = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        help_text="A model of the personal-data registry, or the history table of one.",
    )
    basis_field = models.CharField(
        max_length=100,
        blank=True,
        help_text="Date or datetime field the period counts from; empty: the registry's "
        "retention basis (history tables: the history date).",
    )
    period_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Rows older than this many days are purged; empty keeps them forever.",
    )
    action = models.CharField(
        max_length=20, choices=PolicyAction.choices, default=PolicyAction.HARD_DELETE
    )
    archive = models.BooleanField(
        default=False, help_text="Write the rows to a checksummed archive before deleting them."
    )
    exclusions = models.JSONField(
        default=list,
        blank=True,
        help_text='Rows kept whatever their age, as lookups: [{"field": "read_at", '
        '"lookup": "isnull", "value": true}].',
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Four eyes: a change that destroys history or shortens the period waits here, as the
    # policy's proposed fields, until a second officer approves it; until then the policy
    # runs as it was (a new one stays disabled).
    pending_change = models.JSONField(null=True, blank=True, editable=False)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,  # read through the policy only
        editable=False,
    )
    proposed_at = models.DateTimeField(null=True, blank=True, editable=False)

    history = TrackedHistory()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "retention policies"
        # run_purge_retentionpolicy: preview and run purges (the admin's actions, the task).
        default_permissions = ("add", "change", "delete", "view", "run_purge")
        constraints = [
            models.CheckConstraint(
                condition=Q(period_days__isnull=True) | Q(period_days__gte=1),
                name="retention_policy_period_positive",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def is_pending(self) -> bool:
        """A change to it waits for a second officer's approval."""
        return self.pending_change is not None

    #: The policy rules (`retention.selectors.policy_validate`, which reads the registry and
    #: this module's models) are registered here at app-ready time: this module, holding the
    #: legal holds too, is below them.
    validator = None

    def clean(self):
        if RetentionPolicy.validator is not None:
            RetentionPolicy.validator(self)


class LegalHold(models.Model):
    """Keeps a subject's rows, or one record, out of every purge, hard delete and erasure.

    A hold on a row of the subject model holds everything about that person (every model of
    the registry, through its subject paths); a hold on any other row holds that row.
    """

    class Ground(models.TextChoices):
        FREEDOM_OF_EXPRESSION = "art17_3_a", "Art. 17(3)(a): freedom of expression and information"
        LEGAL_OBLIGATION = "art17_3_b", "Art. 17(3)(b): legal obligation or public task"
        PUBLIC_HEALTH = "art17_3_c", "Art. 17(3)(c): public health"
        ARCHIVING = "art17_3_d", "Art. 17(3)(d): archiving, research or statistics"
        LEGAL_CLAIMS = "art17_3_e", "Art. 17(3)(e): legal claims"
        # A restriction of processing (Art. 18) keeps the rows exactly as a hold does, and
        # also refuses changes to them unless an officer gives a reason.
        ACCURACY_CONTESTED = "art18_1_a", "Art. 18(1)(a): restriction, accuracy contested"
        UNLAWFUL_KEPT = "art18_1_b", "Art. 18(1)(b): restriction, unlawful but not to be erased"
        NEEDED_FOR_CLAIMS = "art18_1_c", "Art. 18(1)(c): restriction, subject needs it for claims"
        OBJECTION_PENDING = "art18_1_d", "Art. 18(1)(d): restriction, objection being verified"

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    reason = models.TextField()
    ground = models.CharField(max_length=20, choices=Ground.choices)
    requested_by = models.CharField(
        max_length=200,
        blank=True,
        help_text="Who asked for it: the data subject, a court, counsel, a regulator.",
    )
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    placed_at = models.DateTimeField()
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True)

    history = TrackedHistory()

    class Meta:
        ordering = ["-placed_at"]
        indexes = [
            models.Index(
                fields=["content_type", "object_id"],
                condition=Q(released_at__isnull=True),
                name="retention_hold_active",
            )
        ]

    def __str__(self):
        return f"Hold on {self.content_type.model} #{self.object_id}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    @property
    def is_restriction(self) -> bool:
        """A restriction of processing (Art. 18) rather than a hold for a legal ground."""
        return self.ground in RESTRICTION_GROUNDS


RESTRICTION_GROUNDS = frozenset(g for g in LegalHold.Ground.values if g.startswith("art18"))


class PurgeRun(models.Model):
    """The run log: one row per policy per run, dry runs included."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Stopped at its budget"
        FAILED = "failed", "Failed"
        INTERRUPTED = "interrupted", "Interrupted (its process stopped)"
        DRY_RUN = "dry_run", "Dry run"

    policy = models.ForeignKey(RetentionPolicy, on_delete=models.PROTECT, related_name="runs")
    model = models.CharField(
        max_length=200,
        blank=True,
        default="",
        db_default="",  # added to a live table: no rewrite, no NOT NULL failure
        help_text="The model the run purged (app_label.Model).",
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    cutoff = models.DateTimeField(null=True, blank=True)
    eligible = models.PositiveBigIntegerField(default=0)
    purged = models.PositiveBigIntegerField(default=0)
    archived = models.PositiveBigIntegerField(default=0)
    held = models.PositiveBigIntegerField(
        default=0, help_text="Rows kept by a legal hold or a restriction of processing (Art. 18)."
    )
    excluded = models.PositiveBigIntegerField(default=0)
    backlog = models.PositiveBigIntegerField(
        default=0, help_text="Eligible rows left after the run."
    )
    batches = models.PositiveIntegerField(default=0)
    batch_median_ms = models.FloatField(
        null=True, blank=True, help_text="Median time of one committed batch."
    )
    archives = models.JSONField(default=list, blank=True, help_text="Archive files and sha256.")
    error = models.TextField(blank=True)
    channel = models.CharField(max_length=150, blank=True)
    pid = models.PositiveIntegerField(
        null=True, blank=True, help_text="The operating-system process that ran it."
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["policy", "-started_at"], name="retention_run_policy")]

    def __str__(self):
        return f"{self.policy} at {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self):
        return (self.finished_at - self.started_at) if self.finished_at else None


class BatchRange(models.Model):
    """One key range of a batch-engine job: claimed by one worker, done once."""

    job = models.CharField(max_length=200)
    lo = models.TextField(blank=True, help_text="Keys above this (empty: from the first).")
    hi = models.TextField(help_text="Keys up to and including this.")
    done = models.BooleanField(default=False)
    rows = models.PositiveBigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(
                fields=["job", "id"], condition=Q(done=False), name="retention_range_pending"
            )
        ]

    def __str__(self):
        return f"{self.job}: ({self.lo}, {self.hi}]"
