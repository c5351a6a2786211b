"""Typed accessors for the versions app's settings, read at call time."""

from django.conf import settings


def trust_x_forwarded_for() -> bool:
    """Take the client IP from X-Forwarded-For (only behind a proxy that sets it)."""
    return bool(getattr(settings, "COMPLIANCE_TRUST_X_FORWARDED_FOR", False))


def ledger_secret() -> str:
    """The key of the ledger's hash chain: LEDGER_SECRET, else SECRET_KEY."""
    return getattr(settings, "LEDGER_SECRET", "") or settings.SECRET_KEY
