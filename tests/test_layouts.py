"""Where translations go (--layout), several targets in one run, and what is never
taken as a source: outputs of this or an earlier run, and files that already
carry a language suffix."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath

import pytest
from click.testing import CliRunner

from pipeline import cli, discover, targets
from pipeline.errors import UsageError
from pipeline.manifest import Manifest
from pipeline.testing import ScriptedBackend

POST = "---\ntitle: A post\n---\n\n# Hello\n\nThis is a short post about local models.\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, text: str = POST) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def files_under(folder: Path) -> list[str]:
    """Every file under ``folder`` except the tool's own state."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".translate-dir" not in p.parts
    )


def translated(path: Path) -> bool:
    text = path.read_text(encoding="utf-8")
    return re.search(r"[\u4e00-\u9fff]", text) is not None and "short post" not in text


# --------------------------------------------------------------------------- output_path


def target(out_root: Path, layout: str, source_lang: str = "") -> targets.Target:
    return targets.Target(
        lang="zh",
        out_root=out_root,
        manifest=Manifest(out_root / "manifest.json"),
        settings_hash="",
        layout=layout,
        source_lang=source_lang,
    )


@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("mirror", "out/posts/a.md"),
        ("suffix", "out/posts/a.zh.md"),
        ("hugo-dir", "out/zh/posts/a.md"),
        ("docusaurus", "out/i18n/zh/docusaurus-plugin-content-docs/current/posts/a.md"),
    ],
)
def test_output_path_for_each_layout(tmp_path: Path, layout: str, expected: str) -> None:
    path = targets.destination(PurePosixPath("posts/a.md"), target(tmp_path / "out", layout))
    assert path == tmp_path / expected


def test_suffix_layout_replaces_an_explicit_source_suffix(tmp_path: Path) -> None:
    # Hugo's about.en.md is the English source; its Chinese page is about.zh.md.
    path = targets.destination(PurePosixPath("about.en.md"), target(tmp_path, "suffix", "en"))
    assert path == tmp_path / "about.zh.md"


def test_output_path_refuses_to_leave_the_output_folder(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="outside"):
        targets.destination(PurePosixPath("../a.md"), target(tmp_path / "out", "mirror"))


@pytest.mark.parametrize(
    ("name", "suffixed"),
    [
        ("post.zh.md", True),
        ("post.pt-br.md", True),
        ("post.zh_CN.md", False),  # zh_cn is not a known code
        ("notes.de.markdown", True),
        ("post.md", False),
        ("v1.2.md", False),
        ("my.notes.md", False),
    ],
)
def test_has_language_suffix(name: str, suffixed: bool) -> None:
    known = {"zh", "de", "pt-br", "en"}
    assert discover.has_language_suffix(PurePosixPath("dir") / name, known) is suffixed


# --------------------------------------------------------------------------- the CLI, per layout


def test_mirror_writes_under_out_and_never_reads_it_back(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "docs/a.md")
    write(site / "docs/guide/b.md")
    # The output folder is inside the input folder: it must not become a source.
    code, _, err = invoke("docs", "--to", "zh", "--out", "docs/_zh")
    assert code == 0, err
    assert files_under(site / "docs/_zh") == ["a.md", "guide/b.md"]
    assert all(translated(site / "docs/_zh" / rel) for rel in ("a.md", "guide/b.md"))
    first = len(scripted.requests)
    code, _, err = invoke("docs", "--to", "zh", "--out", "docs/_zh")
    assert code == 0, err
    assert len(scripted.requests) == first
    assert files_under(site / "docs/_zh") == ["a.md", "guide/b.md"]


def test_mirror_output_of_an_earlier_language_is_not_a_source(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "docs/a.md")
    assert invoke("docs", "--to", "zh", "--out", "docs/out/{lang}")[0] == 0
    # A later run for another language must not translate docs/out/zh/a.md.
    code, _, err = invoke("docs", "--to", "ja", "--out", "docs/out/{lang}")
    assert code == 0, err
    assert files_under(site / "docs/out") == ["ja/a.md", "zh/a.md"]


