"""Figure 10: real site pages through translate-dir and the real generators (issue 15).

The corpus (tests/data/sites/, licences and sources in each kind's SOURCE.md):
real pages of the Hugo, Jekyll, MkDocs Material and Docusaurus documentation and
a GitHub README, each kind a minimal site that builds in source form. For each
kind the site's content folder is translated into Chinese through the real
orchestrator with (a) the scripted backend (``to_zh``: every word changes, markup
and placeholders stay) and (b) the embedded model (Gemma 3 270M); then the
source and the translation are built with the real tool and compared:

- site tokens kept: every site-syntax token of the source outside code fences
  (import/export lines, JSX and HTML tags, ``{/* */}`` comments, ``:::type``
  keywords, Hugo shortcode tags with their names and parameters, Liquid tags and
  outputs, ``{% raw %}`` blocks, kramdown and attr_list attribute lists,
  ``!!!``/``???``/``===`` keywords, ``[!NOTE]`` alert markers, ``{#id}`` heading
  ids) found byte-identical in the output (a multiset);
- anchors resolving: every distinct ``href="#x"`` / ``href="page#x"`` of a built
  page that lands on an element with that id in the source build, found on the
  same page of the translated build and landing there too (links that do not
  resolve in the source build, for example to pages outside the corpus, are not
  counted);
- alt texts translated: image alt texts (Markdown and ``alt="..."``; not shortcut
  reference images, whose alt is their label) that differ from the source's;
- builds passing; pieces kept in the source language (the run report).

A tool that is not installed makes its build "not installed", never a pass.
Docusaurus pages go into the real Docusaurus 3 site of tests/sites/docusaurus-app
(its ``node_modules`` symlinked; ``npm ci`` there) with the corpus's stubs
(tests/data/sites/docusaurus/: ``src/``, ``static/``, ``docs/assets/``) and are
translated the way a Docusaurus user does it (``--layout docusaurus``: the
translation goes to ``i18n/zh/docusaurus-plugin-content-docs/current/``); then
``docusaurus build --locale en`` and ``--locale zh`` build them, at the same
time (and, in the tiny and quick runs, with ``--no-minify``: minifying the
bundles checks nothing of the pages and takes a third of a build). The pages link
to three pages outside the corpus, so these builds use
``docusaurus.corpus.config.js`` (the app's configuration with ``onBrokenLinks``
and ``onBrokenMarkdownLinks`` at ``'warn'``; ``onBrokenAnchors`` and broken
images still fail the build) and the links that land are counted from the HTML.
Without the app installed, the pages are only compiled with @mdx-js/mdx v3 (what
Docusaurus's MDX loader runs; ``compile.mjs``), reported as such, and no anchors
are measured. GitHub renders READMEs on its servers: no build, no anchors.
"""

from __future__ import annotations

import html.parser
import json
import os
import posixpath
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.backends import Recorder, ScriptedBackend, to_zh
from bench.common import REPO, Context, Figure, run_pipeline
from pipeline.backends.embedded import BUNDLED
from pipeline.run import BackendFactory

NAME = "sites"
TITLE = "Real site pages: syntax kept, anchors, builds"
SIZES = {
    # Tiny (the smoke test): the model half runs a scripted stand-in.
    "tiny": {"model": True, "minify": False},
    # Quick: the model half takes minutes on two cores; full mode runs it.
    "quick": {"model": False, "minify": False},
    "full": {"model": True, "minify": True},
}
CORPUS = REPO / "tests" / "data" / "sites"
MDX_MODULES = REPO / "tests" / "sites" / "mdx" / "node_modules"
DOCUSAURUS_APP = REPO / "tests" / "sites" / "docusaurus-app"
DOCUSAURUS = DOCUSAURUS_APP / "node_modules" / ".bin" / "docusaurus"
# The app's configuration with the checks that links to pages outside the
# corpus fail relaxed to warnings (tests/data/sites/docusaurus/SOURCE.md).
DOCUSAURUS_CONFIG = "docusaurus.corpus.config.js"
MDX_COMPILE = "@mdx-js/mdx compile"
BUILD_SECONDS = 300
LANG = "zh"


