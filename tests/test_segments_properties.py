"""Property tests for pipeline.segments over generated Markdown."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.helpers import parseLinkDestination

from pipeline import protect as protection
from pipeline import validate
from pipeline.protect import protect, restore
from pipeline.segments import join, render, split
from tests.conftest import data_path

PARSER = MarkdownIt("commonmark").enable("table")
FENCE_WORD = "FENCEWORD"
SETTINGS = settings(max_examples=200, deadline=None)

words = st.sampled_from(
    ["alpha", "beta", "Gamma", "delta", "naïve", "Straße", "数据库", "ñandú", "TiDB", "x"]
)


@st.composite
def code_spans(draw: st.DrawFn) -> str:
    inner = draw(st.text(alphabet="ab `*_[]()<>!&", min_size=1, max_size=8))
    if not inner.strip(" "):
        inner = "a"
    if inner.startswith("`") or inner.endswith("`"):
        inner = f" {inner} "
    runs = [len(run) for run in re.findall(r"`+", inner)]
    ticks = "`" * (max(runs, default=0) + 1 + draw(st.integers(0, 2)))
    return f"{ticks}{inner}{ticks}"


@st.composite
def urls(draw: st.DrawFn) -> str:
    path = draw(st.lists(st.sampled_from(["a", "b_c", "d-e", "(f)", "g.h", "x_(y)"]), max_size=3))
    return draw(st.sampled_from(["https://", "http://"])) + "ex.com/" + "/".join(path)


@st.composite
def links(draw: st.DrawFn) -> str:
    text = " ".join(draw(st.lists(st.one_of(words, code_spans()), min_size=1, max_size=3)))
    target = draw(urls())
    if draw(st.booleans()):
        target = f"<{target} x>"  # spaces need angle brackets
    title = draw(st.sampled_from(["", ' "Title"', " 'T (x)'"]))
    image = draw(st.sampled_from(["", "!"]))
    return f"{image}[{text}]({target}{title})"


inline_pieces = st.one_of(
    words,
    words,
    code_spans(),
    links(),
    urls(),
    urls().map(lambda url: f"<{url}>"),
    urls().map(lambda url: f"({url})."),
)


@st.composite
def inline_lines(draw: st.DrawFn) -> str:
    # A word first keeps the line from starting another block ("1." or "<").
    pieces = [draw(words), *draw(st.lists(inline_pieces, max_size=5))]
    return " ".join(pieces)


@st.composite
def paragraphs(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(inline_lines(), min_size=1, max_size=3))


@st.composite
def headings(draw: st.DrawFn) -> list[str]:
    line = draw(inline_lines())
    if draw(st.booleans()):
        return ["#" * draw(st.integers(1, 6)) + " " + line]
    return [line, draw(st.sampled_from(["===", "---", "======"]))]


@st.composite
def fences(draw: st.DrawFn) -> list[str]:
    char = draw(st.sampled_from("`~"))
    length = draw(st.integers(3, 6))
    body = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()) and length > 3:
            body.append(char * draw(st.integers(3, length - 1)))  # a shorter fence is code
        else:
            body.append(f"{FENCE_WORD} " + draw(inline_lines()))
    info = draw(st.sampled_from(["", "python", "yaml"])) if char == "`" else ""
    return [char * length + info, *body, char * length]


@st.composite
def tables(draw: st.DrawFn) -> list[str]:
    columns = draw(st.integers(1, 3))
    cell = st.one_of(words, code_spans().filter(lambda c: "|" not in c))

    def row() -> str:
        return "| " + " | ".join(draw(cell) for _ in range(columns)) + " |"

    rows = [row(), "|" + "|".join(["---"] * columns) + "|"]
    rows += [row() for _ in range(draw(st.integers(0, 3)))]
    return rows


def leaf_blocks() -> st.SearchStrategy[list[str]]:
    return st.one_of(paragraphs(), paragraphs(), headings(), fences(), tables())


def indent(lines: list[str], first: str, rest: str) -> list[str]:
    return [(first if i == 0 else rest) + line if line else "" for i, line in enumerate(lines)]


@st.composite
def blocks(draw: st.DrawFn, depth: int = 0) -> list[str]:
    kind = draw(st.sampled_from(["leaf", "leaf", "list", "quote"] if depth < 3 else ["leaf"]))
    if kind == "leaf":
        return draw(leaf_blocks())
    children = draw(st.lists(blocks(depth + 1), min_size=1, max_size=2))
    if kind == "quote":
        lines: list[str] = []
        for child in children:
            lines += [*child, ""]
        return [f"> {line}" if line else ">" for line in lines[:-1]]
    marker = draw(st.sampled_from(["-", "*", "1.", "2)", "10."]))
    out = []
    for child in children:
        out += indent(child, marker + " ", " " * (len(marker) + 1))
    return out


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(blocks(), min_size=1, max_size=4))
    text = "\n\n".join("\n".join(lines) for lines in parts) + "\n"
    return text.replace("\n", draw(st.sampled_from(["\n", "\n", "\r\n", "\r"])))


def structure(text: str) -> list[tuple[str, str, int, bool]]:
    normalized = re.sub(r"\r\n?", "\n", text)
    return [
        (t.type, t.tag, t.level, t.hidden) for t in PARSER.parse(normalized) if t.type != "inline"
    ]


@SETTINGS
@given(documents())
def test_split_join_lossless(text: str) -> None:
    parts = split(text)
    assert join(parts) == text
    for part in parts:
        if part.kind == "prose":
            assert render(part, part.content) == part.source
            protected = protect(part.content)
            assert restore(protected.text, protected) == part.content
    # The same text as plain text (.txt) is cut losslessly too.
    plain = split(text, markdown=False)
    assert join(plain) == text
    for part in plain:
        if part.kind == "prose":
            assert render(part, part.content) == part.source


@SETTINGS
@given(documents())
def test_code_and_urls_never_reach_the_model(text: str) -> None:
    for part in split(text):
        if part.kind != "prose":
            continue
        assert FENCE_WORD not in part.content
        protected = protect(part.content)
        assert "`" not in protected.text
        assert "://" not in protected.text


@SETTINGS
@given(documents(), st.integers(-3, 3))
def test_render_other_line_counts_keeps_structure(text: str, extra: int) -> None:
    out = []
    for part in split(text):
        if part.kind == "prose" and part.block in ("paragraph", "heading"):
            count = max(1, len(part.line_prefixes) + extra)
            out.append(render(part, "\n".join(["lorem ipsum"] * count)))
        else:
            out.append(part.source)
    assert structure("".join(out)) == structure(text)


arbitrary = st.lists(
    st.sampled_from([*"ab \n\t`[]()<>&!{}$%#*_\\|^⟦⟧/:.\"';", "https://", "www.", "&amp;"]),
    max_size=40,
).map("".join)


@SETTINGS
@given(arbitrary, st.lists(st.sampled_from(["a", "ab", "b a", "$"]), max_size=2))
def test_protect_restore_round_trip(text: str, terms: list[str]) -> None:
    protected = protect(text, do_not_translate=terms)
    assert restore(protected.text, protected) == text
    # Numbered in order, each once; no bracket of the source left outside a span.
    numbers = [int(n) for n in re.findall(r"⟦(\d+)⟧", protected.text)]
    assert numbers == list(range(1, len(protected.spans) + 1))
    assert re.sub(r"⟦\d+⟧", "", protected.text).count("⟦") == 0


@SETTINGS
@given(arbitrary, st.integers(0, 5))
def test_fast_link_destination_matches_markdown_it(text: str, start: int) -> None:
    start = min(start, len(text))
    for maximum in (len(text), max(start, len(text) - 2)):
        ours = protection._link_destination(text, start, maximum)
        theirs = parseLinkDestination(text, start, maximum)
        assert (ours.ok, ours.pos) == (theirs.ok, theirs.pos)


def inline_rule_spans(text: str) -> list[tuple[int, int]]:
    """What markdown-it's own inline rules record for ``text`` (protect's slow path)."""
    found: list[tuple[int, int]] = []
    env = {"references": protection._EVERY_LABEL, protection._RANGES: found, protection._BASES: [0]}
    md = protection._INLINE_MD
    md.inline.tokenize(protection.StateInline(text, md, env, []))
    return sorted(found)


simple_inline = st.lists(
    st.sampled_from([*"ab \n`[]()!:/.", "``", "](", "](x)", "[a](b)", "`c`", "https://x"]),
    max_size=40,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(simple_inline)
def test_simple_markup_path_matches_the_inline_rules(text: str) -> None:
    ours = protection._simple_markup(text)
    if ours is not None:
        assert sorted(ours) == inline_rule_spans(text)


def test_simple_markup_path_on_real_pages() -> None:
    used = 0
    for page in sorted(data_path("tidb-operator-docs", "en").rglob("*.md")):
        for part in split(page.read_text(encoding="utf-8")):
            if part.kind != "prose":
                continue
            ours = protection._simple_markup(part.content)
            if ours is not None:
                used += 1
                assert sorted(ours) == inline_rule_spans(part.content), part.content
    assert used > 1000  # the fast path carries most paragraphs of real docs


paragraph_like = st.lists(
    st.sampled_from(
        [*"ab \n`[]()!:/.-#>*|", "  ", "    ", "``", "](", "](x)", "[a](b)", "`c`", "1. ", "\n\n"]
    ),
    max_size=40,
).map("".join)


def check_one_paragraph_shortcut(text: str) -> bool:
    links = validate._simple_paragraph_links(text)
    if links is None:
        return False
    expected = [("paragraph", "0", f"links={links}", "images=0")]
    assert [b.sig for b in validate._blocks(text)] == expected, text
    return True


@settings(max_examples=1000, deadline=None)
@given(paragraph_like)
def test_link_count_shortcut_matches_the_parse(text: str) -> None:
    check_one_paragraph_shortcut(text)


def test_link_count_shortcut_on_real_pages() -> None:
    used = 0
    for page in sorted(data_path("tidb-operator-docs", "en").rglob("*.md")):
        for part in split(page.read_text(encoding="utf-8")):
            if part.kind == "prose" and part.block == "paragraph":
                text = protect(part.content).text
                used += check_one_paragraph_shortcut(text)
    assert used > 500  # it carries most paragraphs with links
