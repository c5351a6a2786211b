"""The Makefile's targets that touch files: run in a copy of the project's layout."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_clean_removes_the_demos_files_and_leaves_the_rest_of_var(tmp_path):
    """`make clean` removes the demo's database and its data directory var/demo (its ledger
    anchor, exports, archives, backups); other files in var/ stay, such as a deployment's
    archives and anchor (the demo's anchor left beside a new demo database would report its
    ledger as cut)."""
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    demo = [
        "db.sqlite3",
        "var/demo/ledger.head",
        "var/demo/exports/4/export.zip",
        "var/demo/archives/1/range-1-start-10.jsonl.gz",
        "var/demo/backups/backup.dump",
    ]
    kept = ["var/ledger.head", "var/archives/1/range-1-start-10.jsonl.gz", "pyproject.toml"]
    for name in [*demo, *kept, ".venv/bin/python"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    subprocess.run(["make", "clean"], cwd=tmp_path, check=True, capture_output=True)
    assert [name for name in demo if (tmp_path / name).exists()] == []
    assert all((tmp_path / name).exists() for name in kept)
    assert not (tmp_path / ".venv").exists()
