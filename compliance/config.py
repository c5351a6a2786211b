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
