"""Settings from the environment: a production start without SECRET_KEY is refused."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEMO", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**base, "COMPLIANCE_READ_DOTENV": "false", **env},
        timeout=120,
    )


def test_secret_key_is_required_outside_the_demo():
    """Without SECRET_KEY and without DEMO the project refuses to start, saying why."""
    result = _check()
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_demo_runs_without_a_secret_key():
    """DEMO=true starts with a built-in key."""
    assert _check(DEMO="true").returncode == 0


def test_empty_secret_key_counts_as_missing():
    """A blank SECRET_KEY line is refused too, not run with an empty key."""
    result = _check(SECRET_KEY="")
    assert result.returncode != 0
    assert "Set the SECRET_KEY environment variable" in result.stderr


def test_empty_secret_key_does_not_break_the_demo():
    """DEMO=true with a blank SECRET_KEY line still uses the built-in key."""
    assert _check(DEMO="true", SECRET_KEY="").returncode == 0
