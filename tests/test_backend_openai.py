"""Unit tests of the OpenAI-compatible backend against httpx.MockTransport (and, for
concurrency, a real threading HTTP server on loopback)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from pipeline.backends import base
from pipeline.backends.base import BackendSettings, Request, Result
from pipeline.backends.openai import PRESETS, OpenAIBackend, normalise_base_url
from pipeline.backends.policy import strip_think
from pipeline.errors import (
    BackendUnavailable,
    ConfigError,
    ContextOverflow,
    ModelNotFound,
    OutputTruncated,
    RemoteRefused,
    RequestFailed,
    TransientError,
)
from pipeline.prompts import Prompt

BASE = "http://127.0.0.1:8080/v1"
DOC_TEXT = "The quarterly numbers of Project Nightingale are confidential."

Reply = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class Events:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def transfer(self, key: str, completed: int, total: int) -> None:
        pass


class Server:
    """A scripted OpenAI-compatible server: fixed GET answers, queued chat replies."""

    def __init__(
        self,
        models: list[dict[str, Any]] | None = None,
        gets: dict[str, Any] | None = None,
        replies: list[Reply] | None = None,
    ) -> None:
        self.models = models if models is not None else [{"id": "m"}]
        self.gets = gets or {}
        self.replies = list(replies or [])
        self.requests: list[httpx.Request] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": self.models})
        if request.method == "GET":
            if path in self.gets:
                return httpx.Response(200, json=self.gets[path])
            return httpx.Response(404, json={"detail": "Not Found"})
        assert path == "/v1/chat/completions", path
        with self.lock:
            reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            return reply(request)
        return reply

    def chats(self) -> list[dict[str, Any]]:
        return [
            json.loads(r.content) for r in self.requests if r.url.path == "/v1/chat/completions"
        ]


def answer(
    text: str = "Bonjour",
    finish: str | None = "stop",
    usage: dict[str, int] | None = None,
    message: dict[str, Any] | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {
        "choices": [{"index": 0, "message": message or {"content": text}, "finish_reason": finish}]
    }
    if usage is not None:
        body["usage"] = usage
    return httpx.Response(200, json=body)


def sse(*events: dict[str, Any] | str, done: bool = True) -> httpx.Response:
    lines = [": ping\n\n"]
    for event in events:
        payload = event if isinstance(event, str) else json.dumps(event)
        lines.append(f"data: {payload}\n\n")
    if done:
        lines.append("data: [DONE]\n\n")
    return httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content="".join(lines).encode()
    )


def delta(content: str | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = dict(extra)
    if content is not None:
        d["content"] = content
    return {"choices": [{"index": 0, "delta": d, "finish_reason": finish}]}


def error(status: int, message: str, code: str | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "type": "invalid_request_error", "code": code}}
    )


def make(
    server: Server | Callable[[httpx.Request], httpx.Response],
    *,
    model: str = "m",
    events: Events | None = None,
    concurrency: int = 0,
    retries: int = 3,
    allow_remote: bool = False,
    sleeps: list[float] | None = None,
    **options: Any,
) -> OpenAIBackend:
    opts: dict[str, Any] = {
        "base_url": BASE,
        "preset": "",
        "api_key_env": "TRANSLATE_DIR_API_KEY",
        "context_size": 4096,
        "stream": False,
        **options,
    }
    settings = BackendSettings(
        model=model,
        concurrency=concurrency,
        request_retries=retries,
        allow_remote=allow_remote,
        options=opts,
    )
    record = sleeps if sleeps is not None else []
    return OpenAIBackend(
        settings,
        events or Events(),
        transport=httpx.MockTransport(server),
        sleep=record.append,
    )


def req(text: str = DOC_TEXT, estimate: int = 0) -> Request:
    prompt = Prompt(
        system="Translate English to French.",
        text=text,
        source_name="English",
        target_name="French",
    )
    return Request(
        prompt=prompt,
        max_tokens=128,
        temperature=0.2,
        top_p=0.9,
        seed=42,
        estimated_prompt_tokens=estimate,
    )


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSLATE_DIR_API_KEY", raising=False)


# -- configuration -----------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_gives_its_documented_url(preset: str) -> None:
    backend = make(Server(), base_url="", preset=preset)
    assert backend.base_url == PRESETS[preset]


def test_presets_match_the_issue() -> None:
    assert PRESETS == {
        "lmstudio": "http://localhost:1234/v1",
        "llamafile": "http://127.0.0.1:8080/v1",
        "llama-server": "http://127.0.0.1:8080/v1",
        "vllm": "http://localhost:8000/v1",
    }


def test_base_url_wins_over_preset() -> None:
    backend = make(Server(), base_url="http://127.0.0.1:9999", preset="lmstudio")
    assert backend.base_url == "http://127.0.0.1:9999/v1"


def test_neither_base_url_nor_preset_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as exc:
        make(Server(), base_url="", preset="")
    assert str(exc.value) == (
        "--backend openai needs --base-url URL or --preset NAME "
        "(lmstudio, llamafile, llama-server, vllm)"
    )


def test_unknown_preset_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="lmstudio, llamafile, llama-server, vllm"):
        make(Server(), base_url="", preset="ollama")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://localhost:1234", "http://localhost:1234/v1"),
        ("http://localhost:1234/", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1/", "http://localhost:1234/v1"),
        ("localhost:8000", "http://localhost:8000/v1"),
        ("http://127.0.0.1:8080/v1/chat/completions", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/v1/models", "http://127.0.0.1:8080/v1"),
        ("https://gpu-box.lan/api/v1", "https://gpu-box.lan/api/v1"),
        ("http://gpu-box:8000/llm", "http://gpu-box:8000/llm/v1"),
    ],
)
def test_base_url_is_normalised(given: str, expected: str) -> None:
    assert normalise_base_url(given) == expected


def test_bad_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        normalise_base_url("ftp://host/v1")


def test_constructor_does_no_io() -> None:
    server = Server()
    make(server)
    assert server.requests == []


# -- API key -------------------------------------------------------------------


def test_no_authorization_header_without_a_key() -> None:
    server = Server(replies=[answer()])
    backend = make(server)
    backend.start()
    backend.translate(req())
    assert all("authorization" not in r.headers for r in server.requests)


def test_api_key_option_is_sent_as_bearer() -> None:
    server = Server(replies=[answer()])
    backend = make(server, api_key="sk-local")
    backend.start()
    backend.translate(req())
    assert {r.headers["authorization"] for r in server.requests} == {"Bearer sk-local"}


def test_api_key_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "from-env")
    server = Server()
    make(server, api_key_env="MY_LLM_KEY").start()
    assert server.requests[0].headers["authorization"] == "Bearer from-env"


def test_api_key_option_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATE_DIR_API_KEY", "from-env")
    server = Server()
    make(server, api_key="from-cli").start()
    assert server.requests[0].headers["authorization"] == "Bearer from-cli"


def test_empty_env_variable_sends_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRANSLATE_DIR_API_KEY", "")
    server = Server()
    make(server).start()
    assert "authorization" not in server.requests[0].headers


# -- start-up: models ------------------------------------------------------------


def test_start_validates_the_model() -> None:
    server = Server(models=[{"id": "a"}, {"id": "m"}])
    info = make(server).start()
    assert (info.backend, info.model) == ("openai", "m")
    assert server.requests[0].url == httpx.URL(f"{BASE}/models")


def test_wrong_model_lists_the_server_ids_on_one_line() -> None:
    server = Server(models=[{"id": "qwen2.5-7b-instruct"}, {"id": "llama-3.2-3b"}])
    with pytest.raises(ModelNotFound) as exc:
        make(server, model="qwen2.5:7b").start()
    message = str(exc.value)
    assert "\n" not in message
    assert "'qwen2.5:7b'" in message
    assert "qwen2.5-7b-instruct, llama-3.2-3b" in message
    assert exc.value.exit_code == 3


def test_long_model_lists_are_cut() -> None:
    server = Server(models=[{"id": f"model-{i}"} for i in range(30)])
    with pytest.raises(ModelNotFound, match=r"\(and 10 more\)"):
        make(server, model="x").start()


def test_no_model_and_exactly_one_on_the_server_uses_it() -> None:
    server = Server(models=[{"id": "only-one"}], replies=[answer()])
    backend = make(server, model="")
    assert backend.start().model == "only-one"
    backend.translate(req())
    assert server.chats()[0]["model"] == "only-one"


def test_no_model_and_several_on_the_server_asks_for_one() -> None:
    server = Server(models=[{"id": "a"}, {"id": "b"}])
    with pytest.raises(ModelNotFound, match="--model: a, b"):
        make(server, model="").start()


def test_server_without_models() -> None:
    with pytest.raises(ModelNotFound, match="lists no models"):
        make(Server(models=[])).start()


def test_list_models() -> None:
    server = Server(models=[{"id": "a"}, {"id": "b"}, {"object": "junk"}])
    assert make(server).list_models() == ["a", "b"]


def test_connection_refused_says_how_to_start_the_server() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(BackendUnavailable) as exc:
        make(refuse, base_url="", preset="lmstudio").start()
    message = str(exc.value)
    assert message.startswith("No OpenAI-compatible server answers at http://localhost:1234/v1.")
    assert "lms server start" in message
    assert message.endswith("or check --base-url.")
    assert exc.value.exit_code == 3


def test_unauthorised_start_asks_for_a_key() -> None:
    backend = make(lambda r: httpx.Response(401, json={"error": {"message": "Invalid API Key"}}))
    with pytest.raises(BackendUnavailable, match="--api-key"):
        backend.start()


def test_models_404_points_at_the_base_url() -> None:
    backend = make(lambda r: httpx.Response(404, text="not here"))
    with pytest.raises(BackendUnavailable, match="usually ends in /v1"):
        backend.start()


def test_not_an_openai_server() -> None:
    backend = make(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(BackendUnavailable, match="OpenAI model list"):
        backend.start()


# -- start-up: context size and concurrency ----------------------------------------


def llama_props(n_ctx: int, slots: int) -> dict[str, Any]:
    return {
        "default_generation_settings": {"n_ctx": n_ctx, "params": {"temperature": 0.8}},
        "total_slots": slots,
        "model_path": "/models/qwen.gguf",
        "chat_template": "",
    }


def test_llama_cpp_props_give_context_and_slots() -> None:
    server = Server(gets={"/props": llama_props(8192, 4)})
    info = make(server).start()
    assert (info.context_size, info.concurrency) == (8192, 4)
    props = next(r for r in server.requests if r.url.path == "/props")
    # Outside /v1, and naming the model for llama-server's router mode.
    assert str(props.url) == "http://127.0.0.1:8080/props?model=m"


def test_explicit_concurrency_beats_total_slots() -> None:
    server = Server(gets={"/props": llama_props(8192, 4)})
    assert make(server, concurrency=2).start().concurrency == 2


def test_router_placeholder_props_are_not_a_context() -> None:
    events = Events()
    server = Server(gets={"/props": llama_props(0, 1)})
    info = make(server, events=events, context_size=3000).start()
    assert info.context_size == 3000
    assert any("does not report its context size" in m for m in events.messages)


def test_llama_server_models_meta_n_ctx() -> None:
    server = Server(models=[{"id": "m", "meta": {"n_ctx": 16384, "n_ctx_train": 131072}}])
    assert make(server).start().context_size == 16384


def test_vllm_max_model_len() -> None:
    server = Server(models=[{"id": "Qwen/Qwen2.5-7B-Instruct", "max_model_len": 32768}])
    info = make(server, model="Qwen/Qwen2.5-7B-Instruct").start()
    assert (info.context_size, info.concurrency) == (32768, 1)


def test_lmstudio_v0_loaded_context_length() -> None:
    v0 = {
        "object": "list",
        "data": [
            {"id": "other", "state": "loaded", "loaded_context_length": 999},
            {
                "id": "m",
                "state": "loaded",
                "max_context_length": 131072,
                "loaded_context_length": 8192,
            },
        ],
    }
    info = make(Server(gets={"/api/v0/models": v0})).start()
    assert (info.context_size, info.concurrency) == (8192, 1)


def test_lmstudio_unknown_endpoint_answer_is_not_a_context() -> None:
    # LM Studio answers unknown paths such as /props with 200 and an error body.
    gets = {
        "/props": {"error": "Unexpected endpoint or method. (GET /props)"},
        "/api/v0/models": {"data": [{"id": "m", "loaded_context_length": 6000}]},
    }
    info = make(Server(gets=gets)).start()
    assert (info.context_size, info.concurrency) == (6000, 1)


def test_lmstudio_v0_not_loaded_trusts_the_config_capped_by_the_maximum() -> None:
    v0 = {"data": [{"id": "m", "state": "not-loaded", "max_context_length": 2048}]}
    assert make(Server(gets={"/api/v0/models": v0}), context_size=4096).start().context_size == (
        2048
    )
    v0 = {"data": [{"id": "m", "state": "not-loaded", "max_context_length": 131072}]}
    assert make(Server(gets={"/api/v0/models": v0}), context_size=4096).start().context_size == (
        4096
    )


def test_lmstudio_v1_loaded_instance() -> None:
    v1 = {
        "models": [
            {
                "key": "m",
                "max_context_length": 262144,
                "loaded_instances": [
                    {"id": "m", "config": {"context_length": 122880, "parallel": 4}}
                ],
            }
        ]
    }
    info = make(Server(gets={"/api/v1/models": v1})).start()
    assert (info.context_size, info.concurrency) == (122880, 4)


def test_context_falls_back_to_the_config() -> None:
    events = Events()
    info = make(Server(), events=events, context_size=2500).start()
    assert (info.context_size, info.concurrency) == (2500, 1)
    assert events.messages == [
        f"The server at {BASE} does not report its context size; "
        "assuming openai.context_size = 2500 tokens."
    ]


# -- translate: request and answer ---------------------------------------------------


def test_non_streamed_request_carries_every_sampling_field() -> None:
    server = Server(
        replies=[answer("Bonjour", usage={"prompt_tokens": 31, "completion_tokens": 4})]
    )
    backend = make(server)
    backend.start()
    result = backend.translate(req())
    assert (result.text, result.finish, result.prompt_tokens, result.output_tokens) == (
        "Bonjour",
        "stop",
        31,
        4,
    )
    assert result.seconds >= 0
    body = server.chats()[0]
    assert body == {
        "model": "m",
        "messages": req().prompt.messages(),
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 42,
        "max_tokens": 128,
        "stream": False,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_streamed_answer_with_usage() -> None:
    server = Server(
        replies=[
            sse(
                delta(role="assistant"),
                delta("Bon"),
                delta("jour"),
                delta(finish="stop"),
                {"choices": [], "usage": {"prompt_tokens": 40, "completion_tokens": 2}},
            )
        ]
    )
    backend = make(server, stream=True)
    backend.start()
    result = backend.translate(req())
    assert (result.text, result.finish, result.prompt_tokens, result.output_tokens) == (
        "Bonjour",
        "stop",
        40,
        2,
    )
    body = server.chats()[0]
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    for field in ("temperature", "top_p", "seed", "max_tokens"):
        assert field in body


def test_streamed_answer_without_usage_estimates_the_counts() -> None:
    server = Server(replies=[sse(delta("Bonjour le monde"), delta(finish="stop"))])
    backend = make(server, stream=True)
    backend.start()
    result = backend.translate(req(estimate=77))
    assert result.prompt_tokens == 77
    assert result.output_tokens == base.estimate_tokens("Bonjour le monde")


def test_stream_requested_but_json_answered() -> None:
    server = Server(replies=[answer("Salut", usage={"prompt_tokens": 9, "completion_tokens": 1})])
    backend = make(server, stream=True)
    backend.start()
    assert backend.translate(req()).text == "Salut"


@pytest.mark.parametrize("stream", [False, True])
def test_finish_reason_length(stream: bool) -> None:
    reply = sse(delta("Bonj"), delta(finish="length")) if stream else answer("Bonj", "length")
    backend = make(Server(replies=[reply]), stream=stream)
    backend.start()
    result = backend.translate(req())
    assert (result.text, result.finish) == ("Bonj", "length")


def test_stream_without_finish_or_done_is_truncated() -> None:
    backend = make(Server(replies=[sse(delta("Bonj"), done=False)]), stream=True)
    backend.start()
    with pytest.raises(OutputTruncated):
        backend.translate(req())


def test_done_without_finish_reason_is_truncated() -> None:
    # llama_cpp.server ends a stream that another request interrupted like this.
    backend = make(Server(replies=[sse(delta("Bonj"))]), stream=True)
    backend.start()
    with pytest.raises(OutputTruncated):
        backend.translate(req())


def test_reasoning_content_is_ignored_and_think_stripped() -> None:
    message = {"content": "<think>hmm, French…</think>\n\nBonjour", "reasoning_content": "x"}
    backend = make(Server(replies=[answer(message=message)]))
    backend.start()
    assert backend.translate(req()).text == "Bonjour"


def test_streamed_reasoning_content_is_ignored() -> None:
    server = Server(
        replies=[
            sse(
                delta(reasoning_content="Let me think"),
                delta("<think>still thinking</think>"),
                delta("Bonjour"),
                delta(finish="stop"),
            )
        ]
    )
    backend = make(server, stream=True)
    backend.start()
    assert backend.translate(req()).text == "Bonjour"


def test_null_content_is_an_empty_answer() -> None:
    backend = make(Server(replies=[answer(message={"content": None, "reasoning_content": "x"})]))
    backend.start()
    assert backend.translate(req()).text == ""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("<think>a</think>\n\nBonjour", "Bonjour"),
        ("  <think>\na\n</think>Bonjour", "Bonjour"),
        ("reasoning only</think>\nBonjour", "Bonjour"),
        ("<think>never closed", ""),
        ("Bonjour", "Bonjour"),
        ("  Bonjour\n", "  Bonjour\n"),
        ("Use <think> tags</think> here", "Use <think> tags</think> here"),
    ],
)
def test_strip_think(given: str, expected: str) -> None:
    assert strip_think(given) == expected


# -- translate: failures ----------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        error(
            400,
            "the request exceeds the available context size, try increasing it",
            "exceed_context_size_error",
        ),
        error(
            400,
            "This model's maximum context length is 2048 tokens. However, you requested 2524 "
            "tokens (2516 in the messages, 8 in the completion).",
            "context_length_exceeded",
        ),
        httpx.Response(
            400,
            json={
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens.",
                "type": "BadRequestError",
                "code": 400,
            },
        ),
    ],
    ids=["llama.cpp", "llama_cpp.server-openai", "vllm"],
)
def test_context_overflow(reply: httpx.Response) -> None:
    server = Server(replies=[reply])
    backend = make(server)
    backend.start()
    with pytest.raises(ContextOverflow):
        backend.translate(req())
    assert len(server.chats()) == 1


def test_overflow_inside_a_stream() -> None:
    server = Server(
        replies=[sse({"error": {"code": 400, "message": "x", "type": "exceed_context_size_error"}})]
    )
    backend = make(server, stream=True)
    backend.start()
    with pytest.raises(ContextOverflow):
        backend.translate(req())


def test_a_prompt_cut_by_the_server_is_an_overflow() -> None:
    # 200 OK, but the server read a fifth of the prompt: it truncated it.
    server = Server(replies=[answer(usage={"prompt_tokens": 80, "completion_tokens": 3})])
    backend = make(server)
    backend.start()
    with pytest.raises(ContextOverflow, match="cut the prompt"):
        backend.translate(req(estimate=400))


def test_busy_server_is_retried_with_backoff() -> None:
    sleeps: list[float] = []
    server = Server(replies=[error(429, "slow down"), error(503, "loading"), answer("Bonjour")])
    backend = make(server, sleeps=sleeps)
    backend.start()
    assert backend.translate(req()).text == "Bonjour"
    assert len(server.chats()) == 3
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0]


def test_retries_are_bounded() -> None:
    sleeps: list[float] = []
    server = Server(replies=[error(503, "busy")])
    backend = make(server, retries=2, sleeps=sleeps)
    backend.start()
    with pytest.raises(TransientError):
        backend.translate(req())
    assert len(server.chats()) == 3
    assert len(sleeps) == 2


def test_timeout_is_retried() -> None:
    server = Server(replies=[httpx.ReadTimeout("timed out"), answer("Bonjour")])
    backend = make(server)
    backend.start()
    assert backend.translate(req()).text == "Bonjour"
    assert len(server.chats()) == 2


def test_server_error_is_not_retried_and_hides_the_document() -> None:
    sleeps: list[float] = []
    server = Server(replies=[error(500, f"template failed near '{DOC_TEXT}'")])
    backend = make(server, sleeps=sleeps)
    backend.start()
    with pytest.raises(RequestFailed) as exc:
        backend.translate(req())
    assert type(exc.value) is RequestFailed
    assert len(server.chats()) == 1
    assert sleeps == []
    assert "HTTP 500" in str(exc.value)
    assert "Nightingale" not in str(exc.value)


def test_validation_error_never_echoes_the_input() -> None:
    detail = [
        {"type": "string_type", "loc": ["body", "messages", 1], "msg": "bad", "input": DOC_TEXT}
    ]
    server = Server(replies=[httpx.Response(422, json={"detail": detail})])
    backend = make(server)
    backend.start()
    with pytest.raises(RequestFailed) as exc:
        backend.translate(req())
    assert "body.messages.1: bad" in str(exc.value)
    assert "Nightingale" not in str(exc.value)


def test_server_gone_mid_run_is_unavailable() -> None:
    def gone(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    server = Server(replies=[gone])
    backend = make(server)
    backend.start()
    with pytest.raises(BackendUnavailable, match="No OpenAI-compatible server answers"):
        backend.translate(req())
    assert len(server.chats()) == 1


def test_enable_thinking_fallback() -> None:
    events = Events()
    server = Server(
        replies=[
            error(400, "Unrecognized request argument supplied: chat_template_kwargs"),
            answer("Un"),
            answer("Deux"),
        ]
    )
    backend = make(server, events=events)
    backend.start()
    assert backend.translate(req()).text == "Un"
    assert backend.translate(req()).text == "Deux"
    sent = ["chat_template_kwargs" in body for body in server.chats()]
    assert sent == [True, False, False]
    assert sum("chat_template_kwargs" in m for m in events.messages) == 1


def test_a_plain_400_is_not_mistaken_for_the_thinking_field() -> None:
    server = Server(replies=[error(400, "Failed to parse grammar")])
    backend = make(server)
    backend.start()
    with pytest.raises(RequestFailed, match="Failed to parse grammar"):
        backend.translate(req())
    assert len(server.chats()) == 1


# -- privacy guard -----------------------------------------------------------------


def test_remote_server_needs_allow_remote() -> None:
    server = Server()
    backend = make(server, base_url="http://gpu-box.lan:8000/v1")
    with pytest.raises(RemoteRefused, match="--allow-remote"):
        backend.start()
    with pytest.raises(RemoteRefused):
        backend.list_models()
    with pytest.raises(RemoteRefused):
        backend.translate(req())
    assert server.requests == []


def test_remote_server_with_allow_remote() -> None:
    server = Server(replies=[answer("Bonjour")])
    backend = make(server, base_url="http://gpu-box.lan:8000", allow_remote=True)
    backend.start()
    assert backend.translate(req()).text == "Bonjour"
    assert server.requests[0].url.host == "gpu-box.lan"


def test_loopback_server_ignores_proxy_variables() -> None:
    assert make(Server())._http().trust_env is False
    assert make(Server(), base_url="http://gpu-box.lan", allow_remote=True)._http().trust_env


# -- concurrency -------------------------------------------------------------------


N_IN_FLIGHT = 4


def test_requests_in_flight_at_once_with_mock_transport() -> None:
    barrier = threading.Barrier(N_IN_FLIGHT, timeout=10)

    def held(request: httpx.Request) -> httpx.Response:
        # Every request waits here until N are in flight: N concurrent or a
        # BrokenBarrierError.
        barrier.wait()
        return answer("ok")

    server = Server(gets={"/props": llama_props(4096, N_IN_FLIGHT)}, replies=[held])
    backend = make(server)
    info = backend.start()
    assert info.concurrency == N_IN_FLIGHT
    with ThreadPoolExecutor(info.concurrency) as pool:
        results = list(pool.map(lambda _: backend.translate(req()), range(N_IN_FLIGHT)))
    assert [r.text for r in results] == ["ok"] * N_IN_FLIGHT


@pytest.fixture
def threaded_server() -> Iterator[tuple[str, threading.Barrier]]:
    barrier = threading.Barrier(N_IN_FLIGHT, timeout=10)

    class Handler(BaseHTTPRequestHandler):
        def _json(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                self._json({"data": [{"id": "m"}]})
            elif self.path.startswith("/props"):
                self._json(llama_props(4096, N_IN_FLIGHT))
            else:
                self.send_error(404)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            barrier.wait()
            self._json(
                {
                    "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 1},
                }
            )

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", barrier
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_requests_in_flight_at_once_against_a_real_http_server(
    threaded_server: tuple[str, threading.Barrier],
) -> None:
    url, barrier = threaded_server
    settings = BackendSettings(
        model="m", read_timeout=20, options={"base_url": url, "stream": False}
    )
    backend = OpenAIBackend(settings, Events())
    try:
        info = backend.start()
        assert info.concurrency == N_IN_FLIGHT
        with ThreadPoolExecutor(info.concurrency) as pool:
            results: list[Result] = list(
                pool.map(lambda _: backend.translate(req()), range(N_IN_FLIGHT))
            )
    finally:
        backend.close()
    assert not barrier.broken
    assert [(r.text, r.prompt_tokens) for r in results] == [("ok", 5)] * N_IN_FLIGHT
