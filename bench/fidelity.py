"""Figure 7: fidelity on real documentation (issue 6, item 8).

(a) All 140 TiDB Operator pages through the real orchestrator with a scripted
backend that changes only the words it is given (upper-cases them, English to
German): any damage to structure, code, links or front matter is then the
pipeline's own. Every request text is recorded to count code blocks that
reached the backend.

(b) A few pages with the embedded model (Gemma 3 270M), English to Chinese: the
same figures, the pieces kept in English, and chrF of the prose against the
human Chinese pages (the whole set takes hours on two cores).

Per page:
- block structure: ``validate.compare_structure`` of source and output bodies;
- code blocks: the lines of every fenced and indented code block, compared as a
  multiset of exact strings;
- link and image URLs: every ``href`` and ``src`` markdown-it resolves (inline,
  reference-style and autolinks), as a multiset;
- front matter: every line of the source front matter that does not belong to a
  translated key (``title``, ``description``, ``summary``) must be in the output's.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from bench.backends import Recorder, ScriptedBackend, shout, to_zh
from bench.common import TIDB_EN, TIDB_ZH, Context, Figure, chrf, copy_files, pages, run_pipeline
from pipeline import config, documents, segments, sites, validate
from pipeline.backends.base import Request
from pipeline.backends.embedded import BUNDLED
from pipeline.front_matter import FrontMatter
from pipeline.report import RunReport

NAME = "fidelity"
TITLE = "Fidelity on the TiDB Operator docs"
SIZES = {
    "tiny": {"scripted_pages": 5, "model_pages": 1},
    # Quick: a third of the pages (the whole manual's 140 take minutes on two
    # busy cores) and one page for the model; full mode measures everything.
    "quick": {"scripted_pages": 48, "model_pages": 1},
    "full": {"scripted_pages": 140, "model_pages": 20},
}
_MD = MarkdownIt("commonmark").enable("table")
# Code shorter than this could occur in prose by chance; it is not searched for.
_MIN_CODE_CHARS = 8


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params=dict(size))
    scripted = _scripted(ctx, size["scripted_pages"])
    fig.data["scripted"] = scripted
    n = scripted["pages"]
    label = f"(a) {n} pages, scripted"
    _add_rows(fig, label, scripted, structure_target=True)
    fig.add(
        f"{label}: code blocks that reached the backend",
        scripted["code_blocks_sent"],
        target="0",
        ok=scripted["code_blocks_sent"] == 0,
    )
    model = _with_model(ctx, size["model_pages"])
    fig.data["model"] = model
    label = f"(b) {model['pages']} pages, {'Gemma 3 270M' if ctx.use_model else 'stand-in'}"
    _add_rows(fig, label, model, structure_target=False)
    fig.add(f"{label}: code blocks that reached the backend", model["code_blocks_sent"])
    fig.add(f"{label}: pieces kept in English", f"{model['kept']} of {model['pieces']}")
    fig.add(f"{label}: chrF of the prose vs the human zh pages", model["chrf"])
    fig.notes.append(
        "(b) pages: " + ", ".join(model["names"]) + " (the smallest pages of the manual "
        "outside the release notes and tables of contents)."
    )
    if not ctx.use_model:
        fig.notes.append("(b) ran a scripted stand-in, not the model")
    return fig


def _add_rows(fig: Figure, label: str, r: dict[str, Any], *, structure_target: bool) -> None:
    share = r["same_structure"] / max(r["pages"], 1) * 100
    fig.add(
        f"{label}: same block structure",
        share,
        "%",
        target="100 %" if structure_target else "",
        ok=share == 100 if structure_target else None,
    )
    for key, what in (
        ("code", "code blocks byte-identical"),
        ("urls", "link and image URLs preserved"),
        ("front_matter", "untranslated front-matter lines preserved"),
    ):
        kept, total = r[key]
        value = kept / total * 100 if total else 100.0
        fig.add(f"{label}: {what} ({kept}/{total})", value, "%", target="100 %", ok=kept == total)


# --------------------------------------------------------------------------- (a) and (b)


def _scripted(ctx: Context, count: int) -> dict[str, Any]:
    work = ctx.fresh("fidelity/scripted")
    files = pages(TIDB_EN, count)
    copy_files(files, work / "input", TIDB_EN)
    backend = ScriptedBackend(shout)
    report = run_pipeline(
        work / "input",
        work / "out",
        "de",
        memory_path=work / "memory.sqlite",
        backend="ollama",
        model="bench",
        factory=backend.factory,
    )
    return measure(work / "input", work / "out", backend.requests, report)


def model_pages(count: int) -> list[Path]:
    """The ``count`` smallest pages outside releases/ and the tables of contents."""
    candidates = [
        p
        for p in TIDB_EN.glob("*.md")
        if not p.name.startswith("TOC") and (TIDB_ZH / p.name).is_file()
    ]
    return sorted(candidates, key=lambda p: (p.stat().st_size, p.name))[:count]


def _with_model(ctx: Context, count: int) -> dict[str, Any]:
    work = ctx.fresh("fidelity/model")
    files = model_pages(count)
    copy_files(files, work / "input", TIDB_EN)
    backend: Recorder | ScriptedBackend = (
        Recorder() if ctx.use_model else ScriptedBackend(to_zh, one_segment_per_request=True)
    )
    report = run_pipeline(
        work / "input",
        work / "out",
        "zh",
        memory_path=work / "memory.sqlite",
        backend="embedded",
        model=BUNDLED,
        factory=backend.factory,
    )
    result = measure(work / "input", work / "out", backend.requests, report)
    hypotheses, references = [], []
    for f in files:
        hypotheses.append(_prose(work / "out" / f.name))
        references.append(_prose(TIDB_ZH / f.name))
    result["chrf"] = round(chrf(hypotheses, references), 2)
    result["names"] = [f.name for f in files]
    result["model_seconds"] = round(report.model_seconds, 2)
    result["requests"] = report.requests
    return result


# --------------------------------------------------------------------------- measuring


def measure(
    source: Path, out: Path, requests: Sequence[Request], report: RunReport
) -> dict[str, Any]:
    """Fidelity counts of every output under ``out`` against its source."""
    sent = "\n".join(r.prompt.text for r in requests)
    keys = list(config.DEFAULTS["front_matter"]["translate"])
    totals = {"code": [0, 0], "urls": [0, 0], "front_matter": [0, 0]}
    same = 0
    code_sent = 0
    broken: list[str] = []
    names = sorted(p.relative_to(source) for p in source.rglob("*.md"))
    # Read as the run read them: translated alt/title values are not structure.
    site = sites.resolve(config.load(None).site, source)
    for rel in names:
        src = documents.decode((source / rel).read_bytes(), name=str(rel), markdown=True)
        path = out / rel
        if not path.is_file():
            broken.append(f"{rel}: no output")
            continue
        dst = documents.decode(path.read_bytes(), name=str(rel), markdown=True)
        if not validate.compare_structure(src.text, dst.text, site=site):
            same += 1
        else:
            broken.append(str(rel))
        # Each body is parsed once here for code blocks and URLs.
        src_tokens, dst_tokens = _MD.parse(src.text), _MD.parse(dst.text)
        src_code, dst_code = code_blocks(src.text, src_tokens), code_blocks(dst.text, dst_tokens)
        _tally(totals["code"], src_code, dst_code)
        _tally(totals["urls"], urls(src.text, src_tokens), urls(dst.text, dst_tokens))
        _tally(
            totals["front_matter"],
            kept_front_matter_lines(src.front_matter, keys),
            _lines(dst.front_matter),
        )
        for block in code_contents(src.text, src_tokens):
            if len(block) >= _MIN_CODE_CHARS and block in sent:
                code_sent += 1
    return {
        "pages": len(names),
        "same_structure": same,
        "different_structure": broken[:20],
        "code": totals["code"],
        "urls": totals["urls"],
        "front_matter": totals["front_matter"],
        "code_blocks_sent": code_sent,
        "requests": len(requests),
        "kept": report.kept,
        "pieces": report.hits + report.misses,
        "files_with_kept_pieces": sum(1 for f in report.files if f.kept),
    }


def _tally(total: list[int], wanted: list[str], found: list[str]) -> None:
    total[0] += sum((Counter(wanted) & Counter(found)).values())
    total[1] += len(wanted)


def _blocks(
    body: str, types: tuple[str, ...], tokens: list[Token] | None
) -> list[tuple[Token, list[str]]]:
    lines = body.split("\n")
    found = []
    for token in _MD.parse(body) if tokens is None else tokens:
        if token.type in types and token.map is not None:
            found.append((token, lines[token.map[0] : token.map[1]]))
    return found


def code_blocks(body: str, tokens: list[Token] | None = None) -> list[str]:
    """Each fenced or indented code block as its exact source lines (``tokens``:
    the body's parse, when the caller has it)."""
    return ["\n".join(lines) for _, lines in _blocks(body, ("fence", "code_block"), tokens)]


def code_contents(body: str, tokens: list[Token] | None = None) -> list[str]:
    """The content of each code block (what would show if it were sent), stripped."""
    return [t.content.strip() for t, _ in _blocks(body, ("fence", "code_block"), tokens)]


def urls(body: str, tokens: list[Token] | None = None) -> list[str]:
    found = []
    for token in _MD.parse(body) if tokens is None else tokens:
        for child in token.children or ():
            if child.type == "link_open":
                found.append(str(child.attrGet("href")))
            elif child.type == "image":
                found.append(str(child.attrGet("src")))
    return found


def _lines(fm: FrontMatter | None) -> list[str]:
    return fm.raw.splitlines() if fm is not None else []


_TOP_KEY = re.compile(r"""^["']?([A-Za-z0-9_.-]+)["']?\s*[:=]""")


def kept_front_matter_lines(fm: FrontMatter | None, translated: list[str]) -> list[str]:
    """Front-matter lines outside the translated keys' values (delimiters included)."""
    kept = []
    inside = False
    for line in _lines(fm):
        match = _TOP_KEY.match(line)
        if match:
            inside = match.group(1) in translated
        elif line.strip() in ("---", "+++"):
            inside = False
        if not inside:
            kept.append(line)
    return kept


def _prose(path: Path) -> str:
    doc = documents.decode(path.read_bytes(), name=path.name, markdown=True)
    return "\n".join(s.content for s in segments.split(doc.text) if s.kind == "prose")
