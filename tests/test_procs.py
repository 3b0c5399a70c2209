"""Child processes run this work tree's ``pipeline``, not an installed copy (tests/procs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import __version__
from tests.procs import REPO, popen_python, run_cli

PRINT_PACKAGE = "import pipeline; print(pipeline.__file__)"


@pytest.fixture
def decoy_env(tmp_path: Path) -> dict[str, str]:
    """An environment where another ``pipeline`` package comes first on the path,
    as an installed copy of an older version would."""
    decoy = tmp_path / "site-packages" / "pipeline"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("", encoding="utf-8")
    (decoy / "cli.py").write_text("print('decoy cli')\n", encoding="utf-8")
    return {**os.environ, "PYTHONPATH": str(decoy.parent)}


def test_the_decoy_wins_without_the_helper(tmp_path: Path, decoy_env: dict[str, str]) -> None:
    # The setting the next tests rely on: a bare child imports the decoy.
    proc = subprocess.run(
        [sys.executable, "-c", PRINT_PACKAGE],
        cwd=tmp_path,
        env=decoy_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).parent == tmp_path / "site-packages" / "pipeline"


def test_python_child_imports_this_work_tree(tmp_path: Path, decoy_env: dict[str, str]) -> None:
    proc = popen_python(PRINT_PACKAGE, env=decoy_env, cwd=tmp_path, stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert Path(out.strip()) == REPO / "pipeline" / "__init__.py"


def test_cli_child_runs_this_work_tree(tmp_path: Path, decoy_env: dict[str, str]) -> None:
    proc = run_cli(["--version"], cwd=tmp_path, env=decoy_env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"translate-dir, version {__version__}\n"
