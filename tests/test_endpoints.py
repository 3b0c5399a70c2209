"""Several servers at once: least busy first, failover, nothing lost or asked twice.

The pool's rules with scripted endpoints, then the whole CLI against two
servers that speak Ollama's wire format, one of which is stopped mid-run.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.backends.base import NullEvents, Request, Result, StartInfo
from pipeline.backends.pool import Pool
from pipeline.errors import BackendUnavailable, ContextOverflow, RequestFailed, TransientError
from pipeline.prompts import Prompt
from pipeline.testing import ScriptedBackend, to_zh
from tests.ollama_wire import serve_fake_ollama
from tests.reliability_support import invoke, outputs, wait_for

REQUEST = Request(
    prompt=Prompt(system="s", text="Hello", source_name="English", target_name="Chinese"),
    max_tokens=64,
    temperature=0.0,
    top_p=1.0,
    seed=1,
)


class Endpoint(ScriptedBackend):
    """A scripted endpoint with its own model, slots and failure."""

    def __init__(
        self,
        model: str = "m",
        slots: int = 1,
        fail: Exception | None = None,
        start_error: Exception | None = None,
    ) -> None:
        super().__init__(to_zh, concurrency=slots)
        self.model = model
        self.fail = fail
        self.start_error = start_error
        self.gate: threading.Event | None = None

    def start(self) -> StartInfo:
        if self.start_error is not None:
            raise self.start_error
        return replace(super().start(), model=self.model)

    def translate(self, request: Request) -> Result:
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            self.count += 1
            raise self.fail
        return super().translate(request)


def pool(*members: Endpoint, clock: Callable[[], float] | None = None) -> Pool:
    members_ = [(f"e{i}", m) for i, m in enumerate(members)]
    return Pool(members_, NullEvents(), clock=clock or time.monotonic)


def test_start_sums_the_slots_and_takes_the_smallest_context() -> None:
    a, b = Endpoint(slots=2), Endpoint(slots=3)
    info = pool(a, b).start()
    assert info.concurrency == 5
    assert info.model == "m"


def test_endpoints_with_different_models_are_refused_by_name() -> None:
    with pytest.raises(BackendUnavailable, match=r"different models \(e0: m, e1: other\)"):
        pool(Endpoint("m"), Endpoint("other")).start()


def test_an_endpoint_down_at_start_is_left_out_while_another_answers() -> None:
    down = Endpoint(start_error=BackendUnavailable("not answering"))
    up = Endpoint()
    p = pool(down, up)
    assert p.start().concurrency == 1
    p.translate(REQUEST)
    assert (down.count, up.count) == (0, 1)
    with pytest.raises(BackendUnavailable, match="not answering"):
        pool(Endpoint(start_error=BackendUnavailable("not answering"))).start()


def test_the_least_busy_endpoint_gets_the_next_request() -> None:
    a, b = Endpoint(slots=1), Endpoint(slots=1)
    p = pool(a, b)
    p.start()
    a.gate = threading.Event()  # a holds its first request
    first = threading.Thread(target=p.translate, args=(REQUEST,))
    first.start()
    wait_for(lambda: a.count == 0 and p.endpoint_stats()[0].requests == 0 and _busy(p, 0))
    p.translate(REQUEST)  # a is busy: b answers at once
    assert b.count == 1
    a.gate.set()
    first.join(10)
    assert (a.count, b.count) == (1, 1)
    assert [s.requests for s in p.endpoint_stats()] == [1, 1]


def _busy(p: Pool, index: int) -> bool:
    return p._members[index].in_flight == 1


def test_a_failing_endpoint_sits_out_and_the_request_goes_elsewhere() -> None:
    now = [0.0]
    broken = Endpoint(fail=TransientError("busy, after its retries"))
    good = Endpoint()
    p = pool(broken, good, clock=lambda: now[0])
    p.start()
    for _ in range(5):
        assert p.translate(REQUEST).text  # each answered once, by the good one
    assert (broken.count, good.count) == (1, 5), "the broken one sat out after its failure"
    now[0] += 31  # its cooldown is over: it is tried again, fails again
    p.translate(REQUEST)
    assert (broken.count, good.count) == (2, 6)
    stats = {s.endpoint: s for s in p.endpoint_stats()}
    assert (stats["e0"].failures, stats["e0"].requests) == (2, 0)
    assert stats["e1"].requests == 6


def test_every_endpoint_down_stops_the_run() -> None:
    p = pool(Endpoint(fail=BackendUnavailable("gone")), Endpoint(fail=TransientError("busy")))
    p.start()
    with pytest.raises(BackendUnavailable, match="every endpoint stopped answering"):
        p.translate(REQUEST)


@pytest.mark.parametrize(
    "error", [ContextOverflow("too long"), RequestFailed("the answer was filtered")]
)
def test_a_failure_about_the_request_is_not_the_endpoints_fault(error: Exception) -> None:
    a, b = Endpoint(fail=error), Endpoint()
    p = pool(a, b)
    p.start()
    with pytest.raises(type(error)):
        p.translate(REQUEST)
    assert b.count == 0
    assert [s.failures for s in p.endpoint_stats()] == [0, 0]


# ------------------------------------------------------------------ through the CLI


def write_pages(folder: Path, pages: int = 6, paragraphs: int = 5) -> None:
    folder.mkdir()
    for page in range(pages):
        text = "\n\n".join(
            f"Paragraph {n} of page {page} says something worth translating."
            for n in range(paragraphs)
        )
        (folder / f"page{page}.md").write_text(f"# Page {page}\n\n{text}\n")


def test_two_servers_share_the_work_and_one_stopping_loses_nothing(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    write_pages(src, pages=40)
    chats = threading.Semaphore(0)

    def counting(text: str) -> str:
        chats.release()
        return to_zh(text)

    with serve_fake_ollama(translate=counting) as a, serve_fake_ollama(translate=to_zh) as b:

        def stop_a_mid_run() -> None:
            for _ in range(3):  # a has answered three chunks
                chats.acquire(timeout=60)
            a.server.stop()

        stopper = threading.Thread(target=stop_a_mid_run, daemon=True)
        stopper.start()
        outcome = invoke(
            src,
            "--to",
            "zh",
            "--out",
            out,
            "--backend",
            "ollama",
            "--model",
            a.model,
            "--host",
            f"{a.url}#slots=2",
            "--host",
            f"{b.url}#slots=2",
            "--json",
        )
        stopper.join(10)
        b_chats = len([c for c in b.chats() if c.get("messages")])
    assert outcome.code == 0, outcome.stderr
    summary = json.loads(outcome.stdout)
    # Every chunk answered exactly once, nothing kept, nothing failed.
    assert summary["requests"] == summary["chunks"] > 3
    assert (summary["kept_in_source"], summary["failed_chunks"]) == (0, 0)
    by_url = {e["endpoint"]: e for e in summary["endpoints"]}
    assert by_url[a.url]["requests"] >= 3 and by_url[a.url]["failures"] >= 1
    assert by_url[b.url]["requests"] == summary["requests"] - by_url[a.url]["requests"]
    assert b_chats >= by_url[b.url]["requests"]
    # Every page whole and translated; every piece once in the memory.
    written = outputs(out)
    assert len(written) == 40
    assert all(b"Paragraph" not in data for data in written.values())
    memory = Path(json.loads(invoke("cache", "stats", "--json").stdout)["path"])
    with sqlite3.connect(memory) as db:
        assert db.execute("SELECT count(*) FROM entries").fetchone()[0] == summary["misses"]


def test_servers_with_different_models_stop_the_run_with_one_line(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_pages(src, pages=1, paragraphs=1)
    with (
        serve_fake_ollama(models=["qwen2.5:7b"]) as a,
        serve_fake_ollama(models=["llama3.2:3b"]) as b,
    ):
        outcome = invoke(
            src, "--to", "zh", "--out", tmp_path / "out", "--backend", "ollama",
            "--host", a.url, "--host", b.url,
        )  # fmt: skip
    assert outcome.code == 3
    [line] = [ln for ln in outcome.stderr.splitlines() if "error" in ln]
    assert "qwen2.5:7b" in line and b.url.split("//")[1] in line, line
    assert not (tmp_path / "out").exists()
