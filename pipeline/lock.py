"""One run at a time per output folder.

``flock`` on a lock file: the kernel drops the lock when its holder exits,
however it exits (``kill -9`` included), so a stale lock file or a stale pid
in it never blocks anyone. The pid we write is only for the message the
second run prints. The file is left in place after a run; only a run that
leaves nothing behind removes it (``discard``), and every run checks, once it
holds the lock, that the path still names the file it locked.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from pipeline.errors import LockHeld, WriteError


class RunLock:
    """``with RunLock(out / ".translate-dir" / "lock"):`` around a run."""

    def __init__(self, path: Path, *, wait: bool = False, folder: Path | None = None) -> None:
        """``folder`` is what the "held" message names; default: the lock file's folder."""
        self.path = path
        self.wait = wait
        self.folder = folder if folder is not None else path.parent
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this RunLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # os.open's descriptors are not inherited by child processes, so a
            # server we start cannot keep the lock alive after we exit.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            # The first write into the output folder: a read-only or full disk shows here.
            raise WriteError(
                f"cannot write to the output folder {self.folder} "
                f"({exc.strerror or exc}); check its permissions and free space"
            ) from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not self.wait:
                    raise LockHeld(self._held_message(fd)) from None
                fcntl.flock(fd, fcntl.LOCK_EX)
            if not _still_named(fd, self.path):
                # The holder we waited for removed the file (``discard``): our
                # lock is on a file nobody else will open. Lock the path anew.
                os.close(fd)
                return self.__enter__()
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # Clear our pid first, so nobody reads it once we are gone.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def discard(self) -> None:
        """Remove the lock file and release it: for a run that leaves nothing behind.

        Unlinked while still held, and every waiter checks after it gets the
        lock that the path still names its file (``_still_named``), so no two
        runs can ever hold "the" lock at once."""
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            self.__exit__(None, None, None)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _held_message(self, fd: int) -> str:
        pid = _read_pid(fd)
        who = f"another translate-dir run (pid {pid})" if pid else "another translate-dir run"
        return f"{who} is writing to {self.folder}; wait for it, or pass --wait"


def _read_pid(fd: int) -> int | None:
    # The holder may not have written its pid yet (it locks, then writes).
    raw = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(raw) if raw.isdigit() else None


def _still_named(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)
