"""Figure: what a weak model leaves in written documents (issue 14).

The bundled Gemma 3 270M translates the sample ``input/``, the smallest TiDB
Operator pages and a small page of a new user's (headings, an in-page link, a
list, a two-line block quote, bold text, YAML front matter) into Chinese and
German; then ``audit()`` reads every written file against its source and counts
what a reader would see broken:

- unmatched emphasis: ``**``, ``__`` (or a lone ``*``) that renders literally;
- literal brackets: ``[``, ``]`` or ``](`` in the rendered text;
- changed link counts: links and images per block;
- lost lines: a paragraph of a block quote or list item with fewer or more lines;
- leaked labels: the prompt's "English:" / "Simplified Chinese:" / "German:".

Each count is over the output against its source (what the source itself
renders literally does not count). The target is 0 of each. ``tests/
test_e2e_gemma_fidelity.py`` runs the same audit on a smaller set with the model.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bench.backends import Recorder, ScriptedBackend, shout, to_zh
from bench.common import REPO, TIDB_EN, Context, Figure, copy_files, run_pipeline
from bench.fidelity import model_pages
from pipeline import documents, languages
from pipeline.backends.embedded import BUNDLED

NAME = "audit"
TITLE = "What Gemma 3 270M leaves in written documents"
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"pages": 0, "input": 0},
    "quick": {"pages": 0, "input": 1},
    "full": {"pages": 20, "input": 1},
}
TARGETS = ("zh", "de")
COUNTS = ("unmatched emphasis", "literal brackets", "changed link counts", "lost lines", "labels")

# A new user's first page: every construct the issue saw broken.
PAGE = """---
title: "Emilina's garden notes"
description: "Notes on the garden, kept for next year."
---

# Garden notes

See the [setup section](#setup) before you plant anything. It explains **everything** you need.

- Install the planner with pip.
- The planner supports these plants: tomatoes, beans and peas.
- Water the beds **every morning** in summer.

> Some notes must stay private.
> Keep them on your own disk.

## Setup

Run the planner once. Then check the output. It should list **three** beds.
"""

_MD = MarkdownIt("commonmark").enable("table")
_EMPHASIS = ("**", "__")
_BRACKETS = ("[", "]", "](")


def corpus(dest: Path, *, pages: int, sample: bool) -> Path:
    """The documents of the figure under ``dest``: the page, ``input/``, TiDB pages."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "garden.md").write_text(PAGE, encoding="utf-8")
    if sample:
        shutil.copytree(REPO / "input", dest / "input")
    if pages:
        copy_files(model_pages(pages), dest / "tidb", TIDB_EN)
    return dest


def run(ctx: Context, targets: tuple[str, ...] = TARGETS) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params={**size, "model": "gemma-3-270m" if ctx.use_model else "-"})
    work = ctx.fresh("audit")
    source = corpus(work / "input", pages=size["pages"], sample=bool(size["input"]))
    for lang in targets:
        backend: Recorder | ScriptedBackend
        if ctx.use_model:
            backend = Recorder()
        else:
            backend = ScriptedBackend(
                to_zh if lang == "zh" else shout, one_segment_per_request=True
            )
        started = time.perf_counter()
        report = run_pipeline(
            source,
            work / f"out-{lang}",
            lang,
            memory_path=work / f"memory-{lang}.sqlite",
            backend="embedded",
            model=BUNDLED,
            factory=backend.factory,
        )
        found = audit(source, work / f"out-{lang}", lang)
        fig.data[lang] = {
            "counts": dict(found),
            "files": len(report.files),
            "requests": report.requests,
            "kept": report.kept,
            "pieces": report.hits + report.misses,
            "rejected_answers": report.rejected,
            "seconds": round(time.perf_counter() - started, 1),
        }
        fig.add(f"en→{lang}: documents read", found["files"])
        for what in COUNTS:
            fig.add(f"en→{lang}: {what}", found[what], target="0", ok=found[what] == 0)
        fig.add(f"en→{lang}: pieces kept in English", f"{report.kept} of {report.misses}")
    if not ctx.use_model:
        fig.notes.append("scripted stand-in, not the model")
    return fig


