"""Which pipeline.toml a run uses, `translate-dir init`, and unknown keys."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import cli, config
from pipeline.errors import ConfigError
from pipeline.testing import ScriptedBackend

POST = "# Title\n\nA paragraph to translate.\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/work (the current folder) and tmp/docs (the input folder)."""
    work = tmp_path / "work"
    work.mkdir()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(POST, encoding="utf-8")
    monkeypatch.chdir(work)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config_with_out(path: Path, out: str) -> Path:
    """A pipeline.toml whose only setting shows where outputs go: which file was read."""
    path.write_text(f'[files]\nout = "{out}"\n', encoding="utf-8")
    return path


# --------------------------------------------------------------------------- discovery order


def test_no_config_anywhere_uses_the_defaults(scripted: ScriptedBackend, project: Path) -> None:
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 0, err
    assert (project / "work/output/zh/a.md").is_file()


def test_input_folder_config_is_found(scripted: ScriptedBackend, project: Path) -> None:
    config_with_out(project / "docs/pipeline.toml", str(project / "from-input/{lang}"))
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 0, err
    assert (project / "from-input/zh/a.md").is_file()


def test_current_folder_config_wins_over_the_input_folder(
    scripted: ScriptedBackend, project: Path
) -> None:
    config_with_out(project / "docs/pipeline.toml", str(project / "from-input/{lang}"))
    config_with_out(project / "work/pipeline.toml", str(project / "from-cwd/{lang}"))
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 0, err
    assert (project / "from-cwd/zh/a.md").is_file()
    assert not (project / "from-input").exists()


def test_explicit_config_wins_over_both(scripted: ScriptedBackend, project: Path) -> None:
    config_with_out(project / "docs/pipeline.toml", str(project / "from-input/{lang}"))
    config_with_out(project / "work/pipeline.toml", str(project / "from-cwd/{lang}"))
    chosen = config_with_out(project / "elsewhere.toml", str(project / "from-flag/{lang}"))
    code, _, err = invoke("../docs", "--to", "zh", "--config", str(chosen))
    assert code == 0, err
    assert (project / "from-flag/zh/a.md").is_file()
    assert not (project / "from-cwd").exists() and not (project / "from-input").exists()


def test_command_line_wins_over_the_config(scripted: ScriptedBackend, project: Path) -> None:
    config_with_out(project / "work/pipeline.toml", str(project / "from-cwd/{lang}"))
    code, _, err = invoke("../docs", "--to", "zh", "--out", str(project / "from-flag"))
    assert code == 0, err
    assert (project / "from-flag/a.md").is_file()


def test_files_mode_reads_the_roots_config(scripted: ScriptedBackend, project: Path) -> None:
    config_with_out(project / "docs/pipeline.toml", str(project / "from-root/{lang}"))
    code, _, err = invoke("../docs/a.md", "--root", "../docs", "--to", "zh")
    assert code == 0, err
    assert (project / "from-root/zh/a.md").is_file()


def test_find_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, root = tmp_path / "cwd", tmp_path / "root"
    cwd.mkdir()
    root.mkdir()
    monkeypatch.chdir(cwd)
    assert config.find_config(None, root) is None
    (root / "pipeline.toml").write_text("", encoding="utf-8")
    assert config.find_config(None, root) == root / "pipeline.toml"
    (cwd / "pipeline.toml").write_text("", encoding="utf-8")
    found = config.find_config(None, root)
    assert found is not None and found.resolve() == (cwd / "pipeline.toml").resolve()
    other = tmp_path / "other.toml"
    other.write_text("", encoding="utf-8")
    assert config.find_config(other, root) == other


def test_missing_explicit_config_is_exit_2(scripted: ScriptedBackend, project: Path) -> None:
    code, _, err = invoke("../docs", "--to", "zh", "--config", "nope.toml")
    assert code == 2
    assert "config file not found: nope.toml" in err and err.count("\n") == 1


