"""The review page's data: every source piece beside its translation, from what
runs already recorded, contacting no model.

Each source is planned again (``Planner``: read, split, protect, memory key)
exactly as a run plans it, and each piece's memory entry gives its translation
(or says it was kept in the source language). The manifest says where each
output stands; the rejected answers and the reviews are in the memory; a
``--report`` of the last run adds which pieces came from the memory and why
text was kept. ``review_page.render`` turns the result into one HTML file.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline import assemble, backends, manifest, protect, segments, targets
from pipeline.atomic import read_or_none, write_atomic
from pipeline.config import Config
from pipeline.errors import UsageError, WriteError
from pipeline.memory import Entry, Memory
from pipeline.options import RunOptions
from pipeline.plan import FileJob, Piece, Planner, Slot
from pipeline.report import FileReport

# A piece's state on the page, worst first (a file shows its worst).
STATES = (
    "missing",  # no translation stored: the backend failed on it, or never asked
    "kept",  # every answer failed the checks: the output has the source text
    "edited",  # the output no longer has this translation: changed by hand
    "translated",  # translated by the last run
    "memory",  # reused from the translation memory
    "reviewed",  # a person accepted it (--accept)
)
# Candidates planned when the configured backend is ``auto`` (the memory key
# holds the backend's name): the one with the most stored pieces wins.
_AUTO = ("embedded", "ollama", "openai")
_PROBE_FILES = 20

_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^)]*)?\)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*(?:#+[ \t]*)?$")
_ATTR_ID = re.compile(r"\{[^}]*#([\w-]+)[^}]*\}\s*$")
_HTML_ID = re.compile(r"""<a\s[^>]*(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_FENCE = re.compile(r"^ {0,3}(```|~~~)")


@dataclass
class Review:
    """Everything the page shows. ``files`` are plain dicts, ready for JSON."""

    title: str
    generated: str
    model: str
    totals: dict[str, int]
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def build(
    cfg: Config,
    opts: RunOptions,
    *,
    report: Mapping[str, Any] | None = None,
    since: float | None = None,
) -> Review:
    """Plan every source for every target and read what the memory holds for it.

    ``report`` is a ``--report`` JSON (or ``RunReport.details()``) of the last
    run; ``since`` the time that run started: entries stored before it are
    "from memory". Without it every stored translation counts as translated.
    """
    outs = targets.resolve(cfg, opts)
    found = targets.sources(cfg, opts, outs)
    # Every file is planned to its pieces, current or not.
    plan_opts = dataclasses.replace(
        opts, force=True, overwrite_edited=True, retranslate=(), accept=()
    )
    details = {
        (str(d.get("source")), str(d.get("lang"))): d for d in (report or {}).get("details", [])
    }
    files: list[dict[str, Any]] = []
    with Memory(opts.memory_path) as memory:
        plan_opts = _with_stored_backend(cfg, plan_opts, memory, found.files, outs)
        planner = Planner(cfg, plan_opts, memory)
        pairs = [(src, target) for target in outs for src in found.files]
        for (src, target), planned in zip(pairs, planner.plan_all(pairs), strict=True):
            detail = details.get((src.rel.as_posix(), target.lang), {})
            if isinstance(planned, FileReport):
                files.append(_unreadable(planned))
            else:
                files.append(_file(planned, memory, detail, since))
    totals: Counter[str] = Counter(files=len(files))
    for f in files:
        totals.update(f["counts"])
        totals["rejected"] += f["rejected"]
        totals["broken"] += f["broken"]
        totals["pieces"] += sum(f["counts"].values())
    model = f"{plan_opts.backend}:{plan_opts.model}"
    return Review(
        title=f"translate-dir review: {opts.root.name or opts.root} -> {', '.join(opts.targets)}",
        generated=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        model=model,
        totals={k: totals[k] for k in ("files", "pieces", *STATES, "rejected", "broken")},
        files=files,
    )


def write(path: Path, review: Review) -> int:
    """Write the page atomically; returns its size in bytes."""
    from pipeline import review_page

    data = review_page.render(review).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise WriteError(f"cannot write the review page {path} ({exc.strerror or exc})") from None
    return len(data)


def _with_stored_backend(
    cfg: Config, opts: RunOptions, memory: Memory, sources: Sequence[Any], outs: Sequence[Any]
) -> RunOptions:
    """``auto`` is not a backend: pick the one whose keys the memory holds."""
    if opts.backend != "auto":
        return opts
    best, best_hits = opts, -1
    for name in _AUTO:
        model = backends.default_model(name, cfg.backend.model, str(cfg.ollama["model"]))
        candidate = dataclasses.replace(opts, backend=name, model=model)
        planner = Planner(cfg, candidate, memory)
        keys = [
            p.key
            for target in outs[:1]
            for src in sources[:_PROBE_FILES]
            if isinstance(job := planner.plan(src, target), FileJob)
            for p in job.pieces
        ]
        hits = len(memory.peek(keys))
        if hits > best_hits:
            best, best_hits = candidate, hits
    return best


def _unreadable(report: FileReport) -> dict[str, Any]:
    return {
        "source": report.source,
        "output": report.output,
        "lang": report.lang,
        "status": "failed",
        "message": report.message,
        "counts": {},
        "rejected": 0,
        "broken": 0,
        "worst": "missing",
        "rows": [],
    }


def _file(
    job: FileJob, memory: Memory, detail: Mapping[str, Any], since: float | None
) -> dict[str, Any]:
    target = job.target
    output = read_or_none(job.dest)
    record = target.manifest.get(targets.output_rel(job.dest, target))
    verdict = manifest.verdict(
        record, source_bytes=job.raw, output_bytes=output, settings_hash=target.settings_hash
    )
    pieces = job.pieces
    keys = [p.key for p in pieces]
    entries = memory.peek(keys)
    rejections = memory.rejections(keys)
    reviewed = memory.reviewed(keys)
    for p in pieces:
        entry = entries.get(p.key)
        if entry is not None and not entry.kept:
            p.translation = entry.translation
        p.kept = entry is not None and entry.kept
    out_text = output.decode("utf-8", "replace").replace("\r\n", "\n") if output else ""
    links = _Links(job, out_text)
    rows: list[list[Any]] = []
    counts: Counter[str] = Counter()
    rejected = broken = 0
    fm_rows = [(slot, f"{slot.field.key}") for slot in job.fm_slots if slot.field is not None]
    body: list[tuple[segments.Segment | Slot, str]] = [(part, "") for part in job.parts]
    for part, label in [*fm_rows, *body]:
        if isinstance(part, segments.Segment):
            if part.source.strip():
                rows.append(["code", "", part.source.rstrip("\n"), None, "verbatim", "", [], []])
            continue
        in_output = _slot_in_output(part, job, out_text)
        for p in part.pieces:
            state = _state(p, entries.get(p.key), in_output, p.key in reviewed, since)
            counts[state] += 1
            source = protect.restore(p.protected.text, p.protected)
            translation = (
                protect.restore(p.translation, p.protected) if p.translation is not None else None
            )
            bad = links.broken(translation) if translation is not None else []
            rejects = [{"answer": a, "checks": c} for a, c in rejections.get(p.key, [])]
            rejected += bool(rejects)
            broken += bool(bad)
            kind = "field" if label else "piece"
            rows.append([kind, label or p.block, source, translation, state, p.key, rejects, bad])
    worst = next((s for s in STATES if counts[s]), "reviewed")
    why = sorted(
        {
            problem
            for chunk in detail.get("chunks", [])
            if chunk.get("status") in ("kept", "partly kept")
            for problem in chunk.get("problems", [])
        }
    )
    message = str(detail.get("message") or "")
    if verdict == "current" and pieces and counts["missing"] == len(pieces):
        message = (
            "the memory holds none of this file's pieces: review with the backend, "
            "model, role and config the run used (--backend, --model, --config)"
        )
    return {
        "source": job.source.rel.as_posix(),
        "output": _shown(job.dest),
        "lang": job.lang,
        "status": verdict,
        "message": message,
        "counts": dict(counts),
        "rejected": rejected,
        "broken": broken,
        "worst": worst,
        "why": why,
        "rows": rows,
    }


def _state(
    p: Piece, entry: Entry | None, in_output: bool | None, reviewed: bool, since: float | None
) -> str:
    if entry is None:
        return "missing"
    if entry.kept:
        return "kept"
    if in_output is False:
        return "edited"
    if reviewed:
        return "reviewed"
    if since is not None and entry.created < since:
        return "memory"
    return "translated"


def _slot_in_output(slot: Slot, job: FileJob, out_text: str) -> bool | None:
    """Whether the output holds this slot's translation as the run renders it
    (None: no output to compare, or a front-matter field, whose quoting varies)."""
    if not out_text or slot.segment is None or any(p.translation is None for p in slot.pieces):
        return None
    rendered = segments.render(slot.segment, assemble.join_slot(slot, job.lang))
    return rendered.replace("\r\n", "\n").strip() in out_text


# ------------------------------------------------------------------ links and anchors


class _Links:
    """Links in a translated piece that resolved in the source but not in the output."""

    def __init__(self, job: FileJob, out_text: str) -> None:
        self.job = job
        self.dest = job.dest
        self.src = job.source.src
        self._anchors: dict[Path, set[str] | None] = {
            self.dest: anchors(out_text) if out_text else None,
            self.src: anchors(job.doc.text),
        }

    def broken(self, text: str) -> list[str]:
        bad = []
        for link in _LINK.findall(text):
            if "://" in link or link.startswith(("mailto:", "/")):
                continue
            path, _, fragment = link.partition("#")
            if self._resolves(self.src, path, fragment) and not self._resolves(
                self.dest, path, fragment
            ):
                bad.append(link)
        return bad

    def _resolves(self, base: Path, path: str, fragment: str) -> bool:
        file = base if not path else base.parent / PurePosixPath(path)
        if path and not file.exists():
            return False
        if not fragment:
            return True
        ids = self._ids(file)
        return ids is None or fragment in ids

    def _ids(self, file: Path) -> set[str] | None:
        if file not in self._anchors:
            data = read_or_none(file) if file.suffix.lower() in (".md", ".markdown") else None
            self._anchors[file] = (
                anchors(data.decode("utf-8", "replace")) if data is not None else None
            )
        return self._anchors[file]


def anchors(text: str) -> set[str]:
    """The ids a Markdown page offers: ``{#id}`` attributes, ``<a id>``/``name``,
    and GitHub-style heading slugs (lower case, punctuation dropped, spaces to
    hyphens, ``-1``, ``-2`` for repeats)."""
    ids: set[str] = set(_HTML_ID.findall(text))
    seen: Counter[str] = Counter()
    fence = ""
    for line in text.split("\n"):
        opened = _FENCE.match(line)
        if opened:
            if not fence:
                fence = opened.group(1)
            elif opened.group(1) == fence:
                fence = ""
            continue
        if fence:
            continue
        m = _HEADING.match(line)
        if not m:
            continue
        title = m.group(2)
        attr = _ATTR_ID.search(title)
        if attr:
            ids.add(attr.group(1))
            title = title[: attr.start()]
        slug = _slug(title)
        ids.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return ids


def _slug(title: str) -> str:
    title = re.sub(r"<[^>]+>", "", title)
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def since_from(report: Mapping[str, Any] | None, report_path: Path | None) -> float | None:
    """When the reported run started: the report file's time minus its seconds."""
    if report is None or report_path is None:
        return None
    try:
        ended = report_path.stat().st_mtime
    except OSError:
        return None
    return ended - float(report.get("seconds") or 0.0)


def make(cfg: Config, opts: RunOptions, page: Path, report_path: Path | None) -> tuple[Review, int]:
    """``translate-dir review``: read the last run's report (if given), build, write."""
    report: dict[str, Any] | None = None
    if report_path is not None:
        try:
            report = json.loads(report_path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(
                f"--report {report_path}: not a readable translate-dir report ({exc}); "
                "pass the file a run wrote with --report"
            ) from None
        if not isinstance(report, dict) or not isinstance(report.get("details"), list):
            raise UsageError(f"--report {report_path}: not a translate-dir --report file")
    review = build(cfg, opts, report=report, since=since_from(report, report_path))
    return review, write(page, review)


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)
