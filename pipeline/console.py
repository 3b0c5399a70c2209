"""What a person sees while a run works: progress bars on a terminal, plain lines
every 30 s off one (cron), nothing but problems with --quiet, and the summary.
Everything goes to stderr (and to --log); stdout is left for --json.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pipeline.report import FileStatus, RunReport


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

    def file_done(self, name: str, status: FileStatus) -> None:
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
                    f"{f.source}: {f.kept} piece(s) kept in the source language"
                    + (f" ({f.message})" if f.message else "")
                )
        if check:
            bad = sum(1 for f in report.files if f.status != "current")
            line = f"{len(report.files) - bad} current, {bad} missing or stale"
            if report.kept:
                line += f"; {report.kept} piece(s) still in the source language"
            reviewed = sum(f.reviewed for f in report.files)
            if reviewed:
                line += f"; {reviewed} piece(s) reviewed"
            self._emit(line)
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
        if report.assets_copied:
            self._emit(
                f"{len(report.assets_copied)} referenced file(s) copied beside the translations"
            )
        if report.rejected:
            # Why text stayed in the source language: which checks said no, how often.
            self._emit(
                "answers rejected by the checks: "
                + ", ".join(f"{n} {check}" for check, n in report.rejected.items())
            )
        for e in report.endpoints:
            self._emit(
                f"  {e['endpoint']}: {e['requests']} requests, {e['failures']} failed, "
                f"{e['output_tokens']} tokens out, {e['tokens_per_second']:.1f} tok/s"
            )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
