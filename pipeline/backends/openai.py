"""The OpenAI-compatible backend: LM Studio, llamafile, llama.cpp's llama-server, vLLM.

A thin ``httpx`` client for two endpoints, ``GET /v1/models`` (start-up) and
``POST /v1/chat/completions`` (one request per chunk, streamed or not), plus the
read-only side doors where each server reports its context size. Everything
that can go wrong maps to a domain error from ``pipeline.errors``; no message
carries document text.

A run sends its requests through ``atranslate`` (``httpx.AsyncClient``, every
request in flight on one event-loop thread); ``translate`` is the same request
through ``httpx.Client`` for callers without a loop. The two share the body,
the answer's parser (``_Reply``, fed line by line), the error mapping and the
retry policy: only the transport call differs.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import urlsplit

import httpx

from pipeline.backends.base import (
    AsyncClients,
    BackendSettings,
    Events,
    Finish,
    Request,
    Result,
    StartInfo,
    estimate_tokens,
    guard_remote,
    is_loopback,
    with_retries,
    with_retries_async,
)
from pipeline.backends.policy import (
    PromptCount,
    estimate_prompt_tokens,
    is_transient,
    prompt_cut,
    redact,
    strip_think,
)
from pipeline.errors import (
    BackendUnavailable,
    ConfigError,
    ContextOverflow,
    ModelNotFound,
    OutputTruncated,
    RequestFailed,
    TransientError,
)

PRESETS: dict[str, str] = {
    "lmstudio": "http://localhost:1234/v1",
    "llamafile": "http://127.0.0.1:8080/v1",
    "llama-server": "http://127.0.0.1:8080/v1",
    "vllm": "http://localhost:8000/v1",
}

# How to start each server, for the "nothing answers" message.
_START_HINTS: dict[str, str] = {
    "lmstudio": "`lms server start`, or the Developer tab of LM Studio",
    "llamafile": "`./MODEL.llamafile --server --nobrowser`",
    "llama-server": "`llama-server -m MODEL.gguf --port 8080`",
    "vllm": "`vllm serve MODEL`",
}
_GENERIC_HINT = "`llama-server -m MODEL.gguf`, `lms server start` or `vllm serve MODEL`"

# Lower-cased fragments of the HTTP 400 messages that mean "the prompt does not fit":
# llama.cpp, vLLM (and llama_cpp.server, which copies its wording), OpenAI, LM Studio.
_OVERFLOW_MARKERS = (
    "exceed_context_size_error",
    "exceeds the available context size",
    "maximum context length",
    "context_length_exceeded",
    "context length of only",
    "greater than the context length",
)
# Fragments of a 400/422 that rejects chat_template_kwargs as an unknown field.
_UNKNOWN_FIELD_MARKERS = (
    "chat_template_kwargs",
    "enable_thinking",
    "unrecognized request argument",
    "extra inputs are not permitted",
    "extra_forbidden",
    "unknown field",
    "additional properties",
)
_PROBE_TIMEOUT = 30.0
# The run bounds the requests in flight (its slots); the async pool must not add
# a lower bound of its own (httpx's default is 100 connections).
_ASYNC_LIMITS = httpx.Limits(max_connections=None, max_keepalive_connections=None)


def normalise_base_url(url: str) -> str:
    """``host:port``, ``http://host:port/`` and ``http://host:port/v1/`` all become
    ``http://host:port/v1``; a pasted ``.../v1/chat/completions`` loses its endpoint."""
    url = url.strip()
    if "//" not in url:
        url = f"http://{url}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--base-url must be an http:// or https:// URL, got {url!r}")
    path = parts.path.rstrip("/")
    for endpoint in ("/chat/completions", "/completions", "/models"):
        if path.endswith(endpoint):
            path = path[: -len(endpoint)]
            break
    last = path.rsplit("/", 1)[-1]
    if not (last.startswith("v") and last[1:].isdigit()):
        path += "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


