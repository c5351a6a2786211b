"""Typed accessors for the compliance app's settings, read at call time."""

from django.conf import settings


def subject_model() -> str:
    """The "app_label.Model" of the data subject (default shop.Customer)."""
    return getattr(settings, "COMPLIANCE_SUBJECT_MODEL", "shop.Customer")


def pseudonym_secret() -> str:
    """The key of the hash anonymiser: PSEUDONYM_SECRET, else SECRET_KEY (check --deploy
    refuses that: compliance.E008)."""
    return getattr(settings, "PSEUDONYM_SECRET", "") or settings.SECRET_KEY
