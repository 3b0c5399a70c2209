"""Shared fixtures: isolated state, a scripted backend, paths to the shared data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import ScriptedBackend, to_zh
from tests.reliability_support import use_scripted

# One real llama_cpp.server per session, shared by every test that asks for it.
pytest_plugins = ["tests.llama_server"]

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_state(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Each test gets its own cache (translation memory) and no stray Ollama host."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    monkeypatch.delenv("TRANSLATE_DIR_API_KEY", raising=False)
    yield cache


def shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    """The CLI's backend replaced by a scripted one (``--backend auto`` means embedded)."""
    return use_scripted(monkeypatch, ScriptedBackend(to_zh))


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's input/ in tmp_path, which becomes the current folder."""
    shutil.copytree(REPO / "input", tmp_path / "input")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "input"
