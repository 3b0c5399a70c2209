"""A local stand-in for Ollama: the native wire format, a fixed delay, N slots.

Standard library only (``http.server``), so benchmarks need no test
dependencies. It serves what ``OllamaBackend`` uses: ``/api/show``,
``/api/chat`` (NDJSON stream or one JSON object; an empty message list only
"loads"), ``/api/version``, ``/api/tags`` and ``/``. Each translation request
takes a slot for ``delay`` seconds, so with ``slots`` slots at most that many
answers are computed at once and the rest queue, like ``OLLAMA_NUM_PARALLEL``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pipeline.backends.base import estimate_tokens

CREATED_AT = "2025-05-01T10:00:00.000000Z"


class FakeOllama:
    """Counters and behaviour of the server; read them after a run."""

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
        self.slots = threading.BoundedSemaphore(max(1, slots))
        self.lock = threading.Lock()
        self.chats = 0  # translation requests (with messages)
        self.loads = 0  # warm-up requests (empty message list)
        self.in_flight = 0
        self.max_in_flight = 0
        self.texts: list[str] = []  # the last user message of every translation request
        self.url = ""

    def reset(self) -> None:
        with self.lock:
            self.chats = self.loads = self.max_in_flight = 0
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

    def chat(self, body: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        """(final event, answer text); None for a load-only request."""
        messages: list[dict[str, str]] = body.get("messages") or []
        if not messages:
            with self.lock:
                self.loads += 1
            return None
        text = next(m.get("content", "") for m in reversed(messages) if m.get("role") == "user")
        with self.slots:
            with self.lock:
                self.chats += 1
                self.texts.append(text)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                if self.delay:
                    time.sleep(self.delay)  # the "model" at work: a fixed service time
                answer = self.translate(text)
            finally:
                with self.lock:
                    self.in_flight -= 1
        num_ctx = int((body.get("options") or {}).get("num_ctx") or 4096)
        prompt_tokens = sum(estimate_tokens(m.get("content", "")) + 4 for m in messages)
        final = {
            "model": self.model,
            "created_at": CREATED_AT,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": int(self.delay * 1e9),
            "prompt_eval_count": min(prompt_tokens, num_ctx - 1),
            "eval_count": estimate_tokens(answer),
        }
        return final, answer


def _handler(state: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real server
        # Headers and body go out in separate writes: without TCP_NODELAY (which
        # Go's servers set) Nagle + delayed ACK add 40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, mimetype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", mimetype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, obj: dict[str, Any], status: int = 200) -> None:
            self._send(status, json.dumps(obj).encode(), "application/json")

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            data = json.loads(raw) if raw else {}
            return data if isinstance(data, dict) else {}

        def do_GET(self) -> None:
            if self.path == "/api/version":
                self._json({"version": "0.6.8"})
            elif self.path == "/api/tags":
                self._json({"models": [{"name": state.model, "model": state.model}]})
            else:
                self._send(200, b"Ollama is running", "text/plain")

        def do_POST(self) -> None:
            body = self._body()
            if self.path == "/api/show":
                name = body.get("model") or body.get("name")
                if name != state.model:
                    self._json({"error": f"model '{name}' not found"}, 404)
                else:
                    self._json(state.show())
            elif self.path == "/api/chat":
                answered = state.chat(body)
                if answered is None:
                    head = {"model": state.model, "created_at": CREATED_AT}
                    message = {"role": "assistant", "content": ""}
                    self._json({**head, "message": message, "done": True, "done_reason": "load"})
                    return
                final, answer = answered
                if body.get("stream") is False:
                    final["message"] = {"role": "assistant", "content": answer}
                    self._json(final)
                    return
                first = {
                    "model": state.model,
                    "created_at": CREATED_AT,
                    "message": {"role": "assistant", "content": answer},
                    "done": False,
                }
                lines = json.dumps(first) + "\n" + json.dumps(final) + "\n"
                self._send(200, lines.encode(), "application/x-ndjson")
            else:
                self._json({"error": "not found"}, 404)

    return Handler


@contextmanager
def serve(
    translate: Callable[[str], str], *, delay: float = 0.0, slots: int = 1
) -> Iterator[FakeOllama]:
    """A threaded fake Ollama on 127.0.0.1 (a free port) for the ``with`` block."""
    state = FakeOllama(translate, delay=delay, slots=slots)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fake-ollama", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
