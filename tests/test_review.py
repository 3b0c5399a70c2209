"""The review page (issue 16): built from the manifest, the memory and the report
without any model; flags exported from it re-translate exactly the flagged
pieces with their note, and --accept records pieces as reviewed.

The page itself is driven in a real browser in test_review_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline import flags, memory, prompts, review_page
from pipeline.testing import ScriptedBackend, to_zh
from tests.reliability_support import has_cjk, invoke, use_scripted

ECHOED = "Call the bank about the new card."


def page_data(page: Path) -> dict[str, Any]:
    text = page.read_text("utf-8")
    found = re.search(
        r'<script id="review-data" type="application/json">(.*?)</script>', text, re.S
    )
    assert found, "the page embeds its data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def rows(data: dict[str, Any], source: str) -> list[list[Any]]:
    (f,) = [f for f in data["files"] if f["source"] == source]
    return [r for r in f["rows"] if r[0] != "code"]


def echo_one(text: str) -> str:
    """to_zh, except one sentence is echoed: its answers fail, and it is kept."""
    return text if ECHOED in text else to_zh(text)


@pytest.fixture
def translated(sample: Path, monkeypatch: pytest.MonkeyPatch) -> ScriptedBackend:
    backend = use_scripted(monkeypatch, ScriptedBackend(echo_one))
    out = invoke(sample, "--to", "zh", "--report", "report.json")
    assert out.code == 0, out.stderr
    return backend


def test_the_page_is_one_self_contained_file_built_without_a_model(
    translated: ScriptedBackend,
) -> None:
    asked = translated.count
    out = invoke("review", "input", "--to", "zh", "--report", "report.json", "-o", "r.html")
    assert out.code == 0, out.stderr
    assert translated.count == asked and translated.started == 1, "no model contacted"
    html = Path("r.html").read_text("utf-8")
    # Nothing fetched: no external script, style, font or image.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html
    data = page_data(Path("r.html"))
    t = data["totals"]
    assert t["files"] == 4
    assert t["pieces"] == sum(len(rows(data, f["source"])) for f in data["files"])
    # The echoed sentence's chunk was rejected whole, then split: its neighbours
    # passed on their own and show their rejected first answer too.
    assert t["kept"] == 1 and t["rejected"] >= 1
    assert t["translated"] == t["pieces"] - 1 and t["missing"] == t["edited"] == 0
    (kept,) = [r for r in rows(data, "notes/todo.txt") if r[4] == "kept"]
    assert ECHOED in kept[2]
    # The rejected answer is shown with the check that rejected it.
    assert kept[6][0]["answer"] == kept[2]
    assert any("echo" in check for check in kept[6][0]["checks"])
    # Source and translation side by side, front matter too.
    blog = rows(data, "blog-post.md")
    title = next(r for r in blog if r[0] == "field" and r[1] == "title")
    assert title[2] == "Running a translation pipeline at home"
    assert title[3] == to_zh(title[2])
    headings = [r for r in blog if r[1] == "heading"]
    assert headings and all(r[3] == to_zh(r[2]) for r in headings)
    assert all(has_cjk(r[3]) for r in blog if r[4] == "translated")


def test_a_second_run_counts_pieces_from_memory_and_writes_review_on_a_run(
    translated: ScriptedBackend,
) -> None:
    Path("input/notes/todo.txt").write_text("A brand new line.\n\nThings to do this week.\n")
    out = invoke("input", "--to", "zh", "--review", "run.html")
    assert out.code == 0, out.stderr
    data = page_data(Path("run.html"))
    todo = rows(data, "notes/todo.txt")
    assert [r[4] for r in todo] == ["translated", "memory"]
    # Everything but the new line was translated before this run.
    assert data["totals"]["translated"] == 1
    assert data["totals"]["memory"] == data["totals"]["pieces"] - 1


def flag_file(path: Path, data: dict[str, Any], source: str, text: str, note: str) -> Path:
    (row,) = [r for r in rows(data, source) if r[2] == text]
    path.write_text(flags.dumps([flags.Flag(source, "zh", row[5], row[2], note)]), "utf-8")
    return path


def test_retranslate_sends_exactly_the_flagged_piece_with_its_note(
    translated: ScriptedBackend,
) -> None:
    assert invoke("review", "input", "--to", "zh", "-o", "r.html").code == 0
    text = "Read the chapter about distributed systems before the meeting."
    note = "Systems means computer systems here."
    flagged = flag_file(Path("flags.json"), page_data(Path("r.html")), "notes/todo.txt", text, note)
    before = Path("output/zh/blog-post.md").read_bytes()
    translated.requests.clear()
    translated.enqueue("会议前阅读关于分布式计算机系统的章节。")
    out = invoke("input", "--to", "zh", "--retranslate", flagged)
    assert out.code == 0, out.stderr
    (request,) = translated.requests  # nothing else re-sent
    assert request.prompt.text == text
    assert request.prompt.guidance == note
    assert note in request.prompt.messages()[0]["content"]
    assert "会议前阅读关于分布式计算机系统的章节。" in Path("output/zh/notes/todo.txt").read_text(
        "utf-8"
    )
    assert Path("output/zh/blog-post.md").read_bytes() == before
    # The new answer replaced the memory's: a plain re-run asks nothing.
    translated.requests.clear()
    assert invoke("input", "--to", "zh").code == 0
    assert translated.requests == []


def test_accept_records_reviewed_pieces_for_check_and_later_reviews(
    translated: ScriptedBackend,
) -> None:
    assert invoke("review", "input", "--to", "zh", "-o", "r.html").code == 0
    text = "Things to do this week."
    accepted = flag_file(Path("ok.json"), page_data(Path("r.html")), "notes/todo.txt", text, "")
    translated.requests.clear()
    out = invoke("input", "--to", "zh", "--accept", accepted, "--json")
    assert out.code == 0, out.stderr
    assert translated.requests == [] and json.loads(out.stdout)["reviewed"] == 1
    check = invoke("input", "--to", "zh", "--check", "--json")
    assert json.loads(check.stdout)["reviewed"] == 1
    assert "1 piece(s) reviewed" in invoke("input", "--to", "zh", "--check").stderr
    assert invoke("review", "input", "--to", "zh", "-o", "r.html").code == 0
    data = page_data(Path("r.html"))
    assert [r[4] for r in rows(data, "notes/todo.txt") if r[2] == text] == ["reviewed"]
    assert data["totals"]["reviewed"] == 1
    # The source changed: the review no longer applies to the file.
    Path("input/notes/todo.txt").write_text(text + "\n\nOne more line.\n", "utf-8")
    check = invoke("input", "--to", "zh", "--check", "--json")
    assert json.loads(check.stdout)["reviewed"] == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("{not json", "not JSON"),
        ('{"format": "other", "version": 1, "flags": []}', "not a translate-dir flags file"),
        ('{"format": "translate-dir-flags", "version": 9, "flags": []}', "unknown version"),
        (
            '{"format": "translate-dir-flags", "version": 1, "flags": [{"lang": "zh"}]}',
            'no "source"',
        ),
    ],
)
def test_a_bad_flags_file_is_one_line_and_exit_2(
    sample: Path, scripted: ScriptedBackend, tmp_path: Path, content: str, says: str
) -> None:
    bad = tmp_path / "flags.json"
    bad.write_text(content, "utf-8")
    for option in ("--retranslate", "--accept"):
        out = invoke(sample, "--to", "zh", option, bad)
        assert out.code == 2
        (line,) = out.stderr.strip().splitlines()
        assert line.startswith("translate-dir: error: ") and says in line
    assert scripted.count == 0


def test_flags_for_another_language_are_refused(sample: Path, scripted: ScriptedBackend) -> None:
    Path("f.json").write_text(flags.dumps([flags.Flag("blog-post.md", "ja", "k", "x")]), "utf-8")
    out = invoke(sample, "--to", "zh", "--retranslate", "f.json")
    assert out.code == 2 and "add --to ja" in out.stderr


def test_links_that_no_longer_resolve_are_marked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scripted: ScriptedBackend
) -> None:
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(
        "# Guide\n\n## Install\n\nSee [install](#install) and [the guide](#guide-1).\n", "utf-8"
    )
    assert invoke(docs, "--to", "zh").code == 0
    assert invoke("review", docs, "--to", "zh").code == 0
    data = page_data(Path("review.html"))
    (link_row,) = [r for r in rows(data, "a.md") if r[7]]
    # "#install" resolved to the English heading; the translated heading has another slug.
    assert link_row[7] == ["#install"]
    assert data["totals"]["broken"] == 1


def test_hand_edits_show_as_edited(translated: ScriptedBackend) -> None:
    out = Path("output/zh/notes/deep/guide.markdown")
    text = out.read_text("utf-8")
    first = text.split("\n\n")[1]
    out.write_text(text.replace(first, "人工修改的段落。"), "utf-8")
    assert invoke("review", "input", "--to", "zh").code == 0
    data = page_data(Path("review.html"))
    states = [r[4] for r in rows(data, "notes/deep/guide.markdown")]
    assert states.count("edited") == 1
    (f,) = [f for f in data["files"] if f["source"] == "notes/deep/guide.markdown"]
    assert f["status"] == "edited"


def test_document_text_cannot_break_out_of_the_page() -> None:
    from pipeline.review import Review

    evil = "</script><script>alert(1)</script>"
    page = review_page.render(
        Review("t", "now", "m", {}, [{"source": evil, "lang": "zh", "rows": []}])
    )
    assert evil not in page
    assert page.count("</script>") == 2


def test_guidance_reaches_both_prompt_shapes() -> None:
    p = prompts.Prompt("Translate.", "Hugo sites", "English", "Chinese", guidance="Hugo is a name")
    assert "Hugo is a name" in p.messages()[0]["content"]
    assert "Note: Hugo is a name" in p.completion()
    plain = prompts.Prompt("Translate.", "Hugo sites", "English", "Chinese")
    assert "note" not in plain.messages()[0]["content"].lower()
    assert "Note:" not in plain.completion()


def test_a_new_translation_is_not_reviewed(tmp_path: Path) -> None:
    with memory.Memory(tmp_path / "m.sqlite") as mem:
        entry = memory.Entry("译文", "m", 1, 1, 0.1, 1.0)
        mem.put_many([("k", entry)])
        assert mem.accept([("k", "a.md", "zh", "h"), ("gone", "a.md", "zh", "h")]) == 1
        assert mem.reviewed(["k", "gone"]) == {"k"}
        mem.put_many([("k", entry)])
        assert mem.reviewed(["k"]) == set()
        for i in range(5):
            mem.put_rejections([("k", f"answer {i}", ["answer echoes the source"])])
        kept = mem.rejections(["k"])["k"]
        assert len(kept) == memory.KEEP_REJECTIONS
        assert kept[-1] == ("answer 4", ["answer echoes the source"])


def test_bench_figure_builds_a_page_for_generated_files(tmp_path: Path) -> None:
    from bench import review as bench_review
    from bench.common import Context

    fig = bench_review.run(Context("tiny", tmp_path / "work", use_model=False))
    assert fig.data["files"] == 20 and fig.data["pieces"] > 20
    assert fig.data["bytes"] == (tmp_path / "work" / "review" / "review.html").stat().st_size
