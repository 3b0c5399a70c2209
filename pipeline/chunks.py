"""Packing prose into requests under a token budget.

A piece is the unit of translation and of the translation memory: one prose
segment, or a run of its sentences when the segment alone exceeds the budget.
Pieces are packed, in document order, into chunks (one request each) joined by
a blank line; the answer is split on blank lines back into pieces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

PIECE_SEPARATOR = "\n\n"
_BLANK_LINES = re.compile(r"\n[ \t]*\n+")
# A sentence ends at . ! ? (or their CJK forms), optionally followed by closing
# quotes/brackets, then whitespace; CJK enders need no whitespace after them.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])[\"'”’)\]]*\s+)|(?:(?<=[。！？])[”’」』）]*\s*)")


def split_sentences(text: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Cut ``text`` into consecutive slices of whole sentences, each under ``budget``
    tokens where possible. ``"".join(result) == text``: the whitespace after a
    sentence stays with it."""
    cuts = [m.end() for m in _SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    sentences, start = [], 0
    for cut in cuts:
        sentences.append(text[start:cut])
        start = cut
    sentences.append(text[start:])
    out: list[str] = []
    current = ""
    for sentence in sentences:
        if current and count(current + sentence) > budget:
            out.append(current)
            current = sentence
        else:
            current += sentence
    if current:
        out.append(current)
    return out


def pack(
    items: Sequence[T], cost: Callable[[T], int], budget: int, max_items: int = 0
) -> list[list[T]]:
    """Greedy packing in order: a chunk closes when the next item would pass the
    budget (or ``max_items`` when set). An item bigger than the budget goes alone."""
    chunks: list[list[T]] = []
    current: list[T] = []
    used = 0
    for item in items:
        c = cost(item)
        full = max_items and len(current) >= max_items
        if current and (used + c > budget or full):
            chunks.append(current)
            current, used = [], 0
        current.append(item)
        used += c
    if current:
        chunks.append(current)
    return chunks


def join_pieces(texts: Sequence[str]) -> str:
    return PIECE_SEPARATOR.join(texts)


def split_answer(answer: str, expected: int) -> list[str] | None:
    """The answer to a chunk of ``expected`` pieces, cut back into pieces; None when
    the model merged or split paragraphs (the caller then retries smaller)."""
    if expected == 1:
        return [answer.strip("\n")]
    parts = [p.strip("\n") for p in _BLANK_LINES.split(answer.strip("\n"))]
    return parts if len(parts) == expected else None
