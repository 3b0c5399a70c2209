"""A newcomer's first ten minutes: every everyday mistake gets one line and the
right exit code; text kept in the source language is reported and retried only
when asked; a model that cannot do the job stops early."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest

from pipeline.errors import BackendUnavailable
from pipeline.testing import ScriptedBackend, shout, to_zh
from tests.reliability_support import invoke, outputs, use_scripted, write_good


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_error(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.startswith("translate-dir: error:")]
    return line


# --------------------------------------------------------------- mistakes, one line each


def test_a_file_of_another_type_is_skipped_with_why_and_nothing_selected_is_exit_2(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "data.json").write_text('{"a": 1}\n')
    outcome = invoke("docs/data.json", "--to", "zh")
    assert outcome.code == 2, outcome.stderr
    line = one_error(outcome.stderr)
    assert "docs/data.json: skipped, not a file type translate-dir handles" in line
    assert "**/*.md" in line
    assert scripted.requests == []
    assert not (tmp_path / "output").exists()


def test_a_file_of_another_type_beside_a_good_one_is_a_warning(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_good(tmp_path / "docs")
    (tmp_path / "docs" / "data.json").write_text("{}\n")
    outcome = invoke("docs/good.md", "docs/data.json", "--to", "zh")
    assert outcome.code == 0, outcome.stderr
    assert outcome.lines_about("data.json") == [
        "docs/data.json: skipped, not a file type translate-dir handles "
        "(files.include: **/*.md, **/*.mdx, **/*.markdown, **/*.txt)"
    ]
    assert set(outputs(tmp_path / "output" / "zh")) == {"docs/good.md"}


def test_files_say_which_root_they_are_relative_to(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_good(tmp_path, "README.md")
    write_good(tmp_path / "other")  # not named: must not be translated
    outcome = invoke("README.md", "--to", "zh")
    assert outcome.code == 0, outcome.stderr
    assert (
        f"1 file(s) under {tmp_path.resolve()} "
        "(the current folder; pass --root to change)" in outcome.stderr
    )
    assert set(outputs(tmp_path / "output" / "zh")) == {"README.md"}


def test_target_equal_to_source_is_refused(scripted: ScriptedBackend, tmp_path: Path) -> None:
    write_good(tmp_path / "in")
    outcome = invoke(tmp_path / "in", "--to", "en", "--out", tmp_path / "out")
    assert outcome.code == 2
    assert "--to en is the source language" in one_error(outcome.stderr)
    assert scripted.requests == []
    assert not (tmp_path / "out").exists()


def test_an_ollama_tag_with_ollama_down_names_ollama(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No patching: --backend auto probes a real closed port and falls back to
    the embedded backend, which cannot serve an Ollama tag."""
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{free_port()}")
    write_good(tmp_path / "in")
    outcome = invoke(
        tmp_path / "in", "--to", "zh", "--out", tmp_path / "out", "--model", "qwen2.5:7b"
    )
    assert outcome.code == 3, outcome.stderr
    line = one_error(outcome.stderr)
    assert "'qwen2.5:7b' looks like an Ollama model tag" in line
    assert "ollama serve" in line
    assert "model file not found" not in line


def test_a_failed_backend_start_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = ScriptedBackend(to_zh)

    def refuse() -> None:
        raise BackendUnavailable("Ollama is not answering at http://127.0.0.1:9")

    monkeypatch.setattr(backend, "start", refuse)
    use_scripted(monkeypatch, backend)
    write_good(tmp_path / "in")
    out = tmp_path / "output" / "zh"
    outcome = invoke(tmp_path / "in", "--to", "zh", "--out", out)
    assert outcome.code == 3
    assert one_error(outcome.stderr).endswith("Ollama is not answering at http://127.0.0.1:9")
    assert not (tmp_path / "output").exists(), sorted(tmp_path.rglob("*"))


