"""The async side of the backends says what the sync side says.

A run awaits ``atranslate`` on one event-loop thread; other callers use
``translate``. Both share the request body, the answer's parser, the error
mapping and the retry policy, so every server reply below must come out the
same through either: the same result, or the same error with the same message.
Then the pool's rules through ``atranslate``, and the ``ChunkLoop``'s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from pipeline.backends import base
from pipeline.backends.base import BackendSettings, NullEvents, Request, Result, estimate_tokens
from pipeline.backends.ollama import OllamaBackend
from pipeline.errors import BackendUnavailable, ContextOverflow, TransientError
from pipeline.execute import ChunkLoop
from pipeline.prompts import Prompt
from pipeline.testing import ScriptedBackend
from tests.ollama_wire import FakeOllama
from tests.test_backend_openai import Server, answer, delta, error, make, req, sse
from tests.test_endpoints import REQUEST, Endpoint, pool

Outcome = tuple[str, Any]


def outcome(call: Callable[[], Result]) -> Outcome:
    """What a call came to: the result's content, or the error and its message."""
    try:
        result = call()
    except Exception as exc:
        return type(exc).__name__, str(exc)
    return "result", (result.text, result.finish, result.prompt_tokens, result.output_tokens)


# -- the retry policy ------------------------------------------------------------------


def test_the_async_retries_follow_the_same_policy() -> None:
    def flaky(fails: int) -> Callable[[], Any]:
        left = [fails]

        def call() -> str:
            if left[0]:
                left[0] -= 1
                raise TransientError("busy")
            return "ok"

        return call

    sync_sleeps: list[float] = []
    async_sleeps: list[float] = []
    assert base.with_retries(flaky(2), retries=3, sleep=sync_sleeps.append) == "ok"

    async def twice() -> str:
        call = flaky(2)

        async def acall() -> str:
            return str(call())

        return await base.with_retries_async(acall, retries=3, sleep=async_sleeps.append)

    assert asyncio.run(twice()) == "ok"
    for sleeps in (sync_sleeps, async_sleeps):
        assert len(sleeps) == 2
        assert 0.5 <= sleeps[0] <= 0.5 * 1.25 and 1.0 <= sleeps[1] <= 1.0 * 1.25

    async def never() -> str:
        call = flaky(5)

        async def acall() -> str:
            return str(call())

        return await base.with_retries_async(acall, retries=1, sleep=lambda _: None)

    with pytest.raises(TransientError):
        asyncio.run(never())


