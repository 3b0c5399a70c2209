"""Property tests that complete tests/test_segments_properties.py (which covers
split/join losslessness and protect/restore round trips over generated Markdown:
nested lists and quotes, fences of varying lengths, code spans with backticks,
links with parentheses).

Added here: the whole pipeline over generated documents (structure, code and line
endings survive a translation), nesting far deeper than the parser's limit,
decode/encode byte round trips and fuzzed bytes, and sentence splitting.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import chunks, documents, segments, validate
from pipeline.backends.base import estimate_tokens
from pipeline.errors import DocumentError
from pipeline.report import RunReport
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import translate_one
from tests.test_segments_properties import FENCE_WORD
from tests.test_segments_properties import documents as markdown_documents

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def translate(text: str, name: str = "doc.md") -> tuple[bytes, RunReport]:
    """Run the real orchestrator over one document with a scripted backend."""
    with tempfile.TemporaryDirectory() as tmp:
        return translate_one(Path(tmp), name, text.encode("utf-8"), ScriptedBackend(to_zh))


def fences(text: str) -> list[str]:
    return re.findall(r"^ *([`~]{3,}).*?^ *\1", text, flags=re.S | re.M)


@SETTINGS
@given(markdown_documents())
def test_pipeline_keeps_structure_code_and_line_endings(text: str) -> None:
    out, report = translate(text)
    result = out.decode("utf-8")
    [report] = report.files
    assert report.status == "written", report.message
    # Newlines: the same count, and the same style.
    assert result.count("\n") == text.count("\n")
    assert result.count("\r") == text.count("\r")
    # Markdown structure is the source's (or the file is kept whole in the source).
    body = re.sub(r"\r\n?", "\n", result)
    source = re.sub(r"\r\n?", "\n", text)
    assert validate.compare_structure(source, body) == []
    # Nothing inside a fence ever changes.
    for part in segments.split(text):
        if part.kind == "verbatim" and FENCE_WORD in part.source:
            assert part.source in result


@st.composite
def deep_documents(draw: st.DrawFn) -> str:
    depth = draw(st.integers(20, 160))
    kinds = draw(
        st.lists(st.sampled_from(["> ", "- ", "1. ", "  "]), min_size=depth, max_size=depth)
    )
    lines = []
    prefix = ""
    for i, kind in enumerate(kinds):
        prefix += kind if kind != "- " or not prefix.endswith("- ") else "  - "
        lines.append(f"{prefix}level {i} text")
    tail = draw(st.sampled_from(["", "\n\nA paragraph after the deep part.\n", "\n"]))
    return "\n".join(lines) + tail


@settings(max_examples=40, deadline=None)
@given(deep_documents())
def test_deep_nesting_is_lossless(text: str) -> None:
    parts = segments.split(text)
    assert segments.join(parts) == text
    for part in parts:
        if part.kind == "prose":
            assert segments.render(part, part.content) == part.source


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deep_documents())
def test_deep_nesting_through_the_pipeline(text: str) -> None:
    out, _ = translate(text)
    result = out.decode("utf-8")
    assert result.count("\n") == text.count("\n")
    for before, after in zip(text.split("\n"), result.split("\n"), strict=True):
        # Container markers survive on every line; the text is translated or untouched.
        assert re.match(r"[ >\-0-9.]*", after).group(0) == re.match(  # type: ignore[union-attr]
            r"[ >\-0-9.]*", before
        ).group(0)


# --------------------------------------------------------------------------- bytes


front_matter = st.sampled_from(
    [
        "",
        "---\ntitle: Hello\n---\n",
        "---\ntitle: 'Quoted: yes'\ntags: [a, b]\n# comment\n---\n",
        '+++\ntitle = "Hello"\ndraft = true\n+++\n',
        "---\n---\n",
        "---\n",  # a horizontal rule, not front matter
    ]
)
bodies = st.lists(
    st.sampled_from(
        [
            "# Title",
            "Some text.",
            "",
            "- item",
            "> quote",
            "```",
            "code",
            "ünïcödé 数据",
            "\u200b",
            "\t",
        ]
    ),
    max_size=8,
)


@st.composite
def encoded_files(draw: st.DrawFn) -> bytes:
    newline = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    lines = draw(bodies)
    text = draw(front_matter) + "\n".join(lines) + draw(st.sampled_from(["", "\n"]))
    if newline == "\r\n":
        text = text.replace("\n", "\r\n")
    elif newline == "mixed":
        text = "".join(
            line + ("\r\n" if i % 2 else "\n") for i, line in enumerate(text.split("\n"))
        )[:-1]
    encoding = draw(st.sampled_from(["utf-8", "utf-8-bom", "utf-16-le", "utf-16-be"]))
    if encoding == "utf-8":
        return text.encode("utf-8")
    if encoding == "utf-8-bom":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    return bom + text.encode(encoding)


@settings(max_examples=300, deadline=None)
@given(encoded_files(), st.booleans())
def test_decode_encode_is_byte_identical(raw: bytes, markdown: bool) -> None:
    # Every file drawn here is valid, so none may be refused: UTF-8 (with or without
    # a BOM) or UTF-16 with a BOM, no NUL, and either front matter that parses, an
    # empty one, or a lone "---" that is a horizontal rule (no body line reads like
    # "key: value"). A DocumentError fails the test.
    doc = documents.decode(raw, name="f.md", markdown=markdown)
    fm = doc.front_matter.raw if doc.front_matter else None
    assert documents.encode(doc, doc.text, fm) == raw


def readable_text(raw: bytes) -> str | None:
    """The text of ``raw`` when it is a text file decode() must accept: UTF-16 with a
    BOM or UTF-8 (optional BOM), without NUL. None otherwise. Stdlib codecs only."""
    for bom, codec in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            try:
                text = raw[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                return None
            return None if "\x00" in text else text
    try:
        text = raw.removeprefix(codecs.BOM_UTF8).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_decode_or_refuse_with_a_document_error(raw: bytes, md: bool) -> None:
    try:
        doc = documents.decode(raw, name="f.md", markdown=md)
    except DocumentError as exc:
        assert str(exc).startswith("f.md: ") and "\n" not in str(exc)
        # Refused only for a reason: bytes that are not text, or, in Markdown, a
        # first line that opens front matter ("---" / "+++") which then fails.
        text = readable_text(raw)
        opens = text is not None and re.fullmatch(r"(-{3,}|\+{3,})\s*", text.split("\n")[0])
        assert text is None or (md and opens), raw
        return
    fm = doc.front_matter.raw if doc.front_matter else None
    assert documents.encode(doc, doc.text, fm) == raw
    # Whatever decodes also splits losslessly.
    assert segments.join(segments.split(doc.text, markdown=md)) == doc.text


# --------------------------------------------------------------------------- sentences

sentence_text = st.lists(
    st.sampled_from(
        ["word", "Word.", " ", "  ", "\n", "x" * 50, "end!", "数据。", '"Quote." ', "a"]
    ),
    max_size=200,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(sentence_text, st.integers(1, 60))
def test_split_sentences_is_lossless_and_bounded(text: str, budget: int) -> None:
    pieces = chunks.split_sentences(text, budget, estimate_tokens)
    assert "".join(pieces) == text
    assert all(pieces) or text == ""
    for piece in pieces:
        # Over the budget only when one whitespace-free run alone is over it.
        if estimate_tokens(piece) > budget:
            assert not re.search(r"\S\s+\S", piece.strip()), piece
