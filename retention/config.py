"""Typed accessors for the retention app's settings, read at call time."""

from pathlib import Path

from django.conf import settings


def archive_dir() -> Path:
    """Where purge archives go: outside static and media (RETENTION_ARCHIVE_DIR)."""
    return Path(getattr(settings, "RETENTION_ARCHIVE_DIR", settings.BASE_DIR / "var" / "archives"))


def batch_size() -> int:
    """Rows per batch of a purge unless a run says otherwise (RETENTION_BATCH_SIZE)."""
    return int(getattr(settings, "RETENTION_BATCH_SIZE", 10_000))
