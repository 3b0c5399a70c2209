"""translate-dir end to end against a real OpenAI-compatible server (issue 4's must-show)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from tests.llama_server import MODEL_ALIAS, free_port, missing_requirement

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement())),
]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def test_translates_sample_input_end_to_end(llama_server: str, sample: Path) -> None:
    result = CliRunner().invoke(
        cli.main,
        ["input", "--to", "zh", "--backend", "openai", "--base-url", llama_server, "--json"],
        catch_exceptions=False,
    )
    err = result.stderr
    assert result.exit_code == 0, err
    summary = json.loads(result.stdout)
    # The model really ran, and some of its answers passed every check: not a run
    # that kept everything in English and still exited 0.
    assert summary["backend"] == "openai" and summary["model"] == MODEL_ALIAS
    assert summary["requests"] > 0 and summary["output_tokens"] > 0, summary
    assert summary["misses"] > summary["kept_in_source"], summary
    assert summary["failed"] == 0 and summary["written"] == summary["files"] > 0, summary
    out = sample.parent / "output" / "zh"
    src = (sample / "blog-post.md").read_text(encoding="utf-8")
    dst = (out / "blog-post.md").read_text(encoding="utf-8")
    for keep in (
        "```bash\ntranslate-dir notes/ --to zh --model qwen2.5:7b\n"
        'echo "done" # not translated\n```',
        '```toml\n[translate]\nsource = "en"\nchunk_tokens = 400\n```',
        '(https://example.com/images/pipeline.png "The pipeline")',
        "date: 2026-03-14\nslug: local-translation-pipeline\ntags: [llm, privacy, markdown]",
        "  url: https://example.com/ada",
        "<!-- TODO: add a section about glossaries -->",
        '[ref]: https://example.com/reference "Reference"',
    ):
        assert keep in src and keep in dst, keep
    rels = ("blog-post.md", "hugo-post.md", "notes/todo.txt", "notes/deep/guide.markdown")
    written = [(out / rel).read_text(encoding="utf-8") for rel in rels]
    # The accepted answers are in the output: Chinese text where English was.
    assert any(re.search(r"[\u4e00-\u9fff]", text) for text in written)


def test_wrong_model_id_lists_models_exit_3(llama_server: str, sample: Path) -> None:
    code, err = invoke(
        "input", "--to", "zh", "--backend", "openai", "--base-url", llama_server, "--model", "gpt-9"
    )
    assert code == 3
    assert "gpt-9" in err and "smollm2" in err.lower()
    assert err.count("\n") == 1


def test_dead_server_exit_3(sample: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    code, err = invoke("input", "--to", "zh", "--backend", "openai", "--base-url", url)
    assert code == 3
    assert "Traceback" not in err and err.count("\n") == 1
