"""Roles (system templates), few-shot examples, and the two prompt shapes.

Chat backends get ``Prompt.messages()``: the instructions in the system part, the
few-shot pairs as earlier turns, and only the text to translate in the last user
turn. Base models without a chat template get ``Prompt.completion()``: the same
pairs laid out as "English: ...\\nChinese: ..." so the model continues the pattern
and stops at the blank line after its answer. A base model cannot tell where a
multi-paragraph answer ends, so completion-style backends get one paragraph per
request (``StartInfo.one_segment_per_request``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline import languages

# Bump when the wording or layout of prompts changes: it is part of every
# translation-memory key, so old entries stop matching.
# 2: completion-style models get a paragraph one sentence per request (issue 14).
PROMPT_VERSION = 2

# Built-in few-shot pairs. They show the model that ⟦n⟧ markers stay where
# they are, and that Markdown emphasis and paragraphs survive.
_EXAMPLE_SOURCES = (
    "Run ⟦1⟧ to install the **latest** version.",
    "See the [configuration guide](⟦2⟧) for details.",
)
BUILTIN_EXAMPLES: dict[str, tuple[str, str]] = {
    "zh": ("运行 ⟦1⟧ 安装**最新**版本。", "详情请参阅[配置指南](⟦2⟧)。"),
    "ja": (
        "⟦1⟧ を実行して**最新**バージョンをインストールします。",
        "詳しくは[設定ガイド](⟦2⟧)を参照してください。",
    ),
    "ko": (
        "⟦1⟧ 을(를) 실행하여 **최신** 버전을 설치합니다.",
        "자세한 내용은 [구성 가이드](⟦2⟧)를 참조하세요.",
    ),
    "de": (
        "Führen Sie ⟦1⟧ aus, um die **neueste** Version zu installieren.",
        "Details finden Sie im [Konfigurationsleitfaden](⟦2⟧).",
    ),
    "fr": (
        "Exécutez ⟦1⟧ pour installer la **dernière** version.",
        "Consultez le [guide de configuration](⟦2⟧) pour plus de détails.",
    ),
    "es": (
        "Ejecute ⟦1⟧ para instalar la versión **más reciente**.",
        "Consulte la [guía de configuración](⟦2⟧) para más detalles.",
    ),
    "ru": (
        "Запустите ⟦1⟧, чтобы установить **последнюю** версию.",
        "Подробности см. в [руководстве по настройке](⟦2⟧).",
    ),
}


def examples_for(source: str, target: str) -> tuple[tuple[str, str], ...]:
    """Few-shot pairs for this direction; empty when we have none for it."""
    if languages.base(source) != "en":
        return ()
    translations = BUILTIN_EXAMPLES.get(languages.base(target))
    if translations is None:
        return ()
    return tuple(zip(_EXAMPLE_SOURCES, translations, strict=True))


@dataclass(frozen=True)
class Prompt:
    """Everything a backend needs to ask for one translation."""

    system: str
    text: str
    source_name: str
    target_name: str
    examples: tuple[tuple[str, str], ...] = ()
    # Previous chunk (source, translation), for consistency across chunks.
    context: tuple[str, str] | None = None
    glossary: tuple[tuple[str, str], ...] = field(default=())
    # A reviewer's note on an earlier translation of this text (--retranslate).
    guidance: str = ""

    def messages(self) -> list[dict[str, str]]:
        system = self.system
        if self.glossary:
            terms = "\n".join(f"- {src} → {dst}" for src, dst in self.glossary)
            system += f"\nUse these term translations:\n{terms}"
        if self.guidance:
            system += f"\nA reviewer's note on an earlier translation: {self.guidance}"
        out = [{"role": "system", "content": system}]
        pairs = list(self.examples)
        if self.context is not None:
            pairs.append(self.context)
        for src, dst in pairs:
            out.append({"role": "user", "content": src})
            out.append({"role": "assistant", "content": dst})
        out.append({"role": "user", "content": self.text})
        return out

    def completion(self) -> str:
        lines = [f"Translate {self.source_name} to {self.target_name}."]
        if self.glossary:
            lines.append(
                "Terms: " + "; ".join(f"{src} = {dst}" for src, dst in self.glossary) + "."
            )
        if self.guidance:
            lines.append(f"Note: {self.guidance}")
        lines.append("")
        pairs = list(self.examples)
        if self.context is not None:
            pairs.append(self.context)
        for src, dst in pairs:
            lines += [f"{self.source_name}: {src}", f"{self.target_name}: {dst}", ""]
        lines += [f"{self.source_name}: {self.text}", f"{self.target_name}:"]
        return "\n".join(lines)

    def completion_stops(self) -> list[str]:
        # One pair per paragraph: a blank line or the next source label ends the answer.
        return ["\n\n", f"\n{self.source_name}:"]


def render_role(template: str, source: str, target: str) -> str:
    """Fill ``{source}`` and ``{target}`` in a role's system template."""
    return template.replace("{source}", languages.name(source)).replace(
        "{target}", languages.name(target)
    )
