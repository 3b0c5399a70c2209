"""Translated sites build with the real generators, and every anchor link lands.

Each test copies a small site from tests/sites/, translates it into Chinese with
the scripted backend (pipeline.testing.to_zh: every word changes, so every
heading's automatic id would change too), builds it with the real tool, and
checks the built HTML: every ``href="#x"`` and ``href="page#x"`` lands on an
element with that id. The tools: ``hugo`` and ``jekyll`` (Debian packages),
``mkdocs`` with mkdocs-material (the test extra), ``@mdx-js/mdx`` v3 (npm, in
tests/sites/mdx). Under CI (CI=true) a missing tool fails the test.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from bench.sites import PageAnchors
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import invoke

SITES = Path(__file__).parent / "sites"
MDX = SITES / "mdx"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        message = f"{tool} is not installed (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


def build(args: list[str], cwd: Path) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def _page(path: Path) -> PageAnchors:
    collected = PageAnchors()
    collected.feed(path.read_text("utf-8"))
    return collected


def dead_anchors(public: Path, pages: list[Path]) -> tuple[int, list[str]]:
    """(fragment links checked, the ones that land nowhere) in ``pages`` under ``public``."""
    checked = 0
    dead = []
    for page in pages:
        url = "/" + page.relative_to(public).as_posix()
        for href in _page(page).hrefs:
            parts = urlsplit(href)
            if (
                parts.scheme
                or (parts.netloc and parts.netloc != "example.org")
                or not parts.fragment
            ):
                continue
            if parts.path:
                target_url = posixpath.normpath(posixpath.join(posixpath.dirname(url), parts.path))
                base = public / target_url.lstrip("/")
                candidates = [base, base / "index.html", base.with_suffix(".html")]
                target = next((c for c in candidates if c.is_file()), None)
            else:
                target = page
            checked += 1
            if target is None or unquote(parts.fragment) not in _page(target).ids:
                dead.append(f"{page.relative_to(public)}: {href}")
    return checked, dead


def translate(root: Path, *args: str) -> None:
    outcome = invoke(root, "--to", "zh", "--quiet", *args)
    assert outcome.code == 0, outcome.stderr


@pytest.fixture
def zh(scripted: ScriptedBackend) -> ScriptedBackend:
    return scripted


def test_hugo_site_builds_and_anchors_land(tmp_path: Path, zh: ScriptedBackend) -> None:
    hugo = need("hugo")
    site = tmp_path / "site"
    shutil.copytree(SITES / "hugo", site)
    translate(site / "content" / "en", "--layout", "hugo-dir")
    page = (site / "content" / "zh" / "docs" / "install.md").read_text("utf-8")
    # The code shortcode's body is code: never sent, never changed.
    assert 'func main() { fmt.Println("hello world") }' in page
    assert "// This comment is code and stays in English." in page
    # The figure's name and src stay; its alt and caption are translated.
    assert '{{< figure src="/img/cat.png" alt="' in page
    assert 'alt="A cat on a keyboard"' not in page
    # Headings keep their source ids; the one with its own id is untouched.
    assert "{#troubleshooting}" in page and "{#requirements-1}" in page
    assert "{#kept-id}" in (site / "content" / "zh" / "docs" / "_index.md").read_text("utf-8")
    build([hugo, "--quiet"], site)
    pages = sorted((site / "public" / "zh").rglob("*.html"))
    checked, dead = dead_anchors(site / "public", pages)
    assert checked >= 5 and dead == []


def test_jekyll_site_builds_and_anchors_land(tmp_path: Path, zh: ScriptedBackend) -> None:
    jekyll = need("jekyll")
    site = tmp_path / "site"
    shutil.copytree(SITES / "jekyll", site)
    translate(site, "--layout", "suffix")
    page = (site / "guide.zh.md").read_text("utf-8")
    assert '  puts "hello world"\n' in page and "This {{ text }} is shown as it is." in page
    assert "{{ site.title }}" in page and "{#troubleshooting}" in page and "{#own}" in page
    build([jekyll, "build", "--quiet", "-d", "public"], site)
    checked, dead = dead_anchors(site / "public", [site / "public" / "guide.zh.html"])
    assert checked >= 3 and dead == []


def _build_mkdocs_zh(mkdocs: str, site: Path) -> tuple[int, list[str]]:
    """``mkdocs build --strict`` of the translation in docs_zh/; (fragment links
    checked, dead ones) in its two pages."""
    config = (site / "mkdocs.yml").read_text("utf-8").replace("docs_dir: docs", "docs_dir: docs_zh")
    (site / "mkdocs.zh.yml").write_text(config, "utf-8")
    build([mkdocs, "build", "--strict", "-q", "-f", "mkdocs.zh.yml", "-d", "public"], site)
    pages = [site / "public" / "index.html", site / "public" / "install" / "index.html"]
    return dead_anchors(site / "public", pages)


def test_mkdocs_strict_build_and_anchors_land(tmp_path: Path, zh: ScriptedBackend) -> None:
    mkdocs = need("mkdocs")
    site = tmp_path / "site"
    shutil.copytree(SITES / "mkdocs", site)
    translate(site / "docs", "--out", str(site / "docs_zh"))
    index = (site / "docs_zh" / "index.md").read_text("utf-8")
    # Keywords kept, titles and bodies translated, the code in the tab untouched.
    assert '!!! note "' in index and "Before you start" not in index
    assert '=== "' in index and "With pip" not in index
    # Untitled admonitions get their implied title translated; "" stays untitled.
    assert f'??? tip "{to_zh("Tip")}"\n' in index
    assert f'!!! example "{to_zh("Example")}"\n' in index and '!!! warning ""\n' in index
    assert "    This note has" not in index and "        pip install tool\n" in index
    checked, dead = _build_mkdocs_zh(mkdocs, site)
    assert checked >= 6 and dead == []
    built = (site / "public" / "index.html").read_text("utf-8")
    assert 'class="admonition note"' in built and "tabbed-set" in built
    assert f'<p class="admonition-title">{to_zh("Example")}</p>' in built
    assert f"<summary>{to_zh('Tip')}</summary>" in built
    assert ">Example<" not in built and ">Tip<" not in built
    assert 'class="admonition warning"' in built
    # An <img> in a paragraph: alt and title translated, the tag kept.
    install = (site / "docs_zh" / "install.md").read_text("utf-8")
    assert '<img src="img.png" alt="' in install and '" title="' in install
    assert "A screenshot of the log" not in install and "The log window" not in install
    page = (site / "public" / "install" / "index.html").read_text("utf-8")
    assert '<img src="img.png" alt="' in page and "A screenshot of the log" not in page
    # HTML blocks made only of images: the alt translated, the tags kept.
    for alt in ("The logo of the tool", "The project logo"):
        assert alt not in install and alt not in page
    logo = f'<img src="img.png" alt="{to_zh("The project logo")}" width="200">'
    assert f'<p align="center">\n  {logo}\n</p>\n' in install and logo in page
    assert f'<img src="img.png" alt="{to_zh("The logo of the tool")}">' in page
    # Every heading keeps its id (anchors = "all", the default).
    assert "{#uninstall}" in install


def test_mkdocs_linked_anchors_build_strict(tmp_path: Path, zh: ScriptedBackend) -> None:
    """anchors = "linked": only linked headings get an id, and mkdocs --strict
    (validation.links.anchors) still finds every anchor a link names."""
    mkdocs = need("mkdocs")
    site = tmp_path / "site"
    shutil.copytree(SITES / "mkdocs", site)
    translate(
        site / "docs",
        "--out",
        str(site / "docs_zh"),
        "--anchors",
        "linked",
        "--site",
        "mkdocs",
    )
    install = (site / "docs_zh" / "install.md").read_text("utf-8")
    assert "{#troubleshooting}" in install and "{#requirements}" in install
    assert "{#uninstall}" not in install and "{#install}" not in install
    checked, dead = _build_mkdocs_zh(mkdocs, site)
    assert checked >= 6 and dead == []


def test_docusaurus_pages_compile_as_mdx(tmp_path: Path, zh: ScriptedBackend) -> None:
    node = need("node")
    if not (MDX / "node_modules" / "@mdx-js" / "mdx").is_dir():
        message = "@mdx-js/mdx is not installed: run `npm ci` in tests/sites/mdx"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    site = tmp_path / "site"
    shutil.copytree(SITES / "docusaurus", site)
    translate(site / "docs", "--out", str(site / "docs_zh"))
    intro = (site / "docs_zh" / "intro.mdx").read_text("utf-8")
    for kept in (
        "import Tabs from '@theme/Tabs';",
        "export const version = '3.0';",
        "{version}",
        '<Highlight color="#25c2a0">',
        "{/* This MDX comment is kept as it is. */}",
        '<TabItem value="npm" label="npm">',
        ":::warning\n",
        "{/* #troubleshooting */}",
        "{/* #my-id */}",
    ):
        assert kept in intro, kept
    assert ":::tip " in intro and "Quick start" not in intro
    assert ":::note[" in intro and "Your own title" not in intro
    # JSX with text on its lines: the text and the <img> alt translated, tags kept.
    tabs = (site / "docs_zh" / "tabs.mdx").read_text("utf-8")
    for kept in (
        "<Tabs\n  groupId=\"fruit\"\n  values={[{label: 'Apple', value: 'apple'}, ",
        '  <TabItem value="apple" label="Apple" default>',
        "🍎</TabItem>\n",
        "<summary>",
        '<img src="https://example.org/cat.png" alt="',
    ):
        assert kept in tabs, kept
    for gone in ("This is an apple", "This is an orange", "Show the details", "A cat on"):
        assert gone not in tabs, gone
    pages = ["intro.mdx", "setup.md", "tabs.mdx"]
    files = [f"docs/{p}" for p in pages] + [f"docs_zh/{p}" for p in pages]
    out = build([node, str(MDX / "compile.mjs"), *files], site)
    found = [json.loads(line)["directives"] for line in out.splitlines() if line.startswith("{")]
    # The same admonitions as the source (remark-directive reads ":::note[Title]";
    # Docusaurus itself also reads ":::tip Title").
    assert found[3:] == found[:3] and "note" in found[0] and "warning" in found[0]
    assert "{/* #requirements */}" in (site / "docs_zh" / "setup.md").read_text("utf-8")