# --------------------------------------------------------------------------- init


def test_init_writes_the_commented_defaults(project: Path) -> None:
    code, out, err = invoke("init")
    assert code == 0, err
    assert out.strip() == "wrote pipeline.toml"
    written = (project / "work/pipeline.toml").read_text(encoding="utf-8")
    assert written == config.default_text()
    assert written.count("\n# ") > 20  # commented
    assert tomllib.loads(written) == config.DEFAULTS
    loaded = config.load(project / "work/pipeline.toml")
    assert dataclasses.asdict(loaded.translate) == config.DEFAULTS["translate"]
    assert loaded.path == project / "work/pipeline.toml"


def test_init_refuses_to_overwrite_without_force(project: Path) -> None:
    target = project / "work/pipeline.toml"
    target.write_text("[translate]\nsource = 'de'\n", encoding="utf-8")
    code, _, err = invoke("init")
    assert code == 2
    assert err == "translate-dir: error: pipeline.toml exists; pass --force to overwrite it\n"
    assert target.read_text(encoding="utf-8") == "[translate]\nsource = 'de'\n"
    code, _, err = invoke("init", "--force")
    assert code == 0, err
    assert target.read_text(encoding="utf-8") == config.default_text()


def test_init_output_is_picked_up_by_the_next_run(scripted: ScriptedBackend, project: Path) -> None:
    assert invoke("init")[0] == 0
    path = project / "work/pipeline.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            'out = "output/{lang}"', f'out = "{project}/site/{{lang}}"'
        ),
        encoding="utf-8",
    )
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 0, err
    assert (project / "site/zh/a.md").is_file()


# --------------------------------------------------------------------------- unknown keys


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[translate]\nchunk_size = 100\n", "'translate.chunk_size'"),
        ("[translte]\nsource = 'en'\n", "'translte'"),
        ("model = 'x'\n", "'model'"),
        ("[ollama]\nhost = 'h'\nnumctx = 4096\n", "'ollama.numctx'"),
        ("[roles.mine]\nsystem = 's'\nprompt = 'p'\n", "'roles.mine.prompt'"),
        ("[roles_extra.mine]\nsystem = 's'\n", "'roles_extra'"),
    ],
)
def test_unknown_keys_are_rejected_by_name(
    scripted: ScriptedBackend, project: Path, text: str, key: str
) -> None:
    path = project / "docs/pipeline.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err = invoke("../docs", "--to", "zh")
    assert code == 2
    assert out == ""
    assert "docs/pipeline.toml: " in err and f"unknown key {key}" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not scripted.requests


def test_wrong_types_and_bad_toml_are_exit_2(scripted: ScriptedBackend, project: Path) -> None:
    path = project / "work/pipeline.toml"
    path.write_text("[translate]\nchunk_tokens = 'big'\n", encoding="utf-8")
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 2 and "'translate.chunk_tokens' must be a int" in err
    path.write_text("[translate\n", encoding="utf-8")
    code, _, err = invoke("../docs", "--to", "zh")
    assert code == 2 and "invalid TOML" in err and str(path.name) in err


@pytest.mark.parametrize(
    ("command", "exit_code"),
    # `cache` maps every memory problem to exit 1 (see test_cache_cmd.py).
    [(["models", "--backend", "embedded"], 2), (["cache", "stats"], 2)],
)
def test_other_commands_reject_unknown_keys_too(
    project: Path, command: list[str], exit_code: int
) -> None:
    (project / "work/pipeline.toml").write_text("[memory]\nfile = 'x'\n", encoding="utf-8")
    code, _, err = invoke(*command)
    assert code == exit_code
    assert "pipeline.toml" in err and "'memory.file'" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("text", "key"), [("[glossary]\nterms = 1\n", "glossary.terms"), ("roles = 1\n", "roles")]
)
def test_open_tables_must_be_tables(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == f"{path}: '{key}' must be a table"
