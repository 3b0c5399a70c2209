"""Cut a document body into prose and verbatim segments, and splice translations back.

Segmentation slices the original text at the line ranges (``token.map``) that
markdown-it-py reports for block tokens and never re-renders Markdown, so
``join(split(text)) == text`` holds by construction. Prose segments are the leaf
paragraphs, headings and tables, also inside blockquotes and list items; each
one remembers, per source line, the container prefix before its content and
what follows it, so ``render()`` can splice a translation back in.

``parse()`` is the one block parse of a body: ``split()`` cuts it into
segments, and ``validate.block_structure()`` reads the source's structure off
the same tokens. Inline protection (the ``⟦n⟧`` markers) lives in
``pipeline.protect``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block import table as _table_rule
from markdown_it.token import Token

from pipeline.protect import has_letters
from pipeline.sites import PLAIN, Site

Kind = Literal["verbatim", "prose"]

__all__ = ["Kind", "Parsed", "Segment", "join", "parse", "render", "split"]


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


# The commonmark preset stops parsing at nesting level 20, and everything after
# that point (not only the deep part) would stay untranslated: 50 nested list
# levels take 100. Deeper still is kept verbatim, never lost.
MAX_NESTING = 128


_BlockRule = Callable[[StateBlock, int, int, bool], bool]

# The characters a block must start with (after its indentation), per rule.
# markdown-it tries every rule on every line (and the interrupting ones on each
# line of a paragraph) and each logs its entry: looking at the one character
# first answers most calls at a fraction of the cost, with the same verdict.
_FIRST_CHARS = {
    "fence": frozenset("`~"),
    "blockquote": frozenset(">"),
    "hr": frozenset("*-_"),
    "list": frozenset("*-+0123456789"),
    "html_block": frozenset("<"),
    "heading": frozenset("#"),
}
_DELIMITER_ROW_CHARS = frozenset("|-:")


def _first_char(rule: _BlockRule, chars: frozenset[str]) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        pos = state.bMarks[start] + state.tShift[start]
        if state.src[pos : pos + 1] not in chars:
            return False
        return rule(state, start, end, silent)

    return prefiltered


def _reference_prefiltered(rule: _BlockRule) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        pos = state.bMarks[start] + state.tShift[start]
        src = state.src
        if src[pos : pos + 1] != "[":
            return False
        # A definition's label ends at its first "]", which ":" must follow: a
        # line without backslashes that closes a label but has no "]:" is none.
        line = src[pos : state.eMarks[start]]
        if "]" in line and "]:" not in line and "\\" not in line:
            return False
        return rule(state, start, end, silent)

    return prefiltered


def _table_prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    # A table needs a delimiter row ("|", "-" or ":" first) on the next line.
    following = start + 1
    if following >= end:
        return False
    pos = state.bMarks[following] + state.tShift[following]
    if state.src[pos : pos + 1] not in _DELIMITER_ROW_CHARS:
        return False
    return _table_recording_prefixes(state, start, end, silent)


def _block_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable("table")
    ruler = md.block.ruler
    # Ruler.at() resets the alternation chains: pass each rule's own, so that
    # what may interrupt a paragraph stays as markdown-it registers it.
    alts = {rule.name: list(rule.alt) for rule in ruler.__rules__}
    ruler.at("table", _table_prefiltered, {"alt": alts["table"]})
    for name, chars in _FIRST_CHARS.items():
        ruler.at(
            name, _first_char(ruler.__rules__[ruler.__find__(name)].fn, chars), {"alt": alts[name]}
        )
    reference = ruler.__rules__[ruler.__find__("reference")].fn
    ruler.at("reference", _reference_prefiltered(reference), {"alt": alts["reference"]})
    # Only block ranges are needed; inline parsing happens in protect().
    md.core.ruler.disable(["inline", "text_join"])
    return md


_BLOCK_MD = _block_parser()

# --------------------------------------------------------------------------
# Site syntax (pipeline.sites): extra block rules, one parser per site.

_SITE_TITLE = "site_title"  # token: a line whose keyword stays, meta["title"] = (begin, end)
_SITE_VERBATIM = "site_verbatim"  # token: lines kept whole
_INTERRUPTS = ["paragraph", "reference", "blockquote", "list"]


def _line_text(state: StateBlock, line: int) -> tuple[int, str]:
    """(column where the line's text starts, the text) of a source line."""
    begin = state.bMarks[line] + state.tShift[line]
    return state.tShift[line], state.src[begin : state.eMarks[line]]


def _verbatim_rule(blocks: tuple[tuple[str, str], ...]) -> _BlockRule:
    compiled = [(re.compile(o), re.compile(c) if c else None) for o, c in blocks]

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if state.sCount[start] - state.blkIndent >= 4:
            return False
        _, text = _line_text(state, start)
        found = next(
            ((m, closer) for opener, closer in compiled if (m := opener.match(text))), None
        )
        if found is None:
            return False
        opened, closer = found
        last = -1
        if closer is None:  # to the next blank line
            last = start
            while last + 1 < end and not state.isEmpty(last + 1):
                last += 1
        else:
            for line in range(start, end):
                _, text = _line_text(state, line)
                if closer.search(text, opened.end() if line == start else 0):
                    last = line
                    break
            if last < 0:
                return False  # never closed: not this construct
        if silent:
            return True
        token = state.push(_SITE_VERBATIM, "", 0)
        token.map = [start, last + 1]
        state.line = last + 1
        return True

    return rule


def _title_token(state: StateBlock, line: int, match: re.Match[str], column: int) -> None:
    token = state.push(_SITE_TITLE, "", 0)
    token.map = [line, line + 1]
    group = "title" if match.group("title") is not None else "btitle"
    if group in match.re.groupindex and match.group(group):
        token.meta = {"title": (column + match.start(group), column + match.end(group))}


def _directive_rule(pattern: str) -> _BlockRule:
    compiled = re.compile(pattern)

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if state.sCount[start] - state.blkIndent >= 4:
            return False
        column, text = _line_text(state, start)
        match = compiled.match(text)
        if match is None:
            return False
        if not silent:
            _title_token(state, start, match, column)
            state.line = start + 1
        return True

    return rule


def _indented_container_rule(pattern: str) -> _BlockRule:
    compiled = re.compile(pattern)

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if state.sCount[start] - state.blkIndent >= 4:
            return False
        column, text = _line_text(state, start)
        match = compiled.match(text)
        if match is None:
            return False
        if silent:
            return True
        indent = state.sCount[start]
        last = start
        line = start + 1
        while line < end:
            if not state.isEmpty(line):
                if state.sCount[line] < indent + 4:
                    break
                last = line
            line += 1
        _title_token(state, start, match, column)
        if last > start:
            saved = state.blkIndent, state.parentType, state.lineMax
            state.blkIndent = indent + 4
            state.parentType = "paragraph"
            state.lineMax = last + 1
            state.md.block.tokenize(state, start + 1, last + 1)
            state.blkIndent, state.parentType, state.lineMax = saved
        state.line = last + 1
        return True

    return rule


@functools.lru_cache(maxsize=16)
def _site_parser(site: Site) -> MarkdownIt:
    if site.verbatim_blocks == () and not site.directive and not site.indented_container:
        return _BLOCK_MD
    md = _block_parser()
    ruler = md.block.ruler
    if site.verbatim_blocks:
        verbatim = _verbatim_rule(site.verbatim_blocks)
        ruler.before("fence", _SITE_VERBATIM, verbatim, {"alt": _INTERRUPTS})
    if site.directive:
        ruler.before(
            "fence", "site_directive", _directive_rule(site.directive), {"alt": _INTERRUPTS}
        )
    if site.indented_container:
        container = _indented_container_rule(site.indented_container)
        ruler.before("fence", "site_container", container, {"alt": _INTERRUPTS})
    return md


# What a prefix may be made of: indentation, blockquote markers, list markers
# and an ATX heading's opening "#"s (each followed by a space or tab), then
# whatever Unicode whitespace markdown-it strips off a first line.
_PREFIX_RE = re.compile(r"(?:[ \t>]|(?:[-+*]|\d{1,9}[.)]|#{1,6})(?=[ \t]))*\s*")
_PREFIX_PART_RE = re.compile(r"(>)|([-+*]|\d{1,9}[.)])|( +)")


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
    *,
    any_prefix: bool = False,
    site: Site = PLAIN,
) -> Segment | None:
    """Build a prose segment from (content start, content end) per line, or None.

    ``any_prefix``: a site title's prefix is its keyword (":::tip "), not a container's."""
    prefixes = []
    contents = []
    suffixes = []
    for offset, (begin, finish) in enumerate(pieces):
        body, ending = lines[start + offset]
        prefix = body[:begin]
        if begin and not any_prefix and _PREFIX_RE.fullmatch(prefix) is None:
            return None
        prefixes.append(prefix)
        contents.append(body[begin:finish])
        suffixes.append(body[finish:] + ending)
    suffixes[-1] += extra_suffix
    content = "\n".join(contents)
    if block != "text" and content.startswith("$$"):
        return None  # display math
    if not has_letters(content, site=site):
        return None
    source = "".join(body + ending for body, ending in lines[start : start + len(pieces)])
    return Segment(
        source=source + extra_suffix,
        kind="prose",
        content=content,
        block=block,
        line_prefixes=tuple(prefixes),
        line_suffixes=tuple(suffixes),
        continuation="" if block == "heading" or any_prefix else _continuation(prefixes[0]),
        newline=newline,
    )


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


