"""pipeline.segments: lossless segmentation, render, protect/restore.

Golden files live in tests/fixtures/segments/: each NAME.md (or NAME.txt,
split as plain text) has NAME.json next to it. Regenerate them with

    UPDATE_GOLDEN=1 pytest tests/test_segments.py -k golden

and read the diff before committing.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline import validate
from pipeline.errors import ValidationFailed
from pipeline.protect import Protected, protect, restore
from pipeline.segments import Segment, join, parse, render, split
from tests.conftest import data_path

FIXTURES = Path(__file__).parent / "fixtures" / "segments"

PARSER = MarkdownIt("commonmark").enable("table")


# --------------------------------------------------------------------------
# Corpora


@cache
def spec_examples() -> tuple[str, ...]:
    """The Markdown side of every example in the CommonMark spec (→ is a tab)."""
    fence = "`" * 32
    examples = []
    lines = data_path("commonmark", "spec.txt").read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        if lines[index] == fence + " example":
            body = []
            index += 1
            while lines[index] != ".":
                body.append(lines[index] + "\n")
                index += 1
            examples.append("".join(body).replace("→", "\t"))
            while lines[index] != fence:
                index += 1
        index += 1
    return tuple(examples)


@cache
def tidb_pages() -> tuple[tuple[str, str], ...]:
    root = data_path("tidb-operator-docs", "en")
    return tuple(
        (path.relative_to(root).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(root.rglob("*.md"))
    )


def check_lossless(text: str, *, markdown: bool = True) -> list[Segment]:
    segments = split(text, markdown=markdown)
    assert join(segments) == text
    for segment in segments:
        assert segment.source, "empty segment"
        if segment.kind == "verbatim":
            continue
        assert segment.block in ("paragraph", "heading", "table", "text")
        assert len(segment.line_prefixes) == len(segment.line_suffixes)
        assert len(segment.line_prefixes) == segment.content.count("\n") + 1
        assert not segment.content.endswith("\n")
        assert render(segment, segment.content) == segment.source
        protected = protect(segment.content)
        assert restore(protected.text, protected) == segment.content
    for left, right in itertools.pairwise(segments):
        assert not (left.kind == right.kind == "verbatim"), "verbatim pieces not merged"
    return segments


# --------------------------------------------------------------------------
# 1. Round trips over the spec and real documents


@pytest.mark.parametrize("cls", [Segment, Protected])
def test_hand_written_init_takes_the_fields_in_order_with_their_defaults(cls: type) -> None:
    # Segment and Protected write their __init__ by hand (a faster one); it
    # must be the one the dataclass would make: every field, in order, with
    # the same default.
    fields = dataclasses.fields(cls)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default for f in fields
    ]


def test_segments_and_protected_texts_stay_frozen_values() -> None:
    seg = Segment("a\n", "prose", content="a", line_prefixes=("",), line_suffixes=("\n",))
    assert dataclasses.replace(seg, content="b") == Segment(
        "a\n", "prose", "b", line_prefixes=("",), line_suffixes=("\n",)
    )
    assert hash(seg) == hash(dataclasses.replace(seg))
    with pytest.raises(dataclasses.FrozenInstanceError):
        seg.content = "b"  # type: ignore[misc]
    protected = Protected("⟦1⟧ x", ("`a`",))
    assert protected == Protected(text="⟦1⟧ x", spans=("`a`",), values=())
    assert hash(protected) == hash(dataclasses.replace(protected))
    with pytest.raises(dataclasses.FrozenInstanceError):
        protected.text = "y"  # type: ignore[misc]


def test_spec_has_all_examples() -> None:
    assert len(spec_examples()) > 600


@pytest.mark.parametrize("number", range(len(spec_examples())))
def test_spec_example_round_trips(number: int) -> None:
    example = spec_examples()[number]
    segments = check_lossless(example)
    check_lossless(example, markdown=False)
    # Other line endings cut the same way and give the same content.
    for newline in ("\r\n", "\r"):
        other = check_lossless(example.replace("\n", newline))
        assert [(s.kind, s.content, s.line_prefixes) for s in other] == [
            (s.kind, s.content, s.line_prefixes) for s in segments
        ]


def test_whole_spec_round_trips() -> None:
    text = data_path("commonmark", "spec.txt").read_text(encoding="utf-8")
    segments = check_lossless(text)
    assert sum(s.kind == "prose" for s in segments) > 500
    check_lossless(text, markdown=False)


def test_tidb_pages_round_trip() -> None:
    pages = tidb_pages()
    assert len(pages) == 140
    prose = 0
    for _name, text in pages:
        segments = check_lossless(text)
        prose += sum(s.kind == "prose" for s in segments)
        check_lossless(text.replace("\n", "\r\n"))
    assert prose > 3000


def test_block_parser_agrees_with_markdown_it() -> None:
    """Our recording block parser cuts exactly where stock markdown-it does."""
    from pipeline.segments import _BLOCK_MD

    texts = [
        *spec_examples(),
        *(text for _name, text in tidb_pages()),
        "para\n| a | b |\n|---|---|\n| c | d |\n",  # a table interrupts a paragraph
        "> quote\n| a |\n|---|\n",
        "line\n" * 40 + "===\n",  # an underline past the prefilter's lookahead
        "line\n" * 40 + "- item\n\nline\n" * 2 + "---\n",
        "a\n```\nx\n```\n" * 50,  # paragraphs cut by fences, no blank line anywhere
        "- a\n      code?\n  b\n\n        code\n",
        # thematic breaks beside list items (the hr prefilter)
        "* * *\n- - -x\n-\t-\t-\n***\n - item\n---\n_ _ _ _\n--- \n- * -\n*\n-\n",
        "- a\n- b\n* * *\n    ---\n>---\n- ---\n",
        # line endings and NUL, which normalize rewrites (and only then runs)
        "a\r\nb\r\n\r\n- c\r- d\r",
        "a\x00b\n\n```\n\x00\n```\n",
    ]
    for text in texts:
        ours = [(t.type, t.map, t.content, t.markup, t.info) for t in _BLOCK_MD.parse(text)]
        stock = [(t.type, t.map, t.content, t.markup, t.info) for t in PARSER.parse(text)]
        assert ours == stock


def test_line_tables_match_markdown_its() -> None:
    """The block state's line tables, built our faster way, are markdown-it's."""
    from markdown_it.rules_block import StateBlock

    from pipeline.segments import _BLOCK_MD, _State

    texts = [
        *spec_examples(),
        *(text for _name, text in tidb_pages()[:20]),
        *("", "a", "a\n", "  ", "a\n  ", "a\n  \n", "\n\n", "\t- x\n \tb\n", " \t \n\n\tc"),
    ]
    for text in texts:
        ours, stock = _State(text, _BLOCK_MD, {}, []), StateBlock(text, _BLOCK_MD, {}, [])
        for table in ("bMarks", "eMarks", "tShift", "sCount", "bsCount", "lineMax"):
            assert getattr(ours, table) == getattr(stock, table), (table, text)


# Stock markdown-it, blocks only, as deep as ours: what the structure check saw
# before it shared the parse of split().
BLOCKS_ONLY = MarkdownIt("commonmark", {"maxNesting": 128}).enable("table").disable("inline")


def test_one_parse_serves_split_and_the_structure_check() -> None:
    texts = [*spec_examples(), *(text for _name, text in tidb_pages())]
    for text in texts:
        parsed = parse(text)
        assert split(text, parsed=parsed) == split(text)
        source = validate.block_structure(parsed)
        stock = [
            sig for sig, _ in validate._walk(BLOCKS_ONLY.parse(text), re.split(r"\r\n?|\n", text))
        ]
        assert [b.sig for b in source.blocks] == stock
        assert validate.compare_structure(source, text, links=False) == []
    page = texts[-1]
    broken = "# A heading more\n\n" + page + "\n```\ncode\n```\n"
    assert (
        validate.compare_structure(validate.block_structure(parse(page)), broken, links=False)
        == validate.compare_structure(page, broken, links=False)
        != []
    )


def test_parse_of_another_text_or_with_links_is_refused() -> None:
    with pytest.raises(ValueError, match="another text"):
        split("# b\n", parsed=parse("# a\n"))
    with pytest.raises(ValueError, match="links=False"):
        validate.compare_structure(validate.block_structure(parse("a\n")), "a\n")


# --------------------------------------------------------------------------
# 2. Golden files


def describe(segments: list[Segment]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for segment in segments:
        if segment.kind == "verbatim":
            out.append({"kind": "verbatim", "source": segment.source})
            continue
        protected = protect(segment.content)
        out.append(
            {
                "kind": "prose",
                "block": segment.block,
                "source": segment.source,
                "prefixes": list(segment.line_prefixes),
                "suffixes": list(segment.line_suffixes),
                "continuation": segment.continuation,
                "content": segment.content,
                "protected": protected.text,
                "spans": list(protected.spans),
            }
        )
    return out


def golden_inputs() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.suffix in (".md", ".txt"))


@pytest.mark.parametrize("path", golden_inputs(), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    text = path.read_bytes().decode("utf-8")
    segments = check_lossless(text, markdown=path.suffix == ".md")
    actual = describe(segments)
    expected_path = path.with_suffix(".json")
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(
            json.dumps(actual, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
    assert expected_path.exists(), f"run with UPDATE_GOLDEN=1 to create {expected_path.name}"
    assert actual == json.loads(expected_path.read_text(encoding="utf-8"))


def test_crlf_fixture_really_has_crlf() -> None:
    raw = (FIXTURES / "crlf.md").read_bytes()
    assert b"\r\n" in raw
    assert re.search(rb"\r[^\n]", raw)  # an old Mac line ending too


# --------------------------------------------------------------------------
# 3. Verbatim never leaks into prose


VERBATIM_TYPES = ("fence", "code_block", "html_block")


def verbatim_lines(text: str) -> set[int]:
    normalized = re.sub(r"\r\n?", "\n", text)
    lines: set[int] = set()
    for token in PARSER.parse(normalized):
        if token.type in VERBATIM_TYPES and token.map is not None:
            lines.update(range(*token.map))
    return lines


def prose_lines(segments: list[Segment]) -> Iterator[tuple[int, Segment]]:
    line = 0
    for segment in segments:
        count = len(re.findall(r"\r\n|\r|\n", segment.source))
        if segment.source and not re.search(r"(\r\n|\r|\n)$", segment.source):
            count += 1
        if segment.kind == "prose":
            for offset in range(count):
                yield line + offset, segment
        line += count


def check_no_leak(text: str) -> None:
    forbidden = verbatim_lines(text)
    for line, segment in prose_lines(split(text)):
        assert line not in forbidden, f"line {line} of a code/HTML block is in {segment}"


def test_no_leak_in_spec_examples() -> None:
    for example in spec_examples():
        check_no_leak(example)


def test_no_leak_in_tidb_pages() -> None:
    for _name, text in tidb_pages():
        check_no_leak(text)


def test_no_leak_of_marked_text() -> None:
    text = (
        "Intro paragraph.\n\n"
        "```\nFENCEDTEXT here\n```\n\n"
        "    INDENTEDTEXT here\n\n"
        "<!-- COMMENTTEXT here -->\n\n"
        "<div>\nHTMLTEXT here\n</div>\n\n"
        "> ```\n> QUOTEDFENCE here\n> ```\n\n"
        "- item\n\n      LISTCODE here\n\n"
        '[ref]: https://example.com "REFDEF"\n\n'
        "$$\nMATHTEXT here\n$$\n"
    )
    segments = check_lossless(text)
    prose = "\n".join(s.content for s in segments if s.kind == "prose")
    assert prose == "Intro paragraph.\nitem"
    for marker in ("FENCEDTEXT", "INDENTEDTEXT", "COMMENTTEXT", "HTMLTEXT", "QUOTEDFENCE"):
        assert marker not in prose


# --------------------------------------------------------------------------
# 4. Translations with another line count keep the block structure


def structure(text: str) -> list[tuple[str, str, int, bool]]:
    normalized = re.sub(r"\r\n?", "\n", text)
    return [
        (t.type, t.tag, t.level, t.hidden) for t in PARSER.parse(normalized) if t.type != "inline"
    ]


WORDS = ("Lorem ipsum", "dolor sit amet", "consectetur", "adipiscing elit", "sed do")


def retranslate(segments: list[Segment], extra_lines: int) -> str:
    """Every paragraph and heading gets a plain-word translation of another length."""
    out = []
    for segment in segments:
        if segment.kind == "prose" and segment.block in ("paragraph", "heading"):
            count = max(1, len(segment.line_prefixes) + extra_lines)
            translation = "\n".join(WORDS[i % len(WORDS)] for i in range(count))
            out.append(render(segment, translation))
        else:
            out.append(segment.source)
    return "".join(out)


CONTAINER_DOCS = (
    "> quoted\n> paragraph\n\nafter\n",
    "> - item one\n>   continues\n> - item two\n",
    "- a\n- b\n  more\n\n  second para\n- c\n",
    "1. one\n2. two\n   - nested\n     deeper\n\n10) wide\n    item\n",
    "> 1. > deeply\n>    > nested\n",
    "- # heading in list\n- text\n",
    "> # quoted heading\n> text\n",
    "* star\n\n  loose\n\n* items\n",
    "-\ttab item\n\tcontinued\n",
    "> quote with lazy\ncontinuation\n",
    "Setext\nheading\n===\n\n- Setext in list\n  ---\n",
)


@pytest.mark.parametrize("extra_lines", [-5, -1, 1, 3])
def test_render_other_line_counts_keeps_structure(extra_lines: int) -> None:
    docs = list(CONTAINER_DOCS)
    for example in spec_examples():
        docs.append(example)
    docs.extend(text for _name, text in tidb_pages())
    failures = []
    changed = 0
    for text in docs:
        segments = split(text)
        result = retranslate(segments, extra_lines)
        changed += result != text
        if structure(result) != structure(text):
            failures.append(text)
    assert failures == []
    assert changed > 500


def test_render_continuation_prefixes() -> None:
    (quote_list,) = [s for s in split("> - item\n>   more\n") if s.kind == "prose"]
    assert quote_list.continuation == ">   "
    assert render(quote_list, "one\ntwo\nthree") == "> - one\n>   two\n>   three\n"
    assert render(quote_list, "joined") == "> - joined\n"

    (quote,) = [s for s in split("> quoted\n") if s.kind == "prose"]
    assert render(quote, "a\nb") == "> a\n> b\n"

    (ordered,) = [s for s in split("10. item\n") if s.kind == "prose"]
    assert render(ordered, "a\nb") == "10. a\n    b\n"

    # The space after ">" belongs to the quote marker: a marker right after
    # ">" needs one more space to keep the item's column.
    (tight,) = [s for s in split(">- > item\n") if s.kind == "prose"]
    assert tight.continuation == ">   > "
    # Tabs become spaces at their real width.
    (tabbed,) = [s for s in split("-\titem\n") if s.kind == "prose"]
    assert tabbed.continuation == "    "


def test_render_heading_goes_on_one_line() -> None:
    (heading,) = split("## Title ##\n")
    assert render(heading, "Erste\nZeile") == "## Erste Zeile ##\n"
    setext = split("Two\nlines\n---\n")[0]
    assert setext.line_suffixes[-1] == "\n---\n"
    assert render(setext, "Zwei\nZeilen") == "Zwei\nZeilen\n---\n"
    assert render(setext, "Eins\nzwei\ndrei") == "Eins zwei drei\n---\n"


def test_render_keeps_newline_style() -> None:
    (paragraph,) = split("one\r\ntwo\r\n")
    assert paragraph.line_suffixes == ("\r\n", "\r\n")
    assert render(paragraph, "a\nb\nc") == "a\r\nb\r\nc\r\n"
    assert render(paragraph, "a\r\nb") == "a\r\nb\r\n"
    (last,) = split("no newline at end")
    assert render(last, "x\ny") == "x\ny"


def test_render_refuses_verbatim() -> None:
    (code,) = split("```\ncode\n```\n")
    assert code.kind == "verbatim"
    with pytest.raises(ValueError, match="prose"):
        render(code, "anything")


# --------------------------------------------------------------------------
# Segmentation details


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.content) for s in check_lossless(text)]


def test_verbatim_blocks() -> None:
    assert kinds("---\n") == [("verbatim", "")]
    assert kinds('{{< figure src="x.png" >}}\n') == [("verbatim", "")]
    assert kinds("https://example.com/only\n") == [("verbatim", "")]
    assert kinds("`only code`\n") == [("verbatim", "")]
    assert kinds("$$\nx = y\n$$\n") == [("verbatim", "")]
    assert kinds("[a]: /url\n\n12345\n") == [("verbatim", "")]
    assert kinds("# 2.0.1\n") == [("verbatim", "")]


def test_prose_blocks() -> None:
    assert kinds("Hello\n\n```\ncode\n```\nWorld\n") == [
        ("prose", "Hello"),
        ("verbatim", ""),
        ("prose", "World"),
    ]
    table = "| a | b |\n|---|---|\n| c | d |\n"
    segments = split(table)
    assert [(s.kind, s.block) for s in segments] == [("prose", "table")]
    assert segments[0].content == table.rstrip("\n")


def test_container_prefixes() -> None:
    (segment,) = [s for s in split("> - item\n>   more\nlazy\n") if s.kind == "prose"]
    assert segment.content == "item\nmore\nlazy"
    assert segment.line_prefixes == ("> - ", ">   ", "")


def test_hard_breaks_and_trailing_spaces_stay_in_place() -> None:
    (segment,) = split("line one  \nline two   \n")
    assert segment.content == "line one  \nline two"
    assert segment.line_suffixes == ("\n", "   \n")


def test_plain_text_mode() -> None:
    text = "First para\nline two\n\n  \n\nSecond  \n\n-----\n"
    segments = check_lossless(text, markdown=False)
    assert [(s.kind, s.block, s.content) for s in segments] == [
        ("prose", "text", "First para\nline two"),
        ("verbatim", "", ""),
        ("prose", "text", "Second  "),
        ("verbatim", "", ""),
    ]
    # Markdown syntax means nothing in .txt files.
    assert [s.content for s in split("# not a heading\n", markdown=False)] == ["# not a heading"]


def test_empty_and_blank_documents() -> None:
    assert split("") == []
    assert kinds("\n\n") == [("verbatim", "")]
    assert split("", markdown=False) == []


# --------------------------------------------------------------------------
# protect / restore


def spans(content: str, do_not_translate: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
    protected = protect(content, do_not_translate=do_not_translate)
    assert restore(protected.text, protected) == content
    return protected.text, protected.spans


def test_protect_code_spans() -> None:
    assert spans("Run `make` now") == ("Run ⟦1⟧ now", ("`make`",))
    assert spans("Use ``a ` b`` and ```x``y```") == (
        "Use ⟦1⟧ and ⟦2⟧",
        ("``a ` b``", "```x``y```"),
    )
    # An unmatched backtick run is text.
    assert spans("a ``` b") == ("a ``` b", ())
    # An escaped backtick opens nothing.
    assert spans(r"not \`code` here") == (r"not \`code` here", ())


def test_protect_links_and_images() -> None:
    # A title's words are translated; the destination and the quotes are not.
    assert spans('[click here](https://x.y "The T")') == (
        '[click here](⟦1⟧ "The T")',
        ("https://x.y",),
    )
    assert spans("![a cat](c.png 'Sleeping')") == ("![a cat](⟦1⟧ 'Sleeping')", ("c.png",))
    assert spans('[x](https://x.y "1.2")') == ("[x](⟦1⟧)", ('https://x.y "1.2"',))
    assert spans("[a](https://en.wikipedia.org/wiki/Foo_(bar))") == (
        "[a](⟦1⟧)",
        ("https://en.wikipedia.org/wiki/Foo_(bar)",),
    )
    assert spans("![alt text](img.png)") == ("![alt text](⟦1⟧)", ("img.png",))
    assert spans("![alt `c`](i.png)") == ("![alt ⟦1⟧](⟦2⟧)", ("`c`", "i.png"))
    assert spans("[text][ref]") == ("[text][⟦1⟧]", ("ref",))
    assert spans("[foo][] and [foo]") == ("⟦1⟧ and ⟦2⟧", ("[foo][]", "[foo]"))
    assert spans("note[^1].") == ("note⟦1⟧.", ("[^1]",))
    assert spans("[![b](b.svg)](https://ci)") == ("[![b](⟦1⟧)](⟦2⟧)", ("b.svg", "https://ci"))
    assert spans("[`code` link](<a b>)") == ("[⟦1⟧ link](⟦2⟧)", ("`code`", "<a b>"))
    assert spans("[js](javascript:alert(1))") == ("[js](⟦1⟧)", ("javascript:alert(1)",))


def test_protect_html_entities_autolinks() -> None:
    assert spans('a <span class="x">b</span> c<br/>') == (
        "a ⟦1⟧b⟦2⟧ c⟦3⟧",
        ('<span class="x">', "</span>", "<br/>"),
    )
    assert spans("x&nbsp;y &copy; &bogus; &#123;") == (
        "x⟦1⟧y ⟦2⟧ &bogus; ⟦3⟧",
        ("&nbsp;", "&copy;", "&#123;"),
    )
    assert spans("see <https://a.b/c> or <me@x.org>") == (
        "see ⟦1⟧ or ⟦2⟧",
        ("<https://a.b/c>", "<me@x.org>"),
    )
    assert spans("a <!-- note --> b") == ("a ⟦1⟧ b", ("<!-- note -->",))
    assert spans("1 < 2 and a > b") == ("1 < 2 and a > b", ())


def test_protect_shortcodes_and_liquid() -> None:
    assert spans('Use {{< ref "a.md" >}} or {{% tab %}}.') == (
        "Use ⟦1⟧ or ⟦2⟧.",
        ('{{< ref "a.md" >}}', "{{% tab %}}"),
    )
    assert spans("{{ .Title }} and {% include x.html %}") == (
        "⟦1⟧ and ⟦2⟧",
        ("{{ .Title }}", "{% include x.html %}"),
    )
    assert spans('{{<figure src="x">}} caption') == (
        "⟦1⟧ caption",
        ('{{<figure src="x">}}',),
    )
    assert spans("# Title {#custom-id}") == ("# Title ⟦1⟧", ("{#custom-id}",))


def test_protect_math() -> None:
    assert spans("Energy $E = mc^2$ here") == ("Energy ⟦1⟧ here", ("$E = mc^2$",))
    assert spans("$x$ and $y_1$") == ("⟦1⟧ and ⟦2⟧", ("$x$", "$y_1$"))
    assert spans("It costs $5 and $6.") == ("It costs $5 and $6.", ())
    assert spans("between $5$ and $10$") == ("between $5$ and $10$", ())
    assert spans("$ not math $") == ("$ not math $", ())
    assert spans("`$HOME` and `$PATH`") == ("⟦1⟧ and ⟦2⟧", ("`$HOME`", "`$PATH`"))


def test_protect_bare_urls() -> None:
    assert spans("Go to https://example.com/path.") == (
        "Go to ⟦1⟧.",
        ("https://example.com/path",),
    )
    assert spans("(see http://x.org/a_(b)) and www.example.org, ok") == (
        "(see ⟦1⟧) and ⟦2⟧, ok",
        ("http://x.org/a_(b)", "www.example.org"),
    )
    assert spans("[see https://x.org](https://y.org)") == (
        "[see ⟦1⟧](⟦2⟧)",
        ("https://x.org", "https://y.org"),
    )


def test_protect_literal_brackets() -> None:
    assert spans("keep ⟦1⟧ and ⟧ here") == ("keep ⟦1⟧1⟦2⟧ and ⟦3⟧ here", ("⟦", "⟧", "⟧"))
    assert spans("[x](⟦y⟧) `⟦`") == ("[x](⟦1⟧) ⟦2⟧", ("⟦y⟧", "`⟦`"))


def test_protect_do_not_translate() -> None:
    assert spans("TiDB and TiDB Operator, not TiDBx or tidb.", do_not_translate=("TiDB",)) == (
        "⟦1⟧ and ⟦2⟧ Operator, not TiDBx or tidb.",
        ("TiDB", "TiDB"),
    )
    assert spans("TiDB Operator runs", do_not_translate=("TiDB", "TiDB Operator")) == (
        "⟦1⟧ runs",
        ("TiDB Operator",),
    )
    # A term inside a code span or link target is already protected.
    assert spans("`TiDB` [TiDB](tidb.md)", do_not_translate=("TiDB",)) == (
        "⟦1⟧ [⟦2⟧](⟦3⟧)",
        ("`TiDB`", "TiDB", "tidb.md"),
    )
    assert spans("C++ and C", do_not_translate=("C++",)) == ("⟦1⟧ and C", ("C++",))


def test_restore_reports_placeholder_problems() -> None:
    protected = Protected("a ⟦1⟧ b ⟦2⟧ c ⟦3⟧", ("`x`", "`secret`", "`z`"))
    assert restore("A ⟦3⟧ B ⟦1⟧ C ⟦2⟧", protected) == "A `z` B `x` C `secret`"
    with pytest.raises(ValidationFailed) as error:
        restore("A ⟦1⟧ ⟦1⟧ B ⟦4⟧ ⟦01⟧", protected)
    assert error.value.problems == [
        "placeholder ⟦1⟧ duplicated",
        "placeholder ⟦2⟧ missing",
        "placeholder ⟦3⟧ missing",
        "placeholder ⟦4⟧ unknown",
        "placeholder ⟦01⟧ unknown",
    ]
    assert "secret" not in str(error.value)
    with pytest.raises(ValidationFailed, match="outside any placeholder"):
        restore("⟦1⟧ ⟦2⟧ ⟦3⟧ ⟦", protected)
    with pytest.raises(ValidationFailed, match="⟦1⟧ unknown"):
        restore("⟦1⟧", Protected("plain", ()))
