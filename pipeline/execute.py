"""Execute: pack the pieces that need the model into chunks, send them through
the backend, clean and check every answer, and climb the ladder when an answer
fails: ask again (stricter, temperature 0), then split the chunk, then keep the
piece in the source language. Every accepted (or kept) piece is committed to the
memory at once, so a crash never costs it again.

The ladder is a coroutine: every chunk of a run goes through one event-loop
thread (``ChunkLoop``), with as many chunks in flight as the backend has slots,
and no thread per request. A model that cannot do the job at all is stopped
early (``FailFast``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pipeline import chunks, clean, languages, prompts, protect, validate
from pipeline.backends.base import (
    Backend,
    Request,
    Result,
    StartInfo,
    async_side,
    estimate_tokens,
)
from pipeline.backends.policy import estimate_prompt_tokens
from pipeline.config import Config
from pipeline.errors import (
    ContextOverflow,
    ModelUnfit,
    OutputTruncated,
    RequestFailed,
    ValidationFailed,
)
from pipeline.memory import Entry, Memory
from pipeline.options import PROMPT_OVERHEAD, RunOptions
from pipeline.plan import FileJob, Piece
from pipeline.protect import MARKER_RE, Protected
from pipeline.report import ChunkReport, Progress, RunReport

_RAN_AWAY = "answer cut at the output-token bound"

# One request to the backend, awaited (``ChunkLoop.ask``).
Ask = Callable[[Request], Awaitable[Result]]


@dataclass
class Executor:
    """Everything a chunk needs on its way through the backend."""

    cfg: Config
    opts: RunOptions
    backend: Backend
    start: StartInfo
    memory: Memory
    system: str  # the role's system prompt, "{target}" still open
    progress: Progress
    cancel: threading.Event
    totals: RunReport
    fail_fast: FailFast = field(init=False)
    # How the ladder asks the backend: set by ``submit`` to its loop's ``ask``.
    ask: Ask | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    # Pieces whose line count must hold (block quotes, list items, front-matter
    # values), by id: ``Piece`` does not know its slot. The pieces are held, so
    # that no id is reused while the run lasts.
    _keep_lines: dict[int, Piece] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.fail_fast = FailFast(self.cancel)

    # -- packing -------------------------------------------------------------------

    def pack(self, job: FileJob) -> list[list[Piece]]:
        """The pieces of ``job`` that need the model, packed into chunks."""
        missing = [p for p in job.pieces if p.pending and not p.note]
        # A piece with a reviewer's note goes alone: the note is about it only.
        noted = [[p] for p in job.pieces if p.pending and p.note]
        if not missing:
            return noted
        one = 1 if self.start.one_segment_per_request else 0
        return chunks.pack(missing, lambda p: p.tokens, self.budget(), one) + noted

    def budget(self) -> int:
        """The chunk budget, shrunk to fit the context the backend reported."""
        t = self.cfg.translate
        fits = int((self.start.context_size - PROMPT_OVERHEAD - 64) / (1 + t.max_output_ratio))
        return max(16, min(t.chunk_tokens, fits))

    # -- a file's chunks, on the loop ---------------------------------------------------

    async def run_chunks(self, job: FileJob, chunk_list: list[list[Piece]]) -> list[ChunkReport]:
        reports = []
        context: tuple[str, str] | None = None
        lines = _line_pieces(job)
        with self._lock:
            self._keep_lines.update(lines)
        for pieces in chunk_list:
            report = ChunkReport(pieces=len(pieces))
            reports.append(report)
            if self.cancel.is_set():
                report.status = "cancelled"
                continue
            await self._translate(job, pieces, report, context=context)
            if any(p.kept for p in pieces):
                report.status = "kept" if all(p.kept for p in pieces) else "partly kept"
            self.progress.chunk_done(sum(p.tokens for p in pieces), report.output_tokens)
            self.fail_fast.record(report, sum(p.kept for p in pieces), job.lang)
            context = self._context(pieces)
        return reports

    def _context(self, pieces: Sequence[Piece]) -> tuple[str, str] | None:
        """The previous chunk as (source, translation), bounded to half a chunk budget:
        its last translated pieces, so the nearest text carries over."""
        if not self.cfg.translate.previous_chunk_context:
            return None
        budget = self.cfg.translate.chunk_tokens // 2
        src: list[str] = []
        dst: list[str] = []
        used = 0
        for p in reversed(pieces):
            if p.translation is None or p.kept:
                break
            used += p.tokens + estimate_tokens(p.translation)
            if used > budget:
                break
            src.insert(0, p.protected.text)
            dst.insert(0, p.translation)
        if not src:
            return None
        return chunks.join_pieces(src), chunks.join_pieces(dst)

    # -- the ladder ----------------------------------------------------------------------

    async def _translate(
        self,
        job: FileJob,
        pieces: list[Piece],
        report: ChunkReport,
        context: tuple[str, str] | None = None,
    ) -> None:
        """Ask, ask again stricter, then split in halves; what still fails is kept."""
        if len(pieces) == 1 and (parts := self._sentence_parts(pieces[0])):
            await self._translate_sentences(job, pieces[0], parts, report, context)
            return
        retries = self.cfg.translate.retries
        pending = list(pieces)
        split_reason = ""
        for attempt in range(retries + 1):
            if self.cancel.is_set():
                return
            if attempt:
                report.retries += 1
            request = self._request(pending, job.lang, strict=attempt > 0, context=context)
            try:
                result = await self._ask(request)
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
                    _reject(report, ["repetition loop"])
                    continue
                split_reason = _RAN_AWAY
                _reject(report, [split_reason])
                break
            pending = self._accept(pending, request, result, job.lang, report)
            if not pending:
                return
        if len(pending) > 1:
            half = len(pending) // 2
            await self._translate(job, pending[:half], report, context)
            await self._translate(job, pending[half:], report, context)
            return
        if split_reason == _RAN_AWAY:
            # One piece, and the model wrote past a bound of twice its length plus
            # 64 tokens: it never stopped. Nothing was cut that splitting could fix;
            # like a loop, it is the model's failure, kept in the source with a warning.
            self._keep(pending, report, "the model did not stop (answer ran past its bound)")
            return
        self._keep(pending, report, split_reason or "failed its checks", failure=bool(split_reason))

    def _accept(
        self,
        pending: list[Piece],
        request: Request,
        result: Result,
        lang: str,
        report: ChunkReport,
    ) -> list[Piece]:
        """Clean and check the answer; store the pieces that pass; return the rest."""
        prompt = request.prompt
        answer = clean.clean(
            result.text, source=prompt.text, labels=(prompt.source_name, prompt.target_name)
        )
        parts = chunks.split_answer(answer, len(pending))
        if parts is None:
            _reject(report, ["the answer has a different number of paragraphs"])
            if len(pending) == 1:
                self.memory.put_rejections([(pending[0].key, answer, [report.problems[-1]])])
            return pending
        failed = []
        stored: list[tuple[str, Entry]] = []
        rejected: list[tuple[str, str, list[str]]] = []
        for piece, part in zip(pending, parts, strict=True):
            problems = self._check(piece, part, request, lang)
            if problems:
                _reject(report, problems)
                failed.append(piece)
                rejected.append((piece.key, part, problems))
                continue
            piece.translation = part
            stored.append((piece.key, self._entry(part, result)))
        # Committed now: a crash later never costs this work again.
        self.memory.put_many(stored)
        # Kept for the review page: what the model said, and which checks said no.
        self.memory.put_rejections(rejected)
        return failed

    def _check(self, piece: Piece, answer: str, request: Request, lang: str) -> list[str]:
        """Every check of one piece's answer, placeholders restored last."""
        return check_piece(
            piece.protected,
            answer,
            block=piece.block,
            source_lang=self.opts.source,
            target_lang=lang,
            prompt=request.prompt,
            keep_lines=id(piece) in self._keep_lines,
        )

    # -- sentence by sentence, for completion-style models ---------------------------

    def _sentence_parts(self, piece: Piece) -> list[tuple[str, str]] | None:
        """A paragraph's sentences (and lines, where they must hold), when the model
        is a completion-style one: a base model translates one sentence far better
        than five (Gemma 3 270M on FLORES, en->zh chrF 14.8 vs 4.5). None otherwise."""
        if not self.start.one_segment_per_request or piece.block not in ("paragraph", "text"):
            return None
        parts = chunks.sentences(piece.protected.text, lines=id(piece) in self._keep_lines)
        return parts if len(parts) > 1 else None

    async def _translate_sentences(
        self,
        job: FileJob,
        piece: Piece,
        parts: list[tuple[str, str]],
        report: ChunkReport,
        context: tuple[str, str] | None,
    ) -> None:
        """One request per sentence; the joined paragraph is checked and stored as the
        piece (the unit of the memory stays the paragraph). A sentence that fails is
        asked again (stricter) on the next round; a joined paragraph that fails
        sends every sentence again; what still fails is kept in the source. With
        ``previous_chunk_context`` a sentence sees the one before it (the first, the
        previous chunk)."""
        answers: list[str | None] = [None] * len(parts)
        results: list[Result] = []
        cjk_target = languages.base(job.lang) in languages.CJK
        for attempt in range(self.cfg.translate.retries + 1):
            for i, (text, _) in enumerate(parts):
                if answers[i] is not None:
                    continue
                if self.cancel.is_set():
                    return
                if attempt:
                    report.retries += 1
                previous = context if i == 0 else None
                if i and self.cfg.translate.previous_chunk_context:
                    before = answers[i - 1]
                    previous = (parts[i - 1][0], before) if before is not None else None
                try:
                    answers[i] = await self._sentence(
                        piece, text, job.lang, attempt > 0, previous, report, results
                    )
                except RequestFailed as exc:
                    self._keep([piece], report, f"request failed: {exc}", failure=True)
                    return
            if any(a is None for a in answers):
                continue
            joined = chunks.join_sentences(
                [(a or "", sep) for a, (_, sep) in zip(answers, parts, strict=True)],
                cjk=cjk_target,
            )
            request = self._request([piece], job.lang, strict=False, context=None)
            problems = self._check(piece, joined, request, job.lang)
            if not problems:
                piece.translation = joined
                total = Result(
                    joined,
                    "stop",
                    sum(r.prompt_tokens for r in results),
                    sum(r.output_tokens for r in results),
                    sum(r.seconds for r in results),
                )
                self.memory.put_many([(piece.key, self._entry(joined, total))])
                return
            _reject(report, problems)
            self.memory.put_rejections([(piece.key, joined, problems)])
            answers = [None] * len(parts)
        self._keep([piece], report, "failed its checks")

    async def _sentence(
        self,
        piece: Piece,
        text: str,
        lang: str,
        strict: bool,
        previous: tuple[str, str] | None,
        report: ChunkReport,
        results: list[Result],
    ) -> str | None:
        """One sentence of ``piece`` translated and checked, its markers numbered as
        in the piece; None when the answer failed (the reason is in ``report``)."""
        own = protect.renumber(text, piece.protected.spans, piece.protected.values)
        numbers = [m.group(1) for m in MARKER_RE.finditer(text)]
        sentence = dataclasses.replace(
            piece, protected=own, key="", tokens=estimate_tokens(own.text), translation=None
        )
        if previous is not None:
            previous = (_local(previous[0], previous[0]), _local(previous[1], previous[0]))
        request = self._request([sentence], lang, strict=strict, context=previous)
        try:
            result = await self._ask(request)
        except (ContextOverflow, OutputTruncated) as exc:
            report.problems.append(str(exc))
            return None
        self._account(report, result)
        results.append(result)
        if result.finish == "length":
            _reject(report, ["repetition loop" if clean.is_looping(result.text) else _RAN_AWAY])
            return None
        prompt = request.prompt
        answer = clean.clean(
            result.text, source=prompt.text, labels=(prompt.source_name, prompt.target_name)
        )
        problems = self._check(sentence, answer, request, lang)
        if problems:
            _reject(report, problems)
            return None
        return MARKER_RE.sub(lambda m: f"⟦{numbers[int(m.group(1)) - 1]}⟧", answer)

    async def _ask(self, request: Request) -> Result:
        if self.ask is None:
            raise RuntimeError("Executor.ask is unset: run the chunks through execute.submit")
        return await self.ask(request)

    def _request(
        self,
        pieces: Sequence[Piece],
        lang: str,
        strict: bool,
        context: tuple[str, str] | None,
    ) -> Request:
        return build_request(
            self.cfg, self.opts, self.system, pieces, lang, strict=strict, context=context
        )

    def _keep(
        self, pieces: Sequence[Piece], report: ChunkReport, why: str, *, failure: bool = False
    ) -> None:
        """Give up on ``pieces``: they are written in the source language.

        A backend failure is retried by the next run (the output is recorded
        incomplete); a piece whose every answer failed the checks is stored in
        the memory as kept, and asked again only with --retry-kept.
        """
        for p in pieces:
            p.kept = True
        if failure:
            report.failed += len(pieces)
            report.failure = why
        else:
            self.memory.put_many(
                [(p.key, self._entry(p.protected.text, None, kept=True)) for p in pieces]
            )
        if why not in report.problems:
            report.problems.append(why)

    def _entry(self, text: str, result: Result | None, *, kept: bool = False) -> Entry:
        return Entry(
            translation=text,
            model=self.totals.model,
            prompt_tokens=result.prompt_tokens if result else 0,
            output_tokens=result.output_tokens if result else 0,
            seconds=result.seconds if result else 0.0,
            created=time.time(),
            kept=kept,
        )

    def _account(self, report: ChunkReport, result: Result) -> None:
        report.prompt_tokens += result.prompt_tokens
        report.output_tokens += result.output_tokens
        report.seconds += result.seconds
        with self._lock:
            self.totals.requests += 1
            self.totals.prompt_tokens += result.prompt_tokens
            self.totals.output_tokens += result.output_tokens
            self.totals.model_seconds += result.seconds


