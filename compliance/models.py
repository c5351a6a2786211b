"""Models of the compliance app (consents and data-subject requests come here).

The module must exist even while empty: Django sends post_migrate, which keeps the
roles' permissions in sync, only to apps with a models module.
"""

import hashlib

from django.conf import settings
from django.db import models
from django.utils import timezone

from versions.history import TrackedHistory

__all__ = [
    "ConsentEvent",
    "ConsentEventQuerySet",
    "ConsentPurpose",
    "ConsentState",
    "ConsentText",
    "ConsentTextLocked",
    "text_sha256",
]


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
        from .anonymisers import get_anonymiser
        from .registry import registry

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


class ConsentEvent(models.Model):
    """One grant or withdrawal: evidence of consent (Art. 7(1)); never changed or deleted.

    No history table: the row is its own record and never changes, except that an erasure
    scrubs its IP address and user agent (recorded by the erasure's certificate and ledger
    entry). A history table would only be a second copy of both.
    """

    GRANTED_CHOICES = [(True, "granted"), (False, "withdrawn")]

    subject = models.ForeignKey(
        settings.COMPLIANCE_SUBJECT_MODEL,
        on_delete=models.PROTECT,  # evidence outlives nothing silently: purge leaves it out
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

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("Consent events are append-only: they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Consent events are append-only: they cannot be deleted.")


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
