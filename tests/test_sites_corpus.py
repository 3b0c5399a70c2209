"""Real site pages (tests/data/sites/) translated and built with the real generators.

The scripted half of ``bench/sites.py``: each kind's content is translated into
Chinese through the real orchestrator (``to_zh``: every word changes), then the
source and the translation are built with hugo, jekyll, ``mkdocs build --strict``
and Docusaurus 3 itself (tests/sites/docusaurus-app, ``npm ci`` there; the
translation in ``i18n/zh/`` via ``--layout docusaurus``, built with ``docusaurus
build --locale zh``; ``onBrokenLinks`` relaxed to ``'warn'`` for the three links
to pages outside the corpus, ``onBrokenAnchors`` still ``'throw'``). Every
site-syntax token of the source must be in the output byte for byte, the
translation must build, and every fragment link that lands in the source build
must land in the translated build. Under CI (CI=true) a missing tool fails the
test; elsewhere it skips.

A known gap would be an ``xfail(strict=True)``, so that it flips to a failure once fixed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest

from bench import sites

_KINDS = {kind.name: kind for kind in sites.KINDS}


def _need(kind: sites.Kind, *, built: bool = False) -> None:
    """Skip (fail under CI) unless the kind's tool is there; with ``built``, for
    Docusaurus, unless the real Docusaurus app is installed (not only @mdx-js/mdx)."""
    message = ""
    if kind.tool and shutil.which(kind.tool) is None:
        message = f"{kind.tool} is not installed (.ci/run installs it)"
    elif kind.name == "docusaurus" and built and not sites.docusaurus_installed():
        message = "Docusaurus is not installed: run `npm ci` in tests/sites/docusaurus-app"
    elif kind.name == "docusaurus" and not (
        sites.docusaurus_installed() or (sites.MDX_MODULES / "@mdx-js" / "mdx").is_dir()
    ):
        message = "@mdx-js/mdx is not installed: run `npm ci` in tests/sites/mdx"
    if message:
        _skip_or_fail(message)


def _skip_or_fail(message: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each kind translated once (scripted) and built; the results by kind."""
    work = tmp_path_factory.mktemp("sites")
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        found = {}
        for kind in sites.KINDS:
            if kind.tool and shutil.which(kind.tool) is None:
                continue
            found[kind.name] = sites.measure_kind(kind, work / kind.name, "scripted")
            found[kind.name]["work"] = work / kind.name
        return found
    finally:
        if old is None:
            os.environ.pop("XDG_CACHE_HOME", None)
        else:
            os.environ["XDG_CACHE_HOME"] = old


def _result(
    measured: dict[str, dict[str, Any]], name: str, *, built: bool = False
) -> dict[str, Any]:
    _need(_KINDS[name], built=built)
    return measured[name]


@pytest.mark.parametrize(
    "name",
    [
        "docusaurus",
        "hugo",
        "jekyll",
        "mkdocs",
        "github",
    ],
)
def test_every_site_token_is_kept(measured: dict[str, dict[str, Any]], name: str) -> None:
    result = _result(measured, name)
    kept, total = result["tokens"]
    assert total >= 1
    assert result["tokens_lost"] == [] and kept == total


@pytest.mark.parametrize("name", ["docusaurus", "hugo", "jekyll", "mkdocs"])
def test_source_and_translation_build(measured: dict[str, dict[str, Any]], name: str) -> None:
    result = _result(measured, name, built=True)
    assert result["source_build"] == "passes"
    assert result["build"] == "passes", result["build_log"]


# The corpus pages' links to pages that are not in the corpus: the only links the
# Docusaurus builds may report broken (onBrokenLinks: 'warn' for the corpus).
_OUTSIDE_THE_CORPUS = [
    "../../api/plugins/plugin-ideal-image.md",
    "../../cli.md#docusaurus-write-heading-ids-sitedir",
    "../../static-assets.md",
]


