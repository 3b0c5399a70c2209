"""Site kinds: detection, site syntax kept, heading ids kept, links to translations."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import anchors, config, protect, segments, sites
from pipeline.config import SiteSettings
from pipeline.errors import ConfigError
from pipeline.testing import ScriptedBackend
from tests.reliability_support import invoke


def site(kind: str, **settings: object) -> sites.Site:
    return sites.resolve(SiteSettings(kind=kind, **settings), Path("."))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("files", "kind"),
    [
        (["docusaurus.config.ts"], "docusaurus"),
        (["mkdocs.yml"], "mkdocs"),
        (["hugo.toml"], "hugo"),
        (["config.toml", "content/"], "hugo"),
        (["_config.yml"], "jekyll"),
        ([".github/"], "github"),
        (["config.toml"], "plain"),
        ([], "plain"),
    ],
)
def test_kind_detected_from_the_site_root_above_the_input(
    tmp_path: Path, files: list[str], kind: str
) -> None:
    for name in files:
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text("x", "utf-8")
    docs = tmp_path / "docs" / "guide"
    docs.mkdir(parents=True)
    assert sites.detect(docs)[0] == kind


def test_unknown_kind_is_one_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text('[site]\nkind = "gatsby"\n', "utf-8")
    with pytest.raises(ConfigError, match=r"site\.kind must be one of"):
        config.load(path)


def prose(text: str, s: sites.Site) -> list[str]:
    parts = segments.split(text, site=s)
    assert segments.join(parts) == text
    return [p.content for p in parts if p.kind == "prose"]


def test_site_syntax_is_not_sent_but_its_titles_are() -> None:
    hugo = site("hugo")
    assert prose("Go:\n{{< highlight go >}}\nx := 1 // words\n{{< /highlight >}}\n", hugo) == [
        "Go:"
    ]
    jekyll = site("jekyll")
    assert prose("{% raw %}\nkeep {{ me }}\n{% endraw %}\n\nText.\n", jekyll) == ["Text."]
    docusaurus = site("docusaurus")
    assert prose("import X from 'x';\n\n:::tip[My title]\nBody.\n:::\n", docusaurus) == [
        "My title",
        "Body.",
    ]
    mkdocs = site("mkdocs")
    assert prose('!!! warning "Careful"\n\n    Body text.\n', mkdocs) == ["Careful", "Body text."]
    # Without the site, the same text is plain Markdown (":::" is prose).
    assert prose(":::tip\nBody.\n:::\n", sites.PLAIN) == [":::tip\nBody.\n:::"]


def test_inline_site_code_protected_and_text_params_translated() -> None:
    mdx = protect.protect("Version {v.x} of <Hi a={1}>this</Hi>.", site=site("docusaurus"))
    assert mdx.text == "Version ⟦1⟧ of ⟦2⟧this⟦3⟧."
    figure = protect.protect('{{< figure src="a.png" alt="A cat" >}}', site=site("hugo"))
    assert figure.text == "⟦1⟧A cat⟦2⟧"
    assert protect.protect('{{< figure alt="A cat" >}}').text == "⟦1⟧"  # plain: all kept


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("hugo", "## 故障 {#troubleshooting-the-build}\n"),
        ("jekyll", "## 故障 {#troubleshooting-the-build}\n"),
        ("mkdocs", "## 故障 {#troubleshooting-the-build}\n"),
        ("docusaurus", "## 故障 {/* #troubleshooting-the-build */}\n"),
        ("github", '## 故障 <a id="troubleshooting-the-build"></a>\n'),
    ],
)
def test_translated_heading_keeps_its_source_id(kind: str, expected: str) -> None:
    out = anchors.keep_ids("## Troubleshooting `the` build\n", "## 故障\n", site(kind))
    assert out == expected


def test_ids_as_each_generator_makes_them() -> None:
    assert sites.slugger("github")("Hello, World! 2.0") == "hello-world-20"
    assert sites.slugger("jekyll")("1. Getting started!") == "getting-started"
    assert sites.slugger("mkdocs")("Café  -- au lait") == "cafe-au-lait"
    ids = anchors.source_ids("# A\n\n# A\n\n# B {#b-own}\n", site("mkdocs"))
    assert ids == ["a", "a_1", None]


def test_untouched_headings_and_anchors_off() -> None:
    s = site("hugo")
    assert anchors.keep_ids("# Own {#x}\n", "# 自己 {#x}\n", s) == "# 自己 {#x}\n"
    assert anchors.keep_ids("# API\n", "# API\n", s) == "# API\n"
    assert anchors.keep_ids("# A b\n", "# 甲\n", site("hugo", anchors="off")) == "# 甲\n"


def test_suffix_layout_links_point_at_translations(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    (tmp_path / "a.md").write_text(
        '# Start\n\nSee [the other page](other.md#setup "Other") and [b](missing.md).\n',
        "utf-8",
    )
    (tmp_path / "other.md").write_text("# Other\n\n## Setup\n\nText here.\n", "utf-8")
    assert invoke(tmp_path, "--to", "zh", "--layout", "suffix", "--quiet").code == 0
    out = (tmp_path / "a.zh.md").read_text("utf-8")
    assert '](other.zh.md#setup "' in out and "](missing.md)" in out
    assert 'Other")' not in out  # the link title is translated
    assert "{#setup}" not in (tmp_path / "other.zh.md").read_text("utf-8")  # plain: no ids