@dataclass(frozen=True)
class Kind:
    """One kind of site in the corpus: where its pages are and what builds it."""

    name: str  # the folder under CORPUS and the [site] kind
    content: str  # the folder that is translated, relative to the site
    tool: str  # the executable that builds it ("" when there is none)
    # "mirror": the translation of <site>/<content> is the other site's <content>;
    # "docusaurus": it is written into the same site's i18n/<lang>/ folder.
    layout: str = "mirror"


KINDS: tuple[Kind, ...] = (
    Kind("docusaurus", "docs", "node", layout="docusaurus"),
    Kind("hugo", "content", "hugo"),
    Kind("jekyll", "_docs", "jekyll"),
    Kind("mkdocs", "docs", "mkdocs"),
    Kind("github", "integration", ""),
)
_SITE_FILES = ("LICENSE", "LICENSE-docs", "SOURCE.md")


# --------------------------------------------------------------------------- the figure


def run(ctx: Context) -> Figure:
    size = ctx.pick(SIZES)
    fig = Figure(NAME, TITLE, params=dict(size))
    minify = bool(size["minify"])
    scripted = measure_corpus(ctx.fresh("sites/scripted"), "scripted", minify=minify)
    fig.data["scripted"] = scripted
    _add_rows(fig, "(a) scripted", scripted)
    if size["model"]:
        backend = "embedded" if ctx.use_model else "stand-in"
        model = measure_corpus(ctx.fresh("sites/model"), backend, minify=minify)
        fig.data["model"] = model
        _add_rows(fig, "(b) Gemma 3 270M" if ctx.use_model else "(b) stand-in", model)
        if not ctx.use_model:
            fig.notes.append("(b) ran a scripted stand-in, not the model")
    else:
        fig.notes.append("(b) the embedded model runs in full mode only (python -m bench)")
    fig.notes.append(
        "Anchors count only links that resolve in the source build; Docusaurus is "
        "built by Docusaurus (tests/sites/docusaurus-app) with onBrokenLinks 'warn' "
        "for three links to pages outside the corpus, or only compiled with "
        "@mdx-js/mdx (no anchors) where it is not installed; GitHub has no local build."
    )
    if not minify:
        fig.notes.append("Docusaurus built with --no-minify (the full run minifies)")
    return fig


def _add_rows(fig: Figure, label: str, result: dict[str, Any]) -> None:
    for kind in result["kinds"]:
        fig.add(f"{label}, {kind['kind']}", summary(kind))
    total = result["total"]
    for key, what in (
        ("tokens", "site tokens kept"),
        ("anchors", "anchors resolving"),
        ("builds", "builds passing"),
    ):
        kept, of = total[key]
        fig.add(f"{label}: {what}", f"{kept}/{of}", target=f"{of}/{of}", ok=kept == of)
    kept, of = total["alts"]
    fig.add(f"{label}: alt texts translated", f"{kept}/{of}")
    fig.add(f"{label}: pieces kept in English", f"{total['kept']} of {total['pieces']}")


