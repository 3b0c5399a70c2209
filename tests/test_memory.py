from __future__ import annotations

import hashlib
import json
import selectors
import signal
import sqlite3
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import memory as memory_mod
from pipeline.errors import ConfigError, WriteError
from pipeline.memory import (
    Entry,
    Memory,
    default_path,
    m001_initial,
    normalise_source,
    segment_key,
)
from tests.procs import popen_python

BASE: dict[str, Any] = {
    "source_text": "Hello **world**.\n\nSecond line.",
    "source_lang": "en",
    "target_lang": "zh",
    "model": "gemma3:270m",
    "role": "default",
    "prompt_version": 1,
    "glossary": [("world", "世界"), ("line", "行")],
    "options": {"temperature": 0.2, "top_p": 0.9, "seed": 7},
}


def key(**changes: Any) -> str:
    return segment_key(**{**BASE, **changes})


def entry(text: str, created: float = 1_700_000_000.0) -> Entry:
    return Entry(
        translation=text,
        model="gemma3:270m",
        prompt_tokens=12,
        output_tokens=9,
        seconds=0.25,
        created=created,
    )


# --- default path ------------------------------------------------------------


def test_default_path_uses_xdg_cache_home(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "c"), "HOME": "/nowhere"}
    assert default_path(env) == tmp_path / "c" / "translate-dir" / "memory.sqlite"


def test_default_path_falls_back_to_home_cache(tmp_path: Path) -> None:
    expected = tmp_path / ".cache" / "translate-dir" / "memory.sqlite"
    assert default_path({"HOME": str(tmp_path)}) == expected
    # A relative XDG value is invalid by the spec and ignored.
    assert default_path({"HOME": str(tmp_path), "XDG_CACHE_HOME": "rel"}) == expected
    assert default_path({"HOME": str(tmp_path), "XDG_CACHE_HOME": ""}) == expected


# --- keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"source_text": "Hello **world**!\n\nSecond line."},
        {"source_lang": "de"},
        {"target_lang": "ja"},
        {"model": "qwen2.5:7b"},
        {"role": "technical"},
        {"prompt_version": 2},
        {"glossary": [("world", "世界")]},
        {"glossary": [("world", "世界"), ("line", "线")]},
        {"glossary": [("world", "天下"), ("line", "行")]},
        {"glossary": [("world", "世界"), ("line", "行"), ("Hello", "你好")]},
        {"glossary": []},
        {"options": {"temperature": 0.3, "top_p": 0.9, "seed": 7}},
        {"options": {"temperature": 0.2, "top_p": 0.9, "seed": 8}},
        {"options": {"temperature": 0.2, "top_p": 0.9}},
        {"options": {"temperature": 0.2, "top_p": 0.9, "seed": 7, "num_ctx": 4096}},
    ],
)
def test_key_changes_with_every_component(change: dict[str, Any]) -> None:
    assert key(**change) != key()


def test_key_is_a_sha256_hex() -> None:
    k = key()
    assert len(k) == 64 and int(k, 16) >= 0
    assert key() == k


def test_key_ignores_newline_style_trailing_blanks_and_unicode_form() -> None:
    assert key(source_text="Hello **world**.\r\n\r\nSecond line.") == key()
    assert key(source_text="Hello **world**.\t\n\nSecond line. ") == key()
    # "é" precomposed (NFC) and decomposed (NFD) are the same text.
    assert key(source_text="caf\u00e9") == key(source_text="cafe\u0301")


def test_key_keeps_markdown_hard_breaks_apart() -> None:
    hard = key(source_text="one  \ntwo")
    assert hard != key(source_text="one\ntwo")
    assert hard == key(source_text="one     \r\ntwo")


def test_key_ignores_glossary_and_option_order() -> None:
    assert key(glossary=[("line", "行"), ("world", "世界")]) == key()
    assert key(options={"seed": 7, "top_p": 0.9, "temperature": 0.2}) == key()


def test_key_rejects_options_that_are_not_json() -> None:
    with pytest.raises(TypeError):
        key(options={"when": object()})


