"""Site generators: which one renders the documents, and its syntax rules as data.

``resolve()`` turns the ``[site]`` settings and the input folder into a ``Site``:
the kind (from ``pipeline.toml``, or detected from the site's config file in the
input folder or a folder above it), the block syntax that is kept verbatim or
translated around its keyword (``segments``), the inline spans that are
protected (``protect``), and how a heading keeps its source id (``anchors``).

A ``Site`` is plain data; the parsers that use it are cached per site.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import SITE_ANCHORS as ANCHORS
from pipeline.config import SITE_KINDS as KINDS
from pipeline.config import SiteSettings
from pipeline.errors import ConfigError

__all__ = ["ANCHORS", "EXPLICIT_ID_RE", "KINDS", "PLAIN", "Site", "detect", "resolve", "slugger"]


# An id a heading already has, at its end: {#id} (also kramdown's {: #id} and
# attribute lists with an id), or Docusaurus's MDX comment {/* #id */}. Kept out
# of the text a model sees (segments) and read as the heading's id (anchors).
EXPLICIT_ID_RE = re.compile(r"\s*(?:\{:?\s*#([^\s{}]+)[^{}]*\}|\{/\*\s*#(\S+?)\s*\*/\})\s*$")


@dataclass(frozen=True)
class Site:
    """How one kind of site writes what translate-dir must keep."""

    kind: str = "plain"
    # How a heading keeps its source id: "" (not at all), "attribute" ({#id}),
    # "mdx-comment" ({/* #id */}) or "html" (<a id="id"></a>).
    heading_ids: str = ""
    # (opening line, closing line) regexes of blocks kept whole: code shortcodes,
    # Liquid highlight/raw blocks, MDX comments. A closing pattern of "" means
    # the block ends before the next blank line (MDX import/export).
    verbatim_blocks: tuple[tuple[str, str], ...] = ()
    # A one-line directive whose keyword is kept and whose title is translated:
    # groups "title" (may be absent) of a Docusaurus ":::tip Title" line.
    directive: str = ""
    # An opener line followed by a body indented four spaces (MkDocs admonitions
    # and tabs): group "title" is translated, the body is Markdown.
    indented_container: str = ""
    # MDX: {...} expressions are code.
    mdx: bool = False
    # Hugo shortcode parameters whose values are prose.
    text_params: tuple[str, ...] = ()
    # HTML (and JSX) attributes whose quoted values are prose: alt="…".
    text_attributes: tuple[str, ...] = ()
    # An indented container's opener without a title (group "type", no group
    # "title": MkDocs' "!!! note") gets the translation of the title the
    # generator would show ("Note") as an explicit one.
    admonition_titles: bool = False
    # Link fragments in the translated file keep working.
    anchors: str = "off"
    # Suffix layout: a link to other.md becomes other.<lang>.md.
    link_translations: bool = False
    # MkDocs with pymdownx.tabbed's slugify: a content tab's id is made from its
    # label, so the label of a tab some link targets stays as it is.
    tab_slugs: bool = False
    # anchors = "linked": the ids that links target on this one page (None: every
    # id). Per page, so not part of the syntax: two sites that differ only here
    # parse alike and compare equal.
    linked: frozenset[str] | None = field(default=None, compare=False)

    @property
    def slug(self) -> Callable[[str], str]:
        return slugger(self.kind)


PLAIN = Site()

# "code-toggle": the Hugo documentation's own (configuration shown as TOML, YAML, JSON).
_CODE_SHORTCODES = (
    "highlight",
    "code",
    "codeblock",
    "code-toggle",
    "mermaid",
    "math",
    "katex",
    "chart",
)
_LIQUID_LITERAL = ("highlight", "raw", "comment", "capture")


def _hugo_blocks() -> tuple[tuple[str, str], ...]:
    return tuple(
        (
            # (?![\w-]): "code" is not the start of "code-toggle".
            rf"^\s*\{{\{{[<%]-?\s*{name}(?![\w-])(?:(?!\}}\}}).)*[>%]\}}\}}",
            rf"\{{\{{[<%]-?\s*/\s*{name}\s*-?[>%]\}}\}}\s*$",
        )
        for name in _CODE_SHORTCODES
    )


def _liquid_blocks() -> tuple[tuple[str, str], ...]:
    return tuple(
        (rf"^\s*\{{%-?\s*{name}\b.*?-?%\}}", rf"\{{%-?\s*end{name}\s*-?%\}}\s*$")
        for name in _LIQUID_LITERAL
    )


_MDX_BLOCKS = (
    (r"^(?:import|export)\s", ""),
    (r"^\s*\{/\*", r"\*/\}\s*$"),
)

# ":::tip Title", ":::note[Title]", ":::danger[Title]{#id}", closing ":::".
_DIRECTIVE = (
    r"^(?P<lead>\s*:{3,}\s*(?:[A-Za-z][\w-]*)?)"
    r"(?:(?P<open>\[)(?P<btitle>[^\]\n]*)(?P<close>\])(?P<attrs>\{[^}\n]*\})?\s*"
    r"|(?P<sp>[ \t]+)(?P<title>[^\n]*?)\s*)?$"
)
# "!!! note", '!!! tip "Title"', '???+ warning "Title"', '=== "Tab"'.
_INDENTED = (
    r"^(?P<lead>(?:(?:!!!|\?\?\?\+?)[ \t]+(?P<type>[\w-]+)(?:[ \t]+[\w-]+)*|===\+?))"
    r'(?:(?P<sp>[ \t]+")(?P<title>[^"\n]*)(?P<close>"))?[ \t]*$'
)


def _site(kind: str, *, mkdocs_attr_list: bool = True) -> Site:
    if kind == "docusaurus":
        return Site(
            kind,
            heading_ids="mdx-comment",
            verbatim_blocks=_MDX_BLOCKS,
            directive=_DIRECTIVE,
            mdx=True,
        )
    if kind == "hugo":
        return Site(kind, heading_ids="attribute", verbatim_blocks=_hugo_blocks())
    if kind == "jekyll":
        return Site(kind, heading_ids="attribute", verbatim_blocks=_liquid_blocks())
    if kind == "mkdocs":
        return Site(
            kind,
            heading_ids="attribute" if mkdocs_attr_list else "html",
            indented_container=_INDENTED,
        )
    if kind == "github":
        return Site(kind, heading_ids="html")
    return PLAIN


def detect(root: Path) -> tuple[str, Path | None]:
    """The site kind whose config file is in ``root`` or the nearest folder above
    it, and that file; ("plain", None) when there is none."""
    root = root.resolve()
    for folder in (root, *root.parents):
        for name in ("docusaurus.config.js", "docusaurus.config.ts", "docusaurus.config.mjs"):
            if (folder / name).is_file():
                return "docusaurus", folder / name
        for name in ("mkdocs.yml", "mkdocs.yaml"):
            if (folder / name).is_file():
                return "mkdocs", folder / name
        for name in ("hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json"):
            if (folder / name).is_file():
                return "hugo", folder / name
        if (folder / "content").is_dir():
            for name in ("config.toml", "config.yaml", "config.yml"):
                if (folder / name).is_file():
                    return "hugo", folder / name
        if (folder / "_config.yml").is_file():
            return "jekyll", folder / "_config.yml"
        if (folder / ".github").is_dir():
            return "github", None
    return "plain", None


def resolve(settings: SiteSettings, root: Path, *, layout: str = "mirror") -> Site:
    """The ``Site`` of a run: ``[site]`` settings, the kind detected for "auto"."""
    kind = settings.kind
    if kind not in KINDS:
        raise ConfigError(f"site.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if settings.anchors not in ANCHORS:
        raise ConfigError(
            f"site.anchors must be one of {', '.join(ANCHORS)}, got {settings.anchors!r}"
        )
    found: Path | None = None
    if kind == "auto":
        kind, found = detect(root)
    elif kind == "mkdocs":
        # Set by hand: its mkdocs.yml still says which extensions shape the ids.
        detected, config_file = detect(root)
        found = config_file if detected == "mkdocs" else None
    attr_list, tab_slugs = True, False
    if kind == "mkdocs" and found is not None:
        try:
            text = found.read_text("utf-8", errors="replace")
        except OSError:
            text = ""
        attr_list = "attr_list" in text
        tab_slugs = _TABBED_SLUGIFY_RE.search(text) is not None
    base = _site(kind, mkdocs_attr_list=attr_list)
    links = settings.link_translations and layout == "suffix"
    if base is PLAIN:
        return Site(kind, text_attributes=settings.text_attributes, link_translations=links)
    return Site(
        base.kind,
        heading_ids=base.heading_ids,
        verbatim_blocks=base.verbatim_blocks,
        directive=base.directive,
        indented_container=base.indented_container,
        mdx=base.mdx,
        text_params=settings.text_params if kind == "hugo" else (),
        text_attributes=settings.text_attributes,
        admonition_titles=settings.admonition_titles and kind == "mkdocs",
        anchors=settings.anchors,
        link_translations=links,
        tab_slugs=tab_slugs,
    )


# pymdownx.tabbed with a slugify option, in mkdocs.yml (its settings indented below it).
_TABBED_SLUGIFY_RE = re.compile(r"pymdownx\.tabbed:[^\n]*(?:\n[ \t]+[^\n]*)*?\n[ \t]+slugify:")


def tab_slug(label: str) -> str:
    """The slug pymdownx.slugs.slugify gives a tab label (lower case): tags off,
    NFC, trimmed, anything but word characters, "-" and " " dropped, spaces to "-"."""
    text = re.sub(r"</?[^>]*>", "", unicodedata.normalize("NFC", label)).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def tab_linked(label: str, wanted: frozenset[str]) -> bool:
    """Whether a link targets the tab labelled ``label``: its id is its slug, or,
    with ``combine_header_slug``, the section's id, "-" and its slug."""
    slug = tab_slug(label)
    return bool(slug) and any(w.lower() == slug or w.lower().endswith("-" + slug) for w in wanted)


