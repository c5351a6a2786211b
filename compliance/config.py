"""Typed accessors for the compliance app's settings, read at call time."""

from pathlib import Path

from django.conf import settings


def subject_model() -> str:
    """The "app_label.Model" of the data subject (default shop.Customer)."""
    return getattr(settings, "COMPLIANCE_SUBJECT_MODEL", "shop.Customer")


def pseudonym_secret() -> str:
    """The key of the hash anonymiser: PSEUDONYM_SECRET, else SECRET_KEY (check --deploy
    refuses that: compliance.E008)."""
    return getattr(settings, "PSEUDONYM_SECRET", "") or settings.SECRET_KEY


def export_dir() -> Path:
    """Where data-subject exports are stored: outside static and media
    (COMPLIANCE_EXPORT_DIR)."""
    return Path(getattr(settings, "COMPLIANCE_EXPORT_DIR", settings.BASE_DIR / "var" / "exports"))


def export_expiry_days() -> int:
    """Days an export stays downloadable before its file is deleted
    (COMPLIANCE_EXPORT_EXPIRY_DAYS, default 7)."""
    return int(getattr(settings, "COMPLIANCE_EXPORT_EXPIRY_DAYS", 7))


def code_minutes() -> int:
    """Minutes an emailed code stays valid (PRIVACY_CODE_MINUTES, default 10)."""
    return int(getattr(settings, "PRIVACY_CODE_MINUTES", 10))


def link_days() -> int:
    """Days a status link stays valid (PRIVACY_LINK_DAYS, default 30)."""
    return int(getattr(settings, "PRIVACY_LINK_DAYS", 30))


def rate_per_hour() -> int:
    """Attempts per hour per address and per email on the privacy center's forms
    (PRIVACY_RATE_PER_HOUR, default 10)."""
    return int(getattr(settings, "PRIVACY_RATE_PER_HOUR", 10))


def download_link_days() -> int:
    """Days the link to a released copy stays valid (COMPLIANCE_DOWNLOAD_LINK_DAYS, default
    7); the request then completes as "expired without download" if it was never used."""
    return int(getattr(settings, "COMPLIANCE_DOWNLOAD_LINK_DAYS", 7))
