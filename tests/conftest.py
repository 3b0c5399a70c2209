"""Shared fixtures: isolated state, a scripted backend, paths to the test data."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import use_scripted

# One real llama_cpp.server per session, shared by every test that asks for it.
pytest_plugins = ["tests.llama_server"]

REPO = Path(__file__).resolve().parent.parent
# Real documents and sentences the tests read (licences and sources in its README.md).
DATA = REPO / "tests" / "data"


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


def data_path(*parts: str) -> Path:
    """A path under tests/data/. Missing data fails the test: it ships with the
    repository, so its absence is a broken checkout, not a reason to skip."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"test data missing: {path} (it ships in tests/data/; see its README.md)")
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
