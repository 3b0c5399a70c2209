"""The one interface every backend implements, and what travels across it.

A backend is data in, data out: it never reads files and knows nothing about
Markdown. It gets a ``Request`` (a rendered ``Prompt`` plus sampling options)
and returns a ``Result``. Failures are the domain errors of ``pipeline.errors``:
``BackendUnavailable`` / ``ModelNotFound`` at start-up, ``ContextOverflow`` and
``OutputTruncated`` when a chunk does not fit, ``RequestFailed`` otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from pipeline.errors import RemoteRefused, TransientError
from pipeline.prompts import Prompt

Finish = Literal["stop", "length"]


@dataclass(frozen=True)
class Request:
    prompt: Prompt
    max_tokens: int
    temperature: float
    top_p: float
    seed: int
    # Tokens the caller estimated for the prompt; backends that can see the
    # server's own count compare the two to detect a silently cut prompt.
    estimated_prompt_tokens: int = 0


@dataclass(frozen=True)
class Result:
    text: str
    finish: Finish
    prompt_tokens: int
    output_tokens: int
    seconds: float


@dataclass(frozen=True)
class StartInfo:
    """What ``Backend.start()`` learned, for the summary line and the report."""

    backend: str
    model: str
    context_size: int
    warmup_seconds: float = 0.0
    concurrency: int = 1
    # Completion-style (base) models cannot mark the end of a multi-paragraph
    # answer: the orchestrator then sends one segment per request.
    one_segment_per_request: bool = False


@dataclass(frozen=True)
class BackendSettings:
    """What every backend is built from (config sections merged with CLI options)."""

    # Model tag, id or .gguf path; "" means the backend's own default.
    model: str = ""
    # Tokens one request needs: prompt budget plus the output bound. Backends
    # size their context from it (Ollama num_ctx, llama.cpp n_ctx) and cap it at
    # what the model supports, reporting the result in StartInfo.context_size.
    context_tokens: int = 2048
    connect_timeout: float = 5.0
    read_timeout: float = 600.0
    request_retries: int = 3
    allow_remote: bool = False
    # Requests in flight; 0 means "what the server reports, else 1".
    concurrency: int = 0
    # The backend's own section of pipeline.toml ([ollama], [openai], [embedded])
    # with CLI overrides applied (host, base_url, preset, api_key, pull, ...).
    options: dict[str, Any] = field(default_factory=dict)


class Events(Protocol):
    """How a backend tells the user what it is doing. The CLI implements this with
    tqdm; the core passes ``NullEvents`` when quiet."""

    def message(self, text: str) -> None:
        """One line for the user (never document text)."""
        ...

    def transfer(self, key: str, completed: int, total: int) -> None:
        """Progress of a download (one bar per key, e.g. an Ollama layer digest)."""
        ...


class NullEvents:
    def message(self, text: str) -> None:
        pass

    def transfer(self, key: str, completed: int, total: int) -> None:
        pass


class Backend(Protocol):
    """A model that translates one request at a time per slot.

    Implementations take ``(settings: BackendSettings, events: Events)`` in their
    constructor and do no I/O until ``start()``.
    """

    name: str

    def start(self) -> StartInfo:
        """Check the server and model, load or warm the model. Raises BackendUnavailable."""
        ...

    def translate(self, request: Request) -> Result: ...

    def list_models(self) -> list[str]:
        """Model names this backend can use (for `translate-dir models`)."""
        ...

    def close(self) -> None: ...


class AsyncBackend(Backend, Protocol):
    """A backend that also talks to its server without a thread per request: a run
    awaits ``atranslate`` on its one event-loop thread (the HTTP backends). The
    others (embedded, scripted) compute in this process and are run on a thread
    per slot; their ``translate`` is all they have."""

    async def atranslate(self, request: Request) -> Result: ...

    async def aclose(self) -> None:
        """Close what ``atranslate`` opened, on the loop that opened it."""
        ...


def async_side(backend: Backend) -> AsyncBackend | None:
    """``backend`` when it can be awaited (see ``AsyncBackend``), else None. A
    backend made of others (``Pool``) says so itself through ``supports_async()``."""
    supports = getattr(backend, "supports_async", None)
    if callable(supports) and not supports():
        return None
    if all(callable(getattr(backend, name, None)) for name in ("atranslate", "aclose")):
        return backend  # type: ignore[return-value]
    return None


# httpcore's connection pool looks at every connection it holds for each request
# it places, and at every other one for each idle one: its cost grows with the
# square of the connections (64 in one client cost more CPU than the requests
# did). So a run's slots go over several async clients of this many each.
CONNECTIONS_PER_CLIENT = 4

C = TypeVar("C")


class AsyncClients(Generic[C]):
    """The async clients of one backend on one event loop, used in turn, enough
    that none holds more than about ``CONNECTIONS_PER_CLIENT`` connections."""

    def __init__(self, make: Callable[[], C], slots: int) -> None:
        self.loop = asyncio.get_running_loop()
        self.all = [make() for _ in range(max(1, -(-slots // CONNECTIONS_PER_CLIENT)))]
        self._turn = itertools.count()

    def next(self) -> C:
        return self.all[next(self._turn) % len(self.all)]


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: CJK characters count one each, other text ~4 chars."""
    if text.isascii():  # the common case, without a Python loop over every character
        return (len(text) + 3) // 4
    cjk = len(_CJK_OR_ABOVE.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


# Code points from U+2E80 (CJK radicals) up: each counts as a token of its own.
_CJK_OR_ABOVE = re.compile("[\u2e80-\U0010ffff]")


def is_loopback(url_or_host: str) -> bool:
    """True when a URL or host name points at this machine."""
    host = urlsplit(url_or_host if "//" in url_or_host else f"//{url_or_host}").hostname or ""
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def guard_remote(url: str, allow_remote: bool, what: str) -> None:
    """The privacy guard: documents go to a non-loopback host only when asked for."""
    if not allow_remote and not is_loopback(url):
        raise RemoteRefused(
            f"{what} at {url} is not on this machine, and your documents are private: "
            "pass --allow-remote (or set backend.allow_remote = true) to send them there."
        )


T = TypeVar("T")


def retry_delay(attempt: int, *, retries: int, backoff: float) -> float | None:
    """Seconds to wait before trying a ``TransientError`` again after ``attempt``
    earlier retries: exponential backoff with jitter; None once ``retries`` are spent."""
    if attempt >= retries:
        return None
    return backoff * 2.0**attempt * (1 + random.random() / 4)


def with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on ``TransientError`` try again as ``retry_delay`` says.
    Other errors pass straight through."""
    attempt = 0
    while True:
        try:
            return call()
        except TransientError:
            delay = retry_delay(attempt, retries=retries, backoff=backoff)
            if delay is None:
                raise
            sleep(delay)
            attempt += 1


async def with_retries_async(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``with_retries`` for a coroutine: the same policy (``retry_delay``); the
    wait is ``asyncio.sleep`` unless ``sleep`` is another function than
    ``time.sleep`` (a test's recorder), which is then called as it is."""
    attempt = 0
    while True:
        try:
            return await call()
        except TransientError:
            delay = retry_delay(attempt, retries=retries, backoff=backoff)
            if delay is None:
                raise
            if sleep is time.sleep:
                await asyncio.sleep(delay)
            else:
                sleep(delay)
            attempt += 1
