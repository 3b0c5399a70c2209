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

import functools
import hashlib
import json
import re
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, TranslateDirError, WriteError

FILE_NAME = "memory.sqlite"

# Part of every key: bump when the canonical form below changes, so entries
# made under the old form stop matching instead of matching wrongly.
KEY_VERSION = 1

# Below SQLite's historic 999-variable limit, so any build accepts it.
_CHUNK = 900

# Rejected answers kept per piece for the review page, and the longest stored.
KEEP_REJECTIONS = 3
_MAX_ANSWER = 4000

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
    pairs = sorted({(src, dst) for src, dst in glossary})
    settings = dict(options)
    try:
        # Everything but the source is the same for most pieces of a run (the
        # system prompt in the options is long): encoded once, around the slot.
        # Each value's type is part of the cache key: 1, 1.0 and True are equal
        # but encode differently.
        frozen = tuple((k, type(v), v) for k, v in sorted(settings.items()))
        before, after = _around_source(
            tuple(pairs), frozen, source_lang, target_lang, model, role, prompt_version
        )
    except (TypeError, ValueError):
        # An unhashable option value (a list), or a setting that holds the
        # slot's text: the whole, each time.
        whole = _canonical(
            pairs,
            settings,
            source_lang,
            target_lang,
            model,
            role,
            prompt_version,
            source=normalise_source(source_text),
        )
        return hashlib.sha256(whole.encode()).hexdigest()
    source = json.dumps(normalise_source(source_text), ensure_ascii=False)
    return hashlib.sha256(f"{before}{source}{after}".encode()).hexdigest()


# Stands for the source in the canonical JSON; no model, role or option holds it.
_SOURCE_SLOT = "\0translate-dir source\0"
_SOURCE_SLOT_JSON = json.dumps(_SOURCE_SLOT)


def _canonical(
    glossary: Sequence[tuple[str, str]],
    options: Mapping[str, Any],
    source_lang: str,
    target_lang: str,
    model: str,
    role: str,
    prompt_version: int,
    *,
    source: str = _SOURCE_SLOT,
) -> str:
    """The canonical JSON of a key (by default with ``_SOURCE_SLOT`` for the source)."""
    canonical = {
        "v": KEY_VERSION,
        "source": source,
        "source_lang": source_lang,
        "target_lang": target_lang,
        "model": model,
        "role": role,
        "prompt_version": prompt_version,
        "glossary": glossary,
        "options": options,
    }
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _split_at_source(blob: str) -> tuple[str, str]:
    before, slot, after = blob.partition(_SOURCE_SLOT_JSON)
    if not slot or _SOURCE_SLOT_JSON in after:
        raise ValueError("a key's settings hold translate-dir's source placeholder")
    return before, after


@functools.lru_cache(maxsize=256)
def _around_source(
    glossary: tuple[tuple[str, str], ...],
    options: tuple[tuple[str, type, Any], ...],
    source_lang: str,
    target_lang: str,
    model: str,
    role: str,
    prompt_version: int,
) -> tuple[str, str]:
    """The canonical JSON before and after the source, for these settings."""
    settings = {name: value for name, _, value in options}
    return _split_at_source(
        _canonical(glossary, settings, source_lang, target_lang, model, role, prompt_version)
    )


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


@_migration
def m003_review(db: sqlite3.Connection) -> None:
    # Answers the checks rejected, so the review page can show them with the
    # checks that rejected them (a piece's last few, not a log).
    db.execute(
        """
        CREATE TABLE rejections (
            key TEXT NOT NULL,
            answer TEXT NOT NULL,
            problems TEXT NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (key, answer)
        ) WITHOUT ROWID
        """
    )
    # Pieces a person reviewed and accepted (``--accept``), per source file and
    # language; the source hash tells --check whether the review still applies.
    db.execute(
        """
        CREATE TABLE reviews (
            key TEXT NOT NULL,
            source TEXT NOT NULL,
            lang TEXT NOT NULL,
            source_hash TEXT NOT NULL,
            accepted REAL NOT NULL,
            PRIMARY KEY (key, source, lang)
        ) WITHOUT ROWID
        """
    )


@_migration
def m004_pending(db: sqlite3.Connection) -> None:
    # Pieces written to a batch file (``batch export``), waiting for their
    # answers (``batch import``): what is needed to check an answer.
    db.execute(
        """
        CREATE TABLE pending (
            key TEXT PRIMARY KEY,
            piece TEXT NOT NULL,
            created REAL NOT NULL
        ) WITHOUT ROWID
        """
    )


