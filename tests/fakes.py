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


_HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着"
    "去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主"
    "行方又如前所本见经头面公同三已老从动两长"
)


def to_zh(text: str) -> str:
    """Replace each word by two CJK characters chosen by the word, so script and
    loop checks see varied CJK text; markup and ⟦n⟧ markers stay."""

    def word(m: re.Match[str]) -> str:
        h = sum(ord(c) * (i + 1) for i, c in enumerate(m.group(0).lower()))
        return _HANZI[h % len(_HANZI)] + _HANZI[(h // 7) % len(_HANZI)]

    return _WORD.sub(word, text)


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