def test_suffix_beside_the_source(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "blog/post.md")
    write(site / "blog/2024/old.md")
    code, _, err = invoke("blog", "--to", "zh", "--layout", "suffix")
    assert code == 0, err
    assert files_under(site / "blog") == ["2024/old.md", "2024/old.zh.md", "post.md", "post.zh.md"]
    assert translated(site / "blog/post.zh.md")
    assert (site / "blog/.translate-dir/manifest-zh.json").is_file()
    # The next run does not translate post.zh.md into post.zh.zh.md, nor ask the model.
    first = len(scripted.requests)
    code, _, err = invoke("blog", "--to", "zh", "--layout", "suffix")
    assert code == 0, err
    assert len(scripted.requests) == first
    assert files_under(site / "blog") == ["2024/old.md", "2024/old.zh.md", "post.md", "post.zh.md"]


def test_suffix_under_out(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "blog/post.md")
    code, _, err = invoke("blog", "--to", "zh", "--layout", "suffix", "--out", "public")
    assert code == 0, err
    assert files_under(site / "public") == ["post.zh.md"]
    assert files_under(site / "blog") == ["post.md"]


def test_a_source_with_a_language_suffix_is_not_translated_again(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "blog/post.md")
    write(site / "blog/post.zh.md", "# 你好\n\n人工翻译的文章。\n")
    write(site / "blog/post.de.md", "# Hallo\n\nEin Beitrag.\n")
    write(site / "blog/about.en.md")  # Hugo: an explicit source-language suffix
    code, _, err = invoke("blog", "--to", "zh", "--to", "ja", "--layout", "suffix")
    # post.zh.md exists and was not written by translate-dir: it is a conflict,
    # never overwritten and never used as a source.
    assert code == 1
    assert "post.md: conflict" in err
    assert files_under(site / "blog") == [
        "about.en.md",
        "about.ja.md",
        "about.zh.md",
        "post.de.md",
        "post.ja.md",
        "post.md",
        "post.zh.md",
    ]
    assert (site / "blog/post.zh.md").read_text(encoding="utf-8").startswith("# 你好")
    sent = "\n".join(r.prompt.text for r in scripted.requests)
    assert "Hallo" not in sent and "人工" not in sent


def test_mirror_skips_translations_that_sit_among_the_sources(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "docs/guide.md")
    write(site / "docs/guide.zh.md", "# 指南\n\n人工翻译。\n")
    code, _, err = invoke("docs", "--to", "ja", "--out", "out")
    assert code == 0, err
    assert files_under(site / "out") == ["guide.md"]


def test_hugo_dir(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "content/en/posts/a.md")
    write(site / "content/en/_index.md")
    code, _, err = invoke("content/en", "--to", "zh", "--layout", "hugo-dir")
    assert code == 0, err
    assert files_under(site / "content/zh") == ["_index.md", "posts/a.md"]
    assert translated(site / "content/zh/posts/a.md")
    assert (site / "content/.translate-dir/manifest-zh.json").is_file()
    first = len(scripted.requests)
    assert invoke("content/en", "--to", "zh", "--layout", "hugo-dir")[0] == 0
    assert len(scripted.requests) == first
    assert files_under(site / "content/en") == ["_index.md", "posts/a.md"]


def test_docusaurus(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "docs/a.md")
    write(site / "docs/tutorial/b.md")
    code, _, err = invoke("docs", "--to", "zh", "--layout", "docusaurus")
    assert code == 0, err
    current = site / "i18n/zh/docusaurus-plugin-content-docs/current"
    assert files_under(current) == ["a.md", "tutorial/b.md"]
    assert translated(current / "a.md")
    first = len(scripted.requests)
    assert invoke("docs", "--to", "zh", "--layout", "docusaurus")[0] == 0
    assert len(scripted.requests) == first


