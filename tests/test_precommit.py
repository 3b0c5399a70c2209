"""The pre-commit hooks, run by the real pre-commit framework.

A temporary hooks repository holds this working tree (committed or not); a
temporary site repository installs its hooks and commits a post, with the
backend pointed at a fake Ollama server. pre-commit builds the hooks' virtualenv
with ``pip install .`` exactly as it does for a user: from the package index (or
pip's cache and whatever find-links the machine configures), once per test module.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline import cli
from pipeline.testing import to_zh
from tests.ollama_wire import FakeOllama, serve_fake_ollama

REPO = Path(__file__).resolve().parent.parent
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"
POST = """---
title: Running models at home
date: 2026-03-14
---

# Running models at home

Local models keep your documents on your own disk.

```bash
ollama serve
```

They are slower than hosted ones, but private.
"""
CJK = re.compile(r"[\u4e00-\u9fff]")

needs_pre_commit = pytest.mark.skipif(
    importlib.util.find_spec("pre_commit") is None or shutil.which("git") is None,
    reason="needs git and pre-commit (pip install pre-commit)",
)


def hooks() -> dict[str, dict[str, object]]:
    return {h["id"]: h for h in yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))}


# --------------------------------------------------------------------------- the hook file


def test_hook_definitions() -> None:
    defs = hooks()
    assert set(defs) == {"translate-dir", "translate-dir-check"}
    for hook in defs.values():
        assert hook["language"] == "python"
        assert hook["types_or"] == ["markdown"]
        # Several runs at once would only queue on the output folder's lock.
        assert hook["require_serial"] is True
        assert hook.get("pass_filenames", True) is True
        assert str(hook["entry"]).split()[0] == "translate-dir"
    assert "--fail-on-write" in str(defs["translate-dir"]["entry"])
    assert "--check" in str(defs["translate-dir-check"]["entry"])


@needs_pre_commit
def test_pre_commit_accepts_the_hook_file() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("hook_id", ["translate-dir", "translate-dir-check"])
def test_hook_entries_parse(hook_id: str) -> None:
    # pre-commit runs: <entry> <args from the user's config> <staged files>
    entry = shlex.split(str(hooks()[hook_id]["entry"]))[1:]
    result = CliRunner().invoke(cli.main, [*entry, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "--root" in result.output


# --------------------------------------------------------------------------- the real framework


def git(cwd: Path, *args: str, env: dict[str, str], check: bool = True) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def git_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Git and pre-commit settings that ignore the machine's own configuration."""
    home = tmp_path_factory.mktemp("pre-commit-home")
    gitconfig = home / "gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = Test\n\temail = test@example.com\n"
        "[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n",
        encoding="utf-8",
    )
    return {
        "GIT_CONFIG_GLOBAL": str(gitconfig),
        "GIT_CONFIG_NOSYSTEM": "1",
        "PRE_COMMIT_HOME": str(home / "cache"),
        "PRE_COMMIT_COLOR": "never",
        # No pip or virtualenv settings here: the hook's virtualenv installs
        # translate-dir and its dependencies the way a user's pre-commit does. An
        # offline shortcut (PIP_NO_INDEX plus VIRTUALENV_SYSTEM_SITE_PACKAGES) breaks
        # inside a virtual environment: virtualenv builds the hook's environment from
        # the base interpreter, whose site-packages lack the dependencies installed in
        # the venv. A wheelhouse made with `pip wheel` would need the index as well.
        # The index (or pip's cache) costs a few seconds, once per module.
    }


def environ(git_env: dict[str, str]) -> dict[str, str]:
    # os.environ now: it carries the test's own XDG_CACHE_HOME (translation memory).
    env = {**os.environ, **git_env}
    env.pop("GIT_DIR", None)
    env.pop("GIT_INDEX_FILE", None)
    return env


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory, git_env: dict[str, str]) -> str:
    """This working tree as a git repository pre-commit can clone; returns its rev."""
    repo = tmp_path_factory.mktemp("hooks-repo")
    shutil.copytree(
        REPO / "pipeline", repo / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", ".pre-commit-hooks.yaml", "README.md"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, repo / name)
    if not (repo / "README.md").exists():  # pyproject names it
        (repo / "README.md").write_text("# translate-dir\n", encoding="utf-8")
    env = environ(git_env)
    git(repo, "init", "-q", env=env)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "hooks", env=env)
    return str(repo)


@pytest.fixture
def fake() -> Iterator[FakeOllama]:
    with serve_fake_ollama(translate=to_zh) as server:
        yield server


