"""Issue 14: a weak model may translate badly, but never writes a broken document.

The failures a new user met with Gemma 3 270M, each reproduced by a scripted
answer, must be rejected: by ``validate.check_segment`` alone, and through the
whole pipeline (the piece stays in English, the file is never written broken,
and the report counts the check that said no). Also: completion-style models get
a paragraph sentence by sentence, and the joined paragraph is what is checked
and stored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline import chunks, clean, documents, segments, validate
from pipeline.report import RunReport
from pipeline.testing import ScriptedBackend, to_zh
from tests.conftest import data_path
from tests.reliability_support import invoke, translate_one, use_scripted


def zh(source: str, answer: str, **kw: object) -> list[str]:
    return validate.check_segment(
        source, answer, block="paragraph", source_lang="en", target_lang="zh", **kw
    )


def de(source: str, answer: str, **kw: object) -> list[str]:
    return validate.check_segment(
        source, answer, block="paragraph", source_lang="en", target_lang="de", **kw
    )


# (name, check, source, answer, keyword arguments, the check that must say no)
CORPUS = [
    (
        "unmatched strong emphasis",
        zh,
        "Some notes must stay **forever** on my machine.",
        "一些笔记必须 **永远**在我的机器上**",
        {},
        "inline markup",
    ),
    (
        "nested brackets render literally",
        de,
        "Look at the [configuration guide](⟦1⟧) in English.",
        "…schauen Sie sich [die [Konfigurationsleitfaden](⟦1⟧)]([2] [in Englisch] an).",
        {},
        "inline markup",
    ),
    (
        "two-line block quote became one line",
        zh,
        "Some notes must stay private.\nKeep them on your own disk.",
        "一些笔记必须保密。",
        {"keep_lines": True},
        "lines",
    ),
    (
        "'with pip' dropped (the source with words removed)",
        de,
        "Install it with pip if it fails to build.",
        "Install it if it fails to build.",
        {},
        "dropped text",
    ),
    (
        "a line of a list item became one word",
        zh,
        "The planner supports these plants:",
        "计划",
        {},
        "dropped text",
    ),
    (
        "German answer: the English source with 'if it fails' deleted",
        de,
        "Run the installer again if it fails and check the log file.",
        "Run the installer again and check the log file.",
        {},
        "dropped text",
    ),
    (
        "front-matter value gained a line and the prompt's label",
        zh,
        "Emilina post 1.",
        "艾米莉娜 帖子 1.\nSimplified Chinese: 艾米莉娜 帖子 2.",
        {"keep_lines": True},
        "prompt leak",
    ),
    (
        "front-matter value gained markup",
        zh,
        "Emilina post",
        "<code>艾米莉娜</code> 帖子",
        {"keep_lines": True},
        "inline markup",
    ),
    (
        "the source label leaked",
        zh,
        "Read the guide before you start.",
        "开始之前阅读指南。\nEnglish: Read the guide.",
        {},
        "prompt leak",
    ),
    (
        "the role's own words",
        zh,
        "Read the guide before you start.",
        "Reply with the translation only: 开始之前阅读指南。",
        {
            "prompt": validate.prompt_phrases(
                "You are a translator.\nReply with the translation only: no notes.",
                "English",
                "Simplified Chinese",
            )
        },
        "prompt leak",
    ),
    (
        "a hard line break lost",
        zh,
        "First line of the address  \nSecond line of the address",
        "地址的第一行 地址的第二行",
        {},
        "lines",
    ),
    (
        "emphasis lost",
        zh,
        "Always back up **before** you upgrade the cluster.",
        "升级集群之前请务必备份。",
        {},
        "inline markup",
    ),
    (
        "a link lost its brackets",
        zh,
        "See the [upgrade guide](⟦1⟧) for the steps.",
        "请参阅升级指南 ⟦1⟧ 了解步骤。",
        {},
        "inline markup",
    ),
    (
        "far fewer sentences",
        zh,
        "Stop the service. Copy the data. Start the service. Check the logs. Done it is.",
        "停止服务。",
        {},
        "dropped text",
    ),
]


@pytest.mark.parametrize(
    ("check", "source", "answer", "kw", "expected"),
    [case[1:] for case in CORPUS],
    ids=[case[0] for case in CORPUS],
)
def test_each_failure_of_the_issue_is_rejected(
    check, source: str, answer: str, kw: dict[str, object], expected: str
) -> None:  # type: ignore[no-untyped-def]
    problems = check(source, answer, **kw)
    assert problems, "accepted"
    assert expected in {validate.check_of(p) for p in problems}, problems


@pytest.mark.parametrize(
    ("source", "answer"),
    [
        ("Some notes must stay **forever** on my machine.", "一些笔记必须**永远**留在我的机器上。"),
        # CJK emphasis that CommonMark would not render is repaired before the check.
        ('This is **"quoted"** text here.', "这是**“引用”**的文字。"),
        ("See the [guide](⟦1⟧) and [notes](⟦2⟧).", "请参阅[指南](⟦1⟧)和[说明](⟦2⟧)。"),
        ("Line one  \nline two", "第一行  \n第二行"),
        ("Arrays look like [1, 2] in ⟦1⟧.", "数组在 ⟦1⟧ 中看起来像 [1, 2]。"),
        ("Brackets [like this] stay literal.", "方括号 [像这样] 保持原样。"),
    ],
)
def test_faithful_answers_pass(source: str, answer: str) -> None:
    assert zh(source, answer) == []


def test_links_in_another_order_and_changed_targets() -> None:
    src = "See [a](⟦1⟧) and [b](⟦2⟧)."
    assert zh(src, "见[b](⟦2⟧)和[a](⟦1⟧)。") == ["links in another order"]
    assert zh("See [a](x.md) here.", "见[a](y.md)这里。") == ["link targets changed"]


def test_line_count_holds_only_where_asked() -> None:
    src = "Some notes must stay private.\nKeep them on your own disk."
    merged = "一些笔记必须保密。把它们保存在你自己的磁盘上。"
    assert zh(src, merged) == []
    assert zh(src, merged, keep_lines=True) == ["line count changed (2 -> 1)"]


def test_every_problem_names_a_check() -> None:
    for case in CORPUS:
        for problem in case[1](case[2], case[3], **case[4]):
            assert validate.check_of(problem) in validate.CHECKS


def test_clean_strips_a_leading_label_only() -> None:
    labels = ("English", "Simplified Chinese")
    assert clean.clean("Simplified Chinese: 你好。", source="Hello.", labels=labels) == "你好。"
    # A label inside the answer stays for validate to reject.
    inside = "你好。\nSimplified Chinese: 再见。"
    assert clean.clean(inside, source="Hello.", labels=labels) == inside
    assert clean.clean("English: a", source="English: a", labels=labels) == "English: a"


# --- sentences ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello world. This is e.g. a test! And the U.S. stuff. Done",
        "Some notes must stay private.\nKeep them on your own disk.",
        "运行这个。然后那个！好",
        "See **bold. Text** here. Next [a. b](⟦1⟧) one. Last",
        "Mitchell finished in the Super-G. Czech competitor Jelinek finished sixteenth.",
        "No end at all",
    ],
)
def test_sentences_join_back_to_the_text(text: str) -> None:
    parts = chunks.sentences(text)
    assert "".join(s + sep for s, sep in parts) == text
    assert all(s.strip() for s, _ in parts)
    # Never inside emphasis or a link label.
    for s, _ in parts:
        assert s.count("**") % 2 == 0 and s.count("[") == s.count("]")


def test_sentence_count_and_cuts() -> None:
    assert chunks.count_sentences("Hello world. This is e.g. a test! And U.S. stuff. Done") == 4
    assert chunks.count_sentences("Mitchell finished in the Super-G. Czech won.") == 2
    assert [s for s, _ in chunks.sentences("a line\nsecond. Third", lines=True)] == [
        "a line",
        "second.",
        "Third",
    ]


def test_sentence_pieces_round_trip_on_the_tidb_pages() -> None:
    seen = 0
    for page in sorted(data_path("tidb-operator-docs", "en").rglob("*.md"))[:40]:
        doc = documents.decode(page.read_bytes(), name=page.name, markdown=True)
        for seg in segments.split(doc.text, markdown=True):
            if seg.kind == "prose" and seg.block == "paragraph":
                for lines in (False, True):
                    parts = chunks.sentences(seg.content, lines=lines)
                    assert "".join(s + sep for s, sep in parts) == seg.content
                seen += 1
    assert seen > 100


# --- through the pipeline ------------------------------------------------------------

PAGE = """---
title: "Emilina post"
description: "Emilina post 1."
---

