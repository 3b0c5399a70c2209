"""A scripted backend for unit tests: replies come from a function or a queue."""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable

from pipeline.backends.base import (
    BackendSettings,
    Events,
    Request,
    Result,
    StartInfo,
    estimate_tokens,
)
from pipeline.errors import RequestFailed

_WORD = re.compile(r"(?<![⟦\w])[A-Za-z][A-Za-z']*")


def shout(text: str) -> str:
    """A 'translation' that changes only words: upper-cases every word outside ⟦n⟧."""
    return _WORD.sub(lambda m: m.group(0).upper(), text)


def to_zh(text: str) -> str:
    """Replace words by a CJK character so script checks pass; markup stays."""
    return _WORD.sub("译", text)


class ScriptedBackend:
    """Answers each request with ``reply(text)`` or the next queued answer."""

    name = "scripted"

    def __init__(
        self,
        reply: Callable[[str], str] = shout,
        *,
        one_segment_per_request: bool = False,
        concurrency: int = 1,
    ) -> None:
        self.reply = reply
        self.queue: deque[str | Exception] = deque()
        self.requests: list[Request] = []
        self.started = 0
        self.one = one_segment_per_request
        self.concurrency = concurrency
        self._lock = threading.Lock()

    def enqueue(self, *answers: str | Exception) -> None:
        self.queue.extend(answers)

    def factory(self, name: str, settings: BackendSettings, events: Events) -> ScriptedBackend:
        self.settings = settings
        return self

    def start(self) -> StartInfo:
        self.started += 1
        return StartInfo(
            backend=self.name,
            model="scripted",
            context_size=8192,
            concurrency=self.concurrency,
            one_segment_per_request=self.one,
        )

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def translate(self, request: Request) -> Result:
        with self._lock:
            self.requests.append(request)
            queued = self.queue.popleft() if self.queue else None
        if isinstance(queued, Exception):
            raise queued
        text = queued if queued is not None else self.reply(request.prompt.text)
        return Result(
            text, "stop", estimate_tokens(request.prompt.text), estimate_tokens(text), 0.001
        )

    def list_models(self) -> list[str]:
        return ["scripted"]

    def close(self) -> None:
        pass


__all__ = ["RequestFailed", "ScriptedBackend", "shout", "to_zh"]