def summary(kind: dict[str, Any]) -> str:
    """One kind's row: ``tokens 20/20, anchors 7/7, alts 1/1, build passes, kept 0/30``."""
    parts = [f"tokens {kind['tokens'][0]}/{kind['tokens'][1]}"]
    anchors = kind["anchors"]
    parts.append("anchors n/a" if anchors is None else f"anchors {anchors[0]}/{anchors[1]}")
    parts.append(f"alts {kind['alts'][0]}/{kind['alts'][1]}")
    parts.append(f"build: {build_label(kind)}")
    parts.append(f"kept {kind['kept']}/{kind['pieces']}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- one corpus


def measure_corpus(work: Path, backend: str, *, minify: bool = True) -> dict[str, Any]:
    """Translate and build every kind with ``backend`` ("scripted", "embedded" or
    "stand-in"); the per-kind results and their totals."""
    kinds = [measure_kind(kind, work / kind.name, backend, minify=minify) for kind in KINDS]
    total: dict[str, Any] = {"kept": 0, "pieces": 0}
    for key in ("tokens", "anchors", "alts"):
        pairs = [k[key] for k in kinds if k[key] is not None]
        total[key] = [sum(p[0] for p in pairs), sum(p[1] for p in pairs)]
    built = [k["build"] for k in kinds if k["build"] != "no local generator"]
    total["builds"] = [built.count("passes"), len(built)]
    for k in kinds:
        total["kept"] += k["kept"]
        total["pieces"] += k["pieces"]
    return {"kinds": kinds, "total": total}


def measure_kind(kind: Kind, work: Path, backend: str, *, minify: bool = True) -> dict[str, Any]:
    """Translate one kind's site into ``work/zh``, build both (at once: a
    Docusaurus build leaves a core idle much of the time), count."""
    source, target = work / "source", work / "zh"
    make_site(kind, source)
    if kind.layout == "mirror":
        make_site(kind, target, content=kind.content)
    else:  # the translation goes into the same site, beside its source
        make_site(kind, target)
    translated, requests = _translate(kind, source, target, work, backend)
    pages = sorted(p.relative_to(source / kind.content) for p in markdown_files(source, kind))
    tokens, alts = [0, 0], [0, 0]
    lost: list[str] = []
    for rel in pages:
        src = (source / kind.content / rel).read_text("utf-8")
        out_path = translated_root(kind, target) / rel
        out = out_path.read_text("utf-8") if out_path.is_file() else ""
        kept, of, missing = compare_tokens(kind.name, src, out)
        tokens[0] += kept
        tokens[1] += of
        lost += [f"{rel}: {m}" for m in missing]
        done, total = compare_alts(src, out)
        alts[0] += done
        alts[1] += total
    result: dict[str, Any] = {
        "kind": kind.name,
        "pages": [str(p) for p in pages],
        "tokens": tokens,
        "tokens_lost": lost[:30],
        "alts": alts,
        "kept": translated.kept,
        "pieces": translated.hits + translated.misses,
        "requests": requests,
        "model_seconds": round(translated.model_seconds, 2),
    }
    # After the translation, not beside it: the model's time is measured.
    with ThreadPoolExecutor(2, thread_name_prefix="build") as builds:
        source_job = builds.submit(build, kind, source, work / "public-source", "en", minify)
        target_job = builds.submit(build, kind, target, work / "public-zh", LANG, minify)
        source_build, target_build = source_job.result(), target_job.result()
    result["source_build"] = source_build.status
    result["build"] = target_build.status
    result["builder"] = target_build.builder
    result["build_log"] = target_build.log[-2000:]
    if kind.name == "docusaurus":
        # What the relaxed onBrokenLinks let through: only links out of the corpus.
        result["source_broken_links"] = broken_links(source_build.log)
        result["broken_links"] = broken_links(target_build.log)
    result["anchors"] = None
    result["anchors_dead"] = []
    if source_build.public is not None and target_build.public is not None:
        kept_links, dead = compare_anchors(source_build.public, target_build.public)
        result["anchors"] = [kept_links[0], kept_links[1]]
        result["anchors_dead"] = dead[:30]
    elif source_build.public is not None:
        # The translation did not build: none of its anchors land.
        (_, total), dead = compare_anchors(source_build.public, work / "no-build")
        result["anchors"] = [0, total]
        result["anchors_dead"] = dead[:30]
    return result


def _translate(kind: Kind, source: Path, target: Path, work: Path, backend: str) -> tuple[Any, int]:
    recorder: Recorder | ScriptedBackend
    if backend == "embedded":
        recorder = Recorder()
        name, model = "embedded", BUNDLED
    elif backend == "stand-in":
        recorder = ScriptedBackend(to_zh, one_segment_per_request=True)
        name, model = "embedded", BUNDLED
    else:
        recorder = ScriptedBackend(to_zh)
        name, model = "ollama", "bench"
    factory: BackendFactory = recorder.factory
    overrides = {"site": {"kind": kind.name}}
    # The mirror layout writes the translated pages into the translated site's
    # content folder; the docusaurus layout into the site root's i18n/ folder.
    out = target / kind.content if kind.layout == "mirror" else target
    root = source / kind.content if kind.layout == "mirror" else target / kind.content
    report = run_pipeline(
        root,
        out,
        LANG,
        memory_path=work / "memory.sqlite",
        backend=name,
        model=model,
        factory=factory,
        overrides=overrides,
        layout=kind.layout,
    )
    return report, len(recorder.requests)


def translated_root(kind: Kind, site: Path) -> Path:
    """Where the translation of ``<site>/<kind.content>`` is written."""
    if kind.layout == "docusaurus":
        return site / "i18n" / LANG / "docusaurus-plugin-content-docs" / "current"
    return site / kind.content


def docusaurus_installed() -> bool:
    """Whether tests/sites/docusaurus-app is installed (``npm ci`` there)."""
    return shutil.which("node") is not None and DOCUSAURUS.exists()


def make_site(kind: Kind, dest: Path, *, content: str = "") -> None:
    """The kind's corpus site at ``dest`` (see ``copy_site``); for Docusaurus, laid
    over a copy of tests/sites/docusaurus-app, its ``node_modules`` symlinked."""
    if kind.name != "docusaurus":
        copy_site(CORPUS / kind.name, dest, content=content)
        return
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        DOCUSAURUS_APP,
        dest,
        ignore=shutil.ignore_patterns("node_modules", "build", ".docusaurus", "i18n", "docs"),
    )
    copy_site(CORPUS / kind.name, dest, content=content, merge=True)
    if (DOCUSAURUS_APP / "node_modules").is_dir():
        (dest / "node_modules").symlink_to(
            DOCUSAURUS_APP / "node_modules", target_is_directory=True
        )


