"""The translation memory: segment translations in SQLite, keyed by content hash.

A key covers everything that changes what the model would answer (normalised
source text, both languages, model, role, prompt version, the glossary entries
that apply, sampling options), so a hit is safe to reuse as is. Writes are one
transaction per call and committed before ``put_many`` returns: a run killed
with ``kill -9`` keeps every chunk it had finished.

The schema is versioned by small registered migration functions, applied in
order and recorded by name (the pattern of simonw/llm's ``migrations.py``).
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError, TranslateDirError, WriteError

FILE_NAME = "memory.sqlite"

# Part of every key: bump when the canonical form below changes, so entries
# made under the old form stop matching instead of matching wrongly.
KEY_VERSION = 1

# Below SQLite's historic 999-variable limit, so any build accepts it.
_CHUNK = 900

# Seconds a writer waits for another process (a second run on another output
# folder shares the memory) before SQLite reports "database is locked".
_BUSY_TIMEOUT = 60.0

_TRAILING_WS = re.compile(r"[ \t\f\v]+$", re.MULTILINE)


def default_path(env: Mapping[str, str]) -> Path:
    """$XDG_CACHE_HOME/translate-dir/memory.sqlite, else ~/.cache/translate-dir/memory.sqlite."""
    xdg = env.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "translate-dir" / FILE_NAME
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".cache" / "translate-dir" / FILE_NAME


def normalise_source(text: str) -> str:
    """The form of a segment that is hashed: NFC, LF newlines, no trailing blanks.

    Two or more trailing spaces are a Markdown hard line break, so they are
    kept as exactly two rather than stripped: "a  \\nb" and "a\\nb" render
    differently and must not share a translation.
    """
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING_WS.sub(_keep_hard_break, text)


def _keep_hard_break(match: re.Match[str]) -> str:
    return "  " if match.group().endswith("  ") else ""


def segment_key(
    *,
    source_text: str,
    source_lang: str,
    target_lang: str,
    model: str,
    role: str,
    prompt_version: int,
    glossary: Sequence[tuple[str, str]],
    options: Mapping[str, object],
) -> str:
    """sha256 hex over a canonical JSON of everything that shapes the translation.

    ``glossary`` holds only the entries that apply to this segment; their order
    does not matter. ``options`` must be JSON-serialisable (numbers, strings,
    bools, lists, mappings); a value that is not raises ``TypeError``.
    """
    canonical = {
        "v": KEY_VERSION,
        "source": normalise_source(source_text),
        "source_lang": source_lang,
        "target_lang": target_lang,
        "model": model,
        "role": role,
        "prompt_version": prompt_version,
        "glossary": sorted({(src, dst) for src, dst in glossary}),
        "options": dict(options),
    }
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Entry:
    translation: str
    model: str
    prompt_tokens: int
    output_tokens: int
    seconds: float
    # Unix time the translation was stored.
    created: float
    # True: every answer failed the checks, and the piece is written in the
    # source language. ``translation`` is then the source. Not asked again
    # (the same model would answer the same) unless the run says --retry-kept.
    kept: bool = False


@dataclass(frozen=True)
class MemoryStats:
    path: Path
    entries: int
    # The database file plus its write-ahead log.
    size_bytes: int
    # Lifetime lookups, persisted across runs; reset by ``clear()``.
    hits: int
    misses: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0


Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[Migration] = []


def _migration(fn: Migration) -> Migration:
    MIGRATIONS.append(fn)
    return fn


@_migration
def m001_initial(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE entries (
            key TEXT PRIMARY KEY,
            translation TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL,
            seconds REAL NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID
        """
    )
    db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    db.executemany("INSERT INTO meta (name, value) VALUES (?, 0)", [("hits",), ("misses",)])


