"""fix_cjk_emphasis(): broken CJK emphasis repaired (checked with markdown-it),
everything else left byte-identical."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline.cjk import fix_cjk_emphasis
from tests.conftest import data_path

FIXTURES = Path(__file__).parent / "fixtures" / "clean"
MD = MarkdownIt("commonmark").enable("table")


def emphasis(text: str) -> int:
    """Rendered <strong>/<em> elements, from Markdown syntax or inline HTML."""
    count = 0
    for token in MD.parse(text):
        for child in token.children or ():
            html = child.type == "html_inline" and child.content in ("<strong>", "<em>")
            if html or child.type in ("strong_open", "em_open"):
                count += 1
    return count


def visible_text(text: str) -> str:
    """The text a reader sees, without emphasis markup."""
    parts = []
    for token in MD.parse(text):
        for child in token.children or ():
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type == "softbreak":
                parts.append("\n")
    return "".join(parts)


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        # Punctuation inside the delimiters, a letter outside: moved out.
        ("这是**“引用”**的内容。", "这是“**引用**”的内容。"),
        ("**加粗。**然后继续。", "**加粗**。然后继续。"),
        ("**注意：**请先备份数据。", "**注意**：请先备份数据。"),
        ("请阅读**《用户指南》**以了解更多。", "请阅读《**用户指南**》以了解更多。"),
        ("**「重要」**とは何か。", "「**重要**」とは何か。"),
        ("**주의:**먼저 백업하세요.", "**주의**:먼저 백업하세요."),
        ("这是*“强调”*的内容。", "这是“*强调*”的内容。"),
        # ``__`` cannot close between CJK letters; ``**`` can.
        ("这是__加粗__的内容。", "这是**加粗**的内容。"),
        ("这是__“引用”__的内容。", "这是“**引用**”的内容。"),
        # Nothing to move (a link or a placeholder at the edge): HTML.
        ("参见**[配置指南](⟦1⟧)**的说明。", "参见<strong>[配置指南](⟦1⟧)</strong>的说明。"),
        ("使用**⟦1⟧**命令安装。", "使用<strong>⟦1⟧</strong>命令安装。"),
        ("使用**`kubectl`**命令安装。", "使用<strong>`kubectl`</strong>命令安装。"),
        ("只有**“”**两个引号。", "只有<strong>“”</strong>两个引号。"),
        # In a table cell, a list item, a heading and a block quote.
        (
            "| 参数 | **注意：**说明 |\n|---|---|\n| a | b |",
            "| 参数 | **注意**：说明 |\n|---|---|\n| a | b |",
        ),
        ("- **注意：**请先备份。", "- **注意**：请先备份。"),
        ("## **注意：**事项", "## **注意**：事项"),
        ("> **注意：**请先备份。", "> **注意**：请先备份。"),
        # Two broken runs on one line.
        ("**一。**二**“三”**四", "**一**。二“**三**”四"),
    ],
)
def test_broken_emphasis_is_repaired(broken: str, fixed: str) -> None:
    assert emphasis(broken) < emphasis(fixed)
    assert fix_cjk_emphasis(broken) == fixed
    # The reader sees the same words, now emphasised.
    assert visible_text(fixed) == visible_text(broken).replace("**", "").replace("__", "").replace(
        "*", ""
    )
    assert fix_cjk_emphasis(fixed) == fixed


@pytest.mark.parametrize(
    "text",
    [
        "普通文本，没有强调。",
        # Already renders.
        "**加粗**。",
        "这是**加粗**的内容。",
        "这是 **“引用”** 的内容。",
        "**“引用”**。",
        "> **注意：**\n>\n> 请先备份。",
        "这是*强调*的。",
        # Not CJK text: left to the author.
        "This is **bold** text.",
        'He said**"hi"**there.',
        "2*3*4 = 24",
        # Code spans, placeholders and code blocks are never touched.
        "`**代码。**然后`",
        "运行 `a**“b”**c` 命令。",
        "```\n这是**“引用”**的\n```",
        "    这是**“引用”**的",
        "<div>这是**“引用”**的</div>",
        # Spaces inside the delimiters: not meant as emphasis.
        "这是** 引用 **的",
        # Escaped delimiters.
        "这是\\*\\*“引用”\\*\\*的",
        # Identifiers with underscores.
        "设置max_connections_数量参数。",
        "",
    ],
)
def test_text_that_needs_no_repair_is_unchanged(text: str) -> None:
    assert fix_cjk_emphasis(text) == text


def test_multi_paragraph_document_keeps_every_other_byte() -> None:
    doc = (
        "# 标题\n\n这是**“引用”**的内容。\n\n```yaml\nkey: **“值”**的\n```\n\n"
        "- **注意：**请先备份。\n- 第二项\n\n<!-- **“注释”**的 -->\n"
    )
    fixed = fix_cjk_emphasis(doc)
    assert fixed == doc.replace("这是**“引用”**的", "这是“**引用**”的").replace(
        "- **注意：**请", "- **注意**：请"
    )
    assert emphasis(fixed) == emphasis(doc) + 2


def test_placeholders_are_never_moved() -> None:
    # Moving the full stop out is not enough here (the placeholder starts with
    # punctuation and follows a letter), and the placeholder itself cannot move.
    text = "运行**⟦1⟧。**然后"
    fixed = fix_cjk_emphasis(text)
    assert fixed == "运行<strong>⟦1⟧。</strong>然后"
    assert emphasis(fixed) == 1


def test_human_chinese_pages_are_unchanged() -> None:
    page = FIXTURES / "tidb" / "zh.md"
    text = page.read_text(encoding="utf-8")
    assert fix_cjk_emphasis(text) == text


def test_real_emphasis_with_punctuation_moved_inside_is_repaired() -> None:
    """Every ``**X**。`` in the human Chinese TiDB docs, rewritten as the broken
    ``**X。**``, renders again after the repair."""
    run = re.compile(r"\*\*([^*\n]+?)\*\*([，。：；、）」”])")
    variants = 0
    for page in sorted(data_path("tidb-operator-docs", "zh").rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert fix_cjk_emphasis(text) == text
        for line in text.split("\n"):
            for match in run.finditer(line):
                moved = f"**{match.group(1)}{match.group(2)}**"
                broken = line[: match.start()] + moved + line[match.end() :]
                fixed = fix_cjk_emphasis(broken)
                assert emphasis(fixed) >= emphasis(line), broken
                variants += 1
    assert variants >= 40