def reference_key(**parts: Any) -> str:
    """segment_key as first written: the whole canonical JSON, every time."""
    canonical = {
        "v": memory_mod.KEY_VERSION,
        "source": normalise_source(parts["source_text"]),
        "source_lang": parts["source_lang"],
        "target_lang": parts["target_lang"],
        "model": parts["model"],
        "role": parts["role"],
        "prompt_version": parts["prompt_version"],
        "glossary": sorted({(src, dst) for src, dst in parts["glossary"]}),
        "options": dict(parts["options"]),
    }
    blob = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def test_keys_stay_what_earlier_versions_stored() -> None:
    # Pinned: a memory written by an earlier version must still be found.
    assert key() == "0361470d9134b2ae4ffab886a1dd0887abc43dadcee3c6694c8a4bc6f73d2c60"
    variants: list[dict[str, Any]] = [
        {},
        {"glossary": []},
        {"source_text": '中文 "quoted" \\ ⟦1⟧ \u2028 tab\t', "target_lang": "de"},
        # Equal values of other types encode differently: never one cached key.
        {"options": {"seed": 1}},
        {"options": {"seed": 1.0}},
        {"options": {"seed": True}},
        {"options": {"seed": 1}},
        {"options": {"context": ["a", "b"], "system": "x" * 5000}},  # unhashable
        {"options": {"nested": {"b": 1, "a": [2]}}},
        {"model": "m\0translate-dir source\0"},  # the slot's own text
        {"role": "casual", "prompt_version": 2, "source_text": ""},
    ]
    for change in variants:
        parts = {**BASE, **change}
        assert segment_key(**parts) == reference_key(**parts), change


def test_normalise_source() -> None:
    assert normalise_source("a \r\nb\t\rc  \n") == "a\nb\nc  \n"


# --- storage -----------------------------------------------------------------


