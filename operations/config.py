"""Typed accessors for the operations app's settings, read at call time: backups, the
doctor's thresholds, and migration timeouts."""

import re
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "DOCTOR_DEFAULTS",
    "backup_dir",
    "backup_keep",
    "doctor_threshold",
    "migration_lock_timeout",
    "migration_statement_timeout",
]


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


# A PostgreSQL duration as `SET lock_timeout` takes it: a number, optionally with a unit.
_DURATION = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


def _duration(name: str, default: str) -> str:
    value = str(getattr(settings, name, default)).strip()
    if not _DURATION.match(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a duration: give a number with a unit, e.g. 500ms, 5s, "
            "2min, or 0 for no limit."
        )
    return value


def migration_lock_timeout() -> str:
    """How long a migration waits for a lock on PostgreSQL (MIGRATION_LOCK_TIMEOUT)."""
    return _duration("MIGRATION_LOCK_TIMEOUT", "5s")


def migration_statement_timeout() -> str:
    """How long one statement of a migration may run on PostgreSQL, 0 for no limit
    (MIGRATION_STATEMENT_TIMEOUT)."""
    return _duration("MIGRATION_STATEMENT_TIMEOUT", "15min")
