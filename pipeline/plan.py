"""Plan one file: read it, ask the manifest whether it needs work, decode, split,
protect, key each piece and look it up in the memory -> a ``FileJob``, or a
finished ``FileReport`` when there is nothing to do (or it cannot be read).

Planning touches no model: a re-run over unchanged files ends here for every
file, and the backend is never started.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pipeline import (
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

    def plan(self, src: SourceFile, target: Target) -> FileJob | FileReport:
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
        parts: list[segments.Segment | Slot] = []
        site = self.site if src.markdown else sites.PLAIN
        if target.links is not None and (site.heading_ids or site.tab_slugs):
            # The ids links target on this page: anchors = "linked", tab labels.
            site = dataclasses.replace(site, linked=target.links.ids(src.rel))
        parsed = segments.parse(doc.text, site=site) if src.markdown else None
        for seg in segments.split(doc.text, markdown=src.markdown, parsed=parsed):
            if seg.kind == "prose":
                parts.append(self._slot(seg.content, seg.block, target.lang, segment=seg))
            else:
                parts.append(seg)
        fm_slots = []
        if doc.front_matter is not None:
            for fld in front_matter.translatable_fields(
                doc.front_matter, list(self.cfg.front_matter_keys)
            ):
                fm_slots.append(self._slot(fld.value, "paragraph", target.lang, fld=fld))
        job = FileJob(src, target, dest, raw, doc, parts, fm_slots, report, site=site)
        if parsed is not None:
            job.source_structure = validate.block_structure(parsed)
        self._lookup(job)
        return job

    def _slot(
        self,
        content: str,
        block: str,
        lang: str,
        *,
        segment: segments.Segment | None = None,
        fld: front_matter.Field | None = None,
    ) -> Slot:
        budget = self.cfg.translate.chunk_tokens
        whole = protect.protect(content, do_not_translate=self.cfg.do_not_translate, site=self.site)
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
