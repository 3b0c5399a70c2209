"""clean(): each rule with answers it must clean and answers it must leave alone;
is_looping(): real loops caught, tables, lists and real prose left alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.clean import clean, is_looping
from tests.conftest import data_path

FIXTURES = Path(__file__).parent / "fixtures" / "clean"

SRC = "Run the command to install the latest version."
ZH = "运行该命令以安装最新版本。"


def _lines(name: str) -> list[str]:
    return (FIXTURES / "flores30" / name).read_text(encoding="utf-8").splitlines()


# --- think blocks --------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        f"<think>The user wants Chinese.</think>\n{ZH}",
        f"<think>\nline one\n\nline two\n</think>\n\n{ZH}",
        f"  <think></think>{ZH}",
        f"<THINK>x</THINK>{ZH}",
        f"<thinking>x</thinking>\n{ZH}",
    ],
)
def test_think_block_is_stripped(answer: str) -> None:
    assert clean(answer, source=SRC) == ZH


def test_unterminated_think_block_leaves_nothing() -> None:
    assert clean("<think>I should translate this carefully and", source=SRC) == ""


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        # Not leading: it is content.
        (f"{ZH} <think>x</think>", SRC),
        # The source itself starts with the tag (a document about think tags).
        ("<think>标签</think> 用于推理。", "<think>tags</think> are used for reasoning."),
    ],
)
def test_think_block_kept_when_it_is_content(answer: str, source: str) -> None:
    assert clean(answer, source=source) == answer


# --- preambles -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "preamble",
    [
        "Here is the translation:",
        "Here's the translation:",
        "Here is the translation in Simplified Chinese:",
        "Here is the Simplified Chinese translation of the text, keeping the Markdown:",
        "Sure! Here's the translated text:",
        "Sure, here is the translation:",
        "Certainly! Here is the translation:",
        "Okay, here is the translation.",
        "Translation:",
        "**Translation:**",
        "Chinese translation:",
        "Translated text:",
        "The translation is:",
        "以下是翻译：",
        "以下是中文翻译：",
        "好的，以下是翻译：",
        "翻译：",
        "译文：",
        "翻译如下：",
        "以下は翻訳です：",
        "翻訳：",
        "번역:",
        "다음은 번역입니다:",
        "Hier ist die Übersetzung:",
        "Übersetzung:",
        "Voici la traduction :",
        "Traduction en français :",
        "Aquí está la traducción:",
        "Вот перевод:",
    ],
)
@pytest.mark.parametrize("gap", ["\n", "\n\n"])
def test_preamble_line_is_stripped(preamble: str, gap: str) -> None:
    assert clean(f"{preamble}{gap}{ZH}", source=SRC) == ZH


@pytest.mark.parametrize(
    "answer", [f"Translation: {ZH}", f"翻译：{ZH}", f"**Translation:** {ZH}", f"译文: {ZH}"]
)
def test_inline_label_is_stripped(answer: str) -> None:
    assert clean(answer, source=SRC) == ZH


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        # The source is itself about translation: its first line stays.
        ("翻译：将文本转换为另一种语言。", "Translation: turning text into another language."),
        ("翻译指南：\n\n第一步。", "Translation guide:\n\nStep one."),
        ("## 翻译\n\n内容。", "## Translation\n\nContent."),
        # A legitimate first line that ends with a colon but does not introduce
        # the translation.
        ("请按以下步骤操作：\n\n1. 安装。", "Follow these steps:\n\n1. Install."),
        ("Führen Sie die folgenden Schritte aus:\nInstallieren.", "Do the following:\nInstall."),
        # Mentions translation, but as prose, not as a label.
        (
            "本工具提供本地翻译，并保留所有代码块与链接。",
            "This tool translates locally and keeps all code blocks and links.",
        ),
        # Preamble-shaped text with nothing after it is not stripped to nothing.
        ("以下是翻译：", "Here is the translation:"),
    ],
)
def test_preamble_like_content_is_kept(answer: str, source: str) -> None:
    assert clean(answer, source=source) == answer


def test_preamble_alone_is_not_stripped_to_nothing() -> None:
    assert clean("Here is the translation:", source=SRC) == "Here is the translation:"


# --- fences --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        f"```markdown\n{ZH}\n```",
        f"```md\n{ZH}\n```",
        f"```\n{ZH}\n```",
        f"~~~\n{ZH}\n~~~",
        f"````markdown\n{ZH}\n````",
        f"```text\n{ZH}\n```\n",
        f"Here is the translation:\n```markdown\n{ZH}\n```",
        f"```markdown\n以下是翻译：\n\n{ZH}\n```",
    ],
)
def test_wrapping_fence_is_stripped(answer: str) -> None:
    assert clean(answer, source=SRC) == ZH


def test_wrapping_fence_keeps_inner_blank_lines() -> None:
    source = "First paragraph.\n\nSecond paragraph."
    answer = "```markdown\n第一段。\n\n第二段。\n```"
    assert clean(answer, source=source) == "第一段。\n\n第二段。"


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        # The source is a fence: the fence is the content.
        ("```\n运行\n```", "```\nrun\n```"),
        # A code fence with a language is a code sample, not a wrapper.
        ("```python\nprint(1)\n```", "A sample: print(1)"),
        # Two fences: not one wrapper around everything.
        ("```\na\n```\n\n文本\n\n```\nb\n```", "```\na\n```\n\ntext\n\n```\nb\n```"),
        # A fence that is only part of the answer.
        (f"{ZH}\n\n```\ncode\n```", f"{SRC}\n\n```\ncode\n```"),
    ],
)
def test_fence_kept_when_it_is_content(answer: str, source: str) -> None:
    assert clean(answer, source=source) == answer


# --- quotes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", [f'"{ZH}"', f"“{ZH}”", f"「{ZH}」", f"'{ZH}'", "« Exécutez la commande. »"]
)
def test_wrapping_quotes_are_stripped(answer: str) -> None:
    assert clean(answer, source=SRC) == answer[1:-1].strip()


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        ("“你好，”他说。", '"Hello," he said.'),
        ("“你好。”", '"Hello."'),
        # Quotes inside the source may become quotes around the whole translation.
        ("“他要求‘彻底重写’。”", "He asked for a 'complete rewrite'."),
        # Two quotations, not one wrapper.
        ("“是”或“否”", "Yes or no"),
        # Only an opening quote.
        ("“引用的开头", "Start of a quote"),
    ],
)
def test_quotes_kept_when_they_are_content(answer: str, source: str) -> None:
    assert clean(answer, source=source) == answer


# --- trailing notes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "tail",
    [
        "\n\nNote: I kept the product name in English.",
        "\n\n(Note: the placeholders were preserved.)",
        "\n\n(Translated by AI)",
        "\n\nTranslated by Qwen.",
        "\n\n---\n\nNote: this is a machine translation.",
        "\n---\nNote: this is a machine translation.",
        "\n\n注：保留了产品名称。",
        "\n\n**Note:** kept terms.",
        "\n(Note: kept terms.)",
        "\n\nTranslator's note: kept terms.",
    ],
)
def test_trailing_note_is_stripped(tail: str) -> None:
    assert clean(ZH + tail, source=SRC) == ZH


@pytest.mark.parametrize(
    ("answer", "source"),
    [
        # A translated note paragraph: same paragraph count as the source.
        ("运行命令。\n\n注意：这会删除数据。", "Run the command.\n\nNote: this deletes data."),
        ("注意：这会删除数据。", "Note: this deletes data."),
        # The source mentions a note; the extra paragraph may be its text, moved.
        ("运行命令。\n\n注意：这会删除数据。", "Run the command. Note: this deletes data."),
        # A parenthesised last line that the source also has.
        ("运行命令。\n（注：可选）", "Run the command.\n(Note: optional)"),
        # A rule that the source has too.
        ("第一部分\n\n---\n\n注：第二部分", "Part one\n\n---\n\nNote: part two"),
    ],
)
def test_notes_kept_when_they_are_content(answer: str, source: str) -> None:
    assert clean(answer, source=source) == answer


# --- whitespace and combinations -----------------------------------------------------


def test_outer_whitespace_stripped_inner_blank_lines_kept() -> None:
    source = "One.\n\nTwo.\n\n\nThree."
    answer = "\n\n  一。\n\n二。\n\n\n三。  \n\n"
    assert clean(answer, source=source) == "一。\n\n二。\n\n\n三。"


def test_crlf_answer_is_normalised() -> None:
    assert clean("Translation:\r\n一。\r\n\r\n二。", source="One.\n\nTwo.") == "一。\n\n二。"


def test_everything_at_once() -> None:
    answer = (
        "<think>ok</think>\nSure! Here's the translation:\n\n```markdown\n"
        f"{ZH}\n```\n\nNote: kept the formatting."
    )
    assert clean(answer, source=SRC) == ZH


def test_plain_translation_is_untouched() -> None:
    for answer in (ZH, "运行：\n\n- 一\n- 二", "| 列 |\n|---|\n| 值 |", "# 标题"):
        assert clean(answer, source=SRC) == answer


def test_real_human_translations_are_untouched() -> None:
    english = _lines("eng_Latn.txt")
    for name in ("zho_Hans.txt", "deu_Latn.txt", "jpn_Jpan.txt", "fra_Latn.txt"):
        for source, reference in zip(english, _lines(name), strict=True):
            assert clean(reference, source=source) == reference.strip()


# --- loops ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "挪威" * 60,
        "挪威的首都是" + "挪威" * 12,
        "the " * 20,
        "It is the the the the the the the the the the end.",
        "这是一个很好的方法。" * 6,
        "The cluster is ready for production use. " * 3,
        "\n".join(["- 安装 TiDB 集群"] * 6),
        "\n".join(["Restart the Pod.", "", "Restart the Pod.", "", "Restart the Pod."] * 2),
        "| a | 挪威挪威挪威挪威挪威挪威挪威挪威挪威挪威 |",
    ],
)
def test_loops_are_detected(text: str) -> None:
    assert is_looping(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ZH,
        "哈哈哈，好。",
        "Very, very good.",
        "The the is a typo that appears twice.",
        # Tables with repeated cells, rules and aligned columns.
        "| 参数 | 是否必填 | 默认值 |\n|------|------|------|\n"
        + "\n".join(f"| ⟦{i}⟧ | 是 | 是 |" for i in range(1, 30)),
        "| yes | yes | yes | yes | yes | yes | yes | yes | yes |\n" + "|---" * 9 + "|",
        "|a|a|a|a|a|a|a|a|a|a|a|a|",
        # Lists of links with the same shape.
        "\n".join(f"- [v1.{i}](⟦{i}⟧)" for i in range(1, 40)),
        "\n".join(f"- Fix a bug in component {i} ([#{1000 + i}](⟦{i}⟧))" for i in range(1, 30)),
        "======\n\n------\n\n**********",
        "0000000000000000000000000000",
    ],
)
def test_legitimate_text_is_not_a_loop(text: str) -> None:
    assert not is_looping(text)


def test_real_prose_is_not_a_loop() -> None:
    for name in ("eng_Latn.txt", "zho_Hans.txt", "deu_Latn.txt", "jpn_Jpan.txt", "fra_Latn.txt"):
        lines = _lines(name)
        assert not any(is_looping(line) for line in lines)
        # Long text for the compression heuristic.
        assert not is_looping("\n\n".join(lines))
    for name in ("en.md", "zh.md"):
        assert not is_looping((FIXTURES / "tidb" / name).read_text(encoding="utf-8"))


def test_whole_flores_devtest_is_untouched_and_not_looping() -> None:
    root = data_path("flores200-devtest")
    english = (root / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    for name in ("zho_Hans", "deu_Latn", "jpn_Jpan", "fra_Latn"):
        other = (root / f"{name}.devtest").read_text(encoding="utf-8").splitlines()
        for source, reference in zip(english, other, strict=True):
            assert clean(reference, source=source) == reference.strip()
            assert not is_looping(reference)
