"""Offline batch files: export the requests, answer them elsewhere (vllm run-batch
format), import the answers through the same checks as a live run, and a
live run afterwards asks only for what did not pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import invoke, outputs, use_scripted

MODEL = "qwen2.5-7b-instruct"
DOC = """---
title: Private notes
---

# Notes

First paragraph about local models.

```bash
translate-dir notes/ --to zh
```

Second paragraph, with a [link](https://example.com/a).
"""


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def answer_all(
    requests: list[dict[str, Any]], reply: Callable[[str], str | None]
) -> list[dict[str, Any]]:
    """Results in vLLM's run-batch output format; ``reply`` None means an error line."""
    out = []
    for n, req in enumerate(requests):
        text = reply(req["body"]["messages"][-1]["content"])
        if text is None:
            out.append({"id": f"r{n}", "custom_id": req["custom_id"], "response": None,
                        "error": {"message": "engine crashed"}})  # fmt: skip
            continue
        body = {
            "id": f"c{n}",
            "model": req["body"]["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5},
        }
        out.append({"id": f"r{n}", "custom_id": req["custom_id"],
                    "response": {"status_code": 200, "request_id": f"q{n}", "body": body},
                    "error": None})  # fmt: skip
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text(DOC, encoding="utf-8")
    (folder / "other.md").write_text("# Other\n\nA third paragraph here.\n", encoding="utf-8")
    return folder


def export(docs: Path, tmp_path: Path, *extra: str) -> Path:
    target = tmp_path / "requests.jsonl"
    outcome = invoke("batch", "export", docs, "--to", "zh", "--model", MODEL,
                     "--out", tmp_path / "out", "-o", target, *extra)  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    return target


def test_export_writes_one_openai_batch_line_per_piece(docs: Path, tmp_path: Path) -> None:
    requests = lines(export(docs, tmp_path))
    texts = [r["body"]["messages"][-1]["content"] for r in requests]
    # Prose only: headings, paragraphs, the front-matter title; never the code.
    assert "Private notes" in texts and "First paragraph about local models." in texts
    assert not any("translate-dir notes/" in t for t in texts)
    assert any("⟦1⟧" in t and "example.com" not in t for t in texts), "URL protected"
    for r in requests:
        assert set(r) == {"custom_id", "method", "url", "body"}
        assert (r["method"], r["url"]) == ("POST", "/v1/chat/completions")
        body = r["body"]
        assert body["model"] == MODEL and body["stream"] is False
        assert body["messages"][0]["role"] == "system"
        assert {"temperature", "top_p", "seed", "max_tokens"} <= set(body)
        assert len(r["custom_id"]) == 64
    assert len({r["custom_id"] for r in requests}) == len(requests) == 6


def test_shards(docs: Path, tmp_path: Path) -> None:
    export(docs, tmp_path, "--shard-size", "4")
    shards = sorted(tmp_path.glob("requests-*.jsonl"))
    assert [p.name for p in shards] == ["requests-00001.jsonl", "requests-00002.jsonl"]
    assert [len(lines(p)) for p in shards] == [4, 2]


def test_import_checks_like_a_live_run_and_the_next_run_asks_only_the_rest(
    docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = lines(export(docs, tmp_path))

    def reply(text: str) -> str | None:
        if text.startswith("Second paragraph"):
            return text  # an echo in English: rejected like a live answer
        if text.startswith("A third"):
            return None  # the batch service failed this one
        return to_zh(text)

    results = tmp_path / "results.jsonl"
    write_jsonl(results, [*answer_all(requests, reply), {"custom_id": "f" * 64, "error": None,
                          "response": {"status_code": 200, "body": {}}}])  # fmt: skip
    outcome = invoke("batch", "import", results)
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.strip() == (
        "4 answer(s) stored, 2 rejected (a run asks the model again for those), "
        "1 not from this memory"
    )
    assert "notes.md: rejected: no Simplified Chinese script in the answer" in outcome.stderr
    assert "other.md: rejected: the batch service reported an error" in outcome.stderr
    # Importing again: nothing waits for those answers any more.
    again = invoke("batch", "import", results)
    assert again.stdout.strip().startswith("0 answer(s) stored, 2 rejected")

    backend = use_scripted(monkeypatch, ScriptedBackend(to_zh))
    run = invoke(docs, "--to", "zh", "--out", tmp_path / "out", "--backend", "openai",
                 "--base-url", "http://127.0.0.1:9/v1", "--model", MODEL, "--json")  # fmt: skip
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["hits"], summary["misses"]) == (4, 2)
    asked = [r.prompt.text for r in backend.requests]
    assert sorted(asked) == ["A third paragraph here.", "Second paragraph, with a [link](⟦1⟧)."]
    written = outputs(tmp_path / "out")
    assert b"```bash\ntranslate-dir notes/ --to zh\n```" in written["notes.md"]


def test_a_results_file_that_is_not_one_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "results.jsonl"
    bad.write_text("this is not json\n")
    outcome = invoke("batch", "import", bad)
    assert outcome.code == 2
    assert outcome.stderr == (
        f"translate-dir: error: {bad}, line 1: not JSON; give the results file that the "
        "batch run wrote (one JSON object per line)\n"
    )


@pytest.mark.server
def test_round_trip_through_a_real_llama_cpp_server(
    llama_server: str, docs: Path, tmp_path: Path
) -> None:
    """Each request line is replayed to a real ``llama_cpp.server`` (what ``vllm
    run-batch`` would do on a GPU host), the results are imported, and the next
    live run against the same server asks only for the pieces that failed."""
    from tests.llama_server import MODEL_ALIAS

    target = tmp_path / "requests.jsonl"
    out = tmp_path / "out"
    exported = invoke("batch", "export", docs, "--to", "zh", "--model", MODEL_ALIAS,
                      "--out", out, "-o", target)  # fmt: skip
    assert exported.code == 0, exported.stderr
    results = []
    with httpx.Client(timeout=120) as client:
        for n, req in enumerate(lines(target)):
            response = client.post(f"{llama_server}/chat/completions", json=req["body"])
            results.append({"id": f"r{n}", "custom_id": req["custom_id"],
                            "response": {"status_code": response.status_code,
                                         "request_id": f"q{n}", "body": response.json()},
                            "error": None})  # fmt: skip
    write_jsonl(tmp_path / "results.jsonl", results)
    imported = invoke("batch", "import", tmp_path / "results.jsonl")
    assert imported.code == 0, imported.stderr
    stored = int(imported.stdout.split()[0])
    rejected = len(results) - stored
    run = invoke(docs, "--to", "zh", "--out", out, "--backend", "openai", "--base-url",
                 llama_server, "--model", MODEL_ALIAS, "--json")  # fmt: skip
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)
    # 0 requests for the imported pieces: the memory answers them.
    assert (summary["hits"], summary["misses"]) == (stored, rejected)
    assert (summary["requests"] == 0) == (rejected == 0)
    assert stored > 0, imported.stderr


def test_import_checks_translated_attribute_values_like_a_live_run(tmp_path: Path) -> None:
    """An alt text that breaks out of its quotes is rejected on import too."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pic.md").write_text('See <img src="a.png" alt="A small cat"> here.\n', "utf-8")
    requests = lines(export(folder, tmp_path))
    assert len(requests) == 1
    text = requests[0]["body"]["messages"][-1]["content"]
    assert "A small cat" in text and "a.png" not in text

    def broken(sent: str) -> str:
        return to_zh(sent).replace(to_zh("A small cat"), '一只"小猫')

    results = tmp_path / "results.jsonl"
    write_jsonl(results, answer_all(requests, broken))
    outcome = invoke("batch", "import", results)
    assert outcome.stdout.strip().startswith("0 answer(s) stored, 1 rejected"), outcome.stdout
    write_jsonl(results, answer_all(requests, to_zh))
    assert invoke("batch", "import", results).stdout.strip().startswith("1 answer(s) stored")
