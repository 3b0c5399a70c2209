"""Throughput of split + protect + restore + render/join over the TiDB pages.

Not a test: run ``python tests/bench_segments.py``. Reports the best of several
rounds, in wall-clock and CPU time (the CPU figure is steadier on a busy machine).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import protect, segments

# The copy in tests/data/ (see its README.md), so the script runs from any checkout.
PAGES = Path(__file__).resolve().parent / "data" / "tidb-operator-docs" / "en"


def round_trip(docs: list[str]) -> None:
    for doc in docs:
        parts = []
        for segment in segments.split(doc):
            if segment.kind == "prose":
                protected = protect.protect(segment.content)
                translated = protect.restore(protected.text, protected)
                parts.append(segments.render(segment, translated))
            else:
                parts.append(segment.source)
        assert "".join(parts) == doc


def best(run: Callable[[], None], rounds: int, cold: bool) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(rounds):
        if cold:
            protect._analyse.cache_clear()
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall = min(wall, time.perf_counter() - start_wall)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def main() -> None:
    if not PAGES.is_dir():
        sys.exit(f"test data missing: {PAGES} (it ships in tests/data/; see its README.md)")
    docs = [path.read_text(encoding="utf-8") for path in sorted(PAGES.rglob("*.md"))]
    size = sum(len(doc.encode()) for doc in docs) / 1e6
    print(f"{len(docs)} pages, {size:.2f} MB")
    cases: list[tuple[str, Callable[[], None], bool]] = [
        ("split+protect+restore+join, cold cache", lambda: round_trip(docs), True),
        ("split+protect+restore+join, warm cache", lambda: round_trip(docs), False),
        (
            "markdown-it block parse alone",
            lambda: [segments._BLOCK_MD.parse(d) for d in docs],
            True,
        ),
    ]
    for label, run, cold in cases:
        wall, cpu = best(run, 7, cold)
        print(f"{label}: {size / wall:.2f} MB/s wall, {size / cpu:.2f} MB/s CPU")


if __name__ == "__main__":
    main()
