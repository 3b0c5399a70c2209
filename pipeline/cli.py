"""The command line: options in, one call to the core, one line per problem out.

Each command parses its options and calls the core; every domain error becomes
one ``translate-dir: error: ...`` line and its exit code in one place
(``_reported``). Exit codes: 0 all went well; 1 some file failed, conflicts or
kept text because the backend failed, --check found missing or stale outputs,
or the model cannot do the job; 2 usage or config error; 3 the backend is
unavailable; 4 another run holds the lock; 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import click

from pipeline import __version__, config, options
from pipeline.backends.openai import PRESETS
from pipeline.console import Console
from pipeline.errors import TranslateDirError, UsageError
from pipeline.report import RunReport
from pipeline.targets import LAYOUTS


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
    translate-dir review input/ --to zh   write review.html: source beside translation
    translate-dir init                    write a commented pipeline.toml
    """


class Terminated(BaseException):
    """SIGTERM arrived (cron or a supervisor stopped us). A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` on the way swallows it."""


@contextmanager
def _reported(ui: Console | None = None, *, as_json: bool = False) -> Iterator[None]:
    """The one mapping of errors to a line and an exit code, for every command."""
    try:
        yield
        return
    except TranslateDirError as exc:
        message, code = str(exc), exc.exit_code
    except KeyboardInterrupt:
        message, code = "interrupted; finished files and chunks are kept", 130
    except Terminated:
        message, code = "terminated; finished files and chunks are kept", 143
    if ui is not None:
        ui.error(message)
    else:
        click.echo(f"translate-dir: error: {message}", err=True)
    if as_json:
        # Cron jobs that parse stdout get one object whatever happened.
        click.echo(json.dumps({"error": message, "exit_code": code}, ensure_ascii=False))
    sys.exit(code)


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
            click.option(
                "--host",
                "hosts",
                multiple=True,
                help="Ollama server (default $OLLAMA_HOST or 127.0.0.1:11434); repeat for several.",
            ),
            click.option(
                "--base-url",
                "base_urls",
                multiple=True,
                help="OpenAI-compatible server URL (http://127.0.0.1:8080/v1); repeat for several.",
            ),
            click.option(
                "--preset",
                type=click.Choice(sorted(PRESETS)),
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


def site_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--site and --anchors: the [site] settings of one run."""
    for option in reversed(
        [
            click.option(
                "--site",
                "site_kind",
                type=click.Choice(config.SITE_KINDS),
                help="Site generator whose syntax to keep (default [site] kind: auto).",
            ),
            click.option(
                "--anchors",
                type=click.Choice(config.SITE_ANCHORS),
                help="Which translated headings keep their source id (default [site] anchors).",
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
@site_options
@backend_options
@click.option("--pull", is_flag=True, help="Ollama: pull the model if it is missing.")
@click.option("--concurrency", type=click.IntRange(min=1), help="Requests in flight at once.")
@click.option("--force", is_flag=True, help="Translate again, ignoring the translation memory.")
@click.option(
    "--retry-kept",
    is_flag=True,
    help="Ask the model again for pieces kept in the source language by earlier runs.",
)
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
    "--review",
    "review_path",
    type=click.Path(path_type=Path),
    help="Write the review page (one HTML file) after the run.",
)
@click.option(
    "--retranslate",
    "retranslate_path",
    type=click.Path(path_type=Path),
    help="Ask the model again for the pieces a review page's flags file names.",
)
@click.option(
    "--accept",
    "accept_path",
    type=click.Path(path_type=Path),
    help="Record the pieces a review page's export names as reviewed.",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="Append progress and problems to FILE.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when any piece is still in the source language (also with --check).",
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
    site_kind: str | None,
    anchors: str | None,
    backend: str | None,
    model: str | None,
    hosts: tuple[str, ...],
    base_urls: tuple[str, ...],
    preset: str | None,
    api_key: str | None,
    allow_remote: bool | None,
    config_path: Path | None,
    pull: bool,
    concurrency: int | None,
    force: bool,
    retry_kept: bool,
    check: bool,
    prune: bool,
    overwrite_edited: bool,
    wait: bool,
    follow_symlinks: bool | None,
    report_path: Path | None,
    as_json: bool,
    review_path: Path | None,
    retranslate_path: Path | None,
    accept_path: Path | None,
    log_path: Path | None,
    strict: bool,
    fail_on_write: bool,
    quiet: bool,
    verbose: bool,
) -> None:
    """Translate INPUT_DIR (or FILES under --root) into --to languages."""
    ui = Console(quiet=quiet or as_json, log_path=log_path, verbose=verbose)
    with _reported(ui, as_json=as_json), ui:
        base, files = options.locate_inputs(inputs, root)
        cfg = config.load(
            config.find_config(config_path, base),
            {
                "translate": {"source": source, "role": role},
                "backend": {"name": backend, "model": model, "allow_remote": allow_remote},
                "files": {"follow_symlinks": follow_symlinks},
                "site": {"kind": site_kind, "anchors": anchors},
            },
        )
        if files is not None:
            where = "--root" if root is not None else "the current folder; pass --root to change"
            ui.message(f"{len(files)} file(s) under {base.resolve()} ({where})")
        opts = options.run_options(
            cfg,
            root=base,
            files=files,
            targets=targets,
            conn=options.Connection(hosts, base_urls, preset, api_key, pull),
            out=out,
            layout=layout,
            force=force,
            retry_kept=retry_kept,
            check=check,
            prune=prune,
            overwrite_edited=overwrite_edited,
            wait=wait,
            concurrency=concurrency,
            retranslate=_flags(retranslate_path, "--retranslate"),
            accept=_flags(accept_path, "--accept"),
        )
        cancel = threading.Event()
        with _signals(cancel):
            from pipeline.run import run

            started = time.time()
            report = run(cfg, opts, progress=ui, cancel=cancel)
        code = _exit_code(report, check=check, strict=strict)
        written = 0 if check else report.count("written")
        if fail_on_write and written:
            code = code or 1
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(json.dumps(report.details(), ensure_ascii=False, indent=2))
        if review_path is not None and not check:
            from pipeline import review

            # What the memory held before this run started counts as "from memory".
            page = review.build(cfg, opts, report=report.details(), since=started)
            size = review.write(review_path, page)
            ui.message(f"review page: {review_path} ({size // 1024} KB)")
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
    sys.exit(code)


def _flags(path: Path | None, option: str) -> tuple[Any, ...]:
    """A review page's export, checked (one line and exit 2 when it is bad)."""
    if path is None:
        return ()
    from pipeline import flags

    return flags.load(path, option)


def _exit_code(report: RunReport, *, check: bool, strict: bool) -> int:
    if check:
        if strict and report.kept:
            return 1
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


# ------------------------------------------------------------------ other commands


@main.command("review")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--to", "targets", multiple=True, required=True, help="Target language(s) to review.")
@click.option("--from", "source", help="Source language (default translate.source, en).")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder the run wrote.")
@click.option(
    "--root", type=click.Path(path_type=Path), help="Root the given FILES are relative to."
)
@click.option("--layout", type=click.Choice(LAYOUTS), default="mirror", show_default=True)
@click.option("--role", help="Prompt role the run used (default translator).")
@site_options
@click.option(
    "--backend", type=click.Choice(config.BACKENDS), help="Backend the run used (default: config)."
)
@click.option("--model", help="Model the run used (default: config).")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="pipeline.toml.")
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    help="The last run's --report file: adds what came from memory and why text was kept.",
)
@click.option(
    "-o",
    "--output",
    "page_path",
    type=click.Path(path_type=Path),
    default=Path("review.html"),
    show_default=True,
    help="The HTML file to write.",
)
def review_cmd(
    inputs: tuple[Path, ...],
    targets: tuple[str, ...],
    source: str | None,
    out: Path | None,
    root: Path | None,
    layout: str,
    role: str | None,
    site_kind: str | None,
    anchors: str | None,
    backend: str | None,
    model: str | None,
    config_path: Path | None,
    report_path: Path | None,
    page_path: Path,
) -> None:
    """Write a review page: sources beside their translations, from the manifest and
    the translation memory (no model is contacted)."""
    from pipeline import review

    with _reported():
        base, files = options.locate_inputs(inputs, root)
        cfg = config.load(
            config.find_config(config_path, base),
            {
                "translate": {"source": source, "role": role},
                "backend": {"name": backend, "model": model},
                "site": {"kind": site_kind, "anchors": anchors},
            },
        )
        opts = options.run_options(
            cfg,
            root=base,
            files=files,
            targets=targets,
            conn=options.Connection(),
            out=out,
            layout=layout,
            check=True,  # resolves no backend: nothing is contacted
        )
        page, size = review.make(cfg, opts, page_path, report_path)
    t = page.totals
    click.echo(
        f"wrote {page_path} ({size // 1024} KB): {t['files']} files, {t['pieces']} pieces, "
        f"{t['kept']} kept, {t['missing']} missing, {t['edited']} edited, "
        f"{t['reviewed']} reviewed",
        err=True,
    )