# Notes on the garden

See the [setup section](#setup) first. It explains **everything** you need.

- Install it with pip if it fails to build.
- The planner supports these plants:

> Some notes must stay private.
> Keep them on your own disk.

Some notes must stay **forever** on my machine.

## Setup

Look at the [configuration guide](#setup) in English.
"""

# Source sentence (as the model sees it, protected) -> the broken answer Gemma gave.
BROKEN = {
    "Some notes must stay **forever** on my machine.": "一些笔记必须 **永远**在我的机器上**",
    "Look at the [configuration guide](⟦1⟧) in English.": (
        "…schauen Sie sich [die [Konfigurationsleitfaden](⟦1⟧)]([2] [in Englisch] an)."
    ),
    "Some notes must stay private.\nKeep them on your own disk.": "一些笔记必须保密。",
    "Keep them on your own disk.": "把它们 **保存**",
    "The planner supports these plants:": "计划",
    "Emilina post 1.": "艾米莉娜 帖子 1.\nSimplified Chinese: 艾米莉娜 帖子 2.",
    "Emilina post": "<code>艾米莉娜</code> 帖子",
}


def broken(text: str) -> str:
    # A chat model gets several paragraphs in one request: answer each.
    return "\n\n".join(BROKEN.get(p, to_zh(p)) for p in text.split("\n\n"))


def run_page(tmp_path: Path, backend: ScriptedBackend) -> tuple[str, RunReport]:
    out, report = translate_one(tmp_path, "page.md", PAGE.encode("utf-8"), backend)
    return out.decode("utf-8"), report


@pytest.mark.parametrize("one", [True, False], ids=["completion-style", "chat"])
def test_the_broken_answers_are_never_written(tmp_path: Path, one: bool) -> None:
    out, report = run_page(tmp_path, ScriptedBackend(broken, one_segment_per_request=one))
    for answer in BROKEN.values():
        assert answer not in out
    for kept in (
        "Some notes must stay **forever** on my machine.",
        "Look at the [configuration guide](#setup) in English.",
        "Some notes must stay private.",
        "- The planner supports these plants:",
        'title: "Emilina post"',
        'description: "Emilina post 1."',
    ):
        assert kept in out, kept
    # What passed is translated: the heading, the first paragraph, a list item.
    assert "# Notes on the garden" not in out and "Install it with pip" not in out
    assert "Simplified Chinese" not in out and "<code>" not in out
    assert out.count("**") % 2 == 0
    rejected = report.rejected
    for check in ("inline markup", "dropped text", "prompt leak", "lines"):
        assert rejected.get(check, 0) >= 1, rejected
    assert report.to_json()["rejected_answers"] == rejected


def test_completion_style_models_get_sentences(tmp_path: Path) -> None:
    backend = ScriptedBackend(to_zh, one_segment_per_request=True)
    out, report = run_page(tmp_path, backend)
    asked = [r.prompt.text for r in backend.requests]
    assert "See the [setup section](⟦1⟧) first." in asked
    assert "It explains **everything** you need." in asked
    # A block quote goes line by line, so its lines hold.
    assert "Some notes must stay private." in asked and "Keep them on your own disk." in asked
    assert report.kept == 0
    first = to_zh("See the [setup section](⟦1⟧) first.").replace("⟦1⟧", "#setup")
    assert f"{first} {to_zh('It explains')}" in out
    # The memory holds the joined paragraph: a second run asks nothing.
    again = ScriptedBackend(to_zh, one_segment_per_request=True)
    run_page(tmp_path, again)
    assert again.count == 0


def test_a_failing_sentence_is_asked_again_alone(tmp_path: Path) -> None:
    calls: dict[str, int] = {}

    def reply(text: str) -> str:
        calls[text] = calls.get(text, 0) + 1
        if text == "It explains **everything** you need." and calls[text] == 1:
            return "它解释了 **一切"  # broken once
        return to_zh(text)

    backend = ScriptedBackend(reply, one_segment_per_request=True)
    out, report = run_page(tmp_path, backend)
    assert calls["It explains **everything** you need."] == 2
    assert calls["See the [setup section](⟦1⟧) first."] == 1
    assert report.kept == 0 and report.rejected == {"inline markup": 1}
    assert to_zh("It explains **everything** you need.") in out


def test_chat_models_still_get_whole_chunks(tmp_path: Path) -> None:
    backend = ScriptedBackend(to_zh)
    run_page(tmp_path, backend)
    assert any("first. It explains" in r.prompt.text for r in backend.requests)


def test_summary_and_report_count_the_rejections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_scripted(monkeypatch, ScriptedBackend(broken, one_segment_per_request=True))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "docs"
    src.mkdir()
    (src / "page.md").write_text(PAGE, encoding="utf-8")
    report = tmp_path / "report.json"
    done = invoke(src, "--to", "zh", "--out", tmp_path / "out", "--report", report)
    line = next(x for x in done.stderr.splitlines() if x.startswith("answers rejected"))
    assert re.search(r"\d+ inline markup", line) and re.search(r"\d+ dropped text", line)
    data = json.loads(report.read_text())
    assert data["rejected_answers"]["inline markup"] >= 1
    per_chunk = [c["rejected"] for f in data["details"] for c in f["chunks"]]
    assert sum(sum(r.values()) for r in per_chunk) == sum(data["rejected_answers"].values())
