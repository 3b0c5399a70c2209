"""pipeline.documents: lossless decode/encode and in-place front-matter edits.

Golden files live in tests/fixtures/documents/ (NAME.md -> NAME.expected.md). After a
deliberate change, rewrite the expected files with UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import codecs
import copy
import os
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.documents import Document, decode, encode
from pipeline.errors import DocumentError, ValidationFailed
from pipeline.front_matter import Field, FrontMatter, replace_fields, translatable_fields
from tests.conftest import data_path

FIXTURES = Path(__file__).parent / "fixtures" / "documents"
# The golden files translate these keys; tags exercises flow and block lists.
GOLDEN_KEYS = ("title", "description", "summary", "tags")


def fake_translate(value: str) -> str:
    """A stand-in translation that stresses escaping: quotes, colon, hash,
    backslash and a newline in every value."""
    return f'译文：{value.upper()} "引号" #号: \\ 反斜杠\n第二行'


def inputs() -> list[Path]:
    return sorted(p for p in FIXTURES.glob("*.md") if not p.name.endswith(".expected.md"))


def expected_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".md") + ".expected.md")


def translate_document(raw: bytes, name: str) -> tuple[Document, bytes, list[Field]]:
    doc = decode(raw, name=name, markdown=True)
    if doc.front_matter is None:
        return doc, encode(doc, doc.text, None), []
    fields = translatable_fields(doc.front_matter, GOLDEN_KEYS)
    new_fm = replace_fields(
        doc.front_matter, {(f.key, f.index): fake_translate(f.value) for f in fields}
    )
    return doc, encode(doc, doc.text, new_fm), fields


def with_translations(data: Any, fields: list[Field]) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    for f in fields:
        if f.index is None:
            out[f.key] = fake_translate(f.value)
        else:
            out[f.key][f.index] = fake_translate(f.value)
    return out


def roundtrip(raw: bytes, *, markdown: bool = True) -> bytes:
    doc = decode(raw, name="x.md", markdown=markdown)
    return encode(doc, doc.text, doc.front_matter.raw if doc.front_matter else None)


# --------------------------------------------------------------------------- golden files


def test_fixture_folder_is_populated() -> None:
    assert len(inputs()) >= 10
    assert all(expected_path(p).exists() for p in inputs())


@pytest.mark.parametrize("path", inputs(), ids=lambda p: p.name)
def test_golden(path: Path) -> None:
    raw = path.read_bytes()
    doc, out, fields = translate_document(raw, path.name)
    target = expected_path(path)
    if os.environ.get("UPDATE_GOLDEN"):
        target.write_bytes(out)
    assert out == target.read_bytes()
    # The body is untouched, and the front matter parses back to the source data
    # with exactly the translated values replaced.
    again = decode(out, name=target.name, markdown=True)
    assert again.text == doc.text
    assert (again.bom, again.encoding, again.newline) == (doc.bom, doc.encoding, doc.newline)
    if doc.front_matter is not None:
        assert again.front_matter is not None
        assert dict(again.front_matter.data) == with_translations(doc.front_matter.data, fields)


@pytest.mark.parametrize(
    "path", inputs() + [expected_path(p) for p in inputs()], ids=lambda p: p.name
)
def test_fixture_roundtrip(path: Path) -> None:
    raw = path.read_bytes()
    assert roundtrip(raw) == raw


def test_golden_edits_change_only_value_lines() -> None:
    # Line by line, the translated YAML differs from the source only on lines
    # that held a translated value; comments and other keys are identical.
    raw = (FIXTURES / "yaml-quoting.md").read_bytes().decode()
    out = expected_path(FIXTURES / "yaml-quoting.md").read_bytes().decode()
    changed = [a for a, b in zip(raw.splitlines(), out.splitlines(), strict=True) if a != b]
    assert [line.split(":")[0] for line in changed] == ["title", "description", "summary"]
    assert "# single-quoted, with an escaped quote\n" in out
    assert "   # plain, with a colon\n" in out


def test_golden_fixture_details() -> None:
    lists = decode((FIXTURES / "yaml-lists.md").read_bytes(), name="l.md", markdown=True)
    assert lists.front_matter is not None
    fields = translatable_fields(lists.front_matter, GOLDEN_KEYS)
    assert [(f.key, f.index) for f in fields] == [
        ("title", None),
        ("description", None),
        ("summary", 0),
        ("summary", 1),
        ("summary", 5),
        ("tags", 0),
        ("tags", 1),
        ("tags", 2),
    ]
    crlf = decode((FIXTURES / "yaml-crlf-bom.md").read_bytes(), name="c.md", markdown=True)
    assert crlf.bom and crlf.newline == "\r\n" and not crlf.text.startswith("\ufeff")
    mixed = (FIXTURES / "mixed-newlines.md").read_bytes()
    assert decode(mixed, name="m.md", markdown=True).newline == "\r\n"
    out = expected_path(FIXTURES / "mixed-newlines.md").read_bytes()
    assert out.count(b"\r\n") == mixed.count(b"\r\n") - 1  # the folded summary became one line


# --------------------------------------------------------------------------- decode


def test_plain_document() -> None:
    doc = decode(b"# Title\n\nText\n", name="a.md", markdown=True)
    assert doc == Document(
        text="# Title\n\nText\n",
        front_matter=None,
        bom=False,
        encoding="utf-8",
        newline="\n",
        markdown=True,
    )


def test_front_matter_split_exactly() -> None:
    raw = "---  \r\ntitle: T\r\n---\r\nBody\r\n---\r\nmore\r\n"
    doc = decode(raw.encode(), name="a.md", markdown=True)
    assert doc.front_matter == FrontMatter(
        raw="---  \r\ntitle: T\r\n---\r\n", format="yaml", data={"title": "T"}
    )
    assert doc.text == "Body\r\n---\r\nmore\r\n"
    assert doc.newline == "\r\n"


def test_toml_front_matter() -> None:
    doc = decode(b"+++\ntitle = 'T'\n[params]\nx = 1\n+++\nBody", name="a.md", markdown=True)
    assert doc.front_matter is not None
    assert doc.front_matter.format == "toml"
    assert dict(doc.front_matter.data) == {"title": "T", "params": {"x": 1}}
    assert doc.text == "Body"


@pytest.mark.parametrize(
    ("raw", "body", "data"),
    [
        (b"", "", None),
        (b"---\ntitle: T\n---", "", {"title": "T"}),
        (b"---\ntitle: T\n---\n", "", {"title": "T"}),
        (b"---\n---\nBody\n", "Body\n", {}),
        (b"+++\n+++\n", "", {}),
        # A rule followed by a blank line, or by prose, is Markdown, not front matter.
        (b"---\n\n# Heading\n", "---\n\n# Heading\n", None),
        (b"---\nJust a rule and some prose.\n", "---\nJust a rule and some prose.\n", None),
        (b"---", "---", None),
        (b"Text\n---\ntitle: T\n---\n", "Text\n---\ntitle: T\n---\n", None),
        (b"--- not a delimiter\ntitle: T\n---\n", "--- not a delimiter\ntitle: T\n---\n", None),
    ],
)
def test_edge_documents(raw: bytes, body: str, data: dict[str, Any] | None) -> None:
    doc = decode(raw, name="a.md", markdown=True)
    assert doc.text == body
    if data is None:
        assert doc.front_matter is None
    else:
        assert doc.front_matter is not None
        assert dict(doc.front_matter.data) == data
    assert roundtrip(raw) == raw


def test_text_files_have_no_front_matter() -> None:
    raw = b"---\ntitle: T\n---\nBody\n"
    doc = decode(raw, name="a.txt", markdown=False)
    assert doc.front_matter is None and doc.text == raw.decode() and not doc.markdown


def test_newline_style() -> None:
    assert decode(b"a\r\nb\r\nc\n", name="a", markdown=True).newline == "\r\n"
    assert decode(b"a\r\nb\nc\n", name="a", markdown=True).newline == "\n"
    assert decode(b"no newline", name="a", markdown=True).newline == "\n"
    mixed = b"a\r\nb\nc\rd\r\n"
    assert roundtrip(mixed) == mixed


@pytest.mark.parametrize("bom", [codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE])
def test_utf16_roundtrip(bom: bytes) -> None:
    text = "---\r\ntitle: Überschrift\r\n---\r\n# 标题 😀\r\n"
    codec = "utf-16-le" if bom == codecs.BOM_UTF16_LE else "utf-16-be"
    raw = bom + text.encode(codec)
    doc = decode(raw, name="u.md", markdown=True)
    assert doc.encoding == "utf-16" and doc.bom
    assert doc.text == "# 标题 😀\r\n"
    assert doc.front_matter is not None
    assert dict(doc.front_matter.data) == {"title": "Überschrift"}
    assert encode(doc, doc.text, doc.front_matter.raw) == raw
    new_fm = replace_fields(doc.front_matter, {("title", None): "标题"})
    assert encode(doc, "正文\r\n", new_fm) == bom + (
        '---\r\ntitle: "标题"\r\n---\r\n正文\r\n'
    ).encode(codec)


def test_utf8_bom_kept_out_of_text_and_written_back() -> None:
    raw = codecs.BOM_UTF8 + b"+++\ntitle = 'T'\n+++\nBody\n"
    doc = decode(raw, name="b.md", markdown=True)
    assert doc.bom and doc.front_matter is not None and doc.text == "Body\n"
    assert encode(doc, "Texte\n", doc.front_matter.raw) == (
        codecs.BOM_UTF8 + b"+++\ntitle = 'T'\n+++\nTexte\n"
    )


# --------------------------------------------------------------------------- errors

SECRET = "Confidential"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["binary", "NUL", "exclude"]),
        (
            f"# {SECRET}\n\nbad \xff byte".encode("latin-1"),
            ["UTF-8", "byte 20", "line 3", "re-save"],
        ),
        (codecs.BOM_UTF8 + b"ok\n\xc3(", ["UTF-8", "byte 6", "line 2"]),
        (codecs.BOM_UTF16_LE + b"a\x00b", ["UTF-16"]),
        (codecs.BOM_UTF16_LE + "a\x00b".encode("utf-16-le"), ["NUL"]),
        (f"---\ntitle: {SECRET}\n\nBody\n".encode(), ["never closed", "'---'", "line 1"]),
        (f"+++\ntitle = '{SECRET}'\n".encode(), ["never closed", "'+++'"]),
        (f"---\ntitle: {SECRET}: x\n---\n".encode(), ["YAML", "line 2", "quoting"]),
        (f"---\na: 1\nb: [{SECRET}\n---\n".encode(), ["YAML", "line 4"]),
        (f"---\ntitle: {SECRET}\n\tx: 1\n---\n".encode(), ["YAML", "line 3"]),
        (f"---\ntitle: {SECRET}\x07\n---\n".encode(), ["YAML", "line 2", "control character"]),
        (f"---\ndate: 2024-13-45\ntitle: {SECRET}\n---\n".encode(), ["YAML", "cannot be read"]),
        (f"+++\ntitle = '{SECRET}'\ntitle = 'x'\n+++\n".encode(), ["TOML", "line 3"]),
        (f"+++\ntitle = {SECRET}\n+++\n".encode(), ["TOML", "line 2"]),
        (f"---\n- {SECRET}\n- list\n---\n".encode(), ["key/value", "blank line"]),
        (f"---\n{SECRET}\n---\n".encode(), ["key/value"]),
    ],
)
def test_document_errors(raw: bytes, words: list[str]) -> None:
    with pytest.raises(DocumentError) as info:
        decode(raw, name="docs/page.md", markdown=True)
    message = str(info.value)
    assert message.startswith("docs/page.md: ")
    assert "\n" not in message and "Traceback" not in message
    assert SECRET not in message
    for word in words:
        assert word in message


# --------------------------------------------------------------------------- fields


def front_matter(text: str) -> FrontMatter:
    doc = decode(text.encode(), name="f.md", markdown=True)
    assert doc.front_matter is not None
    return doc.front_matter


def test_translatable_fields_selection() -> None:
    fm = front_matter(
        "---\ntitle: T\ndescription: '  '\nsummary: 3\ntags: [a, 1, '', b]\n"
        "params:\n  title: nested\n---\n"
    )
    fields = translatable_fields(fm, ["tags", "title", "description", "summary", "params", "x"])
    assert fields == [
        Field("tags", 0, "a"),
        Field("tags", 3, "b"),
        Field("title", None, "T"),
    ]
    assert translatable_fields(fm, []) == []


def test_replace_without_translations_is_identity() -> None:
    fm = front_matter("---\ntitle: T # c\n---\n")
    assert replace_fields(fm, {}) == fm.raw


def test_replace_keeps_everything_else() -> None:
    fm = front_matter(
        "---\n"
        "# comment\n"
        "date: 2024-01-01\n"
        "title: &anchor   Plain title   # trailing comment\n"
        "yes_flag: on\n"
        "tags: !!seq [x, y]\n"
        "dup: 1\n"
        "dup: 2\n"
        "---\n"
    )
    new = replace_fields(fm, {("title", None): "新标题", ("tags", 1): "why"})
    assert new == (
        "---\n"
        "# comment\n"
        "date: 2024-01-01\n"
        'title: &anchor   "新标题"   # trailing comment\n'
        "yes_flag: on\n"
        'tags: !!seq [x, "why"]\n'
        "dup: 1\n"
        "dup: 2\n"
        "---\n"
    )


def test_replace_multi_line_scalars_as_a_whole() -> None:
    fm = front_matter("---\ntitle: |+ # keep\n  a\n  b\n\n\nnext: 'multi\n  line'\nlast: 1\n---\n")
    new = replace_fields(fm, {("title", None): "x", ("next", None): "y"})
    assert new == '---\ntitle: "x" # keep\n\n\nnext: "y"\nlast: 1\n---\n'


def test_replace_alias_value() -> None:
    fm = front_matter("---\nbase: &b Shared\ntitle: *b\n---\n")
    assert replace_fields(fm, {("title", None): "T"}) == '---\nbase: &b Shared\ntitle: "T"\n---\n'


def test_replace_refuses_when_an_alias_would_change_too() -> None:
    fm = front_matter("---\ntitle: &t Shared\nog_title: *t\n---\n")
    with pytest.raises(ValidationFailed) as info:
        replace_fields(fm, {("title", None): "T"})
    assert info.value.problems[0].startswith("front matter")


@pytest.mark.parametrize(
    "target",
    [("missing", None), ("title", 0), ("tags", None), ("tags", 5), ("count", None)],
)
def test_replace_refuses_fields_that_are_not_strings(target: tuple[str, int | None]) -> None:
    fm = front_matter("---\ntitle: T\ntags: [a]\ncount: 3\n---\n")
    with pytest.raises(ValidationFailed):
        replace_fields(fm, {target: "x"})


def test_replace_refuses_values_only_reachable_through_merge_keys() -> None:
    fm = front_matter("---\nbase: &b {title: T}\n<<: *b\n---\n")
    assert fm.data["title"] == "T"
    with pytest.raises(ValidationFailed):
        replace_fields(fm, {("title", None): "x"})


def test_toml_replace_forms() -> None:
    fm = front_matter(
        "+++\n"
        'title = """\\\n  Continued \\\n  title"""  # c\n'
        "'summary' = '''x'''\n"
        'tags = ["a",\n  # comment, with ] bracket\n  "b",]\n'
        "when = 1979-05-27 07:32:00Z\n"
        "[t]\ntitle = 'x'\n"
        "+++\n"
    )
    new = replace_fields(fm, {("title", None): "T\n", ("summary", None): "S'", ("tags", 1): 'B"'})
    assert new == (
        "+++\n"
        'title = "T\\n"  # c\n'
        "'summary' = \"S'\"\n"
        'tags = ["a",\n  # comment, with ] bracket\n  "B\\"",]\n'
        "when = 1979-05-27 07:32:00Z\n"
        "[t]\ntitle = 'x'\n"
        "+++\n"
    )


@pytest.mark.parametrize("source", ["---\ntitle: x\n---\n", "+++\ntitle = 'x'\n+++\n"])
def test_replace_refuses_lone_surrogates(source: str) -> None:
    with pytest.raises(ValidationFailed):
        replace_fields(front_matter(source), {("title", None): "a\ud800b"})


def test_toml_dotted_and_table_keys_are_not_top_level() -> None:
    fm = front_matter("+++\nsite.title = 'a'\n[params]\ntitle = 'b'\n+++\n")
    assert translatable_fields(fm, ["title"]) == []
    with pytest.raises(ValidationFailed):
        replace_fields(fm, {("title", None): "x"})


# --------------------------------------------------------------------------- properties

SPECIALS = list("\"'`:#\n\r\t\\-*&!%@|>?{}[],= \x00\x7f\x85\u2028\u2029\ufeff\u00a0")
translations_text = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(SPECIALS)),
    max_size=40,
)

YAML_SOURCES = [
    "---\n# c\ntitle: Plain  # note\ndescription: 'single'\nsummary: \"double\"\n"
    "tags: [a, b]\nkeywords:\n  - x\n  - y\ndate: 2024-01-01\nnested: {title: n}\n---\n",
    "---\r\ntitle: |\r\n  block\r\n  text\r\ndescription: >-\r\n  folded\r\n\r\n"
    "summary: multi\r\n  line plain\r\ntags:\r\n- a\r\n- 'b'\r\nkeywords: [\"x\", y]\r\n---\r\n",
]
TOML_SOURCES = [
    '+++\n# c\ntitle = "basic" # note\ndescription = \'literal\'\nsummary = """\nml"""\n'
    "tags = ['a', \"b\"]\nkeywords = [\n  '''x''', # c\n  \"y\",\n]\ndate = 2024-01-01\n"
    "[nested]\ntitle = 'n'\n+++\n",
    "+++\r\ntitle = '''\r\nml literal'''\r\ndescription = \"\"\r\nsummary = 'x'\r\n"
    'tags = ["a", \'b\']\r\nkeywords = ["x","y"]\r\n+++\r\n',
]
PROPERTY_TARGETS = [
    ("title", None),
    ("description", None),
    ("summary", None),
    ("tags", 0),
    ("tags", 1),
    ("keywords", 0),
    ("keywords", 1),
]


def parse_inner(fm_raw: str, fmt: str) -> Any:
    # Only "\n" ends a line here: str.splitlines would also split at U+0085.
    inner = fm_raw[fm_raw.index("\n") + 1 : fm_raw.rstrip("\r\n").rindex("\n") + 1]
    if fmt == "yaml":
        return yaml.load(inner, Loader=yaml.SafeLoader)
    return tomllib.loads(inner)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(YAML_SOURCES + TOML_SOURCES),
    values=st.lists(translations_text, min_size=len(PROPERTY_TARGETS), max_size=7),
)
def test_any_translation_parses_back_exactly(source: str, values: list[str]) -> None:
    fm = front_matter(source)
    translations = dict(zip(PROPERTY_TARGETS, values, strict=True))
    # Every target is a string in the source, so no edit may be refused.
    new = replace_fields(fm, translations)
    data = parse_inner(new, fm.format)
    for (key, index), value in translations.items():
        assert (data[key] if index is None else data[key][index]) == value
    # Other keys untouched, and nothing outside the value spans changed.
    untouched = {k: v for k, v in fm.data.items() if k not in dict(PROPERTY_TARGETS)}
    assert {k: data[k] for k in untouched} == untouched
    assert new.splitlines()[0] == fm.raw.splitlines()[0]
    assert new.splitlines()[-1] == fm.raw.splitlines()[-1]


source_text = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=["Cs"]), st.sampled_from(SPECIALS)),
    min_size=1,
    max_size=30,
)


def toml_basic(value: str) -> str:
    """Written independently of pipeline.documents, to build sources."""
    escaped = "".join(
        "\\" + ch if ch in '"\\' else f"\\u{ord(ch):04x}" if ch < " " or ch == "\x7f" else ch
        for ch in value
    )
    return f'"{escaped}"'


def toml_source_string(value: str, form: str) -> str:
    """``value`` as a TOML string of the given form, or basic where that form cannot hold it."""
    controls = any(ch < " " or ch == "\x7f" for ch in value)
    if form == "literal" and "'" not in value and not controls:
        return f"'{value}'"
    if form == "ml_basic":
        return f'"""\n{toml_basic(value)[1:-1]}"""'
    plain_lines = all(ch >= " " and ch != "\x7f" for ch in value.replace("\n", ""))
    if form == "ml_literal" and "'''" not in value and plain_lines and not value.endswith("'"):
        return f"'''{value}'''"
    return toml_basic(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(source_text, min_size=4, max_size=4),
    targets=st.lists(translations_text, min_size=3, max_size=3),
    style=st.sampled_from([None, "'", '"', "|", ">"]),
    width=st.integers(min_value=10, max_value=80),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_yaml_sources_in_any_style(
    sources: list[str], targets: list[str], style: str | None, width: int, newline: str
) -> None:
    data = {"title": sources[0], "tags": [sources[1], sources[2]], "other": sources[3]}
    dumped = yaml.safe_dump(data, default_style=style, allow_unicode=True, width=width)
    # PyYAML ends a document at a U+0085 line break without a newline; the
    # closing '---' must start a line of its own.
    assume(dumped.endswith("\n"))
    fm = front_matter(f"---{newline}{dumped.replace(chr(10), newline)}---{newline}")
    translations = {("title", None): targets[0], ("tags", 0): targets[1], ("tags", 1): targets[2]}
    new = replace_fields(fm, translations)
    assert parse_inner(new, "yaml") == {
        "title": targets[0],
        "tags": targets[1:],
        "other": fm.data["other"],
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(source_text, min_size=4, max_size=4),
    targets=st.lists(translations_text, min_size=3, max_size=3),
    forms=st.lists(
        st.sampled_from(["basic", "literal", "ml_basic", "ml_literal"]), min_size=4, max_size=4
    ),
    comments=st.booleans(),
)
def test_toml_sources_in_any_form(
    sources: list[str], targets: list[str], forms: list[str], comments: bool
) -> None:
    title, tag0, tag1, other = (
        toml_source_string(v, f) for v, f in zip(sources, forms, strict=True)
    )
    note = " # note, with ] \" ''' and \\" if comments else ""
    text = (
        f"+++\ntitle = {title}{note}\ntags = [{note}\n  {tag0},{note}\n  {tag1}{note}\n]{note}\n"
        f"other = {other}{note}\n+++\n"
    )
    fm = front_matter(text)
    translations = {("title", None): targets[0], ("tags", 0): targets[1], ("tags", 1): targets[2]}
    new = replace_fields(fm, translations)
    assert parse_inner(new, "toml") == {
        "title": targets[0],
        "tags": targets[1:],
        "other": fm.data["other"],
    }


# --------------------------------------------------------------------------- real documents


def corpus_files() -> list[Path]:
    corpus = data_path("tidb-operator-docs")
    return sorted(p for lang in ("en", "zh") for p in (corpus / lang).rglob("*") if p.is_file())


def test_corpus_roundtrip_and_edit() -> None:
    files = corpus_files()
    assert len(files) > 100
    with_fm = 0
    for path in files:
        raw = path.read_bytes()
        doc = decode(raw, name=path.name, markdown=True)
        fm_raw = doc.front_matter.raw if doc.front_matter else None
        assert encode(doc, doc.text, fm_raw) == raw, path
        if doc.front_matter is None:
            continue
        with_fm += 1
        fields = translatable_fields(doc.front_matter, GOLDEN_KEYS)
        new = replace_fields(
            doc.front_matter, {(f.key, f.index): fake_translate(f.value) for f in fields}
        )
        data = decode(encode(doc, doc.text, new), name=path.name, markdown=True).front_matter
        assert data is not None
        assert dict(data.data) == with_translations(doc.front_matter.data, fields), path
    assert with_fm > 100