@_migration
def m002_kept(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE entries ADD COLUMN kept INTEGER NOT NULL DEFAULT 0")


class Memory:
    """One SQLite translation memory. Safe to share between worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN ourselves, so each write is
            # exactly one transaction and nothing is left open between calls.
            self._db: sqlite3.Connection | None = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise _failure(ConfigError, path, exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL under WAL survives a killed process; after a power cut the
            # last few commits may roll back (re-translated next run), but the
            # database stays consistent.
            self._db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as exc:
            self.close()
            raise _failure(ConfigError, path, exc) from None
        try:
            self._migrate()
        except ConfigError:
            self.close()
            raise

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _migrate(self) -> None:
        with self._transaction(ConfigError) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
            for fn in MIGRATIONS:
                if fn.__name__ not in done:
                    fn(db)
                    db.execute(
                        "INSERT INTO _migrations (name, applied) VALUES (?, ?)",
                        (fn.__name__, time.time()),
                    )

    @contextmanager
    def _transaction(
        self, error: type[TranslateDirError] = WriteError
    ) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT under the thread lock; SQLite errors become ``error``.

        IMMEDIATE takes the write lock up front, so two processes never both
        read and then deadlock upgrading to write.
        """
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _failure(error, self.path, exc) from None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("translation memory used after close()")
        return self._db

    def get_many(self, keys: Sequence[str]) -> dict[str, Entry]:
        """The stored entries among ``keys``; counts hits and misses for ``stats()``."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Entry] = {}
        if not wanted:
            return found
        with self._transaction() as db:
            for start in range(0, len(wanted), _CHUNK):
                part = wanted[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    "SELECT key, translation, model, prompt_tokens, output_tokens, seconds,"
                    f" created, kept FROM entries WHERE key IN ({marks})",
                    part,
                )
                for key, translation, model, prompt, output, seconds, created, kept in rows:
                    found[key] = Entry(
                        translation, model, prompt, output, seconds, created, kept=bool(kept)
                    )
            db.execute("UPDATE meta SET value = value + ? WHERE name = 'hits'", (len(found),))
            db.execute(
                "UPDATE meta SET value = value + ? WHERE name = 'misses'",
                (len(wanted) - len(found),),
            )
        return found

    def put_many(self, items: Sequence[tuple[str, Entry]]) -> None:
        """Store (or replace) entries in one transaction, committed on return."""
        if not items:
            return
        rows = [
            (
                key,
                e.translation,
                e.model,
                e.prompt_tokens,
                e.output_tokens,
                e.seconds,
                e.created,
                int(e.kept),
            )
            for key, e in items
        ]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO entries (key, translation, model, prompt_tokens,"
                " output_tokens, seconds, created, kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def stats(self) -> MemoryStats:
        with self._lock:
            db = self._conn()
            (entries,) = db.execute("SELECT count(*) FROM entries").fetchone()
            counters = dict(db.execute("SELECT name, value FROM meta").fetchall())
        size = 0
        for suffix in ("", "-wal"):
            with suppress(FileNotFoundError):
                size += Path(f"{self.path}{suffix}").stat().st_size
        return MemoryStats(
            path=self.path,
            entries=entries,
            size_bytes=size,
            hits=counters.get("hits", 0),
            misses=counters.get("misses", 0),
        )

    def clear(self) -> int:
        """Remove every entry and reset the counters; returns how many entries went."""
        with self._transaction() as db:
            (removed,) = db.execute("SELECT count(*) FROM entries").fetchone()
            db.execute("DELETE FROM entries")
            db.execute("UPDATE meta SET value = 0")
        with self._lock:
            db = self._conn()
            # VACUUM cannot run inside a transaction; the checkpoint then
            # shrinks the WAL so the freed space shows in `cache stats`.
            try:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise _failure(WriteError, self.path, exc) from None
        return int(removed)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _failure(error: type[TranslateDirError], path: Path, exc: BaseException) -> TranslateDirError:
    """A one-line error that says what to do; only SQLite's words travel, never document text."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        fix = (
            f"another process kept it locked for over {_BUSY_TIMEOUT:.0f} s; "
            "run again when that process is done"
        )
    elif code == sqlite3.SQLITE_FULL:
        fix = "the disk is full; free some space, or set [memory] path in pipeline.toml"
    elif code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        fix = "the file is damaged; delete it to start over (segments are then translated again)"
    else:
        fix = "set [memory] path in pipeline.toml to a writable file"
    return error(f"cannot use the translation memory {path} ({exc}); {fix}")