def test_mirror_into_the_input_folder_is_refused(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "docs/a.md")
    code, _, err = invoke("docs", "--to", "zh", "--out", "docs")
    assert code == 2
    assert "--layout suffix" in err and "Traceback" not in err


# --------------------------------------------------------------------------- several targets


@pytest.mark.parametrize("to", [["--to", "zh", "--to", "ja"], ["--to", "zh,ja"]])
def test_several_targets_write_each_language(
    scripted: ScriptedBackend, site: Path, to: list[str]
) -> None:
    write(site / "input/a.md")
    write(site / "input/notes/b.md")
    code, _, err = invoke("input", *to)
    assert code == 0, err
    for lang in ("zh", "ja"):
        assert files_under(site / "output" / lang) == ["a.md", "notes/b.md"]
        assert translated(site / "output" / lang / "a.md")
    langs = {r.prompt.target_name for r in scripted.requests}
    assert langs == {"Simplified Chinese", "Japanese"}
    # Each language has its own manifest, and memory entries do not cross over.
    for lang in ("zh", "ja"):
        manifest = json.loads((site / "output" / lang / ".translate-dir/manifest.json").read_text())
        assert {r["lang"] for r in manifest["outputs"].values()} == {lang}
    first = len(scripted.requests)
    code, _, err = invoke("input", *to)
    assert code == 0, err
    assert len(scripted.requests) == first


def test_several_targets_with_one_out_folder_get_a_folder_each(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "input/a.md")
    code, _, err = invoke("input", "--to", "zh,ja", "--out", "build")
    assert code == 0, err
    assert files_under(site / "build") == ["ja/a.md", "zh/a.md"]


def test_several_targets_with_suffix_layout_share_the_folder(
    scripted: ScriptedBackend, site: Path
) -> None:
    write(site / "blog/post.md")
    code, _, err = invoke("blog", "--to", "zh", "--to", "ja", "--layout", "suffix")
    assert code == 0, err
    assert files_under(site / "blog") == ["post.ja.md", "post.md", "post.zh.md"]
    state = site / "blog/.translate-dir"
    assert (state / "manifest-zh.json").is_file() and (state / "manifest-ja.json").is_file()
    first = len(scripted.requests)
    # Only one language added later: only it is translated.
    code, _, err = invoke("blog", "--to", "zh,ja,de", "--layout", "suffix")
    assert code == 0, err
    assert {r.prompt.target_name for r in scripted.requests[first:]} == {"German"}
    assert files_under(site / "blog") == ["post.de.md", "post.ja.md", "post.md", "post.zh.md"]


def test_memory_keeps_languages_apart(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "input/a.md")
    assert invoke("input", "--to", "zh")[0] == 0
    zh_requests = len(scripted.requests)
    # Same text, new language: the zh entries must not answer for ja.
    assert invoke("input", "--to", "ja")[0] == 0
    assert len(scripted.requests) == 2 * zh_requests


def test_bad_language_code_is_a_usage_error(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "input/a.md")
    code, _, err = invoke("input", "--to", "zh,not a code")
    assert code == 2
    assert "--to" in err and "Traceback" not in err


# --------------------------------------------------------------------------- FILE... --root


def test_files_are_relative_to_root(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "blog/posts/a.md")
    write(site / "blog/posts/b.md")
    code, _, err = invoke(
        "blog/posts/a.md", "--root", "blog", "--to", "zh", "--layout", "hugo-dir", "--out", "site"
    )
    assert code == 0, err
    assert files_under(site / "site") == ["zh/posts/a.md"]


def test_a_file_outside_root_is_a_usage_error(scripted: ScriptedBackend, site: Path) -> None:
    write(site / "blog/a.md")
    write(site / "other/b.md")
    code, _, err = invoke("other/b.md", "--root", "blog", "--to", "zh", "--out", "out")
    assert code == 2
    assert "--root" in err and "Traceback" not in err
