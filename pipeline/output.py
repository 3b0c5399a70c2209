"""Output: refuse to overwrite what a person wrote, write the file atomically,
and record it in the manifest -> the file's final ``FileReport``.

``write`` does it for one file and returns when it is done. ``Writer`` does it
for the files of a run on background threads (``atomic.BackgroundWriter``), so
the disk's time overlaps the assembly of the next files; each file is recorded
in the manifest on the caller's thread, and only once it is on disk.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future
from types import TracebackType

from pipeline import manifest
from pipeline.atomic import WRITE_THREADS, BackgroundWriter, read_or_none, write_atomic
from pipeline.plan import FileJob
from pipeline.report import FileReport
from pipeline.targets import output_rel


def write(job: FileJob, data: bytes, *, overwrite_edited: bool) -> FileReport:
    """Write one file now: its report says written, unchanged, conflict or failed."""
    _put(job, data, job.target.manifest.get(output_rel(job.dest, job.target)), overwrite_edited)
    _record(job, data)
    return job.report


class Writer:
    """The outputs of a run, written in the background while the caller goes on.

    ``submit`` hands over a file; ``finished`` returns the reports of the files
    done since, in the order they were submitted, each one recorded in the
    manifest. Leaving the ``with`` block after an exception (Ctrl-C included)
    cancels the writes not yet started, lets those under way finish, and
    records the files really written: never a half-written file, never a
    manifest entry for a file that is not on disk.
    """

    def __init__(self, *, overwrite_edited: bool, threads: int = WRITE_THREADS) -> None:
        self.overwrite_edited = overwrite_edited
        self._writer = BackgroundWriter(threads)
        self._pending: deque[tuple[FileJob, bytes, Future[None]]] = deque()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self._writer.__exit__(None, None, None)
            self.finished(wait=True)
            return
        for _, _, future in self._pending:
            future.cancel()
        self._writer.__exit__(exc_type, exc, tb)
        # The run is failing already: record what is on disk, raise nothing new.
        for job, data, future in self._pending:
            if future.cancelled():
                job.report.status = "cancelled"
                continue
            problem = future.exception()
            if problem is None:
                _record(job, data)
            elif isinstance(problem, OSError):
                _failed(job, problem)
        self._pending.clear()

    def submit(self, job: FileJob, data: bytes) -> None:
        """Start writing ``job``'s output (``write``'s checks and all)."""
        # The manifest is read here, on the caller's thread; the writer thread
        # touches only the file and the job's report.
        record = job.target.manifest.get(output_rel(job.dest, job.target))
        future = self._writer.submit(
            job.dest, lambda: _put(job, data, record, self.overwrite_edited)
        )
        self._pending.append((job, data, future))

    def finished(self, *, wait: bool = False) -> list[FileReport]:
        """The reports of the files done, in order, each recorded in the manifest;
        ``wait``: of every file submitted, waiting for the disk. Call it with
        ``wait`` before leaving the ``with`` block to have the last reports."""
        done = []
        while self._pending and (wait or self._pending[0][2].done()):
            job, data, future = self._pending.popleft()
            if future.cancelled():
                job.report.status = "cancelled"
            else:
                try:
                    # _put reports an OSError of the write itself; the
                    # batch's commit (sync, rename) raises it here.
                    future.result()
                except OSError as exc:
                    _failed(job, exc)
                else:
                    _record(job, data)
            done.append(job.report)
        return done


def _put(job: FileJob, data: bytes, record: manifest.Record | None, overwrite_edited: bool) -> None:
    """The conflict check and the atomic write; the verdict goes to ``job.report``."""
    report = job.report
    existing = read_or_none(job.dest)
    if (
        existing is not None
        and existing != data
        and not manifest.wrote(record, existing)
        and not overwrite_edited
    ):
        # Decided here, not at planning: an output the tool wrote before a crash
        # (manifest not yet saved) is identical to what it would write now.
        report.status = "conflict"
        report.message = (
            "exists and was not written by translate-dir; not overwritten "
            "(pass --overwrite-edited to replace it)"
        )
        return
    try:
        if existing != data:
            write_atomic(job.dest, data)
            report.status = "written"
        else:
            report.status = "unchanged"
    except OSError as exc:
        _failed(job, exc)


def _failed(job: FileJob, exc: OSError) -> None:
    job.report.status = "failed"
    job.report.message = f"cannot write {job.dest}: {exc.strerror or exc}"


def _record(job: FileJob, data: bytes) -> None:
    """Record a written (or unchanged) output in the manifest; nothing otherwise."""
    report = job.report
    if report.status not in ("written", "unchanged"):
        return
    target = job.target
    target.manifest.set(
        output_rel(job.dest, target),
        manifest.Record(
            source=job.source.rel.as_posix(),
            lang=job.lang,
            source_hash=manifest.file_hash(job.raw),
            output_hash=manifest.file_hash(data),
            settings_hash=manifest.INCOMPLETE if report.failed_chunks else target.settings_hash,
            written=time.time(),
            kept=report.kept - sum(c.failed for c in report.chunks),
        ),
    )
