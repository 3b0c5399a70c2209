"""Site kinds: detection, site syntax kept, heading ids kept, links to translations."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from pipeline import anchors, config, protect, segments, sites, validate
from pipeline.config import SiteSettings
from pipeline.errors import ConfigError, ValidationFailed
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import invoke, translate_one


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


def test_links_scan_ties_each_fragment_to_its_page(tmp_path: Path) -> None:
    pages = {
        "index.md": "[a](#local) [b](guide/install.md#setup) [c][r]\n\n[r]: guide/install.md#ref\n",
        "guide/install.md": '# Install\n\n<a href="../index.md#top">up</a> [x](#in-page)\n',
        "guide/other.md": "[pretty](../install/#pretty) [doc](install#docusaurus)\n",
        "guide/_index.md": "[s](../blog/post.html#jekyll)\n",
        "blog/post.md": (
            '[folder](../guide/#folder) {{< ref "install.md#hugo" >}} [x](/docs/intro#slug)\n'
            "[out](https://example.org/install.md#outside) {% link guide/install.md %}#liquid\n"
        ),
    }
    for name, text in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, "utf-8")
    links = anchors.scan_links(tmp_path, [PurePosixPath(n) for n in pages])
    assert links.ids("guide/install.md") == {
        "setup", "ref", "in-page", "pretty", "docusaurus", "hugo", "liquid", "slug"
    }  # fmt: skip
    assert links.ids("index.md") == {"local", "top", "slug"}
    assert links.ids("guide/_index.md") == {"folder", "slug"}
    assert links.ids("blog/post.md") == {"jekyll", "slug"}
    # /docs/intro is no page here: its fragment is wanted on every page.
    assert links.anywhere == {"slug"}
    assert "outside" not in links.ids("guide/install.md")


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, "utf-8")


def test_linked_anchors_keep_only_the_ids_links_target(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    root = tmp_path / "docs"
    write(
        root,
        {
            "pipeline.toml": '[site]\nkind = "hugo"\nanchors = "linked"\n',
            "a.md": "# Start here\n\n## Setup\n\nText.\n\n## Never linked\n\n[up](#start-here)\n",
            "b.md": "# Other\n\nSee [setup](a.md#setup).\n",
        },
    )
    out = tmp_path / "out"
    # Only a.md is translated; b.md's link to it still counts.
    args = ("--root", root, "--config", root / "pipeline.toml", "--to", "zh", "--out", out, "-q")
    outcome = invoke(root / "a.md", *args)
    assert outcome.code == 0, outcome.stderr
    page = (out / "a.md").read_text("utf-8")
    assert "{#setup}" in page and "{#start-here}" in page
    assert "{#never-linked}" not in page
    # A new link to another heading: the page gets that id too, from the memory.
    asked = scripted.count
    (root / "b.md").write_text("See [setup](a.md#setup) and [n](a.md#never-linked).\n", "utf-8")
    outcome = invoke(root / "a.md", *args)
    assert outcome.code == 0, outcome.stderr
    assert "{#never-linked}" in (out / "a.md").read_text("utf-8")
    assert scripted.count == asked
    # --anchors all (the default) overrides the config: every heading keeps its id.
    (root / "b.md").write_text("No links.\n", "utf-8")
    outcome = invoke(root, *args[2:4], "--to", "zh", "--out", tmp_path / "all", "--anchors", "all")
    assert outcome.code == 0, outcome.stderr
    assert "{#never-linked}" in (tmp_path / "all" / "a.md").read_text("utf-8")


def test_site_flag_overrides_the_config(tmp_path: Path, scripted: ScriptedBackend) -> None:
    root = tmp_path / "docs"
    write(root, {"pipeline.toml": '[site]\nkind = "plain"\n', "a.md": "# Setup\n\nText.\n"})
    config = ("--config", root / "pipeline.toml", "--quiet")
    assert invoke(root, "--to", "zh", "--out", tmp_path / "plain", *config).code == 0
    assert "{#setup}" not in (tmp_path / "plain" / "a.md").read_text("utf-8")
    outcome = invoke(root, "--to", "zh", "--out", tmp_path / "gh", "--site", "github", *config)
    assert outcome.code == 0, outcome.stderr
    assert '<a id="setup"></a>' in (tmp_path / "gh" / "a.md").read_text("utf-8")
    bad = invoke(root, "--to", "zh", "--site", "gatsby")
    assert bad.code == 2 and "'gatsby' is not one of" in bad.stderr


def test_img_alt_and_title_translated_the_tag_kept() -> None:
    plain = site("plain")
    found = protect.protect('See <img src="a.png" alt="A cat" title="The cat"> here.', site=plain)
    assert found.text == "See ⟦1⟧A cat⟦2⟧The cat⟦3⟧ here."
    assert found.spans == ('<img src="a.png" alt="', '" title="', '">')
    assert protect.restore("看 ⟦1⟧猫⟦2⟧那只猫⟦3⟧。", found) == (
        '看 <img src="a.png" alt="猫" title="那只猫">。'
    )
    # The value must stay inside its quotes: no quote, no line break, in order.
    for broken in ('看 ⟦1⟧"猫"⟦2⟧猫⟦3⟧', "看 ⟦1⟧猫\n猫⟦2⟧猫⟦3⟧", "看 ⟦2⟧猫⟦1⟧猫⟦3⟧"):
        with pytest.raises(ValidationFailed, match="quote"):
            protect.restore(broken, found)
    # Blank-separated tags around a value are one marker; no words, no opening.
    assert protect.protect('<p><img src="a.png" alt="Logo"></p>', site=plain).text == "⟦1⟧Logo⟦2⟧"
    assert protect.protect('<img src="a.png" alt="42">', site=plain).text == "⟦1⟧"
    assert (
        protect.protect('<img alt="A cat">', site=site("plain", text_attributes=())).text == "⟦1⟧"
    )
    # A long paragraph cut into sentences keeps each guard with its markers.
    part = protect.renumber("⟦2⟧The cat⟦3⟧ here.", found.spans, found.values)
    assert part.values == ((1, 2, '"'),)


def test_img_alt_translated_in_a_run(tmp_path: Path, scripted: ScriptedBackend) -> None:
    (tmp_path / "a.md").write_text('A cat: <img src="cat.png" alt="A black cat">\n', "utf-8")
    assert invoke(tmp_path, "--to", "zh", "--out", tmp_path / "out", "--quiet").code == 0
    out = (tmp_path / "out" / "a.md").read_text("utf-8")
    assert out.startswith(to_zh("A cat") + ': <img src="cat.png" alt="' + to_zh("A black cat"))


def test_mdx_jsx_text_on_tag_lines_is_prose() -> None:
    text = (
        "<Tabs\n  values={[{label: 'A b', value: 'a'}]}>\n"
        '  <TabItem value="apple" label="Apple">This is an apple</TabItem>\n'
        '  <TabItem value="pear" label="Pear">\n'
        "    This is a pear\n"
        "  </TabItem>\n</Tabs>\n\n"
        "<details>\n<summary>Show the details</summary>\n\nHidden text.\n</details>\n"
    )
    docusaurus = site("docusaurus")
    assert prose(text, docusaurus) == [
        '<TabItem value="apple" label="Apple">This is an apple</TabItem>',
        "This is a pear",
        "<summary>Show the details</summary>",
        "Hidden text.",
    ]
    labelled = site("docusaurus", text_attributes=("alt", "title", "label"))
    contents = prose(text, labelled)
    assert contents[1] == '<TabItem value="pear" label="Pear">'
    assert protect.protect(contents[0], site=labelled).text == "⟦1⟧Apple⟦2⟧This is an apple⟦3⟧"
    # A JSX expression holding quotes is code, never opened.
    found = protect.protect('<Card data={\'title="x"\'} title="Hello">Hi</Card>', site=labelled)
    assert found.text == "⟦1⟧Hello⟦2⟧Hi⟦3⟧"


LOGO = '<p align="center">\n  <img src="docs/logo.png" alt="The project logo" width="200">\n</p>\n'


def test_html_block_of_images_sends_only_its_values() -> None:
    github = site("github")
    figure = '<figure>\n<img src="a.png" alt="A cat">\n<figcaption>Cat</figcaption>\n</figure>\n'
    text = (
        f"{LOGO}\n"
        '> <img src="a.png" alt="A cat" title="The cat">\n\n'
        '<div>\nHello <img alt="A cat">\n</div>\n\n'
        "<table><tr><td>Cell</td></tr></table>\n\n"
        "<!-- a comment -->\n\n"
        f"{figure}"
    )
    parts = segments.split(text, site=github)
    assert segments.join(parts) == text
    html = [p for p in parts if p.kind == "prose"]
    assert [p.block for p in html] == ["html", "html"]
    assert html[0].source == LOGO and html[1].line_prefixes == ("> ",)
    found = protect.protect(html[0].content, site=github)
    assert found.text == "⟦1⟧The project logo⟦2⟧" and found.values == ((1, 2, '"'),)
    assert protect.protect(html[1].content, site=github).text == "⟦1⟧A cat⟦2⟧The cat⟦3⟧"
    # Without text attributes (or in plain CommonMark) every HTML block is kept.
    assert prose(text, site("github", text_attributes=())) == []
    assert prose(LOGO, sites.PLAIN) == []


def test_html_block_fingerprint_leaves_out_the_values_only() -> None:
    github = site("github")
    want = validate.block_structure(segments.parse(LOGO, site=github))
    translated = LOGO.replace("The project logo", "项目标志")
    assert validate.compare_structure(want, translated, links=False) == []
    assert validate.structure(translated, site=github) == validate.structure(LOGO, site=github)
    # Anything else of the block still counts, and without the site so do the values.
    for changed in (LOGO.replace("200", "300"), LOGO.replace("</p>", "</p> 。")):
        assert validate.compare_structure(want, changed, links=False) != []
    assert validate.structure(translated) != validate.structure(LOGO)


def test_html_block_answer_may_change_only_the_values() -> None:
    def check(answer: str) -> list[str]:
        return validate.check_segment(
            "⟦1⟧The project logo⟦2⟧ ⟦3⟧",
            answer,
            block="html",
            source_lang="en",
            target_lang="zh",
        )

    assert check("⟦1⟧项目标志⟦2⟧ ⟦3⟧") == []
    assert check("⟦1⟧项目标志⟦2⟧。⟦3⟧") == ["inline HTML changed outside the quoted values"]
    assert check("⟦1⟧项目标志⟦3⟧ ⟦2⟧") == [
        "inline HTML moved: the placeholders are in another order"
    ]


def test_html_block_alt_translated_in_a_run(tmp_path: Path, scripted: ScriptedBackend) -> None:
    write(tmp_path / "in", {"README.md": f"# Demo\n\n{LOGO}\nText.\n", ".github/x": ""})
    outcome = invoke(tmp_path / "in", "--to", "zh", "--out", tmp_path / "out", "--quiet")
    assert outcome.code == 0, outcome.stderr
    out = (tmp_path / "out" / "README.md").read_text("utf-8")
    assert LOGO.replace("The project logo", to_zh("The project logo")) in out


def test_html_block_alt_that_leaves_its_quotes_is_kept(tmp_path: Path) -> None:
    def reply(text: str) -> str:
        # The alt answered with quotes of its own: never accepted.
        answer = to_zh(text)
        return answer.replace("⟦2⟧", '"⟦2⟧') if "project logo" in text else answer

    data = f"# Demo\n\n{LOGO}\nText.\n".encode()
    out, report = translate_one(tmp_path, "a.md", data, ScriptedBackend(reply))
    assert LOGO.encode() in out and to_zh("Demo").encode() in out
    assert report.files[0].kept == 1


ADMONITIONS = (
    "!!! note\n    Body one.\n\n"
    "??? tip inline end\n    Body two.\n\n"
    '!!! warning ""\n    Body three.\n\n'
    '!!! danger "Stop"\n    Body four.\n'
)


def test_untitled_admonition_gets_its_implied_title() -> None:
    mkdocs = site("mkdocs")
    parts = segments.split(ADMONITIONS, site=mkdocs)
    assert [p.content for p in parts if p.kind == "prose"] == [
        "Note",
        "Body one.",
        "Tip",
        "Body two.",
        "Body three.",
        "Stop",
        "Body four.",
    ]
    note = parts[0]
    assert segments.render(note, "注意") == '!!! note "注意"\n'
    # Kept in the source language: the line stays as it was, no English title.
    assert segments.render(note, "Note") == "!!! note\n"
    assert prose(ADMONITIONS, site("mkdocs", admonition_titles=False))[0] == "Body one."
    assert not site("docusaurus").admonition_titles


def test_untitled_admonition_title_translated_in_a_run(tmp_path: Path) -> None:
    data = ADMONITIONS.encode()
    conf = tmp_path / "pipeline.toml"
    conf.write_text('[site]\nkind = "mkdocs"\n', "utf-8")
    out, _ = translate_one(tmp_path, "a.md", data, ScriptedBackend(to_zh), config_file=conf)
    text = out.decode()
    assert text.startswith(f'!!! note "{to_zh("Note")}"\n    {to_zh("Body one.")}\n')
    assert f'??? tip inline end "{to_zh("Tip")}"\n' in text
    assert '!!! warning ""\n' in text and f'!!! danger "{to_zh("Stop")}"\n' in text


def test_untitled_admonition_title_kept_writes_no_title(tmp_path: Path) -> None:
    def reply(text: str) -> str:
        # Every answer for "Note" fails its checks (an invented marker): kept.
        return to_zh(text).replace(to_zh("Note"), to_zh("Note") + " ⟦9⟧")

    conf = tmp_path / "pipeline.toml"
    conf.write_text('[site]\nkind = "mkdocs"\n', "utf-8")
    data = b"!!! note\n    The body text.\n"
    out, report = translate_one(tmp_path, "a.md", data, ScriptedBackend(reply), config_file=conf)
    assert out.decode() == f"!!! note\n    {to_zh('The body text.')}\n"
    assert report.files[0].kept == 1


def test_inline_liquid_raw_is_kept_whole_with_the_code_spans_inside() -> None:
    """Jekyll's own docs: ``{% raw %}`{{`{% endraw %}`` — the raw block, not a
    ``{{ … }}`` output reaching across into the next tag."""
    text = "Use {% raw %}`{{`{% endraw %} and {% raw %}`}}`{% endraw %}; {{ page.title }}."
    protected = protect.protect(text, site=site("jekyll"))
    assert protected.text == "Use ⟦1⟧ and ⟦2⟧; ⟦3⟧."
    assert protected.spans == (
        "{% raw %}`{{`{% endraw %}",
        "{% raw %}`}}`{% endraw %}",
        "{{ page.title }}",
    )


def test_a_headings_own_id_never_reaches_the_model(tmp_path: Path) -> None:
    """Gemma answered "## 设定标题 {#specifying-title}。" and "### {#explicit-ids} 引用":
    an id moved or followed by a full stop is no id to Docusaurus. The id is not
    prose, so the model never sees it and it stays at the end of the line."""

    backend = ScriptedBackend(to_zh)
    doc = b"## Specifying title {#specifying-title}\n\nTitle here {/* #mdx-id */}\n===\n"
    out, _ = translate_one(tmp_path, "page.md", doc, backend)
    sent = [r.prompt.text for r in backend.requests]
    assert not any("#specifying-title" in t or "mdx-id" in t or "⟦" in t for t in sent), sent
    lines = out.decode().splitlines()
    assert lines[0] == "## " + to_zh("Specifying title") + " {#specifying-title}"
    assert lines[2] == to_zh("Title here") + " {/* #mdx-id */}" and lines[3] == "==="


TABBED_SLUGIFY = """site_name: Tabs
markdown_extensions:
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
      combine_header_slug: true
      slugify: !!python/object/apply:pymdownx.slugs.slugify
        kwds:
          case: lower
