"""The sample domain, mirroring a typical web shop's tables. Every model keeps history."""

import hashlib
import secrets

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.formats import date_format

# django-phonenumber-field rather than a hand-written validator on a CharField: its model
# field stores every valid number in one form (E.164), its form field refuses invalid ones
# with a clear message, and both rest on `phonenumbers`, Google's libphonenumber metadata.
from phonenumber_field.modelfields import PhoneNumberField

from retention.holds import RestrictedQuerySet
from retention.softdelete import NOT_DELETED, SoftDeleteModel
from versions.history import TrackedHistory


def new_session_token() -> str:
    return secrets.token_hex(32)


def new_token_hash() -> str:
    """The SHA-256 of a fresh random token (the token itself is only ever emailed)."""
    return hashlib.sha256(secrets.token_bytes(32)).hexdigest()


def validate_not_in_future(value) -> None:
    """Refuse a date after today (a date of birth, for instance)."""
    if value and value > timezone.localdate():
        raise ValidationError("This date is in the future.", code="future_date")


def short_datetime(moment) -> str:
    """A compact local date and time for labels and list columns: 3 Oct 2024, 14:05."""
    return date_format(timezone.localtime(moment), "j M Y, H:i") if moment else "-"


def _customer_name(obj) -> str:
    """The customer's name, or their id once the customer row is gone (history rows)."""
    try:
        return obj.customer.full_name
    except Customer.DoesNotExist:
        return f"customer {obj.customer_id}"


def _touching_save(self, *args, **kwargs):
    """save() that sets updated_at, like auto_now, but leaves bulk loads their own dates."""
    self.updated_at = timezone.now()
    update_fields = kwargs.get("update_fields")
    if update_fields is not None:
        kwargs["update_fields"] = {*update_fields, "updated_at"}
    return models.Model.save(self, *args, **kwargs)


class Customer(SoftDeleteModel):
    """The data subject. Deleting one hides it (and its documents) until purged."""

    email = models.EmailField()
    full_name = models.CharField(max_length=200)
    phone = PhoneNumberField(
        max_length=40, blank=True, help_text="With the country code, e.g. +44 20 7946 0958."
    )
    avatar_url = models.URLField(blank=True)
    date_of_birth = models.DateField(null=True, blank=True, validators=[validate_not_in_future])
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    # save() sets updated_at: a save that changes nothing else is not a new version.
    history = TrackedHistory(ignore_changes_to=["updated_at"])

    class Meta(SoftDeleteModel.Meta):
        ordering = ["full_name"]
        constraints = [
            # Unique among live customers: a deleted customer's email can sign up again.
            models.UniqueConstraint(
                fields=["email"],
                condition=NOT_DELETED,
                name="shop_customer_email_live_unique",
                violation_error_message="A customer with this email already exists.",
            )
        ]
        indexes = [
            models.Index(
                fields=["full_name"], condition=NOT_DELETED, name="shop_customer_full_name_live"
            ),
            # A data subject is found by email whatever its case (`subject_find`, iexact).
            models.Index(Upper("email"), name="shop_customer_email_upper"),
            # The Deleted filter and the purge of deleted customers read only deleted rows;
            # a restore and a cascade find what one delete hid by its deletion id.
            models.Index(
                fields=["deleted_at"],
                condition=Q(deleted_at__isnull=False),
                name="shop_customer_deleted",
            ),
            models.Index(
                fields=["deletion_id"],
                condition=Q(deletion_id__isnull=False),
                name="shop_customer_deletion",
            ),
        ]

    save = _touching_save

    def __str__(self):
        return f"{self.full_name} <{self.email}>"


class Session(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="sessions")
    token = models.CharField(max_length=64, unique=True, default=new_session_token, editable=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()

    # A history table must never become a second store of live credentials.
    history = TrackedHistory(excluded_fields=["token"])
    # update() and delete() refuse a restricted subject's rows (Art. 18).
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Session of {_customer_name(self)}, {short_datetime(self.created_at)}"


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PAID = "paid", "Paid"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=20, unique=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    currency = models.CharField(max_length=3, default="EUR")
    shipping_name = models.CharField(max_length=200)
    shipping_address = models.TextField()
    shipping_postcode = models.CharField(max_length=20)
    shipping_city = models.CharField(max_length=100)
    shipping_country = models.CharField(max_length=2)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = TrackedHistory()
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.number


class Message(models.Model):
    sender = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="sent_messages"
    )
    recipient = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="received_messages",
    )
    sender_name = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = TrackedHistory()
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Message {self.pk} from {self.sender_name}"


class Notification(models.Model):
    class Kind(models.TextChoices):
        ORDER = "order", "Order update"
        MESSAGE = "message", "New message"
        SECURITY = "security", "Security alert"
        MARKETING = "marketing", "Marketing"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = TrackedHistory()
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title


class NotificationPreference(models.Model):
    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        PUSH = "push", "Push"

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    topic = models.CharField(max_length=20, choices=Notification.Kind.choices)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    history = TrackedHistory()
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["customer", "channel", "topic"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel", "topic"], name="shop_preference_unique"
            )
        ]

    def __str__(self):
        state = "on" if self.enabled else "off"
        return f"{self.get_channel_display()} / {self.get_topic_display()}: {state}"


class AnalyticsEvent(models.Model):
    customer = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="analytics_events",
    )
    name = models.CharField(max_length=100, db_index=True)
    properties = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now, db_index=True)

    history = TrackedHistory()
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-occurred_at"]

    def __str__(self):
        return f"{self.name} at {self.occurred_at:%Y-%m-%d %H:%M}"


class Document(SoftDeleteModel):
    owner = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="documents")
    title = models.CharField(max_length=200)
    content = models.TextField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    # save() sets updated_at: a save that changes nothing else is not a new version.
    history = TrackedHistory(ignore_changes_to=["updated_at"])

    class Meta(SoftDeleteModel.Meta):
        ordering = ["-updated_at"]
        indexes = [
            models.Index(
                fields=["owner", "-updated_at"], condition=NOT_DELETED, name="shop_document_live"
            ),
            models.Index(
                fields=["deletion_id"],
                condition=Q(deletion_id__isnull=False),
                name="shop_document_deletion",
            ),
        ]

    save = _touching_save

    def __str__(self):
        return self.title


class PasswordResetToken(models.Model):
    """Only the token's SHA-256 is stored; the token itself went to the customer by email."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="password_reset_tokens"
    )
    token_hash = models.CharField(
        max_length=64, unique=True, default=new_token_hash, editable=False
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    history = TrackedHistory(excluded_fields=["token_hash"])
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Reset token of {_customer_name(self)}, {short_datetime(self.created_at)}"
