"""Repair Markdown emphasis that CommonMark does not render next to CJK text.

CommonMark decides whether ``**`` opens or closes emphasis from the characters on
either side of it (the "flanking" rules), and counts CJK ideographs as letters and
CJK punctuation as punctuation. So ``**加粗**。`` renders, but ``这是**“引用”**的``
and ``**注意：**请`` do not: a delimiter with punctuation on its inner side and a
letter on its outer side neither opens nor closes. Translations into Chinese,
Japanese and Korean hit this all the time, because the source's ``**"quoted"**``
or ``**Note:**`` keeps its punctuation inside the delimiters.

``fix_cjk_emphasis()`` finds such runs and repairs each with the smallest change
that markdown-it renders as emphasis: ``__`` becomes ``**`` (it never works
between CJK letters), punctuation at the edges moves outside the delimiters, and
as a last resort the run becomes ``<strong>…</strong>`` / ``<em>…</em>``. Code
spans, placeholders, HTML, autolinks and link targets are never touched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

from markdown_it import MarkdownIt

from pipeline.protect import MARKER_RE

__all__ = ["fix_cjk_emphasis"]

# Spans whose characters are never moved and never taken for delimiters.
_PROTECTED = re.compile(
    r"(?<!`)(?P<tick>`+)(?!`).+?(?<!`)(?P=tick)(?!`)"  # code span
    rf"|{MARKER_RE.pattern}"  # placeholder
    r"|<!--.*?-->"  # HTML comment
    r"|<[A-Za-z][A-Za-z0-9.+-]{1,31}:[^\s<>]*>"  # autolink
    r"|</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"  # HTML tag
    r"|\]\([^)]*\)"  # link destination and title
    r"|https?://[^\s<>]+"  # bare URL
    r"|\\[!-/:-@\[-`{-~]"  # backslash escape
)
_MASK = "\x00"

# ``**inner**`` / ``__inner__`` and ``*inner*`` with no space just inside the
# delimiters (a space there means the author did not mean emphasis).
_DOUBLE = re.compile(r"(?<![*_])(\*\*|__)(?![*_\s])(.+?)(?<![\s*_])\1(?![*_])")
_SINGLE = re.compile(r"(?<!\*)\*(?![*\s])(.+?)(?<![\s*])\*(?!\*)")

# Punctuation that may move across a delimiter without changing Markdown
# structure: not brackets, not image "!" in front of "[", not other syntax.
_ASCII_MOVABLE_LEAD = frozenset(".,;:?\"'")
_ASCII_MOVABLE_TRAIL = frozenset(".,;:?!\"'")


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _is_cjk(ch: str) -> bool:
    if not ch:
        return False
    code = ord(ch)
    return (
        0x1100 <= code <= 0x11FF  # Hangul Jamo
        or 0x2E80 <= code <= 0x9FFF  # CJK radicals, punctuation, kana, ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFE30 <= code <= 0xFE4F  # CJK compatibility forms
        or 0xFF00 <= code <= 0xFFEF  # half- and full-width forms
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions
    )


def _is_punct(ch: str) -> bool:
    return bool(ch) and unicodedata.category(ch)[0] in "PS"


def _movable(ch: str, *, leading: bool) -> bool:
    if ch.isascii():
        return ch in (_ASCII_MOVABLE_LEAD if leading else _ASCII_MOVABLE_TRAIL)
    return _is_punct(ch)


def _render_stats(text: str) -> tuple[int, int]:
    """(emphasis elements rendered, delimiter characters shown literally)."""
    emphasis = literal = 0
    for token in _parser().parseInline(text)[0].children or ():
        html = token.type == "html_inline" and token.content in ("<strong>", "<em>")
        if html or token.type in ("strong_open", "em_open"):
            emphasis += 1
        elif token.type == "text":
            literal += token.content.count("*") + token.content.count("__")
    return emphasis, literal


def _renders(snippet: str, kind: str) -> bool:
    children = _parser().parseInline(snippet)[0].children or ()
    return any(t.type == f"{kind}_open" for t in children)


@dataclass(frozen=True)
class _Run:
    start: int  # index of the opening delimiter
    end: int  # index after the closing delimiter
    delim: str

    @property
    def kind(self) -> str:
        return "strong" if len(self.delim) == 2 else "em"


def _mask(line: str) -> str:
    return _PROTECTED.sub(lambda m: _MASK * len(m.group(0)), line)


def _runs(masked: str, pattern: re.Pattern[str]) -> Iterator[_Run]:
    for match in pattern.finditer(masked):
        delim = match.group(1) if pattern is _DOUBLE else "*"
        yield _Run(match.start(), match.end(), delim)


def _cjk_context(line: str, run: _Run) -> bool:
    inner = line[run.start + len(run.delim) : run.end - len(run.delim)]
    edges = (
        line[run.start - 1] if run.start else "",
        line[run.end] if run.end < len(line) else "",
        inner[:1],
        inner[-1:],
    )
    if any(_is_cjk(ch) for ch in edges):
        return True
    # Curly quotes and other non-ASCII punctuation count when the line is CJK text.
    return any(_is_cjk(ch) for ch in line) and any(
        _is_punct(ch) and not ch.isascii() for ch in edges
    )


def _repairs(line: str, masked: str, run: _Run) -> Iterator[str]:
    """Replacements for ``line[run.start:run.end]``, smallest change first."""
    size = len(run.delim)
    inner = line[run.start + size : run.end - size]
    inner_masked = masked[run.start + size : run.end - size]
    delims = [run.delim]
    if run.delim[0] == "_":
        # ``__`` cannot open or close between two letters; ``**`` can.
        delims.insert(0, "*" * size)
        yield delims[0] + inner + delims[0]
    lead = 0
    while lead < len(inner) and inner_masked[lead] != _MASK and _movable(inner[lead], leading=True):
        lead += 1
    trail = len(inner)
    while (
        trail > lead
        and inner_masked[trail - 1] != _MASK
        and _movable(inner[trail - 1], leading=False)
    ):
        trail -= 1
    core = inner[lead:trail]
    if core.strip() == core and core:
        # Both edges first, so a bracket or quote pair stays together outside.
        moves = [(lead, trail), (0, trail), (lead, len(inner))]
        for left, right in moves:
            if (left, right) == (0, len(inner)):
                continue
            for delim in delims:
                yield inner[:left] + delim + inner[left:right] + delim + inner[right:]
    tag = "strong" if size == 2 else "em"
    yield f"<{tag}>{inner}</{tag}>"


def _fix_runs(line: str, pattern: re.Pattern[str]) -> tuple[str, int]:
    masked = _mask(line)
    edits: list[tuple[_Run, str]] = []
    for run in _runs(masked, pattern):
        if not _cjk_context(line, run):
            continue
        before = line[run.start - 1] if run.start else ""
        after = line[run.end] if run.end < len(line) else ""
        if _renders(before + line[run.start : run.end] + after, run.kind):
            continue
        for candidate in _repairs(line, masked, run):
            if _renders(before + candidate + after, run.kind) or candidate.startswith("<"):
                edits.append((run, candidate))
                break
    for run, candidate in reversed(edits):
        line = line[: run.start] + candidate + line[run.end :]
    return line, len(edits)


def _fix_line(line: str) -> str:
    fixed, doubles = _fix_runs(line, _DOUBLE)
    fixed, singles = _fix_runs(fixed, _SINGLE)
    if not doubles + singles:
        return line
    # Judge the line as a whole: delimiters elsewhere on it can pair differently
    # once a run is repaired. Keep the repair only if more emphasis renders and
    # fewer asterisks are left showing.
    emphasis_before, literal_before = _render_stats(line)
    emphasis_after, literal_after = _render_stats(fixed)
    if emphasis_after > emphasis_before and literal_after < literal_before:
        return fixed
    return line


def _prose_lines(text: str) -> set[int]:
    """Lines of blocks with inline text (paragraphs, headings, table rows); code,
    HTML blocks and everything else keep their bytes."""
    lines: set[int] = set()
    for token in _parser().parse(text):
        if token.type == "inline" and token.map is not None:
            lines.update(range(*token.map))
    return lines


def fix_cjk_emphasis(text: str) -> str:
    """Rewrite ``**…**``, ``*…*`` and ``__…__`` runs in CJK text that CommonMark
    would show as literal asterisks into a form that renders as emphasis.

    Text without such runs comes back unchanged. Pass a Markdown body or one
    segment; front matter is not Markdown and should not be passed in.
    """
    if "*" not in text and "__" not in text:
        return text
    lines = text.split("\n")
    for index in sorted(_prose_lines(text)):
        line = lines[index]
        if ("*" in line or "__" in line) and any(_is_cjk(ch) for ch in line):
            lines[index] = _fix_line(line)
    return "\n".join(lines)
