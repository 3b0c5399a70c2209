"""Inline protection: what must come out of the model byte-identical.

``protect()`` replaces code spans, link destinations, HTML, URLs, shortcodes and
the like by numbered ``⟦n⟧`` markers (``MARKER_RE``, the one definition of their
form); ``restore()`` puts them back and refuses a translation that lost,
duplicated or invented one. ``renumber()`` turns a slice of a protected text
(a sentence run of a long paragraph) into a ``Protected`` of its own.

The spans are found by markdown-it-py's own inline rules, wrapped to record
positions only; a paragraph is seen without its document, so every
``[label]`` counts as a defined reference.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from markdown_it import MarkdownIt
from markdown_it.helpers import parseLinkLabel, parseLinkTitle
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline import autolink as _autolink_rule
from markdown_it.rules_inline import backtick as _backtick_rule
from markdown_it.rules_inline import entity as _entity_rule
from markdown_it.rules_inline import html_inline as _html_inline_rule
from markdown_it.rules_inline import image as _image_rule
from markdown_it.rules_inline import link as _link_rule

from pipeline.errors import ValidationFailed
from pipeline.sites import PLAIN, Site

__all__ = [
    "MARKER_RE",
    "Protected",
    "count_simple_links",
    "has_letters",
    "only_values",
    "protect",
    "renumber",
    "restore",
    "without_values",
]

# A placeholder as protect() writes it: ⟦1⟧, ⟦2⟧, ... At most nine digits, so a
# model's runaway number can never reach int()'s digit limit.
MARKER_RE = re.compile(r"⟦(\d{1,9})⟧")
_LETTER_RE = re.compile(r"[^\W\d_]")


@dataclass(frozen=True, init=False)
class Protected:
    """Content with its protected spans replaced by ⟦1⟧, ⟦2⟧, ... (numbered in order)."""

    text: str
    spans: tuple[str, ...]  # spans[i-1] is the original text of ⟦i⟧
    # Quoted values translated inside a protected tag (alt="…", a shortcode's
    # caption="…"): (marker before the value, marker after it, the quote). The
    # translated value must stay between them and hold no quote or line break.
    values: tuple[tuple[int, int, str], ...] = ()

    def __init__(
        self, text: str, spans: tuple[str, ...], values: tuple[tuple[int, int, str], ...] = ()
    ) -> None:
        # The fields set at once, as segments.Segment does (a run builds one
        # per prose segment, twice with analysis workers).
        _set_fields(self, "__dict__", {"text": text, "spans": spans, "values": values})


_set_fields = object.__setattr__


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
            destination_end = _titled_destination_end(src, after + 1, end - 1)
            if destination_end is not None:
                # [text](destination "title"): the title is translated, and
                # stays a title the checks can parse.
                _record(state, after + 1, destination_end)
            elif src[after + 1 : end - 1].strip():
                _record(state, after + 1, end - 1)  # [text](destination)
        elif end > after + 2 and src[after] == "[":
            _record(state, after + 1, end - 1)  # [text][label]
        else:
            _record(state, begin, end)  # [label][] or [label]: must match its definition
        return True

    return recording


def _titled_destination_end(src: str, begin: int, end: int) -> int | None:
    """Where the destination of ``(destination "title")`` ends, when its title has
    words to translate; else None."""
    pos = begin
    while pos < end and src[pos] in " \t\n":
        pos += 1
    destination = _link_destination(src, pos, end)
    if not destination.ok or destination.pos == pos:
        return None
    after = destination.pos
    pos = after
    while pos < end and src[pos] in " \t\n":
        pos += 1
    if pos >= end or pos == after:
        return None
    title = parseLinkTitle(src, pos, end)
    if not title.ok or not _LETTER_RE.search(title.str):
        return None
    return after


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
    r"\{\{<(?:(?!\{\{).)*?>\}\}|\{\{%(?:(?!\{\{).)*?%\}\}|\{\{(?:(?!\{\{|\{%).)*?\}\}"
    # Liquid's {% raw %}…{% endraw %} is literal text, kept whole with its tags.
    r"|\{%-?\s*raw\s*-?%\}(?:(?!\{%-?\s*raw\b).)*?\{%-?\s*endraw\s*-?%\}"
    r"|\{%(?:(?!\{%).)*?%\}"
    # $math$: no space inside the dollars, no digit after, not just a number.
    r"|(?<![\\$\w])\$(?![\s$])(?![\d.,]+\$)[^$\n`]*?[^\s$\\`]\$(?![\d$])"
    r"|(?<![\\$\w])\$(?![\s$\d])[^\s$\\`]\$(?![\d$])"
    r"|\[\^[^\]\s]+\]"
    # A task list item's box.
    r"|\A\[[ xX]\](?=\s)",
    re.DOTALL,
)


# Cheap tests that let most contents skip the regexes that would try every
# position. Substring tests, not regexes: on the paragraphs of a page they are
# several times faster than a search for the same alternatives.
def _priority_trigger(content: str) -> bool:
    return "{" in content or "$" in content or "[^" in content or content.startswith("[")


def _text_span_trigger(content: str) -> bool:
    return (
        "://" in content or "www." in content or "{" in content or "⟦" in content or "⟧" in content
    )


def _not_simple(content: str) -> bool:
    return "<" in content or "&" in content or "\\" in content or "![" in content


# Spans found in the plain text between the others.
_TEXT_SPAN_RE = re.compile(
    r"(?P<url>(?<![\w/])(?:(?:https?|ftp)://|www\.)[^\s<>`⟦⟧\[\]]+)"
    r"|\{[#:.][^{}\[\]\n]*\}"
    r"|[⟦⟧]"
)
# Where a match of _TEXT_SPAN_RE can start. That pattern opens with a
# lookbehind, so a search tries it at every position; this one opens with
# literals only, which the regex engine skips to (five times faster on a page).
_TEXT_SPAN_START_RE = re.compile(r"https?://|ftp://|www\.|\{|⟦|⟧")


def _text_span_matches(content: str, begin: int, end: int) -> Iterator[re.Match[str]]:
    """``_TEXT_SPAN_RE.finditer(content, begin, end)``, the same matches: only
    the positions where one can start are tried."""
    pos = begin
    while start := _TEXT_SPAN_START_RE.search(content, pos, end):
        match = _TEXT_SPAN_RE.match(content, start.start(), end)
        if match is None:
            pos = start.start() + 1
            continue
        yield match
        pos = match.end()


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


# Anything here sends a content to markdown-it's own inline rules.
_TICK_OR_BRACKET_RE = re.compile(r"[`\[]")
_IN_LABEL_RE = re.compile(r"[`\[\]]")
_TICKS_RE = re.compile(r"`+")
# "(destination)" right after a label: no space, title, "<", "(" or escape in it.
_SIMPLE_DESTINATION_RE = re.compile(r"\(([^\x00-\x20\x7f\\()<]+)\)")


def _code_span_end(content: str, start: int) -> tuple[int, bool]:
    """After the backtick run at ``start``: (end of the code span, True), or
    (end of the run, False) when no run of the same length closes it."""
    run = _TICKS_RE.match(content, start)
    assert run is not None
    length = run.end() - start
    for closer in _TICKS_RE.finditer(content, run.end()):
        if closer.end() - closer.start() == length:
            return closer.end(), True
    return run.end(), False


def _simple_markup(content: str) -> list[Span] | None:
    """What the inline rules would record, for contents made only of text, code
    spans and ``[label](destination)`` links (labels without brackets); None for
    anything else, which the rules then parse. Most paragraphs of real
    documentation are this simple, and markdown-it's general rules cost several
    times more. tests/test_segments_properties.py holds the two to the same answer.
    """
    scanned = _simple_scan(content)
    return None if scanned is None else scanned[0]


def count_simple_links(content: str) -> int | None:
    """How many ``[label](destination)`` links ``content`` holds when, like most
    paragraphs, it is made only of text, code spans and such links; None otherwise.
    Lets the structure check count links without a full inline parse."""
    scanned = _simple_scan(content)
    return None if scanned is None else scanned[1]


def _simple_scan(content: str) -> tuple[list[Span], int] | None:
    if _not_simple(content):
        return None
    spans: list[Span] = []
    links = 0
    pos = 0
    while match := _TICK_OR_BRACKET_RE.search(content, pos):
        start = match.start()
        if content[start] == "`":
            pos, closed = _code_span_end(content, start)
            if closed:
                spans.append((start, pos))
            continue
        inside: list[Span] = []
        scan = start + 1
        while True:
            found = _IN_LABEL_RE.search(content, scan)
            if found is None or found.group() == "[":
                return None
            if found.group() == "]":
                break
            scan, closed = _code_span_end(content, found.start())
            if closed:
                inside.append((found.start(), scan))
        destination = _SIMPLE_DESTINATION_RE.match(content, found.end())
        if destination is None:
            return None
        spans.extend(inside)
        spans.append(destination.span(1))
        links += 1
        pos = destination.end()
    return spans, links


@functools.lru_cache(maxsize=8192)
def _analyse(
    content: str,
    mdx: bool = False,
    text_params: tuple[str, ...] = (),
    text_attributes: tuple[str, ...] = (),
) -> tuple[tuple[Span, ...], tuple[Span, ...], tuple[Span, ...]]:
    """Protected spans of ``content``, the plain text runs left between them, and
    the quoted values opened inside protected tags (a subset of the runs).

    Cached: split() asks to decide whether anything translatable is left, and
    the caller's protect() of the same content then costs almost nothing.
    ``mdx``: JSX tags and ``{...}`` expressions are code too. ``text_params``:
    the values of these shortcode parameters stay translatable;
    ``text_attributes``: so do these attributes of HTML (and JSX) tags.
    """
    candidates: list[Span] = []
    if _MARKUP_RE.search(content):
        simple = _simple_markup(content)
        if simple is not None:
            candidates = simple
        else:
            env: dict[str, Any] = {"references": _EVERY_LABEL, _RANGES: candidates, _BASES: [0]}
            _INLINE_MD.inline.tokenize(StateInline(content, _INLINE_MD, env, []))
    if _priority_trigger(content):
        candidates.extend(m.span() for m in _PRIORITY_RE.finditer(content))
    spans = _select(candidates)
    if _text_span_trigger(content):
        extra = []
        for begin, end in _gaps(len(content), spans):
            for match in _text_span_matches(content, begin, end):
                if match.lastgroup == "url":
                    extra.append((match.start(), match.start() + len(_trim_url(match.group()))))
                else:
                    extra.append(match.span())
        if extra:
            spans = _select([*spans, *extra])
    if mdx and ("{" in content or "<" in content):
        spans = _select([*spans, *_mdx_spans(content, spans)])
    values: list[Span] = []
    if text_params and "{{" in content:
        spans = _open_values(content, spans, _SHORTCODE_RE, _param_re(text_params), values)
    if text_attributes and "<" in content:
        spans = _open_values(content, spans, _TAG_RE, _param_re(text_attributes), values)
    return tuple(spans), tuple(_gaps(len(content), spans)), tuple(values)


# A JSX tag: <Tabs>, </TabItem>, <Admonition type="tip" />, <>, </>.
_JSX_TAG_RE = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s(?:[^<>{}]|\{[^{}]*\})*)?/?>|</?>")


def _mdx_spans(content: str, spans: Sequence[Span]) -> list[Span]:
    """JSX tags and balanced ``{...}`` expressions in the text between ``spans``."""
    found: list[Span] = []
    for begin, end in _gaps(len(content), spans):
        found.extend(m.span() for m in _JSX_TAG_RE.finditer(content, begin, end))
        pos = begin
        while (start := content.find("{", pos, end)) >= 0:
            depth = 0
            for index in range(start, end):
                if content[index] == "{":
                    depth += 1
                elif content[index] == "}":
                    depth -= 1
                    if depth == 0:
                        found.append((start, index + 1))
                        pos = index + 1
                        break
            else:
                break  # never closed: MDX would refuse it anyway, leave it be
    return found


_SHORTCODE_RE = re.compile(r"\{\{[<%]")
# An opening HTML or JSX tag (not a closing tag, comment or autolink).
_TAG_RE = re.compile(r"<[A-Za-z][\w.:-]*(?=[\s/>])")
_BLANK_RE = re.compile(r"\s*")


@functools.lru_cache(maxsize=64)
def _param_re(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(map(re.escape, names))
    return re.compile(rf"""(?<![\w.:-])(?:{alternatives})=(?:"([^"\n]*)"|'([^'\n]*)')""")


