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
from itertools import accumulate
from operator import add
from typing import Any, Literal

from markdown_it import MarkdownIt
from markdown_it.parser_block import ParserBlock
from markdown_it.ruler import Ruler
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block import table as _table_rule
from markdown_it.rules_core import StateCore
from markdown_it.rules_core.normalize import normalize as _markdown_it_normalize
from markdown_it.token import Token

from pipeline.protect import has_letters, only_values
from pipeline.sites import EXPLICIT_ID_RE, PLAIN, Site, tab_linked

Kind = Literal["verbatim", "prose"]

__all__ = ["Kind", "Parsed", "Segment", "join", "parse", "render", "split"]


@dataclass(frozen=True, init=False)
class Segment:
    """One piece of a document: sent to the model (prose) or kept as it is (verbatim)."""

    source: str  # exact original text of this piece, line endings included
    kind: Kind
    # For prose only:
    content: str = ""  # the text to translate, lines joined with "\n", no trailing newline
    block: str = ""  # "paragraph" | "heading" | "table" | "text" | "html"
    line_prefixes: tuple[str, ...] = ()  # per source line: container prefix before the content
    line_suffixes: tuple[str, ...] = ()  # per source line: what follows the content, newline too
    continuation: str = ""  # prefix for lines a translation has beyond the source's
    newline: str = "\n"  # line ending for lines a translation has beyond the source's
    # The content is not in the source: it is the title the generator shows when
    # the source has none (MkDocs' "Note" for "!!! note"). A translation is
    # written as an explicit title; the content itself leaves the source as it is.
    implied_title: bool = False

    def __init__(  # the defaults above, once more
        self,
        source: str,
        kind: Kind,
        content: str = "",
        block: str = "",
        line_prefixes: tuple[str, ...] = (),
        line_suffixes: tuple[str, ...] = (),
        continuation: str = "",
        newline: str = "\n",
        implied_title: bool = False,
    ) -> None:
        # The frozen dataclass's own __init__ sets each field with a call of
        # object.__setattr__: 1.0-1.3 µs a segment, where one dict set at once
        # costs 0.5-0.7. A run builds a segment per block, and the main process
        # builds each again from what an analysis worker sends.
        _set_fields(
            self,
            "__dict__",
            {
                "source": source,
                "kind": kind,
                "content": content,
                "block": block,
                "line_prefixes": line_prefixes,
                "line_suffixes": line_suffixes,
                "continuation": continuation,
                "newline": newline,
                "implied_title": implied_title,
            },
        )


_set_fields = object.__setattr__


# --------------------------------------------------------------------------
# Lines

# markdown-it counts lines after turning "\r\n" and "\r" into "\n"; splitting the
# original the same way keeps line numbers aligned while each line keeps its ending.
_NEWLINE_SPLIT_RE = re.compile(r"(\r\n|\r|\n)")
_NEWLINE_RE = re.compile(r"\r\n?")


class _Lines:
    """A text's lines: each one's body and ending (the last ending may be ""),
    and where each starts in the text, so that a run of lines is one slice."""

    __slots__ = ("bodies", "endings", "starts", "text")

    def __init__(self, text: str) -> None:
        if "\r" in text:
            parts = _NEWLINE_SPLIT_RE.split(text)
            bodies, endings = parts[0::2], parts[1::2]
        else:
            bodies = text.split("\n")
            endings = ["\n"] * (len(bodies) - 1)
        if bodies[-1]:
            endings.append("")
        else:
            bodies.pop()
        self.text = text
        self.bodies = bodies
        self.endings = endings
        self.starts = list(
            accumulate((len(b) + len(e) for b, e in zip(bodies, endings, strict=True)), initial=0)
        )

    def __len__(self) -> int:
        return len(self.bodies)

    def source(self, start: int, end: int) -> str:
        """Lines ``start`` to ``end`` (exclusive) as they are in the text, endings included."""
        return self.text[self.starts[start] : self.starts[end]]


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
_FIRST_CHARS = {
    "fence": frozenset("`~"),
    "blockquote": frozenset(">"),
    "hr": frozenset("*-_"),
    "list": frozenset("*-+0123456789"),
    "reference": frozenset("["),
    "html_block": frozenset("<"),
    "heading": frozenset("#"),
}
_DELIMITER_ROW_CHARS = frozenset("|-:")
_UNDERLINE_CHARS = frozenset("-=")
_UNDERLINE_LOOKAHEAD = 32