def copy_site(corpus: Path, dest: Path, *, content: str = "", merge: bool = False) -> None:
    """The site without its licence notes; without its pages when ``content`` is given
    (the translation writes them)."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        skipped = [n for n in names if n in _SITE_FILES or n in (".jekyll-cache", "public")]
        if content and Path(folder) == corpus / Path(content).parent:
            skipped.append(Path(content).name)
        return skipped

    if dest.exists() and not merge:
        shutil.rmtree(dest)
    shutil.copytree(corpus, dest, ignore=ignore, dirs_exist_ok=merge)
    if content:
        (dest / content).mkdir(parents=True, exist_ok=True)


def markdown_files(site: Path, kind: Kind) -> list[Path]:
    root = site / kind.content
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in (".md", ".mdx") and ".translate-dir" not in p.relative_to(root).parts
    )


# --------------------------------------------------------------------------- building


@dataclass(frozen=True)
class Build:
    status: str  # "passes", "fails", "not installed: ...", "no local generator"
    log: str = ""
    public: Path | None = None  # the built HTML, when there is some to check
    builder: str = ""  # what built it, when not the kind's generator itself


def build_label(kind: dict[str, Any]) -> str:
    """The build column: the status, and what built it when that is no full build."""
    builder = kind.get("builder", "")
    return f"{kind['build']} ({builder} only)" if builder == MDX_COMPILE else kind["build"]


def build(kind: Kind, site: Path, public: Path, lang: str = "en", minify: bool = True) -> Build:
    """Build ``site`` (in ``lang``: Docusaurus builds one locale) with the kind's
    real tool into ``public``; ``minify``: Docusaurus minifies its bundles."""
    if not kind.tool:
        return Build("no local generator")
    tool = shutil.which(kind.tool)
    if tool is None:
        return Build(f"not installed: {kind.tool}")
    if public.exists():
        shutil.rmtree(public)
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if kind.name == "docusaurus" and docusaurus_installed():
        return _docusaurus_build(site, public, lang, minify)
    if kind.name == "docusaurus":
        if not (MDX_MODULES / "@mdx-js" / "mdx").is_dir():
            return Build("not installed: Docusaurus (npm ci in tests/sites/docusaurus-app)")
        root = translated_root(kind, site) if lang != "en" else site / kind.content
        files = [str(p) for p in sorted(root.rglob("*.md*")) if p.suffix in (".md", ".mdx")]
        args = [tool, str(CORPUS / "docusaurus" / "compile.mjs"), *files]
    elif kind.name == "hugo":
        args = [tool, "-s", str(site), "-d", str(public), "--quiet"]
    elif kind.name == "jekyll":
        args = [tool, "build", "-s", str(site), "-d", str(public), "--quiet"]
    else:
        args = [tool, "build", "--strict", "-q", "-f", str(site / "mkdocs.yml"), "-d", str(public)]
    try:
        done = subprocess.run(
            args, cwd=site, env=env, capture_output=True, text=True, timeout=BUILD_SECONDS
        )
    except subprocess.TimeoutExpired:
        return Build("fails", f"timed out after {BUILD_SECONDS} s")
    log = done.stdout + done.stderr
    if kind.name == "docusaurus":  # compiled, not built: no HTML
        return Build("passes" if done.returncode == 0 else "fails", log, None, MDX_COMPILE)
    if done.returncode != 0:
        return Build("fails", log)
    return Build("passes", log, public)


def _docusaurus_build(site: Path, public: Path, lang: str, minify: bool = True) -> Build:
    """``docusaurus build --locale <lang>`` of a site made by ``make_site``."""
    env = {
        **os.environ,
        "DOCUSAURUS_TELEMETRY_DISABLED": "1",
        "NO_UPDATE_NOTIFIER": "1",
        # No webpack cache in the shared node_modules: every build compiles
        # every page (and runs every Markdown link check) afresh.
        "DOCUSAURUS_NO_PERSISTENT_CACHE": "1",
    }
    args = [str(DOCUSAURUS), "build", "--locale", lang, "--out-dir", str(public)]
    args += ["--config", DOCUSAURUS_CONFIG]
    if not minify:
        args.append("--no-minify")
    builder = f"Docusaurus {_docusaurus_version()}"
    try:
        done = subprocess.run(
            args, cwd=site, env=env, capture_output=True, text=True, timeout=BUILD_SECONDS
        )
    except subprocess.TimeoutExpired:
        return Build("fails", f"timed out after {BUILD_SECONDS} s", None, builder)
    log = done.stdout + done.stderr
    if done.returncode != 0:
        return Build("fails", log, None, builder)
    return Build("passes", log, public, builder)


def _docusaurus_version() -> str:
    package = DOCUSAURUS_APP / "node_modules" / "@docusaurus" / "core" / "package.json"
    try:
        return str(json.loads(package.read_text("utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        return "(version unknown)"


_BROKEN_LINK = re.compile(r"^\s*-> linking to (\S+)", re.MULTILINE)


def broken_links(log: str) -> list[str]:
    """The links a Docusaurus build reported broken (with ``onBrokenLinks: 'warn'``),
    sorted, each once."""
    return sorted(set(_BROKEN_LINK.findall(log)))


# --------------------------------------------------------------------------- anchors


class PageAnchors(html.parser.HTMLParser):
    """The ids (``id``/``name``) a built HTML page holds and the ``<a href>`` it
    links to; tests/test_sites_build.py reads built pages with it too."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("id", "name") and value:
                self.ids.add(value)
            if name == "href" and tag == "a" and value:
                self.hrefs.append(value)


