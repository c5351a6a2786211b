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
