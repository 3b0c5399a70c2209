"""The command line: options in, one call to the core, one line per problem out.

Exit codes: 0 all went well; 1 some file failed (the others are written), or
--check found missing/stale outputs; 2 usage or config error; 3 the backend is
unavailable; 4 another run holds the lock; 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import click

from pipeline import __version__, config, languages
from pipeline.errors import TranslateDirError
from pipeline.run import Runner, RunOptions, RunReport

LAYOUTS = ("mirror", "suffix", "hugo-dir", "docusaurus")


class DefaultGroup(click.Group):
    """`translate-dir PATH ...` runs `translate`; `translate-dir models` etc. are subcommands."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["translate", *args]
        elif not args:
            args = ["translate", "--help"]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="translate-dir")
def main() -> None:
    """Translate folders of Markdown and text documents with a local LLM.

    \b
    translate-dir input/ --to zh          translate input/ into output/zh/
    translate-dir models                  list the models the backend offers
    translate-dir cache stats             translation-memory statistics
    translate-dir init                    write a commented pipeline.toml
    """


# ------------------------------------------------------------------ shared option groups


def backend_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--backend",
                type=click.Choice(config.BACKENDS),
                help="auto (default): Ollama when it answers, else the embedded model.",
            ),
            click.option("--model", help="Ollama tag, OpenAI model id, or a .gguf path."),
            click.option("--host", help="Ollama server (default $OLLAMA_HOST or 127.0.0.1:11434)."),
            click.option(
                "--base-url", help="OpenAI-compatible server URL, e.g. http://127.0.0.1:8080/v1."
            ),
            click.option(
                "--preset",
                type=click.Choice(["lmstudio", "llamafile", "llama-server", "vllm"]),
                help="OpenAI-compatible server preset (sets the default --base-url).",
            ),
            click.option(
                "--api-key",
                help="API key for the OpenAI-compatible server (or $TRANSLATE_DIR_API_KEY).",
            ),
            click.option(
                "--allow-remote",
                is_flag=True,
                default=None,
                help="Allow a backend that is not on this machine.",
            ),
            click.option(
                "--config",
                "config_path",
                type=click.Path(path_type=Path),
                help="pipeline.toml to use.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


# ------------------------------------------------------------------ translate


@main.command("translate")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--to", "targets", multiple=True, required=True, help="Target language (repeat, or zh,ja)."
)
@click.option("--from", "source", help="Source language (default translate.source, en).")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Output folder (default output/<LANG>)."
)
@click.option(
    "--root", type=click.Path(path_type=Path), help="Root the given FILES are relative to."
)
@click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="mirror",
    show_default=True,
    help="Where outputs go.",
)
@click.option("--role", help="Prompt role from pipeline.toml (default translator).")
@backend_options
@click.option("--pull", is_flag=True, help="Ollama: pull the model if it is missing.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Requests in flight at once.")
@click.option("--force", is_flag=True, help="Translate again, ignoring the translation memory.")
@click.option(
    "--check", is_flag=True, help="Contact no model; exit 1 if an output is missing or stale."
)
@click.option("--prune", is_flag=True, help="Remove outputs whose source is gone.")
@click.option("--overwrite-edited", is_flag=True, help="Overwrite outputs edited by hand.")
@click.option(
    "--wait", is_flag=True, help="Wait for another run on the same output instead of exiting 4."
)
@click.option(
    "--follow-symlinks", is_flag=True, default=None, help="Follow symlinks out of the input folder."
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="Write a JSON report per file and chunk.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object at the end.")
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="Append progress and problems to FILE.",
)
@click.option(
    "--strict", is_flag=True, help="Exit 1 when any chunk was kept in the source language."
)
@click.option(
    "--fail-on-write",
    is_flag=True,
    help="Exit 1 when an output was written (pre-commit: stage it and commit again).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only problems.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Print more detail (may include document text)."
)
def translate_cmd(
    inputs: tuple[Path, ...],
    targets: tuple[str, ...],
    source: str | None,
    out: Path | None,
    root: Path | None,
    layout: str,
    role: str | None,
    backend: str | None,
    model: str | None,
    host: str | None,
    base_url: str | None,
    preset: str | None,
    api_key: str | None,
    allow_remote: bool | None,
    config_path: Path | None,
    pull: bool,
    concurrency: int | None,
    force: bool,
    check: bool,
    prune: bool,
    overwrite_edited: bool,
    wait: bool,
    follow_symlinks: bool | None,
    report_path: Path | None,
    as_json: bool,
    log_path: Path | None,
    strict: bool,
    fail_on_write: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Translate INPUT_DIR (or FILES under --root) into --to languages."""
    ui = Console(quiet=quiet or as_json, log_path=log_path, verbose=verbose)
    code = 0
    try:
        with ui:
            report = _translate(
                ui,
                inputs=inputs,
                targets=targets,
                source=source,
                out=out,
                root=root,
                layout=layout,
                role=role,
                backend=backend,
                model=model,
                host=host,
                base_url=base_url,
                preset=preset,
                api_key=api_key,
                allow_remote=allow_remote,
                config_path=config_path,
                pull=pull,
                concurrency=concurrency,
                force=force,
                check=check,
                prune=prune,
                overwrite_edited=overwrite_edited,
                wait=wait,
                follow_symlinks=follow_symlinks,
            )
            code = _exit_code(report, check=check, strict=strict)
            written = 0 if check else report.count("written")
            if fail_on_write and written:
                code = code or 1
            if report_path is not None:
                report_path.parent.mkdir(parents=True, exist_ok=True)
                report_path.write_text(json.dumps(report.details(), ensure_ascii=False, indent=2))
            # With --json the console is quiet: the summary goes only to --log, and
            # problems still reach stderr.
            ui.summary(report, check=check)
            if as_json:
                click.echo(json.dumps({**report.to_json(), "exit_code": code}, ensure_ascii=False))
            if fail_on_write and written:
                # pre-commit sees changed tracked files, not new ones: say it ourselves.
                ui.error(
                    f"wrote {written} translation(s); stage them and the manifest in "
                    ".translate-dir/ (git add), then commit again"
                )
    except TranslateDirError as exc:
        ui.error(str(exc))
        code = exc.exit_code
        if as_json:
            # Cron jobs that parse stdout get one object whatever happened.
            click.echo(json.dumps({"error": str(exc), "exit_code": code}, ensure_ascii=False))
    except KeyboardInterrupt:
        ui.error("interrupted; finished files and chunks are kept")
        code = 130
        if as_json:
            click.echo(json.dumps({"error": "interrupted", "exit_code": code}))
    except Terminated:
        ui.error("terminated; finished files and chunks are kept")
        code = 143
        if as_json:
            click.echo(json.dumps({"error": "terminated", "exit_code": code}))
    sys.exit(code)


class Terminated(BaseException):
    """SIGTERM arrived (cron or a supervisor stopped us). A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""


def _translate(ui: Console, **kw: Any) -> RunReport:
    from pipeline import backends

    inputs: tuple[Path, ...] = kw["inputs"]
    root: Path | None = kw["root"]
    files: tuple[Path, ...] | None = None
    if len(inputs) == 1 and inputs[0].is_dir() and root is None:
        root = inputs[0]
    else:
        for p in inputs:
            if p.is_dir():
                raise click.UsageError(f"{p} is a folder; give one folder, or files with --root")
            if not p.exists():
                raise click.UsageError(f"{p} does not exist")
        files = inputs
        root = root or Path.cwd()
    if not root.is_dir():
        raise click.UsageError(f"input folder {root} does not exist")
    cfg = config.load(
        config.find_config(kw["config_path"], root),
        {
            "translate": {"source": kw["source"], "role": kw["role"]},
            "backend": {
                "name": kw["backend"],
                "model": kw["model"],
                "allow_remote": kw["allow_remote"],
            },
            "files": {"follow_symlinks": kw["follow_symlinks"]},
        },
    )
    targets = _targets(kw["targets"])
    source = languages.normalise(cfg.translate["source"])
    name = str(cfg.backend["name"])
    options: dict[str, Any] = {}
    if not kw["check"]:
        options = _backend_options(cfg, name, kw)
        name = backends.resolve(name, options, float(cfg.backend["connect_timeout"]))
        options = _backend_options(cfg, name, kw)
    model = backends.default_model(name, str(cfg.backend["model"]), str(cfg.ollama["model"]))
    opts = RunOptions(
        root=root,
        targets=targets,
        source=source,
        backend=name,
        model=model,
        files=files,
        out=kw["out"],
        layout=kw["layout"],
        role=str(cfg.translate["role"]),
        force=kw["force"],
        check=kw["check"],
        prune=kw["prune"],
        overwrite_edited=kw["overwrite_edited"],
        wait=kw["wait"],
        concurrency=kw["concurrency"] or int(cfg.backend["concurrency"]),
        backend_options=options,
    )
    cancel = threading.Event()
    runner = Runner(cfg, opts, progress=ui, cancel=cancel)
    with _signals(cancel):
        return runner.run()


def _backend_options(cfg: config.Config, name: str, kw: dict[str, Any]) -> dict[str, Any]:
    if name == "openai":
        options = dict(cfg.openai)
        for key in ("base_url", "preset", "api_key"):
            if kw[key]:
                options[key] = kw[key]
        return options
    if name == "embedded":
        return dict(cfg.embedded)
    options = dict(cfg.ollama)
    if kw["host"]:
        options["host"] = kw["host"]
    options["pull"] = bool(kw["pull"])
    return options


def _targets(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        for code in value.split(","):
            code = languages.normalise(code)
            if not code:
                continue
            if not languages.is_valid(code):
                raise click.BadParameter(
                    f"{code!r} is not a language code (e.g. zh, ja, de, pt-br)", param_hint="--to"
                )
            if code not in out:
                out.append(code)
    if not out:
        raise click.BadParameter("give at least one language", param_hint="--to")
    return tuple(out)


def _exit_code(report: RunReport, *, check: bool, strict: bool) -> int:
    if check:
        return 0 if all(f.status == "current" for f in report.files) else 1
    if report.failed or (strict and report.kept):
        return 1
    return 0


class _signals:
    """SIGTERM -> stop cleanly, like Ctrl-C: no new chunks, no half-written file."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.cancel.set()
        raise Terminated()

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


# ------------------------------------------------------------------ the console


class Console:
    """Progress and messages on stderr. Bars on a terminal; plain lines every
    30 s off one (cron); nothing but problems with --quiet."""

    PLAIN_EVERY = 30.0

    def __init__(
        self,
        *,
        quiet: bool,
        log_path: Path | None,
        verbose: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.quiet = quiet
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self.log_path = log_path
        self._bars: dict[str, Any] = {}
        self._files_bar: Any = None
        self._chunks_bar: Any = None
        self._lock = threading.Lock()
        self.total_chunks = 0
        self.total_tokens = 0
        self.done_chunks = 0
        self.done_tokens = 0
        self.output_tokens = 0
        self.started = self.last_plain = clock()

    def __enter__(self) -> Console:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in [self._files_bar, self._chunks_bar, *self._bars.values()]:
            if bar is not None:
                bar.close()

    def _emit(self, text: str, *, problem: bool = False) -> None:
        if self.log_path is not None:
            # Opened per line: the error that ends a run is reported after `with ui`
            # has exited, and must reach the log too.
            with open(self.log_path, "a", encoding="utf-8") as log:
                log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
        if self.quiet and not problem:
            return
        if self._files_bar is not None or self._chunks_bar is not None:
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def error(self, text: str) -> None:
        self._emit(f"translate-dir: error: {text}", problem=True)

    # Events
    def message(self, text: str) -> None:
        self._emit(text)

    def transfer(self, key: str, completed: int, total: int) -> None:
        if self.quiet or not self.tty:
            return
        from tqdm import tqdm

        bar = self._bars.get(key)
        if bar is None:
            bar = self._bars[key] = tqdm(
                total=total, desc=f"pulling {key[:19]}", unit="B", unit_scale=True, file=sys.stderr
            )
        bar.total = total
        bar.n = completed
        bar.refresh()

    # Progress
    def plan(self, files: int, chunks: int, tokens: int) -> None:
        self.total_chunks, self.total_tokens = chunks, tokens
        # The rate and the ETA count from here: loading the model is not translating.
        self.started = self.last_plain = self.clock()
        if self.tty and not self.quiet:
            from tqdm import tqdm

            self._files_bar = tqdm(
                total=files, desc="files", unit="file", file=sys.stderr, position=0
            )
            self._chunks_bar = tqdm(
                total=chunks, desc="chunks", unit="chunk", file=sys.stderr, position=1
            )
        elif chunks and (not self.quiet or self.log_path is not None):
            # Plain lines; under --quiet they go only to the --log file.
            self._emit(f"{files} file(s), {chunks} chunk(s) to translate (~{tokens} tokens)")

    def chunk_done(self, source_tokens: int, output_tokens: int) -> None:
        with self._lock:
            self.done_chunks += 1
            self.done_tokens += source_tokens
            self.output_tokens += output_tokens
            now = self.clock()
            elapsed = now - self.started
            rate = self.output_tokens / elapsed if elapsed > 0 else 0.0
            eta = ""
            if self.done_tokens and self.done_chunks >= 2:
                left = elapsed * (self.total_tokens - self.done_tokens) / self.done_tokens
                eta = _duration(max(0.0, left))
            if self._chunks_bar is not None:
                self._chunks_bar.set_postfix_str(f"{rate:.0f} tok/s, ETA {eta or '?'}")
                self._chunks_bar.update(1)
            elif (
                not self.quiet or self.log_path is not None
            ) and now - self.last_plain >= self.PLAIN_EVERY:
                self.last_plain = now
                self._emit(
                    f"{self.done_chunks}/{self.total_chunks} chunks, {rate:.0f} tok/s"
                    + (f", about {eta} left" if eta else "")
                )

    def file_done(self, name: str, status: str) -> None:
        if self._files_bar is not None:
            self._files_bar.update(1)

    def summary(self, report: RunReport, *, check: bool) -> None:
        for f in report.files:
            if f.status in ("failed", "conflict"):
                self._emit(f"{f.source}: {f.status}: {f.message}", problem=True)
            elif check and f.status != "current":
                self._emit(f"{f.output}: {f.status} (source {f.source})", problem=True)
            elif f.kept or f.message:
                self._emit(
                    f"{f.source}: {f.kept} chunk(s) kept in the source language"
                    + (f" ({f.message})" if f.message else "")
                )
        if check:
            bad = sum(1 for f in report.files if f.status != "current")
            self._emit(f"{len(report.files) - bad} current, {bad} missing or stale")
            return
        line = (
            f"{len(report.files)} files ({report.count('written')} written, "
            f"{report.count('current') + report.count('unchanged')} unchanged, "
            f"{report.count('failed')} failed), {report.chunks} chunks, "
            f"memory {report.hits} hits / {report.misses} misses, "
            f"{report.kept} kept in source; tokens {report.prompt_tokens} in / "
            f"{report.output_tokens} out; {report.seconds:.1f} s, "
            f"{report.tokens_per_second:.1f} tok/s"
        )
        if report.requests:
            line += f"; {report.backend} {report.model}"
            if report.warmup_seconds:
                line += f" (load {report.warmup_seconds:.1f} s)"
        self._emit(line)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


# ------------------------------------------------------------------ other commands


@main.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing pipeline.toml.")
def init_cmd(force: bool) -> None:
    """Write a commented pipeline.toml with every default into the current folder."""
    target = Path(config.CONFIG_NAME)
    if target.exists() and not force:
        raise click.ClickException(f"{target} exists; pass --force to overwrite it")
    target.write_text(config.default_text(), encoding="utf-8")
    click.echo(f"wrote {target}")


@main.command("models")
@backend_options
def models_cmd(
    backend: str | None,
    model: str | None,
    host: str | None,
    base_url: str | None,
    preset: str | None,
    api_key: str | None,
    allow_remote: bool | None,
    config_path: Path | None,
) -> None:
    """List the models the chosen backend offers."""
    from pipeline import backends
    from pipeline.backends.base import BackendSettings, NullEvents

    try:
        cfg = config.load(
            config.find_config(config_path, None),
            {"backend": {"name": backend, "model": model, "allow_remote": allow_remote}},
        )
        kw = {
            "host": host,
            "base_url": base_url,
            "preset": preset,
            "api_key": api_key,
            "pull": False,
        }
        name = str(cfg.backend["name"])
        name = backends.resolve(
            name, _backend_options(cfg, name, kw), float(cfg.backend["connect_timeout"])
        )
        settings = BackendSettings(
            model=str(cfg.backend["model"]),
            connect_timeout=float(cfg.backend["connect_timeout"]),
            read_timeout=float(cfg.backend["read_timeout"]),
            allow_remote=bool(cfg.backend["allow_remote"]),
            options=_backend_options(cfg, name, kw),
        )
        b = backends.create(name, settings, NullEvents())
        try:
            names = b.list_models()
        finally:
            b.close()
    except TranslateDirError as exc:
        click.echo(f"translate-dir: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    click.echo(f"# {name}")
    for n in names:
        click.echo(n)


@main.group("cache")
def cache_group() -> None:
    """Inspect or clear the translation memory."""


def _open_memory(config_path: Path | None) -> Any:
    from pipeline import memory

    cfg = config.load(config.find_config(config_path, None))
    path = str(cfg.memory["path"])
    return memory.Memory(Path(path).expanduser() if path else memory.default_path(os.environ))


@cache_group.command("stats")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def cache_stats(config_path: Path | None, as_json: bool) -> None:
    """Entries, size and hit rate of the translation memory."""
    try:
        with _open_memory(config_path) as mem:
            st = mem.stats()
            where = mem.path
    except TranslateDirError as exc:
        raise click.ClickException(str(exc)) from None
    data = {
        "path": str(where),
        "entries": st.entries,
        "size_bytes": st.size_bytes,
        "hits": st.hits,
        "misses": st.misses,
        "hit_rate": round(st.hit_rate, 4),
    }
    if as_json:
        click.echo(json.dumps(data))
    else:
        for key, value in data.items():
            click.echo(f"{key}: {value}")


@cache_group.command("clear")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.confirmation_option(prompt="Remove every translation from the memory?")
def cache_clear(config_path: Path | None) -> None:
    """Remove every entry from the translation memory."""
    try:
        with _open_memory(config_path) as mem:
            removed = mem.clear()
    except TranslateDirError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"removed {removed} entries")


if __name__ == "__main__":
    main()
