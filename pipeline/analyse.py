"""Analyse document bodies: the one block parse, the segments, each prose
segment's protected text, and the source structure the whole-document check
compares against. Pure work on text, the CPU-heaviest part of a run without
the model: a large run spreads it over worker processes.

``analyse()`` does one body; ``analyse_all()`` does many and yields the
results in the order given, from ``processes`` forked workers when the run is
large enough to pay for them (``[files] processes``), else in this process.
Either way the results are the same objects: the workers run ``analyse()``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Generator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

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
    ``processes`` is 1; else ``processes``, or with 0 one per usable core."""
    if processes == 1 or len(requests) < PARALLEL_MIN_BODIES:
        return 0
    if sum(len(r.text) for r in requests) < PARALLEL_MIN_BYTES:
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
    (by default ``workers_for(requests, processes)``), none meaning here."""
    if workers is None:
        workers = workers_for(requests, processes)
    if not workers:
        yield from map(analyse, requests)
        return
    done = 0
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_signals
    )
    try:
        chunksize = max(1, min(8, len(requests) // (workers * 8)))
        for analysis in pool.map(_in_worker, requests, chunksize=chunksize):
            yield analysis
            done += 1
    except BrokenProcessPool:
        # A worker died (killed, out of memory): the rest is done here, where a
        # real error in some body surfaces as it would without workers.
        yield from map(analyse, requests[done:])
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _in_worker(request: Request) -> Analysis:
    # Sent by name; the worker, a fork of this process, calls what ``analyse``
    # names here.
    return analyse(request)


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: the main process decides what it
    # means, and a worker never prints a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
