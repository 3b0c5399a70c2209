"""Hundreds of requests in flight without a thread per request.

A run sends every request from one event-loop thread. Each test holds the
server's answers until (nearly) all the run's requests are in flight at once, so
the overlap is proven by the server, not assumed; at that moment it counts the
client's threads. Two wire formats: the OpenAI API (``bench.server``, one
asyncio thread, in this process, so the process's thread count is the run's plus
one) and Ollama's native API (``tests/ollama_wire.py``, whose server runs a
thread per request: so the client is the real CLI in a child process, and its
threads are read from /proc).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from bench.backends import to_zh
from bench.common import run_pipeline
from bench.server import serve
from tests.ollama_wire import serve_fake_ollama
from tests.slow_backend import cli

SLOTS = 128
# Threads a run may have whatever its slots: main, the event loop, the fake
# server's (in process), and a few of the runtime's. A thread per request is 128+.
FEW_THREADS = 20
# One paragraph per chunk (translate.chunk_tokens below a paragraph): 32 files of
# 4 chunks each.
FILES, PER_FILE = 32, 4


def write_docs(folder: Path) -> None:
    folder.mkdir(parents=True)
    for f in range(FILES):
        text = "".join(
            f"Paragraph {f * PER_FILE + k} of the overlap test says a thing.\n\n"
            for k in range(PER_FILE)
        )
        (folder / f"doc-{f:02d}.md").write_text(text, encoding="utf-8")


def test_openai_wire_holds_128_requests_in_flight_on_a_few_threads(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_docs(src)
    threads: list[int] = []
    with serve(to_zh, slots=SLOTS) as server:
        server.hold_until = SLOTS
        server.on_request = lambda _: threads.append(threading.active_count())
        report = run_pipeline(
            src,
            tmp_path / "out",
            "zh",
            memory_path=tmp_path / "memory.sqlite",
            backend="openai",
            model=server.model,
            concurrency=SLOTS,
            backend_options={"base_url": server.openai_url, "stream": True},
            overrides={"translate": {"chunk_tokens": 16}},
        )
    assert report.chunks == report.requests == FILES * PER_FILE
    assert (report.kept, report.failed_chunks) == (0, 0)
    assert server.max_in_flight >= 100, "the requests did not overlap"
    assert server.max_connections >= 100
    assert max(threads) < FEW_THREADS, f"{max(threads)} threads for {SLOTS} requests"
    written = sorted((tmp_path / "out").rglob("*.md"))
    assert len(written) == FILES
    assert all("Paragraph" not in p.read_text(encoding="utf-8") for p in written)


def _threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for process {pid}")


class Overlap:
    """A fake Ollama's answers, each held until ``target`` are in flight at once;
    then the client process's thread count is read, and all go."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.pid = 0
        self.in_flight = 0
        self.most = 0
        self.client_threads = 0
        self._cond = threading.Condition()
        self._open = False

    def __call__(self, text: str) -> str:
        with self._cond:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            if self.in_flight >= self.target and not self._open:
                self.client_threads = _threads_of(self.pid)
                self._open = True
                self._cond.notify_all()
            self._cond.wait_for(lambda: self._open, timeout=60)
            self.in_flight -= 1
        return to_zh(text)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ollama_wire_holds_128_requests_in_flight_in_the_cli(tmp_path: Path) -> None:
    write_docs(tmp_path / "docs")
    (tmp_path / "pipeline.toml").write_text("[translate]\nchunk_tokens = 16\n", encoding="utf-8")
    overlap = Overlap(SLOTS)
    with serve_fake_ollama(translate=overlap) as fake:
        args = ["docs", "--to", "zh", "--concurrency", str(SLOTS), "--json"]
        proc = cli([*args, "--backend", "ollama", "--host", fake.url, "--model", fake.model],
                   cwd=tmp_path)  # fmt: skip
        overlap.pid = proc.pid
        out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["requests"] == summary["chunks"] == FILES * PER_FILE
    assert overlap.most >= 100, "the requests did not overlap"
    assert 0 < overlap.client_threads < FEW_THREADS, (
        f"the CLI ran {overlap.client_threads} threads for {SLOTS} requests in flight"
    )
    written = sorted((tmp_path / "output" / "zh").rglob("*.md"))
    assert len(written) == FILES
