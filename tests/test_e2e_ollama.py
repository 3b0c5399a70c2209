"""translate-dir end to end against a server that speaks the Ollama API (issue 3's must-show)."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from pipeline import cli
from pipeline.testing import to_zh
from tests.ollama_wire import free_port, serve_fake_ollama


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def fences(text: str) -> list[str]:
    return re.findall(r"^```.*?^```", text, flags=re.S | re.M)


def test_translates_every_document_with_one_num_ctx(sample: Path) -> None:
    with serve_fake_ollama(translate=to_zh) as fake:
        code, err = invoke(
            "input", "--to", "zh", "--backend", "ollama", "--host", fake.url, "--model", fake.model
        )
        assert code == 0, err
        chats = [c for c in fake.chats() if c.get("messages")]
        assert chats, "no translation requests"
        assert len({c["options"]["num_ctx"] for c in fake.chats()}) == 1
        assert all(c.get("keep_alive") == "30m" for c in fake.chats())
        assert len(fake.warmups()) == 1
        sent = fake.sent_text()
    out = sample.parent / "output" / "zh"
    for rel in ("blog-post.md", "hugo-post.md", "notes/todo.txt", "notes/deep/guide.markdown"):
        text = (out / rel).read_text(encoding="utf-8")
        body = text.split("---")[-1].split("+++")[-1]
        assert re.search(r"[\u4e00-\u9fff]", body) and " the " not in body, rel
    blog_src = (sample / "blog-post.md").read_text(encoding="utf-8")
    blog_out = (out / "blog-post.md").read_text(encoding="utf-8")
    # No code block and no untranslated front-matter value was ever sent.
    for fence in fences(blog_src):
        body = "\n".join(fence.splitlines()[1:-1])
        assert body not in sent
        assert fence in blog_out
    for value in (
        "local-translation-pipeline",
        "2026-03-14",
        "https://example.com/ada",
        "{{< figure",
    ):
        assert value not in sent
    assert "Running a translation pipeline at home" in sent  # title is translated


def test_server_down_is_one_line_exit_3(sample: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, err = invoke("input", "--to", "zh", "--backend", "ollama", "--host", url)
    assert code == 3
    assert err.count("\n") == 1 and "ollama serve" in err and url.split("//")[1] in err
    assert "Traceback" not in err


def test_unknown_model_is_one_line_exit_3(sample: Path) -> None:
    with serve_fake_ollama() as fake:
        code, err = invoke(
            "input", "--to", "zh", "--backend", "ollama", "--host", fake.url, "--model", "nope:1b"
        )
    assert code == 3
    assert "ollama pull nope:1b" in err and "--pull" in err
    assert err.count("\n") == 1


def test_auto_uses_ollama_when_it_answers(sample: Path) -> None:
    with serve_fake_ollama(translate=to_zh) as fake:
        code, err = invoke("input", "--to", "zh", "--host", fake.url, "--model", fake.model)
        assert code == 0, err
        assert fake.chats()
    assert f"ollama {fake.model}" in err


def test_remote_host_refused_without_allow_remote(sample: Path) -> None:
    code, err = invoke(
        "input", "--to", "zh", "--backend", "ollama", "--host", "http://192.0.2.10:11434"
    )
    assert code == 3
    assert "--allow-remote" in err