def _reject(report: ChunkReport, problems: Sequence[str]) -> None:
    """Record an answer that failed: its problems, and one count per check it failed."""
    report.problems += problems
    for check in dict.fromkeys(validate.check_of(p) for p in problems):
        report.rejected[check] = report.rejected.get(check, 0) + 1


def _line_pieces(job: FileJob) -> dict[int, Piece]:
    """The pieces (by id) whose lines carry structure: a paragraph in a block quote
    or a list item, and front-matter values."""
    out: dict[int, Piece] = {}
    for slot in job.slots:
        inside = slot.segment is not None and any(p.strip() for p in slot.segment.line_prefixes)
        if inside or slot.field is not None:
            out.update((id(p), p) for p in slot.pieces)
    return out


def _local(translation: str, source: str) -> str:
    """A translated sentence's markers renumbered from 1 in the order of its source's."""
    order = {m.group(1): str(i) for i, m in enumerate(MARKER_RE.finditer(source), start=1)}
    return MARKER_RE.sub(lambda m: f"⟦{order.get(m.group(1), m.group(1))}⟧", translation)


# ------------------------------------------------------------------------ failing fast

# What varies between two reports of one check: details in parentheses, markers, counts.
_DIGITS = re.compile(rf"\(.*?\)|{MARKER_RE.pattern}|\d+")


