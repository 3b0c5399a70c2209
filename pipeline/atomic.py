"""The one atomic writer: every file translate-dir writes (outputs, the manifest)
goes through ``write_atomic``.

Write a temporary file in the same folder, fsync it, rename it over the target,
then fsync the folder. Readers see the old file or the new one, never a part; a
full disk leaves the old file and no temporary behind, and so does a crash, but
for the temporary of a write it cut short, which the next run removes
(``remove_leftovers``). An existing file keeps its permission bits; a new one
gets the usual 0666 less the umask.

``BackgroundWriter`` runs such writes on background threads: the disk's time
(fsync waits without holding the GIL) then overlaps the CPU work on the next
files. On Linux 5.8 and later one thread runs them and commits them in
batches: each file goes to its temporary without an fsync, and for the files
handed over while the last batch was written, one ``syncfs`` makes all their
data durable, the renames follow, and a second ``syncfs`` makes the renames
durable (``_commit``). That is two journal commits for the batch instead of
two per file, and one hand-over between threads for a burst of files instead
of one per file: together the largest CPU cost of writing many small files
(figure 2 of ``docs/benchmarks.md``). A file is still in place and on disk
before its future says so, and a reader still sees the old file or the new
one. The price: a syncfs also flushes what other programs wrote to the same
file system and have not synced yet.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

# Threads of a BackgroundWriter without syncfs: enough for fsyncs to share the
# file system's journal commits; more only holds more files in memory. (With
# syncfs one thread writes and commits.) Either way, twice this many writes
# may wait.
WRITE_THREADS = 4
# Most files one commit takes: their temporaries wait, written, for the rename.
BATCH_FILES = 64


def _umask() -> int:
    # Read once at import: os.umask can only be read by setting it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()
_NEW_FILE_MODE = 0o666 & ~_UMASK

# Set on a writer thread of a BackgroundWriter while it runs one write: the
# write_atomic calls there leave (temporary, target) pairs for the commit.
_batch = threading.local()


def write_atomic(path: Path, data: bytes) -> None:
    staged: list[tuple[str, Path]] | None = getattr(_batch, "staged", None)
    tmp = _write_temporary(path, data, sync=staged is None)
    if staged is not None:
        staged.append((tmp, path))  # the writer's commit syncs and renames it
        return
    try:
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def _write_temporary(path: Path, data: bytes, *, sync: bool) -> str:
    """``data`` in a new temporary beside ``path`` with ``path``'s mode, fsynced
    when ``sync``; its name. Nothing is left behind when this raises."""
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
        if sync:
            os.fsync(fd)
        os.close(fd)
        fd = -1
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder entry is on disk too. The new
    # file is already in place, and some file systems refuse to fsync a folder,
    # so a failure here must not report the write as failed.
    with suppress(OSError):
        _fsync_path(folder)


def _fsync_path(path: str | Path) -> None:
    """fsync a file or folder by its name (a read-only descriptor will do)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@functools.cache
