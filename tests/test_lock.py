from __future__ import annotations

import os
import selectors
import signal
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.errors import LockHeld
from pipeline.lock import RunLock
from tests.procs import popen_python

# Holds the lock until a line arrives on stdin (or until killed).
_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.lock import RunLock

    with RunLock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


class Holder:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        assert proc.stdout is not None and proc.stdin is not None
        self.stdout = proc.stdout
        self.stdin = proc.stdin

    def expect(self, word: str, timeout: float = 30) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=timeout):
                raise AssertionError(f"holder did not print {word!r} within {timeout}s")
            assert self.stdout.readline().strip() == word

    def release(self) -> None:
        self.stdin.write("\n")
        self.stdin.flush()


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Holder]:
    proc = popen_python(
        _HOLDER,
        str(tmp_path / "out" / ".translate-dir" / "lock"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    h = Holder(proc)
    try:
        h.expect("locked")
        yield h
    finally:
        proc.kill()
        proc.wait()
        h.stdin.close()
        h.stdout.close()


def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / ".translate-dir" / "lock"


def test_lock_writes_pid_and_leaves_the_file(tmp_path: Path) -> None:
    path = lock_path(tmp_path)
    lock = RunLock(path)
    with lock as entered:
        assert entered is lock and lock.held
        assert path.read_text() == f"{os.getpid()}\n"
    assert not lock.held
    assert path.exists() and path.read_text() == ""
    # Re-usable after release.
    with lock:
        assert lock.held


def test_entering_twice_is_a_bug(tmp_path: Path) -> None:
    lock = RunLock(lock_path(tmp_path))
    with lock, pytest.raises(RuntimeError), lock:
        pass


def test_second_run_fails_at_once_naming_the_pid(tmp_path: Path, holder: Holder) -> None:
    out = tmp_path / "out"
    with pytest.raises(LockHeld) as info, RunLock(lock_path(tmp_path), folder=out):
        pass
    message = str(info.value)
    assert f"(pid {holder.proc.pid})" in message
    assert str(out) in message and "--wait" in message
    assert info.value.exit_code == 4


def test_message_defaults_to_the_lock_files_folder(tmp_path: Path, holder: Holder) -> None:
    with pytest.raises(LockHeld, match=r"\.translate-dir"), RunLock(lock_path(tmp_path)):
        pass


def test_wait_blocks_until_the_holder_releases(tmp_path: Path, holder: Holder) -> None:
    acquired = threading.Event()
    pid_seen: list[str] = []

    def waiter() -> None:
        with RunLock(lock_path(tmp_path), wait=True):
            acquired.set()
            pid_seen.append(lock_path(tmp_path).read_text())

    thread = threading.Thread(target=waiter)
    thread.start()
    # A bounded negative check: the waiter must still be blocked.
    assert not acquired.wait(timeout=0.3)
    holder.release()
    holder.expect("released")
    thread.join(timeout=30)
    assert acquired.is_set() and not thread.is_alive()
    assert pid_seen == [f"{os.getpid()}\n"]


def test_lock_is_freed_when_the_holder_is_killed(tmp_path: Path, holder: Holder) -> None:
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(timeout=30)
    # Its pid is still in the file; it must not matter.
    assert lock_path(tmp_path).read_text() == f"{holder.proc.pid}\n"
    with RunLock(lock_path(tmp_path)):
        assert lock_path(tmp_path).read_text() == f"{os.getpid()}\n"


def test_a_stale_pid_in_the_file_never_blocks(tmp_path: Path) -> None:
    path = lock_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("999999\n")
    with RunLock(path) as lock:
        assert lock.held


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    # flock locks belong to open file descriptions, so this is a real conflict.
    with RunLock(lock_path(tmp_path)), pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
        RunLock(lock_path(tmp_path)).__enter__()
