"""Benchmarks for translate-dir: the pipeline against the model's own speed and
against itself.

``python -m bench`` runs every figure (``--quick`` for a run under three minutes,
``--only NAME`` for one figure, ``--out FILE.json``), prints a Markdown table and
writes a JSON file with every figure, the date and the machine. Each module
below measures one figure; ``bench.common`` holds what they share.
"""

from __future__ import annotations

# Figure name -> module, in the order of the table (issue 9).
FIGURES: dict[str, str] = {
    "overhead": "bench.overhead",
    "throughput": "bench.throughput",
    "prompt": "bench.prompt_efficiency",
    "incremental": "bench.incremental",
    "concurrency": "bench.concurrency",
    "quality": "bench.quality",
    "fidelity": "bench.fidelity",
    "review": "bench.review",
    "calibration": "bench.calibration",
    "sites": "bench.sites",
}
# Not in the default set (a real model over many pages, tens of minutes):
# python -m bench.inline_audit --pages 20 --lang zh