def _leaves(parsed: Parsed, lines: list[tuple[str, str]], newline: str) -> Iterator[_Leaf]:
    tokens, normalized, table_columns = parsed.tokens, parsed.lines, parsed.table_columns
    site = parsed.site
    for index, token in enumerate(tokens):
        if token.map is None or token.type not in _LEAF_TYPES:
            continue
        start, end = token.map
        end = min(end, len(lines))
        segment: Segment | None = None
        if token.type == _SITE_TITLE:
            span = token.meta.get("title") if token.meta else None
            if span is not None and end == start + 1:
                segment = _prose(
                    lines, start, "heading", [span], newline, any_prefix=True, site=site
                )
        elif token.type == "table_open":
            columns = table_columns.get(start)
            if columns is not None and len(columns) == end - start:
                pieces = []
                for offset, column in enumerate(columns):
                    finish = len(normalized[start + offset].rstrip(" \t"))
                    if column >= finish:
                        break
                    pieces.append((column, finish))
                else:
                    segment = _prose(lines, start, "table", pieces, newline, site=site)
        else:
            content = tokens[index + 1].content
            if token.type == "paragraph_open":
                aligned = _align(normalized, start, content)
                if aligned is not None and len(aligned) == end - start:
                    segment = _prose(lines, start, "paragraph", aligned, newline, site=site)
            elif token.markup.startswith("#"):
                piece = _atx_piece(normalized[start], content)
                if piece is not None and end == start + 1:
                    segment = _prose(lines, start, "heading", [piece], newline, site=site)
            else:
                # Setext: the underline is kept whole in the last line's suffix.
                aligned = _align(normalized, start, content)
                if aligned is not None and len(aligned) == end - start - 1:
                    underline = "".join(lines[end - 1])
                    segment = _prose(
                        lines, start, "heading", aligned, newline, underline, site=site
                    )
        if segment is not None:
            yield _Leaf(start, end, segment)


