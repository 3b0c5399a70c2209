"""Several endpoints of one backend kind, serving one model, as one ``Backend``.

Each request goes to the least busy endpoint (requests in flight over its
slots). An endpoint that stops answering, or keeps failing after its own
retries, is taken out of rotation for ``cooldown`` seconds and the request
goes to another one: nothing is lost and nothing is asked twice, since a
failed request produced no answer. A failure about the request itself (a
prompt too long, an answer refused) is not the endpoint's fault and goes back
to the orchestrator as it is. Only when every endpoint is out does the
run stop (``BackendUnavailable``, exit 3, finished work kept).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.backends.base import Backend, Events, Request, Result, StartInfo
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
        self._members = [_Endpoint(b, EndpointStats(label)) for label, b in members]
        self.name = self._members[0].backend.name
        self._events = events
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Condition()

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
            member = self._acquire(tried)
            if member is None:
                raise BackendUnavailable(
                    "every endpoint stopped answering or kept failing"
                    + (f" (last: {last})" if last else "")
                    + "; finished files and chunks are kept, run again when they are back"
                )
            tried.add(id(member))
            try:
                result = member.backend.translate(request)
            except (ContextOverflow, OutputTruncated):
                # About this request, not the endpoint: the orchestrator splits it.
                self._release(member)
                raise
            except (BackendUnavailable, TransientError) as exc:
                # The endpoint is down or keeps failing after its own retries.
                last = exc
                self._fail(member, exc)
                continue
            except BaseException:
                # Any other failure is about this request (the piece is kept).
                self._release(member)
                raise
            self._release(member, result)
            return result

    def list_models(self) -> list[str]:
        return self._members[0].backend.list_models()

    def close(self) -> None:
        for member in self._members:
            member.backend.close()

    def endpoint_stats(self) -> list[EndpointStats]:
        return [m.stats for m in self._members]

    # -- routing ----------------------------------------------------------------

    def _acquire(self, tried: set[int]) -> _Endpoint | None:
        """The least busy endpoint in rotation that this request has not tried;
        waits while all of those are busy. None when none is left."""
        with self._lock:
            while True:
                now = self._clock()
                usable = [
                    m
                    for m in self._members
                    if m.started and m.down_until <= now and id(m) not in tried
                ]
                if not usable:
                    return None
                free = [m for m in usable if m.in_flight < m.stats.slots]
                if free:
                    member = min(free, key=lambda m: m.in_flight / m.stats.slots)
                    member.in_flight += 1
                    return member
                self._lock.wait(timeout=1.0)

    def _release(self, member: _Endpoint, result: Result | None = None) -> None:
        with self._lock:
            member.in_flight -= 1
            if result is not None:
                member.stats.requests += 1
                member.stats.prompt_tokens += result.prompt_tokens
                member.stats.output_tokens += result.output_tokens
                member.stats.seconds += result.seconds
            self._lock.notify_all()

    def _fail(self, member: _Endpoint, exc: TranslateDirError) -> None:
        with self._lock:
            member.in_flight -= 1
            member.stats.failures += 1
            member.down_until = self._clock() + self._cooldown
            self._lock.notify_all()
        self._events.message(
            f"{member.stats.endpoint}: out of rotation for {self._cooldown:.0f} s ({exc})"
        )
