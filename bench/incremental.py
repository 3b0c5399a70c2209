"""Figure 4: incremental runs (issue 5, item 9), timed on the real CLI.

1,000 generated documents of about 2 KB are translated once through the real
``translate-dir`` command against a local fake Ollama that answers at once
(``bench.server``, scripted answers). Then, each as its own subprocess:

(a) the same command again with nothing changed: wall time and requests;
(b) one paragraph of one file edited: requests (exactly one expected);
(c) ``--check`` over the whole tree: wall time and exit code.

Wall times are from fork to exit, so they include Python start-up and imports;
``translate-dir --version`` is timed alone to show that share.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench import corpus
from bench.backends import shout
from bench.common import Context, Figure, Timed, child_env, cli_command, run_timed
from bench.server import serve
from pipeline import segments

NAME = "incremental"
TITLE = "Incremental runs"
SIZES = {"tiny": {"documents": 20}, "quick": {"documents": 1000}, "full": {"documents": 1000}}
TARGET_SECONDS = 2.0


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params={**size, "document_bytes": 2000})
    work = ctx.fresh("incremental")
    docs = corpus.small_documents(work / "input", size["documents"])
    env = child_env(work / "cache")
    with serve(shout) as server:
        base = [*cli_command(), "input", "--to", "de", "--out", str(work / "out"), "--json"]
        base += ["--backend", "ollama", "--host", server.url, "--model", server.model]

        def cli(*extra: str) -> tuple[Timed, dict[str, Any]]:
            timed = run_timed([*base, *extra], cwd=work, env=env)
            lines = timed.stdout.strip().splitlines()
            if not lines:
                last = (timed.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"translate-dir failed (exit {timed.returncode}): {last}")
            summary: dict[str, Any] = json.loads(lines[-1])
            return timed, summary

        first, first_summary = cli()
        first_requests = server.chats
        server.reset()
        again, again_summary = cli()
        again_requests = server.chats
        server.reset()
        edited = _edit_one_paragraph(docs[len(docs) // 2])
        edit, edit_summary = cli()
        edit_requests = server.chats
        server.reset()
        check, _ = cli("--check")
        check_requests = server.chats + server.loads
    version = run_timed([*cli_command(), "--version"], cwd=work, env=env)
    bare = run_timed([sys.executable, "-c", "pass"], cwd=work, env=env)
    fig.data = {
        "first": {"seconds": round(first.seconds, 3), "requests": first_requests, **first_summary},
        "unchanged": {"seconds": round(again.seconds, 3), **again_summary},
        "edit": {"seconds": round(edit.seconds, 3), "edited": edited, **edit_summary},
        "check": {"seconds": round(check.seconds, 3), "exit": check.returncode},
        "startup": {
            "translate_dir_version_seconds": round(version.seconds, 3),
            "python_seconds": round(bare.seconds, 3),
        },
    }
    fig.add(f"first run, {len(docs)} documents (scripted model)", first.seconds, "s")
    fig.add("first run: requests", first_requests)
    fig.add(
        "(a) re-run, nothing changed: wall",
        again.seconds,
        "s",
        target=f"< {TARGET_SECONDS:g} s",
        ok=again.seconds < TARGET_SECONDS,
    )
    fig.add(
        "(a) re-run: requests",
        again_requests,
        target="0",
        ok=again_requests == 0 and int(again_summary["requests"]) == 0,
    )
    fig.add(
        "(b) one paragraph edited: requests",
        edit_requests,
        target="1",
        ok=edit_requests == 1 and int(edit_summary["written"]) == 1,
    )
    fig.add(
        "(c) --check, whole tree: wall",
        check.seconds,
        "s",
        target=f"< {TARGET_SECONDS:g} s",
        ok=check.seconds < TARGET_SECONDS and check.returncode == 0 and check_requests == 0,
    )
    fig.add("start-up alone (translate-dir --version)", version.seconds, "s")
    fig.notes.append(
        f"Wall times include Python start-up and imports: translate-dir --version takes "
        f"{version.seconds:.2f} s, python -c pass {bare.seconds:.2f} s. --check exited "
        f"{check.returncode} and sent {check_requests} requests."
    )
    return fig


def _edit_one_paragraph(path: Path) -> str:
    """Change the first paragraph of ``path``; returns the file's name."""
    text = path.read_text(encoding="utf-8")
    body_start = text.index("\n---\n") + 5  # after the front matter
    for seg in segments.split(text[body_start:]):
        if seg.kind == "prose" and seg.block == "paragraph":
            changed = seg.content + " This sentence was added by the benchmark."
            path.write_text(
                text[:body_start] + text[body_start:].replace(seg.content, changed, 1),
                encoding="utf-8",
            )
            return path.name
    raise RuntimeError(f"no paragraph to edit in {path}")
