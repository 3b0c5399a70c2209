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


_UMASK = _umask()
_NEW_FILE_MODE = 0o666 & ~_UMASK


def write_atomic(path: Path, data: bytes) -> None:
    try:
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    # One system call per step, each a point where a writer thread waits for
    # the GIL again: a run writes hundreds of files beside busy threads.
    tmp, fd = _create_temporary(path, mode)
    try:
        if mode & _UMASK:
            os.fchmod(fd, mode)  # the umask took bits the file had: give them back
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
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


_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW


def _create_temporary(path: Path, mode: int) -> tuple[str, int]:
    """A new, empty ``.<name>.<random>.tmp`` beside ``path`` (its folder made if
    missing), created with ``mode`` less the umask; its name and descriptor."""
    made_folder = False
    while True:
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            return tmp, os.open(tmp, _TEMPORARY_FLAGS, mode)
        except FileExistsError:
            continue  # a leftover of the same name: draw another
        except FileNotFoundError:
            if made_folder:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
            made_folder = True


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
