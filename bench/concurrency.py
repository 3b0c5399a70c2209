"""Figure 5: does the pipeline keep N server slots busy?

A local fake Ollama (``bench.server``) answers every request after a fixed delay
and serves at most ``slots`` requests at once. The real orchestrator (Ollama
backend, real HTTP) translates the same documents, one chunk each, at
``--concurrency`` 1, 2 and 4, each time with a fresh memory; throughput is
chunks per second of the whole run, reported relative to concurrency 1. A last
run at concurrency 4 against a one-slot server shows that extra requests then
only queue, as with Ollama's default ``OLLAMA_NUM_PARALLEL=1``.

Then the scaling: N = 1, 4, 16, 64 (and 256 in the full run) slots on one
server, and N/2 on each of two, over both wire formats (Ollama, OpenAI), against
the ideal N / delay, with the process's peak thread count and memory: every
request goes out from one event-loop thread, so the threads must not grow with N.
"""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path

from bench.backends import shout
from bench.common import Context, Figure, run_pipeline
from bench.server import FakeOllama, serve
from pipeline.atomic import WRITE_THREADS

NAME = "concurrency"
TITLE = "Concurrency"
SIZES = {
    "tiny": {"documents": 8, "delay": 0.02, "slots": 4},
    "quick": {"documents": 24, "delay": 0.1, "slots": 4},
    "full": {"documents": 64, "delay": 0.1, "slots": 4},
}
LEVELS = (1, 2, 4)
# "Close to N": at least this share of the ideal speed-up.
EFFICIENCY = 0.8

_DOC = """# Section {n}

Paragraph {n} of the concurrency benchmark: the operator schedules a backup of the
cluster every night, keeps seven copies, and removes the oldest one afterwards.
"""


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    documents, delay, slots = int(size["documents"]), float(size["delay"]), int(size["slots"])
    fig = Figure(NAME, TITLE, params=dict(size))
    work = ctx.fresh("concurrency")
    source = work / "input"
    source.mkdir()
    for n in range(documents):
        (source / f"doc-{n:03d}.md").write_text(_DOC.format(n=n), encoding="utf-8")
    rates: dict[str, float] = {}
    with serve(shout, delay=delay, slots=slots) as server:
        for level in LEVELS:
            rates[str(level)] = _rate(server, source, work / f"c{level}", level)
    with serve(shout, delay=delay, slots=1) as single:
        one_slot = _rate(single, source, work / "one-slot", 4)
    base = rates["1"]
    fig.data = {"chunks_per_second": {**rates, "4 on one slot": one_slot}}
    for level in LEVELS[1:]:
        speedup = rates[str(level)] / base
        want = min(level, slots)
        fig.add(
            f"concurrency {level} / 1 ({slots}-slot server)",
            speedup,
            "x",
            target=f"≈ {want} (≥ {want * EFFICIENCY:.1f})",
            ok=speedup >= want * EFFICIENCY,
        )
    fig.add("concurrency 4 / 1 (1-slot server)", one_slot / base, "x", target="≈ 1")
    fig.add("chunks per second at concurrency 1", base, "chunk/s")
    fig.notes.append(
        f"{documents} one-chunk documents, server delay {delay * 1000:.0f} ms "
        "per request; throughput over the whole run (start-up included)."
    )
    _scaling(ctx, fig, work)
    return fig


# (slot levels, server delay in seconds, rounds of N chunks) per mode.
SCALING: dict[str, tuple[tuple[int, ...], float, int]] = {
    "tiny": ((1, 4), 0.2, 4),
    "quick": ((1, 4, 16, 64), 1.0, 3),
    "full": ((1, 4, 16, 64, 256), 2.0, 8),
}
# Chunks per document in the scaling runs: each paragraph is a chunk of its own
# (translate.chunk_tokens below a paragraph). Real documents have several; with
# one each, the run would measure the writer's two fsyncs per file instead.
PER_DOCUMENT = 4
_ONE_PARAGRAPH_PER_CHUNK = {"translate": {"chunk_tokens": 48}}
# Both wire formats: Ollama's native API and the OpenAI API (one fake server
# speaks both, on one thread).
WIRES = ("ollama", "openai")