def _parse(path: Path, cache: dict[Path, PageAnchors]) -> PageAnchors:
    if path not in cache:
        page = PageAnchors()
        page.feed(path.read_text("utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def fragment_links(public: Path) -> dict[str, dict[str, bool]]:
    """Each built page's distinct local fragment links and whether each lands."""
    cache: dict[Path, PageAnchors] = {}
    found: dict[str, dict[str, bool]] = {}
    for path in sorted(public.rglob("*.html")):
        rel = path.relative_to(public).as_posix()
        links: dict[str, bool] = {}
        for href in _parse(path, cache).hrefs:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or not parts.fragment:
                continue
            target: Path | None = path
            if parts.path:
                if parts.path.startswith("/"):
                    joined = posixpath.normpath(parts.path)
                else:
                    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), parts.path))
                base = public / joined.lstrip("/")
                candidates = [base, base / "index.html", base.with_suffix(".html")]
                target = next((c for c in candidates if c.is_file()), None)
            lands = target is not None and unquote(parts.fragment) in _parse(target, cache).ids
            links[href] = links.get(href, False) or lands
        found[rel] = links
    return found


def compare_anchors(source: Path, target: Path) -> tuple[tuple[int, int], list[str]]:
    """((links that still land, links that land in the source build), the dead ones)."""
    before = fragment_links(source)
    after = fragment_links(target) if target.is_dir() else {}
    kept = total = 0
    dead = []
    for page, links in before.items():
        for href, lands in links.items():
            if not lands:
                continue
            total += 1
            if after.get(page, {}).get(href, False):
                kept += 1
            else:
                dead.append(f"{page}: {href}")
    return (kept, total), dead


