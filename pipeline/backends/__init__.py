"""Backend registry: name -> class, imported lazily (llama_cpp is optional and slow)."""

from __future__ import annotations

from importlib import import_module

from pipeline.backends.base import Backend, BackendSettings, Events

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
