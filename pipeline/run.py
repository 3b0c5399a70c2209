"""The orchestrator: the only module that knows the order of the stages.

    targets -> discover -> plan -> execute -> assemble -> output -> assets

Every file is planned first, so the progress knows the total and the backend
is started only when some piece really needs the model: a re-run over
unchanged files never loads it.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import assemble, assets, atomic, check, discover, execute, output, targets
from pipeline.backends import base
from pipeline.backends.base import Backend, BackendSettings
from pipeline.backends.pool import Pool
from pipeline.config import Config
from pipeline.discover import SourceFile
from pipeline.errors import UsageError
from pipeline.lock import RunLock
from pipeline.memory import Memory
from pipeline.options import RunOptions, backend_settings
from pipeline.plan import FileJob, Planner
from pipeline.report import ChunkReport, FileReport, NullProgress, Progress, RunReport

BackendFactory = Callable[[str, BackendSettings, base.Events], Backend]

# Seconds between manifest saves during a long run (it is saved at the end too).
SAVE_EVERY = 5.0
# Allocations between two young-generation garbage collections during a run
# (Python's default is 700; see fewer_collections).
GC_THRESHOLD = 50_000


def run(
    cfg: Config,
    opts: RunOptions,
    progress: Progress | None = None,
    backend_factory: BackendFactory | None = None,
    cancel: threading.Event | None = None,
) -> RunReport:
    """Translate (or, with ``opts.check``, check) every source into every target."""
    started = time.perf_counter()
    progress = progress or NullProgress()
    cancel = cancel or threading.Event()
    report = RunReport(backend=opts.backend, model=opts.model)
    outs = targets.resolve(cfg, opts)
    found = targets.sources(cfg, opts, outs)
    if found.refused and not found.files:
        raise UsageError("nothing to translate: " + "; ".join(found.warnings))
    for warning in found.warnings:
        report.warnings.append(warning)
        progress.message(warning)
    sources = found.files
    if opts.check:
        for target in outs:
            report.files += check.check(
                sources, target, all_sources=opts.files is None, memory_path=opts.memory_path
            )
    else:
        stage = _Stages(cfg, opts, report, progress, cancel, backend_factory)
        with fewer_collections(), _locked(outs, wait=opts.wait), Memory(opts.memory_path) as memory:
            try:
                stage.tidy(sources, outs)
                if opts.prune:
                    stage.prune(sources, outs)
                jobs = stage.plan(sources, outs, memory)
                stage.execute_and_write(jobs, memory)
                stage.copy_assets(sources, outs)
            finally:
                _save(outs)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _Stages:
    """The stages of a translating run, in the order ``run`` calls them."""

    cfg: Config
    opts: RunOptions
    report: RunReport
    progress: Progress
    cancel: threading.Event
    backend_factory: BackendFactory | None
    _saved: float = field(default_factory=time.monotonic)

    def done(self, file: FileReport) -> None:
        self.report.files.append(file)
        self.progress.file_done(file.source, file.status)

    def tidy(self, sources: list[SourceFile], outs: list[targets.Target]) -> None:
        """Remove what a killed run left: the temporaries of writes it never
        renamed into place (this run holds the output folders' locks). Only
        in the folders this run writes to, not the whole output root: with
        the hugo-dir and docusaurus layouts that is the site, node_modules
        and all."""
        folders = {target.state_dir for target in outs}
        # A translation's folder follows from its source's folder alone.
        one_per_folder = {src.rel.parent: src.rel for src in sources}.values()
        for target in outs:
            for rel in one_per_folder:
                with suppress(UsageError):  # leads outside the output: plan reports it
                    folders.add(targets.destination(rel, target).parent)
        for folder in folders:
            atomic.remove_leftovers(folder)

    def prune(self, sources: list[SourceFile], outs: list[targets.Target]) -> None:
        root = self.opts.root.resolve()
        all_sources = self.opts.files is None
        for target in outs:
            for file in check.prune(sources, target, root=root, all_sources=all_sources):
                self.done(file)

    def plan(
        self, sources: list[SourceFile], outs: list[targets.Target], memory: Memory
    ) -> list[FileJob]:
        planner = Planner(self.cfg, self.opts, memory)
        jobs = []
        pairs = [(src, target) for target in outs for src in sources]
        for planned in planner.plan_all(pairs, on_workers=self.set_processes):
            if isinstance(planned, FileReport):
                self.done(planned)
            else:
                jobs.append(planned)
        return jobs

    def set_processes(self, workers: int) -> None:
        self.report.processes = workers

    def execute_and_write(self, jobs: list[FileJob], memory: Memory) -> None:
        """Chunks go to the loop thread; the files are assembled and written here,
        in order, as their chunks come back."""
        futures: dict[int, list[Future[list[ChunkReport]]]] = {}
        with ExitStack() as stack:
            if any(p.pending for job in jobs for p in job.pieces):
                # Only now, when some text really needs the model, is it started.
                executor = self.start_backend(memory)
                stack.callback(executor.backend.close)
                stack.callback(self.record_endpoints, executor.backend)
                for job in jobs:
                    job.chunks = executor.pack(job)
                size = max(1, self.opts.concurrency or executor.start.concurrency)
                loop = stack.enter_context(execute.ChunkLoop(size, executor.backend))
                futures = execute.submit(loop, executor, jobs)
            chunks = [c for job in jobs for c in job.chunks]
            self.progress.plan(len(jobs), len(chunks), sum(p.tokens for c in chunks for p in c))
            # Writes overlap the next file's work; each file is recorded only
            # once it is on disk (the writer finishes before the loop closes).
            writer = stack.enter_context(output.Writer(overwrite_edited=self.opts.overwrite_edited))
            try:
                for job in jobs:
                    for future in futures.get(id(job), []):
                        job.report.chunks.extend(future.result())
                    if self.cancel.is_set():
                        job.report.status = "cancelled"
                        continue
                    writer.submit(job, assemble.assemble(job))
                    for file in writer.finished():
                        self.done(file)
                    self.save_now_and_then(job.target)
                for file in writer.finished(wait=True):
                    self.done(file)
            except BaseException:
                self.cancel.set()
                for job_futures in futures.values():
                    for future in job_futures:
                        future.cancel()
                raise

    def copy_assets(self, sources: list[SourceFile], outs: list[targets.Target]) -> None:
        """The images and other files the documents refer to, beside their
        translations (``[files] copy_assets``)."""
        if not self.cfg.files.copy_assets or self.cancel.is_set():
            return
        include = self.cfg.files.include
        done = assets.copy(
            sources, outs, is_document=lambda rel: discover.matches(rel.as_posix(), include)
        )
        self.report.assets_copied += done.copied
        self.report.assets_theirs += done.theirs

    def start_backend(self, memory: Memory) -> execute.Executor:
        """Start the backend (load the model, warm it) and hand it to an executor."""
        factory = self.backend_factory
        if factory is None:
            from pipeline import backends

            factory = backends.create
        opts = self.opts
        settings = backend_settings(
            self.cfg, opts.model, opts.backend_options, concurrency=opts.concurrency
        )
        backend = factory(opts.backend, settings, self.progress)
        try:
            start = backend.start()
        except BaseException:
            backend.close()
            raise
        self.report.backend, self.report.model = start.backend, start.model
        self.report.warmup_seconds = start.warmup_seconds
        system = Planner(self.cfg, opts, memory).system
        return execute.Executor(
            self.cfg, opts, backend, start, memory, system, self.progress, self.cancel, self.report
        )

    def record_endpoints(self, backend: Backend) -> None:
        """Several servers (a ``Pool``): what each did, for the summary and --report."""
        if isinstance(backend, Pool):
            self.report.endpoints = [s.to_json() for s in backend.endpoint_stats()]

    def save_now_and_then(self, target: targets.Target) -> None:
        if time.monotonic() - self._saved > SAVE_EVERY:
            target.manifest.save()
            self._saved = time.monotonic()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often while documents are processed.

    A run allocates block tokens, segments and unpickled worker results by the
    hundred thousand, nearly all of them alive until their file is written, so
    Python's default (a young-generation pass every 700 allocations, promoting
    all of them) spends about a sixth of the parsing time walking objects that
    are not garbage. The analysis workers inherit the setting; it is restored
    afterwards.
    """
    old = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@contextmanager
def _locked(outs: Sequence[targets.Target], *, wait: bool) -> Iterator[None]:
    """One run at a time per output folder. A run that fails before it wrote
    anything leaves no trace: the folders it created for its lock go again."""
    with ExitStack() as stack:
        fresh = []
        for out_root in sorted({t.out_root.resolve() for t in outs}):
            state = out_root / targets.STATE_DIR
            created = _missing_folders(state)
            _ignore_lock_file(state)
            lock = RunLock(state / "lock", wait=wait, folder=out_root)
            stack.enter_context(lock)
            fresh.append((lock, state, created))
        try:
            yield
        except BaseException:
            for lock, state, created in fresh:
                if created and _only_ours(state):
                    lock.discard()
                    (state / ".gitignore").unlink(missing_ok=True)
                    for folder in created:
                        _rmdir_if_empty(folder)
            raise


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _only_ours(state: Path) -> bool:
    try:
        return {p.name for p in state.iterdir()} <= {"lock", ".gitignore"}
    except OSError:
        return False


def _rmdir_if_empty(folder: Path) -> None:
    with suppress(OSError):  # not empty, or not ours to remove
        folder.rmdir()


def _ignore_lock_file(state_dir: Path) -> None:
    """Keep the lock out of git: the manifest is worth committing, the lock is not."""
    ignore = state_dir / ".gitignore"
    if not ignore.exists():
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            ignore.write_text("lock\n", encoding="utf-8")
        except OSError:
            pass  # a read-only output folder is reported when the lock is taken


def _save(outs: Sequence[targets.Target]) -> None:
    """Save each manifest that has something to say (never an empty new one)."""
    for target in outs:
        if len(target.manifest) or target.manifest.path.exists():
            target.manifest.save()
