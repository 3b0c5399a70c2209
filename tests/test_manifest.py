from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, WriteError
from pipeline.manifest import Manifest, Record, file_hash, settings_hash, status, wrote

SRC = b"# Title\n\nHello.\n"
OUT = "# 标题\n\n你好。\n".encode()
SETTINGS = settings_hash({"model": "m", "target": "zh", "prompt_version": 1})


def record(source: str = "guide/intro.md", **changes: object) -> Record:
    values: dict[str, object] = {
        "source": source,
        "lang": "zh",
        "source_hash": file_hash(SRC),
        "output_hash": file_hash(OUT),
        "settings_hash": SETTINGS,
        "written": 1_700_000_000.5,
    }
    values.update(changes)
    return Record(**values)  # type: ignore[arg-type]


def test_file_hash_is_sha256_hex() -> None:
    assert file_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_settings_hash_ignores_key_order_and_sees_values() -> None:
    assert settings_hash({"a": 1, "b": [1, 2]}) == settings_hash({"b": [1, 2], "a": 1})
    assert settings_hash({"a": 1}) != settings_hash({"a": 2})


def test_missing_file_is_an_empty_manifest(tmp_path: Path) -> None:
    m = Manifest.load(tmp_path / "nope" / "manifest.json")
    assert list(m.items()) == [] and len(m) == 0


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / ".translate-dir" / "manifest.json"
    m = Manifest.load(path)
    m.set("guide/intro.md", record())
    m.set("a/ü b.md", record("a/ü b.md", written=5))
    m.set("gone.md", record("gone.md"))
    m.remove("gone.md")
    m.remove("never-there.md")
    m.save()
    again = Manifest.load(path)
    assert list(again.items()) == [
        ("a/ü b.md", record("a/ü b.md", written=5.0)),
        ("guide/intro.md", record()),
    ]
    assert again.get("guide/intro.md") == record()
    assert again.get("gone.md") is None


def test_file_is_sorted_one_output_per_line(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    m = Manifest(path)
    for name in ("z.md", "b.md", "m.md"):
        m.set(name, record(name))
    m.save()
    text = path.read_text("utf-8")
    lines = text.splitlines()
    entry_lines = [line for line in lines if line.startswith('    "')]
    assert [json.loads("{" + line.rstrip(",") + "}").popitem()[0] for line in entry_lines] == [
        "b.md",
        "m.md",
        "z.md",
    ]
    assert json.loads(text)["version"] == 1
    assert text.endswith("}\n")
    # Sorted keys inside each record too, so diffs stay stable.
    first = json.loads("{" + entry_lines[0].rstrip(",") + "}")["b.md"]
    assert list(first) == sorted(first)


def test_empty_manifest_saves_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    Manifest(path).save()
    assert json.loads(path.read_text()) == {"version": 1, "outputs": {}}


def test_save_leaves_no_temp_files_and_keeps_the_mode(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    m = Manifest(path)
    m.set("a.md", record("a.md"))
    m.save()
    assert (path.stat().st_mode & 0o777) == 0o644
    path.chmod(0o664)
    m.set("b.md", record("b.md"))
    m.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    assert (path.stat().st_mode & 0o777) == 0o664


def test_unchanged_manifest_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    m = Manifest(path)
    m.set("a.md", record("a.md"))
    m.save()
    os.utime(path, (1, 1))
    Manifest.load(path).save()
    assert path.stat().st_mtime == 1
    m.save()
    assert path.stat().st_mtime == 1


@pytest.mark.parametrize("fail_at", ["fsync", "replace"])
def test_failed_save_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    path = tmp_path / "manifest.json"
    m = Manifest(path)
    m.set("a.md", record("a.md"))
    m.save()
    before = path.read_bytes()

    def boom(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, fail_at, boom)
    m.set("b.md", record("b.md"))
    with pytest.raises(WriteError, match="No space left on device") as info:
        m.save()
    assert "previous manifest is unchanged" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    # Nothing was lost in memory: the next save writes both records.
    m.save()
    assert [rel for rel, _ in Manifest.load(path).items()] == ["a.md", "b.md"]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 1}',
        '{"version": 0, "outputs": {}}',
        '{"version": 1, "outputs": {"a.md": "x"}}',
        '{"version": 1, "outputs": {"a.md": {"source": "a.md"}}}',
        json.dumps(
            {
                "version": 1,
                "outputs": {
                    "a.md": {
                        "source": "a.md",
                        "lang": "zh",
                        "source_hash": "x",
                        "output_hash": "y",
                        "settings_hash": "z",
                        "written": "yesterday",
                    }
                },
            }
        ),
    ],
)
def test_corrupt_file_says_delete_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="delete it to start over") as info:
        Manifest.load(path)
    assert "\n" not in str(info.value)


def test_newer_format_asks_for_an_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"version": 99, "outputs": {}}')
    with pytest.raises(ConfigError, match="upgrade translate-dir"):
        Manifest.load(path)


def test_updates_from_threads_while_saving(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.json")

    def worker(n: int) -> None:
        for i in range(200):
            m.set(f"{n}/{i}.md", record(f"{n}/{i}.md"))
            if i % 50 == 0:
                m.save()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    m.save()
    assert len(Manifest.load(tmp_path / "manifest.json")) == 800


# --- status ------------------------------------------------------------------


def check(
    rec: Record | None,
    source: bytes | None = SRC,
    output: bytes | None = OUT,
    settings: str = SETTINGS,
) -> str:
    return status(rec, source_bytes=source, output_bytes=output, settings_hash=settings)


def test_status_current() -> None:
    assert check(record()) == "current"


def test_status_missing() -> None:
    assert check(record(), output=None) == "missing"
    assert check(None, output=None) == "missing"


def test_status_stale_when_source_or_settings_change() -> None:
    assert check(record(), source=SRC + b"\nMore.\n") == "stale"
    assert check(record(), settings=settings_hash({"model": "other"})) == "stale"


def test_status_edited_wins_over_stale() -> None:
    edited = OUT + "手改。\n".encode()
    assert check(record(), output=edited) == "edited"
    assert check(record(), source=b"changed", output=edited) == "edited"


def test_status_orphan_when_the_source_is_gone() -> None:
    assert check(record(), source=None) == "orphan"
    assert check(record(), source=None, output=None) == "orphan"


def test_status_untracked_when_we_never_wrote_it() -> None:
    assert check(None) == "untracked"
    assert check(None, source=None) == "untracked"


def test_wrote_tells_prune_whether_deleting_is_safe() -> None:
    assert wrote(record(), OUT)
    assert not wrote(record(), OUT + b"edit")
    assert not wrote(record(), None)
    assert not wrote(None, OUT)