@main.command("init")
@click.option("--force", is_flag=True, help="Overwrite an existing pipeline.toml.")
def init_cmd(force: bool) -> None:
    """Write a commented pipeline.toml with every default into the current folder."""
    target = Path(config.CONFIG_NAME)
    with _reported():
        if target.exists() and not force:
            raise UsageError(f"{target} exists; pass --force to overwrite it")
        target.write_text(config.default_text(), encoding="utf-8")
    click.echo(f"wrote {target}")


@main.command("models")
@backend_options
def models_cmd(
    backend: str | None,
    model: str | None,
    hosts: tuple[str, ...],
    base_urls: tuple[str, ...],
    preset: str | None,
    api_key: str | None,
    allow_remote: bool | None,
    config_path: Path | None,
) -> None:
    """List the models the chosen backend offers."""
    from pipeline import backends
    from pipeline.backends.base import NullEvents

    with _reported():
        cfg = config.load(
            config.find_config(config_path, None),
            {"backend": {"name": backend, "model": model, "allow_remote": allow_remote}},
        )
        name, _model, backend_opts = options.resolve_backend(
            cfg, options.Connection(hosts, base_urls, preset, api_key)
        )
        b = backends.create(
            name, options.backend_settings(cfg, cfg.backend.model, backend_opts), NullEvents()
        )
        try:
            names = b.list_models()
        finally:
            b.close()
    click.echo(f"# {name}")
    for n in names:
        click.echo(n)


