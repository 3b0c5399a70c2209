"""Cut a document body into prose and verbatim segments; protect inline spans.

Segmentation slices the original text at the line ranges (``token.map``) that
markdown-it-py reports for block tokens and never re-renders Markdown, so
``join(split(text)) == text`` holds by construction. Prose segments are the leaf
paragraphs, headings and tables, also inside blockquotes and list items; each
one remembers, per source line, the container prefix before its content and
what follows it, so ``render()`` can splice a translation back in.

``protect()`` replaces what must come out byte-identical (code spans, link
destinations, HTML, URLs, shortcodes, ...) by numbered ``⟦n⟧`` placeholders;
``restore()`` puts them back and refuses a translation that lost, duplicated or
invented one.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Literal, cast

from markdown_it import MarkdownIt
from markdown_it.helpers import parseLinkLabel, parseLinkTitle
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block import table as _table_rule
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline import autolink as _autolink_rule
from markdown_it.rules_inline import backtick as _backtick_rule
from markdown_it.rules_inline import entity as _entity_rule
from markdown_it.rules_inline import html_inline as _html_inline_rule
from markdown_it.rules_inline import image as _image_rule
from markdown_it.rules_inline import link as _link_rule
from markdown_it.token import Token

from pipeline.errors import ValidationFailed

Kind = Literal["verbatim", "prose"]

__all__ = [
    "Kind",
    "Protected",
    "Segment",
    "join",
    "protect",
    "render",
    "restore",
    "split",
]


@dataclass(frozen=True)
class Segment:
    """One piece of a document: sent to the model (prose) or kept as it is (verbatim)."""

    source: str  # exact original text of this piece, line endings included
    kind: Kind
    # For prose only:
    content: str = ""  # the text to translate, lines joined with "\n", no trailing newline
    block: str = ""  # "paragraph" | "heading" | "table" | "text"
    line_prefixes: tuple[str, ...] = ()  # per source line: container prefix before the content
    line_suffixes: tuple[str, ...] = ()  # per source line: what follows the content, newline too
    continuation: str = ""  # prefix for lines a translation has beyond the source's
    newline: str = "\n"  # line ending for lines a translation has beyond the source's


@dataclass(frozen=True)
class Protected:
    """Content with its protected spans replaced by ⟦1⟧, ⟦2⟧, ... (numbered in order)."""

    text: str
    spans: tuple[str, ...]  # spans[i-1] is the original text of ⟦i⟧


# --------------------------------------------------------------------------
# Lines

# markdown-it counts lines after turning "\r\n" and "\r" into "\n"; splitting the
# original the same way keeps line numbers aligned while each line keeps its ending.
_NEWLINE_SPLIT_RE = re.compile(r"(\r\n|\r|\n)")
_NEWLINE_RE = re.compile(r"\r\n?")


def _lines(text: str) -> list[tuple[str, str]]:
    """(body, ending) per line; the last line's ending may be ""."""
    parts = _NEWLINE_SPLIT_RE.split(text)
    lines = [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]
    if parts[-1]:
        lines.append((parts[-1], ""))
    return lines


def _first_newline(text: str) -> str:
    match = _NEWLINE_SPLIT_RE.search(text)
    return match.group() if match else "\n"


# --------------------------------------------------------------------------
# Block parser

_TABLE_PREFIXES = "translate_dir_table_prefixes"