# --------------------------------------------------------------------------- the audit


def audit(source: Path, out: Path, lang: str) -> Counter[str]:
    """Counts of ``COUNTS`` over every Markdown output under ``out`` (and, as
    ``files``, how many outputs were read; a source without output is skipped)."""
    found: Counter[str] = Counter({what: 0 for what in COUNTS})
    for src in sorted(source.rglob("*")):
        if src.suffix not in (".md", ".markdown") or not src.is_file():
            continue
        dst = out / src.relative_to(source)
        if not dst.is_file():
            continue
        found["files"] += 1
        found.update(
            audit_file(src.read_text(encoding="utf-8"), dst.read_text(encoding="utf-8"), lang)
        )
    return found


def audit_file(source: str, output: str, lang: str) -> Counter[str]:
    found: Counter[str] = Counter()
    src_doc = documents.decode(source.encode(), name="source", markdown=True)
    out_doc = documents.decode(output.encode(), name="output", markdown=True)
    labels = [languages.name("en"), languages.name(lang)]
    src_all, out_all = source, output
    for label in labels:
        pattern = re.compile(rf"(?<!\w){re.escape(label)}\s*[:：]")
        found["labels"] += max(0, len(pattern.findall(out_all)) - len(pattern.findall(src_all)))
    want = list(_blocks(src_doc.text))
    got = list(_blocks(out_doc.text))
    if len(want) != len(got):
        # The whole-document check keeps such a file in the source: never written.
        found["changed link counts"] += 1
        return found
    for (w_inline, w_container), (g_inline, _) in zip(want, got, strict=True):
        w, g = _shape(w_inline), _shape(g_inline)
        found["unmatched emphasis"] += sum(max(0, g[d] - w[d]) for d in (*_EMPHASIS, "*"))
        found["literal brackets"] += sum(max(0, g[d] - w[d]) for d in _BRACKETS)
        found["changed link counts"] += int(w["links"] != g["links"])
        if w_container:
            found["lost lines"] += int(w_inline.content.count("\n") != g_inline.content.count("\n"))
    return found


def _blocks(body: str) -> Iterator[tuple[Token, bool]]:
    """Each inline token of a body, and whether it is inside a block quote or list item."""
    depth = 0
    for tok in _MD.parse(body):
        if tok.type in ("blockquote_open", "list_item_open"):
            depth += 1
        elif tok.type in ("blockquote_close", "list_item_close"):
            depth -= 1
        elif tok.type == "inline":
            yield tok, depth > 0


def _shape(inline: Token) -> Counter[str]:
    shape: Counter[str] = Counter()
    text = []
    for child in inline.children or ():
        if child.type in ("link_open", "image"):
            shape["links"] += 1
        elif child.type == "text":
            text.append(child.content)
    rendered = "\x00".join(text)
    for d in (*_EMPHASIS, *_BRACKETS):
        shape[d] = rendered.count(d)
    # A lone "*" (not part of "**") left in the text: an emphasis that did not close.
    shape["*"] = rendered.replace("**", "").count("*")
    return shape


def main() -> None:
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--lang", choices=TARGETS, action="append")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    SIZES["full"]["pages"] = args.pages
    with tempfile.TemporaryDirectory() as tmp:
        # With --out the documents stay beside it (FILE.files/), to read afterwards.
        work = args.out.with_suffix(".files") if args.out else Path(tmp)
        ctx = Context("full", work)
        started = time.perf_counter()
        fig = run(ctx, tuple(args.lang or TARGETS))
        fig.seconds = time.perf_counter() - started
        text = json.dumps(fig.to_json(), indent=1, ensure_ascii=False)
        if args.out:
            args.out.write_text(text, encoding="utf-8")
        print(text)


if __name__ == "__main__":
    main()
