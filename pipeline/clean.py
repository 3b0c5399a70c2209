"""Clean a model's answer down to the translation, and spot degenerate answers.

Models wrap translations in things nobody asked for: a ``<think>`` block, a
"Here is the translation:" line, a ```` ```markdown ```` fence, quotes, or a note at
the end. ``clean()`` removes each of these only when the shape is unmistakable and
the source itself did not have it, so legitimate content is never cut.
``is_looping()`` recognises answers that repeat themselves until the token bound.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

from pipeline.backends.policy import strip_think

__all__ = ["clean", "is_looping"]

# --- preambles ----------------------------------------------------------------

# Words that make a first line *about* the translation rather than part of it.
_TRANSLATION_WORD = (
    r"(?:translat\w*|翻译|翻譯|译文|譯文|翻訳|訳文|번역|"
    r"übersetz\w*|traduc\w*|tradu[zç]\w*|перев\w*|vertaling|översättning|"
    r"oversættelse|oversettelse|käännös|tłumaczeni\w*|překlad|çeviri|terjemahan|"
    r"bản dịch|ترجمة|תרגום|अनुवाद|คำแปล)"
)
# A presentative ("here is", "below is", ...) in the languages models answer in.
_PRESENTATIVE = (
    r"(?:here(?:'s|’s| is| are)|below is|the following is|this is|"
    r"以下[是为為はが]|下面是|这是|這是|これが|다음은|"
    r"hier (?:ist|sind)|voici|voilà|aquí (?:está|tienes|tiene)|ecco|aqui está|"
    r"вот|hier is|här är|tässä|oto)"
)
# An optional acknowledgement in front of the presentative.
_ACK = (
    r"(?:(?:sure|certainly|of course|okay|ok|absolutely|great|alright|yes)"
    r"(?:[,!.]|\s*[-–—])?\s*|"
    r"(?:好的|当然|當然|没问题|沒問題|はい|かしこまりました|네|물론입니다|gerne|bien sûr|"
    r"claro|certo|конечно)[，,！!。.、]?\s*)?"
)
# Labels: "Translation", "Chinese translation", "Translation into German",
# "The translation is", "翻译结果", "Traduction en français", ...
_LABEL_CORE = (
    r"(?:(?:the\s+)?(?:[a-z]+(?:\s+[a-z]+)?\s+)?"
    r"(?:translation|translated\s+text|translated\s+version)"
    r"(?:\s+(?:in|into|to)\s+[a-z]+(?:\s+[a-z]+)?)?(?:\s+is)?|"
    r"(?:中文|英文|日文|日语|日語|韩文|韓文|简体中文|繁体中文|繁體中文)?"
    r"(?:翻译|翻譯|译文|譯文|翻訳|訳文)(?:结果|結果|如下)?|"
    r"번역(?:문|\s*결과)?|"
    r"(?:übersetzung|traduction|traducción|tradução|traduzione|перевод|vertaling)"
    r"(?:\s+\S+){0,3}?)"
)
_BOLD = r"(?:\*\*|__)?"
# A whole first line that introduces the translation and ends with a colon.
_PREAMBLE_COLON = re.compile(
    rf"\A{_BOLD}{_ACK}(?:{_PRESENTATIVE}[^\n]{{0,60}}?{_TRANSLATION_WORD}[^\n]{{0,80}}?|"
    rf"{_LABEL_CORE}){_BOLD}\s*[:：]{_BOLD}[ \t]*\n",
    re.IGNORECASE,
)
# "Here is the translation." as a sentence of its own.
_PREAMBLE_SENTENCE = re.compile(
    rf"\A{_ACK}{_PRESENTATIVE}[^\n]{{0,60}}?{_TRANSLATION_WORD}[^\n]{{0,40}}?[.!。！][ \t]*\n",
    re.IGNORECASE,
)
# The same labels in front of the translation on one line ("Translation: ...").
_LABEL = re.compile(
    rf"\A{_BOLD}{_LABEL_CORE}{_BOLD}\s*[:：]{_BOLD}[ \t]*",
    re.IGNORECASE,
)
_MAX_PREAMBLE_WORDS = 20

# --- fences -------------------------------------------------------------------

_WRAPPING_FENCE = re.compile(
    r"\A(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[A-Za-z-]*)[ \t]*\n(?P<body>.*?)\n?"
    r"(?P=fence)[`~]*[ \t]*\Z",
    re.DOTALL,
)
# Info strings that mean "this is the text itself", not a code sample.
_TEXT_INFOS = frozenset({"", "markdown", "md", "gfm", "text", "txt", "plaintext", "plain"})
_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})", re.MULTILINE)

# --- quotes -------------------------------------------------------------------

_QUOTE_PAIRS = {
    '"': '"',
    "'": "'",
    "“": "”",
    "‘": "’",
    "「": "」",
    "『": "』",
    "«": "»",
    "„": "“",
    "»": "«",
}
_QUOTE_CHARS = frozenset(_QUOTE_PAIRS) | frozenset(_QUOTE_PAIRS.values())
_APOSTROPHES = frozenset("'‘’")

# --- trailing notes -----------------------------------------------------------

_NOTE_START = re.compile(
    r"\A[ \t]*(?:[-*_]{3,}[ \t]*\n[ \t]*)?[(（\[]?(?:\*\*|__|\*|_)?"
    r"(?:notes?|translator'?s? notes?|translation notes?|translated by|translation by|"
    r"note that this translation|this translation|"
    r"注|注意|备注|備註|说明|說明|译注|譯註|译者注|訳注|注記|참고|"
    r"anmerkung|hinweis|remarque|nota|примечание)"
    r"\b",
    re.IGNORECASE,
)
# "Translated by ..." also counts without a colon; other note words need one.
_NOTE_HEAD = re.compile(
    r"\A[ \t]*(?:[-*_]{3,}[ \t]*\n[ \t]*)?[(（\[]?(?:\*\*|__|\*|_)?"
    r"(?:(?:translated|translation) by\b|[^\n:：]{0,30}[:：])",
    re.IGNORECASE,
)
_NOTE_WORD = re.compile(
    r"\bnotes?\b|注|hinweis|anmerkung|remarque|nota\b|примечание|참고", re.IGNORECASE
)
_PAREN_NOTE_LINE = re.compile(
    r"^[ \t]*[(（](?:notes?|translator'?s? notes?|translated by|translation|"
    r"注|译注|譯註|訳注)[^\n]*[)）][ \t]*$",
    re.IGNORECASE,
)
_HR_LINE = re.compile(r"^[ \t]{0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_BLANK_SPLIT = re.compile(r"\n[ \t]*\n")


def clean(answer: str, *, source: str, labels: Sequence[str] = ()) -> str:
    """Strip what models add around a translation.

    Removes a leading ``<think>`` block (an unterminated one leaves nothing), a
    preamble line such as "Here is the translation:" or "以下是翻译：", a fence
    wrapped around the whole answer (when the source was not a fence), quotes
    wrapped around the whole answer (when the source had none), trailing notes,
    outer whitespace, and one of the prompt's language ``labels`` ("Simplified
    Chinese:") in front of the answer. Internal blank lines are kept; a label
    inside the answer stays, for ``validate`` to reject.
    """
    text = _strip_label(answer.replace("\r\n", "\n"), source, labels)
    # Several wrappers can be nested ("Sure! Here's ...:" then a fence); a few
    # passes reach the fixed point without risking an unbounded loop.
    for _ in range(4):
        before = text
        text = strip_think(text, source)
        text = text.strip()
        text = _strip_preamble(text, source)
        text = _strip_fence(text, source)
        text = _strip_trailing_notes(text, source)
        text = _strip_quotes(text, source)
        text = text.strip()
        if text == before:
            break
    return text


def _strip_label(text: str, source: str, labels: Sequence[str]) -> str:
    # A base model that echoes the few-shot layout starts with the target label.
    stripped = text.lstrip()
    for label in labels:
        head = re.match(rf"{re.escape(label)}[ \t]*[:：][ \t]*", stripped)
        if head and not source.lstrip().startswith(label) and stripped[head.end() :].strip():
            return stripped[head.end() :]
    return text


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


def _source_looks_like_preamble(source: str) -> bool:
    first = _first_line(source)
    return bool(re.search(_TRANSLATION_WORD, first, re.IGNORECASE) or _LABEL.match(first.strip()))


def _strip_preamble(text: str, source: str) -> str:
    if _source_looks_like_preamble(source):
        return text
    for pattern in (_PREAMBLE_COLON, _PREAMBLE_SENTENCE):
        match = pattern.match(text)
        if match is None:
            continue
        line = match.group(0)
        rest = text[match.end() :]
        # A long first line is prose that happens to mention translation.
        if len(line.split()) <= _MAX_PREAMBLE_WORDS and rest.strip():
            return rest.lstrip("\n")
    label = _LABEL.match(text)
    if label is not None and text[label.end() :].strip():
        return text[label.end() :].lstrip()
    return text


def _strip_fence(text: str, source: str) -> str:
    if _FENCE_LINE.match(source.strip()):
        return text
    match = _WRAPPING_FENCE.match(text)
    if match is None or match.group("info").lower() not in _TEXT_INFOS:
        return text
    body = match.group("body")
    fence = match.group("fence")
    # A fence line of the same kind inside means the answer is several blocks,
    # not one wrapped translation.
    for inner in _FENCE_LINE.finditer(body):
        if inner.group(1)[0] == fence[0] and len(inner.group(1)) >= len(fence):
            return text
    return body


def _has_quotation(text: str) -> bool:
    for i, ch in enumerate(text):
        if ch not in _QUOTE_CHARS:
            continue
        # An apostrophe between letters ("it's") is not a quotation mark.
        between_letters = 0 < i < len(text) - 1 and text[i - 1].isalpha() and text[i + 1].isalpha()
        if ch not in _APOSTROPHES or not between_letters:
            return True
    return False


def _strip_quotes(text: str, source: str) -> str:
    if len(text) < 2 or text[0] not in _QUOTE_PAIRS:
        return text
    opening, closing = text[0], _QUOTE_PAIRS[text[0]]
    inner = text[1:-1]
    if text[-1] != closing or not inner.strip():
        return text
    # Any quotation in the source, even inside it, may legitimately become quotes
    # around the whole translation.
    if _has_quotation(source):
        return text
    # Inner quotes of the same kind mean the outer ones belong to the content
    # ('"a" and "b"').
    if opening in inner or closing in inner:
        return text
    return inner


def _is_added_note(block: str, source: str) -> bool:
    if not (_NOTE_START.match(block) and _NOTE_HEAD.match(block)):
        return False
    # When the source has notes of its own, a note in the answer may be one of
    # them, moved into a paragraph of its own: drop it only when it talks about
    # the translation.
    return not _NOTE_WORD.search(source) or bool(re.search(_TRANSLATION_WORD, block, re.IGNORECASE))


def _strip_trailing_notes(text: str, source: str) -> str:
    source_blocks = len(_BLANK_SPLIT.split(source.strip()))
    blocks = _BLANK_SPLIT.split(text)
    # Only blocks beyond the source's count can be additions; a translated
    # "Note: ..." paragraph keeps the counts equal and stays.
    while len(blocks) > source_blocks and blocks and _is_added_note(blocks[-1], source):
        blocks.pop()
        while len(blocks) > source_blocks and blocks and _HR_LINE.match(blocks[-1].strip()):
            blocks.pop()
    text = "\n\n".join(blocks)

    source_has_hr = any(_HR_LINE.match(line) for line in source.split("\n"))
    lines = text.split("\n")
    source_lines = len(source.strip().split("\n"))
    # "text\n---\nNote: ..." without a blank line: a rule the source never had,
    # followed only by a note.
    if not source_has_hr:
        for i in range(len(lines) - 1, 0, -1):
            if _HR_LINE.match(lines[i]) and _is_added_note(
                "\n".join(lines[i + 1 :]).strip(), source
            ):
                lines = lines[:i]
                break
    if (
        len(lines) > source_lines
        and _PAREN_NOTE_LINE.match(lines[-1])
        and not _PAREN_NOTE_LINE.match(source.strip().split("\n")[-1])
    ):
        lines = lines[:-1]
    return "\n".join(lines).rstrip()


# --- loops --------------------------------------------------------------------

# One unit (1-20 characters, within a line) repeated back to back.
_UNIT_REPEAT = re.compile(r"([^\n]{1,20}?)\1{3,}")
# A longer unit (a phrase or sentence) three times back to back.
_PHRASE_REPEAT = re.compile(r"([^\n]{21,200}?)\1{2,}")
# The shortest piece that occurs twice in every line either pattern reports (see
# _unit_loops).
_UNIT_LOOP_PIECE = 14
_PHRASE_PIECE = 21
_MIN_LINE_REPEATS = 5
# Whitespace-separated tokens repeated back to back ("the the the ...").
_MIN_WORD_REPEATS = 8
# Measured on the TiDB docs, en and zh (tables and list items left out): zlib
# shrinks real prose of 400+ bytes by at most 2.9x; a model stuck in a loop
# compresses far better.
_ZLIB_MIN_BYTES = 400
_ZLIB_MAX_RATIO = 4.5
_TABLE_OR_ITEM = re.compile(
    r"^[ \t]*(?:\|.*\|[ \t]*|[-*+][ \t].*|\d{1,9}[.)][ \t].*"
    r"|\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)+\|?[ \t]*)$"
)


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _repeats_a_piece(line: str, size: int) -> bool:
    """Whether some ``size``-character piece of ``line`` occurs twice."""
    pieces = len(line) - size + 1
    return pieces > 1 and len({line[i : i + size] for i in range(pieces)}) < pieces


def _unit_loops(line: str) -> bool:
    # Cheap necessary conditions first, so the backtracking patterns run on few
    # lines. A unit loop reported below spans 16+ characters in 8+ repeats or 60+
    # in 4+: its first (span - unit) characters, 14 or more, occur again one unit
    # later. A phrase loop repeats a piece of 21+ characters.
    if not _repeats_a_piece(line, _UNIT_LOOP_PIECE):
        return False
    phrase = _repeats_a_piece(line, _PHRASE_PIECE)
    patterns = (_UNIT_REPEAT, _PHRASE_REPEAT) if phrase else (_UNIT_REPEAT,)
    for pattern in patterns:
        for match in pattern.finditer(line):
            unit = match.group(1)
            # Table pipes, rules and indentation repeat by design; only a
            # repeated piece of language is a loop.
            if "|" in unit or not _has_letter(unit):
                continue
            span = len(match.group(0))
            repeats = span // len(unit)
            short_loop = (repeats >= 8 and span >= 16) or (repeats >= 4 and span >= 60)
            if short_loop or len(unit) > 20:
                return True
    return False


def _line_loops(lines: list[str]) -> bool:
    previous, run = "", 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line == previous:
            run += 1
        else:
            previous, run = line, 1
        if run >= _MIN_LINE_REPEATS and _has_letter(line):
            return True
    return False


def _word_loops(text: str) -> bool:
    previous, run = "", 0
    for word in text.split():
        if word == previous:
            run += 1
        else:
            previous, run = word, 1
        if run >= _MIN_WORD_REPEATS and _has_letter(word):
            return True
    return False


def _compresses_like_a_loop(lines: list[str]) -> bool:
    # Table rows and list items legitimately repeat cells, markers and link
    # shapes, so they are left out of the ratio; the other rules still see them.
    prose = "\n".join(line for line in lines if not _TABLE_OR_ITEM.match(line)).encode()
    if len(prose) < _ZLIB_MIN_BYTES:
        return False
    return len(prose) / len(zlib.compress(prose, 9)) > _ZLIB_MAX_RATIO


def is_looping(text: str) -> bool:
    """True when ``text`` degenerates into repetition: a short unit repeated many
    times ("挪威挪威挪威…", "the the the…"), a phrase three times back to back, one
    line repeated 5+ times, or long text that compresses like a loop. Tables and
    lists with repeated cells pass."""
    lines = text.split("\n")
    if _line_loops(lines) or _word_loops(text):
        return True
    if any(_unit_loops(line) for line in lines):
        return True
    return _compresses_like_a_loop(lines)
