"""Every management command of the project answers --help."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
PROJECT_APPS = ("versions", "compliance", "retention", "operations", "shop")
OURS = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)


def test_project_has_its_commands():
    """The commands the README documents exist."""
    assert {"seed_demo", "verify_ledger", "backfill", "migrate", "backup", "verify_backup",
            "cleanup_backups", "restore", "recover_table", "doctor"} <= set(OURS)  # fmt: skip


@pytest.mark.parametrize("name", OURS)
def test_help(name):
    """`manage.py <command> --help` exits 0 and documents --actor and --reason (migrate, the
    stock command with timeouts: its settings)."""
    result = subprocess.run(
        [sys.executable, "manage.py", name, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    if name == "migrate":  # Django's own command, with the project's timeouts
        assert "MIGRATION_LOCK_TIMEOUT" in result.stdout
    else:
        assert "--actor" in result.stdout and "--reason" in result.stdout