def chat_body(
    model: str, request: Request, *, stream: bool, template_kwargs: bool = True
) -> dict[str, Any]:
    """The body of one chat completion, as sent live and written to batch files."""
    body: dict[str, Any] = {
        "model": model,
        "messages": request.prompt.messages(),
        # Always sent: servers fill different defaults.
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.seed,
        "max_tokens": request.max_tokens,
        "stream": stream,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if template_kwargs:
        # Thinking models (Qwen 3 and others) answer without thinking aloud.
        body["chat_template_kwargs"] = {"enable_thinking": False}
    return body


class OpenAIBackend:
    """Chat completions against any server that speaks the OpenAI API."""

    name = "openai"

    def __init__(
        self,
        settings: BackendSettings,
        events: Events,
        *,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.events = events
        options = settings.options
        preset = str(options.get("preset") or "")
        if preset and preset not in PRESETS:
            raise ConfigError(f"unknown --preset {preset!r}; presets: {', '.join(PRESETS)}")
        base_url = str(options.get("base_url") or "") or PRESETS.get(preset, "")
        if not base_url:
            raise ConfigError(
                f"--backend openai needs --base-url URL or --preset NAME ({', '.join(PRESETS)})"
            )
        self.base_url = normalise_base_url(base_url)
        # /props and LM Studio's /api/v0 live beside /v1, not under it.
        self.root_url = self.base_url.rsplit("/", 1)[0]
        self._hint = _START_HINTS.get(preset, _GENERIC_HINT)
        key_env = str(options.get("api_key_env") or "")
        self._api_key = str(options.get("api_key") or "") or (
            os.environ.get(key_env, "") if key_env else ""
        )
        self._stream = bool(options.get("stream", True))
        self._fallback_context = int(options.get("context_size") or 4096)
        self._transport = transport
        if async_transport is None and isinstance(transport, httpx.AsyncBaseTransport):
            async_transport = transport  # httpx.MockTransport serves both
        self._async_transport = async_transport
        self._sleep = sleep
        self._client: httpx.Client | None = None
        # Async clients for one event loop: their connections belong to that loop.
        self._aclients: AsyncClients[httpx.AsyncClient] | None = None
        self._slots = 1
        self._lock = threading.Lock()
        self._send_template_kwargs = True
        self._model = settings.model
        # The context size the server reported (None when assumed): the cut
        # check measures a prompt against it.
        self._context: int | None = None
        self._context_assumed = True

    # -- the Backend protocol -------------------------------------------------

    def start(self) -> StartInfo:
        entries = self._model_entries()
        ids = [entry["id"] for entry in entries]
        model = self._pick_model(ids)
        entry = next(e for e in entries if e["id"] == model)
        context, slots = self._discover_context(model, entry)
        self._model = model
        self._context = None if self._context_assumed else context
        if self.settings.concurrency > 0:
            concurrency = self.settings.concurrency
        else:
            concurrency = slots if slots and slots > 0 else 1
        self._slots = concurrency
        return StartInfo(
            backend=self.name,
            model=model,
            context_size=context,
            concurrency=concurrency,
        )

    def translate(self, request: Request) -> Result:
        started = self._started()
        result = with_retries(
            lambda: self._complete(request),
            retries=self.settings.request_retries,
            sleep=self._sleep,
        )
        return _timed(result, started)

    async def atranslate(self, request: Request) -> Result:
        started = self._started()
        result = await with_retries_async(
            lambda: self._acomplete(request),
            retries=self.settings.request_retries,
            sleep=self._sleep,
        )
        return _timed(result, started)

    def list_models(self) -> list[str]:
        return [entry["id"] for entry in self._model_entries()]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            # Async clients still open are left to their loop (aclose closes them there).
            self._aclients = None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        with self._lock:
            held, self._aclients = self._aclients, None
        if held is not None and held.loop is asyncio.get_running_loop():
            for client in held.all:
                await client.aclose()

    # -- start-up ------------------------------------------------------------

    def _model_entries(self) -> list[dict[str, Any]]:
        url = f"{self.base_url}/models"
        try:
            response = self._http().get(url, timeout=self._probe_timeout())
        except httpx.TimeoutException:
            raise BackendUnavailable(
                f"The server at {self.base_url} accepted the connection but did not list "
                f"its models within {self._probe_timeout().read:g} s. Check that it has "
                "finished loading, or raise backend.read_timeout."
            ) from None
        except httpx.TransportError:
            raise BackendUnavailable(self._not_answering()) from None
        if response.status_code in (401, 403):
            key_env = self.settings.options.get("api_key_env") or "TRANSLATE_DIR_API_KEY"
            raise BackendUnavailable(
                f"The server at {self.base_url} refuses us (HTTP {response.status_code}): "
                f"pass --api-key KEY or set ${key_env}."
            )
        if response.status_code == 404:
            raise BackendUnavailable(
                f"{url} does not exist (HTTP 404): is {self.base_url} the base of an "
                "OpenAI-compatible API? It usually ends in /v1; check --base-url."
            )
        if response.status_code != 200:
            raise BackendUnavailable(
                f"The server at {self.base_url} answered HTTP {response.status_code} to "
                f"GET /models: {_error_detail(response)}. Check the server's log."
            )
        body = _json_or_none(response)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise BackendUnavailable(
                f"{url} did not answer with an OpenAI model list: is {self.base_url} "
                "an OpenAI-compatible server? Check --base-url."
            )
        return [e for e in data if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def _pick_model(self, ids: list[str]) -> str:
        wanted = self.settings.model
        if wanted and wanted in ids:
            return wanted
        if not ids:
            raise ModelNotFound(
                f"The server at {self.base_url} lists no models: load one in the server "
                "(or start it with a model), then run again."
            )
        listing = _one_line_list(ids)
        if not wanted:
            if len(ids) == 1:
                return ids[0]
            raise ModelNotFound(
                f"The server at {self.base_url} has several models; pick one with "
                f"--model: {listing}"
            )
        raise ModelNotFound(
            f"The server at {self.base_url} has no model {wanted!r}; it has: {listing}"
        )

    def _discover_context(self, model: str, entry: dict[str, Any]) -> tuple[int, int | None]:
        """(context tokens one request may use, slots the server reports or None)."""
        # vLLM puts max_model_len in its /v1/models entry.
        context = _positive_int(entry.get("max_model_len"))
        slots: int | None = None
        # llama.cpp and llamafile: n_ctx here is per slot, which is what one request
        # gets. In llama-server's router mode a bare /props is a placeholder with
        # n_ctx 0; ?model= asks the model's own instance.
        props = self._probe_json(f"{self.root_url}/props", params={"model": model})
        if isinstance(props, dict):
            slots = _positive_int(props.get("total_slots"))
            settings = props.get("default_generation_settings")
            if context is None and isinstance(settings, dict):
                context = _positive_int(settings.get("n_ctx"))
        # Recent llama-server also puts the allocated n_ctx under "meta".
        meta = entry.get("meta")
        if context is None and isinstance(meta, dict):
            context = _positive_int(meta.get("n_ctx"))
        if context is None:
            context, lm_slots = self._lmstudio_context(model)
            slots = slots or lm_slots
        self._context_assumed = context is None
        if context is None:
            context = self._fallback_context
            self.events.message(
                f"The server at {self.base_url} does not report its context size; "
                f"assuming openai.context_size = {context} tokens."
            )
        return context, slots

    def _lmstudio_context(self, model: str) -> tuple[int | None, int | None]:
        v0 = self._probe_json(f"{self.root_url}/api/v0/models")
        if isinstance(v0, dict) and isinstance(v0.get("data"), list):
            for item in v0["data"]:
                if isinstance(item, dict) and item.get("id") == model:
                    loaded = _positive_int(item.get("loaded_context_length"))
                    if loaded:
                        return loaded, None
                    return self._not_loaded(_positive_int(item.get("max_context_length"))), None
        # LM Studio 0.4 and later: the v1 REST API.
        v1 = self._probe_json(f"{self.root_url}/api/v1/models")
        if isinstance(v1, dict) and isinstance(v1.get("models"), list):
            for item in v1["models"]:
                if not (isinstance(item, dict) and item.get("key") == model):
                    continue
                instances = item.get("loaded_instances")
                if isinstance(instances, list) and instances and isinstance(instances[0], dict):
                    config = instances[0].get("config")
                    if isinstance(config, dict) and _positive_int(config.get("context_length")):
                        return _positive_int(config["context_length"]), _positive_int(
                            config.get("parallel")
                        )
                return self._not_loaded(_positive_int(item.get("max_context_length"))), None
        return None, None

    def _not_loaded(self, maximum: int | None) -> int | None:
        # LM Studio loads a model on first use with its own default context, not the
        # model's maximum: trust the configured size, capped by that maximum.
        if maximum is None:
            return None
        return min(maximum, self._fallback_context)

    def _probe_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        """GET a side door that only some servers have; None where it is missing."""
        try:
            response = self._http().get(url, params=params, timeout=self._probe_timeout())
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        return _json_or_none(response)

    # -- one request: the sync and the async transport -------------------------
    #
    # Each pair below differs only in ``await``: what to send, how to read the
    # answer and what an error means are the shared methods after them.

    def _complete(self, request: Request) -> Result:
        try:
            return self._post(request, self._template_kwargs())
        except _FieldRejected:
            return self._post(request, self._template_kwargs_refused())

    async def _acomplete(self, request: Request) -> Result:
        try:
            return await self._apost(request, self._template_kwargs())
        except _FieldRejected:
            return await self._apost(request, self._template_kwargs_refused())

    def _post(self, request: Request, send_kwargs: bool) -> Result:
        body = self._body(request, send_kwargs)
        try:
            with self._http().stream("POST", self._chat_url(), json=body) as response:
                if response.status_code != 200:
                    response.read()
                    self._raise_http(response.status_code, response, request, send_kwargs)
                if not self._streams(response):
                    response.read()
                    return self._read_json(response, request)
                reply = _Reply(self, request)
                try:
                    for line in response.iter_lines():
                        reply.feed(line)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    if not reply.complete:
                        raise
                return reply.result()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    async def _apost(self, request: Request, send_kwargs: bool) -> Result:
        body = self._body(request, send_kwargs)
        try:
            async with self._ahttp().stream("POST", self._chat_url(), json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    self._raise_http(response.status_code, response, request, send_kwargs)
                if not self._streams(response):
                    await response.aread()
                    return self._read_json(response, request)
                reply = _Reply(self, request)
                try:
                    async for line in response.aiter_lines():
                        reply.feed(line)
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    if not reply.complete:
                        raise
                return reply.result()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    # -- one request: shared by both transports -----------------------------------

    def _started(self) -> float:
        if not self._model:
            raise RequestFailed("The OpenAI backend needs a model: call start() first.")
        return time.monotonic()

    def _template_kwargs(self) -> bool:
        with self._lock:
            return self._send_template_kwargs

    def _template_kwargs_refused(self) -> bool:
        """The server refused chat_template_kwargs: leave it out from now on."""
        with self._lock:
            first = self._send_template_kwargs
            self._send_template_kwargs = False
        if first:
            self.events.message(
                f"The server at {self.base_url} does not take chat_template_kwargs; "
                "sending requests without it (thinking models may think aloud)."
            )
        return False

    def _body(self, request: Request, send_kwargs: bool) -> dict[str, Any]:
        self._guard()
        return chat_body(self._model, request, stream=self._stream, template_kwargs=send_kwargs)

    def _chat_url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _streams(self, response: httpx.Response) -> bool:
        """Whether the answer comes as server-sent events (some servers ignore stream)."""
        return self._stream and "text/event-stream" in response.headers.get("content-type", "")

    def _transport_error(self, exc: httpx.HTTPError) -> BackendUnavailable | RequestFailed:
        """What a failure of the connection means, for a request in flight."""
        if isinstance(exc, httpx.ConnectError):
            return BackendUnavailable(self._not_answering())
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(
                f"No answer from {self.base_url} within "
                f"{self.settings.read_timeout:g} s; raise backend.read_timeout if the "
                "model is slow, or send smaller chunks."
            )
        if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
            return TransientError(f"The connection to {self.base_url} dropped during an answer.")
        return RequestFailed(f"The request to {self.base_url} failed: {type(exc).__name__}.")

    def _read_json(self, response: httpx.Response, request: Request) -> Result:
        body = _json_or_none(response)
        if not isinstance(body, dict):
            raise RequestFailed(f"The server at {self.base_url} answered with invalid JSON.")
        if "error" in body:
            self._raise_error_payload(body, request)
        choice = _first_choice(body)
        if choice is None:
            raise RequestFailed(f"The server at {self.base_url} answered without a choice.")
        message = choice.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        return self._result(
            request,
            content if isinstance(content, str) else "",
            choice.get("finish_reason"),
            body.get("usage"),
        )

    def _result(self, request: Request, text: str, finish_reason: Any, usage: Any) -> Result:
        if finish_reason == "content_filter":
            raise RequestFailed(f"The server at {self.base_url} filtered the answer.")
        finish: Finish = "length" if finish_reason == "length" else "stop"
        text = strip_think(text, request.prompt.text)
        prompt_tokens = output_tokens = None
        if isinstance(usage, dict):
            prompt_tokens = _positive_int(usage.get("prompt_tokens"))
            output_tokens = _nonnegative_int(usage.get("completion_tokens"))
        estimate = request.estimated_prompt_tokens or estimate_prompt_tokens(request.prompt)
        if prompt_tokens is not None:
            # usage.prompt_tokens counts the whole prompt, cached tokens included
            # (OpenAI, llama.cpp, vLLM): an exact count. LM Studio's truncating
            # overflow policies cut the prompt with HTTP 200.
            count = PromptCount(read=prompt_tokens, answer=output_tokens, exact=True)
            reason = prompt_cut(count, estimate=estimate, context=self._context)
            if reason is not None:
                raise ContextOverflow(
                    f"The server at {self.base_url} {reason}: it cut the prompt to fit "
                    "its context. Load the model with a larger context, or lower "
                    "translate.chunk_tokens."
                )
        else:
            prompt_tokens = estimate
        if output_tokens is None:
            output_tokens = estimate_tokens(text)
        return Result(text, finish, prompt_tokens, output_tokens, 0.0)

    # -- errors --------------------------------------------------------------

    def _raise_http(
        self, status: int, response: httpx.Response, request: Request, sent_kwargs: bool
    ) -> NoReturn:
        raw = response.text.lower()
        if status == 400 and any(marker in raw for marker in _OVERFLOW_MARKERS):
            raise ContextOverflow(
                f"The chunk does not fit the context of the model at {self.base_url} "
                "(HTTP 400); it will be split."
            )
        detail = _error_detail(response, request)
        if (
            sent_kwargs
            and status in (400, 422)
            and any(marker in raw for marker in _UNKNOWN_FIELD_MARKERS)
        ):
            raise _FieldRejected(f"The server at {self.base_url} answered HTTP {status}: {detail}")
        if is_transient(status):
            raise TransientError(
                f"The server at {self.base_url} is busy (HTTP {status}); trying again."
            )
        if status in (401, 403):
            raise BackendUnavailable(
                f"The server at {self.base_url} refuses us (HTTP {status}): "
                "pass --api-key KEY or set the variable named by openai.api_key_env."
            )
        if status == 404 and "model" in raw:
            raise ModelNotFound(
                f"The server at {self.base_url} no longer serves {self._model!r}: {detail}"
            )
        raise RequestFailed(f"The server at {self.base_url} answered HTTP {status}: {detail}")

    def _raise_error_payload(self, body: dict[str, Any], request: Request) -> NoReturn:
        """An error inside a 200 answer or a stream (llama.cpp, vLLM do that)."""
        error = body.get("error")
        raw = json.dumps(error).lower()
        if any(marker in raw for marker in _OVERFLOW_MARKERS):
            raise ContextOverflow(
                f"The chunk does not fit the context of the model at {self.base_url}; "
                "it will be split."
            )
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, int) and is_transient(code):
            raise TransientError(f"The server at {self.base_url} is busy ({code}); trying again.")
        detail = redact(_message_of(body), request.prompt)
        raise RequestFailed(f"The server at {self.base_url} reported an error: {detail}")

    def _not_answering(self) -> str:
        return (
            f"No OpenAI-compatible server answers at {self.base_url}. "
            f"Start it (e.g. {self._hint}) or check --base-url."
        )

    # -- plumbing ------------------------------------------------------------

    def _guard(self) -> None:
        guard_remote(self.base_url, self.settings.allow_remote, "The OpenAI-compatible server")

    def _http(self) -> httpx.Client:
        self._guard()
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(**self._client_options(), transport=self._transport)
            return self._client

    def _ahttp(self) -> httpx.AsyncClient:
        self._guard()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._aclients is None or self._aclients.loop is not loop:
                options = self._client_options()
                # One TLS context for all of them (each would load the CA bundle).
                options["verify"] = httpx.create_ssl_context(trust_env=options["trust_env"])
                self._aclients = AsyncClients(
                    lambda: httpx.AsyncClient(
                        **options, transport=self._async_transport, limits=_ASYNC_LIMITS
                    ),
                    self._slots,
                )
            return self._aclients.next()

    def _client_options(self) -> dict[str, Any]:
        """What the sync and the async client share."""
        return {
            "headers": {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {},
            "timeout": httpx.Timeout(
                self.settings.read_timeout, connect=self.settings.connect_timeout
            ),
            # A proxy from HTTP(S)_PROXY would carry documents for a local
            # server off this machine; only a remote server may use one.
            "trust_env": not is_loopback(self.base_url),
        }

    def _probe_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(
            min(self.settings.read_timeout, _PROBE_TIMEOUT), connect=self.settings.connect_timeout
        )


class _FieldRejected(Exception):
    """The server refused a request field we may leave out (chat_template_kwargs)."""


class _Reply:
    """One streamed answer, fed line by line (server-sent events) by either
    transport; ``result()`` once the lines end."""

    def __init__(self, backend: OpenAIBackend, request: Request) -> None:
        self._backend = backend
        self._request = request
        self._parts: list[str] = []
        self._finish_reason: Any = None
        self._usage: Any = None
        self._done = False

    @property
    def complete(self) -> bool:
        """The server said the answer is whole (a lost trailing usage event does
        not matter then)."""
        return self._finish_reason is not None

    def feed(self, line: str) -> None:
        """Take one line of the stream. Comments, event names and ids are skipped:
        only ``data:`` lines carry the answer, up to ``[DONE]``. The stream is read
        to its end all the same, so that its connection can carry the next request
        (one left unread is closed)."""
        if self._done or not line.startswith("data:"):
            return
        event = line[5:].strip()
        if event == "[DONE]":
            self._done = True
            return
        try:
            chunk = json.loads(event)
        except json.JSONDecodeError:
            raise RequestFailed(
                f"The server at {self._backend.base_url} sent a malformed stream event."
            ) from None
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self._backend._raise_error_payload(chunk, self._request)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choice = _first_choice(chunk)
        if choice is None:
            return
        delta = choice.get("delta")
        # reasoning_content (and "reasoning") are ignored on purpose.
        content = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(content, str):
            self._parts.append(content)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]

    def result(self) -> Result:
        if self._finish_reason is None:
            # llama_cpp.server ends an interrupted stream with a bare [DONE].
            raise OutputTruncated(
                f"The answer stream from {self._backend.base_url} ended before the server "
                "said it was complete (another request interrupted it, or the server "
                "failed mid-answer, e.g. on a prompt too long for its context)."
            )
        return self._backend._result(
            self._request, "".join(self._parts), self._finish_reason, self._usage
        )


def _timed(result: Result, started: float) -> Result:
    """``result`` with the whole time its request took, retries included."""
    return Result(
        text=result.text,
        finish=result.finish,
        prompt_tokens=result.prompt_tokens,
        output_tokens=result.output_tokens,
        seconds=time.monotonic() - started,
    )


def _first_choice(body: dict[str, Any]) -> dict[str, Any] | None:
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _nonnegative_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _one_line_list(ids: list[str], limit: int = 20) -> str:
    shown = ", ".join(ids[:limit])
    return shown if len(ids) <= limit else f"{shown} (and {len(ids) - limit} more)"


def _message_of(body: Any) -> str:
    """The human part of an error body: OpenAI/llama.cpp ``error.message``, vLLM's
    top-level ``message``, FastAPI's ``detail``. Never the validator's ``input``,
    which would echo the request."""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    if isinstance(body.get("message"), str):
        return str(body["message"])
    detail = body.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}"
            for d in detail
            if isinstance(d, dict)
        )
    return ""


def _error_detail(response: httpx.Response, request: Request | None = None) -> str:
    return redact(_message_of(_json_or_none(response)), request.prompt if request else None)
