"""Output: refuse to overwrite what a person wrote, write the file atomically,
and record it in the manifest -> the file's final ``FileReport``.
"""

from __future__ import annotations

import time

from pipeline import manifest
from pipeline.atomic import read_or_none, write_atomic
from pipeline.plan import FileJob
from pipeline.report import FileReport
from pipeline.targets import output_rel


def write(job: FileJob, data: bytes, *, overwrite_edited: bool) -> FileReport:
    report = job.report
    target = job.target
    rel = output_rel(job.dest, target)
    existing = read_or_none(job.dest)
    record = target.manifest.get(rel)
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
        return report
    try:
        if existing != data:
            write_atomic(job.dest, data)
            report.status = "written"
        else:
            report.status = "unchanged"
    except OSError as exc:
        report.status = "failed"
        report.message = f"cannot write {job.dest}: {exc.strerror or exc}"
        return report
    target.manifest.set(
        rel,
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
    return report