"""
TABS_PAGE = """# Install

## With a tool

=== "Using pip"

    Run the first command.

=== "... or even conda"

    Run the second command.

See [the conda tab](#with-a-tool--or-even-conda).
"""


@pytest.mark.parametrize("slugify", [True, False])
def test_a_linked_mkdocs_tab_keeps_its_label_only_when_labels_make_ids(
    tmp_path: Path, scripted: ScriptedBackend, slugify: bool
) -> None:
    """With pymdownx.tabbed's slugify a tab's id is made from its label: the label
    of a tab some link targets stays as it is; the others are translated."""
    site = tmp_path / "site"
    (site / "docs").mkdir(parents=True)
    config = TABBED_SLUGIFY if slugify else TABBED_SLUGIFY.split("      slugify")[0]
    (site / "mkdocs.yml").write_text(config, "utf-8")
    (site / "docs" / "index.md").write_text(TABS_PAGE, "utf-8")
    assert invoke(site / "docs", "--to", "zh", "--out", tmp_path / "out", "--quiet").code == 0
    out = (tmp_path / "out" / "index.md").read_text("utf-8")
    assert '=== "Using pip"' not in out and "Run the first command." not in out
    assert ('=== "... or even conda"' in out) is slugify


def test_tab_slug_is_pymdownx_slugify_lower() -> None:
    assert sites.tab_slug("... or even me") == "-or-even-me"
    assert sites.tab_slug("C++ <b>Code</b>") == "c-code"
    assert sites.tab_linked("... or even me", frozenset({"anchor-links--or-even-me"}))
    assert not sites.tab_linked("Using pip", frozenset({"anchor-links--or-even-me"}))
