"""Command-line values + config -> the ``RunOptions`` of one run.

The one place that decides which inputs, which languages, which backend
(``--backend auto``), which model and which memory a run uses, and how a
backend's settings are assembled. The CLI, the ``models`` command and
``bench/`` all come through here; nothing here imports click.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import backends, config, languages, memory
from pipeline.backends.base import BackendSettings
from pipeline.errors import BackendUnavailable, UsageError
from pipeline.flags import Flag

# Tokens reserved per request for the system prompt, few-shot pairs, glossary
# and chat template around the chunk.
PROMPT_OVERHEAD = 400


@dataclass(frozen=True)
class RunOptions:
    root: Path
    targets: tuple[str, ...]
    source: str
    backend: str  # resolved name: embedded | ollama | openai (not auto)
    model: str
    memory_path: Path
    files: tuple[Path, ...] | None = None  # explicit files (pre-commit), under root
    out: Path | None = None  # None: from config files.out / the layout's default
    layout: str = "mirror"
    role: str = "translator"
    force: bool = False
    retry_kept: bool = False
    check: bool = False
    prune: bool = False
    overwrite_edited: bool = False
    wait: bool = False
    concurrency: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)
    # From the review page: pieces to ask again (the memory bypassed, the note
    # sent as guidance), and pieces to record as reviewed.
    retranslate: tuple[Flag, ...] = ()
    accept: tuple[Flag, ...] = ()


@dataclass(frozen=True)
class Connection:
    """The command line's say on how to reach the backend (None: not given)."""

    hosts: tuple[str, ...] = ()  # --host, repeatable: several Ollama servers
    base_urls: tuple[str, ...] = ()  # --base-url, repeatable
    preset: str | None = None
    api_key: str | None = None
    pull: bool = False


def locate_inputs(
    inputs: tuple[Path, ...], root: Path | None
) -> tuple[Path, tuple[Path, ...] | None]:
    """INPUT_DIR, or FILES under --root (default: the current folder) ->
    (root, files or None for the whole folder)."""
    if len(inputs) == 1 and inputs[0].is_dir() and root is None:
        return inputs[0], None
    for p in inputs:
        if p.is_dir():
            raise UsageError(f"{p} is a folder; give one folder, or files with --root")
        if not p.exists():
            raise UsageError(f"{p} does not exist")
    root = root or Path.cwd()
    if not root.is_dir():
        raise UsageError(f"input folder {root} does not exist")
    return root, inputs


def parse_targets(values: tuple[str, ...], source: str) -> tuple[str, ...]:
    """--to zh --to ja, or --to zh,ja -> ("zh", "ja"); never the source language."""
    out: list[str] = []
    for value in values:
        for code in value.split(","):
            code = languages.normalise(code)
            if not code:
                continue
            if not languages.is_valid(code):
                raise UsageError(f"--to: {code!r} is not a language code (e.g. zh, ja, de, pt-br)")
            if code == source:
                raise UsageError(
                    f"--to {code} is the source language; pass another --to, "
                    f"or --from to name the documents' language"
                )
            if code not in out:
                out.append(code)
    if not out:
        raise UsageError("--to: give at least one language")
    return tuple(out)


def memory_path(cfg: config.Config) -> Path:
    """memory.path from the config, else the user cache."""
    if cfg.memory_path:
        return Path(cfg.memory_path).expanduser()
    return memory.default_path(os.environ)


def backend_options(cfg: config.Config, name: str, conn: Connection) -> dict[str, Any]:
    """The backend's own config section with the command line's values over it."""
    if name == "openai":
        options = dict(cfg.openai)
        for key in ("preset", "api_key"):
            value = getattr(conn, key)
            if value:
                options[key] = value
        return _endpoints(options, "base_url", conn.base_urls or tuple(cfg.openai["base_urls"]))
    if name == "embedded":
        return dict(cfg.embedded)
    options = dict(cfg.ollama)
    options["pull"] = conn.pull
    return _endpoints(options, "host", conn.hosts or tuple(cfg.ollama["hosts"]))


def _endpoints(options: dict[str, Any], key: str, given: tuple[str, ...]) -> dict[str, Any]:
    """One endpoint sets ``key``; several also set ``endpoints`` (a pool)."""
    if given:
        options[key] = given[0].partition("#")[0]
    if len(given) > 1:
        options["endpoints"] = list(given)
    return options