class _DispatchingRuler(Ruler[_BlockRule]):
    """markdown-it's block ruler, each chain compiled into one function that
    tries only the rules whose block can start with the line's first character.

    markdown-it tries every rule of a chain in turn, on every line (and the
    interrupting ones on each line of a paragraph), and each rule logs its
    entry: one look at the character skips most of those calls, with the same
    verdict and the same order.
    """

    def __compile__(self) -> None:
        super().__compile__()
        assert self.__cache__ is not None
        chars = {rule.fn: _FIRST_CHARS.get(rule.name) for rule in self.__rules__}
        self.__cache__ = {
            chain: [_dispatch([(fn, chars[fn]) for fn in fns])]
            for chain, fns in self.__cache__.items()
        }


def _dispatch(rules: list[tuple[_BlockRule, frozenset[str] | None]]) -> _BlockRule:
    anywhere = tuple(fn for fn, chars in rules if chars is None)
    starts = frozenset(c for _, chars in rules if chars is not None for c in chars)
    by_char = {c: tuple(fn for fn, chars in rules if chars is None or c in chars) for c in starts}

    def dispatch(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        pos = state.bMarks[start] + state.tShift[start]
        for rule in by_char.get(state.src[pos : pos + 1], anywhere):
            if rule(state, start, end, silent):
                return True
        return False

    return dispatch


def _reference_prefiltered(rule: _BlockRule) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        # A definition's label ends at its first "]", which ":" must follow: a
        # line without backslashes that closes a label but has no "]:" is none.
        pos = state.bMarks[start] + state.tShift[start]
        line = state.src[pos : state.eMarks[start]]
        if "]" in line and "]:" not in line and "\\" not in line:
            return False
        return rule(state, start, end, silent)

    return prefiltered


def _code_prefiltered(rule: _BlockRule) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        # Indented code needs four columns more than the container's.
        if state.sCount[start] - state.blkIndent < 4:
            return False
        return rule(state, start, end, silent)

    return prefiltered


def _lheading_prefiltered(rule: _BlockRule) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        # A setext heading needs an underline ("=" or "-" first) before the
        # next blank line. The rule itself stops earlier, where a block
        # interrupts the paragraph: past a few lines, it decides.
        src, b_marks, t_shift, e_marks = state.src, state.bMarks, state.tShift, state.eMarks
        line = start + 1
        while line < end:
            if line - start > _UNDERLINE_LOOKAHEAD:
                return rule(state, start, end, silent)
            pos = b_marks[line] + t_shift[line]
            if pos >= e_marks[line]:
                return False
            if src[pos] in _UNDERLINE_CHARS:
                return rule(state, start, end, silent)
            line += 1
        return False

    return prefiltered


def _hr_prefiltered(rule: _BlockRule) -> _BlockRule:
    def prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        # A thematic break is its marker and blanks only: a list item's "- "
        # followed by text (most lines that start with "-" or "*") is none.
        pos = state.bMarks[start] + state.tShift[start]
        line = state.src[pos : state.eMarks[start]]
        if line.strip(" \t" + line[:1]):
            return False
        return rule(state, start, end, silent)

    return prefiltered


def _normalize(state: StateCore) -> None:
    # markdown-it's normalize rewrites "\r\n", "\r" and NUL with two regex
    # passes over the whole text: run it only where there is one to rewrite.
    if "\r" in state.src or "\0" in state.src:
        _markdown_it_normalize(state)


def _table_prefiltered(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    # A table needs a delimiter row ("|", "-" or ":" first) on the next line.
    following = start + 1
    if following >= end:
        return False
    pos = state.bMarks[following] + state.tShift[following]
    if state.src[pos : pos + 1] not in _DELIMITER_ROW_CHARS:
        return False
    return _table_recording_prefixes(state, start, end, silent)


class _State(StateBlock):
    """markdown-it's block state, its line tables built a line at a time with
    str methods rather than a character at a time: the same tables."""

    def __init__(self, src: str, md: MarkdownIt, env: Any, tokens: list[Token]) -> None:
        super().__init__("", md, env, tokens)
        self.src = src
        parts = src.split("\n")
        if not parts[-1].strip(" \t"):
            # Nothing after the last newline, or a last line of only spaces and
            # tabs without one: markdown-it gives it no line.
            parts.pop()
        lengths = [len(part) for part in parts]
        b_marks = list(accumulate([n + 1 for n in lengths], initial=0))
        b_marks[-1] = len(src)  # the fake last line markdown-it adds
        t_shift = [n - len(part.lstrip(" \t")) for n, part in zip(lengths, parts, strict=True)]
        s_count = t_shift.copy()
        if "\t" in src:
            for line, part in enumerate(parts):
                if "\t" in part[: t_shift[line]]:
                    s_count[line] = _columns(part, t_shift[line])
        self.bMarks = b_marks
        self.eMarks = [*map(add, b_marks, lengths), len(src)]
        self.tShift = [*t_shift, 0]
        self.sCount = [*s_count, 0]
        self.bsCount = [0] * (len(parts) + 1)
        self.lineMax = len(parts)

    def push(self, ttype: str, tag: str, nesting: Literal[-1, 0, 1]) -> Token:
        """``StateBlock.push``, the token built slot by slot: the dataclass
        ``__init__`` (default factories, ``__post_init__``) was a fifth of the
        block parse, for the same token."""
        token = _new_token(Token)
        token.type, token.tag, token.nesting = ttype, tag, nesting
        token.attrs, token.map, token.children = {}, None, None
        token.content = token.markup = token.info = ""
        token.meta = {}
        token.block, token.hidden = True, False
        if nesting < 0:
            self.level -= 1  # closing tag
        token.level = self.level
        if nesting > 0:
            self.level += 1  # opening tag
        self.tokens.append(token)
        return token


_new_token = object.__new__


def _columns(line: str, indent: int) -> int:
    """The width of the first ``indent`` characters (spaces and tabs; tab stops of 4)."""
    offset = 0
    for char in line[:indent]:
        offset += 4 - offset % 4 if char == "\t" else 1
    return offset


class _BlockParser(ParserBlock):
    """markdown-it's block parser on ``_State`` and ``_DispatchingRuler``."""

    def __init__(self, rules: Ruler[_BlockRule]) -> None:
        super().__init__()
        self.ruler = _DispatchingRuler()
        self.ruler.__rules__ = rules.__rules__

    def parse(
        self, src: str, md: MarkdownIt, env: Any, outTokens: list[Token]
    ) -> list[Token] | None:
        if not src:
            return None
        state = _State(src, md, env, outTokens)
        self.tokenize(state, state.line, state.lineMax)
        return state.tokens


def _block_parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"maxNesting": MAX_NESTING}).enable("table")
    md.block = _BlockParser(md.block.ruler)
    ruler = md.block.ruler
    # Ruler.at() resets the alternation chains: pass each rule's own, so that
    # what may interrupt a paragraph stays as markdown-it registers it.
    alts = {rule.name: list(rule.alt) for rule in ruler.__rules__}
    ruler.at("table", _table_prefiltered, {"alt": alts["table"]})
    for name, prefilter in (
        ("reference", _reference_prefiltered),
        ("code", _code_prefiltered),
        ("lheading", _lheading_prefiltered),
        ("hr", _hr_prefiltered),
    ):
        rule = ruler.__rules__[ruler.__find__(name)].fn
        ruler.at(name, prefilter(rule), {"alt": alts[name]})
    # Only block ranges are needed; inline parsing happens in protect().
    md.core.ruler.disable(["inline", "text_join"])
    md.core.ruler.at("normalize", _normalize)
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


