"""Bad inputs on purpose, through the real CLI: each ends in one clear line for that
file (or a correct translation), and the other files of the run are translated.

A scripted backend plays the model (pipeline/testing.py); every case runs the whole
pipeline: discover, decode, split, translate, validate, splice, atomic write.
"""

from __future__ import annotations

import codecs
import re
import time
from pathlib import Path

import pytest

from pipeline.testing import ScriptedBackend
from tests.reliability_support import (
    Outcome,
    assert_good_translated,
    has_cjk,
    invoke,
    outputs,
    temp_files,
    use_scripted,
    write_good,
)


def run_with(tmp_path: Path, name: str, data: bytes) -> tuple[Outcome, Path]:
    """Translate a folder holding good.md and ``name`` (``data``) into out/."""
    src = tmp_path / "in"
    write_good(src)
    bad = src / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(data)
    out = tmp_path / "out"
    outcome = invoke(src, "--to", "zh", "--out", out)
    assert_good_translated(out)
    assert temp_files(out) == []
    return outcome, out


# --------------------------------------------------------------------------- refused files

REFUSED = [
    pytest.param(
        "binary.md",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",
        "looks binary (it contains NUL bytes); remove it from the input or add it to "
        "[files] exclude",
        id="binary-named-md",
    ),
    pytest.param(
        "latin1.md",
        "# Café\n\nCafé au lait, s'il vous plaît.\n".encode("latin-1"),
        "not valid UTF-8 at byte 5 (line 1); re-save the file as UTF-8",
        id="invalid-utf8",
    ),
    pytest.param(
        "unterminated.md",
        b"---\ntitle: Hello\ndate: 2024-01-01\n\nBody text without a closing line.\n",
        "the front matter opened by '---' on line 1 is never closed; add a '---' line",
        id="unterminated-front-matter",
    ),
    pytest.param(
        "bad-yaml.md",
        b"---\ntitle: [unclosed\nslug: x\n---\n\nBody text.\n",
        "the YAML front matter is invalid (line 3: did not find expected ',' or ']'); fix it",
        id="malformed-yaml",
    ),
    pytest.param(
        "bad-yaml-colon.md",
        b"---\ntitle: Part 1: the start: again\n---\n\nBody text.\n",
        "the YAML front matter is invalid (line 2: mapping values are not allowed",
        id="malformed-yaml-colon",
    ),
    pytest.param(
        "bad-toml.md",
        b'+++\ntitle = "unclosed\n+++\n\nBody text.\n',
        "the TOML front matter is invalid (",
        id="malformed-toml",
    ),
    pytest.param(
        "toml-no-value.md",
        b"+++\ntitle =\n+++\n\nBody text.\n",
        "the TOML front matter is invalid (Invalid value (at line 2, column 8)); fix it",
        id="malformed-toml-no-value",
    ),
    pytest.param(
        "utf16-broken.md",
        codecs.BOM_UTF16_LE + "# Title\n".encode("utf-16-le") + b"\x00\xd8",
        "not valid UTF-16",
        id="utf16-lone-surrogate",
    ),
]


