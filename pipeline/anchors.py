"""Anchors keep working after translation.

A translated heading gets another automatic id from the site generator
("## 故障排除" is no longer "#troubleshooting"), so every link to it would land
nowhere. ``keep_ids()`` gives each translated heading the id its source had, in
the syntax the site renders (``sites.Site.heading_ids``): ``{#id}`` (Hugo,
kramdown, MkDocs attr_list), ``{/* #id */}`` (Docusaurus, valid MDX) or
``<a id="id"></a>`` (GitHub, which ignores ``{#id}``). In-page and cross-page
links then keep their fragments. Headings that carry an id already, and
headings left in the source language, are untouched.

With ``[site] anchors = "linked"`` only the headings some link targets get
one: ``scan_links()`` reads every document of the input folder once per run
(a regex pass, no parse) for ``#frag``, ``page.md#frag``, ``page#frag``,
``../page/#frag``, ``href="…#frag"``, ``{{< ref "page#frag" >}}`` and
``{% link page.md %}#frag``, and ``Links.ids()`` answers which ids of one page
are wanted. A fragment whose page cannot be told (a route set by a slug, an
absolute URL of another layout) is wanted on every page: a spare id costs
nothing, a missing one is a dead link.

``translate_links()`` points relative links at translated pages in the suffix
layout (``other.md`` -> ``other.zh.md``).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from markdown_it import MarkdownIt

from pipeline import segments
from pipeline.sites import EXPLICIT_ID_RE, Site, unique

__all__ = ["Links", "heading_text", "keep_ids", "scan_links", "source_ids", "translate_links"]

_INLINE = MarkdownIt("commonmark")
_NEWLINE_SPLIT_RE = re.compile(r"(\r\n|\r|\n)")


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
        explicit = EXPLICIT_ID_RE.search(content)
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
    wanted = site.linked if site.anchors == "linked" else None
    for ident, (_, _, was), (_, last, now) in zip(ids, before, after, strict=True):
        if ident is None or was == now or EXPLICIT_ID_RE.search(now):
            continue
        if wanted is not None and ident not in wanted:
            continue  # no link targets it: the heading is left as translated
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


# --------------------------------------------------------------------------
# Which headings links target (anchors = "linked").

# (path, fragment) of a link: [t](path#frag "title"), [label]: path#frag,
# href="path#frag" / to="path#frag" (HTML, JSX), {{< ref "path#frag" >}},
# {% link path.md %}#frag. A regex pass over raw text: a link inside a code
# block counts too, which only keeps an id more.
_LINK_PATTERNS = (
    re.compile(r"\]\(\s*<?([^\s()<>#]*)#([^\s()<>\"']+)"),
    re.compile(r"(?m)^[ \t>]*\[[^\]\n]+\]:[ \t]*<?([^\s<>#]*)#([^\s<>\"']+)"),
    re.compile(r"\b(?:href|to)\s*=\s*\{?\s*[\"'`]([^\"'`\s#<>]*)#([^\"'`\s<>]+)"),
    re.compile(r"\bref\s+\"([^\"#\n]*)#([^\"\n]+)\""),
    re.compile(r"\{%-?\s*(?:link|post_url)\s+(\S+?)\s*-?%\}#([^\s)\"'<>\]]+)"),
)
_SCHEME_RE = re.compile(r"^(?:[a-zA-Z][\w+.-]*:|//)")
_PAGE_SUFFIXES = (".md", ".mdx", ".markdown", ".html", ".htm", ".txt")
_INDEX_STEMS = ("index", "_index", "readme")


def _route(path: str) -> str:
    """A page path or link path as a route key: no extension, no trailing "/"."""
    path = posixpath.normpath(path) if path else "."
    lowered = path.lower()
    for suffix in _PAGE_SUFFIXES:
        if lowered.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return "" if path == "." else path.strip("/")


@dataclass(frozen=True)
class Links:
    """The fragments links target: per page (input-relative posix path), and
    those whose page could not be told (wanted everywhere)."""

    by_page: Mapping[str, frozenset[str]]
    anywhere: frozenset[str]

    def ids(self, rel: PurePosixPath | str) -> frozenset[str]:
        """The ids of page ``rel`` that some link targets."""
        return self.by_page.get(PurePosixPath(rel).as_posix(), frozenset()) | self.anywhere

    def digest(self) -> str:
        """Changes whenever a page's wanted ids change (the settings hash)."""
        pages = sorted((page, sorted(ids)) for page, ids in self.by_page.items())
        text = repr((pages, sorted(self.anywhere)))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def scan_links(root: Path, pages: Iterable[PurePosixPath]) -> Links:
    """The fragments that the documents ``pages`` (relative to ``root``) link to."""
    pages = list(pages)
    routes: dict[str, set[str]] = {}  # route -> pages
    stems: dict[str, set[str]] = {}  # last route part -> pages
    for rel in pages:
        name = rel.as_posix()
        route = _route(name)
        keys = [route]
        if rel.stem.lower() in _INDEX_STEMS:
            keys.append(_route(posixpath.dirname(name)))
        for key in keys:
            routes.setdefault(key, set()).add(name)
            stems.setdefault(key.rsplit("/", 1)[-1], set()).add(name)
    found: dict[str, set[str]] = {}
    anywhere: set[str] = set()
    for rel in pages:
        name = rel.as_posix()
        try:
            text = (root / name).read_text("utf-8", errors="replace")
        except OSError:
            continue
        here = posixpath.dirname(name)
        # A page's URL is its folder (/guide/) or itself as a folder
        # (/guide/install/, pretty URLs): a relative link may count from either.
        bases = (here, _route(name))
        for pattern in _LINK_PATTERNS:
            for match in pattern.finditer(text):
                path, fragment = match.group(1), unquote(match.group(2))
                path = path.split("?", 1)[0]
                if not path:
                    found.setdefault(name, set()).add(fragment)
                    continue
                if _SCHEME_RE.match(path):
                    continue  # another site
                targets: set[str] = set()
                if not path.startswith("/"):
                    for base in bases:
                        targets |= routes.get(_route(posixpath.join(base, path)), set())
                if not targets:
                    last = _route(path).rsplit("/", 1)[-1]
                    targets = stems.get(last, set())
                if not targets:
                    anywhere.add(fragment)
                for target in targets:
                    found.setdefault(target, set()).add(fragment)
    return Links({page: frozenset(ids) for page, ids in found.items()}, frozenset(anywhere))