_LEAF_TYPES = frozenset({"paragraph_open", "heading_open", "table_open", _SITE_TITLE})


def _verbatim(lines: list[tuple[str, str]], start: int, end: int) -> Segment:
    return Segment(
        source="".join(body + ending for body, ending in lines[start:end]), kind="verbatim"
    )


@dataclass(frozen=True)
class Parsed:
    """One block-level parse of a Markdown body, shared by split() and the structure check.

    Block tokens only: inline parsing happens in protect(), per segment.
    """

    text: str  # the body as given
    tokens: list[Token]
    lines: list[str]  # the body's lines as markdown-it counts them ("\r\n", "\r" -> "\n")
    table_columns: dict[int, list[int]]  # table start line -> where each row's content starts
    site: Site = PLAIN  # the site syntax it was parsed with


def parse(text: str, *, site: Site = PLAIN) -> Parsed:
    """Parse a body's blocks once: hand the result to split() and validate.block_structure().

    ``site``: a site generator's block syntax (admonitions, code shortcodes, MDX
    import lines) is recognised too."""
    normalized_text = _NEWLINE_RE.sub("\n", text).replace("\0", "\ufffd")
    env: dict[str, Any] = {}
    tokens = _site_parser(site).parse(normalized_text, env)
    return Parsed(text, tokens, normalized_text.split("\n"), env.get(_TABLE_PREFIXES, {}), site)


def split(
    text: str, *, markdown: bool = True, parsed: Parsed | None = None, site: Site = PLAIN
) -> list[Segment]:
    """Cut a document body into verbatim and prose segments. join(split(t)) == t for every t.

    ``parsed`` is ``parse(text, site=site)`` when the caller keeps it for the
    structure check (Markdown only); without it the body is parsed here.
    """
    lines = _lines(text)
    newline = _first_newline(text)
    if not markdown:
        return _split_plain(lines, newline)
    if parsed is None:
        parsed = parse(text, site=site)
    elif parsed.text is not text and parsed.text != text:
        raise ValueError("split(): parsed is the parse of another text")
    segments: list[Segment] = []
    done = 0
    for leaf in _leaves(parsed, lines, newline):
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