@pytest.mark.parametrize(("name", "data", "message"), REFUSED)
def test_bad_file_gets_one_line_and_the_rest_is_translated(
    scripted: ScriptedBackend, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    outcome, out = run_with(tmp_path, name, data)
    assert outcome.code == 1, outcome.stderr
    lines = outcome.lines_about(name)
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith(f"{name}: failed: ")
    assert message in lines[0]
    # The name is said once, at the start, and no document text is quoted.
    assert lines[0].count(name) == 1
    assert "Body text" not in outcome.stderr and "Café" not in outcome.stderr
    assert "1 failed" in outcome.stderr
    assert name not in outputs(out)
    # Nothing was sent to the model from the refused file.
    assert all("Body" not in r.prompt.text for r in scripted.requests)


def test_refused_file_does_not_block_a_rerun(scripted: ScriptedBackend, tmp_path: Path) -> None:
    outcome, out = run_with(tmp_path, "binary.md", b"\x00\x01\x02")
    assert outcome.code == 1
    asked = len(scripted.requests)
    again = invoke(tmp_path / "in", "--to", "zh", "--out", out)
    assert again.code == 1 and len(again.lines_about("binary.md")) == 1
    assert len(scripted.requests) == asked, "good.md is current: no request"
    (tmp_path / "in" / "binary.md").unlink()
    assert invoke(tmp_path / "in", "--to", "zh", "--out", out).code == 0


# --------------------------------------------------------------------------- encodings and newlines


def test_utf8_bom_is_kept(scripted: ScriptedBackend, tmp_path: Path) -> None:
    outcome, out = run_with(
        tmp_path, "bom.md", codecs.BOM_UTF8 + b"# Title\n\nHello there, reader.\n"
    )
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["bom.md"]
    assert data.startswith(codecs.BOM_UTF8)
    assert not data[3:].startswith(codecs.BOM_UTF8)
    text = data[3:].decode("utf-8")
    assert "Hello" not in text and text.startswith("# ") and has_cjk(text) and text.endswith("\n")


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_translated_and_written_back_as_utf16(
    scripted: ScriptedBackend, tmp_path: Path, codec: str
) -> None:
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    source = "---\ntitle: Greetings\n---\n\n# Title\n\nHello there, reader.\r\n"
    outcome, out = run_with(tmp_path, "wide.md", bom + source.encode(codec))
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["wide.md"]
    assert data.startswith(bom)
    text = data[2:].decode(codec)
    assert "Hello" not in text and "Greetings" not in text
    assert text.startswith("---\ntitle: ") and text.endswith("\r\n")


def endings(data: bytes) -> list[bytes]:
    return re.findall(rb"\r\n|\n", data)


def test_crlf_is_kept(scripted: ScriptedBackend, tmp_path: Path) -> None:
    source = (
        b"---\r\ntitle: Hello\r\n---\r\n\r\n# Title\r\n\r\n"
        b"One line\r\nand another.\r\n\r\n- a\r\n- b\r\n"
    )
    outcome, out = run_with(tmp_path, "crlf.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["crlf.md"]
    assert b"Hello" not in data and b"another" not in data
    assert endings(data) == endings(source)
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_mixed_line_endings_are_kept_line_by_line(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    source = (
        b"# Title\r\n\nFirst line\nsecond line\r\n\r\n```\ncode\r\nmore\n```\n\nLast words.\r\n"
    )
    outcome, out = run_with(tmp_path, "mixed.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["mixed.md"]
    assert b"Last" not in data and b"First" not in data
    assert endings(data) == endings(source)
    assert b"```\ncode\r\nmore\n```\n" in data


def test_old_mac_cr_only_file_is_not_lost(scripted: ScriptedBackend, tmp_path: Path) -> None:
    source = b"# Title\r\rSome text.\r"
    outcome, out = run_with(tmp_path, "cr.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["cr.md"]
    assert data.count(b"\r") == source.count(b"\r") and b"\n" not in data


# --------------------------------------------------------------------------- odd shapes


def test_empty_file_is_written_empty(scripted: ScriptedBackend, tmp_path: Path) -> None:
    outcome, out = run_with(tmp_path, "empty.md", b"")
    assert outcome.code == 0, outcome.stderr
    assert outputs(out)["empty.md"] == b""
    assert outcome.lines_about("empty.md") == []


def test_whitespace_only_file_is_copied(scripted: ScriptedBackend, tmp_path: Path) -> None:
    outcome, out = run_with(tmp_path, "blank.md", b"\n\n   \n\t\n")
    assert outcome.code == 0, outcome.stderr
    assert outputs(out)["blank.md"] == b"\n\n   \n\t\n"


@pytest.mark.parametrize(
    ("source", "kept"),
    [
        (b"---\ntitle: Hello world\nslug: hello-world\n---\n", b"slug: hello-world\n---\n"),
        (b"---\ntitle: Hello world\n---", b"---"),
        (b'+++\ntitle = "Hello world"\ndraft = true\n+++\n', b"draft = true\n+++\n"),
        (b"---\n---\n", b"---\n---\n"),
    ],
    ids=["yaml", "yaml-no-final-newline", "toml", "empty-front-matter"],
)
def test_front_matter_only(
    scripted: ScriptedBackend, tmp_path: Path, source: bytes, kept: bytes
) -> None:
    outcome, out = run_with(tmp_path, "fm.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["fm.md"]
    assert data.endswith(kept)
    assert b"Hello" not in data
    assert len(endings(data)) == len(endings(source))


def test_five_megabyte_document_completes(scripted: ScriptedBackend, tmp_path: Path) -> None:
    para = "The quick brown fox jumps over the lazy dog, then rests a while in the sun. " * 4
    blocks = []
    size = 0
    i = 0
    while size < 5 * 1024 * 1024:
        block = f"## Part {i}\n\n{para}\n\n" if i % 10 == 0 else f"{para}\n\n"
        blocks.append(block)
        size += len(block)
        i += 1
    blocks.append("```python\nprint('kept as it is')\n```\n")
    source = "".join(blocks).encode()
    outcome, out = run_with(tmp_path, "big.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["big.md"].decode()
    assert "quick brown fox" not in data
    assert data.count("\n") == source.count(b"\n")
    assert data.endswith("```python\nprint('kept as it is')\n```\n")
    assert "0 kept in source" in outcome.stderr


def prefix(line: str) -> str:
    return re.match(r"[ >\-]*", line).group(0)  # type: ignore[union-attr]


def test_deeply_nested_lists_and_quotes(scripted: ScriptedBackend, tmp_path: Path) -> None:
    depth = 50
    lists = "".join("  " * i + f"- item at level {i}\n" for i in range(depth))
    quotes = "".join(">" * i + f" quoted at level {i}\n\n" for i in range(1, depth + 1))
    both = "".join("> " * i + f"- mixed at level {i}\n" for i in range(depth))
    source = f"{lists}\n{quotes}{both}"
    outcome, out = run_with(tmp_path, "deep.md", source.encode())
    assert outcome.code == 0, outcome.stderr
    text = outputs(out)["deep.md"].decode()
    src_lines = source.splitlines(keepends=True)
    out_lines = text.splitlines(keepends=True)
    assert len(out_lines) == len(src_lines)
    for before, after in zip(src_lines, out_lines, strict=True):
        # Every container marker survives; each line is translated or left exactly as it was.
        assert prefix(after) == prefix(before)
        assert after == before or has_cjk(after)
    # All 50 levels are translated (the parser's nesting limit was raised to 128;
    # past it, text would stay in the source language, byte for byte).
    assert "at level" not in text
    assert "0 kept in source" in outcome.stderr


def test_nesting_past_the_parser_limit_is_kept_verbatim(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    source = "> " * 200 + "too deep to parse\n\nA normal paragraph after it.\n"
    outcome, out = run_with(tmp_path, "deeper.md", source.encode())
    assert outcome.code == 0, outcome.stderr
    text = outputs(out)["deeper.md"].decode()
    assert text.startswith("> " * 200)
    assert text.count("\n") == source.count("\n")


def test_single_100_kb_line(scripted: ScriptedBackend, tmp_path: Path) -> None:
    words = " ".join(f"word{i % 97}" for i in range(20_000))
    source = f"# Long\n\n{words[:102_400]}\n".encode()
    assert len(source) > 100_000
    outcome, out = run_with(tmp_path, "long.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["long.md"]
    # Split at the chunk budget, translated piece by piece, joined back on one line.
    assert data.count(b"\n") == 3
    assert b"word" not in data
    assert len(scripted.requests) > 10


def test_single_100_kb_line_without_spaces_is_kept_whole(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    source = b"# Blob\n\n" + b"x" * 102_400 + b"\n"
    outcome, out = run_with(tmp_path, "blob.md", source)
    assert outcome.code == 0, outcome.stderr
    data = outputs(out)["blob.md"]
    assert b"x" * 102_400 + b"\n" in data
    assert data.count(b"\n") == source.count(b"\n")


def test_zero_width_and_right_to_left_text(scripted: ScriptedBackend, tmp_path: Path) -> None:
    source = (
        "# Zero\u200bwidth title\n\n"
        "Joined\u200dby a joiner, with a\u200bzero width space and\ufeffa stray BOM.\n\n"
        "שלום עולם: Hebrew text next to English words.\n\n"
        "مرحبا بالعالم \u202eoverride\u202c and \u2067isolate\u2069 marks.\n"
    )
    outcome, out = run_with(tmp_path, "rtl.md", source.encode())
    assert outcome.code == 0, outcome.stderr
    text = outputs(out)["rtl.md"].decode()
    assert "English" not in text and "joiner" not in text
    for kept in ("\u200b", "\u200d", "\ufeff", "\u202e", "\u202c", "\u2067", "\u2069"):
        assert kept in text, repr(kept)
    assert "שלום עולם" in text and "مرحبا بالعالم" in text
    assert text.count("\n") == source.count("\n")


@pytest.mark.parametrize(
    "name",
    [
        "my notes/read me.md",
        "über/café crème.md",
        "日本語/ファイル 名.md",
        "emoji 🚀 launch.md",
        'quote\'s and "double".md',
        "-starts-with-dash.md",
    ],
)
def test_file_names_with_spaces_and_non_ascii(
    scripted: ScriptedBackend, tmp_path: Path, name: str
) -> None:
    outcome, out = run_with(tmp_path, name, b"# Title\n\nHello there, reader.\n")
    assert outcome.code == 0, outcome.stderr
    written = outputs(out)
    assert set(written) == {"good.md", name}
    assert b"Hello" not in written[name]
    # A re-run finds the name in its manifest: nothing to do.
    asked = len(scripted.requests)
    again = invoke(tmp_path / "in", "--to", "zh", "--out", out)
    assert again.code == 0 and len(scripted.requests) == asked


@pytest.mark.parametrize(
    "unit",
    ["x", "](", "{{<", "{{< ", "a. ", "word "],
    ids=[
        "no-space",
        "link-brackets",
        "unclosed-shortcodes",
        "spaced-shortcodes",
        "tiny-sentences",
        "words",
    ],
)
def test_pathological_100_kb_lines_finish_in_linear_time(
    scripted: ScriptedBackend, tmp_path: Path, unit: str
) -> None:
    """Each of these once took minutes (a regex or a diff that is quadratic in the
    length of a line); now each is linear and finishes in seconds."""
    source = ("# Line\n\nword " + unit * (102_400 // len(unit)) + "\n").encode()
    started = time.monotonic()
    outcome, out = run_with(tmp_path, "line.md", source)
    took = time.monotonic() - started
    assert outcome.code == 0, outcome.stderr
    assert took < 30, f"{took:.1f} s"
    data = outputs(out)["line.md"]
    assert data.count(b"\n") == source.count(b"\n")


@pytest.mark.parametrize(
    ("unit", "stops"),
    [("x", False), ("lorem ipsum dolor sit amet, consectetur adipiscing ", True), ("ab. ", True)],
    ids=["no-space", "words", "sentences"],
)
def test_a_long_echo_is_caught_in_linear_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unit: str, stops: bool
) -> None:
    """A model that echoes its input (plus a little) on a 100 KB line: the echo
    check compares a bounded sample, so it is caught in seconds, not minutes;
    one unsplittable chunk is kept in the source; dozens of chunks all echoing
    stop the run early (the model cannot do the job), with nothing broken written."""
    use_scripted(monkeypatch, ScriptedBackend(lambda text: text + " ok"))
    src = tmp_path / "in"
    src.mkdir()
    source = (unit * (102_400 // len(unit)) + "\n").encode()
    (src / "echo.md").write_bytes(source)
    started = time.monotonic()
    outcome = invoke(src, "--to", "zh", "--out", tmp_path / "out")
    took = time.monotonic() - started
    assert took < 30, f"{took:.1f} s"
    written = outputs(tmp_path / "out")
    if stops:
        assert outcome.code == 1, outcome.stderr
        assert "stopped after the first 8 chunks: 8 of them failed the same check" in (
            outcome.stderr
        )
        assert "echo.md" not in written, "nothing half-translated is written"
    else:
        assert outcome.code == 0, outcome.stderr
        assert written["echo.md"] == source, "kept in the source, whole"
        assert "kept in the source language" in outcome.stderr