def _scaling(ctx: Context, fig: Figure, work: Path) -> None:
    """N slots on one server, then the same N split over two servers (``--host`` /
    ``--base-url`` twice), over both wire formats: chunks per second against the
    ideal N / delay, with the process's peak thread count and resident memory
    (sampled) and its CPU time. Each level translates ``rounds`` x N one-chunk
    chunks, ``PER_DOCUMENT`` to a document, so every run lasts about ``rounds``
    delays."""
    levels, delay, rounds = ctx.pick(SCALING)
    scaling: dict[str, dict[str, float]] = {}
    for level in levels:
        source = work / f"scale-{level}" / "input"
        source.mkdir(parents=True)
        for n in range(-(-rounds * level // PER_DOCUMENT)):
            text = "".join(_DOC.format(n=n * PER_DOCUMENT + k) for k in range(PER_DOCUMENT))
            (source / f"doc-{n:04d}.md").write_text(text, encoding="utf-8")
        ideal = level / delay
        for wire in WIRES:
            for servers in (1, 2) if level >= 2 else (1,):
                where = "one server" if servers == 1 else "two servers"
                label = f"{level} slots, {wire}, {where}"
                point = _point(source, work / f"scale-{level}" / f"{wire}-{servers}", level,
                               delay=delay, wire=wire, servers=servers)  # fmt: skip
                scaling[label] = point
                fig.add(
                    f"{label}: chunks/s vs ideal {ideal:g}",
                    point["of_ideal"],
                    "of ideal",
                    target=f"≥ {EFFICIENCY}",
                    ok=point["of_ideal"] >= EFFICIENCY,
                )
                added = point["peak_threads"] - point["threads_before"]
                fig.add(
                    f"{label}: peak threads (process)",
                    point["peak_threads"],
                    "",
                    target=f"≤ {point['threads_before']:.0f} + {_EXTRA_THREADS}",
                    ok=added <= _EXTRA_THREADS,
                )
                if servers == 2:
                    share = point["first_server_share"]
                    fig.add(f"{label}: share of the first", share, "", target="≈ 0.5")
    fig.data["scaling"] = scaling
    fig.notes.append(
        f"Scaling: server delay {delay:g} s per request, {rounds} x N chunks per level in "
        f"documents of {PER_DOCUMENT} chunks, all requests from one event-loop thread; "
        "the fake servers run in this process, one thread each (counted in the peak "
        "threads, with the sampler)."
    )


def _point(
    source: Path, work: Path, level: int, *, delay: float, wire: str, servers: int
) -> dict[str, float]:
    """One run at ``level`` slots over ``servers`` fake servers, measured."""
    slots = level // servers
    with ExitStack() as stack:
        up = [stack.enter_context(serve(shout, delay=delay, slots=slots)) for _ in range(servers)]
        urls = [u.url if wire == "ollama" else u.openai_url for u in up]
        endpoints = [f"{u}#slots={slots}" for u in urls] if servers > 1 else None
        with Sampler() as sampled:
            rate = _rate(
                up[0],
                source,
                work,
                level,
                wire=wire,
                endpoints=endpoints,
                overrides=_ONE_PARAGRAPH_PER_CHUNK,
            )
        chunks = sum(u.chats for u in up)
        return {
            "chunks_per_second": rate,
            "of_ideal": rate * delay / level,
            "chunks_per_cpu_second": chunks / max(sampled.cpu_seconds, 1e-9),
            "cpu_seconds": sampled.cpu_seconds,
            "peak_threads": sampled.peak_threads,
            # Of the peak, the background writer's (a fixed pool, not per slot).
            "peak_writer_threads": sum(n.startswith("write") for n in sampled.peak_names),
            "threads_before": sampled.threads_before,
            "peak_rss_mib": sampled.peak_rss / 2**20,
            "server_max_in_flight": sum(u.max_in_flight for u in up),
            "first_server_share": up[0].chats / max(1, chunks),
        }


# Threads a run may add, whatever its slot count: the event loop, the sampler,
# and the background writer's threads (at most pipeline.atomic.WRITE_THREADS,
# one where syncfs batches the writes).
_EXTRA_THREADS = 2 + WRITE_THREADS


class Sampler:
    """Samples the process's thread count and resident memory every 10 ms while
    the ``with`` block runs, and its CPU time over the block."""

    def __init__(self) -> None:
        self.threads_before = 0
        self.peak_threads = 0
        self.peak_names: list[str] = []
        self.peak_rss = 0
        self.cpu_seconds = 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="sampler", daemon=True)

    def _sample(self) -> None:
        while True:
            if threading.active_count() > self.peak_threads:
                self.peak_threads = threading.active_count()
                self.peak_names = sorted(t.name for t in threading.enumerate())
            self.peak_rss = max(self.peak_rss, _rss())
            if self._done.wait(0.01):
                return

    def __enter__(self) -> Sampler:
        self.threads_before = threading.active_count()
        self._cpu = time.process_time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.cpu_seconds = time.process_time() - self._cpu


def _rss() -> int:
    """Resident memory of this process now, in bytes (Linux /proc; else the peak so far)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rate(
    server: FakeOllama,
    source: Path,
    work: Path,
    level: int,
    *,
    wire: str = "ollama",
    endpoints: list[str] | None = None,
    overrides: Mapping[str, Mapping[str, object]] | None = None,
) -> float:
    options: dict[str, object]
    if wire == "ollama":
        options = {"host": server.url, "keep_alive": "30m"}
    else:
        options = {"base_url": server.openai_url, "stream": True}
    if endpoints:
        options["endpoints"] = endpoints
    report = run_pipeline(
        source,
        work / "out",
        "de",
        memory_path=work / "memory.sqlite",
        backend=wire,
        model=server.model,
        concurrency=level,
        backend_options=options,
        overrides=overrides,
    )
    if report.requests != report.chunks or report.kept:
        raise RuntimeError(
            f"concurrency {level}: {report.requests} requests for {report.chunks} chunks, "
            f"{report.kept} kept; the fake server should pass every check"
        )
    return report.chunks / report.seconds