def _table_recording_prefixes(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    # A table has no single inline token to align against, so note where each
    # row starts once containers (">", list indent) are taken off: that column
    # is the end of the row's prefix.
    if not _table_rule(state, start, end, silent):
        return False
    if not silent:
        columns = []
        for line in range(start, state.line):
            first = state.bMarks[line] + state.tShift[line]
            columns.append(first - (state.src.rfind("\n", 0, first) + 1))
        state.env.setdefault(_TABLE_PREFIXES, {})[start] = columns
    return True


def _block_parser() -> MarkdownIt:
    # The commonmark preset stops parsing at nesting level 20, and everything after
    # that point (not only the deep part) would stay untranslated: 50 nested list
    # levels take 100. Deeper still is kept verbatim, never lost.
    md = MarkdownIt("commonmark", {"maxNesting": 128}).enable("table")
    # Ruler.at() resets the alternation chains: keep tables able to interrupt
    # a paragraph, as markdown-it's own registration does.
    md.block.ruler.at("table", _table_recording_prefixes, {"alt": ["paragraph", "reference"]})
    # Only block ranges are needed; inline parsing happens in protect().
    md.core.ruler.disable(["inline", "text_join"])
    return md


_BLOCK_MD = _block_parser()

# What a prefix may be made of: indentation, blockquote markers, list markers
# and an ATX heading's opening "#"s (each followed by a space or tab), then
# whatever Unicode whitespace markdown-it strips off a first line.
_PREFIX_RE = re.compile(r"(?:[ \t>]|(?:[-+*]|\d{1,9}[.)]|#{1,6})(?=[ \t]))*\s*")
_PREFIX_PART_RE = re.compile(r"(>)|([-+*]|\d{1,9}[.)])|( +)")
_LETTER_RE = re.compile(r"[^\W\d_]")


@functools.lru_cache(maxsize=256)
def _continuation(prefix: str) -> str:
    """The prefix that continues a container's paragraph: list markers become spaces.

    A ">" directly followed by a list marker gets one more space: the first
    space after ">" belongs to the blockquote marker, so the blanked marker
    would otherwise come up one column short of the item's content. Tabs
    become spaces (CommonMark tab stops are 4 columns).
    """
    # Spaces instead of tabs first: then every inserted space moves what
    # follows by exactly one column.
    prefix = prefix.expandtabs(4)
    out = []
    pos = 0
    while match := _PREFIX_PART_RE.match(prefix, pos):
        quote, marker, space = match.groups()
        if quote:
            out.append(">")
            following = _PREFIX_PART_RE.match(prefix, match.end())
            if following is not None and following.group(2):
                out.append(" ")
        elif marker:
            out.append(" " * len(marker))
        else:
            out.append(space)
        pos = match.end()
    return "".join(out)


@dataclass(frozen=True)
class _Leaf:
    start: int
    end: int
    segment: Segment


def _prose(
    lines: list[tuple[str, str]],
    start: int,
    block: str,
    pieces: list[tuple[int, int]],
    newline: str,
    extra_suffix: str = "",
) -> Segment | None:
    """Build a prose segment from (content start, content end) per line, or None."""
    prefixes = []
    contents = []
    suffixes = []
    for offset, (begin, finish) in enumerate(pieces):
        body, ending = lines[start + offset]
        prefix = body[:begin]
        if begin and _PREFIX_RE.fullmatch(prefix) is None:
            return None
        prefixes.append(prefix)
        contents.append(body[begin:finish])
        suffixes.append(body[finish:] + ending)
    suffixes[-1] += extra_suffix
    content = "\n".join(contents)
    if block != "text" and content.startswith("$$"):
        return None  # display math
    if not _has_letters(content):
        return None
    source = "".join(body + ending for body, ending in lines[start : start + len(pieces)])
    return Segment(
        source=source + extra_suffix,
        kind="prose",
        content=content,
        block=block,
        line_prefixes=tuple(prefixes),
        line_suffixes=tuple(suffixes),
        continuation="" if block == "heading" else _continuation(prefixes[0]),
        newline=newline,
    )


def _has_letters(content: str) -> bool:
    """Whether any letter is left outside the spans protect() would take."""
    if _LETTER_RE.search(content) is None:
        return False
    _, runs = _analyse(content)
    return any(_LETTER_RE.search(content, begin, end) for begin, end in runs)


def _align(normalized: list[str], start: int, content: str) -> list[tuple[int, int]] | None:
    """Where each line of an inline token's content sits in its source line.

    markdown-it builds the content from the lines with container prefixes cut
    off and the whole stripped; each content line must therefore end its source
    line (the last one before trailing whitespace). Anything else (tabs that
    markdown-it expanded into spaces) makes the leaf verbatim rather than a guess.
    """
    content_lines = content.split("\n")
    pieces = []
    last = len(content_lines) - 1
    for offset, piece in enumerate(content_lines):
        if start + offset >= len(normalized):
            return None
        body = normalized[start + offset]
        if offset == last:
            body = body.rstrip()
        if not piece or not body.endswith(piece):
            return None
        pieces.append((len(body) - len(piece), len(body)))
    return pieces


def _atx_piece(body: str, content: str) -> tuple[int, int] | None:
    hashes = body.find("#")
    if hashes < 0 or not content:
        return None
    after = hashes
    while after < len(body) and body[after] == "#":
        after += 1
    rest = body[after:]
    begin = after + len(rest) - len(rest.lstrip())
    if body[begin : begin + len(content)] != content:
        return None
    return begin, begin + len(content)


def _leaves(
    tokens: list[Token],
    lines: list[tuple[str, str]],
    normalized: list[str],
    env: dict[str, Any],
    newline: str,
) -> Iterator[_Leaf]:
    table_columns: dict[int, list[int]] = env.get(_TABLE_PREFIXES, {})
    for index, token in enumerate(tokens):
        if token.map is None or token.type not in _LEAF_TYPES:
            continue
        start, end = token.map
        end = min(end, len(lines))
        segment: Segment | None = None
        if token.type == "table_open":
            columns = table_columns.get(start)
            if columns is not None and len(columns) == end - start:
                pieces = []
                for offset, column in enumerate(columns):
                    finish = len(normalized[start + offset].rstrip(" \t"))
                    if column >= finish:
                        break
                    pieces.append((column, finish))
                else:
                    segment = _prose(lines, start, "table", pieces, newline)
        else:
            content = tokens[index + 1].content
            if token.type == "paragraph_open":
                aligned = _align(normalized, start, content)
                if aligned is not None and len(aligned) == end - start:
                    segment = _prose(lines, start, "paragraph", aligned, newline)
            elif token.markup.startswith("#"):
                piece = _atx_piece(normalized[start], content)
                if piece is not None and end == start + 1:
                    segment = _prose(lines, start, "heading", [piece], newline)
            else:
                # Setext: the underline is kept whole in the last line's suffix.
                aligned = _align(normalized, start, content)
                if aligned is not None and len(aligned) == end - start - 1:
                    underline = "".join(lines[end - 1])
                    segment = _prose(lines, start, "heading", aligned, newline, underline)
        if segment is not None:
            yield _Leaf(start, end, segment)


_LEAF_TYPES = frozenset({"paragraph_open", "heading_open", "table_open"})


def _verbatim(lines: list[tuple[str, str]], start: int, end: int) -> Segment:
    return Segment(
        source="".join(body + ending for body, ending in lines[start:end]), kind="verbatim"
    )


def split(text: str, *, markdown: bool = True) -> list[Segment]:
    """Cut a document body into verbatim and prose segments. join(split(t)) == t for every t."""
    lines = _lines(text)
    newline = _first_newline(text)
    if not markdown:
        return _split_plain(lines, newline)
    normalized_text = _NEWLINE_RE.sub("\n", text).replace("\0", "\ufffd")
    normalized = normalized_text.split("\n")
    env: dict[str, Any] = {}
    tokens = _BLOCK_MD.parse(normalized_text, env)
    segments: list[Segment] = []
    done = 0
    for leaf in _leaves(tokens, lines, normalized, env, newline):
        if leaf.start < done:
            continue  # never expected; keeps the cut lossless if it happens
        if leaf.start > done:
            segments.append(_verbatim(lines, done, leaf.start))
        segments.append(leaf.segment)
        done = leaf.end
    if done < len(lines):
        segments.append(_verbatim(lines, done, len(lines)))
    return segments


def _split_plain(lines: list[tuple[str, str]], newline: str) -> list[Segment]:
    segments: list[Segment] = []
    done = 0
    index = 0
    while index < len(lines):
        if not lines[index][0].strip():
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index][0].strip():
            index += 1
        pieces = [(0, len(body)) for body, _ in lines[start:index]]
        segment = _prose(lines, start, "text", pieces, newline)
        if segment is None:
            continue
        if start > done:
            segments.append(_verbatim(lines, done, start))
        segments.append(segment)
        done = index
    if done < len(lines):
        segments.append(_verbatim(lines, done, len(lines)))
    return segments


