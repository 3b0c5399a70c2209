"""Child processes that run the code under test, not an installed copy of ``pipeline``.

Every test that starts Python in a subprocess goes through here: ``python_env()``
puts this repository first on ``PYTHONPATH``, so ``import pipeline`` in the child
finds this work tree whatever is installed (a wheel in site-packages, an editable
install of another checkout). ``CLI`` is ``translate-dir`` as ``python -m
pipeline.cli`` with this interpreter (the console script would be whatever
``pip install`` last wrote).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

# translate-dir in a child process.
CLI = [sys.executable, "-m", "pipeline.cli"]


def python_env(base: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """``base`` (default: this process's environment) plus ``extra``, with the
    repository root first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    env.update(extra)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *rest])
    return env


def popen_cli(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    """``translate-dir ARGS`` started in a child process (text mode)."""
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=python_env(env), text=True, **kwargs)


def run_cli(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``translate-dir ARGS`` run to completion in a child process (text mode)."""
    return subprocess.run([*CLI, *args], cwd=cwd, env=python_env(env), text=True, **kwargs)


def popen_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, **kwargs: Any
) -> subprocess.Popen[str]:
    """``python -c CODE ARGS`` in a child process that imports this work tree."""
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=python_env(env), text=True, **kwargs
    )
