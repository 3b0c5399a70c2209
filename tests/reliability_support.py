"""Helpers shared by the reliability and security suites (tests/test_reliability_*.py,
tests/test_signals.py, tests/test_security.py).

Every case drives the real command line: in-process through click's CliRunner
with a scripted backend, or through the fake Ollama server on the wire.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import backends, cli, config
from pipeline.options import RunOptions, memory_path
from pipeline.report import RunReport
from pipeline.run import run
from pipeline.testing import ScriptedBackend
from tests.procs import python_env

GOOD = "# Good file\n\nThis paragraph must be translated.\n"
STATE_DIR = ".translate-dir"


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def lines_about(self, name: str) -> list[str]:
        return [line for line in self.stderr.splitlines() if name in line]


def use_scripted(monkeypatch: pytest.MonkeyPatch, backend: ScriptedBackend) -> ScriptedBackend:
    """Install ``backend`` as whatever backend the CLI asks for."""
    monkeypatch.setattr(backends, "create", backend.factory)
    monkeypatch.setattr(
        backends, "resolve", lambda name, options, timeout: "embedded" if name == "auto" else name
    )
    return backend


def translate_one(
    folder: Path,
    name: str,
    data: bytes,
    backend: ScriptedBackend,
    translate: dict[str, object] | None = None,
    config_file: Path | None = None,
) -> tuple[bytes, RunReport]:
    """The real orchestrator over one document ``folder/in/name`` with a scripted
    backend, written to ``folder/out``; ``config_file`` is a pipeline.toml to read,
    ``translate`` overrides [translate] keys."""
    src = folder / "in"
    src.mkdir(parents=True, exist_ok=True)
    (src / name).write_bytes(data)
    overrides: dict[str, dict[str, object]] = {"memory": {"path": str(folder / "m.sqlite")}}
    if translate:
        overrides["translate"] = translate
    conf = config.load(config_file, overrides)
    opts = RunOptions(
        root=src,
        targets=("zh",),
        source="en",
        backend="scripted",
        model="m",
        out=folder / "out",
        memory_path=memory_path(conf),
    )
    report = run(conf, opts, backend_factory=backend.factory)
    return (folder / "out" / name).read_bytes(), report


def invoke(*args: str | Path) -> Outcome:
    """Run the CLI in-process; an unexpected exception fails the test (not hidden)."""
    result = CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)
    outcome = Outcome(result.exit_code, result.stdout, result.stderr)
    assert_no_traceback(outcome.stdout + outcome.stderr)
    return outcome


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert 'File "' not in text, text


def temp_files(folder: Path) -> list[Path]:
    """Leftovers of an interrupted atomic write: ``.<name>.<random>.tmp``."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob(".*.tmp"))


def outputs(out: Path) -> dict[str, bytes]:
    """Every file written under ``out``, except the tool's own state folder."""
    if not out.exists():
        return {}
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(out).parts
    }


def write_good(folder: Path, name: str = "good.md") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(GOOD, encoding="utf-8")
    return path


def assert_good_translated(out: Path, name: str = "good.md") -> None:
    text = (out / name).read_text(encoding="utf-8")
    assert "This paragraph must be translated" not in text
    assert has_cjk(text)


def has_cjk(text: str) -> bool:
    return re.search(r"[\u4e00-\u9fff]", text) is not None


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what or predicate}")


def subprocess_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a CLI subprocess: this work tree's code (``tests.procs``),
    its own cache, no stray Ollama host."""
    env = python_env()
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    env.pop("OLLAMA_HOST", None)
    env.pop("TRANSLATE_DIR_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env