class FailFast:
    """Stop a run whose model cannot do the job, before it costs thousands of requests.

    A chunk counts against the model when most of its pieces end kept in the
    source language because their answers failed a check. When the first ``RUN``
    chunks all do, for one and the same check, or ``MOST`` of the first
    ``WINDOW`` do, the model is not going to do better on the rest: with one
    that never writes the target script, the 140 TiDB pages cost 10,648
    requests through retries and splits before this rule. A backend failure is
    not the model's answer and does not count.
    """

    RUN = 8
    WINDOW = 20
    MOST = 15

    def __init__(self, cancel: threading.Event) -> None:
        self._cancel = cancel
        self._lock = threading.Lock()
        self._seen = 0
        self._failed: Counter[str] = Counter()  # check -> chunks it kept

    def record(self, report: ChunkReport, kept: int, lang: str) -> None:
        checks = _checks(report) if kept * 2 > report.pieces and not report.failed else set()
        with self._lock:
            if self._seen >= self.WINDOW:
                return
            self._seen += 1
            self._failed.update(checks)
            seen = self._seen
            check, count = self._failed.most_common(1)[0] if self._failed else ("", 0)
        tripped = (seen == self.RUN and count == seen) or (
            seen == self.WINDOW and count >= self.MOST
        )
        if tripped:
            self._cancel.set()
            raise ModelUnfit(
                f"stopped after the first {seen} chunks: {count} of them failed the same "
                f"check ({check}). {_likely_cause(check, lang)} "
                "Finished files and chunks are kept."
            )