# --------------------------------------------------------------------------- tokens


_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,})")


def mask_code(text: str) -> str:
    """``text`` with fenced code blocks blanked (their lines kept, emptied): code is
    not site syntax, and the fidelity figure counts it already."""
    lines = text.split("\n")
    out = []
    fence = ""
    for line in lines:
        match = _FENCE.match(line)
        if fence:
            closes = match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence)
            if closes and match and not line[match.end() :].strip():
                fence = ""
            out.append("")
            continue
        if match:
            fence = match.group(1)
            out.append("")
            continue
        out.append(line)
    return "\n".join(out)


_HEADING_ID = r"\{#[^\s}]+\}"
_TOKENS: dict[str, tuple[str, ...]] = {
    "docusaurus": (
        r"(?m)^(?:import|export)\s.*$",
        r"(?s)\{/\*.*?\*/\}",
        r"</?[A-Za-z][\w.]*(?:\s[^<>]*?)?/?>",
        r"(?m)^[ \t]*:{3,}[\w-]*",
        _HEADING_ID,
    ),
    "hugo": (
        # A code shortcode is kept whole, its body with it.
        r"(?s)\{\{<\s*(highlight|code|codeblock|code-toggle)(?![\w-])[^>]*>\}\}.*?"
        r"\{\{<\s*/\s*\1\s*>\}\}",
        r"(?s)\{\{[<%].*?[>%]\}\}",
        r"(?m)^[ \t>]*\[![A-Z]+\]",
        _HEADING_ID,
    ),
    "jekyll": (
        r"(?s)\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}",
        r"\{%.*?%\}",
        r"\{\{.*?\}\}",
        r"\{:[^}\n]*\}",
        _HEADING_ID,
    ),
    "mkdocs": (
        r"(?m)^[ \t]*(?:!!!|\?\?\?\+?)[ \t]+[\w-]+(?:[ \t]+[\w-]+)*",
        r"(?m)^[ \t]*===\+?",
        r"\{:?[ \t]*(?:[#.][\w-]+|[\w-]+=)[^}\n]*\}",
        r"(?s)<!--.*?-->",
        _HEADING_ID,
    ),
    "github": (r"(?m)^[ \t>]*\[!(?:NOTE|TIP|IMPORTANT|WARNING|CAUTION)\]",),
}


