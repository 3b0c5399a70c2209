"""The orchestrator's handling of bad answers: retry, split, keep in source, never write broken.

A scripted backend plays a small model that misbehaves in each of the ways
small local models do; every case must end in a correct file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.report import RunReport
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import translate_one

DOC = """# Install guide

Run `pip install translate-dir` to install the [latest release](https://example.com/r).

| Option | Meaning |
| --- | --- |
| to | the target language |

Keep your documents private.
"""


def run(
    tmp_path: Path, backend: ScriptedBackend, text: str = DOC, **cfg: object
) -> tuple[str, RunReport]:
    out, report = translate_one(tmp_path, "doc.md", text.encode("utf-8"), backend, cfg)
    return out.decode("utf-8"), report


def test_good_answers_translate_everything(tmp_path: Path) -> None:
    out, report = run(tmp_path, ScriptedBackend(to_zh))
    assert "`pip install translate-dir`" in out and "(https://example.com/r)" in out
    assert "Keep your" not in out
    assert report.kept == 0


def answer_for(marker: str, bad: str):  # type: ignore[no-untyped-def]
    """Reply ``bad`` to the request containing ``marker``, a good translation otherwise."""

    def reply(text: str) -> str:
        return bad if marker in text else to_zh(text)

    return reply


@pytest.mark.parametrize(
    ("case", "bad"),
    [
        ("dropped placeholder", "运行以安装[最新版本](⟦2⟧)。"),
        ("looping", "安装" * 300),
        ("echo", "Run ⟦1⟧ to install the [latest release](⟦2⟧)."),
        ("obeys an injected instruction", "OK"),
    ],
)
def test_bad_answer_is_retried_then_kept_in_source(tmp_path: Path, case: str, bad: str) -> None:
    backend = ScriptedBackend(answer_for("Run ⟦1⟧", bad), one_segment_per_request=True)
    out, report = run(tmp_path, backend)
    # The paragraph stays in English, exactly; the rest is translated.
    assert (
        "Run `pip install translate-dir` to install the [latest release](https://example.com/r)."
        in out
    )
    assert "Keep your" not in out
    assert report.kept == 1
    asked = [r for r in backend.requests if "Run ⟦1⟧" in r.prompt.text]
    assert len(asked) == 2, "one retry with a stricter prompt"
    assert "previous answer was rejected" in asked[1].prompt.system
    assert asked[1].temperature == 0.0


def test_preamble_and_wrapping_fence_are_cleaned(tmp_path: Path) -> None:
    def reply(text: str) -> str:
        return "Here is the translation:\n\n```markdown\n" + to_zh(text) + "\n```"

    out, report = run(tmp_path, ScriptedBackend(reply, one_segment_per_request=True))
    assert "Here is" not in out and "```markdown" not in out
    assert report.kept == 0


def test_broken_table_is_kept_in_source(tmp_path: Path) -> None:
    backend = ScriptedBackend(
        answer_for("| Option |", "| 选项 |\n| --- |\n| 到 |"), one_segment_per_request=True
    )
    out, report = run(tmp_path, backend)
    assert "| Option | Meaning |\n| --- | --- |\n| to | the target language |" in out
    assert report.kept == 1


def test_merged_paragraphs_split_and_retried(tmp_path: Path) -> None:
    def reply(text: str) -> str:
        # Multi-piece chunks come back merged into one paragraph; single pieces are fine.
        return to_zh(text.replace("\n\n", " ")) if "\n\n" in text else to_zh(text)

    backend = ScriptedBackend(reply)
    out, report = run(tmp_path, backend)
    assert report.kept == 0
    assert "Keep your" not in out and "Install guide" not in out
    sent = [r.prompt.text for r in backend.requests]
    merged = [text for text in sent if "\n\n" in text]
    alone = {text for text in sent if "\n\n" not in text}
    assert merged, "the pieces went out together first"
    # Each piece of a chunk whose answer came back merged was asked for again on its own.
    assert {piece for text in merged for piece in text.split("\n\n")} <= alone


def test_previous_chunk_context_is_sent(tmp_path: Path) -> None:
    backend = ScriptedBackend(to_zh, one_segment_per_request=True)
    run(tmp_path, backend, previous_chunk_context=True)
    prompts = [r.prompt for r in backend.requests]
    assert prompts[0].context is None
    assert prompts[1].context is not None
    src, dst = prompts[1].context
    assert src == prompts[0].text and dst == to_zh(prompts[0].text)


def test_glossary_terms_reach_only_chunks_that_use_them(tmp_path: Path) -> None:
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text('[glossary.terms.zh]\n"release" = "发行版"\n', encoding="utf-8")
    backend = ScriptedBackend(to_zh, one_segment_per_request=True)
    translate_one(tmp_path, "doc.md", DOC.encode("utf-8"), backend, config_file=cfg)
    with_term = [r.prompt for r in backend.requests if r.prompt.glossary]
    assert len(with_term) == 1 and "release" in with_term[0].text
    assert with_term[0].glossary == (("release", "发行版"),)
    assert "release → 发行版" in with_term[0].messages()[0]["content"]


def test_do_not_translate_terms_never_reach_the_model(tmp_path: Path) -> None:
    cfg = tmp_path / "pipeline.toml"
    cfg.write_text('[glossary]\ndo_not_translate = ["TiDB"]\n', encoding="utf-8")
    backend = ScriptedBackend(to_zh)
    out, _ = translate_one(
        tmp_path, "doc.md", b"Deploy TiDB on Kubernetes.\n", backend, config_file=cfg
    )
    assert all("TiDB" not in r.prompt.text for r in backend.requests)
    assert "TiDB" in out.decode("utf-8")


def test_whole_document_check_keeps_only_the_offending_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if a per-chunk check missed it, a segment whose translation changes the
    document's structure is kept in the source; the others stay translated."""
    from pipeline import validate

    monkeypatch.setattr(validate, "check_segment", lambda *a, **k: [])
    backend = ScriptedBackend(answer_for("Keep your", "# 标题"), one_segment_per_request=True)
    out, report = run(tmp_path, backend)
    assert "Keep your documents private." in out
    assert "# 标题" not in out
    assert "Install guide" not in out  # the heading was translated and kept
    assert report.kept == 1


def test_long_paragraph_is_cut_at_sentences_without_breaking_inline_code(tmp_path: Path) -> None:
    sentence = "This sentence explains one more detail of the setup. "
    text = sentence * 20 + "Run `make a. b. c` now. " + sentence * 20 + "\n"
    backend = ScriptedBackend(to_zh, one_segment_per_request=True)
    out, report = run(tmp_path, backend, text=text, chunk_tokens=100)
    assert len(backend.requests) > 2, "the paragraph was cut into pieces"
    assert all("make a" not in r.prompt.text for r in backend.requests)
    assert "`make a. b. c`" in out
    assert "This sentence" not in out and report.kept == 0
    assert out.count("\n") == 1, "the pieces are joined back into one paragraph"
