"""``--check`` and ``--prune``: what the manifest knows, without any model.

Both ask ``manifest.verdict`` about each output, the same question planning
asks, so a check and a run never disagree about what is up to date.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline import manifest
from pipeline.atomic import read_or_none
from pipeline.discover import SourceFile
from pipeline.memory import reviewed_counts
from pipeline.report import FileReport, FileStatus
from pipeline.targets import Target, destination, output_rel

# --check's word for each verdict. A translation edited by hand while its
# source stayed the same is up to date; edited and then its source changed, it
# is reported "edited" (stale, and not ours to overwrite).
_CHECK_STATUS: dict[manifest.Verdict, FileStatus] = {
    "current": "current",
    "edited": "current",
    "conflict": "edited",
    "missing": "missing",
    "stale": "stale",
    "incomplete": "incomplete",
    "orphan": "orphan",
    "untracked": "untracked",
}


def check(
    sources: Sequence[SourceFile],
    target: Target,
    *,
    all_sources: bool,
    memory_path: Path | None = None,
) -> list[FileReport]:
    """Each output's state; with ``all_sources``, also the outputs whose source is gone.
    With ``memory_path``, each current output's count of reviewed pieces too."""
    reports = []
    wanted = set()
    hashes: list[tuple[str, str, str]] = []
    for src in sources:
        dest = destination(src.rel, target)
        rel = output_rel(dest, target)
        wanted.add(rel)
        record = target.manifest.get(rel)
        source_bytes = read_or_none(src.src)
        verdict = manifest.verdict(
            record,
            source_bytes=source_bytes,
            output_bytes=read_or_none(dest),
            settings_hash=target.settings_hash,
        )
        report = FileReport(src.rel.as_posix(), str(dest), target.lang, _CHECK_STATUS[verdict])
        if record is not None and verdict in ("current", "edited"):
            report.kept = record.kept
            if source_bytes is not None:
                hashes.append((report.source, target.lang, manifest.file_hash(source_bytes)))
        reports.append(report)
    if memory_path is not None:
        reviewed = reviewed_counts(memory_path, hashes)
        for report in reports:
            report.reviewed = reviewed.get((report.source, report.lang), 0)
    if all_sources:
        for rel, record in target.manifest.items():
            if rel not in wanted and record.lang == target.lang:
                reports.append(
                    FileReport(record.source, str(target.out_root / rel), target.lang, "orphan")
                )
    return reports


def prune(
    sources: Sequence[SourceFile], target: Target, *, root: Path, all_sources: bool
) -> list[FileReport]:
    """Remove the outputs whose source is gone, unless edited by hand since."""
    wanted = {output_rel(destination(s.rel, target), target) for s in sources}
    reports = []
    for rel, record in list(target.manifest.items()):
        if rel in wanted or record.lang != target.lang:
            continue
        if not all_sources and (root / record.source).exists():
            # Given FILES (pre-commit), the others are not orphans: only a gone source is.
            continue
        path = target.out_root / rel
        data = read_or_none(path)
        if data is not None and not manifest.wrote(record, data):
            reports.append(
                FileReport(
                    record.source,
                    str(path),
                    target.lang,
                    "conflict",
                    "not pruned: edited by hand since translate-dir wrote it",
                )
            )
            continue
        if data is not None:
            path.unlink()
        target.manifest.remove(rel)
        reports.append(FileReport(record.source, str(path), target.lang, "pruned"))
    return reports
