"""Figure 3: tokens sent to the model per source token that needed translating.

The real orchestrator runs over the TiDB pages (English to Chinese, default chunk
budget, a five-term glossary) with a recording scripted backend, twice:

- chat-style, as the Ollama and OpenAI-compatible backends send a request
  (``Prompt.messages()``: system prompt with the glossary lines, few-shot turns,
  the text); counted: the text of every message;
- completion-style, as the embedded base model gets one segment per request
  (``Prompt.completion()``).

Tokens are counted with the embedded model's tokenizer (Gemma 3, vocabulary
only). The denominator is the tokens of the text each request asks to translate
(``Prompt.text``: prose with ⟦n⟧ markers for protected spans). llama.cpp and
Ollama reuse the longest common prefix of consecutive prompts from their KV
cache, so the tokens a server actually evaluates are reported too.

The same run gives the share of source bytes that never reach the model, and
where they are: code blocks, HTML blocks, front matter that is not translated,
inline spans protected by placeholders (code, URLs, link targets, inline HTML),
and Markdown markup and whitespace around the prose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt

from bench.backends import ScriptedBackend, to_zh
from bench.common import (
    TIDB_EN,
    Context,
    Figure,
    Tokenizer,
    copy_files,
    pages,
    run_pipeline,
)
from pipeline import config, documents, front_matter, segments
from pipeline.backends.base import Request, estimate_tokens
from pipeline.protect import MARKER_RE, protect

NAME = "prompt"
TITLE = "Prompt efficiency"
TARGET = 1.3
SIZES = {"tiny": {"pages": 3}, "quick": {"pages": 48}, "full": {"pages": 140}}
# A small glossary, as a docs project would keep; entries go into a prompt only
# when its text contains the term.
GLOSSARY = {
    "cluster": "集群",
    "backup": "备份",
    "node": "节点",
    "storage": "存储",
    "operator": "Operator",
}


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params={"pages": size["pages"], "target": "zh"})
    work = ctx.fresh("prompt")
    source = work / "input"
    total_bytes = copy_files(pages(TIDB_EN, size["pages"]), source, TIDB_EN)
    overrides = {"glossary": {"terms": {"zh": GLOSSARY}}}
    counter: Tokenizer | None = Tokenizer() if ctx.use_model else None
    if counter is None:
        fig.notes.append("tokens estimated (no tokenizer in the smoke test)")
    fig.params["tokenizer"] = counter.name if counter else "estimate"
    fig.params["chunk_tokens"] = int(config.DEFAULTS["translate"]["chunk_tokens"])
    styles: dict[str, dict[str, Any]] = {}
    chat_requests: list[Request] = []
    for style, one in (("chat", False), ("completion", True)):
        backend = ScriptedBackend(to_zh, one_segment_per_request=one)
        report = run_pipeline(
            source,
            work / f"out-{style}",
            "zh",
            memory_path=work / f"memory-{style}.sqlite",
            backend="ollama" if style == "chat" else "embedded",
            model="bench",
            factory=backend.factory,
            overrides=overrides,
        )
        styles[style] = count_tokens(backend.requests, style, counter)
        styles[style]["chunks"] = report.chunks
        # The same requests with the glossary lines left out: what they cost.
        bare = [replace(r, prompt=replace(r.prompt, glossary=())) for r in backend.requests]
        styles[style]["without_glossary"] = count_tokens(bare, style, counter)
        if style == "chat":
            chat_requests = backend.requests
    fig.data["styles"] = styles
    for style, label in (("chat", "chat-style (Ollama, OpenAI)"), ("completion", "completion")):
        s = styles[style]
        fig.add(
            f"{label}: sent / source tokens",
            s["ratio"],
            "x",
            target=f"≤ {TARGET}",
            ok=s["ratio"] <= TARGET,
        )
        fig.add(f"{label}: after prefix-cache reuse", s["ratio_after_prefix_cache"], "x")
        bare = s["without_glossary"]
        fig.add(
            f"{label}: without the glossary (after prefix cache)",
            f"{bare['ratio']:.3f} x ({bare['ratio_after_prefix_cache']:.3f} x)",
        )
        fig.add(f"{label}: requests", s["requests"])
    shares = byte_shares(source, chat_requests, total_bytes)
    fig.data["bytes"] = shares
    fig.add("source bytes that never reach the model", shares["never_sent"] * 100, "%")
    parts = ", ".join(
        f"{name.replace('_', ' ')} {shares[name] * 100:.1f}%"
        for name in ("code_blocks", "html_blocks", "front_matter_kept", "protected_inline")
    )
    fig.notes.append(
        f"Never sent: {parts}, markup and whitespace {shares['markup'] * 100:.1f}% "
        "(shares of all source bytes)."
    )
    return fig


def count_tokens(
    requests: Sequence[Request], style: str, counter: Tokenizer | None
) -> dict[str, Any]:
    def tokens(text: str) -> list[int]:
        if counter is not None:
            return counter.tokens(text)
        return list(range(estimate_tokens(text)))  # placeholder ids: no prefix sharing

    sent = source = evaluated = 0
    previous: list[int] = []
    for request in requests:
        prompt = request.prompt
        if style == "chat":
            ids = [t for m in prompt.messages() for t in tokens(m["content"])]
        else:
            ids = tokens(prompt.completion())
        text_tokens = len(tokens(prompt.text))
        shared = _common_prefix(previous, ids)
        sent += len(ids)
        source += text_tokens
        evaluated += len(ids) - shared
        previous = ids
    source = max(source, 1)
    return {
        "requests": len(requests),
        "sent_tokens": sent,
        "source_tokens": source,
        "evaluated_tokens": evaluated,
        "ratio": round(sent / source, 3),
        "ratio_after_prefix_cache": round(evaluated / source, 3),
        "overhead_tokens_per_request": round((sent - source) / max(len(requests), 1), 1),
    }


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


_MD = MarkdownIt("commonmark").enable("table")


def byte_shares(folder: Path, requests: Sequence[Request], total: int) -> dict[str, Any]:
    """Where the source bytes go: sent to the model, or kept back and why."""
    sent_texts = dict.fromkeys(r.prompt.text for r in requests)
    sent = sum(
        len(MARKER_RE.sub("", piece).encode())
        for text in sent_texts
        for piece in text.split("\n\n")
    )
    code = html = fm_kept = inline = 0
    keys = list(config.DEFAULTS["front_matter"]["translate"])
    for path in sorted(folder.rglob("*.md")):
        doc = documents.decode(path.read_bytes(), name=path.name, markdown=True)
        if doc.front_matter is not None:
            fields = front_matter.translatable_fields(doc.front_matter, keys)
            fm_kept += len(doc.front_matter.raw.encode()) - sum(
                len(f.value.encode()) for f in fields
            )
        lines = doc.text.split("\n")
        for token in _MD.parse(doc.text):
            if token.map is None or token.nesting == -1:
                continue
            if token.type in ("fence", "code_block", "html_block"):
                block = "\n".join(lines[token.map[0] : token.map[1]])
                if token.type == "html_block":
                    html += len(block.encode()) + 1
                else:
                    code += len(block.encode()) + 1
        for seg in segments.split(doc.text):
            if seg.kind == "prose":
                inline += sum(len(span.encode()) for span in protect(seg.content).spans)
    total = max(total, 1)
    markup = max(total - sent - code - html - fm_kept - inline, 0)
    return {
        "total": total,
        "sent": sent,
        "never_sent": round(1 - sent / total, 4),
        "code_blocks": round(code / total, 4),
        "html_blocks": round(html / total, 4),
        "front_matter_kept": round(fm_kept / total, 4),
        "protected_inline": round(inline / total, 4),
        "markup": round(markup / total, 4),
    }
