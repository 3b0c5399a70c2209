"""Backends for benchmarks: the scripted one (no model, from ``pipeline.testing``)
and a recorder around a real one.

Both satisfy ``pipeline.backends.base.Backend`` and plug into ``Runner`` through
``backend_factory=backend.factory``.
"""

from __future__ import annotations

import threading

from pipeline.backends import create
from pipeline.backends.base import (
    Backend,
    BackendSettings,
    Events,
    Request,
    Result,
    StartInfo,
    async_side,
)
from pipeline.testing import ScriptedBackend, shout, to_zh

__all__ = ["Recorder", "ScriptedBackend", "shout", "to_zh"]


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

    def translate(self, request: Request) -> Result:
        return self._record(request, self._backend().translate(request))

    async def atranslate(self, request: Request) -> Result:
        inner = async_side(self._backend())
        if inner is None:
            raise RuntimeError("the recorded backend has no async side")
        return self._record(request, await inner.atranslate(request))

    def supports_async(self) -> bool:
        """Awaited when the recorded backend can be (see ``base.async_side``)."""
        return async_side(self._backend()) is not None

    def _record(self, request: Request, result: Result) -> Result:
        with self._lock:
            self.requests.append(request)
            self.results.append(result)
        return result

    def list_models(self) -> list[str]:
        return self._backend().list_models()

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    async def aclose(self) -> None:
        inner = async_side(self._backend())
        if inner is not None:
            await inner.aclose()
