"""Typed accessors for the versions app's settings, read at call time."""

from django.conf import settings


def trusted_proxy_count() -> int:
    """How many proxies in front of the application append to X-Forwarded-For (0: none)."""
    return int(getattr(settings, "COMPLIANCE_TRUSTED_PROXY_COUNT", 0))


def proxy_sets_request_id() -> bool:
    """Whether our proxy overwrites X-Request-ID on every request (needs a proxy count)."""
    return bool(getattr(settings, "COMPLIANCE_PROXY_SETS_REQUEST_ID", False)) and (
        trusted_proxy_count() > 0
    )


def ledger_secret() -> str:
    """The key of the ledger's hash chain: LEDGER_SECRET, else SECRET_KEY."""
    return getattr(settings, "LEDGER_SECRET", "") or settings.SECRET_KEY
