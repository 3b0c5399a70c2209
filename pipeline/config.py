"""pipeline.toml + command-line overrides -> one frozen ``Config``.

The packaged ``default_pipeline.toml`` is the schema: every key a user may set
appears there with its default and its type. Unknown keys are rejected by name,
with the file they came from. Two tables are open: ``[roles.NAME]`` (each with a
``system`` template) and ``[glossary.terms.LANG]`` (term = translation).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pipeline import languages
from pipeline.errors import ConfigError

CONFIG_NAME = "pipeline.toml"
BACKENDS = ("auto", "embedded", "ollama", "openai")
OPEN_TABLES = ("roles", "glossary.terms")


def default_text() -> str:
    """The commented default configuration (also what `translate-dir init` writes)."""
    return resources.files("pipeline").joinpath("default_pipeline.toml").read_text("utf-8")


DEFAULTS: dict[str, Any] = tomllib.loads(default_text())


@dataclass(frozen=True)
class Translate:
    """[translate]: what every request asks of the model."""

    source: str
    role: str
    chunk_tokens: int
    temperature: float
    top_p: float
    seed: int
    max_output_ratio: float
    previous_chunk_context: bool
    retries: int


@dataclass(frozen=True)
class Files:
    """[files]: which files are sources and where a mirror run writes."""

    include: tuple[str, ...]
    exclude: tuple[str, ...]
    out: str
    follow_symlinks: bool
    copy_assets: bool
    processes: int


@dataclass(frozen=True)
class BackendCommon:
    """[backend]: the settings every backend shares."""

    name: str
    model: str
    concurrency: int
    allow_remote: bool
    connect_timeout: float
    read_timeout: float
    request_retries: int


@dataclass(frozen=True)
class SiteSettings:
    """[site]: which site generator renders the documents, and what to keep working."""

    kind: str = "auto"
    anchors: str = "all"
    text_params: tuple[str, ...] = ("alt", "caption", "title")
    text_attributes: tuple[str, ...] = ("alt", "title")
    admonition_titles: bool = True
    link_translations: bool = True


SITE_KINDS = ("auto", "plain", "github", "docusaurus", "hugo", "jekyll", "mkdocs")
SITE_ANCHORS = ("all", "linked", "off")


@dataclass(frozen=True)
class Config:
    """The merged settings of one run, typed once here at the boundary.

    The core sections are frozen dataclasses; the per-backend sections stay
    read-only mappings, since each backend reads its own options.
    """

    translate: Translate
    files: Files
    front_matter_keys: tuple[str, ...]
    memory_path: str
    backend: BackendCommon
    embedded: MappingProxyType[str, Any]
    ollama: MappingProxyType[str, Any]
    openai: MappingProxyType[str, Any]
    roles: MappingProxyType[str, str]
    do_not_translate: tuple[str, ...]
    # lang -> ((term, translation), ...)
    glossary: MappingProxyType[str, tuple[tuple[str, str], ...]]
    path: Path | None = None
    site: SiteSettings = SiteSettings()

    def glossary_entries(self, lang: str) -> tuple[tuple[str, str], ...]:
        """The glossary for ``lang`` (pt-br), else for its base language (pt)."""
        return self.glossary.get(languages.normalise(lang)) or self.glossary.get(
            languages.base(lang), ()
        )

    def role_system(self, role: str) -> str:
        try:
            return self.roles[role]
        except KeyError:
            known = ", ".join(sorted(self.roles))
            raise ConfigError(f"unknown role {role!r}; roles in the config: {known}") from None


def find_config(explicit: Path | None, input_root: Path | None) -> Path | None:
    """--config FILE, else ./pipeline.toml, else pipeline.toml in the input folder."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"config file not found: {explicit}")
        return explicit
    for folder in (Path.cwd(), input_root):
        if folder is not None and (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    return None


def load(path: Path | None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Read ``path`` (or nothing), merge over the defaults, apply CLI overrides."""
    user: dict[str, Any] = {}
    if path is not None:
        try:
            user = tomllib.loads(path.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    where = str(path) if path else "the command line"
    merged = _merge(DEFAULTS, user, str(path), prefix="")
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is not None:
                merged[section] = {**merged[section], key: value}
    return _build(merged, where)


def _merge(
    defaults: dict[str, Any], user: dict[str, Any], where: str, prefix: str
) -> dict[str, Any]:
    out = dict(defaults)
    for key, value in user.items():
        dotted = f"{prefix}{key}"
        if dotted in OPEN_TABLES:
            # Open tables take any names, but must be tables (not "roles = 1").
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {dotted!r} must be a table")
            out[key] = value
            continue
        if key not in defaults:
            raise ConfigError(f"{where}: unknown key {dotted!r}")
        default = defaults[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {dotted!r} must be a table")
            out[key] = _merge(default, value, where, prefix=f"{dotted}.")
        else:
            out[key] = _check_type(dotted, default, value, where)
    return out


def _check_type(dotted: str, default: Any, value: Any, where: str) -> Any:
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        kind = type(default).__name__ if not isinstance(default, list) else "list of strings"
        raise ConfigError(f"{where}: {dotted!r} must be a {kind}, got {value!r}")
    return value


def _build(merged: dict[str, Any], where: str) -> Config:
    roles: dict[str, str] = {}
    for name, table in merged["roles"].items():
        if not isinstance(table, dict) or not isinstance(table.get("system"), str):
            raise ConfigError(f"{where}: role {name!r} needs a 'system' string")
        unknown = set(table) - {"system"}
        if unknown:
            raise ConfigError(f"{where}: unknown key 'roles.{name}.{sorted(unknown)[0]}'")
        roles[name] = table["system"]
    glossary: dict[str, tuple[tuple[str, str], ...]] = {}
    for lang, table in merged["glossary"].get("terms", {}).items():
        if not isinstance(table, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in table.items()
        ):
            raise ConfigError(f"{where}: glossary.terms.{lang} must map terms to strings")
        glossary[languages.normalise(lang)] = tuple(table.items())
    t = merged["translate"]
    if t["chunk_tokens"] < 16:
        raise ConfigError(f"{where}: translate.chunk_tokens must be at least 16")
    if merged["files"]["processes"] < 0:
        raise ConfigError(f"{where}: files.processes must be 0 (one per core) or more")
    if not languages.is_valid(t["source"]):
        raise ConfigError(f"{where}: translate.source {t['source']!r} is not a language code")
    if merged["backend"]["name"] not in BACKENDS:
        raise ConfigError(
            f"{where}: backend.name must be one of {', '.join(BACKENDS)}, "
            f"got {merged['backend']['name']!r}"
        )
    if t["role"] not in roles:
        raise ConfigError(
            f"{where}: unknown role {t['role']!r}; roles in the config: {', '.join(sorted(roles))}"
        )
    site = merged["site"]
    if site["kind"] not in SITE_KINDS:
        raise ConfigError(
            f"{where}: site.kind must be one of {', '.join(SITE_KINDS)}, got {site['kind']!r}"
        )
    if site["anchors"] not in SITE_ANCHORS:
        raise ConfigError(
            f"{where}: site.anchors must be one of {', '.join(SITE_ANCHORS)}, "
            f"got {site['anchors']!r}"
        )
    f = merged["files"]
    return Config(
        translate=Translate(**t),
        files=Files(
            include=tuple(f["include"]),
            exclude=tuple(f["exclude"]),
            out=f["out"],
            follow_symlinks=f["follow_symlinks"],
            copy_assets=f["copy_assets"],
            processes=f["processes"],
        ),
        front_matter_keys=tuple(merged["front_matter"]["translate"]),
        memory_path=merged["memory"]["path"],
        backend=BackendCommon(**merged["backend"]),
        embedded=MappingProxyType(merged["embedded"]),
        ollama=MappingProxyType(merged["ollama"]),
        openai=MappingProxyType(merged["openai"]),
        roles=MappingProxyType(roles),
        do_not_translate=tuple(merged["glossary"]["do_not_translate"]),
        glossary=MappingProxyType(glossary),
        path=None if where == "the command line" else Path(where),
        site=SiteSettings(
            kind=site["kind"],
            anchors=site["anchors"],
            text_params=tuple(site["text_params"]),
            text_attributes=tuple(site["text_attributes"]),
            admonition_titles=site["admonition_titles"],
            link_translations=site["link_translations"],
        ),
    )
