"""`translate-dir cache stats|clear` and the hits/misses of the end-of-run summary."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.testing import ScriptedBackend

DOCS = {
    "a.md": "# Title 100\n\nParagraph 101 says one thing.\n\nParagraph 102 says another.\n",
    "b.md": "Paragraph 201 is the only one here.\n",
}
PIECES = 4


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in DOCS.items():
        (tmp_path / "docs").mkdir(exist_ok=True)
        (tmp_path / "docs" / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def stats(*extra: str) -> dict[str, object]:
    code, out, err = invoke("cache", "stats", "--json", *extra)
    assert code == 0, err
    data: dict[str, object] = json.loads(out)
    return data


def summary_counts(err: str) -> tuple[int, int]:
    match = re.search(r"memory (\d+) hits / (\d+) misses", err)
    assert match, err
    return int(match.group(1)), int(match.group(2))


def test_stats_on_a_fresh_machine(isolated_state: Path, project: Path) -> None:
    data = stats()
    assert data["entries"] == 0 and data["hits"] == 0 and data["misses"] == 0
    assert data["hit_rate"] == 0.0
    assert data["path"] == str(isolated_state / "translate-dir" / "memory.sqlite")


def test_stats_count_entries_hits_and_size(scripted: ScriptedBackend, project: Path) -> None:
    code, _, err = invoke("docs", "--to", "zh")
    assert code == 0
    assert summary_counts(err) == (0, PIECES)
    data = stats()
    assert data["entries"] == PIECES
    assert data["hits"] == 0 and data["misses"] == PIECES
    assert isinstance(data["size_bytes"], int) and data["size_bytes"] > 0

    # One paragraph changed: three hits, one miss, one new entry.
    path = project / "docs" / "a.md"
    path.write_text(path.read_text().replace("one thing", "a new thing"), encoding="utf-8")
    code, _, err = invoke("docs", "--to", "zh")
    assert code == 0
    assert summary_counts(err) == (2, 1)
    data = stats()
    assert data["entries"] == PIECES + 1
    assert data["hits"] == 2 and data["misses"] == PIECES + 1
    assert data["hit_rate"] == round(2 / (PIECES + 3), 4)

    # The same in words, one "name: value" line each.
    code, out, _ = invoke("cache", "stats")
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["entries"] == str(PIECES + 1)
    assert set(lines) == {"path", "entries", "size_bytes", "hits", "misses", "hit_rate"}


def test_second_language_is_a_separate_set_of_entries(
    scripted: ScriptedBackend, project: Path
) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    code, _, err = invoke("docs", "--to", "ja")
    assert code == 0
    assert summary_counts(err) == (0, PIECES)
    assert stats()["entries"] == 2 * PIECES


def test_clear_empties_the_memory(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    code, out, _ = invoke("cache", "clear", "--yes")
    assert code == 0
    assert out.strip() == f"removed {PIECES} entries"
    data = stats()
    assert data["entries"] == 0 and data["hits"] == 0 and data["misses"] == 0

    # Outputs are still current (the manifest says so), but --force now pays again.
    done = len(scripted.requests)
    code, _, _ = invoke("docs", "--to", "zh", "--force")
    assert code == 0
    assert len(scripted.requests) > done
    assert stats()["entries"] == PIECES


def test_clear_asks_first(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("docs", "--to", "zh")[0] == 0
    code, _, _ = invoke("cache", "clear", input="n\n")
    assert code == 1
    assert stats()["entries"] == PIECES
    code, out, _ = invoke("cache", "clear", input="y\n")
    assert code == 0 and f"removed {PIECES} entries" in out
    assert stats()["entries"] == 0


def test_memory_path_from_the_config(
    scripted: ScriptedBackend, project: Path, isolated_state: Path
) -> None:
    where = project / "tm" / "memory.sqlite"
    config = project / "pipeline.toml"
    config.write_text(f'[memory]\npath = "{where}"\n', encoding="utf-8")
    assert invoke("docs", "--to", "zh")[0] == 0
    assert where.exists()
    assert not (isolated_state / "translate-dir" / "memory.sqlite").exists()
    data = stats()  # ./pipeline.toml is found in the current folder
    assert data["path"] == str(where) and data["entries"] == PIECES
    assert stats("--config", str(config))["entries"] == PIECES


def test_unusable_memory_is_one_line(project: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (project / "pipeline.toml").write_text(
        f'[memory]\npath = "{blocker}/memory.sqlite"\n', encoding="utf-8"
    )
    code, _, err = invoke("cache", "stats")
    # A memory path the config sets and that cannot work is a config error: exit 2,
    # as for every command (errors are mapped once, in the CLI).
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("translate-dir: error: cannot use the translation memory")
    assert "Traceback" not in err