def join(segments: Iterable[Segment]) -> str:
    """Concatenate segment sources: the original text."""
    return "".join(segment.source for segment in segments)


def render(segment: Segment, translation: str) -> str:
    """Rebuild a prose segment's source text with ``translation`` in place of its content.

    Same line count: each line keeps its own prefix and suffix. Otherwise the
    first line gets the first prefix, later lines the continuation prefix, and
    the last line the last suffix. A heading whose line count changed is put on
    one line. ``render(seg, seg.content) == seg.source``.
    """
    if segment.kind != "prose":
        raise ValueError("render() takes prose segments; verbatim ones are kept as they are")
    # A trailing newline is model noise (content never ends with one); kept,
    # it would become an extra blank line.
    lines = _NEWLINE_RE.sub("\n", translation).rstrip("\n").split("\n")
    prefixes = segment.line_prefixes
    suffixes = segment.line_suffixes
    if segment.block == "heading" and len(lines) != len(prefixes):
        lines = [" ".join(part for part in (line.strip() for line in lines) if part)]
    if len(lines) == len(prefixes):
        return "".join(p + line + s for p, line, s in zip(prefixes, lines, suffixes, strict=True))
    out = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        prefix = prefixes[0] if number == 0 else segment.continuation
        if not line:
            prefix = prefix.rstrip()
        out.append(prefix + line + (suffixes[-1] if number == last else segment.newline))
    return "".join(out)