def _open_values(
    content: str,
    spans: Sequence[Span],
    opener: re.Pattern[str],
    pattern: re.Pattern[str],
    values: list[Span],
) -> list[Span]:
    """Cut each span that ``opener`` starts (a shortcode, a tag) around the
    quoted values of the parameters ``pattern`` names (``alt="A cat"``) that hold
    words: the name and the other parameters stay protected. Each value opened
    is added to ``values``. A cut piece swallows the neighbouring spans that
    only blanks separate from it (``<p><img alt="`` is one marker)."""
    out: list[Span] = []
    pieces: set[int] = set()  # indexes in out of cut pieces
    for begin, end in spans:
        opened = opener.match(content, begin)
        if opened is None:
            out.append((begin, end))
            continue
        done = begin
        for value_begin, value_end in _quoted_values(content, opened.end(), end, pattern):
            if not _LETTER_RE.search(content, value_begin, value_end):
                continue
            pieces.add(len(out))
            out.append((done, value_begin))
            values.append((value_begin, value_end))
            done = value_end
        if done != begin:
            pieces.add(len(out))
        out.append((done, end))
    if not pieces:
        return out
    merged: list[Span] = []
    joined: set[int] = set()  # indexes in merged that hold a cut piece
    for index, (begin, end) in enumerate(out):
        if merged:
            last_begin, last_end = merged[-1]
            blank = _BLANK_RE.fullmatch(content, last_end, begin) is not None
            if blank and (index in pieces or len(merged) - 1 in joined):
                merged[-1] = (last_begin, end)
                if index in pieces:
                    joined.add(len(merged) - 1)
                continue
        if index in pieces:
            joined.add(len(merged))
        merged.append((begin, end))
    return merged


