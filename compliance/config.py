"""Typed accessors for the compliance app's settings, read at call time."""

from django.conf import settings


def subject_model() -> str:
    """The "app_label.Model" of the data subject (default shop.Customer)."""
    return getattr(settings, "COMPLIANCE_SUBJECT_MODEL", "shop.Customer")