# --------------------------------------------------------------------------
# Inline protection

_RANGES = "translate_dir_ranges"
_BASES = "translate_dir_bases"

_InlineRule = Callable[[StateInline, bool], bool]
_ANY_REFERENCE = {"href": "", "title": ""}


class _EveryLabel(Mapping[str, dict[str, str]]):
    """Reference definitions as seen from one paragraph: every label is defined.

    protect() sees a paragraph, not its document, so it cannot know which
    labels are defined. Taking each ``[label]`` for a reference link protects
    it whole: a translated label would no longer match its definition.
    """

    def __getitem__(self, label: str) -> dict[str, str]:
        if not label:
            raise KeyError(label)
        return _ANY_REFERENCE

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _record(state: StateInline, begin: int, end: int) -> None:
    if begin < end:
        base = state.env[_BASES][-1]
        state.env[_RANGES].append((base + begin, base + end))


def _whole(rule: _InlineRule) -> _InlineRule:
    """Wrap an inline rule so that what it parses is protected whole."""

    def recording(state: StateInline, silent: bool) -> bool:
        if silent:
            return rule(state, silent)
        begin = state.pos
        before = len(state.tokens)
        if not rule(state, silent):
            return False
        # A rule that only appended literal text (an unmatched backtick run)
        # pushed no token: nothing to protect.
        if len(state.tokens) > before:
            _record(state, begin, state.pos)
        return True

    return recording


def _linklike(rule: _InlineRule, *, image: bool) -> _InlineRule:
    """Wrap the link or image rule: the label stays translatable, the target is protected."""
    label_offset = 1 if image else 0

    def recording(state: StateInline, silent: bool) -> bool:
        if silent:
            return rule(state, silent)
        begin = state.pos
        bases: list[int] = state.env[_BASES]
        if image:
            # An image parses its alt text as a new string: positions recorded
            # in there count from the label start.
            bases.append(bases[-1] + begin + 2)
        try:
            matched = rule(state, silent)
        finally:
            if image:
                bases.pop()
        if not matched:
            return False
        end = state.pos
        label_end = parseLinkLabel(state, begin + label_offset, not image)
        after = label_end + 1
        src = state.src
        if end > after + 1 and src[after] == "(":
            if src[after + 1 : end - 1].strip():
                _record(state, after + 1, end - 1)  # [text](destination "title")
        elif end > after + 2 and src[after] == "[":
            _record(state, after + 1, end - 1)  # [text][label]
        else:
            _record(state, begin, end)  # [label][] or [label]: must match its definition
        return True

    return recording


_TEXT_STOP_RE = re.compile(r"[`\[\]!<&\\]")


def _fast_text(state: StateInline, silent: bool) -> bool:
    # Only the characters that can start a construct we record (or an escape
    # that prevents one) end a text run; emphasis and line breaks do not
    # matter, and the text itself is not kept.
    match = _TEXT_STOP_RE.search(state.src, state.pos, state.posMax)
    pos = match.start() if match else state.posMax
    if pos == state.pos:
        return False
    state.pos = pos
    return True


class _Destination:
    __slots__ = ("ok", "pos", "str")

    def __init__(self) -> None:
        self.ok = False
        self.pos = 0
        self.str = ""


_ANGLE_STOP_RE = re.compile(r"[\n<>\\]")
_DESTINATION_STOP_RE = re.compile(r"[\x00-\x20\x7f\\()]")


