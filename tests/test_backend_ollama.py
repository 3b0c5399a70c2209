"""Contract tests for the Ollama backend against a fake server that replays the
documented wire format (tests/ollama_wire.py), plus a live test that runs only
when OLLAMA_TEST_HOST is set."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ollama_wire import FakeModel, FakeOllama, free_port, serve_fake_ollama
from pytest_httpserver import HTTPServer
from werkzeug import Request as WsgiRequest
from werkzeug import Response

from pipeline.backends.base import (
    BackendSettings,
    Request,
    estimate_tokens,
)
from pipeline.backends.ollama import OllamaBackend, probe, resolve_host
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

MODEL = "qwen2.5:7b"
SECRET = "The launch code is 0000 and the vault is behind the painting."


class RecordingEvents:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.transfers: list[tuple[str, int, int]] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def transfer(self, key: str, completed: int, total: int) -> None:
        self.transfers.append((key, completed, total))


def make_backend(
    host: str,
    *,
    events: RecordingEvents | None = None,
    context_tokens: int = 1500,
    read_timeout: float = 10.0,
    retries: int = 2,
    allow_remote: bool = False,
    concurrency: int = 0,
    model: str = "",
    **options: Any,
) -> OllamaBackend:
    settings = BackendSettings(
        model=model,
        context_tokens=context_tokens,
        connect_timeout=2.0,
        read_timeout=read_timeout,
        request_retries=retries,
        allow_remote=allow_remote,
        concurrency=concurrency,
        options={
            "host": host,
            "model": MODEL,
            "keep_alive": "30m",
            "num_ctx": 0,
            "pull": False,
            **options,
        },
    )
    backend = OllamaBackend(settings, events or RecordingEvents())
    backend.sleep = lambda seconds: None
    return backend


def make_request(
    text: str = "Run ⟦1⟧ to install the **latest** version.",
    *,
    estimated: int | None = None,
    max_tokens: int = 300,
) -> Request:
    prompt = Prompt(
        system="Translate the user's text from English to Simplified Chinese.",
        text=text,
        source_name="English",
        target_name="Simplified Chinese",
    )
    if estimated is None:
        estimated = sum(estimate_tokens(m["content"]) for m in prompt.messages())
    return Request(
        prompt=prompt,
        max_tokens=max_tokens,
        temperature=0.2,
        top_p=0.9,
        seed=42,
        estimated_prompt_tokens=estimated,
    )


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeOllama:
    return FakeOllama(httpserver, translate=lambda text: f"ZH[{text}]")


@pytest.fixture
def threaded_fake() -> Iterator[FakeOllama]:
    with serve_fake_ollama(translate=lambda text: f"ZH[{text}]") as fake:
        yield fake


# -- host resolution ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080"),
        ("[::]", "http://127.0.0.1:11434"),
        ("::", "http://127.0.0.1:11434"),
        ("[::]:11500", "http://127.0.0.1:11500"),
        (":5000", "http://127.0.0.1:5000"),
        ("gpubox", "http://gpubox:11434"),
        ("gpubox:11500", "http://gpubox:11500"),
        ("http://gpubox:11500", "http://gpubox:11500"),
        ("http://gpubox", "http://gpubox:80"),
        ("https://gpubox", "https://gpubox:443"),
        ("http://127.0.0.1:11434/", "http://127.0.0.1:11434"),
        ("https://proxy.example/ollama/", "https://proxy.example:443/ollama"),
        ("[::1]", "http://[::1]:11434"),
        ("::1", "http://[::1]:11434"),
        ("  localhost:11434 ", "http://localhost:11434"),
    ],
)
def test_ollama_host_forms(given: str, expected: str) -> None:
    assert resolve_host(None, "", {"OLLAMA_HOST": given}) == expected


def test_host_precedence_cli_then_config_then_env() -> None:
    env = {"OLLAMA_HOST": "envhost"}
    assert resolve_host("clihost", "confhost", env) == "http://clihost:11434"
    assert resolve_host(None, "confhost", env) == "http://confhost:11434"
    assert resolve_host("", "", env) == "http://envhost:11434"
    assert resolve_host(None, "", {}) == "http://127.0.0.1:11434"


@pytest.mark.parametrize("bad", ["ftp://gpubox", "gpubox:port", "gpubox:99999"])
def test_bad_host_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="Ollama host"):
        resolve_host(bad, "", {})


def test_backend_reads_ollama_host_from_environment(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake.url.removeprefix("http://"))
    backend = make_backend("")
    assert backend.host == fake.url
    assert backend.list_models() == [MODEL]


# -- start-up -------------------------------------------------------------------


def test_start_checks_model_sizes_context_and_warms_up_once(fake: FakeOllama) -> None:
    backend = make_backend(fake.url, context_tokens=1500)
    info = backend.start()
    assert (info.backend, info.model, info.context_size, info.concurrency) == (
        "ollama",
        MODEL,
        1536,  # 1500 rounded up to a multiple of 256
        1,
    )
    assert info.warmup_seconds >= 0
    assert fake.paths() == ["/api/show", "/api/chat"]
    assert fake.bodies("/api/show") == [{"model": MODEL}]
    (warmup,) = fake.warmups()
    assert warmup["messages"] == []
    assert warmup["options"] == {"num_ctx": 1536}
    assert warmup["keep_alive"] == "30m"
    assert "think" not in warmup

    for text in ("First paragraph.", "Second paragraph."):
        backend.translate(make_request(text))
    assert len(fake.warmups()) == 1
    assert fake.paths()[:2] == ["/api/show", "/api/chat"]
    assert fake.bodies("/api/chat")[0] == warmup  # the warm-up came before any chunk
    backend.close()


def test_every_request_carries_the_same_options(fake: FakeOllama) -> None:
    backend = make_backend(fake.url, context_tokens=3000)
    backend.start()
    request = make_request("Hello **world**.", max_tokens=123)
    result = backend.translate(request)
    backend.translate(make_request("Another one.", max_tokens=77))

    assert result.text == "ZH[Hello **world**.]"
    assert result.finish == "stop"
    assert result.output_tokens > 0 and result.prompt_tokens > 0
    bodies = fake.bodies("/api/chat")
    assert {b["options"]["num_ctx"] for b in bodies} == {3072}
    assert {b["keep_alive"] for b in bodies} == {"30m"}
    assert all("think" not in b for b in bodies)
    first, second = fake.chats()
    assert first["stream"] is True
    assert first["model"] == MODEL
    assert first["messages"] == request.prompt.messages()
    assert first["options"] == {
        "num_ctx": 3072,
        "num_predict": 123,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 42,
    }
    assert second["options"]["num_predict"] == 77


def test_thinking_model_is_told_not_to_think(httpserver: HTTPServer) -> None:
    fake = FakeOllama(
        httpserver,
        models=[FakeModel(MODEL, capabilities=("completion", "thinking"))],
        translate=lambda text: f"ZH[{text}]",
    )
    backend = make_backend(fake.url)
    backend.start()
    result = backend.translate(make_request("Think less."))
    assert result.text == "ZH[Think less.]"
    assert [b["think"] for b in fake.bodies("/api/chat")] == [False, False]


def test_leaked_think_block_is_stripped(fake: FakeOllama) -> None:
    fake.leak_think = True
    backend = make_backend(fake.url)
    backend.start()
    result = backend.translate(make_request("Plain model, leaky server."))
    assert result.text == "ZH[Plain model, leaky server.]"
    assert all("think" not in b for b in fake.bodies("/api/chat"))


def test_preamble_is_passed_on_for_the_cleaner(fake: FakeOllama) -> None:
    # Stripping chatter is clean.py's job; the backend must not hide it or fail.
    fake.preamble = "Here is the translation:\n\n"
    backend = make_backend(fake.url)
    backend.start()
    assert backend.translate(make_request("Hi.")).text == "Here is the translation:\n\nZH[Hi.]"


@pytest.mark.parametrize(
    ("context_tokens", "num_ctx_option", "context_length", "expected"),
    [
        (1, 0, 32768, 256),
        (256, 0, 32768, 256),
        (257, 0, 32768, 512),
        (3000, 0, 2048, 2048),  # capped at the model's context_length
        (3000, 8192, 32768, 8192),  # explicit ollama.num_ctx wins
        (3000, 65536, 32768, 32768),  # ...but is capped too
        (40000, 0, None, 40192),  # no context_length reported: not capped
    ],
)
def test_num_ctx_choice(
    httpserver: HTTPServer,
    context_tokens: int,
    num_ctx_option: int,
    context_length: int | None,
    expected: int,
) -> None:
    fake = FakeOllama(httpserver, models=[FakeModel(MODEL, context_length=context_length)])
    events = RecordingEvents()
    backend = make_backend(
        fake.url, events=events, context_tokens=context_tokens, num_ctx=num_ctx_option
    )
    assert backend.start().context_size == expected
    backend.translate(make_request("x"))
    assert {b["options"]["num_ctx"] for b in fake.bodies("/api/chat")} == {expected}
    told = any("less than the" in m for m in events.messages)
    assert told == (expected < context_tokens)


def test_model_from_settings_wins_over_config(httpserver: HTTPServer) -> None:
    fake = FakeOllama(httpserver, models=[MODEL, "gemma3:4b"])
    backend = make_backend(fake.url, model="gemma3:4b")
    assert backend.start().model == "gemma3:4b"
    assert {b["model"] for b in fake.bodies("/api/chat")} == {"gemma3:4b"}


def test_concurrency_in_start_info(fake: FakeOllama) -> None:
    assert make_backend(fake.url, concurrency=4).start().concurrency == 4


def test_unknown_model_names_the_fix(fake: FakeOllama) -> None:
    backend = make_backend(fake.url, model="nope:1b")
    with pytest.raises(ModelNotFound) as caught:
        backend.start()
    assert str(caught.value) == (
        f"Ollama at {fake.url} has no model nope:1b: run `ollama pull nope:1b`, or pass --pull."
    )
    assert caught.value.exit_code == 3
    assert fake.paths() == ["/api/show"]


def test_model_that_does_not_load(fake: FakeOllama) -> None:
    fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_json(
        {"error": "model requires more system memory (5.5 GiB) than is available (3.1 GiB)"},
        status=500,
    )
    with pytest.raises(BackendUnavailable) as caught:
        make_backend(fake.url).start()
    assert str(caught.value) == (
        f"Ollama at {fake.url} refused {MODEL} (HTTP 500: model requires more system "
        "memory (5.5 GiB) than is available (3.1 GiB))."
    )


def test_embedding_model_is_refused(httpserver: HTTPServer) -> None:
    fake = FakeOllama(httpserver, models=[FakeModel("nomic-embed-text", ("embedding",))])
    backend = make_backend(fake.url, model="nomic-embed-text")
    with pytest.raises(BackendUnavailable, match="cannot generate text"):
        backend.start()


def test_pull_shows_progress_per_layer(fake: FakeOllama) -> None:
    events = RecordingEvents()
    backend = make_backend(fake.url, events=events, model="llama3.2:3b", pull=True)
    info = backend.start()
    assert info.model == "llama3.2:3b"
    assert fake.bodies("/api/pull") == [{"model": "llama3.2:3b", "insecure": False, "stream": True}]
    assert fake.paths() == ["/api/show", "/api/pull", "/api/show", "/api/chat"]
    by_layer: dict[str, list[tuple[int, int]]] = {}
    for key, completed, total in events.transfers:
        by_layer.setdefault(key, []).append((completed, total))
    assert set(by_layer) == {digest for digest, _ in fake.pull_layers}
    for digest, size in fake.pull_layers:
        assert by_layer[digest][-1] == (size, size)
    assert "pulling manifest" in events.messages
    assert events.messages[-1] == "success"
    assert not any(m.startswith("pulling ") and m != "pulling manifest" for m in events.messages)


def test_pull_error_inside_the_stream_is_reported(fake: FakeOllama) -> None:
    fake.pull_error = "max retries exceeded: connection reset by peer"
    backend = make_backend(fake.url, model="llama3.2:3b", pull=True)
    with pytest.raises(BackendUnavailable) as caught:
        backend.start()
    assert "Ollama could not pull llama3.2:3b" in str(caught.value)
    assert "max retries exceeded: connection reset by peer" in str(caught.value)
    assert "/api/chat" not in fake.paths()


def test_pull_of_a_name_the_registry_lacks(httpserver: HTTPServer) -> None:
    fake = FakeOllama(httpserver, pullable=[])
    backend = make_backend(fake.url, model="no-such-model", pull=True)
    with pytest.raises(BackendUnavailable, match="file does not exist"):
        backend.start()


def test_server_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    backend = make_backend(url)
    expected = (
        f"Ollama is not answering at {url}. "
        "Start it with `ollama serve`, or pass --backend embedded."
    )
    with pytest.raises(BackendUnavailable) as caught:
        backend.start()
    assert str(caught.value) == expected
    assert caught.value.exit_code == 3
    with pytest.raises(BackendUnavailable, match="not answering"):
        backend.list_models()
    assert probe(url) is False


def test_server_gone_mid_run() -> None:
    with serve_fake_ollama() as fake:
        backend = make_backend(fake.url, retries=2)
        slept: list[float] = []
        backend.sleep = slept.append
        backend.start()
        fake.server.stop()
        with pytest.raises(BackendUnavailable, match="stopped answering"):
            backend.translate(make_request())
        assert len(slept) == 2


@pytest.mark.parametrize("host", ["http://192.0.2.10:11434", "gpubox.example"])
def test_remote_host_is_refused_before_any_request(host: str) -> None:
    backend = make_backend(host)
    with pytest.raises(RemoteRefused, match="--allow-remote"):
        backend.start()
    with pytest.raises(RemoteRefused):
        backend.list_models()


def test_loopback_names_need_no_permission(fake: FakeOllama) -> None:
    port = fake.url.rsplit(":", 1)[1]
    backend = make_backend(f"localhost:{port}")
    assert backend.host == f"http://localhost:{port}"
    assert backend.start().model == MODEL


def test_list_models(httpserver: HTTPServer) -> None:
    fake = FakeOllama(httpserver, models=["qwen2.5:7b", "gemma3:4b"])
    assert make_backend(fake.url).list_models() == ["gemma3:4b", "qwen2.5:7b"]
    assert fake.paths() == ["/api/tags"]


def test_probe(fake: FakeOllama) -> None:
    assert probe(fake.url) is True
    assert probe(fake.url.removeprefix("http://")) is True
    assert probe("http://[not-an-address") is False


def test_probe_ignores_servers_that_are_not_ollama(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/version").respond_with_data("<html>hi</html>")
    assert probe(httpserver.url_for("/")) is False


# -- translation failures -------------------------------------------------------


def test_busy_server_is_retried(fake: FakeOllama) -> None:
    backend = make_backend(fake.url, retries=3)
    slept: list[float] = []
    backend.sleep = slept.append
    backend.start()
    fake.busy = 2
    result = backend.translate(make_request("Busy?"))
    assert result.text == "ZH[Busy?]"
    assert len(fake.chats()) == 3
    assert len(slept) == 2 and slept[0] < slept[1]  # backoff grows


def test_busy_server_gives_up_after_the_retries(fake: FakeOllama) -> None:
    backend = make_backend(fake.url, retries=2)
    backend.start()
    fake.busy = 10
    with pytest.raises(TransientError, match="HTTP 503"):
        backend.translate(make_request())
    assert len(fake.chats()) == 3


def test_error_line_inside_the_stream_is_retried(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.error_mid_stream = 1
    assert backend.translate(make_request("Again.")).text == "ZH[Again.]"
    assert len(fake.chats()) == 2


def test_dropped_connection_is_retried(threaded_fake: FakeOllama) -> None:
    backend = make_backend(threaded_fake.url)
    backend.start()
    threaded_fake.drop_mid_stream = 1
    text = "A sentence of several words, so the stream has pieces."
    assert backend.translate(make_request(text)).text == f"ZH[{text}]"
    assert len(threaded_fake.chats()) == 2


def test_read_timeout_is_retried(threaded_fake: FakeOllama) -> None:
    # A gate, not a clock: the first answer never comes until the test is done,
    # and the read timeout is generous for the healthy retry on a busy machine.
    backend = make_backend(threaded_fake.url, read_timeout=2.0)
    backend.start()
    gate = threading.Event()
    hung_calls: list[str] = []

    def hung(request: WsgiRequest) -> Response:
        hung_calls.append(request.path)
        gate.wait(30)
        return Response("{}", mimetype="application/x-ndjson")

    threaded_fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_handler(
        hung
    )
    try:
        assert backend.translate(make_request("Slow.")).text == "ZH[Slow.]"
        assert not gate.is_set()  # answered while the first request still hung
        assert hung_calls == ["/api/chat"] and len(threaded_fake.chats()) == 1
    finally:
        gate.set()


def test_stream_without_final_event_is_truncated(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.end_without_done = 1
    with pytest.raises(OutputTruncated, match="final event"):
        backend.translate(make_request())
    assert len(fake.chats()) == 1


def test_length_limit_marks_the_result(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.length_cut = 1
    result = backend.translate(make_request("Long answer here."))
    assert result.finish == "length"
    assert len(result.text) < len("ZH[Long answer here.]")


def test_cut_prompt_is_a_context_overflow(fake: FakeOllama) -> None:
    # An exact count (prompt_eval_cached_count beside it) far below the estimate.
    fake.reporting = "full"
    backend = make_backend(fake.url)
    backend.start()
    request = make_request(" ".join([SECRET] * 10))
    assert request.estimated_prompt_tokens > 150
    backend.translate(request)  # read in full: no complaint
    fake.cut_prompt_to = 50
    with pytest.raises(ContextOverflow) as caught:
        backend.translate(request)
    message = str(caught.value)
    assert f"read 50 prompt tokens of about {request.estimated_prompt_tokens}" in message
    assert SECRET[:20] not in message
    assert len(fake.chats()) == 2  # not retried: the orchestrator splits the chunk


@pytest.mark.parametrize(
    ("seen", "estimated", "overflow"),
    [(119, 200, True), (120, 200, False), (10, 64, False), (38, 65, True)],
)
def test_prompt_cut_rule(fake: FakeOllama, seen: int, estimated: int, overflow: bool) -> None:
    fake.reporting = "full"
    backend = make_backend(fake.url)
    backend.start()
    fake.cut_prompt_to = seen
    request = make_request("word " * 100, estimated=estimated)
    if overflow:
        with pytest.raises(ContextOverflow):
            backend.translate(request)
    else:
        assert backend.translate(request).prompt_tokens == seen


def test_prompt_longer_than_num_ctx_is_caught(fake: FakeOllama) -> None:
    # The fake cuts like the real server: at num_ctx, silently, with HTTP 200.
    backend = make_backend(fake.url, context_tokens=256)
    backend.start()
    with pytest.raises(ContextOverflow, match="num_ctx 256"):
        backend.translate(make_request("lorem ipsum " * 300))


def test_cut_prompt_is_caught_even_when_the_estimate_was_low(fake: FakeOllama) -> None:
    # Scripts the estimate undercounts: the server saw more than we guessed and
    # cut it to exactly num_ctx, which the 60 % rule alone would miss.
    backend = make_backend(fake.url, context_tokens=256)
    backend.start()
    with pytest.raises(ContextOverflow, match="filled the whole context"):
        backend.translate(make_request("lorem ipsum " * 300, estimated=100))
    # A count just under num_ctx is no cut by itself, as long as the answer fits
    # beside it (a longer answer would have needed a cut or a context shift).
    fake.cut_prompt_to = 255
    fake.translate = lambda text: "好"
    assert backend.translate(make_request("lorem ipsum " * 300, estimated=100)).finish == "stop"


def test_missing_prompt_eval_count_skips_the_check(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    lines = [
        {"model": MODEL, "message": {"role": "assistant", "content": "好"}, "done": False},
        {"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": True},
    ]
    fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        "".join(json.dumps(line) + "\n" for line in lines), content_type="application/x-ndjson"
    )
    result = backend.translate(make_request(estimated=500))
    assert result.text == "好"
    assert result.prompt_tokens == 500


def test_model_removed_mid_run(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.remove_model(MODEL)
    with pytest.raises(ModelNotFound, match="ollama pull"):
        backend.translate(make_request())


def test_other_http_errors_fail_the_request_without_document_text(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_json(
        {"error": "invalid options: num_gpu"}, status=400
    )
    with pytest.raises(RequestFailed) as caught:
        backend.translate(make_request(SECRET))
    assert not isinstance(caught.value, TransientError)
    assert "HTTP 400: invalid options: num_gpu" in str(caught.value)
    assert SECRET not in str(caught.value)
    chat_calls = [r for r, _ in fake.server.log if r.path == "/api/chat"]
    assert len(chat_calls) == 2  # the warm-up and one attempt: a 400 is not retried


def test_prompt_refused_as_too_long_is_a_context_overflow(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_json(
        {"error": "the input length exceeds the context length"}, status=400
    )
    with pytest.raises(ContextOverflow, match="too long"):
        backend.translate(make_request())


def test_garbled_stream_is_retried(fake: FakeOllama) -> None:
    backend = make_backend(fake.url)
    backend.start()
    fake.server.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
        '{"model": "qwen2.5:7b", "message": {"role": "assistant", "content": "x"}, "do',
        content_type="application/x-ndjson",
    )
    assert backend.translate(make_request("Whole.")).text == "ZH[Whole.]"


def test_translate_from_many_threads(threaded_fake: FakeOllama) -> None:
    backend = make_backend(threaded_fake.url, concurrency=4)
    backend.start()
    texts = [f"Paragraph number {i} with some words." for i in range(12)]
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = backend.translate(make_request(texts[i])).text
        except BaseException as exc:  # re-raised below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    assert results == {i: f"ZH[{text}]" for i, text in enumerate(texts)}
    assert {b["options"]["num_ctx"] for b in threaded_fake.bodies("/api/chat")} == {1536}


def test_translate_before_start_is_a_bug(fake: FakeOllama) -> None:
    with pytest.raises(RuntimeError, match="start"):
        make_backend(fake.url).translate(make_request())


def test_construction_does_no_io(fake: FakeOllama) -> None:
    make_backend(fake.url)
    assert fake.paths() == []


# -- live -----------------------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("OLLAMA_TEST_HOST"), reason="OLLAMA_TEST_HOST is not set")
def test_live_ollama() -> None:
    host = os.environ["OLLAMA_TEST_HOST"]
    backend = make_backend(host, allow_remote=True, read_timeout=300.0)
    models = backend.list_models()
    model = os.environ.get("OLLAMA_TEST_MODEL") or (models[0] if models else "")
    if not model:
        pytest.skip(f"no model at {host}; set OLLAMA_TEST_MODEL or pull one")
    backend = make_backend(host, allow_remote=True, read_timeout=300.0, model=model)
    info = backend.start()
    assert info.context_size >= 256
    result = backend.translate(make_request("Good morning.", max_tokens=64))
    assert result.text.strip()
    assert "<think>" not in result.text
    assert result.prompt_tokens > 0
    backend.close()