def test_docusaurus_builds_are_real_and_only_outside_links_break(
    measured: dict[str, dict[str, Any]],
) -> None:
    result = _result(measured, "docusaurus", built=True)
    assert result["builder"].startswith("Docusaurus 3.")
    assert result["source_broken_links"] == _OUTSIDE_THE_CORPUS
    assert result["broken_links"] == _OUTSIDE_THE_CORPUS
    # The zh build shows the translation (i18n/zh/...), not the English pages.
    public = result["work"] / "public-zh"
    for page in ("headings", "assets", "admonitions"):
        built = (public / "markdown-features" / page / "index.html").read_text("utf-8")
        assert '<html lang="zh"' in built
    headings = (public / "markdown-features" / "headings" / "index.html").read_text("utf-8")
    assert 'id="explicit-ids"' in headings and "Explicit ids" not in headings


def test_without_docusaurus_the_pages_are_only_compiled(
    measured: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fallback: @mdx-js/mdx compiles the translated pages, reported as such,
    # with no HTML to measure anchors in.
    result = _result(measured, "docusaurus")
    if not (sites.MDX_MODULES / "@mdx-js" / "mdx").is_dir():
        _skip_or_fail("@mdx-js/mdx is not installed: run `npm ci` in tests/sites/mdx")
    monkeypatch.setattr(sites, "docusaurus_installed", lambda: False)
    work = result["work"]
    done = sites.build(_KINDS["docusaurus"], work / "zh", work / "compiled", "zh")
    assert (done.status, done.builder, done.public) == ("passes", sites.MDX_COMPILE, None)
    assert done.log.count('"path"') == 3  # the three translated pages
    row = {"build": done.status, "builder": done.builder}
    assert sites.build_label(row) == "passes (@mdx-js/mdx compile only)"


@pytest.mark.parametrize(
    "name",
    ["docusaurus", "hugo", "jekyll", "mkdocs"],
)
def test_every_resolving_anchor_still_resolves(
    measured: dict[str, dict[str, Any]], name: str
) -> None:
    result = _result(measured, name, built=True)
    kept, total = result["anchors"]
    assert total >= 2
    assert result["anchors_dead"] == [] and kept == total


def test_mkdocs_heading_and_tab_anchors_all_resolve(measured: dict[str, dict[str, Any]]) -> None:
    # The content tab #anchor-links--or-even-me too: its id is made from its
    # label (pymdownx.tabbed slugify), so that one label is kept as it is.
    result = _result(measured, "mkdocs")
    assert result["anchors_dead"] == []
    assert result["anchors"][1] >= 10


def test_alt_texts_are_translated(measured: dict[str, dict[str, Any]]) -> None:
    result = _result(measured, "docusaurus")
    assert result["alts"] == [1, 1]


def test_nothing_kept_in_english(measured: dict[str, dict[str, Any]]) -> None:
    for result in measured.values():
        assert result["pieces"] > 0 and result["kept"] == 0, result["kind"]


def test_a_lost_token_and_a_dead_anchor_are_counted(tmp_path: Path) -> None:
    # The measures can fail: a shortcode or Liquid tag changed, a heading id gone.
    src = "Text {{< figure src=a.png >}} and {% link a.md %}.\n\n## Title {#t}\n"
    out = "Text {{< figure src=b.png >}} and {% link a.md %}.\n\n## 标题\n"
    assert sites.compare_tokens("hugo", src, out)[:2] == (0, 2)
    assert sites.compare_tokens("jekyll", src, out)[:2] == (1, 3)
    for name, body in (("source", '<h2 id="t">T</h2>'), ("zh", "<h2>T</h2>")):
        page = tmp_path / name / "page.html"
        page.parent.mkdir()
        page.write_text(f'<a href="#t">x</a><a href="#nowhere">y</a>{body}', "utf-8")
    assert sites.compare_anchors(tmp_path / "source", tmp_path / "zh") == (
        (0, 1),
        ["page.html: #t"],
    )
    assert sites.compare_alts("![A cat](c.png) ![x][]", "![一只猫](c.png) ![x][]") == (1, 1)