def _load_syncfs() -> Callable[[int], None] | None:
    """syncfs(2), where it reports write-back errors (Linux 5.8 and later; earlier
    it returned 0 even when a write failed); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: most runs never commit more than one file at a time

    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
        if (major, minor) < (5, 8):
            return None
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (ValueError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]

    def syncfs(fd: int) -> None:
        if function(fd) != 0:
            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number))

    return syncfs


def _sync_file_systems(folders: set[Path]) -> None:
    """One ``syncfs`` per file system that holds one of ``folders``."""
    done: set[int] = set()
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_CLOEXEC)
        try:
            device = os.fstat(fd).st_dev
            if device not in done:
                syncfs = _load_syncfs()
                assert syncfs is not None
                syncfs(fd)
                done.add(device)
        finally:
            os.close(fd)


@dataclass(slots=True)
class _Staged:
    """One write of a batch: its future, what it returned, its temporaries."""

    future: Future[Any]
    result: Any
    files: list[tuple[str, Path]]


def _commit(batch: list[_Staged]) -> None:
    """Make a batch's temporaries durable, rename them into place and make the
    renames durable; then each write's future says how its own files fared.

    Several files: one ``syncfs`` before the renames and one after, for all of
    them. One file: an fsync of the file and of its folder, as
    ``write_atomic`` does. When the syncfs fails (a disk error, a full disk
    found at write-back), each file is fsynced on its own to find the ones
    that failed: only their writes fail. Interrupted (Ctrl-C on the thread
    that commits), a write not yet renamed fails as cancelled and leaves no
    temporary: every future is answered either way.
    """
    files = [entry for staged in batch for entry in staged.files]
    failed: dict[str, OSError] = {}
    renamed: set[str] = set()
    try:
        folders = {path.parent for _, path in files}
        together = len(files) > 1 and _load_syncfs() is not None
        if together:
            try:
                _sync_file_systems(folders)
            except OSError:
                failed = _sync_each(files)
        else:
            failed = _sync_each(files)
        for tmp, path in files:
            if tmp in failed:
                continue
            try:
                os.replace(tmp, path)
            except OSError as exc:
                failed[tmp] = exc
            else:
                renamed.add(tmp)
        if together:
            try:
                _sync_file_systems(folders)
            except OSError:
                for folder in folders:
                    _sync_folder(folder)
        else:
            for folder in folders:
                _sync_folder(folder)
    finally:
        for tmp, _ in files:
            if tmp not in renamed:
                with suppress(OSError):
                    os.unlink(tmp)
        for staged in batch:
            problem = next((failed[tmp] for tmp, _ in staged.files if tmp in failed), None)
            if problem is None and not all(tmp in renamed for tmp, _ in staged.files):
                problem = OSError(errno.ECANCELED, "interrupted before it was renamed into place")
            if problem is None:
                staged.future.set_result(staged.result)
            else:
                staged.future.set_exception(problem)


def _sync_each(files: list[tuple[str, Path]]) -> dict[str, OSError]:
    failed = {}
    for tmp, _ in files:
        try:
            _fsync_path(tmp)
        except OSError as exc:
            failed[tmp] = exc
    return failed


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


# A temporary as _create_temporary names it: ".<name>.<8 hex digits>.tmp".
_TEMPORARY_RE = re.compile(r"\..+\.[0-9a-f]{8}\.tmp")


def remove_leftovers(folder: Path) -> int:
    """Delete the temporaries a killed writer left in ``folder`` (a SIGKILL or
    a power cut between a temporary's creation and its rename: nothing else
    can remove them); how many. Only while no other writer can be writing
    there: a run calls it holding its output folder's lock."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if entry.name.endswith(".tmp") and _TEMPORARY_RE.fullmatch(entry.name):
            with suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


def read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or None where there is no such file."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


