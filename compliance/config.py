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


def controller_name() -> str:
    """Who the controller is, as the export's summary names it (COMPLIANCE_CONTROLLER_NAME)."""
    return getattr(settings, "COMPLIANCE_CONTROLLER_NAME", "")


def controller_contact() -> str:
    """How to reach the controller (COMPLIANCE_CONTROLLER_CONTACT): address, email."""
    return getattr(settings, "COMPLIANCE_CONTROLLER_CONTACT", "")


def dpo_contact() -> str:
    """How to reach the data protection officer (COMPLIANCE_DPO_CONTACT); empty: none."""
    return getattr(settings, "COMPLIANCE_DPO_CONTACT", "")


def supervisory_authority() -> str:
    """The supervisory authority a subject may complain to (COMPLIANCE_SUPERVISORY_AUTHORITY):
    its name and address or website."""
    return getattr(settings, "COMPLIANCE_SUPERVISORY_AUTHORITY", "")


def subject_for_user():
    """The host site's mapping of a signed-in user to a data subject: the callable named by
    COMPLIANCE_SUBJECT_FOR_USER ("package.module.function", taking the user and returning
    the subject or None), else None (no mapping: only a preferences session is known)."""
    from django.utils.module_loading import import_string

    path = getattr(settings, "COMPLIANCE_SUBJECT_FOR_USER", "")
    return import_string(path) if path else None


def gpc_last_update() -> str:
    """The date /.well-known/gpc.json gives as lastUpdate: when the site's handling of Global
    Privacy Control last changed (COMPLIANCE_GPC_LAST_UPDATE, ISO date)."""
    return getattr(settings, "COMPLIANCE_GPC_LAST_UPDATE", "2026-12-08")


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