def _link_destination(string: str, pos: int, maximum: int) -> _Destination:
    """markdown-it's parseLinkDestination, jumping from one character that matters
    to the next instead of looking at each; the raw text stands in for the
    unescaped one, which only rendering needs."""
    result = _Destination()
    start = pos
    if pos < maximum and string[pos] == "<":
        pos += 1
        while match := _ANGLE_STOP_RE.search(string, pos, maximum):
            pos = match.start()
            char = string[pos]
            if char == ">":
                result.ok, result.pos, result.str = True, pos + 1, string[start + 1 : pos]
                return result
            if char != "\\":
                return result  # a newline or "<"
            pos += 2 if pos + 1 < maximum else 1
        return result
    level = 0
    pos = maximum
    search_from = start
    while match := _DESTINATION_STOP_RE.search(string, search_from, maximum):
        here = match.start()
        char = string[here]
        if char == "\\":
            if here + 1 < maximum and string[here + 1] == " ":
                pos = here
                break
            search_from = here + 2 if here + 1 < maximum else here + 1
        elif char == "(":
            level += 1
            if level > 32:
                return result
            search_from = here + 1
        elif char == ")" and level > 0:
            level -= 1
            search_from = here + 1
        else:
            pos = here  # space, control character or unbalanced ")"
            break
    if pos == start or level != 0:
        return result
    result.ok, result.pos, result.str = True, pos, string[start:pos]
    return result


class _PositionsOnly(MarkdownIt):
    """Inline parser for positions: link targets are neither normalised nor vetted.

    Percent-encoding every URL costs time we do not need, and a link that
    markdown-it would refuse to render (``javascript:``) still has a target
    that must not be translated.
    """

    def normalizeLink(self, url: str) -> str:
        return url

    def validateLink(self, url: str) -> bool:
        return True


def _inline_parser() -> MarkdownIt:
    md = _PositionsOnly("commonmark")
    # The rules look their helpers up on the instance; only ours gets the fast one.
    cast(Any, md).helpers = SimpleNamespace(
        parseLinkLabel=parseLinkLabel,
        parseLinkDestination=_link_destination,
        parseLinkTitle=parseLinkTitle,
    )
    md.inline.ruler.at("text", _fast_text)
    md.inline.ruler.at("backticks", _whole(_backtick_rule))
    md.inline.ruler.at("autolink", _whole(_autolink_rule))
    md.inline.ruler.at("html_inline", _whole(_html_inline_rule))
    md.inline.ruler.at("entity", _whole(_entity_rule))
    md.inline.ruler.at("link", _linklike(_link_rule, image=False))
    md.inline.ruler.at("image", _linklike(_image_rule, image=True))
    md.inline.ruler.disable(["newline", "emphasis"])
    md.inline.ruler2.disable(["balance_pairs", "strikethrough", "emphasis", "fragments_join"])
    return md


_INLINE_MD = _inline_parser()
_EVERY_LABEL = _EveryLabel()
# Without one of these there is no Markdown construct to protect.
_MARKUP_RE = re.compile(r"[`\[<&]")

# Spans that win over Markdown when they start first: shortcodes and Liquid
# tags may contain "<", math may contain "[" or "*".
_PRIORITY_RE = re.compile(
    # A tag never contains another opening: without that bound, a long run of
    # unclosed "{{" is scanned to its end from every start (quadratic).
    r"\{\{<(?:(?!\{\{).)*?>\}\}|\{\{%(?:(?!\{\{).)*?%\}\}|\{\{(?:(?!\{\{).)*?\}\}"
    r"|\{%(?:(?!\{%).)*?%\}"
    # $math$: no space inside the dollars, no digit after, not just a number.
    r"|(?<![\\$\w])\$(?![\s$])(?![\d.,]+\$)[^$\n`]*?[^\s$\\`]\$(?![\d$])"
    r"|(?<![\\$\w])\$(?![\s$\d])[^\s$\\`]\$(?![\d$])"
    r"|\[\^[^\]\s]+\]"
    # A task list item's box.
    r"|\A\[[ xX]\](?=\s)",
    re.DOTALL,
)
# Cheap tests that let most contents skip the regexes that would try every position.
_PRIORITY_TRIGGER_RE = re.compile(r"[{$]|\[\^|\A\[")
# Spans found in the plain text between the others.
_TEXT_SPAN_RE = re.compile(
    r"(?P<url>(?<![\w/])(?:(?:https?|ftp)://|www\.)[^\s<>`⟦⟧\[\]]+)"
    r"|\{[#:.][^{}\[\]\n]*\}"
    r"|[⟦⟧]"
)
_TEXT_SPAN_TRIGGER_RE = re.compile(r"://|www\.|[{⟦⟧]")
_URL_TRAILING = ".,:;!?*_~'\""


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        if last in _URL_TRAILING or (last == ")" and url.count(")") > url.count("(")):
            url = url[:-1]
        else:
            break
    return url