class BackgroundWriter:
    """Writes (each a ``write_atomic`` of one path) on background threads.

    ``submit`` hands over one write and returns its future: done once the file
    is in place and on disk, or raising what the write raised. At most
    ``2 * threads`` writes wait at a time (their bytes are held until
    written), so ``submit`` blocks while the disk is behind. Two writes to one
    path run in the order given.

    With ``syncfs`` (``_load_syncfs``) one thread runs the writes in batches:
    it takes every write waiting, each leaves its temporary unsynced, and they
    are synced and renamed together (``_commit``, at most ``BATCH_FILES`` at
    a time); the writes handed over meanwhile make the next batch. A run that
    writes many files at once makes large batches, handed over a burst at a
    time rather than a file at a time; one that writes a file now and then
    commits each on its own, at once. Without syncfs, ``threads`` threads run
    the writes, each syncing its own file, so that their fsyncs share the
    journal's commits.

    Leaving the ``with`` block waits for every write. After an exception
    (Ctrl-C included) the writes not yet started are cancelled instead, and
    those under way finish, committed: a file is written whole or not at all,
    and its future says which.
    """

    def __init__(self, threads: int = WRITE_THREADS) -> None:
        self._batched = _load_syncfs() is not None
        self._size = 1 if self._batched else max(1, threads)
        self._limit = 2 * max(1, threads)
        self._cond = threading.Condition()
        self._queue: deque[tuple[Path, Callable[[], Any], Future[Any]]] = deque()
        # Several threads: path -> its latest unfinished write.
        self._writing: dict[Path, Future[Any]] = {}
        self._threads: list[threading.Thread] = []
        self._idle = 0  # threads waiting for a write with nothing to commit
        self._closing = False

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with self._cond:
            self._closing = True
            if exc is not None:
                for _, _, future in self._queue:
                    future.cancel()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def submit(self, path: Path, write: Callable[[], T]) -> Future[T]:
        """Run ``write`` (which writes ``path`` and nothing else) on a writer thread."""
        if not self._batched:
            # Several threads: a later write to the path waits for the earlier
            # one. (One thread runs them in order, see _serve.)
            with self._cond:
                earlier = self._writing.get(path)
            if earlier is not None:
                # Its outcome is for its own caller to read: only wait for it here.
                with suppress(CancelledError):
                    earlier.exception()
        future: Future[T] = Future()
        with self._cond:
            while len(self._queue) >= self._limit:
                self._cond.wait()
            self._queue.append((path, write, future))
            if not self._batched:
                self._writing[path] = future
            if len(self._threads) < self._size and not self._idle:
                # Not a daemon: if leaving the block is cut short (Ctrl-C
                # twice), the interpreter still lets the writes under way end.
                thread = threading.Thread(target=self._serve, name="write")
                self._threads.append(thread)
                thread.start()
            elif self._idle or len(self._queue) >= self._limit:
                self._cond.notify_all()
        if not self._batched:
            future.add_done_callback(lambda done: self._finished(path, done))
        return future

    def _serve(self) -> None:
        """A writer thread: run the writes as they come. Without syncfs one at
        a time; with syncfs all those waiting, then commit them together (the
        writes handed over while a batch is written and committed wait for
        the next: the busier the writer, the larger its batches)."""
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._idle += 1
                    self._cond.wait()
                    self._idle -= 1
                if not self._queue:
                    return  # closing, and nothing left
            if self._batched:
                self._write_batch()
            else:
                item = self._take()
                if item is not None:
                    _run(item[1], item[2], None)

    def _take(self) -> tuple[Path, Callable[[], Any], Future[Any]] | None:
        with self._cond:
            item = self._queue.popleft() if self._queue else None
            self._cond.notify_all()  # room for submit
        return item

    def _write_batch(self) -> None:
        """Run the waiting writes in order, each leaving its temporary, then
        commit them: on the way when the batch is full, or before a write to
        a path it holds (whose reader must see the earlier write in place)."""
        batch: list[_Staged] = []
        while (item := self._take()) is not None:
            path, write, future = item
            if any(target == path for staged in batch for _, target in staged.files):
                batch = _commit_now(batch)
            staged = _run(write, future, [])
            if staged is not None:
                batch.append(staged)
                if sum(len(s.files) for s in batch) >= BATCH_FILES:
                    batch = _commit_now(batch)
        _commit_now(batch)

    def _finished(self, path: Path, future: Future[Any]) -> None:
        with self._cond:
            if self._writing.get(path) is future:
                del self._writing[path]


def _run(
    write: Callable[[], Any], future: Future[Any], staged: list[tuple[str, Path]] | None
) -> _Staged | None:
    """Run one write for its future. ``staged``: leave its files there for the
    commit, and return them when it wrote any (the future is answered then);
    None: each write_atomic syncs its own file."""
    if not future.set_running_or_notify_cancel():
        return None  # cancelled by its caller before it started
    if staged is not None:
        _batch.staged = staged
    try:
        result = write()
    except BaseException as exc:
        for tmp, _ in staged or ():
            with suppress(OSError):
                os.unlink(tmp)
        future.set_exception(exc)
        return None
    finally:
        if staged is not None:
            del _batch.staged
    if not staged:
        future.set_result(result)  # synced already, or nothing written (an unchanged file)
        return None
    return _Staged(future, result, staged)


def _commit_now(batch: list[_Staged]) -> list[_Staged]:
    """Commit ``batch`` on a writer thread, where nothing must escape: every
    future is answered either way (``_commit``). A new, empty batch."""
    if batch:
        with suppress(Exception):
            _commit(batch)
    return []