def test_round_trip_and_misses(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.sqlite") as mem:
        assert mem.get_many(["nope"]) == {}
        mem.put_many([("k1", entry("一")), ("k2", entry("二"))])
        got = mem.get_many(["k1", "k2", "k3"])
    assert got == {"k1": entry("一"), "k2": entry("二")}


def test_put_replaces_an_existing_entry(tmp_path: Path) -> None:
    with Memory(tmp_path / "m.sqlite") as mem:
        mem.put_many([("k", entry("old"))])
        mem.put_many([("k", entry("new"))])
        assert mem.get_many(["k"])["k"].translation == "new"
        assert mem.stats().entries == 1


def test_get_many_chunks_long_key_lists(tmp_path: Path) -> None:
    keys = [f"k{i}" for i in range(2500)]
    with Memory(tmp_path / "m.sqlite") as mem:
        mem.put_many([(k, entry(k)) for k in keys[::2]])
        got = mem.get_many(keys)
        assert set(got) == set(keys[::2])
        stats = mem.stats()
    assert (stats.hits, stats.misses) == (1250, 1250)


def test_creates_folders_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "m.sqlite"
    Memory(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        applied = [row[0] for row in db.execute("SELECT name FROM _migrations")]
    assert applied == ["m001_initial", "m002_kept", "m003_review", "m004_pending"]


def test_persists_across_instances_and_migrates_once(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with Memory(path) as mem:
        mem.put_many([("k", entry("值"))])
    with Memory(path) as mem:
        assert mem.get_many(["k"]) == {"k": entry("值")}
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM _migrations").fetchone()[0] == len(
            memory_mod.MIGRATIONS
        )


def test_a_memory_from_before_kept_entries_is_migrated(tmp_path: Path) -> None:
    """A memory written by the first schema gains the kept flag; its entries stay."""
    path = tmp_path / "m.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied REAL)")
        m001_initial(db)
        db.execute("INSERT INTO _migrations VALUES ('m001_initial', 0)")
        db.execute("INSERT INTO entries VALUES ('k', '值', 'm', 1, 2, 0.5, 7.0)")
    db.close()
    with Memory(path) as mem:
        assert mem.get_many(["k"]) == {"k": Entry("值", "m", 1, 2, 0.5, 7.0, kept=False)}
        mem.put_many([("kept", Entry("source text", "m", 0, 0, 0.0, 8.0, kept=True))])
        assert mem.get_many(["kept"])["kept"].kept is True


def test_concurrent_put_many_from_threads(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "m.sqlite")
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for batch in range(10):
                mem.put_many([(f"t{n}-{batch}-{i}", entry(f"{n}/{batch}/{i}")) for i in range(20)])
                mem.get_many([f"t{n}-{batch}-0"])
        except BaseException as exc:  # re-raised below in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert mem.stats().entries == 8 * 10 * 20
    assert mem.get_many(["t7-9-19"])["t7-9-19"].translation == "7/9/19"
    mem.close()


def test_two_instances_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with Memory(path) as a, Memory(path) as b:
        a.put_many([("k", entry("a"))])
        assert b.get_many(["k"])["k"].translation == "a"


def test_stats_counts_hits_misses_and_size(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with Memory(path) as mem:
        empty = mem.stats()
        assert (empty.entries, empty.hits, empty.misses, empty.hit_rate) == (0, 0, 0, 0.0)
        mem.put_many([("a", entry("A")), ("b", entry("B"))])
        mem.get_many(["a", "b", "c", "a"])  # duplicates count once
        mem.get_many(["d"])
    # Lifetime counters survive a reopen.
    with Memory(path) as mem:
        stats = mem.stats()
    assert (stats.entries, stats.hits, stats.misses) == (2, 2, 2)
    assert stats.hit_rate == 0.5
    assert stats.size_bytes >= path.stat().st_size > 0
    assert stats.path == path


def test_clear_removes_everything_and_shrinks(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    with Memory(path) as mem:
        mem.put_many([(f"k{i}", entry("x" * 2000)) for i in range(300)])
        mem.get_many(["k1"])
        before = mem.stats().size_bytes
        assert mem.clear() == 300
        after = mem.stats()
        assert mem.get_many(["k1"]) == {}
    assert (after.entries, after.hits, after.misses) == (0, 0, 0)
    assert after.size_bytes < before / 10


def test_use_after_close_is_an_error(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "m.sqlite")
    mem.close()
    mem.close()  # idempotent
    with pytest.raises(RuntimeError):
        mem.get_many(["k"])


def test_a_file_that_is_not_a_database_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    path.write_bytes(b"this is not sqlite, " * 100)
    with pytest.raises(ConfigError, match="damaged; delete it to start over") as info:
        Memory(path)
    assert "\n" not in str(info.value)


def test_an_unwritable_location_says_what_to_do(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match=r"\[memory\] path"):
        Memory(blocker / "sub" / "m.sqlite")


def test_a_busy_memory_says_to_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_mod, "_BUSY_TIMEOUT", 0.05)
    path = tmp_path / "m.sqlite"
    with Memory(path) as mem:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(WriteError, match="locked for over 0 s; run again"):
                mem.put_many([("k", entry("x"))])
            other.execute("ROLLBACK")
        finally:
            other.close()
        # Nothing was left half-done: the memory works again at once.
        mem.put_many([("k", entry("x"))])
        assert mem.get_many(["k"])["k"].translation == "x"


# --- crash safety ------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipeline.memory import Entry, Memory

    mem = Memory(Path(sys.argv[1]))
    n = 0
    while True:
        mem.put_many([(f"k{n}-{i}", Entry(f"t{n}-{i}", "m", 1, 1, 0.1, 0.0)) for i in range(50)])
        print(n, flush=True)
        n += 1
    """
)


def read_lines_until(proc: subprocess.Popen[str], count: int, deadline: float) -> list[str]:
    """Lines from the child's stdout, polling with a deadline rather than sleeping."""
    assert proc.stdout is not None
    lines: list[str] = []
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while len(lines) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(timeout=remaining):
                raise AssertionError(f"child printed only {lines!r} before the deadline")
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child exited early with {proc.wait()}")
            lines.append(line.strip())
    return lines


def test_entries_survive_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    proc = popen_python(_CHILD, str(path), stdout=subprocess.PIPE, bufsize=1)
    try:
        committed = read_lines_until(proc, 5, time.monotonic() + 30)
        # Killed while it keeps writing: some batch is likely mid-transaction.
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Memory(path) as mem:
        for n in map(int, committed):
            keys = [f"k{n}-{i}" for i in range(50)]
            got = mem.get_many(keys)
            assert len(got) == 50, f"batch {n} lost after kill -9"
            assert got[f"k{n}-49"].translation == f"t{n}-49"
        # Batches are whole or absent, never half-written.
        assert mem.stats().entries % 50 == 0
