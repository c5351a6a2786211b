"""Typed accessors for the versions app's settings, read at call time."""

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Used only with DEMO=true, so that `make demo` runs without configuration; `check --deploy`
# refuses a deployment without a LEDGER_SECRET of its own.
DEMO_LEDGER_SECRET = "demo-only-insecure-ledger-key-set-LEDGER_SECRET-in-production"
LEDGER_SECRET_MIN_LENGTH = 32


def trusted_proxy_count() -> int:
    """How many proxies in front of the application append to X-Forwarded-For (0: none)."""
    return int(getattr(settings, "COMPLIANCE_TRUSTED_PROXY_COUNT", 0))


def proxy_sets_request_id() -> bool:
    """Whether our proxy overwrites X-Request-ID on every request (needs a proxy count)."""
    return bool(getattr(settings, "COMPLIANCE_PROXY_SETS_REQUEST_ID", False)) and (
        trusted_proxy_count() > 0
    )


def ledger_secret() -> str:
    """The key that signs new ledger entries and checkpoints: LEDGER_SECRET.

    Never derived from SECRET_KEY: rotating one must not touch the other. The demo gets a
    built-in key; anywhere else a missing LEDGER_SECRET stops the ledger with a clear error.
    """
    secret = getattr(settings, "LEDGER_SECRET", "")
    if secret:
        return secret
    if getattr(settings, "DEMO", False):
        return DEMO_LEDGER_SECRET
    raise ImproperlyConfigured(
        "Set the LEDGER_SECRET environment variable to a long random string (at least "
        f"{LEDGER_SECRET_MIN_LENGTH} characters, not SECRET_KEY): the ledger is keyed with it."
    )


def ledger_previous_secrets() -> list[str]:
    """Retired ledger keys (LEDGER_PREVIOUS_SECRETS): entries they signed still verify."""
    return [s for s in getattr(settings, "LEDGER_PREVIOUS_SECRETS", []) if s]


def ledger_head_file() -> Path | None:
    """Where the ledger's head is written after each commit (LEDGER_HEAD_FILE), or None."""
    path = getattr(settings, "LEDGER_HEAD_FILE", "")
    return Path(path) if path else None