# --------------------------------------------------------------------------
# Heading slugs: the id each generator gives a heading without one.


def _github(text: str) -> str:
    # github-slugger (GitHub, Docusaurus) and goldmark's "github" ids (Hugo):
    # lower case, keep letters, marks, numbers, "_" and "-", spaces become "-".
    kept = "".join(
        c for c in text.lower() if c in "-_ " or unicodedata.category(c)[0] in "LMN" or c.isdigit()
    )
    return kept.replace(" ", "-")


def _kramdown(text: str) -> str:
    # kramdown's basic id: leading non-letters off, only [a-zA-Z0-9 -] kept.
    kept = re.sub(r"^[^a-zA-Z]+", "", text)
    kept = re.sub(r"[^a-zA-Z0-9 -]", "", kept).replace(" ", "-").lower()
    return kept or "section"


def _python_markdown(text: str) -> str:
    # Python-Markdown's toc.slugify (MkDocs).
    value = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    value = re.sub(r"[^\w\s-]", "", value).strip().lower()
    return re.sub(r"[-\s]+", "-", value)


def slugger(kind: str) -> Callable[[str], str]:
    """The function that turns a heading's text into the id ``kind`` gives it."""
    if kind == "jekyll":
        return _kramdown
    if kind == "mkdocs":
        return _python_markdown
    return _github


def unique(kind: str) -> Callable[[str, dict[str, int]], str]:
    """Deduplicate ids as ``kind`` does: GitHub, Hugo, kramdown "-1"; MkDocs "_1"."""
    separator = "_" if kind == "mkdocs" else "-"

    def make(slug: str, seen: dict[str, int]) -> str:
        if slug not in seen:
            seen[slug] = 0
            return slug
        while True:
            seen[slug] += 1
            candidate = f"{slug}{separator}{seen[slug]}"
            if candidate not in seen:
                seen[candidate] = 0
                return candidate

    return make
