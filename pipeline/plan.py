"""Plan one file: read it, ask the manifest whether it needs work, decode, split,
protect, key each piece and look it up in the memory -> a ``FileJob``, or a
finished ``FileReport`` when there is nothing to do (or it cannot be read).

Planning touches no model: a re-run over unchanged files ends here for every
file, and the backend is never started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pipeline import (
    analyse,
    chunks,
    documents,
    front_matter,
    manifest,
    memory,
    prompts,
    protect,
    segments,
    sites,
    validate,
)
from pipeline.atomic import read_or_none
from pipeline.backends.base import estimate_tokens
from pipeline.config import Config
from pipeline.discover import SourceFile
from pipeline.errors import DocumentError, UsageError
from pipeline.flags import Flag
from pipeline.options import RunOptions
from pipeline.report import FileReport
from pipeline.targets import Target, destination, output_rel


@dataclass
class Piece:
    """One unit of translation and of the memory."""

    protected: protect.Protected
    block: str
    key: str
    tokens: int
    glossary: tuple[tuple[str, str], ...]
    translation: str | None = None  # with placeholders, once known
    kept: bool = False
    # Flagged on the review page (--retranslate): asked again, with this note.
    note: str = ""
    flagged: bool = False

    @property
    def pending(self) -> bool:
        """Still needs the model."""
        return self.translation is None and not self.kept


@dataclass
class Slot:
    """A prose segment (or front-matter field) and the pieces it was cut into."""

    pieces: list[Piece]
    separators: list[str]  # whitespace between consecutive pieces in the source
    segment: segments.Segment | None = None
    field: front_matter.Field | None = None


@dataclass
class FileJob:
    source: SourceFile
    target: Target
    dest: Path
    raw: bytes
    doc: documents.Document
    parts: list[segments.Segment | Slot]
    fm_slots: list[Slot]
    report: FileReport
    # The source body's block structure, from the one parse the split made: the
    # whole-document check compares against it without parsing the source again.
    source_structure: validate.Structure | None = None
    site: sites.Site = sites.PLAIN  # the site syntax the body was split with
    chunks: list[list[Piece]] = field(default_factory=list)

    @property
    def lang(self) -> str:
        return self.target.lang

    @property
    def slots(self) -> list[Slot]:
        return [p for p in self.parts if isinstance(p, Slot)] + self.fm_slots

    @property
    def pieces(self) -> list[Piece]:
        return [p for slot in self.slots for p in slot.pieces]


@dataclass(frozen=True)
class _Opened:
    """A file read and decoded that needs work: its body waits for analysis."""

    source: SourceFile
    target: Target
    dest: Path
    raw: bytes
    doc: documents.Document
    report: FileReport
    request: analyse.Request


@dataclass(frozen=True)
class Planner:
    """What planning needs of the run: the settings and the memory."""

    cfg: Config
    opts: RunOptions
    memory: memory.Memory

    @cached_property
    def site(self) -> sites.Site:
        """The site generator of the input folder ([site] kind, or detected)."""
        return sites.resolve(self.cfg.site, self.opts.root, layout=self.opts.layout)

    @cached_property
    def system(self) -> str:
        """The role's system prompt, with ``{target}`` left for the request."""
        return prompts.render_role(
            self.cfg.role_system(self.opts.role), self.opts.source, "{target}"
        )

    def plan_all(
        self,
        pairs: Sequence[tuple[SourceFile, Target]],
        on_workers: Callable[[int], None] | None = None,
    ) -> Iterator[FileJob | FileReport]:
        """Plan each (source, target) in order. Every file is opened first; the
        bodies that need work are then analysed together (``analyse.analyse_all``:
        in worker processes when there are enough of them; ``on_workers`` is
        told how many)."""
        opened = [self._open(src, target) for src, target in pairs]
        requests = [o.request for o in opened if isinstance(o, _Opened)]
        workers = analyse.workers_for(requests, self.cfg.files.processes)
        if on_workers is not None:
            on_workers(workers)
        analyses = analyse.analyse_all(requests, workers=workers)
        try:
            for o in opened:
                yield o if isinstance(o, FileReport) else self._job(o, next(analyses))
        finally:
            analyses.close()

    def plan(self, src: SourceFile, target: Target) -> FileJob | FileReport:
        """Plan one file."""
        opened = self._open(src, target)
        if isinstance(opened, FileReport):
            return opened
        return self._job(opened, analyse.analyse(opened.request))

    def _open(self, src: SourceFile, target: Target) -> _Opened | FileReport:
        """Read the file, ask the manifest, decode: what is left to analyse."""
        name = src.rel.as_posix()
        try:
            dest = destination(src.rel, target)
        except UsageError as exc:
            # A symlink in the output folder leads outside it: refuse this file only.
            return FileReport(name, "", target.lang, "failed", exc.reason)
        report = FileReport(name, str(dest), target.lang, "failed")
        try:
            raw = src.src.read_bytes()
        except OSError as exc:
            report.message = f"cannot read: {exc.strerror or exc}"
            return report
        self._accept(report, raw)
        record = target.manifest.get(output_rel(dest, target))
        verdict = manifest.verdict(
            record,
            source_bytes=raw,
            output_bytes=read_or_none(dest),
            settings_hash=target.settings_hash,
        )
        if record is not None:
            report.kept = record.kept
        if not self.opts.overwrite_edited:
            if verdict == "edited":
                # Improved by hand, source unchanged: the translation is up to date.
                report.status = "edited"
                return report
            if verdict == "conflict":
                report.status = "conflict"
                report.message = (
                    "edited by hand since translate-dir wrote it; not overwritten "
                    "(pass --overwrite-edited to replace it)"
                )
                return report
        if (
            verdict == "current"
            and not self.opts.force
            and not (self.opts.retry_kept and report.kept)
            and not self._flags.get((name, target.lang))
        ):
            report.status = "current"
            return report
        report.kept = 0
        try:
            doc = documents.decode(raw, name=name, markdown=src.markdown)
        except DocumentError as exc:
            report.message = exc.reason
            return report
        site = self.site if src.markdown else sites.PLAIN
        if target.links is not None and (site.heading_ids or site.tab_slugs):
            # The ids links target on this page: anchors = "linked", tab labels.
            site = dataclasses.replace(site, linked=target.links.ids(src.rel))
        request = analyse.Request(
            doc.text,
            src.markdown,
            site=site,
            protect_site=self.site,
            do_not_translate=tuple(self.cfg.do_not_translate),
        )
        return _Opened(src, target, dest, raw, doc, report, request)

    def _job(self, opened: _Opened, analysis: analyse.Analysis) -> FileJob:
        """Cut the analysed body into pieces, key them and look them up."""
        lang = opened.target.lang
        parts: list[segments.Segment | Slot] = []
        for seg, protected in zip(analysis.segments, analysis.protected, strict=True):
            if protected is None:
                parts.append(seg)
            else:
                parts.append(self._slot(protected, seg.block, lang, segment=seg))
        doc = opened.doc
        fm_slots = []
        if doc.front_matter is not None:
            for fld in front_matter.translatable_fields(
                doc.front_matter, list(self.cfg.front_matter_keys)
            ):
                whole = protect.protect(
                    fld.value, do_not_translate=self.cfg.do_not_translate, site=self.site
                )
                fm_slots.append(self._slot(whole, "paragraph", lang, fld=fld))
        job = FileJob(
            opened.source,
            opened.target,
            opened.dest,
            opened.raw,
            doc,
            parts,
            fm_slots,
            opened.report,
            source_structure=analysis.structure,
            site=opened.request.site,
        )
        self._lookup(job)
        return job

    def _slot(
        self,
        whole: protect.Protected,
        block: str,
        lang: str,
        *,
        segment: segments.Segment | None = None,
        fld: front_matter.Field | None = None,
    ) -> Slot:
        budget = self.cfg.translate.chunk_tokens
        parts = [whole]
        separators: list[str] = []
        if block in ("paragraph", "text") and estimate_tokens(whole.text) > budget:
            # Cut the protected text, so a sentence end inside inline code or a URL
            # can never split a protected span.
            parts = []
            for t in chunks.split_sentences(whole.text, budget, estimate_tokens):
                core = t.rstrip()
                separators.append(t[len(core) :])
                parts.append(protect.renumber(core, whole.spans, whole.values))
            separators = separators[:-1]
        pieces = []
        for protected in parts:
            glossary = self._glossary_for(protected.text, lang)
            pieces.append(
                Piece(
                    protected=protected,
                    block=block,
                    key=self._key(protected.text, lang, glossary, block),
                    tokens=estimate_tokens(protected.text),
                    glossary=glossary,
                )
            )
        return Slot(pieces, separators, segment=segment, field=fld)

    def _glossary_for(self, text: str, lang: str) -> tuple[tuple[str, str], ...]:
        lowered = text.lower()
        return tuple(
            (src, dst) for src, dst in self.cfg.glossary_entries(lang) if src.lower() in lowered
        )

    def _key(self, text: str, lang: str, glossary: Sequence[tuple[str, str]], block: str) -> str:
        t = self.cfg.translate
        return memory.segment_key(
            source_text=text,
            source_lang=self.opts.source,
            target_lang=lang,
            model=f"{self.opts.backend}:{self.opts.model}",
            role=self.opts.role,
            prompt_version=prompts.PROMPT_VERSION,
            glossary=glossary,
            options={
                "block": block,
                "temperature": t.temperature,
                "top_p": t.top_p,
                "seed": t.seed,
                "context": t.previous_chunk_context,
                "system": self.system,
            },
        )

    def _accept(self, report: FileReport, raw: bytes) -> None:
        """--accept: record this file's reviewed pieces, tied to its source bytes."""
        keys = [
            (f.key, f.source, f.lang, manifest.file_hash(raw))
            for f in self.opts.accept
            if (f.source, f.lang) == (report.source, report.lang)
        ]
        if keys:
            report.reviewed = self.memory.accept(keys)

    @cached_property
    def _flags(self) -> dict[tuple[str, str], list[Flag]]:
        """--retranslate's flags by (source file, language)."""
        found: dict[tuple[str, str], list[Flag]] = {}
        for f in self.opts.retranslate:
            found.setdefault((f.source, f.lang), []).append(f)
        return found

    def _mark_flagged(self, job: FileJob) -> None:
        """Find each flag's piece by its key, else by its source text."""
        wanted = self._flags.get((job.source.rel.as_posix(), job.lang))
        if not wanted:
            return
        pieces = job.pieces
        by_key = {p.key: p for p in pieces}
        by_text: dict[str, Piece] = {}
        for p in pieces:
            text = protect.restore(p.protected.text, p.protected)
            by_text.setdefault(memory.normalise_source(text).strip(), p)
        lost = 0
        for f in wanted:
            piece = by_key.get(f.key) or by_text.get(memory.normalise_source(f.text).strip())
            if piece is None:
                lost += 1
                continue
            piece.flagged = True
            piece.note = f.note
        if lost:
            job.report.message = (
                f"{lost} flagged piece(s) not found: the source changed since the review"
            )

    def _lookup(self, job: FileJob) -> None:
        self._mark_flagged(job)
        pieces = job.pieces
        if self.opts.force:
            job.report.misses = len(pieces)
            return
        found = self.memory.get_many([p.key for p in pieces])
        for p in pieces:
            entry = found.get(p.key)
            if entry is None or p.flagged or (entry.kept and self.opts.retry_kept):
                job.report.misses += 1
            elif entry.kept:
                # Every answer failed the checks last time: the same model would
                # answer the same, so it stays in the source language.
                p.kept = True
                job.report.hits += 1
            else:
                p.translation = entry.translation
                job.report.hits += 1
