"""Several endpoints of one backend kind, serving one model, as one ``Backend``.

Each request goes to the least busy endpoint (requests in flight over its
slots). An endpoint that stops answering, or keeps failing after its own
retries, is taken out of rotation for ``cooldown`` seconds and the request
goes to another one: nothing is lost and nothing is asked twice, since a
failed request produced no answer. A failure about the request itself (a
prompt too long, an answer refused) is not the endpoint's fault and goes back
to the orchestrator as it is. Only when every endpoint is out does the
run stop (``BackendUnavailable``, exit 3, finished work kept).

A run awaits ``atranslate`` (when every endpoint can be awaited); ``translate``
is the same for a caller with threads. Both route through ``_pick`` and settle
through ``_settle``: only the waiting differs.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

from pipeline.backends.base import (
    AsyncBackend,
    Backend,
    Events,
    Request,
    Result,
    StartInfo,
    async_side,
)
from pipeline.errors import (
    BackendUnavailable,
    ContextOverflow,
    ModelNotFound,
    OutputTruncated,
    TransientError,
    TranslateDirError,
)

# Seconds an endpoint that failed sits out before it is tried again.
COOLDOWN = 30.0


@dataclass
class EndpointStats:
    """What one endpoint did, for the summary and --report."""

    endpoint: str
    slots: int = 1
    requests: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "slots": self.slots,
            "requests": self.requests,
            "failures": self.failures,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 1),
        }


@dataclass
class _Endpoint:
    backend: Backend
    stats: EndpointStats
    aside: AsyncBackend | None = None
    in_flight: int = 0
    down_until: float = 0.0
    started: bool = False


class Pool:
    """A ``Backend`` over several endpoints (``--host`` / ``--base-url`` repeated)."""

    def __init__(
        self,
        members: Sequence[tuple[str, Backend]],
        events: Events,
        *,
        cooldown: float = COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._members = [_Endpoint(b, EndpointStats(label), async_side(b)) for label, b in members]
        self.name = self._members[0].backend.name
        self._events = events
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Condition()
        # Wakes the coroutines waiting for a free endpoint (on their loop).
        self._freed: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    # -- the Backend protocol -------------------------------------------------

    def start(self) -> StartInfo:
        infos: list[tuple[_Endpoint, StartInfo]] = []
        first_error: TranslateDirError | None = None
        for member in self._members:
            try:
                info = member.backend.start()
            except ModelNotFound:
                # It answers, without the model: a setup mistake, not an outage.
                raise
            except BackendUnavailable as exc:
                first_error = first_error or exc
                member.down_until = self._clock() + self._cooldown
                self._events.message(f"{member.stats.endpoint}: not used ({exc})")
                continue
            member.started = True
            member.stats.slots = max(1, info.concurrency)
            infos.append((member, info))
        if not infos:
            assert first_error is not None
            raise first_error
        models = {info.model for _, info in infos}
        if len(models) > 1:
            served = ", ".join(f"{m.stats.endpoint}: {i.model}" for m, i in infos)
            raise BackendUnavailable(
                f"the endpoints serve different models ({served}); give every endpoint "
                "the same model, or pass --model"
            )
        head = infos[0][1]
        return StartInfo(
            backend=head.backend,
            model=head.model,
            # A chunk must fit whichever endpoint gets it.
            context_size=min(info.context_size for _, info in infos),
            warmup_seconds=max(info.warmup_seconds for _, info in infos),
            concurrency=sum(m.stats.slots for m, _ in infos),
            one_segment_per_request=any(i.one_segment_per_request for _, i in infos),
        )

    def translate(self, request: Request) -> Result:
        tried: set[int] = set()
        last: TranslateDirError | None = None
        while True:
            member = self._acquire(tried, last)
            try:
                result = member.backend.translate(request)
            except BaseException as exc:
                last = self._settle(member, exc)
                continue
            self._release(member, result)
            return result

    async def atranslate(self, request: Request) -> Result:
        tried: set[int] = set()
        last: TranslateDirError | None = None
        while True:
            member = await self._aacquire(tried, last)
            try:
                assert member.aside is not None, "supports_async() said every endpoint can"
                result = await member.aside.atranslate(request)
            except BaseException as exc:
                last = self._settle(member, exc)
                continue
            self._release(member, result)
            return result

    def supports_async(self) -> bool:
        """Whether every endpoint can be awaited (the HTTP backends can)."""
        return all(m.aside is not None for m in self._members)

    def list_models(self) -> list[str]:
        return self._members[0].backend.list_models()

    def close(self) -> None:
        for member in self._members:
            member.backend.close()

    async def aclose(self) -> None:
        for member in self._members:
            if member.aside is not None:
                await member.aside.aclose()

    def endpoint_stats(self) -> list[EndpointStats]:
        return [m.stats for m in self._members]

    # -- routing ----------------------------------------------------------------

    def _acquire(self, tried: set[int], last: TranslateDirError | None) -> _Endpoint:
        """The least busy endpoint (``_pick``); the thread waits while all are busy."""
        with self._lock:
            while (member := self._pick(tried, last)) is None:
                self._lock.wait(timeout=1.0)
            return member

    async def _aacquire(self, tried: set[int], last: TranslateDirError | None) -> _Endpoint:
        """The least busy endpoint (``_pick``); the coroutine waits while all are busy."""
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                if self._freed is None or self._freed[0] is not loop:
                    self._freed = (loop, asyncio.Event())
                freed = self._freed[1]
                freed.clear()
                member = self._pick(tried, last)
            if member is not None:
                return member
            # Woken by a release, or after a second to see whether a cooldown ended.
            with suppress(TimeoutError):
                await asyncio.wait_for(freed.wait(), timeout=1.0)

    def _pick(self, tried: set[int], last: TranslateDirError | None) -> _Endpoint | None:
        """Under the lock: the least busy endpoint in rotation that this request has
        not tried, now taken (and marked tried); None while all of those are busy.
        Raises ``BackendUnavailable`` when none is left."""
        now = self._clock()
        usable = [
            m for m in self._members if m.started and m.down_until <= now and id(m) not in tried
        ]
        if not usable:
            raise BackendUnavailable(
                "every endpoint stopped answering or kept failing"
                + (f" (last: {last})" if last else "")
                + "; finished files and chunks are kept, run again when they are back"
            )
        free = [m for m in usable if m.in_flight < m.stats.slots]
        if not free:
            return None
        member = min(free, key=lambda m: m.in_flight / m.stats.slots)
        member.in_flight += 1
        tried.add(id(member))
        return member

    def _settle(self, member: _Endpoint, exc: BaseException) -> TranslateDirError:
        """After ``member`` failed with ``exc``: re-raise a failure about the request;
        return one that is the endpoint's fault (the request goes elsewhere)."""
        if isinstance(exc, ContextOverflow | OutputTruncated):
            # About this request, not the endpoint: the orchestrator splits it.
            self._release(member)
            raise exc
        if isinstance(exc, BackendUnavailable | TransientError):
            # The endpoint is down or keeps failing after its own retries.
            self._fail(member, exc)
            return exc
        # Any other failure is about this request (the piece is kept), or the run
        # was stopped (a cancelled coroutine, Ctrl-C).
        self._release(member)
        raise exc

    def _release(self, member: _Endpoint, result: Result | None = None) -> None:
        with self._lock:
            member.in_flight -= 1
            if result is not None:
                member.stats.requests += 1
                member.stats.prompt_tokens += result.prompt_tokens
                member.stats.output_tokens += result.output_tokens
                member.stats.seconds += result.seconds
            self._notify()

    def _fail(self, member: _Endpoint, exc: TranslateDirError) -> None:
        with self._lock:
            member.in_flight -= 1
            member.stats.failures += 1
            member.down_until = self._clock() + self._cooldown
            self._notify()
        self._events.message(
            f"{member.stats.endpoint}: out of rotation for {self._cooldown:.0f} s ({exc})"
        )

    def _notify(self) -> None:
        """Under the lock: an endpoint was freed; wake whoever waits for one."""
        self._lock.notify_all()
        if self._freed is not None:
            loop, freed = self._freed
            with suppress(RuntimeError):  # that loop is closed: nobody waits there
                loop.call_soon_threadsafe(freed.set)
