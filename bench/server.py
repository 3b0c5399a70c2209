"""A local stand-in for a model server: a fixed delay, N slots, two wire formats.

Standard library only (``asyncio`` streams), so benchmarks need no test
dependencies, and all of it runs on ONE thread, however many connections are
open: a benchmark that counts its process's threads counts the client's, not
the server's. It speaks what the backends use:

- Ollama's native API: ``/api/show``, ``/api/chat`` (NDJSON stream or one JSON
  object; an empty message list only "loads"), ``/api/version``, ``/api/tags``
  and ``/``;
- the OpenAI API: ``/v1/models`` and ``/v1/chat/completions`` (server-sent
  events or one JSON object), and llama.cpp's ``/props`` with its slots.

Each translation request takes a slot for ``delay`` seconds, so with ``slots``
slots at most that many answers are computed at once and the rest queue, like
``OLLAMA_NUM_PARALLEL`` or llama-server's ``--parallel``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit

from pipeline.backends.base import estimate_tokens

CREATED_AT = "2025-05-01T10:00:00.000000Z"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}
# Connections waiting to be accepted: a run opens one per slot at once.
_BACKLOG = 2048


class FakeOllama:
    """Counters and behaviour of the server; read them after a run. (It speaks the
    OpenAI API too, at ``openai_url``.)"""

    def __init__(
        self,
        translate: Callable[[str], str],
        *,
        delay: float = 0.0,
        slots: int = 1,
        model: str = "bench-model",
        context_length: int = 32768,
    ) -> None:
        self.translate = translate
        self.delay = delay
        self.model = model
        self.context_length = context_length
        self.slot_count = max(1, slots)
        self.chats = 0  # translation requests (with messages)
        self.loads = 0  # warm-up requests (empty message list)
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0  # open now
        self.max_connections = 0
        self.texts: list[str] = []  # the last user message of every translation request
        self.url = ""
        # Called (on the server's thread) each time a request starts being served,
        # with the number in flight: a test can look at the client right then.
        self.on_request: Callable[[int], None] | None = None
        # Hold every translation request until this many are in flight at once (or
        # ``hold_limit`` seconds pass): proof that a client really overlaps them.
        self.hold_until = 0
        self.hold_limit = 30.0
        self._slots: asyncio.Semaphore | None = None
        self._gathered: asyncio.Event | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def reset(self) -> None:
        self.chats = self.loads = self.max_in_flight = self.max_connections = 0
        self.texts = []

    # -- answers ------------------------------------------------------------------

    def show(self) -> dict[str, Any]:
        return {
            "license": "",
            "modelfile": f"FROM {self.model}\n",
            "parameters": "",
            "template": "{{ .System }}{{ .Prompt }}",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "bench",
                "families": ["bench"],
                "parameter_size": "1B",
                "quantization_level": "Q4_K_M",
            },
            "model_info": {
                "general.architecture": "bench",
                "bench.context_length": self.context_length,
            },
            "capabilities": ["completion"],
            "modified_at": CREATED_AT,
        }

    async def answer(self, messages: list[dict[str, str]]) -> tuple[str, int, int]:
        """(answer, prompt tokens, answer tokens) after a slot's ``delay``."""
        text = next(m.get("content", "") for m in reversed(messages) if m.get("role") == "user")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.slot_count)
        async with self._slots:
            self.chats += 1
            self.texts.append(text)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.on_request is not None:
                    self.on_request(self.in_flight)
                if self.hold_until:
                    await self._hold()
                if self.delay:
                    await asyncio.sleep(self.delay)  # the "model" at work: a fixed service time
                answer = self.translate(text)
            finally:
                self.in_flight -= 1
        prompt_tokens = sum(estimate_tokens(m.get("content", "")) + 4 for m in messages)
        return answer, prompt_tokens, estimate_tokens(answer)

    async def _hold(self) -> None:
        if self._gathered is None:
            self._gathered = asyncio.Event()
        if self.in_flight >= self.hold_until:
            self._gathered.set()
        with suppress(TimeoutError):
            await asyncio.wait_for(self._gathered.wait(), self.hold_limit)

    async def ollama_chat(self, body: dict[str, Any]) -> tuple[bytes, str]:
        messages: list[dict[str, str]] = body.get("messages") or []
        head = {"model": self.model, "created_at": CREATED_AT}
        if not messages:
            self.loads += 1
            message = {"role": "assistant", "content": ""}
            return _json({**head, "message": message, "done": True, "done_reason": "load"})
        answer, prompt_tokens, answer_tokens = await self.answer(messages)
        num_ctx = int((body.get("options") or {}).get("num_ctx") or 4096)
        final = {
            **head,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": int(self.delay * 1e9),
            "prompt_eval_count": min(prompt_tokens, num_ctx - 1),
            "eval_count": answer_tokens,
        }
        if body.get("stream") is False:
            final["message"] = {"role": "assistant", "content": answer}
            return _json(final)
        first = {**head, "message": {"role": "assistant", "content": answer}, "done": False}
        lines = json.dumps(first) + "\n" + json.dumps(final) + "\n"
        return lines.encode(), "application/x-ndjson"

    async def openai_chat(self, body: dict[str, Any]) -> tuple[bytes, str]:
        answer, prompt_tokens, answer_tokens = await self.answer(body.get("messages") or [])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": answer_tokens}
        if not body.get("stream"):
            message = {"role": "assistant", "content": answer}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return _json({"model": self.model, "choices": [choice], "usage": usage})
        events = [
            {"choices": [{"index": 0, "delta": {"content": answer}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {"choices": [], "usage": usage},
        ]
        text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return text.encode(), "text/event-stream"

    async def route(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, bytes, str]:
        if method == "GET":
            if path == "/api/version":
                return 200, *_json({"version": "0.6.8"})
            if path == "/api/tags":
                return 200, *_json({"models": [{"name": self.model, "model": self.model}]})
            if path == "/v1/models":
                entry = {"id": self.model, "object": "model", "max_model_len": self.context_length}
                return 200, *_json({"object": "list", "data": [entry]})
            if path == "/props":
                settings = {"n_ctx": self.context_length}
                props = {"total_slots": self.slot_count, "default_generation_settings": settings}
                return 200, *_json(props)
            if path == "/":
                return 200, b"Ollama is running", "text/plain"
        elif path == "/api/show":
            name = body.get("model") or body.get("name")
            if name != self.model:
                return 404, *_json({"error": f"model '{name}' not found"})
            return 200, *_json(self.show())
        elif path == "/api/chat":
            return 200, *await self.ollama_chat(body)
        elif path == "/v1/chat/completions":
            return 200, *await self.openai_chat(body)
        return 404, *_json({"error": "not found"})

    async def close_connections(self) -> None:
        """End every connection still open (idle keep-alive ones, mostly)."""
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One keep-alive connection: request after request until the client closes."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.connections += 1
        self.max_connections = max(self.max_connections, self.connections)
        try:
            while (request := await _read_request(reader)) is not None:
                method, target, body = request
                status, data, kind = await self.route(method, urlsplit(target).path, body)
                head = (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                    f"Content-Type: {kind}\r\nContent-Length: {len(data)}\r\n\r\n"
                )
                writer.write(head.encode() + data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass  # the client went away, or sent something that is not HTTP/1.1
        finally:
            self._handlers.discard(task)
            self.connections -= 1
            writer.close()
            with suppress(ConnectionError):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, Any]] | None:
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    length = 0
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    raw = await reader.readexactly(length) if length else b""
    data = json.loads(raw) if raw else {}
    return method, target, data if isinstance(data, dict) else {}


def _json(obj: dict[str, Any]) -> tuple[bytes, str]:
    return json.dumps(obj).encode(), "application/json"


@contextmanager
def serve(
    translate: Callable[[str], str], *, delay: float = 0.0, slots: int = 1
) -> Iterator[FakeOllama]:
    """The fake server on 127.0.0.1 (a free port), on one thread of its own, for
    the ``with`` block."""
    state = FakeOllama(translate, delay=delay, slots=slots)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def main() -> None:
        nonlocal stop
        stop = loop.create_future()
        server = await asyncio.start_server(
            state.connection, "127.0.0.1", 0, backlog=_BACKLOG, reuse_address=True
        )
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        ready.set()
        await stop
        server.close()
        await state.close_connections()
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.name = "fake-server"
    thread.start()
    deadline = time.monotonic() + 10
    while not ready.wait(0.05):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake server did not start")
    try:
        yield state
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set_result, None)
        thread.join(10)
        loop.close()
