"""Figure 2: everything but the model, in MB/s and peak memory.

The real orchestrator (read, split, protect, memory lookup, pack, validate,
restore, join, check the whole document, atomic write, manifest) runs over the
140 TiDB pages and over a generated Markdown corpus, with a scripted backend that
answers at once. Each corpus runs in a child process of its own, so its peak RSS
(``resource.getrusage``) is that run's alone; the RSS of the same process after
its imports and before the run is reported beside it.

The scripted backend upper-cases the words it gets (``bench.backends.shout``):
the answer has the input's length, markup and placeholders. An unchanged echo
would be rejected by the echo check and measure the retry path instead.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import corpus
from bench.common import TIDB_EN, Context, Figure, child_env, copy_files, mb, pages

NAME = "throughput"
TITLE = "Non-model throughput"
SIZES = {
    "tiny": {"pages": 3, "corpus_bytes": 60_000},
    "quick": {"pages": 140, "corpus_bytes": 1_000_000},
    "full": {"pages": 140, "corpus_bytes": 10_000_000},
}
TARGET_MB_S = 5.0
TARGET_RSS_MB = 300.0
_HOT_SPOTS = 12


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params=dict(size))
    tidb = ctx.fresh("throughput/tidb")
    copy_files(pages(TIDB_EN, size["pages"]), tidb, TIDB_EN)
    generated = ctx.fresh("throughput/generated")
    corpus.markdown_corpus(generated, size["corpus_bytes"])
    for label, folder in ((f"{size['pages']} TiDB pages", tidb), ("generated corpus", generated)):
        result = measure(folder, ctx.fresh(f"throughput/{folder.name}-run"), profile=ctx.profile)
        key = "tidb" if folder is tidb else "generated"
        fig.data[key] = result
        rate = result["stages_mb_per_s"]
        fig.add(
            f"{label} ({mb(result['bytes']):.1f} MB): read+split+protect+restore+join+write, MB/s",
            rate,
            "MB/s",
            target=f"≥ {TARGET_MB_S:g}",
            ok=rate >= TARGET_MB_S,
        )
        fig.add(
            f"{label}: the same per CPU second (this process's own time; the machine is shared)",
            result["stages_mb_per_cpu_s"],
            "MB/s",
        )
        fig.add(
            f"{label}: the same less the time it waited for the writer threads, MB/s",
            result["stages_in_memory_mb_per_s"],
            "MB/s",
        )
        fig.add(
            f"{label}: writing each file's temporary (on the writer thread, in the "
            "background; its batch's sync and rename follow), ms per file",
            result["write_ms_per_file"],
            "ms",
        )
        fig.add(
            f"{label}: the whole run (plus checks, memory, manifest, fsync), MB/s",
            result["mb_per_s"],
            "MB/s",
        )
        fig.add(
            f"{label}: peak RSS (after imports: {result['rss_after_imports_mb']:.0f} MB)",
            result["peak_rss_mb"],
            "MB",
            target=f"≤ {TARGET_RSS_MB:g}",
            ok=result["peak_rss_mb"] <= TARGET_RSS_MB,
        )
        if result["worker_peak_rss_mb"]:
            fig.add(
                f"{label}: peak RSS of the largest analysis worker (a fork: pages it "
                "shares with this process count in both)",
                result["worker_peak_rss_mb"],
                "MB",
            )
        if result["kept"] or result["failed"]:
            fig.notes.append(
                f"{label}: {result['kept']} pieces kept in the source language, "
                f"{result['failed']} files failed (the scripted backend should pass every check)"
            )
    fig.notes.append(
        "MB/s: source bytes / wall time (the whole run: of run() less the scripted backend's "
        "own time). Each document's blocks are parsed once (markdown-it-py, pure Python) for "
        "segmentation and the source side of the whole-document check, in forked worker "
        "processes (pipeline.analyse, one per core) for both corpora; the output side and "
        "each segment's checks parse again. The write creates one new file per page on "
        "a background thread (pipeline.atomic.BackgroundWriter) while the main thread goes "
        "on with the next page; the files handed over while it wrote the last ones are "
        "synced with one syncfs and renamed together (Linux 5.8+); per CPU second counts "
        "this process's threads, not the workers."
    )
    return fig


def measure(folder: Path, workdir: Path, *, profile: bool = False) -> dict[str, Any]:
    """Run the pipeline over ``folder`` in a child process; its numbers as a dict."""
    args = [
        sys.executable,
        "-m",
        "bench.throughput",
        "--child",
        str(folder),
        str(workdir / "out"),
        str(workdir / "memory.sqlite"),
    ]
    if profile:
        args.append("--profile")
    # The corpora were written just before (10 MB in the full run): flushed
    # now, so that the run's own syncs (syncfs flushes the whole file system)
    # wait for its files only, not for the harness's. (Unix only.)
    if hasattr(os, "sync"):
        os.sync()
    done = subprocess.run(
        args, env=child_env(workdir / "cache"), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the throughput child failed: {last}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    # ru_maxrss is in KiB on Linux; of RUSAGE_CHILDREN, the largest ended child.
    return resource.getrusage(who).ru_maxrss * 1024 / 1_000_000


def _child(folder: Path, out: Path, memory_path: Path, profile: bool) -> dict[str, Any]:
    from bench.backends import ScriptedBackend, shout
    from bench.common import run_pipeline

    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    files = sum(1 for p in folder.rglob("*.md"))
    backend = ScriptedBackend(shout, record=False)
    rss_before = _rss_mb()
    # The stages the target names, in a fresh process (no warm caches): read,
    # split, protect, restore, join, atomic write. The full run below adds the
    # checks, the memory and the manifest.
    cpu_started = time.process_time()
    stages_seconds, write_seconds, disk_seconds = _stages(folder, out.parent / "stages")
    # On a shared machine the wall time counts other processes' turns too.
    stages_cpu = time.process_time() - cpu_started
    profiles: list[cProfile.Profile] = []
    main_profile: cProfile.Profile | None = None
    if profile:
        # Chunks run on worker threads, which the main thread's profiler misses:
        # each new thread starts a profiler of its own on its first event.
        lock = threading.Lock()

        def start_thread_profile(frame: Any, event: str, arg: Any) -> None:
            prof = cProfile.Profile()
            with lock:
                profiles.append(prof)
            prof.enable()

        threading.setprofile(start_thread_profile)
        main_profile = cProfile.Profile()
        profiles.append(main_profile)
        main_profile.enable()
    started = time.perf_counter()
    report = run_pipeline(
        folder,
        out,
        "de",
        memory_path=memory_path,
        backend="ollama",
        model="bench",
        factory=backend.factory,
    )
    seconds = time.perf_counter() - started
    if main_profile is not None:
        main_profile.disable()
        threading.setprofile(None)
    non_model = max(seconds - backend.seconds, 1e-9)
    result: dict[str, Any] = {
        "bytes": size,
        "files": files,
        "seconds": round(seconds, 3),
        "backend_seconds": round(backend.seconds, 4),
        "mb_per_s": round(size / non_model / 1_000_000, 3),
        "stages_seconds": round(stages_seconds, 3),
        "stages_mb_per_s": round(size / stages_seconds / 1_000_000, 3),
        "stages_write_seconds": round(write_seconds, 3),
        "stages_cpu_seconds": round(stages_cpu, 3),
        "stages_mb_per_cpu_s": round(size / max(stages_cpu, 1e-9) / 1_000_000, 3),
        "stages_in_memory_mb_per_s": round(
            size / max(stages_seconds - write_seconds, 1e-9) / 1_000_000, 3
        ),
        "write_ms_per_file": round(disk_seconds / max(files, 1) * 1000, 2),
        "requests": backend.count,
        "chunks": report.chunks,
        "kept": report.kept,
        "failed": report.count("failed"),
        "written": report.count("written"),
        "rss_after_imports_mb": round(rss_before, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "worker_peak_rss_mb": round(_rss_mb(resource.RUSAGE_CHILDREN), 1),
    }
    if profile:
        result["hot_spots"] = _hot_spots(profiles, seconds)
    return result


def _stages(folder: Path, out: Path) -> tuple[float, float, float]:
    """Seconds for read + split + protect + restore + join + write of every file,
    the translation being the protected text itself (what an identity model
    returns); the seconds the write held up the main thread; and the seconds
    the writes themselves took, on the writer threads.

    As the orchestrator does it: every file is read first, the bodies are
    analysed by ``pipeline.analyse.analyse_all`` (the planner's call: parse,
    split, protect, and the source structure the whole-document check keeps; in
    worker processes for a run this size), and each file is written
    atomically on the background threads of ``pipeline.atomic.BackgroundWriter``
    (what ``pipeline.output.Writer`` runs on) while the next is assembled. The
    planner's memory lookup and the output side of the whole-document check
    are left to the whole-run figure.
    """
    from pipeline import analyse, documents, protect, segments
    from pipeline.atomic import BackgroundWriter, write_atomic
    from pipeline.config import DEFAULTS
    from pipeline.run import fewer_collections

    waiting = 0.0
    writes: list[float] = []

    def timed_write(dest: Path, data: bytes) -> None:
        write_started = time.perf_counter()
        write_atomic(dest, data)
        writes.append(time.perf_counter() - write_started)

    started = time.perf_counter()
    with fewer_collections(), BackgroundWriter() as writer:  # as run() does
        paths = sorted(folder.rglob("*.md"))
        docs = [documents.decode(p.read_bytes(), name=p.name, markdown=True) for p in paths]
        requests = [analyse.Request(doc.text, doc.markdown) for doc in docs]
        analyses = analyse.analyse_all(requests, processes=DEFAULTS["files"]["processes"])
        futures = []
        for path, doc, analysis in zip(paths, docs, analyses, strict=True):
            parts = [
                seg.source
                if protected is None
                else segments.render(seg, protect.restore(protected.text, protected))
                for seg, protected in zip(analysis.segments, analysis.protected, strict=True)
            ]
            fm = doc.front_matter.raw if doc.front_matter else None
            data = documents.encode(doc, "".join(parts), fm)
            dest = out / path.relative_to(folder)
            submit_started = time.perf_counter()
            futures.append(writer.submit(dest, functools.partial(timed_write, dest, data)))
            waiting += time.perf_counter() - submit_started
        wait_started = time.perf_counter()
        for future in futures:
            future.result()
        waiting += time.perf_counter() - wait_started
    return time.perf_counter() - started, waiting, sum(writes)


def _hot_spots(profiles: list[cProfile.Profile], seconds: float) -> dict[str, Any]:
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]

    def name(key: tuple[str, int, str]) -> str:
        path, line, func = key
        short = path.split("site-packages/")[-1].split("/work/main/")[-1]
        return f"{short}:{line}({func})"

    rows = [(name(k), v[2], v[3]) for k, v in table.items()]  # (name, tottime, cumtime)
    ours = [r for r in rows if r[0].startswith("pipeline/")]
    by_cum = sorted(ours, key=lambda r: r[2], reverse=True)[:_HOT_SPOTS]
    by_self = sorted(rows, key=lambda r: r[1], reverse=True)[:_HOT_SPOTS]
    return {
        "note": "cProfile over the main thread and every chunk worker; times include "
        "profiling overhead, and worker time overlaps the main thread's",
        "wall_seconds": round(seconds, 3),
        "pipeline_by_cumulative": [
            {"function": n, "cumulative_s": round(c, 3)} for n, _, c in by_cum
        ],
        "all_by_self_time": [{"function": n, "self_s": round(t, 3)} for n, t, _ in by_self],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput")
    parser.add_argument("--child", nargs=3, metavar=("INPUT", "OUT", "MEMORY"), required=True)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    folder, out, memory_path = (Path(p) for p in args.child)
    print(json.dumps(_child(folder, out, memory_path, args.profile)))


if __name__ == "__main__":
    main()
