"""Backends for benchmarks: a scripted one (no model) and a recorder around a real one.

Both satisfy ``pipeline.backends.base.Backend`` and plug into ``Runner`` through
``backend_factory=backend.factory``.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable

from pipeline.backends import create
from pipeline.backends.base import (
    Backend,
    BackendSettings,
    Events,
    Request,
    Result,
    StartInfo,
    estimate_tokens,
)

_WORD = re.compile(r"(?<![⟦\w])[A-Za-z][A-Za-z']*")
_CONTEXT_STEP = 256


def shout(text: str) -> str:
    """A 'translation' that changes only words: upper-cases every word outside ⟦n⟧.

    Same length, same markup, same placeholders, and different enough from the
    source that the echo check lets it through (an unchanged echo is rightly
    rejected, and would measure the retry path instead of the pipeline)."""
    return _WORD.sub(lambda m: m.group(0).upper(), text)


def _hanzi(word: str) -> str:
    # Two CJK characters chosen by the word, so different words read differently
    # and the loop check sees language, not "译译译".
    h = zlib.crc32(word.lower().encode())
    return chr(0x4E00 + h % 0x4000) + chr(0x4E00 + (h >> 14) % 0x4000)


def to_zh(text: str) -> str:
    """Every word becomes two CJK characters, so Chinese-target checks pass; markup stays."""
    return _WORD.sub(lambda m: _hanzi(m.group(0)), text)


class ScriptedBackend:
    """Answers every request with ``reply(text)`` at once and records what it was sent."""

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
        self.requests: list[Request] = []
        self.count = 0
        self.seconds = 0.0
        self.settings = BackendSettings()
        self._lock = threading.Lock()

    def factory(self, name: str, settings: BackendSettings, events: Events) -> ScriptedBackend:
        self.settings = settings
        return self

    def start(self) -> StartInfo:
        # The context a real backend would size from the request (rounded like
        # Ollama's num_ctx and the embedded n_ctx), so chunks come out the same.
        context = -(-self.settings.context_tokens // _CONTEXT_STEP) * _CONTEXT_STEP
        return StartInfo(
            backend=self.name,
            model="scripted",
            context_size=context,
            concurrency=self.concurrency,
            one_segment_per_request=self.one,
        )

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def translate(self, request: Request) -> Result:
        started = time.perf_counter()
        text = self.reply(request.prompt.text)
        seconds = time.perf_counter() - started
        with self._lock:
            self.count += 1
            self.seconds += seconds
            if self.record:
                self.requests.append(request)
        return Result(
            text, "stop", estimate_tokens(request.prompt.text), estimate_tokens(text), seconds
        )

    def list_models(self) -> list[str]:
        return ["scripted"]

    def close(self) -> None:
        pass


class Recorder:
    """A real backend (from the registry) with every request and result recorded."""

    def __init__(self) -> None:
        self.inner: Backend | None = None
        self.name = ""
        self.requests: list[Request] = []
        self.results: list[Result] = []
        self.info: StartInfo | None = None
        self._lock = threading.Lock()

    def factory(self, name: str, settings: BackendSettings, events: Events) -> Recorder:
        self.inner = create(name, settings, events)
        self.name = self.inner.name
        return self

    def _backend(self) -> Backend:
        if self.inner is None:
            raise RuntimeError("Recorder.factory() was not called")
        return self.inner

    def start(self) -> StartInfo:
        self.info = self._backend().start()
        return self.info

    def count_tokens(self, text: str) -> int:
        return self._backend().count_tokens(text)

    def translate(self, request: Request) -> Result:
        result = self._backend().translate(request)
        with self._lock:
            self.requests.append(request)
            self.results.append(result)
        return result

    def list_models(self) -> list[str]:
        return self._backend().list_models()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
