"""Typed accessors for the project's own settings, read at call time."""

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["migration_lock_timeout", "migration_statement_timeout"]

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