def make_site(path: Path, hooks_repo: str, fake: FakeOllama, env: dict[str, str]) -> Path:
    path.mkdir()
    git(path, "init", "-q", env=env)
    rev = git(Path(hooks_repo), "rev-parse", "HEAD", env=env).strip()
    common = ["--to", "zh", "--layout", "suffix", "--root", "."]
    backend = ["--backend", "ollama", "--host", fake.url, "--model", fake.model]
    config = {
        "repos": [
            {
                "repo": hooks_repo,
                "rev": rev,
                "hooks": [
                    {"id": "translate-dir", "args": [*common, *backend]},
                    {"id": "translate-dir-check", "args": common},
                ],
            }
        ]
    }
    (path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (path / ".gitignore").write_text(".translate-dir/lock\n", encoding="utf-8")
    (path / "post.md").write_text(POST, encoding="utf-8")
    install = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    return path


def commit(
    site: Path, env: dict[str, str], message: str = "post"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "commit", "-m", message],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def pre_commit_run(site: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", *args],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_pre_commit
def test_git_commit_translates_the_staged_post(
    tmp_path: Path, hooks_repo: str, git_env: dict[str, str], fake: FakeOllama
) -> None:
    env = environ(git_env)
    site = make_site(tmp_path / "site", hooks_repo, fake, env)
    git(site, "add", "post.md", ".gitignore", ".pre-commit-config.yaml", env=env)

    # 1. The hook writes post.zh.md and, like a formatter, fails this commit.
    first = commit(site, env)
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert re.search(r"translate-dir\.+Failed", out), out
    assert "stage them" in out
    assert git(site, "rev-list", "--all", env=env) == ""  # nothing committed
    translation = (site / "post.zh.md").read_text(encoding="utf-8")
    assert CJK.search(translation) and "your own disk" not in translation
    assert "```bash\nollama serve\n```" in translation
    assert "date: 2026-03-14" in translation
    requests = len(fake.chats())
    assert requests > 0

    # 2. Staged with its manifest, the commit goes through; nothing is asked again,
    # and the staged post.zh.md is not taken for a source (no post.zh.zh.md).
    git(site, "add", "post.zh.md", ".translate-dir", env=env)
    second = commit(site, env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(fake.chats()) == requests
    tracked = git(site, "ls-files", env=env).split()
    assert {"post.md", "post.zh.md", ".translate-dir/manifest-zh.json"} <= set(tracked)
    assert ".translate-dir/lock" not in tracked
    assert not list(site.glob("*.zh.zh.md"))
    assert git(site, "status", "--porcelain", env=env) == ""

    # 3. The post changes; with the translating hook skipped, the check fails.
    (site / "post.md").write_text(POST.replace("private", "private and free"), encoding="utf-8")
    git(site, "add", "post.md", env=env)
    stale = commit(site, {**env, "SKIP": "translate-dir"}, "edit")
    out = stale.stdout + stale.stderr
    assert stale.returncode == 1, out
    assert re.search(r"translate-dir \(check translations are current\)\.+Failed", out), out
    assert "post.zh.md: stale" in out

    # 4. With both hooks: the translation is updated (a modified tracked file), the
    # commit fails once, and passes once the update is staged.
    update = commit(site, env, "edit")
    out = update.stdout + update.stderr
    assert update.returncode == 1, out
    assert "files were modified by this hook" in out
    assert len(fake.chats()) > requests
    git(site, "add", "-u", env=env)
    done = commit(site, env, "edit")
    assert done.returncode == 0, done.stdout + done.stderr
    assert git(site, "status", "--porcelain", env=env) == ""
    manifest = json.loads((site / ".translate-dir/manifest-zh.json").read_text(encoding="utf-8"))
    assert set(manifest["outputs"]) == {"post.zh.md"}


@needs_pre_commit
def test_check_hook_needs_no_model(
    tmp_path: Path, hooks_repo: str, git_env: dict[str, str]
) -> None:
    env = environ(git_env)
    with serve_fake_ollama(translate=to_zh) as fake:
        site = make_site(tmp_path / "site", hooks_repo, fake, env)
        (site / "drafts").mkdir()
        (site / "drafts/idea.md").write_text("# An idea\n\nTo be written.\n", encoding="utf-8")
        git(site, "add", "-A", env=env)
        missing = pre_commit_run(site, env, "translate-dir-check", "--all-files")
        assert missing.returncode == 1
        assert "post.zh.md: missing" in missing.stdout
        assert "drafts/idea.zh.md: missing" in missing.stdout
        assert pre_commit_run(site, env, "translate-dir", "--all-files").returncode == 1
        assert (site / "drafts/idea.zh.md").is_file()
    # The server is gone: the check (as CI runs it) passes without any model.
    git(site, "add", "-A", env=env)
    current = pre_commit_run(site, env, "translate-dir-check", "--all-files")
    assert current.returncode == 0, current.stdout + current.stderr
    assert re.search(r"translate-dir \(check translations are current\)\.+Passed", current.stdout)
