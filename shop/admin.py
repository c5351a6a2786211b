"""Admin of the sample domain: list columns, search and filters; history on every model."""

from django.contrib import admin
from django.db import models as db

from retention.admin import SoftDeleteAdmin
from versions.admin import TrackedHistoryAdmin

from . import models


@admin.register(models.Customer)
class CustomerAdmin(SoftDeleteAdmin, TrackedHistoryAdmin):
    list_display = ["name", "email", "phone", "created_at"]
    search_fields = ["name", "email", "phone"]
    list_filter = ["created_at"]
    date_hierarchy = "created_at"
    readonly_fields = ["created_at", "updated_at"]
    formfield_overrides = {db.URLField: {"assume_scheme": "https"}}


class CustomerLinkedAdmin(TrackedHistoryAdmin):
    """Models that belong to a customer: pick the customer by search, filter by date."""

    autocomplete_fields = ["customer"]
    list_select_related = ["customer"]


@admin.register(models.Session)
class SessionAdmin(CustomerLinkedAdmin):
    list_display = ["id", "customer", "ip_address", "user_agent", "created_at", "expires_at"]
    search_fields = ["customer__email", "customer__name", "ip_address"]
    list_filter = ["created_at", "expires_at"]


@admin.register(models.Order)
class OrderAdmin(CustomerLinkedAdmin):
    list_display = [
        "number",
        "customer",
        "status",
        "total",
        "currency",
        "shipping_city",
        "created_at",
    ]
    search_fields = [
        "number",
        "customer__email",
        "customer__name",
        "shipping_name",
        "shipping_postcode",
    ]
    list_filter = ["status", "shipping_country", "created_at"]
    date_hierarchy = "created_at"


@admin.register(models.Message)
class MessageAdmin(TrackedHistoryAdmin):
    list_display = ["id", "sender_name", "sender", "recipient", "created_at"]
    search_fields = ["sender_name", "body", "sender__email", "recipient__email"]
    list_filter = ["created_at"]
    autocomplete_fields = ["sender", "recipient"]
    list_select_related = ["sender", "recipient"]


@admin.register(models.Notification)
class NotificationAdmin(CustomerLinkedAdmin):
    list_display = ["title", "customer", "kind", "read_at", "created_at"]
    search_fields = ["title", "customer__email"]
    list_filter = ["kind", ("read_at", admin.EmptyFieldListFilter), "created_at"]


@admin.register(models.NotificationPreference)
class NotificationPreferenceAdmin(CustomerLinkedAdmin):
    list_display = ["customer", "channel", "topic", "enabled", "updated_at"]
    search_fields = ["customer__email", "customer__name"]
    list_filter = ["channel", "topic", "enabled"]


@admin.register(models.AnalyticsEvent)
class AnalyticsEventAdmin(CustomerLinkedAdmin):
    list_display = ["name", "customer", "ip_address", "occurred_at"]
    search_fields = ["name", "customer__email", "ip_address"]
    list_filter = ["name", "occurred_at"]


@admin.register(models.Document)
class DocumentAdmin(SoftDeleteAdmin, TrackedHistoryAdmin):
    list_display = ["title", "owner", "created_at", "updated_at"]
    search_fields = ["title", "owner__email", "owner__name"]
    list_filter = ["created_at"]
    autocomplete_fields = ["owner"]
    list_select_related = ["owner"]


@admin.register(models.PasswordResetToken)
class PasswordResetTokenAdmin(CustomerLinkedAdmin):
    list_display = ["id", "customer", "created_at", "expires_at", "used_at"]
    search_fields = ["customer__email"]
    list_filter = [("used_at", admin.EmptyFieldListFilter), "created_at"]