def test_the_async_retry_waits_with_asyncio_sleep() -> None:
    """With the real sleep, the loop stays free while a retry waits."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async def main() -> str:
        failed = [False]

        async def call() -> str:
            if not failed[0]:
                failed[0] = True
                raise TransientError("busy")
            return "ok"

        task = asyncio.create_task(ticker())
        try:
            return await base.with_retries_async(call, retries=1, backoff=0.2)
        finally:
            task.cancel()

    assert asyncio.run(main()) == "ok"
    assert ticks >= 5


# -- OpenAI: one reply, both transports ----------------------------------------------------

USAGE = {"prompt_tokens": 30, "completion_tokens": 2}
# Each case makes its replies afresh: a response is read once.
OPENAI_REPLIES: dict[str, tuple[Callable[[], list[Any]], dict[str, Any]]] = {
    "json": (lambda: [answer("Bonjour", usage=USAGE)], {}),
    "stream": (
        lambda: [sse(delta("Bon"), delta("jour", finish="stop"), {"choices": [], "usage": USAGE})],
        {"stream": True},
    ),
    "stream without finish": (lambda: [sse(delta("Bon"))], {"stream": True}),
    "stream with an error event": (
        lambda: [sse({"error": {"message": "the model crashed", "code": 500}})],
        {"stream": True},
    ),
    "malformed event": (lambda: [sse("{not json")], {"stream": True}),
    "overflow": (lambda: [error(400, "This model's maximum context length is 4096 tokens")], {}),
    "busy, then an answer": (lambda: [httpx.Response(503), answer("Salut")], {}),
    "always busy": (lambda: [httpx.Response(503)], {}),
    "template kwargs refused": (
        lambda: [error(400, "Extra inputs are not permitted: chat_template_kwargs"), answer("Oui")],
        {},
    ),
    "server gone": (lambda: [httpx.ConnectError("refused")], {}),
    "timeout": (lambda: [httpx.ReadTimeout("slow")], {}),
    "filtered": (lambda: [answer("", finish="content_filter")], {}),
}


@pytest.mark.parametrize("case", list(OPENAI_REPLIES))
def test_openai_async_answers_as_the_sync_one(case: str) -> None:
    replies, options = OPENAI_REPLIES[case]
    sides = []
    for awaited in (False, True):
        server = Server(replies=replies())
        sleeps: list[float] = []
        backend = make(server, sleeps=sleeps, **options)
        backend.start()
        if awaited:
            got = outcome(lambda: asyncio.run(backend.atranslate(req())))  # noqa: B023
        else:
            got = outcome(lambda: backend.translate(req()))  # noqa: B023
        sides.append((got, len(sleeps), server.chats()))
    assert sides[0] == sides[1]


def test_openai_async_client_closes_on_its_loop() -> None:
    backend = make(Server(replies=[answer("Bonjour")]))
    backend.start()

    async def main() -> Result:
        try:
            return await backend.atranslate(req())
        finally:
            await backend.aclose()

    assert asyncio.run(main()).text == "Bonjour"
    assert backend._aclients is None
    # A second loop gets clients of its own.
    assert asyncio.run(backend.atranslate(req())).text == "Bonjour"


def test_a_run_spreads_its_slots_over_several_async_clients() -> None:
    """httpcore's pool cost grows with the square of its connections: a run's
    slots go over clients of ``CONNECTIONS_PER_CLIENT`` each."""
    backend = make(Server(replies=[answer("Bonjour")]), concurrency=10)
    backend.start()

    async def clients() -> int:
        for _ in range(3):
            await backend.atranslate(req())
        assert backend._aclients is not None
        return len(backend._aclients.all)

    assert asyncio.run(clients()) == -(-10 // base.CONNECTIONS_PER_CLIENT)


# -- Ollama: one reply, both transports ----------------------------------------------------


def make_backend(host: str) -> OllamaBackend:
    settings = BackendSettings(
        context_tokens=1500,
        connect_timeout=2.0,
        read_timeout=10.0,
        request_retries=1,
        options={"host": host, "model": "qwen2.5:7b", "keep_alive": "30m"},
    )
    backend = OllamaBackend(settings, NullEvents())
    backend.sleep = lambda seconds: None
    return backend


def make_request(text: str) -> Request:
    prompt = Prompt(
        system="Translate the user's text from English to Simplified Chinese.",
        text=text,
        source_name="English",
        target_name="Simplified Chinese",
    )
    estimated = sum(estimate_tokens(m["content"]) for m in prompt.messages())
    return Request(prompt, 300, 0.2, 0.9, 42, estimated_prompt_tokens=estimated)


OLLAMA_CASES = ["plain", "busy", "error_mid_stream", "drop_mid_stream", "end_without_done",
                "length_cut", "cut_prompt_to"]  # fmt: skip


@pytest.mark.parametrize("case", OLLAMA_CASES)
def test_ollama_async_answers_as_the_sync_one(httpserver: HTTPServer, case: str) -> None:
    fake = FakeOllama(httpserver, translate=lambda text: f"ZH[{text}]")
    sides = []
    for awaited in (False, True):
        if case == "cut_prompt_to":
            fake.cut_prompt_to = 40
        elif case != "plain":
            setattr(fake, case, 1)
        backend = make_backend(fake.url)
        backend.start()
        request = make_request("Run ⟦1⟧ to install the **latest** version. " * 3)
        if awaited:
            sides.append(outcome(lambda: asyncio.run(backend.atranslate(request))))  # noqa: B023
        else:
            sides.append(outcome(lambda: backend.translate(request)))  # noqa: B023
        fake.cut_prompt_to = None
    assert sides[0] == sides[1]
    if case == "plain":
        assert sides[0][0] == "result"


# -- the pool, awaited ---------------------------------------------------------------------


class AsyncEndpoint(Endpoint):
    """A scripted endpoint with an async side; ``hold`` keeps its requests open."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold: asyncio.Event | None = None
        self.closed = 0

    async def atranslate(self, request: Request) -> Result:
        if self.hold is not None:
            await self.hold.wait()
        return self.translate(request)

    async def aclose(self) -> None:
        self.closed += 1


def test_the_pool_is_awaited_only_when_every_endpoint_can_be() -> None:
    assert base.async_side(pool(AsyncEndpoint(), AsyncEndpoint())) is not None
    assert base.async_side(pool(AsyncEndpoint(), Endpoint())) is None
    assert base.async_side(ScriptedBackend()) is None