def _title_token(
    state: StateBlock, line: int, match: re.Match[str], column: int, *, implied: bool = False
) -> None:
    token = state.push(_SITE_TITLE, "", 0)
    token.map = [line, line + 1]
    group = "title" if match.group("title") is not None else "btitle"
    if group in match.re.groupindex and match.group(group):
        token.meta = {"title": (column + match.start(group), column + match.end(group))}
    elif implied and match.group("title") is None and match.group("type"):
        # No title at all ("" is an explicit empty one): the generator shows
        # the capitalised type, as Python-Markdown writes it.
        at = column + match.end("lead")
        token.meta = {"implied": (at, match.group("type").capitalize(), match.group("lead"))}


def _opening(
    state: StateBlock, start: int, pattern: re.Pattern[str]
) -> tuple[int, re.Match[str]] | None:
    """(column, match) where a site block's first line, not indented as code,
    matches ``pattern``; None otherwise."""
    if state.sCount[start] - state.blkIndent >= 4:
        return None
    column, text = _line_text(state, start)
    match = pattern.match(text)
    return None if match is None else (column, match)


def _directive_rule(pattern: str) -> _BlockRule:
    compiled = re.compile(pattern)

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if (opening := _opening(state, start, compiled)) is None:
            return False
        column, match = opening
        if not silent:
            _title_token(state, start, match, column)
            state.line = start + 1
        return True

    return rule


