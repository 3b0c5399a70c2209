"""Faults in the backend, on the wire: a fake Ollama server (tests/ollama_wire.py)
that dies in the middle of a run, hangs, answers 500 / 503 / malformed JSON, or
breaks a stream off. The real CLI drives it with --backend ollama --host URL.

Each run retries within bounds, says what failed, exits 1 or 3, and a re-run
against a healthy server asks only for the text that was not translated yet:
the assertions compare what each server received.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from pipeline.testing import to_zh
from tests.ollama_wire import FakeOllama
from tests.reliability_support import Outcome, has_cjk, invoke, outputs, temp_files

# Three files of three paragraphs; chunk_tokens = 20 makes each paragraph its own
# request, so a fault hits one chunk and the others show what was kept.
DOCS = {
    f"{name}.md": "\n\n".join(
        f"Paragraph {i} of {name} says something about its subject in a few plain words."
        for i in range(1, 4)
    )
    + "\n"
    for name in ("alpha", "beta", "gamma")
}
CONFIG = """
[translate]
chunk_tokens = 20

[backend]
connect_timeout = 2.0
read_timeout = {read_timeout}
request_retries = {retries}
"""


@dataclass
class FaultyOllama(FakeOllama):
    """The fake Ollama, plus a fault plan for translation requests by number (1-based).

    Faults: "500", "503", "malformed" (a 200 whose body is not JSON), "not-ollama"
    (JSON of another shape), "drop" (the stream breaks off), "no-done" (the stream
    ends without its final event), "hang" (no answer until released), "die" (the
    server goes away for good: this and every later connection fails).
    """

    plan: dict[int, str] = field(default_factory=dict)
    # marker -> fault, for every request whose text contains the marker.
    sticky: dict[str, str] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)
    seen: int = 0
    dead: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.release = threading.Event()

    def _chat(self, request: Request) -> Response:
        body = json.loads(request.data) if request.data else {}
        if not body.get("messages"):
            return super()._chat(request)
        text = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        with self._lock:
            self.seen += 1
            fault = "die" if self.dead else self.plan.get(self.seen)
            fault = fault or next((f for m, f in self.sticky.items() if m in text), None)
        if fault is None:
            response = super()._chat(request)
            with self._lock:
                self.answered.append(text)
            return response
        self._record(request)
        if fault in ("500", "503"):
            message = "llama runner process has terminated" if fault == "500" else "server busy"
            return Response(json.dumps({"error": message}), status=int(fault))
        if fault == "malformed":
            return Response("<html>502 Bad Gateway</html>\n", mimetype="application/x-ndjson")
        if fault == "not-ollama":
            return Response('{"choices": []}\n', mimetype="application/x-ndjson")
        if fault == "hang":
            self.release.wait(30)
            return Response(status=503)
        if fault == "no-done":
            line = {"model": self.model, "message": {"role": "assistant", "content": "译"}}
            return Response(json.dumps(line) + "\n", mimetype="application/x-ndjson")
        if fault == "die" and not self.dead:
            self.dead = True
            threading.Thread(target=self.server.stop, daemon=True).start()

        def broken() -> Iterator[bytes]:
            part = {"model": "m", "message": {"role": "assistant", "content": "par"}, "done": False}
            yield json.dumps(part).encode() + b"\n"
            raise ConnectionResetError("the fake server drops the connection")

        return Response(broken(), mimetype="application/x-ndjson")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    configure(tmp_path)
    return tmp_path


def configure(project: Path, read_timeout: float = 10.0, retries: int = 1) -> None:
    (project / "pipeline.toml").write_text(
        CONFIG.format(read_timeout=read_timeout, retries=retries), encoding="utf-8"
    )


def serve(plan: dict[int, str] | None = None) -> tuple[HTTPServer, FaultyOllama]:
    server = HTTPServer(threaded=True)
    server.start()
    return server, FaultyOllama(server, translate=to_zh, plan=plan or {})


def translate(fake: FaultyOllama, *extra: str) -> Outcome:
    return invoke(
        "docs", "--to", "zh", "--backend", "ollama", "--host", fake.url, "--model", fake.model,
        *extra,
    )  # fmt: skip


def all_texts() -> set[str]:
    return {p for text in DOCS.values() for p in text.strip().split("\n\n")}


def rerun_completes_the_rest(project: Path, first: FaultyOllama) -> FaultyOllama:
    """A re-run against a healthy server: exit 0, every file translated, and only
    the paragraphs the first server did not answer are asked for."""
    server, healthy = serve()
    try:
        outcome = translate(healthy)
        assert outcome.code == 0, outcome.stderr
        asked = set(healthy.user_texts())
        assert asked, "something was left to translate"
        assert asked.isdisjoint(first.answered), "a finished chunk was requested again"
        assert asked | set(first.answered) == all_texts()
        for name, data in outputs(project / "output" / "zh").items():
            text = data.decode()
            assert "Paragraph" not in text and has_cjk(text), name
        assert temp_files(project / "output") == []
        # And a third run has nothing left to do.
        before = len(healthy.chats())
        assert translate(healthy).code == 0
        assert len(healthy.chats()) == before
    finally:
        server.clear()
        if server.is_running():
            server.stop()
    return healthy


def run_faulty(
    plan: dict[int, str] | None = None, sticky: dict[str, str] | None = None
) -> tuple[Outcome, FaultyOllama]:
    server, fake = serve(plan)
    fake.sticky = sticky or {}
    try:
        return translate(fake), fake
    finally:
        fake.release.set()
        server.clear()
        if server.is_running():
            server.stop()


# --------------------------------------------------------------------------- passing faults


@pytest.mark.parametrize("fault", ["500", "503", "malformed", "drop"])
def test_one_passing_fault_is_retried_and_the_run_succeeds(project: Path, fault: str) -> None:
    outcome, fake = run_faulty({2: fault})
    assert outcome.code == 0, outcome.stderr
    # The failed request was sent again, once: nine paragraphs, ten requests.
    assert fake.seen == 10 and len(fake.answered) == 9
    assert "kept in source" in outcome.stderr and " 0 kept in source" in outcome.stderr
    assert set(outputs(project / "output" / "zh")) == set(DOCS)


@pytest.mark.parametrize("fault", ["500", "503", "malformed", "drop", "no-done", "not-ollama"])
def test_a_fault_that_persists_fails_that_chunk_and_a_rerun_finishes(
    project: Path, fault: str
) -> None:
    # beta's first paragraph fails on every try; everything else is answered.
    outcome, fake = run_faulty(sticky={"Paragraph 1 of beta": fault})
    assert outcome.code == 1, outcome.stderr
    [line] = outcome.lines_about("beta.md")
    assert "kept in the source language" in line
    assert "Paragraph" not in outcome.stderr, "no document text in messages"
    # The other files are whole translations; beta.md is written with the one
    # paragraph in English, and no chunk of it was lost.
    written = outputs(project / "output" / "zh")
    assert set(written) == set(DOCS)
    assert b"Paragraph" not in written["alpha.md"] and b"Paragraph" not in written["gamma.md"]
    assert written["beta.md"].count(b"Paragraph 1 of beta") == 1
    # Bounded: (1 + backend.request_retries) tries for a passing fault, times
    # (1 + translate.retries) for a fault the orchestrator retries itself.
    tries = fake.seen - len(fake.answered)
    assert 1 <= tries <= 4
    assert len(fake.answered) == 8
    # Not "current": --check (no model needed) says the file is unfinished.
    check = invoke("docs", "--to", "zh", "--check")
    assert check.code == 1 and "beta.md: incomplete" in check.stderr
    rerun_completes_the_rest(project, fake)


def test_server_dies_mid_run_exit_3_then_rerun_finishes(project: Path) -> None:
    outcome, fake = run_faulty({5: "die"})
    assert outcome.code == 3, outcome.stderr
    errors = [x for x in outcome.stderr.splitlines() if x.startswith("translate-dir: error:")]
    assert len(errors) == 1
    assert "Ollama stopped answering" in errors[0] and "finished files are kept" in errors[0]
    assert fake.url.split("//")[1] in errors[0]
    # alpha.md was finished before the server died: it is written whole.
    written = outputs(project / "output" / "zh")
    assert b"Paragraph" not in written["alpha.md"]
    assert len(fake.answered) == 4
    assert temp_files(project / "output") == []
    rerun_completes_the_rest(project, fake)


def test_server_hangs_read_timeout(project: Path) -> None:
    # The hung requests wait on a gate (released when the run is over); the read
    # timeout is generous, so the healthy requests never come near it even on a
    # loaded machine.
    configure(project, read_timeout=3.0, retries=1)
    outcome, fake = run_faulty({3: "hang", 4: "hang"})
    assert outcome.code == 1, outcome.stderr
    [line] = outcome.lines_about("alpha.md")
    assert "sent nothing for 3 s (backend.read_timeout)" in line
    assert len(fake.answered) == 8
    configure(project)
    rerun_completes_the_rest(project, fake)


def test_server_down_from_the_start_is_exit_3_and_writes_nothing(project: Path) -> None:
    server, fake = serve()
    url = fake.url
    server.stop()
    outcome = invoke("docs", "--to", "zh", "--backend", "ollama", "--host", url)
    assert outcome.code == 3
    assert outcome.stderr.count("\n") == 1 and "ollama serve" in outcome.stderr
    assert outputs(project / "output" / "zh") == {}