def resolve_backend(cfg: config.Config, conn: Connection) -> tuple[str, str, dict[str, Any]]:
    """(backend name, model, its options). ``auto`` is Ollama when it answers at its
    host, else the embedded model; an Ollama tag then cannot be served, and saying
    "model file not found" would send the user looking for a file."""
    name = cfg.backend.name
    resolved = backends.resolve(name, backend_options(cfg, name, conn), cfg.backend.connect_timeout)
    model = backends.default_model(resolved, cfg.backend.model, str(cfg.ollama["model"]))
    if name == "auto" and resolved == "embedded" and looks_like_ollama_tag(model):
        host = str(backend_options(cfg, "ollama", conn).get("host") or "") or os.environ.get(
            "OLLAMA_HOST", "127.0.0.1:11434"
        )
        raise BackendUnavailable(
            f"{model!r} looks like an Ollama model tag, but Ollama is not answering at "
            f"{host}: start it with `ollama serve` (or pass --backend embedded with a "
            ".gguf file)"
        )
    return resolved, model, backend_options(cfg, resolved, conn)


def looks_like_ollama_tag(model: str) -> bool:
    """qwen2.5:7b, llama3 - not a .gguf path nor a bundled model name."""
    from pipeline.backends.embedded import bundled_models

    if not model or model in bundled_models() or model.lower().endswith(".gguf"):
        return False
    return not Path(model).expanduser().exists() and "/" not in model


def context_tokens(t: config.Translate) -> int:
    """Tokens one request needs: prompt overhead, a full chunk, its answer bound."""
    return PROMPT_OVERHEAD + int(t.chunk_tokens * (1 + t.max_output_ratio)) + 64


def backend_settings(
    cfg: config.Config,
    model: str,
    options: dict[str, Any],
    *,
    concurrency: int = 0,
) -> BackendSettings:
    """The one assembly of a backend's settings (runs, ``models``, benchmarks)."""
    b = cfg.backend
    return BackendSettings(
        model=model,
        context_tokens=context_tokens(cfg.translate),
        connect_timeout=b.connect_timeout,
        read_timeout=b.read_timeout,
        request_retries=b.request_retries,
        allow_remote=b.allow_remote,
        concurrency=concurrency,
        options=dict(options),
    )


def run_options(
    cfg: config.Config,
    *,
    root: Path,
    files: tuple[Path, ...] | None,
    targets: tuple[str, ...],
    conn: Connection,
    out: Path | None = None,
    layout: str = "mirror",
    force: bool = False,
    retry_kept: bool = False,
    check: bool = False,
    prune: bool = False,
    overwrite_edited: bool = False,
    wait: bool = False,
    concurrency: int | None = None,
    retranslate: tuple[Flag, ...] = (),
    accept: tuple[Flag, ...] = (),
) -> RunOptions:
    """Everything one run needs to know, decided once. ``--check`` contacts no
    backend, so it does not resolve ``auto``."""
    source = languages.normalise(cfg.translate.source)
    langs = parse_targets(targets, source)
    for flag in (*retranslate, *accept):
        if flag.lang not in langs:
            raise UsageError(
                f"the flags file names a piece of {flag.source} in {flag.lang!r}, but this "
                f"run translates into {', '.join(langs)}; add --to {flag.lang}"
            )
    if check:
        name = cfg.backend.name
        model = backends.default_model(name, cfg.backend.model, str(cfg.ollama["model"]))
        options: dict[str, Any] = {}
    else:
        name, model, options = resolve_backend(cfg, conn)
    return RunOptions(
        root=root,
        targets=langs,
        source=source,
        backend=name,
        model=model,
        memory_path=memory_path(cfg),
        files=files,
        out=out,
        layout=layout,
        role=cfg.translate.role,
        force=force,
        retry_kept=retry_kept,
        check=check,
        prune=prune,
        overwrite_edited=overwrite_edited,
        wait=wait,
        concurrency=concurrency or cfg.backend.concurrency,
        backend_options=options,
        retranslate=retranslate,
        accept=accept,
    )
