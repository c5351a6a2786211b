"""Every management command of the project answers --help."""

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parents[1]
PROJECT_APPS = ("versions", "compliance", "retention", "shop")
OURS = sorted(name for name, app in get_commands().items() if app in PROJECT_APPS)


def test_project_has_its_commands():
    """The commands the README documents exist."""
    assert {"seed_demo", "verify_ledger", "backup", "verify_backup", "cleanup_backups"} <= set(OURS)


@pytest.mark.parametrize("name", OURS)
def test_help(name):
    """`manage.py <command> --help` exits 0 and documents --actor and --reason."""
    result = subprocess.run(
        [sys.executable, "manage.py", name, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--actor" in result.stdout and "--reason" in result.stdout
