"""Ollama's prompt cache and silent prompt cut, under each way Ollama has
reported ``prompt_eval_count`` (tests/ollama_wire.py ``REPORTING``), through the
CLI: a cached prefix is never taken for a cut, and a real cut is always caught.

The fake counts tokens with the bundled Gemma tokenizer and caches prompt
prefixes the way Ollama's runner does, so these numbers are not the
implementation's own estimate played back to it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.backends.base import BackendSettings, NullEvents, Request
from pipeline.backends.ollama import OllamaBackend
from pipeline.backends.policy import PromptCount, estimate_prompt_tokens, prompt_cut
from pipeline.errors import ContextOverflow
from pipeline.prompts import Prompt, examples_for
from pipeline.testing import to_zh
from tests.conftest import data_path
from tests.ollama_wire import REPORTING, FakeOllama, serve_fake_ollama

STYLES = sorted(REPORTING)
PAGES = ("tips.md", "view-logs.md", "suspend-tidb-cluster.md", "destroy-a-tidb-cluster.md")
# About 1,000 tokens with no whitespace: the orchestrator cannot split it.
LONG_SENTENCE = "-".join(f"component{i}" for i in range(300)) + "."


def translate(fake: FakeOllama, *extra: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(
        cli.main,
        ["docs", "--to", "zh", "--backend", "ollama", "--host", fake.url, "--model", fake.model,
         "--json", *extra],
        catch_exceptions=False,
    )  # fmt: skip
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return result.exit_code, summary, result.stderr


@pytest.fixture
def pages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in PAGES:
        shutil.copy(data_path("tidb-operator-docs", "en", name), docs / name)
    # Small chunks: many requests, each repeating the system prompt and the
    # few-shot turns, so most of every prompt comes from the cache.
    (tmp_path / "pipeline.toml").write_text("[translate]\nchunk_tokens = 60\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return docs


@pytest.mark.parametrize("style", STYLES)
def test_a_cached_prefix_is_not_a_cut(pages: Path, style: str) -> None:
    with serve_fake_ollama(translate=to_zh, reporting=style) as fake:
        code, summary, stderr = translate(fake)
        prompts = list(fake.prompts)
    assert code == 0, stderr
    assert summary["kept_in_source"] == 0 and summary["failed_chunks"] == 0
    assert summary["requests"] == summary["chunks"] == len(prompts) >= 15
    # The cache served most of every prompt after the first, and nothing was cut.
    assert all(cached > 0 for _, cached, _ in prompts[1:])
    assert sum(cached for _, cached, _ in prompts) > sum(n for n, _, _ in prompts) / 2
    assert all(n == whole for n, _, whole in prompts)
    written = (pages.parent / "output" / "zh" / "tips.md").read_text(encoding="utf-8")
    source = data_path("tidb-operator-docs", "en", "tips.md").read_text(encoding="utf-8")
    assert written != source and any("\u4e00" <= ch <= "\u9fff" for ch in written)


@pytest.mark.parametrize("style", STYLES)
def test_a_real_cut_is_caught_and_kept_in_the_source_language(pages: Path, style: str) -> None:
    (pages / "long.md").write_text(f"# Long\n\n{LONG_SENTENCE}\n", encoding="utf-8")
    # A context too small for the sentence: Ollama cuts it silently (HTTP 200).
    (pages.parent / "pipeline.toml").write_text(
        "[translate]\nchunk_tokens = 60\n\n[ollama]\nnum_ctx = 512\n", encoding="utf-8"
    )
    with serve_fake_ollama(translate=to_zh, reporting=style) as fake:
        code, summary, stderr = translate(fake)
        cut = [(n, whole) for n, _, whole in fake.prompts if n < whole]
    assert cut, "the fake server cut no prompt: the test proves nothing"
    assert code == 1, stderr
    assert summary["kept_in_source"] == 1
    written = (pages.parent / "output" / "zh" / "long.md").read_text(encoding="utf-8")
    assert LONG_SENTENCE in written  # whole, in English: no half translation written
    assert summary["written"] == len(PAGES) + 1


# -- the rule itself, one request at a time --------------------------------------


def request_for(text: str) -> Request:
    prompt = Prompt(
        system="Translate the user's text from English to Simplified Chinese.",
        text=text,
        source_name="English",
        target_name="Simplified Chinese",
        examples=examples_for("en", "zh"),
    )
    return Request(prompt, 400, 0.2, 0.9, 42, estimate_prompt_tokens(prompt))


@pytest.mark.parametrize("style", STYLES)
def test_repeated_requests_never_misfire(style: str) -> None:
    """The same prefix on every request: the second one is mostly cached."""
    with serve_fake_ollama(translate=to_zh, reporting=style) as fake:
        backend = OllamaBackend(
            BackendSettings(context_tokens=2048, options={"host": fake.url, "model": fake.model}),
            NullEvents(),
        )
        backend.start()
        for text in ("Short one.", "Another short paragraph of text.", "Short one."):
            assert backend.translate(request_for(text)).text == to_zh(text)
        reported = [c.get("prompt_eval_count") for c in fake.final_events()]
        backend.close()
    if style == "omitted":
        assert reported[1:] == [None, None]  # the field is left out on a cache hit
    if style == "uncached":
        assert reported[1] is not None and reported[1] < 30  # only the new tokens


def test_a_cut_the_estimate_missed_is_caught_by_the_count() -> None:
    """Text that the estimate undercounts (Gemma needs ~2x the estimated tokens
    for these identifiers): the prompt looked like it fit, the server cut it."""
    text = " ".join(f"x{i:04d}y{i * 7:05d}" for i in range(250))
    request = request_for(text)
    assert request.estimated_prompt_tokens < 1024
    for style in ("plain", "uncached", "full"):
        with serve_fake_ollama(translate=to_zh, reporting=style) as fake:
            backend = OllamaBackend(
                BackendSettings(
                    context_tokens=1024, options={"host": fake.url, "model": fake.model}
                ),
                NullEvents(),
            )
            backend.start()
            backend.translate(request_for("Warm the cache."))
            with pytest.raises(ContextOverflow, match="num_ctx 1024"):
                backend.translate(request)
            assert any(n < whole for n, _, whole in fake.prompts), style
            backend.close()


@pytest.mark.parametrize(
    ("count", "estimate", "context", "cut"),
    [
        # exact counts: trusted, low or high
        (PromptCount(read=900, answer=100, exact=True), 1000, 2048, False),
        (PromptCount(read=500, answer=100, exact=True), 1000, 2048, True),
        (PromptCount(read=1900, answer=100, exact=True), 3000, 2048, False),
        # a count a cache can lower proves nothing when low...
        (PromptCount(read=40, answer=100, exact=False), 1000, 2048, False),
        # ...but reaching the context, or no room for the answer, is a cut
        (PromptCount(read=2048, answer=1, exact=False), 100, 2048, True),
        (PromptCount(read=2042, answer=30, exact=False), 100, 2048, True),
        (PromptCount(read=2000, answer=48, exact=False), 100, 2048, False),
        # no count (cached on 0.1.x): the estimate decides
        (PromptCount(read=None, answer=100, exact=False), 1000, 2048, False),
        (PromptCount(read=None, answer=100, exact=False), 2048, 2048, True),
        (PromptCount(read=40, answer=100, exact=False), 2100, 2048, True),
    ],
)
def test_prompt_cut_rule(count: PromptCount, estimate: int, context: int, cut: bool) -> None:
    assert (prompt_cut(count, estimate=estimate, context=context) is not None) is cut
