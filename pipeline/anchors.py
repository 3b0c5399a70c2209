"""Anchors keep working after translation.

A translated heading gets another automatic id from the site generator
("## 故障排除" is no longer "#troubleshooting"), so every link to it would land
nowhere. ``keep_ids()`` gives each translated heading the id its source had, in
the syntax the site renders (``sites.Site.heading_ids``): ``{#id}`` (Hugo,
kramdown, MkDocs attr_list), ``{/* #id */}`` (Docusaurus, valid MDX) or
``<a id="id"></a>`` (GitHub, which ignores ``{#id}``). In-page and cross-page
links then keep their fragments. Headings that carry an id already, and
headings left in the source language, are untouched.

``translate_links()`` points relative links at translated pages in the suffix
layout (``other.md`` -> ``other.zh.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath

from markdown_it import MarkdownIt

from pipeline import segments
from pipeline.sites import Site, unique

__all__ = ["heading_text", "keep_ids", "source_ids", "translate_links"]

_INLINE = MarkdownIt("commonmark")
_NEWLINE_SPLIT_RE = re.compile(r"(\r\n|\r|\n)")
# An id the heading already has: {#id} (also kramdown's {: #id}) or {/* #id */}.
_EXPLICIT_ID_RE = re.compile(r"\s*(?:\{:?\s*#([^\s{}]+)[^{}]*\}|\{/\*\s*#(\S+?)\s*\*/\})\s*$")


def heading_text(content: str) -> str:
    """A heading's text as a generator slugs it: markup off, code and link text kept."""
    out: list[str] = []
    for token in _INLINE.parseInline(content)[0].children or []:
        if token.type in ("text", "code_inline"):
            out.append(token.content)
        elif token.type == "softbreak":
            out.append(" ")
    return "".join(out).strip()


def _headings(parsed: segments.Parsed) -> list[tuple[int, int, str]]:
    """(first line, last line, inline content) of every heading, in order."""
    found = []
    tokens = parsed.tokens
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            start, end = token.map
            last = start if token.markup.startswith("#") else end - 2
            found.append((start, last, tokens[index + 1].content))
    return found


def source_ids(body: str, site: Site) -> list[str | None]:
    """The id each heading of a source body gets on the site (None: none to keep)."""
    slug = site.slug
    make = unique(site.kind)
    seen: dict[str, int] = {}
    ids: list[str | None] = []
    for _, _, content in _headings(segments.parse(body, site=site)):
        explicit = _EXPLICIT_ID_RE.search(content)
        if explicit:
            ident = explicit.group(1) or explicit.group(2)
            seen.setdefault(ident, 0)
            ids.append(None)  # carries its own id: untouched
            continue
        base = slug(heading_text(content))
        ids.append(make(base, seen) if base else None)
    return ids


def _marker(site: Site, ident: str) -> str:
    if site.heading_ids == "mdx-comment":
        return f" {{/* #{ident} */}}"
    if site.heading_ids == "html":
        return f' <a id="{ident}"></a>'
    return f" {{#{ident}}}"


def keep_ids(source: str, translated: str, site: Site) -> str:
    """``translated`` with each translated heading keeping its source id."""
    if site.anchors == "off" or not site.heading_ids:
        return translated
    ids = source_ids(source, site)
    before = _headings(segments.parse(source, site=site))
    after = _headings(segments.parse(translated, site=site))
    if len(before) != len(after):
        return translated  # another structure: the whole-document check decides
    parts = _NEWLINE_SPLIT_RE.split(translated)
    for ident, (_, _, was), (_, last, now) in zip(ids, before, after, strict=True):
        if ident is None or was == now or _EXPLICIT_ID_RE.search(now):
            continue
        if site.slug(heading_text(now)) == ident:
            continue  # the generator gives it the same id anyway
        line = parts[2 * last]
        position = line.rfind(now.split("\n")[-1])
        if position < 0:
            continue
        position += len(now.split("\n")[-1])
        parts[2 * last] = line[:position] + _marker(site, ident) + line[position:]
    return "".join(parts)


# [text](other.md), [text](../guide/other.md#frag "title"), <other.md>
_PAGE_LINK_RE = re.compile(
    r"^(?P<open><?)(?P<path>(?![a-zA-Z][\w+.-]*:|/|#)[^\s#?<>]+?\.(?:md|mdx|markdown))"
    r"(?P<rest>[#?][^\s>]*)?(?P<tail>>?(?:\s.*)?)$",
    re.DOTALL,
)


def translate_links(
    spans: tuple[str, ...], rename: Callable[[PurePosixPath], str | None]
) -> tuple[str, ...]:
    """Protected spans with each relative page link's file name replaced by
    ``rename(path)`` (None: the link is kept as it is)."""
    out = []
    for span in spans:
        match = _PAGE_LINK_RE.match(span)
        if match is None:
            out.append(span)
            continue
        path = match.group("path")
        name = rename(PurePosixPath(path))
        if name is None:
            out.append(span)
            continue
        folder = path[: path.rfind("/") + 1]
        out.append(
            match.group("open") + folder + name + (match.group("rest") or "") + match.group("tail")
        )
    return tuple(out)