def test_a_failed_start_keeps_an_existing_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = use_scripted(monkeypatch, ScriptedBackend(to_zh))
    write_good(tmp_path / "in")
    out = tmp_path / "out"
    assert invoke(tmp_path / "in", "--to", "zh", "--out", out).code == 0
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    (tmp_path / "in" / "good.md").write_text("# Changed\n\nA new paragraph.\n")

    def refuse() -> None:
        raise BackendUnavailable("down")

    monkeypatch.setattr(backend, "start", refuse)
    assert invoke(tmp_path / "in", "--to", "zh", "--out", out).code == 3
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before


def test_init_over_an_existing_file_is_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline.toml").write_text("# mine\n")
    outcome = invoke("init")
    assert outcome.code == 2
    assert outcome.stderr == (
        "translate-dir: error: pipeline.toml exists; pass --force to overwrite it\n"
    )
    assert (tmp_path / "pipeline.toml").read_text() == "# mine\n"


# --------------------------------------------------------------- text kept in the source

DOC = "# Title\n\nFirst paragraph to translate.\n\nSECOND paragraph the model cannot do.\n"


def stubborn(text: str) -> str:
    """Translates every paragraph but the one that starts with SECOND (echoed)."""
    return "\n\n".join(p if p.startswith("SECOND") else to_zh(p) for p in text.split("\n\n"))


def test_kept_pieces_are_reported_not_retried_and_retried_when_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = use_scripted(monkeypatch, ScriptedBackend(stubborn))
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (src / "doc.md").write_text(DOC)
    first = invoke(src, "--to", "zh", "--out", out)
    assert first.code == 0, first.stderr
    assert "doc.md: 1 piece(s) kept in the source language" in first.stderr
    assert "SECOND paragraph the model cannot do." in (out / "doc.md").read_text()
    asked = backend.count

    # The same model would answer the same: an unchanged run asks nothing.
    again = invoke(src, "--to", "zh", "--out", out, "--json")
    assert again.code == 0 and backend.count == asked
    assert json.loads(again.stdout)["kept_in_source"] == 1

    # --check: current, with the kept piece counted; --strict makes it fail.
    check = invoke(src, "--to", "zh", "--out", out, "--check")
    assert check.code == 0, check.stderr
    assert "doc.md: 1 piece(s) kept in the source language" in check.stderr
    assert "1 current, 0 missing or stale; 1 piece(s) still in the source language" in (
        check.stderr
    )
    assert invoke(src, "--to", "zh", "--out", out, "--check", "--strict").code == 1

    # --retry-kept asks again for exactly that piece (and the model now does it).
    backend.reply = to_zh
    backend.requests.clear()
    retried = invoke(src, "--to", "zh", "--out", out, "--retry-kept")
    assert retried.code == 0, retried.stderr
    assert [r.prompt.text for r in backend.requests] == ["SECOND paragraph the model cannot do."]
    assert "SECOND" not in (out / "doc.md").read_text()
    assert invoke(src, "--to", "zh", "--out", out, "--check").stderr.endswith(
        "1 current, 0 missing or stale\n"
    )


# --------------------------------------------------------------- a model that cannot


def test_a_model_that_never_writes_the_target_script_stops_early(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    backend = use_scripted(monkeypatch, ScriptedBackend(shout))
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(30):
        (src / f"page{i:02}.md").write_text(f"Some text about the page number {i}.\n")
    outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 1
    line = one_error(outcome.stderr)
    assert re.search(
        r"stopped after the first 8 chunks: 8 of them failed the same check "
        r"\(no Simplified Chinese script in the answer\)\. The model answers without any "
        r"Simplified Chinese script: is it able to write Simplified Chinese\?",
        line,
    ), line
    # Each chunk costs its retry ladder; the other 22 pages cost nothing.
    assert backend.count <= 8 * 2 * 2
    # Pages finished before the stop may be written (whole, their text kept in
    # English); the rest are not started.
    written = outputs(out)
    assert len(written) < 8
    for name, data in written.items():
        assert data == (src / name).read_bytes()