def _indented_container_rule(pattern: str, *, implied_titles: bool) -> _BlockRule:
    compiled = re.compile(pattern)

    def rule(state: StateBlock, start: int, end: int, silent: bool) -> bool:
        if (opening := _opening(state, start, compiled)) is None:
            return False
        column, match = opening
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
        _title_token(state, start, match, column, implied=implied_titles)
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


_JSX_NAME_RE = re.compile(r"</?(?:[A-Za-z][\w.:-]*)?")


def _jsx_tag_end(src: str, pos: int) -> int | None:
    """Where the JSX tag at ``pos`` ends (after its ">"), over several lines if
    its attributes are; None when it is not a tag. Quotes and nested ``{...}``
    are skipped, as JSX reads them."""
    name = _JSX_NAME_RE.match(src, pos)
    if name is None:
        return None
    depth = 0
    i = name.end()
    while i < len(src):
        char = src[i]
        if char in "\"'" and depth == 0:
            close = src.find(char, i + 1)
            if close < 0:
                return None
            i = close
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return None
        elif char == ">" and depth == 0:
            return i + 1
        elif char == "<" and depth == 0:
            return None
        i += 1
    return None


def _jsx_flow_rule(site: Site) -> _BlockRule:
    return functools.partial(_jsx_flow, site)


def _jsx_flow(site: Site, state: StateBlock, start: int, end: int, silent: bool) -> bool:
    # MDX: a line of JSX tags only (<Tabs>, </TabItem>, <Tabs groupId="x"
    # values={[...]}> over several lines) is JSX "flow", kept whole (one line
    # with a translatable attribute, <img alt="A cat" />, is a title), and it
    # interrupts a paragraph; the lines after it are Markdown. A tag with text
    # after it on its line starts a paragraph, as in MDX (<summary>Title</summary>):
    # the tags are protected there and the text translated.
    pos = state.bMarks[start] + state.tShift[start]
    src = state.src
    if src[pos : pos + 1] != "<":
        return False
    while True:
        tag_end = _jsx_tag_end(src, pos)
        if tag_end is None:
            return False
        pos = tag_end
        while pos < len(src) and src[pos] in " \t":
            pos += 1
        if pos >= len(src) or src[pos] == "\n":
            break
        if src[pos] != "<":
            return False  # text follows: a paragraph
    last = start
    while last + 1 < end and state.bMarks[last + 1] <= pos:
        last += 1
    if last >= end:
        return False
    if not silent:
        column, text = _line_text(state, start)
        text = text.rstrip()
        if last == start and has_letters(text, site=site):
            token = state.push(_SITE_TITLE, "", 0)
            token.meta = {"title": (column, column + len(text))}
        else:
            token = state.push(_SITE_VERBATIM, "", 0)
        token.map = [start, last + 1]
        state.line = last + 1
    return True


@functools.lru_cache(maxsize=16)
def _site_parser(site: Site) -> MarkdownIt:
    if (
        site.verbatim_blocks == ()
        and not site.directive
        and not site.indented_container
        and not site.mdx
    ):
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
        container = _indented_container_rule(
            site.indented_container, implied_titles=site.admonition_titles
        )
        ruler.before("fence", "site_container", container, {"alt": _INTERRUPTS})
    if site.mdx:
        # JSX is not raw HTML to the next blank line: MDX reads Markdown between
        # tags, and has no indented code (text indented in a <TabItem> is prose).
        ruler.before("html_block", "site_jsx_flow", _jsx_flow_rule(site), {"alt": _INTERRUPTS})
        ruler.disable(["html_block", "code"])
    return md


