"""One run at a time per output folder (issue 5, must have 7).

The first run is a real ``translate-dir`` child process, held inside its first
model request by the gated fake Ollama server, so it holds the lock for as long
as the test needs. The second run starts while the first is known to hold it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli as cli_module
from pipeline.testing import to_zh
from tests.ollama_wire import serve_fake_ollama
from tests.slow_backend import cli, lock_waiters, ollama_args, serve_gated_ollama, wait_for

DOCS = {
    "a.md": "Paragraph 100 of the first file.\n",
    "b.md": "Paragraph 200 of the second file.\n",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in DOCS.items():
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def lock_file(project: Path, out: str = "output/zh") -> Path:
    return project / out / ".translate-dir" / "lock"


def holds_lock(project: Path, proc: subprocess.Popen[str]) -> bool:
    path = lock_file(project)
    return path.exists() and path.read_text().strip() == str(proc.pid)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli_module.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_second_run_exits_4_at_once_naming_the_first(project: Path) -> None:
    with serve_gated_ollama(gate_after=0) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        first = cli(args, cwd=project)
        try:
            wait_for(lambda: holds_lock(project, first), "the first run to take the lock")
            wait_for(lambda: gate.held == 1, "the first run's first request")
            seen = len(fake.requests)

            started = time.monotonic()
            code, _, err = invoke(*args)
            took = time.monotonic() - started
            assert code == 4
            out = (project / "output" / "zh").resolve()
            assert err.strip() == (
                f"translate-dir: error: another translate-dir run (pid {first.pid}) is "
                f"writing to {out}; wait for it, or pass --wait"
            )
            assert first.poll() is None, "the first run is still going: no waiting happened"
            assert took < 10
            assert fake.requests[seen:] == [], "the second run contacted no model"
        finally:
            gate.release()
            _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert sorted(p.name for p in (project / "output" / "zh").glob("*.md")) == ["a.md", "b.md"]


def test_wait_waits_then_finds_everything_done(project: Path) -> None:
    with serve_gated_ollama(gate_after=0) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        first = cli(args, cwd=project)
        second = None
        try:
            wait_for(lambda: holds_lock(project, first), "the first run to take the lock")
            second = cli([*args, "--wait", "--json"], cwd=project)
            wait_for(
                lambda: second.pid in lock_waiters(lock_file(project)),
                "the second run to wait on the lock",
            )
            assert first.poll() is None
        finally:
            gate.release()
            _, first_err = first.communicate(timeout=60)
            if second is not None:
                stdout, second_err = second.communicate(timeout=60)
        assert first.returncode == 0, first_err
        assert second.returncode == 0, second_err
        summary = json.loads(stdout)
        # Everything was translated by the first run: nothing left to ask for.
        assert summary["requests"] == 0 and summary["unchanged"] == 2
        assert summary["written"] == 0
        assert len(fake.chats()) == len(DOCS)
        assert len(fake.bodies("/api/show")) == 1, "only the first run started the backend"


def test_runs_on_other_folders_and_check_do_not_wait(project: Path) -> None:
    """The lock is per output folder, and --check (read only) takes none."""
    with serve_gated_ollama(gate_after=0) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        first = cli(args, cwd=project)
        try:
            wait_for(lambda: holds_lock(project, first), "the first run to take the lock")
            code, _, err = invoke("docs", "--to", "zh", "--check")
            assert code == 1 and err.count(": missing (source ") == 2
            with serve_fake_ollama(translate=to_zh) as other:
                code, _, err = invoke(
                    "docs", "--to", "zh", "--out", "elsewhere", *ollama_args(other)
                )
            assert code == 0, err
            assert len(other.chats()) == 2  # one chunk per file
            assert first.poll() is None
        finally:
            gate.release()
            _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert (project / "elsewhere" / "a.md").exists()
