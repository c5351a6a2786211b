"""System checks of the versions app."""

from django.conf import settings
from django.core.checks import Error, Tags, register

from . import config

_HINT = (
    "Set LEDGER_SECRET to a random value of its own, e.g. "
    "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`. To rotate it, move the "
    "old value to LEDGER_PREVIOUS_SECRETS so that the entries it signed still verify."
)


@register(Tags.security, deploy=True)
def ledger_secret_check(app_configs, **kwargs):
    """versions.E001–E003: the ledger has a key of its own, long enough (deploy only)."""
    secret = getattr(settings, "LEDGER_SECRET", "")
    if not secret:
        return [
            Error(
                "LEDGER_SECRET is not set: the ledger has no key.", hint=_HINT, id="versions.E001"
            )
        ]
    secret_keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if secret in secret_keys:
        return [
            Error(
                "LEDGER_SECRET is the SECRET_KEY: rotating one would rotate the other.",
                hint=_HINT,
                id="versions.E002",
            )
        ]
    if len(secret) < config.LEDGER_SECRET_MIN_LENGTH:
        return [
            Error(
                f"LEDGER_SECRET is shorter than {config.LEDGER_SECRET_MIN_LENGTH} characters.",
                hint=_HINT,
                id="versions.E003",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def ledger_anchor_check(app_configs, **kwargs):
    """versions.E004: the ledger's head is anchored outside the database (deploy only)."""
    if config.ledger_head_file() is not None:
        return []
    return [
        Error(
            "LEDGER_HEAD_FILE is not set: the ledger's head is anchored nowhere outside the "
            "database, so entries deleted from its end by the database's owner go unnoticed.",
            hint="Set LEDGER_HEAD_FILE to a file the application may append to and the "
            "database's users cannot write (a volume of its own, or one shipped off the "
            "machine), e.g. /var/lib/compliance/ledger.head. See docs/ledger.md.",
            id="versions.E004",
        )
    ]
