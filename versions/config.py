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


def backup_dir() -> Path:
    """Where backups and their manifests are written (BACKUP_DIR): outside static and media,
    ideally a volume of its own that is copied off the machine."""
    return Path(getattr(settings, "BACKUP_DIR", settings.BASE_DIR / "var" / "backups"))


#: The doctor's thresholds: setting name and default (docs/doctor.md explains each).
DOCTOR_DEFAULTS = {
    "DOCTOR_DEAD_TUPLE_RATIO": 0.2,
    "DOCTOR_DEAD_TUPLES": 10_000,
    "DOCTOR_TRANSACTION_MINUTES": 5.0,
    "DOCTOR_LOCK_WAIT_SECONDS": 10.0,
    "DOCTOR_PURGE_STALE_DAYS": 2.0,
    "DOCTOR_PURGE_RUNNING_HOURS": 12.0,
    "DOCTOR_POLICY_PENDING_DAYS": 7.0,
    "DOCTOR_LEDGER_DAYS": 2.0,
    "DOCTOR_BACKUP_DAYS": 2.0,
    "DOCTOR_BACKUP_VERIFY_DAYS": 2.0,
    "DOCTOR_BACKUP_DRILL_DAYS": 8.0,
    "DOCTOR_HISTORY_RATIO": 50.0,
    "DOCTOR_HISTORY_ROWS": 100_000,
}


def doctor_threshold(name: str) -> float:
    """One of the doctor's thresholds (DOCTOR_DEFAULTS names them), from settings."""
    default = DOCTOR_DEFAULTS[name]
    return type(default)(getattr(settings, name, default))


def backup_keep(tier: str) -> int:
    """How many backups of `tier` cleanup keeps, newest first: BACKUP_KEEP_DAILY (7),
    BACKUP_KEEP_WEEKLY (4), BACKUP_KEEP_MONTHLY (12). Held backups are kept besides."""
    defaults = {"daily": 7, "weekly": 4, "monthly": 12}
    return max(0, int(getattr(settings, f"BACKUP_KEEP_{tier.upper()}", defaults[tier])))
