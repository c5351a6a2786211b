"""Admin of the sample domain: list columns, search and filters; history on every model.

Every list fits a 1280-pixel window beside the navigation and filter sidebars: one line per
row, customers by name, compact dates; long values are cut in the list and shown whole on the
change page.
"""

from django.contrib import admin
from django.db import models as db
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import Truncator

from retention.admin import SoftDeleteAdmin
from versions.admin import TrackedHistoryAdmin

from . import models
from .models import short_datetime

USER_AGENT_CHARS = 22


def _nowrap(text):
    return format_html('<span class="nowrap">{}</span>', text)


def _short_date(moment) -> str:
    return date_format(timezone.localtime(moment), "j M Y") if moment else "-"


def _datetime_column(field: str, description: str, *, time: bool = True):
    """A list column showing FIELD as a compact date (and time) on one line."""
    short = short_datetime if time else _short_date

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        return _nowrap(short(getattr(obj, field)))

    return column


def _truncated_column(field: str, description: str, chars: int):
    """A list column showing FIELD cut to CHARS characters, whole on hover."""

    @admin.display(description=description, ordering=field)
    def column(self, obj):
        value = getattr(obj, field)
        short = Truncator(value).chars(chars)
        return format_html('<span class="nowrap" title="{}">{}</span>', value, short)

    return column


def _name_column(field: str, description: str):
    """A list column showing the name of the customer in FIELD (joined by the list's query)."""

    @admin.display(description=description, ordering=f"{field}__full_name")
    def column(self, obj):
        customer = getattr(obj, field)
        return _nowrap(customer.full_name) if customer else "-"

    return column


@admin.register(models.Customer)
class CustomerAdmin(SoftDeleteAdmin, TrackedHistoryAdmin):
    # Beside the state filter there is room for who and how to reach them (a long name may
    # take two lines); the date hierarchy above the list picks customers by sign-up date.
    list_display = ["name", "email", "phone_number"]
    search_fields = ["full_name", "email", "phone"]
    date_hierarchy = "created_at"

    @admin.display(description="Name", ordering="full_name")
    def name(self, obj):
        # "Name", not "Full name": the narrower heading keeps the list within 1280 pixels.
        return obj.full_name

    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {db.URLField: {"assume_scheme": "https"}}

    @admin.display(description="Phone", ordering="phone")
    def phone_number(self, obj):
        return _nowrap(obj.phone) if obj.phone else ""


class CustomerLinkedAdmin(TrackedHistoryAdmin):
    """Models that belong to a customer: pick the customer by search, filter by date."""

    autocomplete_fields = ["customer"]
    # Lists and labels show the customer's name: one join, not a query per row.
    list_select_related = ["customer"]

    customer_name = _name_column("customer", "Customer")
    created = _datetime_column("created_at", "Created")


@admin.register(models.Session)
class SessionAdmin(CustomerLinkedAdmin):
    # The expiry is a filter and is on the change page, as is the whole user agent.
    list_display = ["customer_name", "created", "ip_address", "browser"]
    list_display_links = ["customer_name"]
    search_fields = ["customer__email", "customer__full_name", "ip_address"]
    list_filter = ["created_at", "expires_at"]

    browser = _truncated_column("user_agent", "User agent", USER_AGENT_CHARS)


@admin.register(models.Order)
class OrderAdmin(CustomerLinkedAdmin):
    list_display = ["number", "customer_name", "status", "amount", "placed"]
    search_fields = [
        "number",
        "customer__email",
        "customer__full_name",
        "shipping_name",
        "shipping_postcode",
    ]
    list_filter = ["status", "shipping_country", "created_at"]
    date_hierarchy = "created_at"

    placed = _datetime_column("created_at", "Placed", time=False)

    @admin.display(description="Total", ordering="total")
    def amount(self, obj):
        return _nowrap(f"{obj.total} {obj.currency}")


@admin.register(models.Message)
class MessageAdmin(TrackedHistoryAdmin):
    list_display = ["from_name", "recipient_name", "preview", "sent"]
    search_fields = ["sender_name", "body", "sender__email", "recipient__email"]
    list_filter = ["created_at"]
    autocomplete_fields = ["sender", "recipient"]
    list_select_related = ["recipient"]

    recipient_name = _name_column("recipient", "To")

    @admin.display(description="From", ordering="sender_name")
    def from_name(self, obj):
        return _nowrap(obj.sender_name)

    preview = _truncated_column("body", "Message", 20)
    sent = _datetime_column("created_at", "Sent")


@admin.register(models.Notification)
class NotificationAdmin(CustomerLinkedAdmin):
    list_display = ["subject", "customer_name", "kind_label", "read", "sent"]
    search_fields = ["title", "customer__email"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter), "created_at"]

    subject = _truncated_column("title", "Title", 20)

    @admin.display(description="Kind", ordering="kind")
    def kind_label(self, obj):
        return _nowrap(obj.get_kind_display())

    sent = _datetime_column("created_at", "Sent", time=False)

    @admin.display(description="Read", boolean=True, ordering="read_at")
    def read(self, obj):
        return obj.read_at is not None


@admin.register(models.NotificationPreference)
class NotificationPreferenceAdmin(CustomerLinkedAdmin):
    list_display = ["customer_name", "channel", "topic", "enabled", "updated"]
    search_fields = ["customer__email", "customer__full_name"]
    list_filter = ["channel", "topic", "enabled"]

    updated = _datetime_column("updated_at", "Updated")


@admin.register(models.AnalyticsEvent)
class AnalyticsEventAdmin(CustomerLinkedAdmin):
    list_display = ["name", "customer_name", "ip_address", "occurred"]
    search_fields = ["name", "customer__email", "ip_address"]
    list_filter = ["name", "occurred_at"]

    occurred = _datetime_column("occurred_at", "Occurred")


@admin.register(models.Document)
class DocumentAdmin(SoftDeleteAdmin, TrackedHistoryAdmin):
    list_display = ["heading", "owner_name", "updated"]
    search_fields = ["title", "owner__email", "owner__full_name"]
    list_filter = ["created_at"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]

    heading = _truncated_column("title", "Title", 24)
    owner_name = _name_column("owner", "Owner")
    updated = _datetime_column("updated_at", "Updated")


@admin.register(models.PasswordResetToken)
class PasswordResetTokenAdmin(CustomerLinkedAdmin):
    list_display = ["customer_name", "created", "expires", "used"]
    list_display_links = ["customer_name"]
    search_fields = ["customer__email", "customer__full_name"]
    list_filter = [("used_at", admin.EmptyFieldListFilter), "created_at"]

    expires = _datetime_column("expires_at", "Expires")
    used = _datetime_column("used_at", "Used")