def _select(candidates: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans: at each point the earliest start wins, then the longest."""
    chosen: list[tuple[int, int]] = []
    done = 0
    for begin, end in sorted(candidates, key=lambda span: (span[0], -span[1])):
        if begin >= done and end > begin:
            chosen.append((begin, end))
            done = end
    return chosen


def _gaps(length: int, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The plain text runs between sorted, disjoint spans."""
    runs = []
    done = 0
    for begin, end in spans:
        if done < begin:
            runs.append((done, begin))
        done = end
    if done < length:
        runs.append((done, length))
    return runs


Span = tuple[int, int]


@functools.lru_cache(maxsize=8192)
def _analyse(content: str) -> tuple[tuple[Span, ...], tuple[Span, ...]]:
    """Protected spans of ``content`` and the plain text runs left between them.

    Cached: split() asks to decide whether anything translatable is left, and
    the caller's protect() of the same content then costs almost nothing.
    """
    candidates: list[Span] = []
    if _MARKUP_RE.search(content):
        env: dict[str, Any] = {"references": _EVERY_LABEL, _RANGES: candidates, _BASES: [0]}
        _INLINE_MD.inline.tokenize(StateInline(content, _INLINE_MD, env, []))
    if _PRIORITY_TRIGGER_RE.search(content):
        candidates.extend(m.span() for m in _PRIORITY_RE.finditer(content))
    spans = _select(candidates)
    if _TEXT_SPAN_TRIGGER_RE.search(content):
        extra = []
        for begin, end in _gaps(len(content), spans):
            for match in _TEXT_SPAN_RE.finditer(content, begin, end):
                if match.lastgroup == "url":
                    extra.append((match.start(), match.start() + len(_trim_url(match.group()))))
                else:
                    extra.append(match.span())
        if extra:
            spans = _select([*spans, *extra])
    return tuple(spans), tuple(_gaps(len(content), spans))


@functools.lru_cache(maxsize=64)
def _terms_re(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def protect(content: str, *, do_not_translate: Sequence[str] = ()) -> Protected:
    """Replace what must come out byte-identical by ⟦1⟧, ⟦2⟧, ... in order.

    Protected: code spans, autolinks, inline HTML, entities, link and image
    destinations (their text stays translatable), reference labels, footnote
    references, shortcodes and Liquid tags, $math$, bare URLs, ``{#id}``
    attributes, literal ⟦ and ⟧, and the ``do_not_translate`` terms as whole
    words (case-sensitive).
    """
    spans, runs = _analyse(content)
    terms = tuple(term for term in do_not_translate if term)
    if terms:
        pattern = _terms_re(terms)
        found = [m.span() for begin, end in runs for m in pattern.finditer(content, begin, end)]
        if found:
            spans = tuple(_select([*spans, *found]))
    if not spans:
        return Protected(content, ())
    parts = []
    done = 0
    for number, (begin, end) in enumerate(spans, start=1):
        parts.append(content[done:begin])
        parts.append(f"⟦{number}⟧")
        done = end
    parts.append(content[done:])
    return Protected("".join(parts), tuple(content[begin:end] for begin, end in spans))


_PLACEHOLDER_RE = re.compile(r"⟦(\d{1,9})⟧")


def restore(translation: str, protected: Protected) -> str:
    """Put the spans back.

    Raises ValidationFailed naming each placeholder that is missing,
    duplicated or unknown, and any stray ⟦ or ⟧ (e.g. "placeholder ⟦3⟧ missing").
    """
    if not protected.spans and "⟦" not in translation and "⟧" not in translation:
        return translation
    count = len(protected.spans)
    seen = Counter(_PLACEHOLDER_RE.findall(translation))
    problems = []
    for number in range(1, count + 1):
        times = seen.pop(str(number), 0)
        if times == 0:
            problems.append(f"placeholder ⟦{number}⟧ missing")
        elif times > 1:
            problems.append(f"placeholder ⟦{number}⟧ duplicated")
    problems.extend(f"placeholder ⟦{name}⟧ unknown" for name in seen)
    rest = _PLACEHOLDER_RE.sub("", translation)
    if "⟦" in rest or "⟧" in rest:
        problems.append("a ⟦ or ⟧ outside any placeholder")
    if problems:
        raise ValidationFailed(problems)
    return _PLACEHOLDER_RE.sub(lambda m: protected.spans[int(m.group(1)) - 1], translation)