# What a prefix may be made of: indentation, blockquote markers, list markers
# and an ATX heading's opening "#"s (each followed by a space or tab), then
# whatever Unicode whitespace markdown-it strips off a first line.
_PREFIX_RE = re.compile(r"(?:[ \t>]|(?:[-+*]|\d{1,9}[.)]|#{1,6})(?=[ \t]))*\s*")
_PREFIX_PART_RE = re.compile(r"(>)|([-+*]|\d{1,9}[.)])|( +)")


@functools.lru_cache(maxsize=1024)
def _is_prefix(text: str) -> bool:
    """Whether ``text`` is made of container markers (a line's "> ", "- ",
    "1. " and indentation). Cached: a page's lines share a few prefixes."""
    return _PREFIX_RE.fullmatch(text) is not None


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


def _prose(
    lines: _Lines,
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
    bodies, endings = lines.bodies, lines.endings
    line = start
    for begin, finish in pieces:
        body = bodies[line]
        prefix = body[:begin]
        if begin and not any_prefix and not _is_prefix(prefix):
            return None
        prefixes.append(prefix)
        contents.append(body[begin:finish])
        suffixes.append(body[finish:] + endings[line])
        line += 1
    suffixes[-1] += extra_suffix
    content = "\n".join(contents)
    if block != "text" and content.startswith("$$"):
        return None  # display math
    if not has_letters(content, site=site):
        return None
    return Segment(
        source=lines.source(start, line) + extra_suffix,
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


def _linked_tab(site: Site, lines: _Lines, start: int, span: tuple[int, int]) -> bool:
    """A MkDocs content tab (``=== "Label"``) whose id, made from its label, some
    link targets: its label stays as it is, or the link would land nowhere."""
    if not site.tab_slugs or not site.linked:
        return False
    body = lines.bodies[start]
    return body.lstrip().startswith("===") and tab_linked(body[span[0] : span[1]], site.linked)


def _without_id(piece: tuple[int, int], content: str) -> tuple[int, int] | None:
    """A heading's (last) line piece without its trailing ``{#id}``: the id is
    not prose, and a model that moved it (``## {#id} 标题``) or put a full stop
    after it would break every link to the heading. None when nothing but the
    id is left."""
    match = EXPLICIT_ID_RE.search(content)
    if match is None:
        return piece
    begin, end = piece
    if match.start() == 0:
        return None
    return begin, end - (len(content) - match.start())


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


def _leaves(parsed: Parsed, lines: _Lines, newline: str) -> Iterator[tuple[int, int, Segment]]:
    """(start line, end line, prose segment) of each leaf block that can be translated."""
    tokens, normalized, table_columns = parsed.tokens, parsed.lines, parsed.table_columns
    site = parsed.site
    for index, token in enumerate(tokens):
        if token.type not in _LEAF_TYPES or token.map is None:
            continue
        start, end = token.map
        end = min(end, len(lines))
        segment: Segment | None = None
        if token.type == _SITE_TITLE:
            meta = token.meta or {}
            span = meta.get("title")
            if span is not None and end == start + 1 and not _linked_tab(site, lines, start, span):
                segment = _prose(
                    lines, start, "heading", [span], newline, any_prefix=True, site=site
                )
            elif "implied" in meta and end == start + 1:
                at, title, lead = meta["implied"]
                segment = _implied_title(lines, start, at, title, lead, newline)
        elif token.type == "html_block":
            # HTML whose only words are alt="…"/title="…" values (a README's
            # centred logo): the values are translated, the tags protected.
            content = token.content.rstrip()
            if only_values(content, site=site):
                aligned = _align(normalized, start, content)
                if aligned is not None and len(aligned) == end - start:
                    segment = _prose(lines, start, "html", aligned, newline, site=site)
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
                if piece is not None:
                    piece = _without_id(piece, content)
                if piece is not None and end == start + 1:
                    segment = _prose(lines, start, "heading", [piece], newline, site=site)
            else:
                # Setext: the underline is kept whole in the last line's suffix.
                aligned = _align(normalized, start, content)
                if aligned:
                    last = _without_id(aligned[-1], content.rsplit("\n", 1)[-1])
                    aligned = None if last is None else [*aligned[:-1], last]
                if aligned is not None and len(aligned) == end - start - 1:
                    underline = lines.source(end - 1, end)
                    segment = _prose(
                        lines, start, "heading", aligned, newline, underline, site=site
                    )
        if segment is not None:
            yield start, end, segment


_LEAF_TYPES = frozenset({"paragraph_open", "heading_open", "table_open", "html_block", _SITE_TITLE})


def _implied_title(
    lines: _Lines, line: int, at: int, title: str, lead: str, newline: str
) -> Segment | None:
    """A one-line segment for the title an opener line implies: ``!!! note``
    renders as ``!!! note "<translation>"``."""
    body = lines.bodies[line]
    if body[at - len(lead) : at] != lead:
        return None
    return Segment(
        source=lines.source(line, line + 1),
        kind="prose",
        content=title,
        block="heading",
        line_prefixes=(body[:at] + ' "',),
        line_suffixes=('"' + body[at:] + lines.endings[line],),
        newline=newline,
        implied_title=True,
    )


def _verbatim(lines: _Lines, start: int, end: int) -> Segment:
    return Segment(source=lines.source(start, end), kind="verbatim")


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
    normalized_text = text
    if "\r" in text:
        normalized_text = _NEWLINE_RE.sub("\n", normalized_text)
    if "\0" in text:
        normalized_text = normalized_text.replace("\0", "\ufffd")
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
    lines = _Lines(text)
    newline = _first_newline(text)
    if not markdown:
        return _split_plain(lines, newline)
    if parsed is None:
        parsed = parse(text, site=site)
    elif parsed.text is not text and parsed.text != text:
        raise ValueError("split(): parsed is the parse of another text")
    segments: list[Segment] = []
    done = 0
    for start, end, segment in _leaves(parsed, lines, newline):
        if start < done:
            continue  # never expected; keeps the cut lossless if it happens
        if start > done:
            segments.append(_verbatim(lines, done, start))
        segments.append(segment)
        done = end
    if done < len(lines):
        segments.append(_verbatim(lines, done, len(lines)))
    return segments


def _split_plain(lines: _Lines, newline: str) -> list[Segment]:
    segments: list[Segment] = []
    bodies = lines.bodies
    done = 0
    index = 0
    while index < len(bodies):
        if not bodies[index].strip():
            index += 1
            continue
        start = index
        while index < len(bodies) and bodies[index].strip():
            index += 1
        pieces = [(0, len(body)) for body in bodies[start:index]]
        segment = _prose(lines, start, "text", pieces, newline)
        if segment is None:
            continue
        if start > done:
            segments.append(_verbatim(lines, done, start))
        segments.append(segment)
        done = index
    if done < len(bodies):
        segments.append(_verbatim(lines, done, len(bodies)))
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
    if segment.implied_title and translation == segment.content:
        return segment.source  # kept in the source language: no title written
    # A trailing newline is model noise (content never ends with one); kept,
    # it would become an extra blank line.
    if "\r" in translation:
        translation = _NEWLINE_RE.sub("\n", translation)
    lines = translation.rstrip("\n").split("\n")
    prefixes = segment.line_prefixes
    suffixes = segment.line_suffixes
    if segment.block == "heading" and len(lines) != len(prefixes):
        lines = [" ".join(part for part in (line.strip() for line in lines) if part)]
    if len(lines) == len(prefixes):
        if len(lines) == 1:
            return prefixes[0] + lines[0] + suffixes[0]
        return "".join([p + line + s for p, line, s in zip(prefixes, lines, suffixes, strict=True)])
    out = []
    last = len(lines) - 1
    for number, line in enumerate(lines):
        prefix = prefixes[0] if number == 0 else segment.continuation
        if not line:
            prefix = prefix.rstrip()
        out.append(prefix + line + (suffixes[-1] if number == last else segment.newline))
    return "".join(out)
