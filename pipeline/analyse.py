"""Analyse document bodies: the one block parse, the segments, each prose
segment's protected text, and the source structure the whole-document check
compares against. Pure work on text, the CPU-heaviest part of a run without
the model: a large run spreads it over worker processes.

``analyse()`` does one body; ``analyse_all()`` does many and yields the
results in the order given, from ``processes`` forked workers when the run is
large enough to pay for them (``[files] processes``), else in this process.
Either way the results are the same objects: the workers run ``analyse()``.
Equal bodies (one source for several target languages) are analysed once.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import operator
import os
import signal
import sys
import threading
from collections import Counter
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from pipeline import protect, segments, validate
from pipeline.sites import PLAIN, Site

__all__ = ["Analysis", "Request", "analyse", "analyse_all", "workers_for"]

# Below this many bytes in all, or this many bodies, forking workers costs
# more than it saves: the work is done here.
PARALLEL_MIN_BYTES = 256_000
PARALLEL_MIN_BODIES = 8
# Never more workers than this, however many cores: the main process still has
# to take in what they send back.
MAX_PROCESSES = 8


@dataclass(frozen=True)
class Request:
    """One body to analyse."""

    text: str
    markdown: bool
    site: Site = PLAIN  # the syntax the blocks are read with
    # What protection reads of the site (MDX, text parameters and attributes);
    # a plain-text file of a site is protected with the site's rules too.
    protect_site: Site = PLAIN
    do_not_translate: tuple[str, ...] = ()


@dataclass(frozen=True)
class Analysis:
    """A body cut into segments, each prose one with its protected text."""

    segments: tuple[segments.Segment, ...]
    protected: tuple[protect.Protected | None, ...]  # per segment; None for verbatim ones
    structure: validate.Structure | None  # Markdown only


def analyse(request: Request) -> Analysis:
    """Parse, split and protect one body."""
    parsed = segments.parse(request.text, site=request.site) if request.markdown else None
    cut = segments.split(request.text, markdown=request.markdown, parsed=parsed)
    protected = tuple(
        protect.protect(
            seg.content, do_not_translate=request.do_not_translate, site=request.protect_site
        )
        if seg.kind == "prose"
        else None
        for seg in cut
    )
    structure = validate.block_structure(parsed) if parsed is not None else None
    return Analysis(tuple(cut), protected, structure)


def workers_for(requests: Sequence[Request], processes: int) -> int:
    """How many worker processes ``analyse_all`` forks for these requests: 0
    (all done here) for a small run, where fork is unsafe or missing, or when
    ``processes`` is 1; else ``processes``, or with 0 one per usable core.
    Equal requests count once, as ``analyse_all`` analyses them once."""
    distinct, _ = _distinct(requests)
    return _workers_for_distinct(distinct, processes)


def _workers_for_distinct(distinct: Sequence[Request], processes: int) -> int:
    if processes == 1 or len(distinct) < PARALLEL_MIN_BODIES:
        return 0
    if sum(len(r.text) for r in distinct) < PARALLEL_MIN_BYTES:
        return 0
    # fork copies only the calling thread: a lock another thread holds would
    # stay held in the worker forever. Linux only: macOS's system libraries
    # are not fork-safe, and Windows has no fork.
    if not sys.platform.startswith("linux") or threading.active_count() > 1:
        return 0
    cores = len(os.sched_getaffinity(0))
    wanted = processes or cores
    return 0 if wanted < 2 else min(wanted, MAX_PROCESSES)


def analyse_all(
    requests: Sequence[Request], *, processes: int = 0, workers: int | None = None
) -> Generator[Analysis, None, None]:
    """``analyse()`` of each request, in order: on ``workers`` forked processes
    (by default ``workers_for(requests, processes)``), none meaning here.

    Equal requests (one source for several target languages) are analysed
    once and share the result, kept only until its last use."""
    distinct, order = _distinct(requests)
    if workers is None:
        workers = _workers_for_distinct(distinct, processes)
    analysed = _analyse_each(distinct, workers)
    if len(distinct) == len(requests):
        yield from analysed
        return
    uses = Counter(order)
    kept: dict[int, Analysis] = {}
    try:
        for index in order:
            # A distinct request's first use comes in order: the next analysed.
            analysis = kept[index] if index in kept else next(analysed)
            uses[index] -= 1
            if uses[index]:
                kept[index] = analysis
            else:
                kept.pop(index, None)
            yield analysis
    finally:
        analysed.close()


def _distinct(requests: Sequence[Request]) -> tuple[list[Request], list[int]]:
    """The requests with equal ones once, in first-use order, and for each
    request the index of its distinct one. Equal includes the ids a page's
    links target, which ``Site`` leaves out of its own equality."""
    index: dict[tuple[Request, frozenset[str] | None, frozenset[str] | None], int] = {}
    distinct: list[Request] = []
    order: list[int] = []
    for request in requests:
        key = (request, request.site.linked, request.protect_site.linked)
        found = index.setdefault(key, len(distinct))
        if found == len(distinct):
            distinct.append(request)
        order.append(found)
    return distinct, order


def _analyse_each(requests: Sequence[Request], workers: int) -> Generator[Analysis, None, None]:
    if not workers:
        yield from map(analyse, requests)
        return
    done = 0
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals
    )
    try:
        chunksize = max(1, min(8, len(requests) // (workers * 8)))
        for request, wire in zip(
            requests, pool.map(_in_worker, requests, chunksize=chunksize), strict=True
        ):
            yield _from_wire(request, wire)
            done += 1
    except BrokenProcessPool:
        # A worker died (killed, out of memory): the rest is done here, where a
        # real error in some body surfaces as it would without workers.
        yield from map(analyse, requests[done:])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _in_worker(request: Request) -> _Wire:
    # Sent by name; the worker, a fork of this process, calls what ``analyse``
    # names here.
    return _to_wire(analyse(request))


# --------------------------------------------------------------------------
# What a worker sends back: plain tuples, not the objects' own pickles. The
# segments join to the request's text, which this process has, so a segment's
# source travels as its length; its content is left out where it is the
# source less each line's prefix and suffix (nearly always), and a protected
# text equal to its content travels once; the structure is two plain tuples
# (``validate.Structure``). The 140 TiDB pages then pickle to 0.67 MB instead
# of 1.74 (three times their own size), in a third of the time.
# ``_from_wire(request, _to_wire(analysis)) == analysis`` always: the
# worker sends a field whenever leaving it out would not give it back.

_Wire = tuple[list[Any], "validate.Structure | None"]
# A segment's fields after its source, in the order Segment() takes them.
_AFTER_SOURCE = tuple(field.name for field in dataclasses.fields(segments.Segment))[1:]
_CONTENT = _AFTER_SOURCE.index("content")
_PREFIXES = _AFTER_SOURCE.index("line_prefixes")
_SUFFIXES = _AFTER_SOURCE.index("line_suffixes")
_after_source = operator.attrgetter(*_AFTER_SOURCE)
# A plain verbatim segment: its source, and every other field at its default.
_PLAIN_VERBATIM = _after_source(segments.Segment("", "verbatim"))


def _to_wire(analysis: Analysis) -> _Wire:
    items: list[Any] = []
    for segment, protected in zip(analysis.segments, analysis.protected, strict=True):
        fields = _after_source(segment)
        if fields == _PLAIN_VERBATIM and protected is None:
            items.append(len(segment.source))
            continue
        content = segment.content
        if (
            _derived_content(segment.source, segment.line_prefixes, segment.line_suffixes)
            == content
        ):
            fields = (*fields[:_CONTENT], None, *fields[_CONTENT + 1 :])
        protected_wire = None
        if protected is not None:
            text = None if protected.text == content else protected.text
            protected_wire = (text, protected.spans, protected.values)
        items.append((len(segment.source), fields, protected_wire))
    return items, analysis.structure


def _from_wire(request: Request, wire: _Wire) -> Analysis:
    items, structure = wire
    text = request.text
    cut: list[segments.Segment] = []
    protected: list[protect.Protected | None] = []
    start = 0
    for item in items:
        if isinstance(item, int):
            end = start + item
            cut.append(segments.Segment(text[start:end], *_PLAIN_VERBATIM))
            protected.append(None)
            start = end
            continue
        length, fields, protected_wire = item
        end = start + length
        source = text[start:end]
        content = fields[_CONTENT]
        if content is None:
            prefixes, suffixes = fields[_PREFIXES], fields[_SUFFIXES]
            if len(prefixes) == 1:  # nearly every segment: one line
                content = source[len(prefixes[0]) : length - len(suffixes[0])]
            else:
                content = _derived_content(source, prefixes, suffixes)
            fields = (*fields[:_CONTENT], content, *fields[_CONTENT + 1 :])
        cut.append(segments.Segment(source, *fields))
        if protected_wire is None:
            protected.append(None)
        else:
            protected_text, spans, values = protected_wire
            if protected_text is None:
                protected_text = content
            protected.append(protect.Protected(protected_text, spans, values))
        start = end
    if start != len(text):
        raise RuntimeError("an analysis worker sent segments that do not join to the text")
    return Analysis(tuple(cut), tuple(protected), structure)


def _derived_content(source: str, prefixes: tuple[str, ...], suffixes: tuple[str, ...]) -> str:
    """A prose segment's content as its source less each line's prefix and
    suffix; "" where the lines do not match up (the content is sent then)."""
    if len(prefixes) == 1:
        return source[len(prefixes[0]) : len(source) - len(suffixes[0])]
    lines = source.splitlines(keepends=True)
    if len(lines) != len(prefixes) or len(lines) != len(suffixes):
        return ""
    return "\n".join(
        line[len(prefix) : len(line) - len(suffix)]
        for line, prefix, suffix in zip(lines, prefixes, suffixes, strict=True)
    )


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: the main process decides what it
    # means, and a worker never prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