def _quoted_values(content: str, begin: int, end: int, pattern: re.Pattern[str]) -> Iterator[Span]:
    """Where the quoted values of the parameters ``pattern`` names lie in the tag
    (or shortcode) whose name ends at ``begin`` and that ends at ``end``; values
    inside a JSX ``{expression}`` are code and not among them."""
    for match in pattern.finditer(content, begin, end):
        before = content[begin : match.start()]
        if before.count("{") != before.count("}"):
            continue
        yield match.span(1 if match.group(1) is not None else 2)


def only_values(content: str, *, site: Site = PLAIN) -> bool:
    """Whether the only words of ``content`` (an HTML block) are the quoted values
    of the ``site.text_attributes`` of its tags: ``<p align="center"><img alt="A
    cat"></p>``. Such a block is translated as those values alone, the rest kept
    byte-identical; HTML with text of its own (tables, scripts, comments) is not."""
    if not site.text_attributes or _LETTER_RE.search(content) is None:
        return False
    _, runs, values = _analyse(content, site.mdx, site.text_params, site.text_attributes)
    opened = set(values)
    return bool(opened) and all(
        run in opened or _LETTER_RE.search(content, *run) is None for run in runs
    )


def without_values(content: str, *, site: Site = PLAIN) -> str:
    """``content`` (an HTML block) with the quoted values of its tags'
    ``site.text_attributes`` taken out, whether they hold words or not: what
    must come out of a translation unchanged (``validate``'s fingerprint)."""
    if not site.text_attributes or "<" not in content:
        return content
    spans, _, _ = _analyse(content, site.mdx)
    pattern = _param_re(site.text_attributes)
    parts = []
    done = 0
    for begin, end in spans:
        opened = _TAG_RE.match(content, begin)
        if opened is None:
            continue
        for value_begin, value_end in _quoted_values(content, opened.end(), end, pattern):
            parts.append(content[done:value_begin])
            done = value_end
    parts.append(content[done:])
    return "".join(parts)


