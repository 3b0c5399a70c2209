"""Figure 1: how much longer a real run takes than the model's own work.

``translate-dir input/ --to zh --backend embedded --json`` runs as a subprocess
with a fresh translation memory (its own ``XDG_CACHE_HOME``). Its JSON summary
gives ``seconds`` (the run, from discovery to the last write), ``model_seconds``
(the sum of the backend's request times) and ``warmup_seconds`` (loading the
GGUF model, once per run). Three ratios:

- run without the model load / model seconds: what the pipeline adds around the
  requests (the target, ≤ 1.05);
- run / model seconds: the same with the one-off model load;
- process wall time / model seconds: also Python start-up and imports.
"""

from __future__ import annotations

import json
import shutil

from bench.backends import ScriptedBackend, to_zh
from bench.common import REPO, Context, Figure, child_env, cli_command, run_pipeline, run_timed

NAME = "overhead"
TITLE = "Overhead over the model"
TARGET = 1.05
TINY_DOC = """---
title: A tiny page
---

# Install

Run the installer, then restart the service.

```bash
./install.sh --yes
```

Read the [guide](https://example.com/guide) for details.
"""


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    work = ctx.fresh("overhead")
    source = work / "input"
    # Quick mode times one small page too: the ratios are per model second, and
    # the whole input/ folder takes minutes of model time on two cores.
    if ctx.mode != "full":
        source.mkdir()
        (source / "tiny.md").write_text(TINY_DOC, encoding="utf-8")
    else:
        shutil.copytree(REPO / "input", source)
    size = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    fig.params = {"input": "input/" if ctx.mode == "full" else "one tiny page", "bytes": size}
    if ctx.use_model:
        command = [*cli_command(), "input", "--to", "zh", "--backend", "embedded", "--json"]
        command += ["--out", str(work / "out")]
        timed = run_timed(command, cwd=work, env=child_env(work / "cache"))
        lines = timed.stdout.strip().splitlines()
        if not lines:
            # Exit 1 with a summary only means some chunk stayed in English.
            last = (timed.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"translate-dir failed (exit {timed.returncode}): {last}")
        summary = json.loads(lines[-1])
        summary["exit"] = timed.returncode
        wall = timed.seconds
        fig.params["command"] = "translate-dir input --to zh --backend embedded --json"
    else:
        # Smoke test: the same run in-process with a scripted stand-in.
        backend = ScriptedBackend(to_zh, one_segment_per_request=True)
        report = run_pipeline(
            source,
            work / "out",
            "zh",
            memory_path=work / "memory.sqlite",
            backend="embedded",
            model="scripted",
            factory=backend.factory,
        )
        summary = report.to_json()
        wall = report.seconds
        fig.notes.append("scripted stand-in, not the model: the ratios mean nothing here")
    fig.data = {"summary": summary, "process_seconds": round(wall, 3)}
    model = float(summary["model_seconds"]) or 1e-9
    run_s = float(summary["seconds"])
    warmup = float(summary["warmup_seconds"])
    without = (run_s - warmup) / model
    fig.add(
        "run without model load / model time",
        without,
        "x",
        target=f"≤ {TARGET}",
        ok=without <= TARGET,
    )
    fig.add("run with model load / model time", run_s / model, "x")
    fig.add("process wall (Python start-up too) / model time", wall / model, "x")
    fig.add("model time", round(model, 2), "s")
    fig.add("model load (warm-up)", round(warmup, 2), "s")
    fig.add("requests", int(summary["requests"]))
    fig.add("output tokens / model second", float(summary["tokens_per_second"]), "tok/s")
    fig.add("pieces kept in English", int(summary["kept_in_source"]))
    fig.notes.append(
        "The model load happens once per run, before the first request, and is the "
        "same whether one page or a thousand are translated; it is reported apart so "
        "the ratio measures what the pipeline adds per request."
    )
    return fig
