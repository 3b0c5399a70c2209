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


# Where a sentence may end inside a paragraph, for sentence-sized requests and
# sentence counts: after . ! ? (closers allowed) before whitespace and a capital,
# digit, marker or non-Latin letter ("e.g. the" goes on); after 。！？ always.
_END = re.compile(r"(?:[.!?][\"'”’)\]]*(?=\s+(?:[^a-z\s]|$)|\Z))|[。！？][”’」』）]*")
# A full stop that ends an abbreviation or an initial, not a sentence.
_ABBREVIATION = re.compile(
    r"(?:(?:^|(?<=[\s.(]))[A-Za-z]|\b(?:e\.g|i\.e|etc|vs|cf|approx|Mr|Mrs|Ms|Dr|St|No|Fig|Inc|Ltd|Jr|Sr)"
    r"|\d)\.\Z",
    re.IGNORECASE,
)


def _ends(text: str) -> list[int]:
    """Offsets just after each sentence end that is safe to cut at: not inside
    brackets, a code span or an emphasis run, not after an abbreviation."""
    out = []
    # Running counts of what must be balanced at a cut, kept as the scan moves on.
    brackets = ticks = stars = unders = 0
    done = 0
    for m in _END.finditer(text):
        part = text[done : m.end()]
        done = m.end()
        brackets += part.count("[") - part.count("]")
        ticks += part.count("`")
        stars += part.count("**")
        unders += part.count("__")
        if brackets or ticks % 2 or stars % 2 or unders % 2:
            continue
        core = text[max(0, m.start() - 8) : m.end()].rstrip("\"'”’)]")
        if core.endswith(".") and _ABBREVIATION.search(core):
            continue
        out.append(m.end())
    return out


def count_sentences(text: str) -> int:
    """How many sentences ``text`` holds (0 for text without letters)."""
    ends = _ends(text)
    tail = text[ends[-1] :] if ends else text
    return len(ends) + (1 if any(ch.isalpha() for ch in tail) else 0)


def sentences(text: str, *, lines: bool = False) -> list[tuple[str, str]]:
    """``text`` cut at its sentence ends (and at every line end with ``lines``) into
    (sentence, the whitespace after it) pairs, sentences never empty;
    ``"".join(s + sep for s, sep in result) == text`` for text without outer whitespace."""
    cuts = set(_ends(text))
    if lines:
        cuts.update(m.start() for m in re.finditer("\n", text))
    out: list[tuple[str, str]] = []
    start = 0
    for cut in sorted(cuts):
        if cut <= start or cut >= len(text):
            continue
        part = text[start:cut]
        rest = text[cut:]
        space = rest[: len(rest) - len(rest.lstrip())]
        if part.strip():
            out.append((part.rstrip(), part[len(part.rstrip()) :] + space))
        start = cut + len(space)
    if start < len(text):
        tail = text[start:]
        out.append((tail.rstrip(), tail[len(tail.rstrip()) :]))
    return out or [(text, "")]


def join_sentences(parts: Sequence[tuple[str, str]], *, cjk: bool) -> str:
    """The sentences' translations joined with the source's whitespace; a single
    space between two CJK sentences goes (Chinese and Japanese use none)."""
    out = ""
    for i, (text, sep) in enumerate(parts):
        out += text
        if i + 1 < len(parts):
            nxt = parts[i + 1][0]
            wide = out[-1:] >= "\u2e80" and nxt[:1] >= "\u2e80"
            out += "" if cjk and sep == " " and wide else sep
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