def site_tokens(kind: str, text: str) -> list[str]:
    """Every site-syntax token of ``text`` outside code fences, in order of the
    patterns; a token inside an earlier pattern's match is not counted again."""
    rest = mask_code(_body(text))
    found: list[str] = []
    for pattern in _TOKENS[kind]:
        regex = re.compile(pattern)
        found += [m.group(0) for m in regex.finditer(rest)]
        rest = regex.sub(lambda m: " " * len(m.group(0)), rest)
    return found


def _body(text: str) -> str:
    """``text`` without its front matter (translated keys change; the fidelity figure
    checks the rest)."""
    match = re.match(r"(?s)(---|\+\+\+)\n.*?\n\1\n", text)
    return text[match.end() :] if match else text


def compare_tokens(kind: str, source: str, output: str) -> tuple[int, int, list[str]]:
    """(source tokens found in the output, source tokens, the ones missing)."""
    wanted = Counter(site_tokens(kind, source))
    found = Counter(site_tokens(kind, output))
    missing = wanted - found
    return sum((wanted & found).values()), sum(wanted.values()), sorted(missing.elements())


# A shortcut reference image (``![label]``, ``![label][]``) is left out: its alt
# text is its reference label, which must stay.
_ALT = re.compile(r"!\[([^\]\n]+)\](?=\(|\[[^\]])|\balt=\"([^\"\n]+)\"")


def alt_texts(text: str) -> list[str]:
    """Image alt texts outside code: Markdown images and ``alt="..."`` attributes."""
    return [m.group(1) or m.group(2) for m in _ALT.finditer(mask_code(_body(text)))]


def compare_alts(source: str, output: str) -> tuple[int, int]:
    """(alt texts changed from the source's, alt texts in the source), by position."""
    before, after = alt_texts(source), alt_texts(output)
    changed = sum(1 for a, b in zip(before, after, strict=False) if a != b)
    return changed, len(before)


# --------------------------------------------------------------------------- reporting


def table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of ``{backend label: measure_corpus(...)}``, for the docs."""
    lines = [
        "| backend | kind | site tokens kept | anchors resolving | alt texts translated "
        "| build | pieces kept in English |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, result in results.items():
        rows: Sequence[dict[str, Any]] = result["kinds"]
        for k in rows:
            anchors = "n/a" if k["anchors"] is None else f"{k['anchors'][0]}/{k['anchors'][1]}"
            lines.append(
                f"| {label} | {k['kind']} | {k['tokens'][0]}/{k['tokens'][1]} | {anchors} "
                f"| {k['alts'][0]}/{k['alts'][1]} | {build_label(k)} "
                f"| {k['kept']}/{k['pieces']} |"
            )
        t = result["total"]
        lines.append(
            f"| {label} | **total** | {t['tokens'][0]}/{t['tokens'][1]} "
            f"| {t['anchors'][0]}/{t['anchors'][1]} | {t['alts'][0]}/{t['alts'][1]} "
            f"| {t['builds'][0]}/{t['builds'][1]} passing | {t['kept']}/{t['pieces']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bench.sites [--model] [--workdir DIR]``: the table for docs/benchmarks.md."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.sites")
    parser.add_argument("--model", action="store_true", help="Also run the embedded model.")
    parser.add_argument("--workdir", type=Path, help="Keep the sites here.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="translate-dir-sites-") as tmp:
        work = args.workdir.resolve() if args.workdir else Path(tmp)
        results = {"scripted": measure_corpus(work / "scripted", "scripted")}
        if args.model:
            results["Gemma 3 270M"] = measure_corpus(work / "model", "embedded")
        print(table(results))
        print(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
