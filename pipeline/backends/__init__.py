"""Backend registry: name -> class, imported lazily (llama_cpp is optional and slow)."""

from __future__ import annotations

import os
from importlib import import_module

from pipeline.backends.base import Backend, BackendSettings, Events, is_loopback
from pipeline.errors import ConfigError

REGISTRY: dict[str, str] = {
    "embedded": "pipeline.backends.embedded:EmbeddedBackend",
    "ollama": "pipeline.backends.ollama:OllamaBackend",
    "openai": "pipeline.backends.openai:OpenAIBackend",
}


# The option that names one endpoint, per backend: repeated, it makes a pool.
ENDPOINT_OPTION = {"ollama": "host", "openai": "base_url"}


def create(name: str, settings: BackendSettings, events: Events) -> Backend:
    """The backend ``name``; several endpoints (``options["endpoints"]``) become
    one ``Pool`` that spreads requests over them and fails over."""
    module_name, _, attr = REGISTRY[name].partition(":")
    cls = getattr(import_module(module_name), attr)
    endpoints = [str(e) for e in settings.options.get("endpoints") or []]
    if len(endpoints) <= 1:
        backend: Backend = cls(settings, events)
        return backend
    from dataclasses import replace

    from pipeline.backends.pool import Pool

    key = ENDPOINT_OPTION[name]
    members = []
    for endpoint in endpoints:
        # http://gpu1:8000/v1#slots=4: a fragment is never sent to a server, so it
        # carries this endpoint's slot count where the server does not report one.
        url, _, fragment = endpoint.partition("#")
        slots = fragment.removeprefix("slots=")
        if fragment and not (fragment.startswith("slots=") and slots.isdigit()):
            raise ConfigError(f"{endpoint}: write an endpoint's slots as URL#slots=N")
        member = replace(
            settings,
            concurrency=int(slots) if fragment else 0,
            options={**settings.options, key: url},
        )
        members.append((url, cls(member, events)))
    return Pool(members, events)


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
