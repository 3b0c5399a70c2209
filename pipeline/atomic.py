"""The one atomic writer: every file translate-dir writes (outputs, the manifest)
goes through ``write_atomic``.

Write a temporary file in the same folder, fsync it, rename it over the target,
then fsync the folder. Readers see the old file or the new one, never a part; a
crash or a full disk leaves the old file and no temporary behind. An existing
file keeps its permission bits; a new one gets the usual 0666 less the umask.

``BackgroundWriter`` runs such writes on a few threads: the disk's time (fsync
waits without holding the GIL) then overlaps the CPU work on the next files.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

# Threads of a BackgroundWriter: enough for fsyncs to share the file system's
# journal commits; more only holds more files in memory.
WRITE_THREADS = 4


def _umask() -> int:
    # Read once at import: os.umask can only be read by setting it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            # mkstemp makes the file private (0600): give it the mode it should have.
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # The rename is durable only once the folder entry is on disk too. The new
    # file is already in place, and some file systems refuse to fsync a folder,
    # so a failure here must not report the write as failed.
    with suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or None where there is no such file."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


class BackgroundWriter:
    """Writes (each a ``write_atomic`` of one path) on ``threads`` threads.

    ``submit`` hands over one write and returns its future: done once the file
    is on disk, or raising what the write raised. At most ``2 * threads`` writes
    wait at a time (their bytes are held until written), so ``submit`` blocks
    while the disk is behind. Two writes to one path run in the order given.

    Leaving the ``with`` block waits for every write. After an exception
    (Ctrl-C included) the writes not yet started are cancelled instead, and
    those under way finish: a file is written whole or not at all, and its
    future says which.
    """

    def __init__(self, threads: int = WRITE_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="write")
        self._room = threading.BoundedSemaphore(2 * threads)
        self._lock = threading.Lock()
        self._writing: dict[Path, Future[Any]] = {}  # path -> its latest unfinished write

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True, cancel_futures=exc is not None)

    def submit(self, path: Path, write: Callable[[], T]) -> Future[T]:
        """Run ``write`` (which writes ``path`` and nothing else) on a writer thread."""
        with self._lock:
            earlier = self._writing.get(path)
        if earlier is not None:
            # Its outcome is for its own caller to read: only wait for it here.
            with suppress(CancelledError):
                earlier.exception()
        self._room.acquire()
        try:
            future = self._pool.submit(write)
        except BaseException:
            self._room.release()
            raise
        with self._lock:
            self._writing[path] = future
        future.add_done_callback(lambda done: self._finished(path, done))
        return future

    def _finished(self, path: Path, future: Future[Any]) -> None:
        with self._lock:
            if self._writing.get(path) is future:
                del self._writing[path]
        self._room.release()
