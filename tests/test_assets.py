"""Assets: the files a page refers to are copied beside its translation."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pipeline import assets
from pipeline.testing import ScriptedBackend
from tests.reliability_support import invoke


def test_references_finds_relative_files_only() -> None:
    text = (
        '![a](./img/a.png "t") [b](<my file.pdf>) [c](https://x.org/c.png) [d](/abs.png)\n'
        "[e](#frag) [f](other.md#part) [g](img/a.png)\n"
        "[ref]: ../shared/pic%20one.svg\n"
        '<img src="img/b.jpg" alt="b"> <a href=\'files/c.zip\'>c</a>\n'
        '{{< figure src="hugo.png" alt="x" >}}\n'
        "import Chart from './Chart.js';\n"
        "mailto:x [m](mailto:someone@example.org)\n"
    )
    assert assets.references(text) == [
        "./img/a.png",
        "my file.pdf",
        "other.md",
        "img/a.png",
        "../shared/pic one.svg",
        "img/b.jpg",
        "files/c.zip",
        "hugo.png",
        "./Chart.js",
    ]


def _site(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "guide" / "img").mkdir(parents=True)
    (docs / "guide" / "img" / "shot.png").write_bytes(b"PNG one")
    (docs / "logo.svg").write_bytes(b"<svg/>")
    (docs / "guide" / "a.md").write_text(
        "# A\n\n![Shot](img/shot.png) and ![Logo](../logo.svg), [B](../b.md),"
        " [outside](../../secret.txt), [missing](img/none.png).\n",
        "utf-8",
    )
    (docs / "b.md").write_text("# B\n\nText.\n", "utf-8")
    (tmp_path / "secret.txt").write_text("not to be copied", "utf-8")
    return docs


def test_mirror_layout_copies_referenced_files_and_nothing_else(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    docs = _site(tmp_path)
    out = tmp_path / "out"
    assert invoke(docs, "--to", "zh", "--out", out, "--quiet").code == 0
    zh = out
    assert (zh / "guide" / "img" / "shot.png").read_bytes() == b"PNG one"
    assert (zh / "logo.svg").read_bytes() == b"<svg/>"
    assert not (zh / "secret.txt").exists() and not (tmp_path / "out" / "secret.txt").exists()
    assert (zh / "b.md").read_text("utf-8") != "# B\n\nText.\n"  # a document, translated


def test_a_changed_source_updates_our_copy_but_never_the_users_own_file(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    docs = _site(tmp_path)
    out = tmp_path / "out"
    assert invoke(docs, "--to", "zh", "--out", out, "--quiet").code == 0
    shot = out / "guide" / "img" / "shot.png"
    logo = out / "logo.svg"
    (docs / "guide" / "img" / "shot.png").write_bytes(b"PNG two")
    logo.write_bytes(b"<svg>localized</svg>")  # the user's own translated logo
    (docs / "logo.svg").write_bytes(b"<svg>new</svg>")
    assert invoke(docs, "--to", "zh", "--out", out, "--quiet").code == 0
    assert shot.read_bytes() == b"PNG two"
    assert logo.read_bytes() == b"<svg>localized</svg>"


def test_no_copy_when_the_translation_sits_beside_its_source(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    docs = _site(tmp_path)
    before = sorted(p.relative_to(docs) for p in docs.rglob("*") if p.is_file())
    assert invoke(docs, "--to", "zh", "--layout", "suffix", "--quiet").code == 0
    after = sorted(p.relative_to(docs) for p in docs.rglob("*") if p.is_file())
    added = {p.as_posix() for p in after if p not in before and p.parts[0] != ".translate-dir"}
    assert added == {"b.zh.md", "guide/a.zh.md"}


def test_asset_rel_never_leaves_the_input() -> None:
    assert assets._asset_rel(PurePosixPath("a/b.md"), "../../x.png") is None
    assert assets._asset_rel(PurePosixPath("a/b.md"), "../x.png") == PurePosixPath("x.png")


def test_no_copy_through_a_symlinked_folder_in_the_output(
    tmp_path: Path, scripted: ScriptedBackend
) -> None:
    docs = _site(tmp_path)
    out = tmp_path / "out"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "guide").symlink_to(elsewhere, target_is_directory=True)
    outcome = invoke(docs, "--to", "zh", "--out", out, "--quiet")
    assert outcome.code == 1 and "leads outside" in outcome.stderr
    assert list(elsewhere.iterdir()) == []
    assert (out / "b.md").is_file()  # the other document is still written


def test_every_language_gets_its_copies(tmp_path: Path, scripted: ScriptedBackend) -> None:
    docs = _site(tmp_path)
    out = tmp_path / "out"
    assert invoke(docs, "--to", "zh,ja", "--out", out, "--quiet").code == 0
    for lang in ("zh", "ja"):
        assert (out / lang / "guide" / "img" / "shot.png").read_bytes() == b"PNG one"
        assert (out / lang / "logo.svg").read_bytes() == b"<svg/>"