@dataclass(frozen=True)
class Pending:
    """A piece exported for an offline batch: its protected text and how to check it."""

    text: str
    spans: tuple[str, ...]
    block: str
    source_lang: str
    target_lang: str
    model: str
    document: str = ""  # the source file it came from, for messages
    # Quoted values translated inside protected tags (``Protected.values``);
    # rows exported before they existed have none.
    values: tuple[tuple[int, int, str], ...] = ()


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
            # A new translation has not been reviewed yet.
            db.executemany("DELETE FROM reviews WHERE key = ?", [(key,) for key, _ in items])

    def put_rejections(self, items: Sequence[tuple[str, str, Sequence[str]]]) -> None:
        """Record answers the checks rejected: (key, answer, problems). The newest
        ``KEEP_REJECTIONS`` per key are kept."""
        if not items:
            return
        now = time.time()
        with self._transaction() as db:
            for key, answer, problems in items:
                db.execute(
                    "INSERT OR REPLACE INTO rejections (key, answer, problems, created)"
                    " VALUES (?, ?, ?, ?)",
                    (key, answer[:_MAX_ANSWER], json.dumps(list(problems)), now),
                )
                db.execute(
                    "DELETE FROM rejections WHERE key = ? AND answer NOT IN (SELECT answer"
                    " FROM rejections WHERE key = ? ORDER BY created DESC LIMIT ?)",
                    (key, key, KEEP_REJECTIONS),
                )

    def rejections(self, keys: Sequence[str]) -> dict[str, list[tuple[str, list[str]]]]:
        """Rejected (answer, problems) per key, oldest first."""
        out: dict[str, list[tuple[str, list[str]]]] = {}
        for rows in self._select(
            "SELECT key, answer, problems FROM rejections WHERE key IN ({}) ORDER BY created",
            keys,
        ):
            for key, answer, problems in rows:
                out.setdefault(key, []).append((answer, json.loads(problems)))
        return out

    def peek(self, keys: Sequence[str]) -> dict[str, Entry]:
        """Like ``get_many``, for looking only (the review page): no hit counters move."""
        found: dict[str, Entry] = {}
        for rows in self._select(
            "SELECT key, translation, model, prompt_tokens, output_tokens, seconds,"
            " created, kept FROM entries WHERE key IN ({})",
            keys,
        ):
            for key, translation, model, prompt, output, seconds, created, kept in rows:
                found[key] = Entry(
                    translation, model, prompt, output, seconds, created, kept=bool(kept)
                )
        return found

    def accept(self, items: Sequence[tuple[str, str, str, str]]) -> int:
        """Record pieces as reviewed and accepted: (key, source, lang, source_hash).
        Only keys with a stored translation count; returns how many did."""
        if not items:
            return 0
        stored = self.peek([key for key, *_ in items])
        rows = [(*item, time.time()) for item in items if item[0] in stored]
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO reviews (key, source, lang, source_hash, accepted)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def reviewed(self, keys: Sequence[str]) -> set[str]:
        """The keys among ``keys`` a person accepted (``--accept``)."""
        return {
            key
            for rows in self._select("SELECT key FROM reviews WHERE key IN ({})", keys)
            for (key,) in rows
        }

    def put_pending(self, items: Iterable[tuple[str, Pending]]) -> None:
        """Record pieces exported for a batch, so that ``batch import`` can check
        their answers without the documents."""
        now = time.time()
        rows = [(key, json.dumps(asdict(p), ensure_ascii=False), now) for key, p in items]
        if not rows:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO pending (key, piece, created) VALUES (?, ?, ?)", rows
            )

    def get_pending(self, keys: Sequence[str]) -> dict[str, Pending]:
        out: dict[str, Pending] = {}
        for rows in self._select("SELECT key, piece FROM pending WHERE key IN ({})", keys):
            for key, piece in rows:
                data = json.loads(piece)
                values = tuple((int(a), int(b), str(q)) for a, b, q in data.get("values", ()))
                out[key] = Pending(**{**data, "spans": tuple(data["spans"]), "values": values})
        return out

    def drop_pending(self, keys: Sequence[str]) -> None:
        with self._transaction() as db:
            db.executemany("DELETE FROM pending WHERE key = ?", [(k,) for k in keys])

    def _select(self, query: str, keys: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), _CHUNK):
            part = wanted[start : start + _CHUNK]
            with self._lock:
                try:
                    rows = self._conn().execute(query.format(",".join("?" * len(part))), part)
                    fetched = rows.fetchall()
                except sqlite3.Error as exc:
                    raise _failure(WriteError, self.path, exc) from None
            yield fetched

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
            db.execute("DELETE FROM rejections")
            db.execute("DELETE FROM reviews")
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


def reviewed_counts(
    path: Path, files: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str], int]:
    """Pieces accepted by review per (source, lang) whose source is still
    ``source_hash``: for ``--check``, which writes nothing, so the memory is
    opened read-only and a missing one counts nothing."""
    counts: dict[tuple[str, str], int] = {}
    if not files or not path.exists():
        return counts
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT)
    except sqlite3.Error:
        return counts
    try:
        for source, lang, source_hash in files:
            (n,) = db.execute(
                "SELECT count(*) FROM reviews WHERE source = ? AND lang = ? AND source_hash = ?",
                (source, lang, source_hash),
            ).fetchone()
            if n:
                counts[(source, lang)] = int(n)
    except sqlite3.Error:
        # An older memory without the reviews table: nothing was reviewed.
        return {}
    finally:
        db.close()
    return counts


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
