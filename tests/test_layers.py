"""The layers contract (pyproject.toml): no module imports from a layer above its own."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = [
    "versions",
    "retention",
    "compliance",
    "operations",
    "shop",
    "project",
    "bench",
    "tests",
]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_no_import_points_up():
    """Every import, at the top of a file or inside a function, points to its own layer or
    below: the contract is kept."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_inside_a_function_pointing_up_breaks_the_contract(tmp_path):
    """A copy of the code where the ledger (ground) asks compliance's selectors inside a
    function: the contract is broken and names that import."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            tmp_path / package,
            ignore=shutil.ignore_patterns("templates", "static", "__pycache__", "*.html"),
        )
    ledger = tmp_path / "versions" / "ledger.py"
    ledger.write_text(
        ledger.read_text() + "\n\ndef _probe():\n    from compliance.selectors import subject_get\n"
    )
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "versions.ledger is not allowed to import compliance.selectors" in result.stdout
