"""The orchestrator: the only module that knows the order of the stages.

discover -> read -> split -> protect -> memory lookup -> pack into chunks
-> backend -> clean + validate -> memory store -> restore -> render -> check
the whole document -> atomic write -> manifest.

Planning (everything up to the memory lookup) is done for all files first, so
the progress knows the total and the backend is started only when some chunk
actually needs the model: a re-run over unchanged files never loads it.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pipeline import (
    chunks,
    cjk,
    clean,
    discover,
    documents,
    languages,
    manifest,
    memory,
    prompts,
    segments,
    validate,
)
from pipeline.backends import base
from pipeline.backends.base import Backend, BackendSettings, Request, StartInfo
from pipeline.config import Config
from pipeline.errors import (
    ContextOverflow,
    DocumentError,
    OutputTruncated,
    RequestFailed,
    UsageError,
    ValidationFailed,
)
from pipeline.lock import RunLock

STATE_DIR = ".translate-dir"
_RAN_AWAY = "answer cut at the output-token bound"
# The settings hash recorded for an output that holds text kept in the source
# language: it never matches, so every later run (and --check) sees the output
# as not finished, and retries only the kept pieces (the rest hit the memory).
INCOMPLETE = "incomplete"
# Tokens reserved per request for the system prompt, few-shot pairs, glossary
# and chat template around the chunk.
PROMPT_OVERHEAD = 400


class Progress(base.Events, Protocol):
    """What the run reports while it works. The CLI draws bars; tests record."""

    def plan(self, files: int, chunks: int, tokens: int) -> None: ...

    def chunk_done(self, source_tokens: int, output_tokens: int) -> None: ...

    def file_done(self, name: str, status: str) -> None: ...


class NullProgress(base.NullEvents):
    def plan(self, files: int, chunks: int, tokens: int) -> None:
        pass

    def chunk_done(self, source_tokens: int, output_tokens: int) -> None:
        pass

    def file_done(self, name: str, status: str) -> None:
        pass


BackendFactory = Callable[[str, BackendSettings, base.Events], Backend]


@dataclass(frozen=True)
class RunOptions:
    root: Path
    targets: tuple[str, ...]
    source: str
    backend: str  # resolved name: embedded | ollama | openai (not auto)
    model: str
    files: tuple[Path, ...] | None = None  # explicit files (pre-commit), under root
    out: Path | None = None  # None: from config files.out / the layout's default
    layout: str = "mirror"
    role: str = "translator"
    force: bool = False
    check: bool = False
    prune: bool = False
    overwrite_edited: bool = False
    wait: bool = False
    concurrency: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChunkReport:
    pieces: int
    status: str  # translated | memory | kept
    problems: list[str] = field(default_factory=list)
    retries: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    # Pieces kept in the source because the backend failed (request error, a cut
    # prompt or answer that splitting could not fix), not because of a check.
    failed: int = 0
    # Why the backend failed on them (the last such reason), for the file's line.
    failure: str = ""


@dataclass
class FileReport:
    source: str
    output: str
    lang: str
    status: str  # written | unchanged | current | failed | conflict | stale | missing | pruned
    message: str = ""
    chunks: list[ChunkReport] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    kept: int = 0

    @property
    def failed_chunks(self) -> int:
        return sum(c.failed for c in self.chunks)


@dataclass
class RunReport:
    backend: str = ""
    model: str = ""
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    warmup_seconds: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def hits(self) -> int:
        return sum(f.hits for f in self.files)

    @property
    def misses(self) -> int:
        return sum(f.misses for f in self.files)

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def chunks(self) -> int:
        return sum(len(f.chunks) for f in self.files)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.model_seconds if self.model_seconds else 0.0

    @property
    def failed_chunks(self) -> int:
        return sum(f.failed_chunks for f in self.files)

    @property
    def failed(self) -> bool:
        """Exit 1: a file failed or conflicts, or the backend failed on some text."""
        return self.failed_chunks > 0 or any(f.status in ("failed", "conflict") for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "files": len(self.files),
            "written": self.count("written"),
            "unchanged": self.count("unchanged") + self.count("current"),
            "failed": self.count("failed"),
            "conflicts": self.count("conflict"),
            "chunks": self.chunks,
            "hits": self.hits,
            "misses": self.misses,
            "kept_in_source": self.kept,
            "failed_chunks": self.failed_chunks,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "model_seconds": round(self.model_seconds, 3),
            "warmup_seconds": round(self.warmup_seconds, 3),
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "interrupted": self.interrupted,
            "warnings": self.warnings,
        }

    def details(self) -> dict[str, Any]:
        """The --report file: the summary plus every file and chunk."""
        out = self.to_json()
        out["details"] = [
            {
                "source": f.source,
                "output": f.output,
                "lang": f.lang,
                "status": f.status,
                "message": f.message,
                "hits": f.hits,
                "misses": f.misses,
                "kept_in_source": f.kept,
                "chunks": [vars(c) for c in f.chunks],
            }
            for f in self.files
        ]
        return out


# --------------------------------------------------------------------------- planning


@dataclass
class Piece:
    """One unit of translation and of the memory."""

    protected: segments.Protected
    block: str
    key: str
    tokens: int
    glossary: tuple[tuple[str, str], ...]
    translation: str | None = None  # with placeholders, once known
    kept: bool = False


@dataclass
class Slot:
    """A prose segment (or front-matter field) and the pieces it was cut into."""

    pieces: list[Piece]
    separators: list[str]  # whitespace between consecutive pieces in the source
    segment: segments.Segment | None = None
    field: documents.Field | None = None


@dataclass
class FileJob:
    source: discover.SourceFile
    lang: str
    dest: Path
    out_root: Path
    raw: bytes
    doc: documents.Document
    parts: list[segments.Segment | Slot]
    fm_slots: list[Slot]
    report: FileReport
    futures: list[Future[list[ChunkReport]]] = field(default_factory=list)


@dataclass
class _Target:
    lang: str
    out_root: Path
    manifest: manifest.Manifest


class Runner:
    def __init__(
        self,
        config: Config,
        options: RunOptions,
        progress: Progress | None = None,
        backend_factory: BackendFactory | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.opts = options
        self.progress: Progress = progress or NullProgress()
        self.cancel = cancel or threading.Event()
        if backend_factory is None:
            from pipeline.backends import create

            backend_factory = create
        self.backend_factory = backend_factory
        self.report = RunReport(backend=options.backend, model=options.model)
        t = config.translate
        self.chunk_tokens = int(t["chunk_tokens"])
        self.system = prompts.render_role(
            config.role_system(options.role), options.source, "{target}"
        )
        self._backend: Backend | None = None
        self._start: StartInfo | None = None
        self._backend_lock = threading.Lock()
        self._report_lock = threading.Lock()
        self._memory: memory.Memory | None = None
        self._targets: dict[Path, _Target] = {}
        self._saved_at = time.monotonic()

    # -- public -------------------------------------------------------------------

    def run(self) -> RunReport:
        started = time.perf_counter()
        targets = [self._target(lang) for lang in self.opts.targets]
        self._targets = {t.out_root: t for t in targets}
        sources = self._discover(targets)
        with ExitStack() as stack:
            if not self.opts.check:
                for lock_dir in sorted({t.out_root.resolve() for t in targets}):
                    _ignore_lock_file(lock_dir / STATE_DIR)
                    stack.enter_context(
                        RunLock(lock_dir / STATE_DIR / "lock", wait=self.opts.wait, folder=lock_dir)
                    )
            if self.opts.check:
                self._check(sources, targets)
            else:
                self._memory = stack.enter_context(memory.Memory(self._memory_path()))
                try:
                    self._translate(sources, targets)
                finally:
                    for t in targets:
                        t.manifest.save()
                    if self._backend is not None:
                        self._backend.close()
        self.report.seconds = time.perf_counter() - started
        return self.report

    # -- where things are ----------------------------------------------------------

    def _memory_path(self) -> Path:
        configured = str(self.config.memory["path"])
        if configured:
            return Path(configured).expanduser()
        return memory.default_path(os.environ)

    def _target(self, lang: str) -> _Target:
        layout = self.opts.layout
        root = self.opts.root.resolve()
        if self.opts.out is not None:
            out = Path(str(self.opts.out).replace("{lang}", lang))
            if (
                layout == "mirror"
                and len(self.opts.targets) > 1
                and "{lang}" not in str(self.opts.out)
            ):
                out = out / lang
        elif layout == "mirror":
            out = Path(str(self.config.files["out"]).replace("{lang}", lang))
        elif layout == "suffix":
            out = root
        else:  # hugo-dir, docusaurus: the site root holds content/<lang> or i18n/
            out = root.parent
        out = out.resolve()
        if layout == "mirror" and out == root:
            raise UsageError(
                f"the output folder {out} is the input folder; pass --out DIR, "
                "or --layout suffix to write post.<lang>.md beside each source"
            )
        state = out / STATE_DIR
        if state.resolve() != state:
            # The lock and the manifest would be written wherever the link points.
            raise UsageError(
                f"{state} is a symlink; remove it (translate-dir keeps its lock and "
                "manifest there, and writes nothing outside the output folder)"
            )
        return _Target(
            lang, out, manifest.Manifest.load(out / STATE_DIR / self._manifest_name(lang))
        )

    def _manifest_name(self, lang: str) -> str:
        return f"manifest-{lang}.json" if self.opts.layout != "mirror" else "manifest.json"

    def _discover(self, targets: Sequence[_Target]) -> list[discover.SourceFile]:
        root = self.opts.root.resolve()
        skip = [t.out_root for t in targets if t.out_root != root and root in t.out_root.parents]
        if self.opts.layout == "hugo-dir":
            skip += [t.out_root / t.lang for t in targets]
        if self.opts.layout == "docusaurus":
            skip += [t.out_root / "i18n" for t in targets]
        found, warnings = discover.discover(
            root,
            include=self.config.files["include"],
            exclude=self.config.files["exclude"],
            follow_symlinks=bool(self.config.files["follow_symlinks"]),
            skip_dirs=skip,
            files=self.opts.files,
        )
        self.report.warnings += warnings
        for w in warnings:
            self.progress.message(w)
        # post.zh.md is a translation (ours in the suffix layout, or a person's), not a
        # source, in every layout; about.en.md (Hugo's explicit source language) is one.
        codes = (set(languages.NAMES) | set(self.opts.targets)) - {self.opts.source}
        return [f for f in found if not discover.has_language_suffix(f.rel, codes)]

    def _dest(self, source: discover.SourceFile, target: _Target) -> Path:
        return discover.output_path(
            source.rel,
            target.lang,
            layout=self.opts.layout,
            out_root=target.out_root,
            source_lang=self.opts.source,
        )

    def _settings_hash(self, lang: str) -> str:
        return manifest.settings_hash(
            {
                "source": self.opts.source,
                "target": lang,
                "role": self.opts.role,
                "prompt_version": prompts.PROMPT_VERSION,
                "front_matter": list(self.config.front_matter["translate"]),
                # A glossary change makes outputs stale; the memory key then
                # re-translates only the pieces whose applicable entries changed.
                "glossary": sorted(self._glossary_entries(lang)),
                "do_not_translate": sorted(self.config.do_not_translate),
            }
        )

    # -- --check and --prune -----------------------------------------------------------

    def _check(self, sources: Sequence[discover.SourceFile], targets: Sequence[_Target]) -> None:
        for target in targets:
            settings = self._settings_hash(target.lang)
            wanted = set()
            for src in sources:
                dest = self._dest(src, target)
                rel = dest.relative_to(target.out_root).as_posix()
                wanted.add(rel)
                record = target.manifest.get(rel)
                source_bytes = _read_or_none(src.src)
                state: str = manifest.status(
                    record,
                    source_bytes=source_bytes,
                    output_bytes=_read_or_none(dest),
                    settings_hash=settings,
                )
                if state == "stale" and record is not None and record.settings_hash == INCOMPLETE:
                    state = "incomplete"
                if (
                    state == "edited"
                    and record is not None
                    and record.source_hash == manifest.file_hash(source_bytes or b"")
                ):
                    # A translation improved by hand while its source stayed the same
                    # is up to date: CI must not fail forever after a person fixed it.
                    state = "current"
                self.report.files.append(
                    FileReport(src.rel.as_posix(), str(dest), target.lang, state)
                )
            if self.opts.files is None:
                for rel, record in target.manifest.items():
                    if rel not in wanted and record.lang == target.lang:
                        self.report.files.append(
                            FileReport(
                                record.source, str(target.out_root / rel), target.lang, "orphan"
                            )
                        )

    def _prune(self, sources: Sequence[discover.SourceFile], target: _Target) -> None:
        wanted = {self._dest(s, target).relative_to(target.out_root).as_posix() for s in sources}
        root = self.opts.root.resolve()
        for rel, record in list(target.manifest.items()):
            if rel in wanted or record.lang != target.lang:
                continue
            if self.opts.files is not None and (root / record.source).exists():
                # Given FILES (pre-commit), the others are not orphans: only a gone source is.
                continue
            path = target.out_root / rel
            data = _read_or_none(path)
            if data is not None and not manifest.wrote(record, data):
                self.report.files.append(
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
            self.report.files.append(FileReport(record.source, str(path), target.lang, "pruned"))

    # -- translation -----------------------------------------------------------------

    def _translate(
        self, sources: Sequence[discover.SourceFile], targets: Sequence[_Target]
    ) -> None:
        jobs: list[FileJob] = []
        for target in targets:
            if self.opts.prune:
                self._prune(sources, target)
            for src in sources:
                job = self._plan(src, target)
                if job is not None:
                    jobs.append(job)
        if any(p.translation is None for job in jobs for slot in _slots(job) for p in slot.pieces):
            # Only now, when some text really needs the model, is it started.
            self._ensure_backend()
        todo = [(job, chunk) for job in jobs for chunk in self._chunks(job)]
        self.progress.plan(len(jobs), len(todo), sum(p.tokens for _, c in todo for p in c))
        workers = max(1, self._concurrency())
        with _Workers(workers) as pool:
            if self.config.translate["previous_chunk_context"]:
                # Each chunk sees the one before it, so a file's chunks go in order;
                # files still run side by side.
                by_job: dict[int, list[list[Piece]]] = {}
                for job, chunk in todo:
                    by_job.setdefault(id(job), []).append(chunk)
                for job in jobs:
                    if id(job) in by_job:
                        job.futures.append(pool.submit(self._run_chunks, job, by_job[id(job)]))
            else:
                for job, chunk in todo:
                    job.futures.append(pool.submit(self._run_chunks, job, [chunk]))
            try:
                for job in jobs:
                    self._finish(job)
            except BaseException:
                self.cancel.set()
                for job in jobs:
                    for fut in job.futures:
                        fut.cancel()
                raise

    def _concurrency(self) -> int:
        if self.opts.concurrency > 0:
            return self.opts.concurrency
        return self._start.concurrency if self._start else 1

    def _plan(self, src: discover.SourceFile, target: _Target) -> FileJob | None:
        try:
            dest = self._dest(src, target)
        except UsageError as exc:
            # A symlink in the output folder leads outside it: refuse this file only.
            report = FileReport(src.rel.as_posix(), "", target.lang, "failed")
            report.message = str(exc).removeprefix(f"{src.rel.as_posix()}: ")
            self._done(report)
            return None
        rel_out = dest.relative_to(target.out_root).as_posix()
        report = FileReport(src.rel.as_posix(), str(dest), target.lang, "failed")
        try:
            raw = src.src.read_bytes()
        except OSError as exc:
            report.message = f"cannot read: {exc.strerror or exc}"
            self._done(report)
            return None
        record = target.manifest.get(rel_out)
        existing = _read_or_none(dest)
        settings = self._settings_hash(target.lang)
        state = manifest.status(
            record, source_bytes=raw, output_bytes=existing, settings_hash=settings
        )
        if (
            state == "edited"
            and not self.opts.overwrite_edited
            and record is not None
            and record.source_hash == manifest.file_hash(raw)
        ):
            # Improved by hand, source unchanged: the translation is up to date.
            report.status = "edited"
            self._done(report)
            return None
        if state == "edited" and not self.opts.overwrite_edited:
            report.status = "conflict"
            report.message = (
                "edited by hand since translate-dir wrote it; not overwritten "
                "(pass --overwrite-edited to replace it)"
            )
            self._done(report)
            return None
        if state == "current" and not self.opts.force:
            report.status = "current"
            self._done(report)
            return None
        try:
            doc = documents.decode(raw, name=src.rel.as_posix(), markdown=src.markdown)
        except DocumentError as exc:
            # The summary line starts with the name already: say it once.
            report.message = str(exc).removeprefix(f"{src.rel.as_posix()}: ")
            self._done(report)
            return None
        parts: list[segments.Segment | Slot] = []
        for seg in segments.split(doc.text, markdown=src.markdown):
            if seg.kind == "prose":
                parts.append(self._slot(seg.content, seg.block, target.lang, segment=seg))
            else:
                parts.append(seg)
        fm_slots = []
        if doc.front_matter is not None:
            for fld in documents.translatable_fields(
                doc.front_matter, list(self.config.front_matter["translate"])
            ):
                fm_slots.append(self._slot(fld.value, "paragraph", target.lang, fld=fld))
        job = FileJob(src, target.lang, dest, target.out_root, raw, doc, parts, fm_slots, report)
        self._lookup(job)
        return job

    def _slot(
        self,
        content: str,
        block: str,
        lang: str,
        *,
        segment: segments.Segment | None = None,
        fld: documents.Field | None = None,
    ) -> Slot:
        count = base.estimate_tokens
        whole = segments.protect(content, do_not_translate=self.config.do_not_translate)
        parts = [whole]
        separators: list[str] = []
        if block in ("paragraph", "text") and count(whole.text) > self.chunk_tokens:
            # Cut the protected text, so a sentence end inside inline code or a URL
            # can never split a protected span.
            parts = []
            for t in chunks.split_sentences(whole.text, self.chunk_tokens, count):
                core = t.rstrip()
                separators.append(t[len(core) :])
                parts.append(_renumber(core, whole.spans))
            separators = separators[:-1]
        pieces = []
        for protected in parts:
            glossary = self._glossary_for(protected.text, lang)
            pieces.append(
                Piece(
                    protected=protected,
                    block=block,
                    key=self._key(protected.text, lang, glossary, block),
                    tokens=count(protected.text),
                    glossary=glossary,
                )
            )
        return Slot(pieces, separators, segment=segment, field=fld)

    def _glossary_entries(self, lang: str) -> tuple[tuple[str, str], ...]:
        return self.config.glossary.get(languages.normalise(lang)) or self.config.glossary.get(
            languages.base(lang), ()
        )

    def _glossary_for(self, text: str, lang: str) -> tuple[tuple[str, str], ...]:
        entries = self._glossary_entries(lang)
        lowered = text.lower()
        return tuple((src, dst) for src, dst in entries if src.lower() in lowered)

    def _key(self, text: str, lang: str, glossary: Sequence[tuple[str, str]], block: str) -> str:
        t = self.config.translate
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
                "temperature": t["temperature"],
                "top_p": t["top_p"],
                "seed": t["seed"],
                "context": t["previous_chunk_context"],
                "system": self.system,
            },
        )

    def _lookup(self, job: FileJob) -> None:
        assert self._memory is not None
        pieces = [p for slot in _slots(job) for p in slot.pieces]
        if self.opts.force:
            job.report.misses = len(pieces)
            return
        found = self._memory.get_many([p.key for p in pieces])
        for p in pieces:
            entry = found.get(p.key)
            if entry is not None:
                p.translation = entry.translation
                job.report.hits += 1
            else:
                job.report.misses += 1

    def _chunks(self, job: FileJob) -> list[list[Piece]]:
        missing = [p for slot in _slots(job) for p in slot.pieces if p.translation is None]
        if not missing:
            return []
        assert self._start is not None
        one = self._start.one_segment_per_request
        return chunks.pack(missing, lambda p: p.tokens, self._budget(), 1 if one else 0)

    def _budget(self) -> int:
        """The chunk budget, shrunk to fit the context the backend reported."""
        assert self._start is not None
        ratio = float(self.config.translate["max_output_ratio"])
        fits = int((self._start.context_size - PROMPT_OVERHEAD - 64) / (1 + ratio))
        return max(16, min(self.chunk_tokens, fits))

    # -- the backend ------------------------------------------------------------------

    def _ensure_backend(self) -> Backend:
        with self._backend_lock:
            if self._backend is None:
                t = self.config.translate
                ratio = float(t["max_output_ratio"])
                b = self.config.backend
                settings = BackendSettings(
                    model=self.opts.model,
                    context_tokens=PROMPT_OVERHEAD + int(self.chunk_tokens * (1 + ratio)) + 64,
                    connect_timeout=float(b["connect_timeout"]),
                    read_timeout=float(b["read_timeout"]),
                    request_retries=int(b["request_retries"]),
                    allow_remote=bool(b["allow_remote"]),
                    concurrency=self.opts.concurrency,
                    options=dict(self.opts.backend_options),
                )
                backend = self.backend_factory(self.opts.backend, settings, self.progress)
                self._start = backend.start()
                self._backend = backend
                self.report.backend = self._start.backend
                self.report.model = self._start.model
                self.report.warmup_seconds = self._start.warmup_seconds
            return self._backend

    def _request(
        self,
        texts: Sequence[str],
        pieces: Sequence[Piece],
        lang: str,
        strict: bool,
        context: tuple[str, str] | None,
    ) -> Request:
        t = self.config.translate
        system = self.system.replace("{target}", languages.name(lang))
        if strict:
            system += (
                "\nYour previous answer was rejected. Translate ALL of the text, nothing else; "
                "keep the same number of paragraphs and every ⟦n⟧ marker."
            )
        glossary = tuple(dict.fromkeys(e for p in pieces for e in p.glossary))
        prompt = prompts.Prompt(
            system=system,
            text=chunks.join_pieces(texts),
            source_name=languages.name(self.opts.source),
            target_name=languages.name(lang),
            examples=prompts.examples_for(self.opts.source, lang),
            context=context,
            glossary=glossary,
        )
        source_tokens = sum(p.tokens for p in pieces)
        return Request(
            prompt=prompt,
            max_tokens=int(source_tokens * float(t["max_output_ratio"])) + 64,
            temperature=0.0 if strict else float(t["temperature"]),
            top_p=float(t["top_p"]),
            seed=int(t["seed"]),
            estimated_prompt_tokens=base.estimate_tokens(prompt.system + prompt.text),
        )

    # -- one chunk ----------------------------------------------------------------------

    def _run_chunks(self, job: FileJob, chunk_list: list[list[Piece]]) -> list[ChunkReport]:
        reports = []
        context: tuple[str, str] | None = None
        for pieces in chunk_list:
            report = ChunkReport(pieces=len(pieces), status="translated")
            reports.append(report)
            if self.cancel.is_set():
                report.status = "cancelled"
                continue
            self._translate_pieces(job, pieces, report, depth=0, context=context)
            if any(p.kept for p in pieces):
                report.status = "kept" if all(p.kept for p in pieces) else "partly kept"
            self.progress.chunk_done(sum(p.tokens for p in pieces), report.output_tokens)
            context = self._context(pieces)
        return reports

    def _context(self, pieces: Sequence[Piece]) -> tuple[str, str] | None:
        """The previous chunk as (source, translation), bounded to half a chunk budget:
        its last translated pieces, so the nearest text carries over."""
        budget = self.chunk_tokens // 2
        src: list[str] = []
        dst: list[str] = []
        used = 0
        for p in reversed(pieces):
            if p.translation is None or p.kept:
                break
            used += p.tokens + base.estimate_tokens(p.translation)
            if used > budget:
                break
            src.insert(0, p.protected.text)
            dst.insert(0, p.translation)
        if not src:
            return None
        return chunks.join_pieces(src), chunks.join_pieces(dst)

    def _translate_pieces(
        self,
        job: FileJob,
        pieces: list[Piece],
        report: ChunkReport,
        depth: int,
        context: tuple[str, str] | None = None,
    ) -> None:
        backend = self._ensure_backend()
        retries = int(self.config.translate["retries"])
        pending = list(pieces)
        split_reason = ""
        for attempt in range(retries + 1):
            if self.cancel.is_set():
                return
            if attempt:
                report.retries += 1
            request = self._request(
                [p.protected.text for p in pending],
                pending,
                job.lang,
                strict=attempt > 0,
                context=context,
            )
            try:
                result = backend.translate(request)
            except (ContextOverflow, OutputTruncated) as exc:
                split_reason = str(exc)
                if isinstance(exc, OutputTruncated) and attempt < retries:
                    # A stream that ended early is often a passing fault: ask again
                    # before splitting (or, for one piece, giving up on it).
                    report.problems.append(split_reason)
                    continue
                break
            except RequestFailed as exc:
                self._keep(pending, report, f"request failed: {exc}", failure=True)
                return
            self._account(report, result)
            if result.finish == "length":
                if clean.is_looping(result.text):
                    # A runaway repetition, not a cut translation: a quality problem
                    # of the model, handled like any answer that fails its checks.
                    report.problems.append("repetition loop")
                    continue
                split_reason = _RAN_AWAY
                report.problems.append(split_reason)
                break
            answer = clean.clean(result.text, source=request.prompt.text)
            parts = chunks.split_answer(answer, len(pending))
            if parts is None:
                report.problems.append("the answer has a different number of paragraphs")
                continue
            failed = []
            stored: list[tuple[str, memory.Entry]] = []
            for piece, part in zip(pending, parts, strict=True):
                problems = validate.check_segment(
                    piece.protected.text,
                    part,
                    block=piece.block,
                    source_lang=self.opts.source,
                    target_lang=job.lang,
                )
                if not problems:
                    try:
                        segments.restore(part, piece.protected)
                    except ValidationFailed as exc:
                        problems = exc.problems
                if problems:
                    report.problems += problems
                    failed.append(piece)
                    continue
                piece.translation = part
                stored.append(
                    (
                        piece.key,
                        memory.Entry(
                            translation=part,
                            model=self.report.model,
                            prompt_tokens=result.prompt_tokens,
                            output_tokens=result.output_tokens,
                            seconds=result.seconds,
                            created=time.time(),
                        ),
                    )
                )
            if stored:
                # Committed now: a crash later never costs this work again.
                assert self._memory is not None
                self._memory.put_many(stored)
            pending = failed
            if not pending:
                return
        # Retries did not help: try smaller pieces, then give up on this text.
        if len(pending) > 1:
            half = len(pending) // 2
            self._translate_pieces(job, pending[:half], report, depth + 1, context)
            self._translate_pieces(job, pending[half:], report, depth + 1, context)
            return
        if split_reason == _RAN_AWAY:
            # One piece, and the model wrote past a bound of twice its length plus
            # 64 tokens: it never stopped. Nothing was cut that splitting could fix;
            # like a loop, it is the model's failure, kept in the source with a warning.
            self._keep(pending, report, "the model did not stop (answer ran past its bound)")
            return
        self._keep(pending, report, split_reason or "failed its checks", failure=bool(split_reason))

    def _keep(
        self, pieces: Sequence[Piece], report: ChunkReport, why: str, *, failure: bool = False
    ) -> None:
        for p in pieces:
            p.kept = True
        if failure:
            report.failed += len(pieces)
            report.failure = why
        if why not in report.problems:
            report.problems.append(why)

    def _account(self, report: ChunkReport, result: base.Result) -> None:
        report.prompt_tokens += result.prompt_tokens
        report.output_tokens += result.output_tokens
        report.seconds += result.seconds
        with self._report_lock:
            self.report.requests += 1
            self.report.prompt_tokens += result.prompt_tokens
            self.report.output_tokens += result.output_tokens
            self.report.model_seconds += result.seconds

    # -- assembling and writing ----------------------------------------------------------

    def _finish(self, job: FileJob) -> None:
        for fut in job.futures:
            job.report.chunks.extend(fut.result())
        if self.cancel.is_set():
            job.report.status = "cancelled"
            return
        job.report.kept = sum(p.kept for slot in _slots(job) for p in slot.pieces)
        failure = next((c.failure for c in job.report.chunks if c.failure), "")
        if failure:
            # Say why the backend failed on this file (its own words, no document text).
            job.report.message = failure
        body = self._body(job)
        source_body = job.doc.text
        if job.doc.markdown:
            # Each segment's links were checked with it: compare blocks only.
            problems = validate.compare_structure(source_body, body, links=False)
            if problems:
                # Never write broken structure. First keep in the source the segments
                # whose translation, rendered in place, has another structure than
                # their source; if the document still differs, keep the whole file.
                for part in job.parts:
                    if isinstance(part, Slot) and part.segment is not None:
                        rendered = self._render(part, job.lang)
                        if validate.structure(rendered) != validate.structure(part.segment.source):
                            for p in part.pieces:
                                p.kept = True
                body = self._body(job)
                if validate.compare_structure(source_body, body, links=False):
                    body = source_body
                    for slot in _slots(job):
                        for p in slot.pieces:
                            p.kept = True
                    job.report.message = "kept in the source language: " + "; ".join(problems[:3])
                job.report.kept = sum(p.kept for slot in _slots(job) for p in slot.pieces)
        fm_raw = job.doc.front_matter.raw if job.doc.front_matter else None
        if job.doc.front_matter is not None and job.fm_slots:
            translations = {
                (slot.field.key, slot.field.index): self._join_slot(slot, job.lang)
                for slot in job.fm_slots
                if slot.field is not None and not all(p.kept for p in slot.pieces)
            }
            if translations:
                try:
                    fm_raw = documents.replace_fields(job.doc.front_matter, translations)
                except ValidationFailed as exc:
                    job.report.message = "front matter kept: " + "; ".join(exc.problems)
        data = documents.encode(job.doc, body, fm_raw)
        self._write(job, data)

    def _body(self, job: FileJob) -> str:
        return "".join(
            part.source if isinstance(part, segments.Segment) else self._render(part, job.lang)
            for part in job.parts
        )

    def _render(self, slot: Slot, lang: str) -> str:
        assert slot.segment is not None
        if all(p.kept for p in slot.pieces):
            return slot.segment.source
        return segments.render(slot.segment, self._join_slot(slot, lang))

    def _join_slot(self, slot: Slot, lang: str) -> str:
        texts = []
        for p in slot.pieces:
            if p.kept or p.translation is None:
                texts.append(segments.restore(p.protected.text, p.protected))
            else:
                texts.append(segments.restore(p.translation, p.protected))
        cjk_target = languages.base(lang) in languages.CJK
        out = texts[0]
        for sep, text in zip(slot.separators, texts[1:], strict=True):
            # Chinese and Japanese put no space between sentences, but only where
            # both sides are CJK: a piece kept in the source, or a cut between
            # words of markup ("> >"), keeps its space.
            wide = out[-1:] >= "\u2e80" and text[:1] >= "\u2e80"
            out += ("" if cjk_target and sep == " " and wide else sep) + text
        if cjk_target:
            out = cjk.fix_cjk_emphasis(out)
        return out

    def _write(self, job: FileJob, data: bytes) -> None:
        target = self._targets[job.out_root]
        rel_out = job.dest.relative_to(job.out_root).as_posix()
        existing = _read_or_none(job.dest)
        record = target.manifest.get(rel_out)
        if (
            existing is not None
            and existing != data
            and not manifest.wrote(record, existing)
            and not self.opts.overwrite_edited
        ):
            # Decided here, not at planning: an output the tool wrote before a crash
            # (manifest not yet saved) is identical to what it would write now.
            job.report.status = "conflict"
            job.report.message = (
                "exists and was not written by translate-dir; not overwritten "
                "(pass --overwrite-edited to replace it)"
            )
            self._done(job.report)
            return
        try:
            if existing != data:
                atomic_write(job.dest, data)
                job.report.status = "written"
            else:
                job.report.status = "unchanged"
        except OSError as exc:
            job.report.status = "failed"
            job.report.message = f"cannot write {job.dest}: {exc.strerror or exc}"
            self._done(job.report)
            return
        target.manifest.set(
            rel_out,
            manifest.Record(
                source=job.source.rel.as_posix(),
                lang=job.lang,
                source_hash=manifest.file_hash(job.raw),
                output_hash=manifest.file_hash(data),
                settings_hash=INCOMPLETE
                if job.report.failed_chunks
                else self._settings_hash(job.lang),
                written=time.time(),
            ),
        )
        if time.monotonic() - self._saved_at > 5:
            target.manifest.save()
            self._saved_at = time.monotonic()
        self._done(job.report)

    def _done(self, report: FileReport) -> None:
        with self._report_lock:
            self.report.files.append(report)
        self.progress.file_done(report.source, report.status)


T = TypeVar("T")


class _Workers:
    """Daemon threads that run the chunks; ``with`` waits for them only on success.

    Not ThreadPoolExecutor: its threads are joined at interpreter exit, so after
    Ctrl-C or SIGTERM the process would wait for the request in flight, minutes
    on a local model, for an answer it throws away. Workers write no files (the
    main thread does), and each finished chunk is already in the memory, so
    leaving one behind loses nothing and cannot leave a half-written output.
    """

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._queue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"chunk-{i}", daemon=True) for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((future, lambda: fn(*args)))
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if exc_type is None:
            for thread in self._threads:
                thread.join()


_MARKER = re.compile(r"⟦(\d+)⟧")


def _renumber(text: str, spans: Sequence[str]) -> segments.Protected:
    """A piece of a protected text as a Protected of its own, markers from ⟦1⟧."""
    local: list[str] = []

    def sub(m: re.Match[str]) -> str:
        local.append(spans[int(m.group(1)) - 1])
        return f"⟦{len(local)}⟧"

    return segments.Protected(text=_MARKER.sub(sub, text), spans=tuple(local))


def _slots(job: FileJob) -> list[Slot]:
    return [p for p in job.parts if isinstance(p, Slot)] + job.fm_slots


def _ignore_lock_file(state_dir: Path) -> None:
    """Keep the lock out of git: the manifest is worth committing, the lock is not."""
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            ignore.write_text("lock\n", encoding="utf-8")
        except OSError:
            pass  # a read-only output folder is reported when writing the outputs


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None


def atomic_write(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same folder, then rename over the target:
    readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
