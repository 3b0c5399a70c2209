"""Calibration of the content checks on human translations (issue 14).

Every band of ``validate`` that can reject an answer for what it lost (length
below the language pair's floor, far fewer sentences, the source with words
removed) or for being in the wrong language (no target script, an echo) must
let every human translation through. The pairs:

- FLORES-200 devtest, English to and from Chinese, German, French and Japanese:
  each sentence, and five-sentence paragraphs (1,012 and 202 pairs a direction);
- the TiDB Operator pages, English and Chinese, paragraph by paragraph (headings,
  list items and table text too) on the pages whose prose segments line up,
  both directions.

Both sides are protected as the pipeline protects a source (code, URLs and link
targets become ⟦n⟧ markers), and judged by ``validate.content_problems``. The
table gives, per direction, the pairs, the lowest length ratio a human reached
against the floor the check uses, and the rejections (the target: 0). The inline
markup check is not a band; how often a human translation's inline markup
differs from its source's is shown for information (humans drop or add bold).

Run ``python -m bench.calibration`` for the table; ``tests/test_calibration.py``
holds the rejections at 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.common import FLORES, TIDB_EN, TIDB_ZH, Context, Figure, pages
from pipeline import documents, languages, protect, segments, validate

NAME = "calibration"
TITLE = "Content checks on human translations (false positives)"
FLORES_CODES = {"zh": "zho_Hans", "de": "deu_Latn", "fr": "fra_Latn", "ja": "jpn_Jpan"}
_CJK = {"zh", "ja"}
PER_PARAGRAPH = 5


@dataclass
class Row:
    """One direction of one corpus."""

    corpus: str
    source: str
    target: str
    pairs: int = 0
    low_ratio: float = 99.0
    floor: float = 0.0
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    inline_differs: int = 0
    untranslated: int = 0  # pairs the human left in the source language, not judged

    @property
    def label(self) -> str:
        return f"{self.corpus} {self.source}→{self.target}"

    def to_json(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs,
            "lowest_length_ratio": round(self.low_ratio, 3),
            "floor": self.floor,
            "left_untranslated_by_the_human": self.untranslated,
            "rejected": dict(self.rejected),
            "examples": self.examples[:5],
            "inline_markup_differs": self.inline_differs,
        }


def flores_pairs(lang: str, *, paragraphs: bool) -> Iterator[tuple[str, str]]:
    english = (FLORES / "eng_Latn.devtest").read_text(encoding="utf-8").splitlines()
    other = (FLORES / f"{FLORES_CODES[lang]}.devtest").read_text(encoding="utf-8").splitlines()
    if not paragraphs:
        yield from zip(english, other, strict=True)
        return
    glue = "" if lang in _CJK else " "
    for i in range(0, len(english), PER_PARAGRAPH):
        yield " ".join(english[i : i + PER_PARAGRAPH]), glue.join(other[i : i + PER_PARAGRAPH])


def tidb_pairs() -> Iterator[tuple[str, str, str]]:
    """(English, Chinese, block) for each prose segment of the pages whose prose
    segments line up kind by kind."""
    for en in pages(TIDB_EN):
        zh = TIDB_ZH / en.relative_to(TIDB_EN)
        if not zh.is_file():
            continue
        sides = []
        for path in (en, zh):
            doc = documents.decode(path.read_bytes(), name=path.name, markdown=True)
            sides.append([s for s in segments.split(doc.text, markdown=True) if s.kind == "prose"])
        if [s.block for s in sides[0]] != [s.block for s in sides[1]]:
            continue
        for a, b in zip(*sides, strict=True):
            yield a.content, b.content, a.block


def _judge(row: Row, source: str, translation: str, block: str = "paragraph") -> None:
    src = protect.protect(source).text
    dst = protect.protect(translation).text
    script = languages.script_pattern(row.target)
    if script is not None and not script.search(validate._plain(dst)):
        # The human left it in the source language (names, option lists): a
        # rejected answer would be kept as it is, the same text.
        row.untranslated += 1
        return
    row.pairs += 1
    plain_src, plain_dst = validate._plain(src), validate._plain(dst)
    if len(plain_src) >= validate._MIN_CHARS_FOR_SHORT:
        row.low_ratio = min(row.low_ratio, len(plain_dst) / len(plain_src))
    problems = validate.content_problems(src, dst, row.source, row.target)
    for problem in problems:
        row.rejected[validate.check_of(problem)] += 1
        row.examples.append(f"{problem}: {source[:60]!r} -> {translation[:40]!r}")
    # Markers are numbered on each side alone here, so targets are not compared.
    inline = [
        p
        for p in validate._inline_problems(src, dst, row.target)
        if p not in ("link targets changed", "links in another order")
    ]
    if block != "text" and inline:
        row.inline_differs += 1


def measure() -> list[Row]:
    rows = []
    for lang in FLORES_CODES:
        for paragraphs in (False, True):
            corpus = "FLORES paragraphs" if paragraphs else "FLORES sentences"
            size = 1000 if paragraphs else 0
            forward = Row(corpus, "en", lang, floor=validate._low("en", lang, size))
            backward = Row(corpus, lang, "en", floor=validate._low(lang, "en", size))
            for en, other in flores_pairs(lang, paragraphs=paragraphs):
                _judge(forward, en, other, "text")
                _judge(backward, other, en, "text")
            rows += [forward, backward]
    forward = Row("TiDB pages", "en", "zh", floor=validate._low("en", "zh", 0))
    backward = Row("TiDB pages", "zh", "en", floor=validate._low("zh", "en", 0))
    for en, zh, block in tidb_pairs():
        _judge(forward, en, zh, block)
        _judge(backward, zh, en, block)
    return [*rows, forward, backward]


def table(rows: list[Row]) -> str:
    lines = [
        "| pairs | n | lowest length ratio | floor | rejected | inline markup differs "
        "| left in the source by the human |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rejected = ", ".join(f"{k} {v}" for k, v in r.rejected.items()) or "0"
        lines.append(
            f"| {r.label} | {r.pairs} | {r.low_ratio:.2f} | {r.floor:.2f} | {rejected} "
            f"| {r.inline_differs} | {r.untranslated} |"
        )
    return "\n".join(lines)


def run(ctx: Context) -> Figure:
    fig = Figure(NAME, TITLE)
    rows = measure()
    for r in rows:
        total = sum(r.rejected.values())
        fig.add(f"{r.label}: human pairs rejected (of {r.pairs})", total, target="0", ok=total == 0)
        fig.data[r.label] = r.to_json()
    fig.notes.append(
        "lowest length ratio: the shortest human translation relative to its source "
        "(20+ characters); the floor is what validate accepts at the least."
    )
    return fig


if __name__ == "__main__":
    print(table(measure()))