def _checks(report: ChunkReport) -> set[str]:
    """The checks a chunk's answers failed, numbers left out."""
    kinds = {" ".join(_DIGITS.sub("", p).split()) for p in report.problems}
    return kinds - {"failed its checks", ""}


def _likely_cause(check: str, lang: str) -> str:
    name = languages.name(lang)
    if check.startswith("no ") and check.endswith("script in the answer"):
        return f"The model answers without any {name} script: is it able to write {name}?"
    if check == "answer echoes the source":
        return f"The model repeats the text instead of translating it: can it write {name}?"
    if check.startswith("placeholder"):
        return (
            "The model drops the ⟦n⟧ markers that stand for code and links: "
            "try a larger or instruction-tuned model."
        )
    if check in ("repetition loop", "the model did not stop"):
        return "The model repeats itself until the token limit: try a larger model."
    return "The model's answers do not pass this check: try a larger model."


# ------------------------------------------------------------------------ the loop

T = TypeVar("T")

# Seconds a stopped run waits for the loop to cancel what is in flight and close
# its connections, before it leaves the (daemon) loop thread behind.
_STOP_GRACE = 2.0


class ChunkLoop:
    """One event-loop thread that runs the chunks, ``size`` at a time.

    ``size`` worker coroutines take the submitted calls in the order they came
    (job order), so the requests in flight never exceed the slots, memory stays
    bounded, and files finish in order. A backend with an async side (the HTTP
    ones) is awaited on the loop: hundreds of requests in flight cost one thread.
    One without (the embedded model, scripted test backends) runs on ``size``
    daemon threads (``Workers``): one for the embedded model's single slot.

    The main thread submits and waits on the returned futures; it assembles and
    writes the files, the loop writes nothing but the memory. On failure (Ctrl-C,
    SIGTERM, ``FailFast``) ``with`` cancels what is in flight, closes the
    connections within ``_STOP_GRACE`` seconds and does not wait for answers
    that would be thrown away; the loop thread is a daemon, like the workers.
    """

    def __init__(self, size: int, backend: Backend) -> None:
        self._async = async_side(backend)
        self._threads: Workers | None = None
        self.ask: Ask
        if self._async is not None:
            self.ask = self._async.atranslate
        else:
            threads = self._threads = Workers(size)
            translate = backend.translate

            async def ask(request: Request) -> Result:
                return await asyncio.wrap_future(threads.submit(translate, request))

            self.ask = ask
        self._queue: asyncio.Queue[tuple[Future[Any], Callable[[], Awaitable[Any]]]]
        self._queue = asyncio.Queue()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="chunk-loop", daemon=True
        )
        self._thread.start()
        self._workers = self._call(self._start(size)).result()

    def submit(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> Future[T]:
        """Queue ``await fn(*args)``; a worker coroutine runs it in its turn."""
        future: Future[T] = Future()
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (future, lambda: fn(*args)))
        return future

    async def _start(self, size: int) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._work(), name=f"chunk-{i}") for i in range(size)]

    async def _work(self) -> None:
        while True:
            future, call = await self._queue.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(await call())
            except asyncio.CancelledError as exc:
                future.set_exception(exc)
                raise
            except BaseException as exc:
                future.set_exception(exc)

    async def _stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._async is not None:
            await self._async.aclose()
        await self._loop.shutdown_asyncgens()

    def _call(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    def __enter__(self) -> ChunkLoop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            self._call(self._stop()).result(timeout=None if exc_type is None else _STOP_GRACE)
        except concurrent.futures.TimeoutError:
            return  # the loop is left behind, as a daemon: nothing it does is written
        finally:
            if self._threads is not None:
                self._threads.__exit__(exc_type)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class Workers:
    """Daemon threads that run blocking calls (a backend without an async side);
    ``with`` waits for them only on success.

    Not ThreadPoolExecutor: its threads are joined at interpreter exit, so after
    Ctrl-C or SIGTERM the process would wait for the request in flight, minutes
    on a local model, for an answer it throws away. Workers write no files, and
    each finished chunk is already in the memory, so leaving one behind loses
    nothing and cannot leave a half-written output.
    """

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None]
        self._queue = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"blocking-{i}", daemon=True)
            for i in range(size)
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

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        for _ in self._threads:
            self._queue.put(None)
        if exc_type is None:
            for thread in self._threads:
                thread.join()


