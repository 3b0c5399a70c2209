"""kill -9 in the middle of a run: finished chunks are never requested again, and
no output file is ever half-written (issue 5, must have 6).

The run is a real ``translate-dir`` child process talking to the fake Ollama
server over HTTP. The server answers the first chunks, then holds the next
request open, so the test knows exactly which chunks were finished when it
sends SIGKILL.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.slow_backend import (
    cli,
    memory_entries,
    ollama_args,
    serve_gated_ollama,
    wait_for,
)

# Three files of three short paragraphs; with chunk_tokens = 16 every paragraph
# is its own chunk (one request each), in file order.
FILES = {
    f"{name}.md": "".join(
        f"Paragraph {n} of file {name} says a thing.\n\n" for n in range(first, first + 3)
    )
    for name, first in (("a", 100), ("b", 200), ("c", 300))
}
CHUNKS = 9
TEMP_FILE = re.compile(r"\.tmp$")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / "docs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    (tmp_path / "pipeline.toml").write_text("[translate]\nchunk_tokens = 16\n", encoding="utf-8")
    return tmp_path


def files_under(folder: Path) -> dict[str, bytes]:
    if not folder.exists():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_kill_9_mid_run_resumes_without_rerequesting(project: Path, isolated_state: Path) -> None:
    memory = isolated_state / "translate-dir" / "memory.sqlite"
    out = project / "output" / "zh"
    with serve_gated_ollama(gate_after=4) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        proc = cli(args, cwd=project)
        try:
            # Four chunks answered and committed, a.md complete, the fifth request held.
            wait_for(lambda: len(memory_entries(memory)) == 4, "4 committed chunks")
            wait_for(lambda: (out / "a.md").exists(), "a.md written")
            wait_for(lambda: gate.held == 1, "the fifth request to arrive")
            assert proc.poll() is None, "the run ended before it could be killed"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
        gate.release()
        at_kill = files_under(out)
        committed = len(memory_entries(memory))
        assert committed == 4

        # Nothing half-written: no temporary files, and what exists is complete.
        assert not [name for name in at_kill if TEMP_FILE.search(Path(name).name)]
        assert "a.md" in at_kill and "c.md" not in at_kill
        first_texts = fake.user_texts()
        assert len(first_texts) == 5

        code, stdout, err = finish(cli([*args, "--json"], cwd=project))
        assert code == 0, err
        summary = json.loads(stdout)

    # The next run asks only for what was not finished: the held chunk and the rest.
    assert summary["requests"] == CHUNKS - committed
    counts = collections.Counter(fake.user_texts())
    assert len(counts) == CHUNKS, "every chunk was requested"
    assert {text for text, n in counts.items() if n > 1} == {first_texts[-1]}
    assert counts[first_texts[-1]] == 2  # the one in flight at the kill, and only it

    final = files_under(out)
    assert sorted(k for k in final if not k.startswith(".translate-dir/")) == sorted(FILES)
    assert not [name for name in final if TEMP_FILE.search(Path(name).name)]
    for name, data in at_kill.items():
        if not name.startswith(".translate-dir/"):
            # Every output that existed at the kill was a complete translation.
            assert data == final[name], name
    for name in FILES:
        text = final[name].decode("utf-8")
        assert "Paragraph" not in text and "says" not in text
        assert re.findall(r"\d+", text) == re.findall(r"\d+", FILES[name])
    manifest = json.loads(final[".translate-dir/manifest.json"])
    assert sorted(manifest["outputs"]) == sorted(FILES)


def test_kill_9_leaves_the_lock_free_and_check_consistent(
    project: Path, isolated_state: Path
) -> None:
    """The killed run's lock dies with it; --check then sees what is still missing."""
    memory = isolated_state / "translate-dir" / "memory.sqlite"
    with serve_gated_ollama(gate_after=3) as (fake, gate):
        args = ["docs", "--to", "zh", *ollama_args(fake)]
        proc = cli(args, cwd=project)
        try:
            wait_for(lambda: gate.held == 1, "the fourth request to arrive")
            wait_for(lambda: len(memory_entries(memory)) == 3, "3 committed chunks")
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        gate.release()
        lock = project / "output" / "zh" / ".translate-dir" / "lock"
        assert lock.exists()

        code, _, err = finish(cli([*args, "--check"], cwd=project))
        assert code == 1
        # a.md may or may not be in the manifest yet (saved every few seconds):
        # either way b.md and c.md are missing.
        assert "b.md: missing" in err and "c.md: missing" in err

        # Not "another run holds the lock": the kernel released it at the kill.
        code, _, err = finish(cli(["--quiet", *args], cwd=project))
        assert code == 0, err
        code, _, err = finish(cli([*args, "--check"], cwd=project))
        assert code == 0, err
    assert len(fake.user_texts()) == CHUNKS + 1
