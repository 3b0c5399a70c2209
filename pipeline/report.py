"""What a run did: one ``ChunkReport`` per chunk, one ``FileReport`` per output,
and the ``RunReport`` that the CLI prints, writes with ``--report`` and maps to
an exit code. Plain data: the stages fill it in, nothing here does work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pipeline.backends import base

# What became of a chunk.
ChunkStatus = Literal["translated", "kept", "partly kept", "cancelled"]

# What became of an output. A translating run ends each file as one of
#   written    the translation was written
#   unchanged  translated again, and the bytes on disk were already the same
#   current    the manifest says it is up to date: nothing was planned
#   edited     edited by hand while its source stayed the same: kept as it is
#   conflict   edited by hand (or not ours) and the source changed: not overwritten
#   failed     unreadable source or unwritable output (``message`` says which)
#   pruned     its source is gone and --prune removed it
#   cancelled  the run was interrupted before it was written
# and ``--check`` reports each as current, missing, stale, incomplete (the
# backend failed on some of its text), edited, untracked or orphan.
FileStatus = Literal[
    "written",
    "unchanged",
    "current",
    "edited",
    "conflict",
    "failed",
    "pruned",
    "cancelled",
    "missing",
    "stale",
    "incomplete",
    "untracked",
    "orphan",
]


class Progress(base.Events, Protocol):
    """What the run reports while it works. The CLI draws bars; tests record."""

    def plan(self, files: int, chunks: int, tokens: int) -> None: ...

    def chunk_done(self, source_tokens: int, output_tokens: int) -> None: ...

    def file_done(self, name: str, status: FileStatus) -> None: ...


class NullProgress(base.NullEvents):
    def plan(self, files: int, chunks: int, tokens: int) -> None:
        pass

    def chunk_done(self, source_tokens: int, output_tokens: int) -> None:
        pass

    def file_done(self, name: str, status: FileStatus) -> None:
        pass


@dataclass
class ChunkReport:
    pieces: int
    status: ChunkStatus = "translated"
    problems: list[str] = field(default_factory=list)
    retries: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    # Pieces kept in the source because the backend failed (request error, a cut
    # prompt or answer that splitting could not fix), not because of a check.
    failed: int = 0
    # Why the backend failed on them (the last such reason), for the file's line.
    failure: str = ""
    # Answers rejected, per check (``validate.CHECKS``): why text stayed in the source.
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass
class FileReport:
    source: str
    output: str
    lang: str
    status: FileStatus
    message: str = ""
    chunks: list[ChunkReport] = field(default_factory=list)
    hits: int = 0
    misses: int = 0
    # Pieces of this output in the source language (kept now or by an earlier run).
    kept: int = 0
    # Pieces a person reviewed and accepted (--accept; counted by --check).
    reviewed: int = 0

    @property
    def failed_chunks(self) -> int:
        return sum(c.failed for c in self.chunks)


@dataclass
class RunReport:
    backend: str = ""
    model: str = ""
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0
    model_seconds: float = 0.0
    warmup_seconds: float = 0.0
    seconds: float = 0.0
    interrupted: bool = False
    # Per server, when the run used several (``--host``/``--base-url`` repeated).
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    # Files the documents refer to, copied beside their translations (assets),
    # and those left alone because a file of the user's is already there.
    assets_copied: list[str] = field(default_factory=list)
    assets_theirs: list[str] = field(default_factory=list)
    # Worker processes that parsed and split the documents (0: this process).
    processes: int = 0

    def count(self, status: FileStatus) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def hits(self) -> int:
        return sum(f.hits for f in self.files)

    @property
    def misses(self) -> int:
        return sum(f.misses for f in self.files)

    @property
    def kept(self) -> int:
        return sum(f.kept for f in self.files)

    @property
    def chunks(self) -> int:
        return sum(len(f.chunks) for f in self.files)

    @property
    def tokens_per_second(self) -> float:
        return self.output_tokens / self.model_seconds if self.model_seconds else 0.0

    @property
    def failed_chunks(self) -> int:
        return sum(f.failed_chunks for f in self.files)

    @property
    def rejected(self) -> dict[str, int]:
        """Answers rejected per check, over every chunk of the run, most first."""
        total: dict[str, int] = {}
        for f in self.files:
            for c in f.chunks:
                for check, n in c.rejected.items():
                    total[check] = total.get(check, 0) + n
        return dict(sorted(total.items(), key=lambda item: (-item[1], item[0])))

    @property
    def failed(self) -> bool:
        """Exit 1: a file failed or conflicts, or the backend failed on some text."""
        return self.failed_chunks > 0 or any(f.status in ("failed", "conflict") for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "files": len(self.files),
            "written": self.count("written"),
            "unchanged": self.count("unchanged") + self.count("current"),
            "failed": self.count("failed"),
            "conflicts": self.count("conflict"),
            "chunks": self.chunks,
            "hits": self.hits,
            "misses": self.misses,
            "kept_in_source": self.kept,
            "rejected_answers": self.rejected,
            "reviewed": sum(f.reviewed for f in self.files),
            "failed_chunks": self.failed_chunks,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "model_seconds": round(self.model_seconds, 3),
            "warmup_seconds": round(self.warmup_seconds, 3),
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 1),
            "interrupted": self.interrupted,
            "warnings": self.warnings,
            "assets_copied": len(self.assets_copied),
            "processes": self.processes,
            **({"endpoints": self.endpoints} if self.endpoints else {}),
        }

    def details(self) -> dict[str, Any]:
        """The --report file: the summary plus every file and chunk."""
        out = self.to_json()
        out["details"] = [
            {
                "source": f.source,
                "output": f.output,
                "lang": f.lang,
                "status": f.status,
                "message": f.message,
                "hits": f.hits,
                "misses": f.misses,
                "kept_in_source": f.kept,
                "reviewed": f.reviewed,
                "chunks": [vars(c) for c in f.chunks],
            }
            for f in self.files
        ]
        return out