def submit(
    loop: ChunkLoop, executor: Executor, jobs: Sequence[FileJob]
) -> dict[int, list[Future[list[ChunkReport]]]]:
    """Queue every job's chunks on ``loop``; returns each job's futures by ``id(job)``.

    With previous-chunk context each chunk sees the one before it, so a file's
    chunks go in order through one worker coroutine; files still run side by side.
    """
    executor.ask = loop.ask
    futures: dict[int, list[Future[list[ChunkReport]]]] = {}
    for job in jobs:
        if not job.chunks:
            continue
        if executor.cfg.translate.previous_chunk_context:
            futures[id(job)] = [loop.submit(executor.run_chunks, job, job.chunks)]
        else:
            futures[id(job)] = [loop.submit(executor.run_chunks, job, [c]) for c in job.chunks]
    return futures


# ------------------------------------------------------------------ one request, one answer


def build_request(
    cfg: Config,
    opts: RunOptions,
    system: str,
    pieces: Sequence[Piece],
    lang: str,
    *,
    strict: bool = False,
    context: tuple[str, str] | None = None,
) -> Request:
    """The request for ``pieces``, as a live run sends it (and ``batch export`` writes it)."""
    t = cfg.translate
    system = system.replace("{target}", languages.name(lang))
    if strict:
        system += (
            "\nYour previous answer was rejected. Translate ALL of the text, nothing else; "
            "keep the same number of paragraphs and every ⟦n⟧ marker."
        )
    glossary = tuple(dict.fromkeys(e for p in pieces for e in p.glossary))
    prompt = prompts.Prompt(
        system=system,
        text=chunks.join_pieces([p.protected.text for p in pieces]),
        source_name=languages.name(opts.source),
        target_name=languages.name(lang),
        examples=prompts.examples_for(opts.source, lang),
        context=context,
        glossary=glossary,
        guidance=" ".join(dict.fromkeys(p.note for p in pieces if p.note)),
    )
    source_tokens = sum(p.tokens for p in pieces)
    return Request(
        prompt=prompt,
        max_tokens=int(source_tokens * t.max_output_ratio) + 64,
        temperature=0.0 if strict else t.temperature,
        top_p=t.top_p,
        seed=t.seed,
        estimated_prompt_tokens=estimate_prompt_tokens(prompt),
    )


def check_piece(
    protected: Protected,
    answer: str,
    *,
    block: str,
    source_lang: str,
    target_lang: str,
    prompt: prompts.Prompt,
    keep_lines: bool = False,
) -> list[str]:
    """Every check of one piece's answer (``prompt`` asked for it), placeholders
    restored last: what a live run and ``batch import`` both apply."""
    problems = validate.check_segment(
        protected.text,
        answer,
        block=block,
        source_lang=source_lang,
        target_lang=target_lang,
        keep_lines=keep_lines,
        prompt=validate.prompt_phrases(prompt.system, prompt.source_name, prompt.target_name),
    )
    if not problems:
        try:
            protect.restore(answer, protected)
        except ValidationFailed as exc:
            problems = exc.problems
    return problems
