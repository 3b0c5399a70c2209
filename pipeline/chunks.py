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
_WHITESPACE = re.compile(r"\s+")


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
    # A sentence over the budget (a 100 KB line with no full stop) is cut after
    # whitespace instead, so that no piece overflows the model's context.
    sentences = [part for s in sentences for part in _split_words(s, budget, count)]
    out: list[str] = []
    current = ""
    used = 0
    for sentence in sentences:
        # Counted piece by piece: re-counting the growing text is quadratic.
        cost = count(sentence)
        if current and used + cost > budget:
            out.append(current)
            current, used = sentence, cost
        else:
            current += sentence
            used += cost
    if current:
        out.append(current)
    return out


def _split_words(sentence: str, budget: int, count: Callable[[str], int]) -> list[str]:
    if count(sentence) <= budget:
        return [sentence]
    cuts = [m.end() for m in _WHITESPACE.finditer(sentence) if 0 < m.end() < len(sentence)]
    starts = [0, *cuts]
    return [sentence[a:b] for a, b in zip(starts, [*cuts, len(sentence)], strict=True)]


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
