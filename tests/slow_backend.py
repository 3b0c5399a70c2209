"""A slow, gated fake Ollama for subprocess tests, and helpers to drive the real CLI.

``serve_gated_ollama()`` wraps ``tests.ollama_wire.serve_fake_ollama``: the same
wire format, answers made by ``pipeline.testing.to_zh`` (words become CJK
characters, digits and markup stay, so each answer still shows which paragraph it
came from). Two knobs
make a run last as long as a test needs, without the test ever sleeping:

- ``delay``: seconds the server spends on each translation request;
- ``gate_after``: answer that many translation requests, then hold every further
  one until ``release()`` (or until ``hold_limit`` seconds pass, so a forgotten
  gate cannot hang the suite). The test knows exactly where the run is.

``cli()`` starts ``translate-dir`` from this work tree in a child process
(``tests.procs``; its own pid, killable with SIGKILL); ``wait_for()`` polls a
condition against a deadline.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.testing import to_zh
from tests.ollama_wire import FakeOllama, serve_fake_ollama
from tests.procs import popen_cli


@dataclass
class Gate:
    delay: float = 0.0
    gate_after: int | None = None
    hold_limit: float = 60.0
    translate: Callable[[str], str] = to_zh
    answered: int = 0
    held: int = 0
    _open: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, text: str) -> str:
        with self._lock:
            hold = self.gate_after is not None and self.answered >= self.gate_after
            if hold:
                self.held += 1
            else:
                self.answered += 1
        if hold:
            # Server side: the request stays open until the test lets it go.
            self._open.wait(self.hold_limit)
        elif self.delay:
            self._open.wait(self.delay)  # the server "computes"; release() skips it
        return self.translate(text)

    def release(self) -> None:
        self._open.set()


@contextmanager
def serve_gated_ollama(
    *, delay: float = 0.0, gate_after: int | None = None, **kwargs: Any
) -> Iterator[tuple[FakeOllama, Gate]]:
    gate = Gate(delay=delay, gate_after=gate_after)
    with serve_fake_ollama(translate=gate, **kwargs) as fake:
        try:
            yield fake, gate
        finally:
            # Let any held handler finish before the server is stopped.
            gate.release()


def cli(
    args: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``translate-dir ARGS`` in a child process, output captured."""
    return popen_cli(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def ollama_args(fake: FakeOllama) -> list[str]:
    return ["--backend", "ollama", "--host", fake.url, "--model", fake.model]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


def memory_entries(path: Path) -> list[str]:
    """Translations in the memory, read-only (another process may be writing)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    try:
        return [row[0] for row in db.execute("SELECT translation FROM entries")]
    except sqlite3.OperationalError:  # the schema is not created yet
        return []
    finally:
        db.close()


def lock_waiters(lock_file: Path) -> set[int]:
    """Pids blocked in flock() on ``lock_file`` (Linux /proc/locks, '->' lines)."""
    inode = lock_file.stat().st_ino
    pids = set()
    for line in Path("/proc/locks").read_text().splitlines():
        fields_ = line.split()
        if "->" in fields_ and "FLOCK" in fields_:
            rest = fields_[fields_.index("FLOCK") :]
            pid, dev_inode = int(rest[3]), rest[4]
            if dev_inode.rsplit(":", 1)[-1] == str(inode):
                pids.add(pid)
    return pids