@functools.lru_cache(maxsize=64)
def _terms_re(terms: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def protect(content: str, *, do_not_translate: Sequence[str] = (), site: Site = PLAIN) -> Protected:
    """Replace what must come out byte-identical by ⟦1⟧, ⟦2⟧, ... in order.

    Protected: code spans, autolinks, inline HTML, entities, link and image
    destinations (their text stays translatable), reference labels, footnote
    references, shortcodes and Liquid tags, $math$, bare URLs, ``{#id}``
    attributes, literal ⟦ and ⟧, and the ``do_not_translate`` terms as whole
    words (case-sensitive). ``site``: MDX's JSX tags and ``{...}`` expressions
    too; a Hugo shortcode's text parameters and the ``site.text_attributes``
    of HTML tags (``alt``, ``title``) stay translatable.
    """
    spans, runs, values = _analyse(content, site.mdx, site.text_params, site.text_attributes)
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
    guards: tuple[tuple[int, int, str], ...] = ()
    if values:
        ends = {end: number for number, (_, end) in enumerate(spans, start=1)}
        begins = {begin: number for number, (begin, _) in enumerate(spans, start=1)}
        guards = tuple(
            (ends[begin], begins[end], content[end])
            for begin, end in values
            if begin in ends and end in begins
        )
    return Protected("".join(parts), tuple(content[begin:end] for begin, end in spans), guards)


def restore(translation: str, protected: Protected) -> str:
    """Put the spans back.

    Raises ValidationFailed naming each placeholder that is missing,
    duplicated or unknown, and any stray ⟦ or ⟧ (e.g. "placeholder ⟦3⟧ missing").
    """
    if not protected.spans and "⟦" not in translation and "⟧" not in translation:
        return translation
    restored = _restore_exactly(translation, protected)
    if restored is None:
        raise ValidationFailed(_restore_problems(translation, protected))
    return restored


def _restore_problems(translation: str, protected: Protected) -> list[str]:
    """Each thing that kept ``_restore_exactly`` from putting the spans back:
    never none, since that pass takes every translation without one."""
    count = len(protected.spans)
    seen = Counter(MARKER_RE.findall(translation))
    problems = []
    for number in range(1, count + 1):
        times = seen.pop(str(number), 0)
        if times == 0:
            problems.append(f"placeholder ⟦{number}⟧ missing")
        elif times > 1:
            problems.append(f"placeholder ⟦{number}⟧ duplicated")
    problems.extend(f"placeholder ⟦{name}⟧ unknown" for name in seen)
    rest = MARKER_RE.sub("", translation)
    if "⟦" in rest or "⟧" in rest:
        problems.append("a ⟦ or ⟧ outside any placeholder")
    if not problems:
        problems.extend(_value_problems(translation, protected.values))
    assert problems, "the one-pass restore refused a translation with no problem"
    return problems


def _restore_exactly(translation: str, protected: Protected) -> str | None:
    """The common case in one pass: each marker exactly once, none unknown, no
    stray bracket and no moved value. None for anything else, which
    ``_restore_problems`` then names problem by problem."""
    parts = MARKER_RE.split(translation)
    numbers = parts[1::2]
    spans = protected.spans
    count = len(spans)
    if len(numbers) != count:
        return None
    ordered = _ORDERED[:count] if count <= len(_ORDERED) else [str(n) for n in range(1, count + 1)]
    in_order = numbers == ordered
    if not in_order and set(numbers) != set(ordered):
        return None
    # Each marker holds one ⟦ and one ⟧: any more is a stray bracket.
    if translation.count("⟦") != count or translation.count("⟧") != count:
        return None
    if protected.values and _value_problems(translation, protected.values):
        return None
    parts[1::2] = spans if in_order else [spans[int(number) - 1] for number in numbers]
    return "".join(parts)


# Marker numbers in order, as MARKER_RE finds them: "1", "2", ...
_ORDERED = [str(n) for n in range(1, 257)]


def _value_problems(translation: str, values: Sequence[tuple[int, int, str]]) -> list[str]:
    """A translated value must stay inside its quotes: between its two markers,
    in order, with no quote of its own and no line break."""
    problems = []
    for before, after, quote in values:
        start = translation.find(f"⟦{before}⟧")
        stop = translation.find(f"⟦{after}⟧")
        if stop < start:
            problems.append(f"the quoted text after ⟦{before}⟧ moved out of its quotes")
            continue
        value = translation[start + len(f"⟦{before}⟧") : stop]
        if quote in value or "\n" in value:
            problems.append(f"the quoted text after ⟦{before}⟧ holds a {quote} or a line break")
    return problems


def renumber(
    text: str, spans: Sequence[str], values: Sequence[tuple[int, int, str]] = ()
) -> Protected:
    """A slice of a protected text as a ``Protected`` of its own, markers from ⟦1⟧.

    ``spans`` are the whole text's; each marker in ``text`` takes its span along,
    and ``values`` (the whole text's) the guards of the values in the slice.
    """
    local: list[str] = []
    numbers: dict[int, int] = {}

    def sub(match: re.Match[str]) -> str:
        local.append(spans[int(match.group(1)) - 1])
        numbers[int(match.group(1))] = len(local)
        return f"⟦{len(local)}⟧"

    renumbered = MARKER_RE.sub(sub, text)
    guards = tuple(
        (numbers[before], numbers[after], quote)
        for before, after, quote in values
        if before in numbers and after in numbers
    )
    return Protected(renumbered, tuple(local), guards)


def has_letters(content: str, *, site: Site = PLAIN) -> bool:
    """Whether any letter is left outside the spans protect() would take.

    Cached with the spans: the protect() of the same content that follows
    costs almost nothing.
    """
    first = _LETTER_RE.search(content)
    if first is None:
        return False
    spans, runs, _ = _analyse(content, site.mdx, site.text_params, site.text_attributes)
    if not spans or first.start() < spans[0][0]:
        return True  # most prose: a word before anything protected
    return any(_LETTER_RE.search(content, begin, end) for begin, end in runs)
