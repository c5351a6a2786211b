"""Backups of the test database, made by the backup service itself, for the restore tests."""

from pathlib import Path

import pytest

from operations.backups import backup_create
from operations.config import backup_dir


@pytest.fixture
def make_backup(settings, tmp_path):
    """make_backup(tier="daily") -> the path of a backup of the test database now, written
    by `backup_create` (file, manifest, catalogue row and ledger entry) under tmp_path."""
    settings.BACKUP_DIR = tmp_path / "backups"

    def make(tier: str = "daily") -> Path:
        backup = backup_create(tier=tier, actor=None, reason="Before the restore test")
        return backup_dir() / backup.file

    return make