def test_the_awaited_pool_routes_to_the_least_busy_and_fails_over() -> None:
    a, b = AsyncEndpoint(slots=1), AsyncEndpoint(slots=1)
    broken = AsyncEndpoint(slots=4, fail=TransientError("busy, after its retries"))
    p = pool(a, b, broken)
    p.start()

    async def main() -> list[Result]:
        a.hold = asyncio.Event()
        first = asyncio.create_task(p.atranslate(REQUEST))
        await asyncio.sleep(0)  # the first request is now held by the least busy
        # The broken one (most free slots) fails; the request goes to b.
        second = await p.atranslate(REQUEST)
        # a and b are busy or done: a third request waits for a free slot.
        b.hold = asyncio.Event()
        third = asyncio.create_task(p.atranslate(REQUEST))
        fourth = asyncio.create_task(p.atranslate(REQUEST))
        await asyncio.sleep(0.05)
        assert not fourth.done()
        a.hold.set()
        b.hold.set()
        return [await first, second, await third, await fourth]

    results = asyncio.run(main())
    assert all(r.text for r in results)
    stats = {s.endpoint: s for s in p.endpoint_stats()}
    assert stats["e2"].failures == 1 and stats["e2"].requests == 0
    assert stats["e0"].requests + stats["e1"].requests == 4
    assert [m.in_flight for m in p._members] == [0, 0, 0]

    async def close() -> None:
        await p.aclose()

    asyncio.run(close())
    assert (a.closed, b.closed, broken.closed) == (1, 1, 1)


def test_the_awaited_pool_stops_when_every_endpoint_is_down() -> None:
    p = pool(
        AsyncEndpoint(fail=BackendUnavailable("gone")), AsyncEndpoint(fail=TransientError("busy"))
    )
    p.start()
    with pytest.raises(BackendUnavailable, match="every endpoint stopped answering"):
        asyncio.run(p.atranslate(REQUEST))


def test_a_failure_about_the_request_goes_back_from_the_awaited_pool() -> None:
    a, b = AsyncEndpoint(fail=ContextOverflow("too long")), AsyncEndpoint()
    p = pool(a, b)
    p.start()
    with pytest.raises(ContextOverflow):
        asyncio.run(p.atranslate(REQUEST))
    assert b.count == 0 and [m.in_flight for m in p._members] == [0, 0]


# -- the loop ------------------------------------------------------------------------------


class Hanging(ScriptedBackend):
    """An async backend whose requests never end (a server that holds them)."""

    def __init__(self) -> None:
        super().__init__()
        self.started_requests = 0
        self.cancelled = 0
        self.closed = 0

    async def atranslate(self, request: Request) -> Result:
        self.started_requests += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        self.closed += 1


def test_a_stopped_loop_cancels_what_is_in_flight_at_once() -> None:
    backend = Hanging()
    futures: list[Future[Result]] = []
    began = 0.0
    with pytest.raises(KeyboardInterrupt), ChunkLoop(4, backend) as loop:

        async def ask() -> Result:
            return await loop.ask(REQUEST)

        futures = [loop.submit(ask) for _ in range(6)]
        deadline = time.monotonic() + 10
        while backend.started_requests < 4:  # four slots: four in flight, two queued
            assert time.monotonic() < deadline, "the requests never started"
            time.sleep(0.01)
        began = time.monotonic()
        raise KeyboardInterrupt  # Ctrl-C on the main thread
    assert time.monotonic() - began < 1.5
    assert backend.started_requests == 4, "a queued call started after the stop"
    assert backend.cancelled == 4 and backend.closed == 1
    assert all(f.done() for f in futures[:4])


def test_a_backend_without_an_async_side_runs_on_one_thread_per_slot() -> None:
    backend = ScriptedBackend(concurrency=1)
    seen: set[str] = set()
    real = backend.translate

    def translate(request: Request) -> Result:
        seen.add(threading.current_thread().name)
        return real(request)

    backend.translate = translate  # type: ignore[method-assign]
    with ChunkLoop(1, backend) as loop:

        async def ask() -> Result:
            return await loop.ask(REQUEST)

        results = [f.result(10) for f in [loop.submit(ask) for _ in range(5)]]
    assert [r.text for r in results] == ["HELLO"] * 5
    assert seen == {"blocking-0"}
