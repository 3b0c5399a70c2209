"""What the figures share: result types, the machine, paths, running the pipeline.

A figure module exposes ``NAME``, ``TITLE`` and ``run(ctx) -> Figure``. Sizes
come from ``ctx.pick({"tiny": ..., "quick": ..., "full": ...})``: ``tiny`` is for
the smoke test, ``quick`` keeps the whole run under three minutes, ``full`` is
what the README table reports.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pipeline import config, options
from pipeline.backends.embedded import quiet_native_stderr
from pipeline.report import RunReport
from pipeline.run import BackendFactory, run

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"
# The copy that ships with the tests (same sub-layout, see its README.md).
BUNDLED_DATA = REPO / "tests" / "data"
DATA = SHARED_DATA if SHARED_DATA.is_dir() else BUNDLED_DATA
TIDB_EN = DATA / "tidb-operator-docs" / "en"
TIDB_ZH = DATA / "tidb-operator-docs" / "zh"
FLORES = DATA / "flores200-devtest"

Mode = Literal["tiny", "quick", "full"]
MODES: tuple[Mode, ...] = ("tiny", "quick", "full")
T = TypeVar("T")
Value = float | int | str | None


@dataclass
class Metric:
    """One row of the table."""

    label: str
    value: Value
    unit: str = ""
    target: str = ""
    # True / False when there is a target; None when the row only informs.
    ok: bool | None = None

    def shown(self) -> str:
        if self.value is None:
            return "n/a"
        if isinstance(self.value, float):
            v = self.value
            text = f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:,.0f}"
        elif isinstance(self.value, int):
            text = f"{self.value:,}"
        else:
            text = self.value
        return f"{text} {self.unit}".strip()


@dataclass
class Figure:
    name: str
    title: str
    metrics: list[Metric] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    # Everything measured, for the JSON file (more than the table shows).
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # how long measuring this figure took

    def add(
        self,
        label: str,
        value: Value,
        unit: str = "",
        *,
        target: str = "",
        ok: bool | None = None,
    ) -> Metric:
        metric = Metric(label, value, unit, target, ok)
        self.metrics.append(metric)
        return metric

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "metrics": [asdict(m) for m in self.metrics],
            "notes": self.notes,
            "params": self.params,
            "data": self.data,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class Context:
    mode: Mode
    workdir: Path
    # False: figures that need the embedded model use a scripted stand-in instead
    # (the smoke test); their numbers then say nothing about the model.
    use_model: bool = True
    # Also run the throughput figure under cProfile and report the hot spots.
    profile: bool = False

    def pick(self, sizes: Mapping[str, T]) -> T:
        return sizes[self.mode]

    def fresh(self, name: str) -> Path:
        """An empty folder under the work dir (emptied if a figure runs twice)."""
        path = self.workdir / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path


def data_note() -> str | None:
    """One line saying where the benchmark data comes from, when not ../shared/data."""
    if DATA == SHARED_DATA:
        return None
    if DATA.is_dir():
        return f"bench: {SHARED_DATA} not found; reading the copy in {DATA}"
    return (
        f"bench: no benchmark data: neither {SHARED_DATA} nor {BUNDLED_DATA} exists; "
        "the figures that read documents will fail"
    )


# --------------------------------------------------------------------------- the machine


def machine() -> dict[str, Any]:
    cpu = ""
    memory_kb = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu or platform.processor() or "unknown",
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine makes absolute times noisy: say how busy it was.
        "load_average_at_start": [round(x, 2) for x in load],
    }


# --------------------------------------------------------------------------- the pipeline


def load_config(
    memory_path: Path, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> config.Config:
    """The packaged defaults (no pipeline.toml is read), a private memory, and
    ``{section: {key: value}}`` overrides."""
    sections = {name: dict(values) for name, values in (overrides or {}).items()}
    sections.setdefault("memory", {})["path"] = str(memory_path)
    return config.load(None, sections)


def run_pipeline(
    root: Path,
    out: Path,
    target: str,
    *,
    memory_path: Path,
    backend: str,
    model: str,
    factory: BackendFactory | None = None,
    concurrency: int = 0,
    backend_options: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    layout: str = "mirror",
) -> RunReport:
    """One run of the real orchestrator, exactly as the CLI would start it
    (``out`` is the output root: with ``layout`` "docusaurus", the site root)."""
    cfg = load_config(memory_path, overrides)
    if backend_options is None:
        backend_options = options.backend_options(cfg, backend, options.Connection())
    # The benchmark names its backend and model itself: no --backend auto probe.
    opts = options.RunOptions(
        root=root,
        targets=(target,),
        source="en",
        backend=backend,
        model=model,
        memory_path=options.memory_path(cfg),
        out=out,
        concurrency=concurrency,
        backend_options=dict(backend_options),
        layout=layout,
    )
    return run(cfg, opts, backend_factory=factory)


def cli_command() -> list[str]:
    """The CLI of this work tree (``child_env`` puts the repository first on PYTHONPATH),
    never another installed copy."""
    return [sys.executable, "-m", "pipeline.cli"]


@dataclass
class Timed:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run_timed(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> Timed:
    """Run a command and time it from fork to exit (Python start-up included)."""
    started = time.perf_counter()
    done = subprocess.run(
        list(args), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    return Timed(time.perf_counter() - started, done.returncode, done.stdout, done.stderr)


def child_env(cache: Path) -> dict[str, str]:
    """Environment for a CLI run: its own cache (so a fresh memory), no Ollama host."""
    env = {k: v for k, v in os.environ.items() if k not in ("OLLAMA_HOST",)}
    env["XDG_CACHE_HOME"] = str(cache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


# --------------------------------------------------------------------------- measuring


class Tokenizer:
    """The embedded model's tokenizer (Gemma 3 270M), vocabulary only: no weights loaded."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        from pipeline.backends.base import NullEvents
        from pipeline.backends.embedded import resolve_model

        path = resolve_model("", NullEvents())
        with quiet_native_stderr():
            self._llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
        self.name = path.name

    def tokens(self, text: str) -> list[int]:
        ids: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return ids

    def count(self, text: str) -> int:
        return len(self.tokens(text))


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus chrF (sacrebleu defaults: character 6-grams, beta 2)."""
    import sacrebleu

    return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def read_lines(path: Path, count: int) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [next(fh).rstrip("\n") for _ in range(count)]


def pages(folder: Path, count: int | None = None) -> list[Path]:
    """The Markdown pages under a folder (sub-folders too) in path order, the first
    ``count`` of them."""
    found = sorted(folder.rglob("*.md"), key=lambda p: p.relative_to(folder).as_posix())
    return found if count is None else found[:count]


def copy_files(files: Sequence[Path], dest: Path, root: Path) -> int:
    """Copy files from under ``root`` into ``dest``, keeping their relative paths;
    returns their total size in bytes."""
    total = 0
    for f in files:
        target = dest / f.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, target)
        total += f.stat().st_size
    return total


def mb(n_bytes: int) -> float:
    return n_bytes / 1_000_000


_WS = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    """A note for the table: one line, bounded."""
    text = _WS.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
