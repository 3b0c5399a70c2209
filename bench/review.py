"""The review page for a big site (issue 16): 1,000 generated documents are
translated (scripted answers, so the figure measures the page, not a model),
then the page is built from the manifest and the memory and opened in headless
Chromium from ``file://``.

Reported: the time to build the page, its size, and the load time in the
browser (navigation start until the script has drawn the file list and the
first file, ``performance.now()`` at that point; the worst of three). Without Chromium and
selenium the load time is n/a, with a note.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import browser, corpus
from bench.common import Context, Figure, load_config
from pipeline import options, review
from pipeline.config import Config
from pipeline.run import run as run_pipeline
from pipeline.testing import ScriptedBackend, shout

NAME = "review"
TITLE = "Review page"
SIZES = {"tiny": {"documents": 20}, "quick": {"documents": 1000}, "full": {"documents": 1000}}
TARGET_SECONDS = 2.0


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params={**size, "document_bytes": 2000})
    work = ctx.fresh("review")
    corpus.small_documents(work / "input", size["documents"])
    cfg = load_config(work / "memory.sqlite")
    opts = options.RunOptions(
        root=work / "input",
        targets=("de",),
        source="en",
        backend="ollama",
        model="scripted",
        memory_path=options.memory_path(cfg),
        out=work / "out",
    )
    report = _translate(cfg, opts)
    started = time.perf_counter()
    page = review.build(cfg, opts, report=report)
    built = time.perf_counter() - started
    path = work / "review.html"
    size_bytes = review.write(path, page)
    fig.add(f"build the page, {len(page.files)} files", built, "s")
    fig.add("pieces on the page", page.totals["pieces"])
    fig.add("page size", round(size_bytes / 1e6, 2), "MB")
    load, note = _load_seconds(path)
    fig.add(
        "open in headless Chromium (file://)",
        load,
        "s",
        target=f"< {TARGET_SECONDS:.0f} s",
        ok=None if load is None else load < TARGET_SECONDS,
    )
    if note:
        fig.notes.append(note)
    fig.data = {
        "files": len(page.files),
        "pieces": page.totals["pieces"],
        "build_seconds": round(built, 3),
        "bytes": size_bytes,
        "load_seconds": None if load is None else round(load, 3),
    }
    return fig


def _translate(cfg: Config, opts: options.RunOptions) -> dict[str, Any]:
    backend = ScriptedBackend(shout, record=False)
    return run_pipeline(cfg, opts, backend_factory=backend.factory).details()


def _load_seconds(page: Path) -> tuple[float | None, str]:
    """Seconds from navigation to the page drawn, in headless Chromium."""
    why = browser.missing()
    if why:
        return None, f"load time not measured: {why}"
    with browser.chromium() as driver:
        times = []
        for _ in range(3):  # the worst of three loads is reported
            driver.get(page.resolve().as_uri())
            ms = driver.execute_script("return window.reviewReadyMs || null")
            if ms is None:
                return None, "the page did not finish drawing"
            times.append(ms / 1000)
        return max(times), f"load times {', '.join(f'{t:.3f}' for t in times)} s"
