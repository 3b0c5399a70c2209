"""The Ollama backend: the native ``/api/chat`` endpoint through the official client.

Why the native API and not ``/v1``: only the native API can set ``num_ctx``, and
Ollama's default context is small and cuts an over-long prompt silently (HTTP
200, system prompt first). So every request carries the same ``num_ctx``,
computed once in ``start()``, and every answer's ``prompt_eval_count`` is
checked against the caller's estimate.

Truncation rules (an answer that breaks one is never returned as a translation):

- input cut -> ``ContextOverflow``, judged by ``policy.prompt_cut``. Ollama has
  reported ``prompt_eval_count`` three ways: left out when the prompt was cached
  (0.1.x), only the tokens after the prefix cached from the previous request
  (0.30.0), and the whole prompt (0.30.1 on; the newest also send
  ``prompt_eval_cached_count``). Our requests repeat the system prompt and the
  few-shot turns, so a cache hit is the rule: the count is exact only when the
  cached count comes with it, and a lower bound otherwise. A cut shows as a count
  that reaches ``num_ctx``, a count plus answer that exceed it, an exact count far
  below the estimate, or an estimate at ``num_ctx`` or more.
- output cut: ``done_reason == "length"`` -> ``Result.finish == "length"``;
  a stream that ends without its final ``done: true`` -> ``OutputTruncated``.

A run sends its requests through ``atranslate`` (the client's ``AsyncClient``,
every request in flight on one event-loop thread); ``translate`` is the same
request through the sync ``Client``. Both build the request with ``_chat_args``,
read the stream into an ``_Answer`` and map errors with ``_wire_error``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

import httpx
import pydantic
from ollama import AsyncClient, ChatResponse, Client, ResponseError, ShowResponse

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
from pipeline.prompts import Prompt

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_PORT = 11434
# What a server binds to, not an address to dial: the server is on this machine.
_BIND_ADDRESSES = frozenset({"0.0.0.0", "::", ""})
CONTEXT_STEP = 256


def resolve_host(cli_host: str | None, config_host: str, env: Mapping[str, str]) -> str:
    """The URL to dial: --host, else config ``ollama.host``, else ``OLLAMA_HOST``,
    else ``http://127.0.0.1:11434``.

    Follows Ollama's own parsing: a bare ``host`` or ``host:port`` gets ``http://``
    and port 11434; ``http://host`` without a port means port 80 (``https``: 443).
    Bind addresses (``0.0.0.0``, ``::``, ``[::]``, an empty host) are dialled as
    ``127.0.0.1``.
    """
    raw = (cli_host or config_host or env.get("OLLAMA_HOST", "")).strip()
    if not raw:
        return DEFAULT_HOST
    scheme, sep, rest = raw.partition("://")
    if sep:
        scheme = scheme.lower()
        default_port = {"http": 80, "https": 443}.get(scheme)
        if default_port is None:
            raise ConfigError(f"Ollama host {raw!r}: use http:// or https://")
    else:
        scheme, rest, default_port = "http", raw, DEFAULT_PORT
    hostport, slash, path = rest.partition("/")
    if _is_ipv6(hostport):
        # A bare IPv6 address such as "::" or "::1" (Ollama accepts it unbracketed).
        rest = f"[{hostport}]{slash}{path}"
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        port = parts.port or default_port
    except ValueError:
        raise ConfigError(
            f"Ollama host {raw!r} is not a valid address; use e.g. http://127.0.0.1:11434"
        ) from None
    host = parts.hostname or ""
    if host in _BIND_ADDRESSES:
        host = "127.0.0.1"
    if _is_ipv6(host):
        host = f"[{host}]"
    path = parts.path.rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


def _is_ipv6(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 6
    except ValueError:
        return False


def probe(host: str, timeout: float = 0.5) -> bool:
    """True when an Ollama server answers at ``host`` (for ``--backend auto``).

    Sends no document text, so the privacy guard does not apply here; it applies
    when the backend starts. Never raises."""
    try:
        url = resolve_host(host, "", {})
        response = httpx.get(f"{url}/api/version", timeout=timeout, trust_env=not is_loopback(url))
        body = response.json()
    except (httpx.HTTPError, ValueError, ConfigError):
        return False
    return response.status_code == 200 and isinstance(body, dict) and "version" in body


def _server_error(exc: ResponseError, prompt: Prompt | None = None) -> str:
    return redact(str(exc.error), prompt)


class _ChatResponse(ChatResponse):
    """A chat event with the count the newest servers send beside
    ``prompt_eval_count``; the client's own model (ollama 0.6) drops it."""

    prompt_eval_cached_count: int | None = None


