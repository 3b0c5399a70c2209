"""Backend registry: name -> class, imported lazily (llama_cpp is optional and slow)."""

from __future__ import annotations

import os
from importlib import import_module

from pipeline.backends.base import Backend, BackendSettings, Events, is_loopback

REGISTRY: dict[str, str] = {
    "embedded": "pipeline.backends.embedded:EmbeddedBackend",
    "ollama": "pipeline.backends.ollama:OllamaBackend",
    "openai": "pipeline.backends.openai:OpenAIBackend",
}


def create(name: str, settings: BackendSettings, events: Events) -> Backend:
    module_name, _, attr = REGISTRY[name].partition(":")
    cls = getattr(import_module(module_name), attr)
    backend: Backend = cls(settings, events)
    return backend


def resolve(name: str, options: dict[str, object], connect_timeout: float) -> str:
    """--backend auto: Ollama when it answers at its host, otherwise embedded."""
    if name != "auto":
        return name
    from pipeline.backends import ollama

    host = ollama.resolve_host(str(options.get("host") or "") or None, "", os.environ)
    if not is_loopback(host):
        # OLLAMA_HOST names another machine: never contact it just to find out.
        # The Ollama backend's privacy guard then asks for --allow-remote, rather
        # than a silent switch to the small embedded model.
        return "ollama"
    return "ollama" if ollama.probe(host, timeout=min(connect_timeout, 1.0)) else "embedded"


def default_model(name: str, config_model: str, ollama_model: str) -> str:
    """The model a backend uses when --model and backend.model are empty."""
    if config_model:
        return config_model
    if name == "ollama":
        return ollama_model
    if name == "embedded":
        from pipeline.backends.embedded import BUNDLED

        return BUNDLED
    return ""
