"""python -m bench [--quick] [--only NAME] [--out FILE.json]

Runs the figures, prints a Markdown table (ready for the README) and writes every
number, the date and the machine to a JSON file.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import FIGURES
from bench.common import Context, Figure, Mode, data_note, machine, one_line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of translate-dir: a Markdown table on stdout, all numbers "
        "in a JSON file.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="Smaller inputs: the whole run in under 3 minutes."
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"Run only this figure (repeatable, or comma-separated): {', '.join(FIGURES)}.",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results.json"),
        help="JSON file to write (default: bench-results.json).",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Also profile the throughput runs and list the hot spots in the JSON.",
    )
    parser.add_argument(
        "--workdir", type=Path, help="Keep the inputs and outputs here instead of a temp folder."
    )
    # For the smoke test: tiny inputs, and scripted stand-ins instead of the model.
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = list(FIGURES)
    if args.only:
        names = [n.strip() for value in args.only for n in value.split(",") if n.strip()]
        unknown = [n for n in names if n not in FIGURES]
        if unknown:
            parser.error(f"unknown figure {unknown[0]!r}; choose from {', '.join(FIGURES)}")
    mode: Mode = "tiny" if args.smoke else "quick" if args.quick else "full"
    info = machine()
    note = data_note()
    if note:
        print(note, file=sys.stderr)
        info["data_note"] = note
    started = time.perf_counter()
    figures: list[Figure] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="translate-dir-bench-") as tmp:
        workdir = args.workdir.resolve() if args.workdir else Path(tmp)
        ctx = Context(mode, workdir, use_model=not args.smoke, profile=args.profile)
        for i, name in enumerate(names, start=1):
            print(f"[{i}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
            fig = run_figure(name, ctx)
            if fig.params.get("error"):
                failed.append(name)
                print(
                    f"  {name} failed after {fig.seconds:.1f} s: {fig.params['error']}",
                    file=sys.stderr,
                )
            else:
                print(f"  done in {fig.seconds:.1f} s", file=sys.stderr)
            figures.append(fig)
    total = time.perf_counter() - started
    command = "python -m bench" + {"tiny": " --smoke", "quick": " --quick", "full": ""}[mode]
    if args.only:
        command += " --only " + ",".join(names)
    table = markdown(figures, info, command, mode)
    print(table)
    result: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "command": command,
        "machine": info,
        "seconds": round(total, 1),
        "figures": {f.name: f.to_json() for f in figures},
        "table": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({total:.0f} s in all)", file=sys.stderr)
    return 1 if failed else 0


def run_figure(name: str, ctx: Context) -> Figure:
    """One figure; a failure becomes a figure that says so (the others still run)."""
    module = importlib.import_module(FIGURES[name])
    started = time.perf_counter()
    try:
        fig: Figure = module.run(ctx)
    except ModuleNotFoundError as exc:
        fig = Figure(name, str(getattr(module, "TITLE", name)))
        top = (exc.name or "").partition(".")[0]
        if top and top not in ("pipeline", "bench"):
            # A benchmark dependency, not a bug: say which and how to get it.
            fig.params["error"] = f"needs the Python package {top!r}: pip install -e '.[bench]'"
        else:
            fig.params["error"] = one_line(f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # one failed figure must not lose the others' numbers
        fig = Figure(name, str(getattr(module, "TITLE", name)))
        fig.params["error"] = one_line(f"{type(exc).__name__}: {exc}")
    fig.seconds = time.perf_counter() - started
    return fig


def markdown(figures: Sequence[Figure], info: dict[str, Any], command: str, mode: str) -> str:
    """The README table: one row per measure, the notes under it."""
    today = datetime.date.today().isoformat()
    cores = info["cpu_count"]
    lines = [
        f"Measured {today} on {info['cpu_model']} ({cores} cores, {info['memory_gb']} GB), "
        f"Python {info['python']}, with `{command}` ({mode} mode).",
        "",
        "| Figure | Measure | Value | Target | Met |",
        "|---|---|---|---|---|",
    ]
    notes = []
    order = list(FIGURES)
    for fig in figures:
        number = order.index(fig.name) + 1 if fig.name in order else 0
        title = f"{number}. {fig.title}"
        if fig.params.get("error"):
            lines.append(f"| {title} | failed: {_cell(str(fig.params['error']))} | | | |")
            continue
        for i, m in enumerate(fig.metrics):
            met = "" if m.ok is None else "yes" if m.ok else "**no**"
            lines.append(
                f"| {title if i == 0 else ''} | {_cell(m.label)} | {_cell(m.shown())} "
                f"| {_cell(m.target)} | {met} |"
            )
        notes += [f"- {number}. {_cell(note)}" for note in fig.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


if __name__ == "__main__":
    sys.exit(main())