class _Client(Client):
    """The ollama client, parsing chat events as ``_ChatResponse``."""

    def _request(self, cls: Any, *args: Any, **kwargs: Any) -> Any:
        return super()._request(_ChatResponse if cls is ChatResponse else cls, *args, **kwargs)


class _AsyncClient(AsyncClient):
    """The ollama async client, parsing chat events as ``_ChatResponse``."""

    async def _request(self, cls: Any, *args: Any, **kwargs: Any) -> Any:
        return await super()._request(
            _ChatResponse if cls is ChatResponse else cls, *args, **kwargs
        )


class _ConnectionLost(TransientError):
    """The server stopped accepting connections; worth a retry (it may be restarting)."""


class OllamaBackend:
    """Translation through a running Ollama server (satisfies ``Backend``)."""

    name = "ollama"

    def __init__(self, settings: BackendSettings, events: Events) -> None:
        self.settings = settings
        self.events = events
        options = settings.options
        self.host = resolve_host(options.get("host") or None, "", os.environ)
        self.model = settings.model or str(options.get("model", ""))
        self.keep_alive: str | float | None = options.get("keep_alive") or None
        self.pull = bool(options.get("pull", False))
        self._requested_ctx = int(options.get("num_ctx", 0) or 0)
        # Filled by start(); read-only afterwards, so translate() is thread-safe
        # (httpx.Client itself may be shared between threads).
        self.num_ctx = 0
        self.capabilities: tuple[str, ...] = ()
        self.context_length: int | None = None
        self._think: bool | None = None
        # Backoff between retries; tests replace it to stay fast.
        self.sleep: Callable[[float], None] = time.sleep
        self._client = _Client(host=self.host, **self._client_options())
        # Async clients for one event loop: their connections belong to that loop.
        self._aclients: AsyncClients[_AsyncClient] | None = None
        self._alock = threading.Lock()

    def _client_options(self) -> dict[str, Any]:
        """What the sync and the async client share."""
        return {
            # The client's default is no timeout at all: never use it.
            "timeout": httpx.Timeout(
                connect=self.settings.connect_timeout,
                read=self.settings.read_timeout,
                write=self.settings.read_timeout,
                pool=self.settings.read_timeout,
            ),
            # A proxy from HTTP(S)_PROXY / ALL_PROXY would carry the documents for a
            # local server off this machine, and a redirect would take them to a
            # host the privacy guard never checked.
            "trust_env": not is_loopback(self.host),
            "follow_redirects": False,
        }

    def _async_client(self) -> _AsyncClient:
        loop = asyncio.get_running_loop()
        with self._alock:
            if self._aclients is None or self._aclients.loop is not loop:
                options = self._client_options()
                # The run bounds the requests in flight (its slots); the pool must
                # not add a lower bound of its own (httpx's default is 100).
                options["limits"] = httpx.Limits(
                    max_connections=None, max_keepalive_connections=None
                )
                # One TLS context for all of them (each would load the CA bundle).
                options["verify"] = httpx.create_ssl_context(trust_env=options["trust_env"])
                self._aclients = AsyncClients(
                    lambda: _AsyncClient(host=self.host, **options), self._slots()
                )
            return self._aclients.next()

    def _slots(self) -> int:
        return self.settings.concurrency if self.settings.concurrency > 0 else 1

    # -- start-up ---------------------------------------------------------------

    def start(self) -> StartInfo:
        guard_remote(self.host, self.settings.allow_remote, "The Ollama server")
        if not self.model:
            raise ConfigError("no Ollama model given: pass --model or set ollama.model")
        show = self._show()
        self.capabilities = tuple(show.capabilities or ())
        if self.capabilities and "completion" not in self.capabilities:
            raise BackendUnavailable(
                f"Ollama model {self.model} cannot generate text "
                f"(it offers: {', '.join(self.capabilities)}); pick a chat model with --model."
            )
        # Never send think at all to a model without the capability: think=True is
        # a 400 there, and omitting it on a thinking model turns thinking on.
        self._think = False if "thinking" in self.capabilities else None
        self.context_length = _context_length(show.modelinfo or {})
        self.num_ctx = self._choose_num_ctx()
        warmup = self._warm_up()
        concurrency = self._slots()
        return StartInfo(
            backend=self.name,
            model=self.model,
            context_size=self.num_ctx,
            warmup_seconds=warmup,
            concurrency=concurrency,
        )

    def _choose_num_ctx(self) -> int:
        wanted = self.settings.context_tokens
        if self._requested_ctx > 0:
            num_ctx = self._requested_ctx
        else:
            # Round up so small changes to chunk_tokens do not change num_ctx
            # (and reload the model) between runs.
            num_ctx = -(-max(wanted, 1) // CONTEXT_STEP) * CONTEXT_STEP
        if self.context_length is not None and num_ctx > self.context_length:
            num_ctx = self.context_length
        if num_ctx < wanted:
            self.events.message(
                f"Ollama model {self.model} gets a context of {num_ctx} tokens, "
                f"less than the {wanted} one request needs; chunks are made smaller to fit."
            )
        return num_ctx

    def _show(self) -> ShowResponse:
        try:
            return self._show_once()
        except ModelNotFound:
            if not self.pull:
                raise
        self._pull()
        return self._show_once()

    def _show_once(self) -> ShowResponse:
        try:
            return self._client.show(self.model)
        except ResponseError as exc:
            if exc.status_code == 404:
                raise self._model_missing() from None
            raise self._unavailable(exc) from None
        except (ConnectionError, httpx.HTTPError):
            raise self._not_answering() from None

    def _pull(self) -> None:
        self.events.message(f"Pulling {self.model} into Ollama at {self.host}")
        last_status = ""
        finished = False
        try:
            for part in self._client.pull(self.model, stream=True):
                status = part.status or ""
                if part.digest and part.total:
                    self.events.transfer(part.digest, part.completed or 0, part.total)
                elif status and status != last_status:
                    self.events.message(status)
                last_status = status
                finished = finished or status == "success"
        except ResponseError as exc:
            raise BackendUnavailable(
                f"Ollama could not pull {self.model}: {_server_error(exc)}. "
                "Check the model name (https://ollama.com/library)."
            ) from None
        except (ConnectionError, httpx.ConnectError):
            raise self._not_answering() from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                f"The pull of {self.model} from Ollama at {self.host} broke off "
                f"({type(exc).__name__}); run the command again to resume it."
            ) from None
        if not finished:
            raise BackendUnavailable(
                f"The pull of {self.model} from Ollama at {self.host} ended before "
                "it finished; run the command again to resume it."
            )

    def _warm_up(self) -> float:
        """Load the model with the run's num_ctx, so the first chunk's time is
        translation, not loading; an empty message list only loads."""
        began = time.monotonic()
        try:
            self._client.chat(
                model=self.model,
                messages=[],
                stream=False,
                think=self._think,
                options={"num_ctx": self.num_ctx},
                keep_alive=self.keep_alive,
            )
        except ResponseError as exc:
            if exc.status_code == 404:
                raise self._model_missing() from None
            raise self._unavailable(exc) from None
        except httpx.TimeoutException:
            raise BackendUnavailable(
                f"Ollama did not load {self.model} within {self.settings.read_timeout:g} s; "
                "raise backend.read_timeout, or pick a smaller model."
            ) from None
        except (ConnectionError, httpx.HTTPError):
            raise self._not_answering() from None
        return time.monotonic() - began

    def _model_missing(self) -> ModelNotFound:
        return ModelNotFound(
            f"Ollama at {self.host} has no model {self.model}: "
            f"run `ollama pull {self.model}`, or pass --pull."
        )

    def _not_answering(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"Ollama is not answering at {self.host}. "
            "Start it with `ollama serve`, or pass --backend embedded."
        )

    def _unavailable(self, exc: ResponseError) -> BackendUnavailable:
        return BackendUnavailable(
            f"Ollama at {self.host} refused {self.model} "
            f"(HTTP {exc.status_code}: {_server_error(exc)})."
        )

    # -- requests ---------------------------------------------------------------

    def translate(self, request: Request) -> Result:
        self._check_started()
        try:
            return with_retries(
                lambda: self._chat_once(request),
                retries=self.settings.request_retries,
                sleep=self.sleep,
            )
        except _ConnectionLost:
            raise self._stopped_answering() from None

    async def atranslate(self, request: Request) -> Result:
        self._check_started()
        try:
            return await with_retries_async(
                lambda: self._achat_once(request),
                retries=self.settings.request_retries,
                sleep=self.sleep,
            )
        except _ConnectionLost:
            raise self._stopped_answering() from None

    # The sync and the async request differ only in ``await``; what to send, how
    # to read the stream and what an error means are shared.

    def _chat_once(self, request: Request) -> Result:
        answer = _Answer()
        try:
            stream: Iterator[ChatResponse] = self._client.chat(**self._chat_args(request))
            for part in stream:
                answer.feed(part)
        except _WIRE_ERRORS as exc:
            raise self._wire_error(exc, request.prompt) from None
        return self._result(request, answer)

    async def _achat_once(self, request: Request) -> Result:
        answer = _Answer()
        try:
            stream: AsyncIterator[ChatResponse] = await self._async_client().chat(
                **self._chat_args(request)
            )
            # aclosing: a cancelled request closes its stream (and connection) now.
            async with aclosing(stream):  # type: ignore[type-var]
                async for part in stream:
                    answer.feed(part)
        except _WIRE_ERRORS as exc:
            raise self._wire_error(exc, request.prompt) from None
        return self._result(request, answer)

    def _check_started(self) -> None:
        if self.num_ctx <= 0:
            raise RuntimeError("OllamaBackend.start() must run before translate()")

    def _chat_args(self, request: Request) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": request.prompt.messages(),
            "stream": True,
            "think": self._think,
            "options": {
                "num_ctx": self.num_ctx,
                "num_predict": request.max_tokens,
                "temperature": request.temperature,
                "top_p": request.top_p,
                "seed": request.seed,
            },
            "keep_alive": self.keep_alive,
        }

    def _wire_error(self, exc: Exception, prompt: Prompt) -> RequestFailed | BackendUnavailable:
        """What a failure while asking (one of ``_WIRE_ERRORS``) means."""
        if isinstance(exc, ResponseError):
            return self._request_error(exc, prompt)
        if isinstance(exc, ConnectionError | httpx.ConnectError | httpx.ConnectTimeout):
            return _ConnectionLost(f"Ollama at {self.host} took no connection")
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(
                f"Ollama at {self.host} sent nothing for {self.settings.read_timeout:g} s "
                "(backend.read_timeout)"
            )
        if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
            return TransientError(f"Ollama at {self.host} dropped the connection mid-answer")
        if isinstance(exc, json.JSONDecodeError):
            return TransientError(f"Ollama at {self.host} sent a garbled stream")
        if isinstance(exc, pydantic.ValidationError):
            return RequestFailed(
                f"Ollama at {self.host} answered in an unexpected format; is it an Ollama server?"
            )
        return RequestFailed(f"Ollama at {self.host} failed: {type(exc).__name__}")

    def _result(self, request: Request, answer: _Answer) -> Result:
        final = answer.final
        if final is None:
            raise OutputTruncated(
                f"Ollama's answer ended without its final event (model {self.model}); "
                "the answer may be cut"
            )
        self._check_prompt(request, final)
        text = strip_think("".join(answer.pieces), request.prompt.text)
        finish: Finish = "length" if final.done_reason == "length" else "stop"
        return Result(
            text=text,
            finish=finish,
            prompt_tokens=final.prompt_eval_count or request.estimated_prompt_tokens,
            output_tokens=final.eval_count or estimate_tokens(text),
            seconds=answer.seconds,
        )

    def _stopped_answering(self) -> BackendUnavailable:
        return BackendUnavailable(
            f"Ollama stopped answering at {self.host}. "
            "Start it again with `ollama serve` and re-run; finished files are kept."
        )

    def _check_prompt(self, request: Request, final: ChatResponse) -> None:
        cached = getattr(final, "prompt_eval_cached_count", None)
        count = PromptCount(
            read=final.prompt_eval_count,
            answer=final.eval_count,
            exact=isinstance(cached, int) and final.prompt_eval_count is not None,
        )
        estimate = request.estimated_prompt_tokens or estimate_prompt_tokens(request.prompt)
        reason = prompt_cut(count, estimate=estimate, context=self.num_ctx)
        if reason is not None:
            raise ContextOverflow(f"Ollama: {reason} (num_ctx {self.num_ctx}); the input was cut")

    def _request_error(
        self, exc: ResponseError, prompt: Prompt
    ) -> RequestFailed | BackendUnavailable:
        reason = _server_error(exc, prompt)
        if is_transient(exc.status_code, runner_restarts=True):
            return TransientError(
                f"Ollama at {self.host} is busy or failed mid-answer "
                f"(HTTP {exc.status_code}: {reason})"
            )
        if "context" in reason.lower() and "exceed" in reason.lower():
            # Servers that refuse an over-long prompt instead of cutting it.
            return ContextOverflow(
                f"Ollama at {self.host} refused the prompt as too long ({reason})"
            )
        if exc.status_code == 404:
            return ModelNotFound(
                f"Ollama at {self.host} no longer has model {self.model}: "
                f"run `ollama pull {self.model}`, or pass --pull."
            )
        return RequestFailed(
            f"Ollama at {self.host} refused the request (HTTP {exc.status_code}: {reason})"
        )

    # -- other ------------------------------------------------------------------

    def list_models(self) -> list[str]:
        guard_remote(self.host, self.settings.allow_remote, "The Ollama server")
        try:
            listing = self._client.list()
        except ResponseError as exc:
            raise BackendUnavailable(
                f"Ollama at {self.host} would not list its models "
                f"(HTTP {exc.status_code}: {_server_error(exc)})."
            ) from None
        except (ConnectionError, httpx.HTTPError):
            raise self._not_answering() from None
        return sorted(m.model for m in listing.models if m.model)

    def close(self) -> None:
        # ollama's Client.close() carries no annotations; it closes the httpx pool.
        self._client.close()  # type: ignore[no-untyped-call]
        with self._alock:
            # Async clients still open are left to their loop (aclose closes them there).
            self._aclients = None

    async def aclose(self) -> None:
        with self._alock:
            held, self._aclients = self._aclients, None
        if held is not None and held.loop is asyncio.get_running_loop():
            for client in held.all:
                await client.close()  # type: ignore[no-untyped-call]


# What asking can raise, for ``OllamaBackend._wire_error`` to map.
_WIRE_ERRORS = (
    ResponseError,
    ConnectionError,
    httpx.HTTPError,
    json.JSONDecodeError,
    pydantic.ValidationError,
)


class _Answer:
    """One streamed answer, fed event by event by either transport."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.pieces: list[str] = []
        self.final: ChatResponse | None = None
        self.seconds = 0.0

    def feed(self, part: ChatResponse) -> None:
        # The stream is read to the end even after done:true, so the connection
        # goes back to the pool cleanly.
        if self.final is None:
            self.pieces.append(part.message.content or "")
            if part.done:
                self.final = part
                self.seconds = time.monotonic() - self.began


def _context_length(model_info: Mapping[str, Any]) -> int | None:
    """``<arch>.context_length`` from /api/show's model_info, when it is there."""
    arch = model_info.get("general.architecture")
    value = model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
