"""Figure 5: does the pipeline keep N server slots busy?

A local fake Ollama (``bench.server``) answers every request after a fixed delay
and serves at most ``slots`` requests at once. The real orchestrator (Ollama
backend, real HTTP) translates the same documents, one chunk each, at
``--concurrency`` 1, 2 and 4, each time with a fresh memory; throughput is
chunks per second of the whole run, reported relative to concurrency 1. A last
run at concurrency 4 against a one-slot server shows that extra requests then
only queue, as with Ollama's default ``OLLAMA_NUM_PARALLEL=1``.
"""

from __future__ import annotations

from pathlib import Path

from bench.backends import shout
from bench.common import Context, Figure, run_pipeline
from bench.server import FakeOllama, serve

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


# (slot levels, server delay in seconds, rounds of N documents) per mode.
SCALING: dict[str, tuple[tuple[int, ...], float, int]] = {
    "tiny": ((1, 4), 0.2, 4),
    "quick": ((1, 4, 16), 0.5, 6),
    "full": ((1, 4, 16, 64), 1.0, 8),
}


def _scaling(ctx: Context, fig: Figure, work: Path) -> None:
    """N slots on one server, then the same N split over two servers (``--host``
    twice): chunks per second against the ideal N / delay. Each level translates
    ``rounds`` x N one-chunk documents, so every run lasts about ``rounds`` delays."""
    levels, delay, rounds = ctx.pick(SCALING)
    scaling: dict[str, float] = {}
    for level in levels:
        source = work / f"scale-{level}" / "input"
        source.mkdir(parents=True)
        for n in range(rounds * level):
            (source / f"doc-{n:04d}.md").write_text(_DOC.format(n=n), encoding="utf-8")
        ideal = level / delay
        with serve(shout, delay=delay, slots=level) as one:
            rate = _rate(one, source, work / f"scale-{level}" / "one", level)
        scaling[f"{level} slots, one server"] = rate
        fig.add(
            f"{level} slots on one server: chunks/s vs ideal {ideal:g}",
            rate / ideal,
            "of ideal",
            target=f"≥ {EFFICIENCY}",
            ok=rate / ideal >= EFFICIENCY,
        )
        if level < 2:
            continue
        half = level // 2
        with serve(shout, delay=delay, slots=half) as a, serve(shout, delay=delay, slots=half) as b:
            rate = _rate(
                a,
                source,
                work / f"scale-{level}" / "two",
                level,
                hosts=[f"{a.url}#slots={half}", f"{b.url}#slots={half}"],
            )
            share = a.chats / max(1, a.chats + b.chats)
        scaling[f"{level} slots, two servers"] = rate
        fig.add(
            f"{level} slots over two servers ({half} each): chunks/s vs ideal {ideal:g}",
            rate / ideal,
            "of ideal",
            target=f"≥ {EFFICIENCY}",
            ok=rate / ideal >= EFFICIENCY,
        )
        fig.add(f"{level} slots over two servers: share of the first", share, "", target="≈ 0.5")
    fig.data["scaling_chunks_per_second"] = scaling
    fig.notes.append(
        f"Scaling: server delay {delay:g} s per request, {rounds} x N one-chunk documents "
        "per level; one worker thread per request in flight."
    )


def _rate(
    server: FakeOllama, source: Path, work: Path, level: int, hosts: list[str] | None = None
) -> float:
    options: dict[str, object] = {"host": server.url, "keep_alive": "30m"}
    if hosts:
        options["endpoints"] = hosts
    report = run_pipeline(
        source,
        work / "out",
        "de",
        memory_path=work / "memory.sqlite",
        backend="ollama",
        model=server.model,
        concurrency=level,
        backend_options=options,
    )
    if report.requests != report.chunks or report.kept:
        raise RuntimeError(
            f"concurrency {level}: {report.requests} requests for {report.chunks} chunks, "
            f"{report.kept} kept; the fake server should pass every check"
        )
    return report.chunks / report.seconds