@main.group("batch")
def batch_group() -> None:
    """Offline batch files for GPU clusters (vllm run-batch and the OpenAI batch format)."""


@batch_group.command("export")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--to", "targets", multiple=True, required=True, help="Target language(s).")
@click.option("--from", "source", help="Source language (default translate.source, en).")
@click.option("--model", required=True, help="Model id the batch service serves.")
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(path_type=Path),
    help="Requests file to write (JSONL).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    help="At most N requests per file: NAME-00001.jsonl, NAME-00002.jsonl, ...",
)
@click.option("--out", type=click.Path(path_type=Path), help="Output folder the run will use.")
@click.option("--root", type=click.Path(path_type=Path), help="Root the given FILES are under.")
@click.option("--layout", type=click.Choice(LAYOUTS), default="mirror", show_default=True)
@click.option("--role", help="Prompt role from pipeline.toml (default translator).")
@site_options
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="pipeline.toml.")
def batch_export(
    inputs: tuple[Path, ...],
    targets: tuple[str, ...],
    source: str | None,
    model: str,
    output: Path,
    shard_size: int | None,
    out: Path | None,
    root: Path | None,
    layout: str,
    role: str | None,
    site_kind: str | None,
    anchors: str | None,
    config_path: Path | None,
) -> None:
    """Write a request per piece not yet in the translation memory."""
    import dataclasses

    from pipeline import batch

    with _reported():
        base, files = options.locate_inputs(inputs, root)
        cfg = config.load(
            config.find_config(config_path, base),
            {
                "translate": {"source": source, "role": role},
                "backend": {"model": model},
                "site": {"kind": site_kind, "anchors": anchors},
            },
        )
        opts = options.run_options(
            cfg, root=base, files=files, targets=targets, conn=options.Connection(),
            out=out, layout=layout, check=True,
        )  # fmt: skip
        # The answers come back for --backend openai --model MODEL: the memory keys
        # must be the ones that run will look up.
        opts = dataclasses.replace(opts, check=False, backend="openai", model=model)
        done = batch.export(cfg, opts, output, shard_size=shard_size or 0)
    names = ", ".join(str(p) for p in done.files)
    click.echo(
        f"wrote {done.requests} request(s) for {done.documents} document(s) to {names} "
        f"({done.in_memory} piece(s) already in the memory)"
    )


@batch_group.command("import")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="pipeline.toml.")
def batch_import(results: tuple[Path, ...], config_path: Path | None) -> None:
    """Check the answers of a batch run and store those that pass in the memory."""
    from pipeline import batch

    with _reported():
        cfg = config.load(config.find_config(config_path, None))
        done = batch.import_results(cfg, options.memory_path(cfg), results)
    for where, why in done.rejected:
        click.echo(f"{where}: rejected: {why}", err=True)
    click.echo(
        f"{done.accepted} answer(s) stored, {len(done.rejected)} rejected "
        f"(a run asks the model again for those), {done.unknown} not from this memory"
    )


@main.group("cache")
def cache_group() -> None:
    """Inspect or clear the translation memory."""


def _open_memory(config_path: Path | None) -> Any:
    from pipeline import memory

    return memory.Memory(options.memory_path(config.load(config.find_config(config_path, None))))


@cache_group.command("stats")
@click.option("--config", "config_path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def cache_stats(config_path: Path | None, as_json: bool) -> None:
    """Entries, size and hit rate of the translation memory."""
    with _reported(), _open_memory(config_path) as mem:
        st = mem.stats()
        where = mem.path
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
    with _reported(), _open_memory(config_path) as mem:
        removed = mem.clear()
    click.echo(f"removed {removed} entries")


if __name__ == "__main__":
    main()
