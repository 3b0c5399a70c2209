"""Scripted backends for tests and benchmarks (like ``click.testing``: shipped, not used
by the tool itself).

``ScriptedBackend`` satisfies ``pipeline.backends.base.Backend`` without a model: each
request is answered by ``reply(text)``, or by the next queued answer (a string, or an
exception to raise). Plug it in with ``Runner(..., backend_factory=backend.factory)``,
or monkeypatch ``pipeline.backends.create`` with ``backend.factory``.

The replies ``shout`` and ``to_zh`` change only words, so markup and ``⟦n⟧``
placeholders survive and the validators see a real translation, not an echo.
"""

from __future__ import annotations

import re
import threading
import time
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

__all__ = ["ScriptedBackend", "shout", "to_zh"]

# A word outside placeholders: ``⟦12⟧`` and identifiers glued to other word
# characters are left alone.
_WORD = re.compile(r"(?<![⟦\w])[A-Za-z][A-Za-z']*")

# Real backends round the context they allocate (Ollama num_ctx, llama.cpp n_ctx);
# the scripted one reports the same, so chunks come out as they would with a model.
_CONTEXT_STEP = 256


def shout(text: str) -> str:
    """A 'translation' that changes only words: upper-cases every word outside ⟦n⟧.

    Same length, same markup, same placeholders, and different enough from the
    source that the echo check lets it through (an unchanged echo is rightly
    rejected, and would measure the retry path instead of the pipeline)."""
    return _WORD.sub(lambda m: m.group(0).upper(), text)


# Common characters only, so the text reads like Chinese to every CJK check.
_HANZI = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着"
    "去之过家学对可她里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主"
    "行方又如前所本见经头面公同三已老从动两长"
)


def to_zh(text: str) -> str:
    """Every word becomes two CJK characters chosen by the word, so Chinese-target
    checks pass and the loop check sees varied text; markup and ⟦n⟧ markers stay.
    Deterministic across processes (no ``hash()``), so a test can recompute it."""

    def word(m: re.Match[str]) -> str:
        h = sum(ord(c) * (i + 1) for i, c in enumerate(m.group(0).lower()))
        return _HANZI[h % len(_HANZI)] + _HANZI[(h // 7) % len(_HANZI)]

    return _WORD.sub(word, text)


class ScriptedBackend:
    """Answers each request with the next queued answer, else ``reply(text)``.

    ``requests`` holds every request in arrival order (unless ``record=False``, for
    benchmarks that send many); ``count`` and ``seconds`` add up the requests and
    the time spent in ``reply``; ``started`` counts ``start()`` calls.
    """

    name = "scripted"

    def __init__(
        self,
        reply: Callable[[str], str] = shout,
        *,
        one_segment_per_request: bool = False,
        concurrency: int = 1,
        record: bool = True,
    ) -> None:
        self.reply = reply
        self.one = one_segment_per_request
        self.concurrency = concurrency
        self.record = record
        self.queue: deque[str | Exception] = deque()
        self.requests: list[Request] = []
        self.count = 0
        self.seconds = 0.0
        self.started = 0
        self.settings = BackendSettings()
        self._lock = threading.Lock()

    def enqueue(self, *answers: str | Exception) -> None:
        """Answer the next requests with these, in order (an exception is raised)."""
        with self._lock:
            self.queue.extend(answers)

    def factory(self, name: str, settings: BackendSettings, events: Events) -> ScriptedBackend:
        """A ``backend_factory`` for ``Runner`` / ``pipeline.backends.create``."""
        self.settings = settings
        return self

    def start(self) -> StartInfo:
        self.started += 1
        context = -(-self.settings.context_tokens // _CONTEXT_STEP) * _CONTEXT_STEP
        return StartInfo(
            backend=self.name,
            model="scripted",
            context_size=context,
            concurrency=self.concurrency,
            one_segment_per_request=self.one,
        )

    def translate(self, request: Request) -> Result:
        with self._lock:
            self.count += 1
            if self.record:
                self.requests.append(request)
            queued = self.queue.popleft() if self.queue else None
        if isinstance(queued, Exception):
            raise queued
        started = time.perf_counter()
        text = queued if queued is not None else self.reply(request.prompt.text)
        # A floor, so tokens per second stay finite however fast the reply is.
        seconds = max(time.perf_counter() - started, 1e-6)
        with self._lock:
            self.seconds += seconds
        prompt_tokens = estimate_tokens(request.prompt.text)
        return Result(text, "stop", prompt_tokens, estimate_tokens(text), seconds)

    def list_models(self) -> list[str]:
        return ["scripted"]

    def close(self) -> None:
        pass
