"""CLI behaviour with a scripted backend: layout, exit codes, messages, memory."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from pipeline import cli
from pipeline.testing import ScriptedBackend


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_translates_folder_mirroring_tree(scripted: ScriptedBackend, sample: Path) -> None:
    code, _, err = invoke("input", "--to", "zh")
    assert code == 0, err
    out = sample.parent / "output" / "zh"
    written = sorted(
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and ".translate-dir" not in p.parts
    )
    assert written == [
        "blog-post.md",
        "hugo-post.md",
        "notes/deep/guide.markdown",
        "notes/todo.txt",
    ]
    blog = (out / "blog-post.md").read_text()
    source = (sample / "blog-post.md").read_text()
    # Code fences, URLs and untranslated front-matter lines are byte-identical.
    for keep in (
        "```bash\ntranslate-dir notes/ --to zh --model qwen2.5:7b\n"
        'echo "done" # not translated\n```',
        "https://example.com/images/pipeline.png",
        "date: 2026-03-14\nslug: local-translation-pipeline\ntags: [llm, privacy, markdown]",
        "# Comments in front matter are kept as they are.",
        "<!-- TODO: add a section about glossaries -->",
        '[ref]: https://example.com/reference "Reference"',
        "`output/zh/`",
    ):
        assert keep in source and keep in blog
    # Image titles are text a reader sees: translated, their target kept.
    assert '"The pipeline"' in source and '"The pipeline"' not in blog
    assert "keep them on your own disk" not in blog.lower()
    assert "A small local model" not in blog
    assert "4 files" in err


def test_rerun_sends_no_requests(scripted: ScriptedBackend, sample: Path) -> None:
    assert invoke("input", "--to", "zh")[0] == 0
    first = len(scripted.requests)
    assert first > 0
    code, _, _ = invoke("input", "--to", "zh")
    assert code == 0
    assert len(scripted.requests) == first


def test_json_summary_is_one_object(scripted: ScriptedBackend, sample: Path) -> None:
    code, out, _ = invoke("input", "--to", "zh", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["files"] == 4 and data["written"] == 4 and data["failed"] == 0


def test_unknown_role_is_usage_error(scripted: ScriptedBackend, sample: Path) -> None:
    code, _, err = invoke("input", "--to", "zh", "--role", "nope")
    assert code == 2
    assert "unknown role 'nope'" in err
    assert "Traceback" not in err


def test_input_equal_to_output_refused(scripted: ScriptedBackend, sample: Path) -> None:
    code, _, err = invoke("input", "--to", "zh", "--out", "input")
    assert code == 2
    assert "is the input folder" in err


def test_missing_input_folder(scripted: ScriptedBackend, sample: Path) -> None:
    code, _, err = invoke("nowhere", "--to", "zh")
    assert code == 2
    assert "does not exist" in err


def test_check_accepts_a_hand_improved_translation_until_its_source_changes(
    scripted: ScriptedBackend, sample: Path
) -> None:
    assert invoke("input", "--to", "zh")[0] == 0
    out = sample.parent / "output" / "zh" / "notes" / "todo.txt"
    out.write_text(out.read_text(encoding="utf-8") + "\n人工修订。\n", encoding="utf-8")
    assert invoke("input", "--to", "zh", "--check")[0] == 0
    src = sample / "notes" / "todo.txt"
    src.write_text(src.read_text(encoding="utf-8") + "\nOne more line.\n", encoding="utf-8")
    code, _, err = invoke("input", "--to", "zh", "--check")
    assert code == 1 and "todo.txt" in err


def test_lock_file_is_ignored_by_git(scripted: ScriptedBackend, sample: Path) -> None:
    assert invoke("input", "--to", "zh")[0] == 0
    ignore = sample.parent / "output" / "zh" / ".translate-dir" / ".gitignore"
    assert ignore.read_text(encoding="utf-8") == "lock\n"
