"""The OpenAI backend against a real server: ``python -m llama_cpp.server`` with
SmolLM2-135M-Instruct. One request at a time (that server serialises requests, and a
new request interrupts a streaming one)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from llama_server import MODEL_ALIAS, N_CTX, free_port, llama_server

from pipeline.backends.base import BackendSettings, Request
from pipeline.backends.openai import OpenAIBackend
from pipeline.errors import BackendUnavailable, ContextOverflow, ModelNotFound
from pipeline.prompts import Prompt

pytestmark = pytest.mark.server

__all__ = ["llama_server"]  # the fixture is used by name below


class Events:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def transfer(self, key: str, completed: int, total: int) -> None:
        pass


def backend(base_url: str, events: Events | None = None, **options: Any) -> OpenAIBackend:
    model = options.pop("model", MODEL_ALIAS)
    settings = BackendSettings(
        model=model,
        connect_timeout=2.0,
        read_timeout=60.0,
        request_retries=0,
        options={"base_url": base_url, "stream": True, "context_size": N_CTX, **options},
    )
    return OpenAIBackend(settings, events or Events())


def request(text: str, max_tokens: int = 48) -> Request:
    prompt = Prompt(
        system="You are a translator. Translate the user's text from English to French. "
        "Reply with the translation only.",
        text=text,
        source_name="English",
        target_name="French",
    )
    return Request(prompt=prompt, max_tokens=max_tokens, temperature=0.2, top_p=0.9, seed=42)


def test_start_falls_back_to_the_configured_context(llama_server: str) -> None:
    # llama_cpp.server (unlike llama.cpp's C++ llama-server) has no /props, no
    # max_model_len and no LM Studio API: the context comes from openai.context_size.
    root = llama_server.removesuffix("/v1")
    with httpx.Client(trust_env=False) as client:
        assert client.get(f"{root}/props").status_code == 404
        entry = client.get(f"{llama_server}/models").json()["data"][0]
    assert entry["id"] == MODEL_ALIAS
    assert "max_model_len" not in entry

    events = Events()
    b = backend(llama_server, events, context_size=N_CTX)
    try:
        info = b.start()
    finally:
        b.close()
    assert (info.backend, info.model, info.context_size, info.concurrency) == (
        "openai",
        MODEL_ALIAS,
        N_CTX,
        1,
    )
    assert any("does not report its context size" in m for m in events.messages)


@pytest.mark.parametrize("stream", [True, False])
def test_translate_returns_text_finish_and_counts(llama_server: str, stream: bool) -> None:
    b = backend(llama_server, stream=stream, model="")
    try:
        assert b.start().model == MODEL_ALIAS
        result = b.translate(request("The cat sleeps on the mat."))
    finally:
        b.close()
    assert result.text.strip()
    assert result.finish in ("stop", "length")
    assert result.prompt_tokens > 0
    assert result.output_tokens > 0
    assert result.seconds > 0


def test_max_tokens_bound_gives_finish_length(llama_server: str) -> None:
    b = backend(llama_server, stream=False)
    try:
        b.start()
        result = b.translate(request("Write a long story about a cat.", max_tokens=3))
    finally:
        b.close()
    assert result.finish == "length"
    assert result.output_tokens == 3


def test_overflow_is_a_context_overflow(llama_server: str) -> None:
    # Non-streamed, this server answers HTTP 400 context_length_exceeded. (Streamed,
    # it sends an empty 200 stream, which the backend reports as OutputTruncated.)
    b = backend(llama_server, stream=False)
    try:
        b.start()
        with pytest.raises(ContextOverflow):
            b.translate(request("word " * (N_CTX + 200)))
    finally:
        b.close()


def test_wrong_model_id_lists_the_server_model(llama_server: str) -> None:
    b = backend(llama_server, model="qwen2.5:7b")
    with pytest.raises(ModelNotFound) as exc:
        b.start()
    b.close()
    assert MODEL_ALIAS in str(exc.value)
    assert "\n" not in str(exc.value)


def test_dead_port_is_unavailable() -> None:
    b = backend(f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(BackendUnavailable, match="No OpenAI-compatible server answers"):
        b.start()
    b.close()
