"""The per-answer checks, made faster, give exactly what they gave before.

The functions of ``pipeline.validate`` and ``pipeline.clean`` that were rewritten
for speed are kept here as they were (the reference), and both versions run over
the TiDB pages (English pieces with several kinds of answers, and their human
Chinese translations), the FLORES devtest sentences, and adversarial strings
(loops, repeated phrases, empty, CJK, RTL, emoji, odd whitespace). Problems lists
must be equal string for string, in the same order.
"""

from __future__ import annotations

import difflib
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from bench.calibration import FLORES_CODES, flores_pairs, tidb_pairs
from pipeline import chunks, cjk, clean, documents, languages, protect, segments
from pipeline import validate as v
from pipeline.protect import MARKER_RE, count_simple_links
from pipeline.testing import shout, to_zh
from tests.conftest import data_path

# --- the reference: the functions as they were -------------------------------------

_OLD_WHITESPACE = re.compile(r"\s+")


def old_repeats_a_phrase(line: str, size: int = 21) -> bool:
    seen: set[str] = set()
    for i in range(len(line) - size + 1):
        piece = line[i : i + size]
        if piece in seen:
            return True
        seen.add(piece)
    return False


def old_unit_loops(line: str) -> bool:
    patterns = (
        (clean._UNIT_REPEAT, clean._PHRASE_REPEAT)
        if old_repeats_a_phrase(line)
        else (clean._UNIT_REPEAT,)
    )
    for pattern in patterns:
        for match in pattern.finditer(line):
            unit = match.group(1)
            if "|" in unit or not clean._has_letter(unit):
                continue
            span = len(match.group(0))
            repeats = span // len(unit)
            short_loop = (repeats >= 8 and span >= 16) or (repeats >= 4 and span >= 60)
            if short_loop or len(unit) > 20:
                return True
    return False


def old_is_looping(text: str) -> bool:
    lines = text.split("\n")
    if clean._line_loops(lines) or clean._word_loops(text):
        return True
    if any(old_unit_loops(line) for line in lines):
        return True
    return clean._compresses_like_a_loop(lines)


def old_leak_problems(
    source: str, translation: str, source_lang: str, target_lang: str, prompt: Iterable[str]
) -> list[str]:
    problems = []
    for name in dict.fromkeys((languages.name(source_lang), languages.name(target_lang))):
        label = v._label(name)
        if label.search(translation) and not label.search(source):
            problems.append(f"prompt label '{name}:' in the answer")
    for phrase in prompt:
        if phrase and phrase in translation and phrase not in source:
            problems.append("the prompt's own words in the answer")
            break
    return problems


def old_inline_problems(source: str, translation: str, target_lang: str) -> list[str]:
    if languages.base(target_lang) in v._DENSE and v._CJK_EMPHASIS.search(translation):
        translation = cjk.fix_cjk_emphasis(translation)
    if v._MAYBE_INLINE.search(source) is None and v._MAYBE_INLINE.search(translation) is None:
        return []
    quick = v._quick_inline(source), v._quick_inline(translation)
    if quick[0] is not None and quick[1] is not None:
        want, got = quick[0], quick[1]
    else:
        want, got = v._inline(source), v._inline(translation)
    if want == got:
        return []
    problems = []
    for name, a, b in zip(v._INLINE_KINDS.values(), want.counts, got.counts, strict=True):
        if a != b:
            problems.append(f"{name} count changed ({a} -> {b})")
    if want.counts == got.counts and want.targets != got.targets:
        if sorted(want.targets) == sorted(got.targets):
            problems.append("links in another order")
        else:
            problems.append("link targets changed")
    for delimiter, a, b in zip(v._LITERALS, want.literals, got.literals, strict=True):
        if b > a:
            problems.append(f"literal '{delimiter}' in the answer (markup that does not render)")
    return problems


def old_simple_paragraph_links(text: str) -> int | None:
    if not text.strip() or v._NOT_ONE_PARAGRAPH.search(text) or v._UNSAFE_SCHEME.search(text):
        return None
    return count_simple_links(text)


def old_markdown_problems(source: str, translation: str, block: str) -> list[str]:
    problems = []
    if block == "heading" and translation.strip().count("\n") > source.strip().count("\n"):
        problems.append("heading split over several lines")
    if block == "paragraph" and len(v._BLANK_SPLIT.split(translation.strip())) > len(
        v._BLANK_SPLIT.split(source.strip())
    ):
        problems.append("paragraph split by a blank line")
    if block == "paragraph" and v._plain_paragraph(source) and v._plain_paragraph(translation):
        return problems
    if block == "paragraph":
        want_links = old_simple_paragraph_links(source)
        got_links = None if want_links is None else old_simple_paragraph_links(translation)
        if want_links is not None and got_links is not None:
            if want_links != got_links:
                problems.append(f"link count changed ({want_links} -> {got_links})")
            return problems
    want = v._blocks(source)
    got = v._blocks(translation)
    if [b.kinds for b in want] != [b.kinds for b in got]:
        label = "heading text" if block == "heading" else block
        if len(want) == 1:
            problems.append(f"{label} became {v._describe_blocks(got)}")
        else:
            problems.append(
                f"block structure changed ({v._describe_blocks(want)} -> {v._describe_blocks(got)})"
            )
    else:
        for w, g in zip(want, got, strict=True):
            problems += v._detail_problems(w.sig, g.sig)
    return problems


def old_meaningful_letters(text: str) -> int:
    count = 0
    for word in v._WORD.findall(text):
        if word.islower() or not any(ch.isupper() or ch.islower() for ch in word):
            count += len(word)
    return count


def old_plain(text: str) -> str:
    text = v._LINK_TARGET.sub("]", text)
    text = v._URL.sub("", MARKER_RE.sub("", text))
    return _OLD_WHITESPACE.sub(" ", text).strip()


def old_words_removed(src: str, out: str) -> bool:
    answer = [w.lower() for w in v._WORD.findall(out)]
    if len(answer) < v._MIN_WORDS_FOR_REMOVED:
        return False
    words = Counter(w.lower() for w in v._WORD.findall(src))
    if len(answer) >= sum(words.values()):
        return False
    shared = sum(min(n, words[w]) for w, n in Counter(answer).items())
    return shared >= v._REMOVED_WORDS_SHARE * len(answer)


def old_similar(a: str, b: str) -> bool:
    if a == b:
        return True
    a, b = a[: v._ECHO_SAMPLE], b[: v._ECHO_SAMPLE]
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return (
        matcher.real_quick_ratio() > v._ECHO_RATIO
        and matcher.quick_ratio() > v._ECHO_RATIO
        and matcher.ratio() > v._ECHO_RATIO
    )


def old_language_problems(
    source: str, translation: str, source_lang: str, target_lang: str
) -> list[str]:
    problems = []
    src, out = old_plain(source), old_plain(translation)
    letters = old_meaningful_letters(src)
    script = languages.script_pattern(target_lang)
    script_present = script is None or bool(script.search(out))
    if not script_present and letters >= v._MIN_LETTERS_FOR_SCRIPT:
        problems.append(f"no {languages.name(target_lang)} script in the answer")
    source_script = not script_present or v._shares_script(source_lang, target_lang)
    if source_script and letters > v._MIN_LETTERS_FOR_ECHO and old_similar(src, out):
        problems.append("answer echoes the source")
    elif source_script and letters > v._MIN_LETTERS_FOR_SCRIPT and old_words_removed(src, out):
        problems.append("answer is the source with words removed")
    if len(src) >= v._MIN_CHARS_FOR_SHORT:
        high = v._band(source_lang, target_lang)[1]
        ratio = len(out) / len(src)
        if ratio < v._low(source_lang, target_lang, len(src)):
            problems.append(f"answer too short for its source (length ratio {ratio:.2f})")
        elif ratio > high and len(src) > v._MIN_CHARS_FOR_LENGTH:
            problems.append(f"answer too long for its source (length ratio {ratio:.2f})")
    want = chunks.count_sentences(src) if len(v._ENDERS.findall(src)) >= v._MIN_SENTENCES else 0
    if want >= v._MIN_SENTENCES:
        got = chunks.count_sentences(out)
        if got * 4 < want:
            problems.append(f"sentences missing ({want} -> {got})")
    return problems


def old_check_segment(
    source: str,
    translation: str,
    *,
    block: str,
    source_lang: str,
    target_lang: str,
    keep_lines: bool = False,
    prompt: Iterable[str] = (),
) -> list[str]:
    if block not in v.BLOCKS:
        raise ValueError(f"unknown block kind {block!r}; expected one of {sorted(v.BLOCKS)}")
    if not translation.strip():
        return ["empty answer"]
    problems = v._placeholder_problems(source, translation)
    problems += old_leak_problems(source, translation, source_lang, target_lang, prompt)
    if block == "text":
        problems += v._text_problems(source, translation)
    elif block == "html":
        problems += v._html_problems(source, translation)
    else:
        blocks = old_markdown_problems(source, translation, block)
        problems += blocks or old_inline_problems(source, translation, target_lang)
    if keep_lines and source.strip().count("\n") != translation.strip().count("\n"):
        want, got = source.strip().count("\n") + 1, translation.strip().count("\n") + 1
        problems.append(f"line count changed ({want} -> {got})")
    problems += old_language_problems(source, translation, source_lang, target_lang)
    if old_is_looping(translation) and not old_is_looping(source):
        problems.append("repetition loop")
    return list(dict.fromkeys(problems))


# --- inputs ----------------------------------------------------------------------------

PROMPT = v.prompt_phrases(
    "You are a translator. Translate {target} text.\nReply with the translation only:",
    "English",
    "German",
)

ADVERSARIAL = [
    "",
    " ",
    "\n\n",
    "\t \n",
    "x",
    "挪威" * 40,
    "挪威的森林。" * 4,
    "the " * 20,
    "the the the the the the the the",
    "ab" * 8,
    "ab" * 7 + "a",
    "a" * 16,
    "a" * 15,
    "abc" * 8,
    "abc" * 7,
    "abcdefghijklmn" * 4,
    "abcdefghijklmno" * 4,
    "The cluster is ready. " * 3,
    "The cluster is ready now. " * 3,
    "Deploy TiDB Operator on the cluster, then deploy TiDB Operator again.",
    "| --- | --- | --- | --- |",
    "| a | a | a | a | a | a | a | a |",
    "| Name | Value |\n| --- | --- |\n| a | b |\n| a | b |\n| a | b |",
    "------------------------",
    "..........................................",
    "- item\n- item\n- item\n- item\n- item\n- item",
    "line\nline\nline\nline\nline",
    "مرحبا بالعالم، هذه ترجمة إلى العربية. " * 2,
    "שלום עולם, זהו תרגום לעברית.",
    "\u202eevil\u202c text \u200f\u200e",
    "😀" * 20,
    "😀🙃" * 9,
    "👩‍👩‍👧‍👦 family " * 5,
    "ǅemal ǈubljana ǋ ǲ ᾈᾉ",
    "İstanbul ǅǅǅǅ ß ẞ ﬁ",
    "a\u00a0b\u2028c\x1cd\x85e\u3000f\u200bg\x0bh\x0ci",
    ":⟦1⟧//example.com/path see it",
    "see ]⟦2⟧(x) and [a](b) [c](d ",
    "Read [the docs](⟦1⟧) and ![an image](⟦2⟧) first.",
    "Read [the docs](https://example.com/a) and <https://example.com/b>.",
    "javascript:alert(1) and DATA:x and vbscript: and File:",
    "English: the translation\nGerman: die Übersetzung",
    "You are a translator. Translate this.",
    "**bold** and _em_ and `code` and <b>html</b>\\\nbreak  \nhard",
    "**粗体**文字和*强调*",
    "# Heading\n\nText",
    "Text\n\nMore text\n\nAnd more",
    "⟦1⟧ ⟦2⟧ ⟦3⟧",
    "⟦1⟧⟦1⟧ ⟦4⟧",
    "Ünïcödé wörds ÀÉÎÕÜ çà et là",
    "Прекрасная погода сегодня, не правда ли? Да.",
    "こんにちは世界。これはテストです。",
    "x" * 3000,
    ("Lorem ipsum dolor sit amet. " * 120).strip(),
]


def _tidb_pieces() -> list[tuple[str, str]]:
    """(protected prose piece, block) of every English TiDB page."""
    out = []
    for path in sorted(data_path("tidb-operator-docs", "en").rglob("*.md")):
        doc = documents.decode(path.read_bytes(), name=path.name, markdown=True)
        for s in segments.split(doc.text, markdown=True):
            if s.kind == "prose":
                out.append((protect.protect(s.content).text, s.block))
    return out


def _drop_words(text: str, every: int) -> str:
    words = text.split(" ")
    return " ".join(w for i, w in enumerate(words) if i % every != every - 1)


def _near_echo(text: str, every: int) -> str:
    """``text`` with every ``every``-th letter changed: similar to the source, by
    about 1 - 1/every (the band where only SequenceMatcher.ratio() decides)."""
    chars = list(text)
    letters = [i for i, ch in enumerate(chars) if ch.isalpha()]
    for i in letters[::every]:
        chars[i] = "x" if chars[i] != "x" else "y"
    return "".join(chars)


def _variants(piece: str, rng: random.Random) -> Iterator[tuple[str, str]]:
    """(answer, target language) for an English piece: answers that pass and that
    fail each check."""
    yield piece, "de"
    yield piece.upper(), "fr"
    yield _drop_words(piece, 3), "de"
    yield _drop_words(piece, 8), "de"
    yield _near_echo(piece, rng.choice((4, 8, 12, 20, 40))), "de"
    yield piece[: len(piece) // 3], "de"
    yield piece + " " + piece, "de"
    yield piece + " " + ("loops forever " * 6), "de"
    yield piece + " " + piece[-30:] * 4, "zh"
    yield piece.replace("*", "").replace("](", "] ("), "de"
    yield piece.replace("⟦1⟧", "⟦1⟧ ⟦1⟧").replace("⟦2⟧", ""), "de"
    yield piece.replace(". ", ".\n\n", 1), "de"
    yield "German: " + shout(piece), "de"
    yield shout(piece) + " https://example.com/x ⟦9⟧", "de"
    yield to_zh(piece) + "。" + "挪威" * 12, "zh"
    yield to_zh(piece), "ja"
    yield shout(piece), "ru"


def _assert_same(
    source: str, answer: str, *, block: str, src: str, tgt: str, keep_lines: bool = False
) -> None:
    settings: dict[str, Any] = {
        "block": block,
        "source_lang": src,
        "target_lang": tgt,
        "keep_lines": keep_lines,
        "prompt": PROMPT,
    }
    old = old_check_segment(source, answer, **settings)
    new = v.check_segment(source, answer, **settings)
    assert new == old, (source[:80], answer[:80], block, src, tgt, keep_lines)


# --- the tests ----------------------------------------------------------------------------


def test_tidb_pieces_with_scripted_answers() -> None:
    """Every English piece against its shouted and its to_zh answer (what the
    benchmarks send), every tenth one against each kind of wrong answer."""
    rng = random.Random(7)
    pieces = _tidb_pieces()
    assert len(pieces) > 1000
    for i, (piece, block) in enumerate(pieces):
        keep = i % 3 == 0
        _assert_same(piece, shout(piece), block=block, src="en", tgt="de", keep_lines=keep)
        _assert_same(piece, to_zh(piece), block=block, src="en", tgt="zh", keep_lines=keep)
        if i % 10 == 0:
            for answer, tgt in _variants(piece, rng):
                _assert_same(piece, answer, block=block, src="en", tgt=tgt, keep_lines=keep)


def test_tidb_human_translations_both_ways() -> None:
    pairs = list(tidb_pairs())
    assert len(pairs) > 1000
    for i, (en, zh, block) in enumerate(pairs):
        src, dst = protect.protect(en).text, protect.protect(zh).text
        _assert_same(src, dst, block=block, src="en", tgt="zh", keep_lines=i % 2 == 0)
        _assert_same(dst, src, block=block, src="zh", tgt="en")
        if i % 3 == 0:
            _assert_same(dst, dst, block=block, src="zh", tgt="ja")


@pytest.mark.parametrize("lang", sorted(FLORES_CODES))
def test_flores_sentences_and_paragraphs(lang: str) -> None:
    for paragraphs in (False, True):
        for i, (en, other) in enumerate(flores_pairs(lang, paragraphs=paragraphs)):
            assert v.content_problems(en, other, "en", lang) == old_language_problems(
                en, other, "en", lang
            )
            assert v.content_problems(other, en, lang, "en") == old_language_problems(
                other, en, lang, "en"
            )
            if i % 5 == 0:
                _assert_same(en, other, block="text", src="en", tgt=lang)
                _assert_same(other, _near_echo(other, 15), block="paragraph", src=lang, tgt="en")
                _assert_same(en, _drop_words(en, 4), block="text", src="en", tgt=lang)


def test_adversarial_strings() -> None:
    """Each string against each (and against itself with every block kind), the
    block kind and the language pair taking turns."""
    langs = ("en", "zh", "de", "ar", "he", "ja", "xx-yy", "zh_CN", "EN")
    pairs = [(a, b) for a in langs for b in langs]
    blocks = sorted(v.BLOCKS)
    for i, source in enumerate(ADVERSARIAL):
        for j, answer in enumerate(ADVERSARIAL):
            src, tgt = pairs[(i * 7 + j) % len(pairs)]
            block = blocks[(i + j) % len(blocks)]
            _assert_same(source, answer, block=block, src=src, tgt=tgt, keep_lines=j % 2 == 0)
        for block in blocks:
            for src, tgt in (("en", "de"), ("zh", "en"), ("en", "zh")):
                _assert_same(source, source, block=block, src=src, tgt=tgt)


def _periodic_lines(rng: random.Random, count: int) -> Iterator[str]:
    """Lines built of a unit repeated back to back, with text around it: loops of
    every unit length the patterns look for, near their thresholds."""
    alphabets = ("ab", "ab |", "xyz .", "-|: ", "挪威的森", "aA1 ", "abcdefghij ", "😀🙃 x")
    for _ in range(count):
        alphabet = rng.choice(alphabets)
        unit = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 30)))
        body = unit * rng.randint(1, 12)
        if rng.random() < 0.3:
            body = body[: rng.randint(0, len(body))]
        pre = "".join(rng.choice(alphabet + "Q") for _ in range(rng.randint(0, 25)))
        post = "".join(rng.choice(alphabet + "Z") for _ in range(rng.randint(0, 25)))
        yield pre + body + post


def test_loop_detection_over_generated_lines() -> None:
    rng = random.Random(11)
    lines = [*_periodic_lines(rng, 6000), *ADVERSARIAL]
    looping = 0
    for line in lines:
        for part in line.split("\n"):
            assert clean._unit_loops(part) == old_unit_loops(part), part
        verdict = clean.is_looping(line)
        assert verdict == old_is_looping(line), line
        looping += verdict
    # Both verdicts are well represented.
    assert 500 < looping < len(lines) - 500


def test_loop_detection_over_real_text() -> None:
    texts = [piece for piece, _ in _tidb_pieces()[::2]]
    for lang in ("eng_Latn", "zho_Hans", "jpn_Jpan", "deu_Latn"):
        path = data_path("flores200-devtest", f"{lang}.devtest")
        texts += path.read_text(encoding="utf-8").splitlines()[::3]
    for i, text in enumerate(texts):
        answers = [text, text + " " + text[-25:] * 3]
        if i % 4 == 0:
            answers += [to_zh(text), text[:-1] + text[-9:] * 9]
        for answer in answers:
            assert clean.is_looping(answer) == old_is_looping(answer), answer


def test_plain_over_every_code_point() -> None:
    # The premise of the new _plain: str.split() splits where \s matches.
    every = "".join(map(chr, range(0x110000)))
    assert [c for c in every if c.isspace()] == re.findall(r"\s", every)
    assert v._plain(every) == old_plain(every)
    spaced = "".join(f"{c}a b" for c in every[:0x3100])
    assert v._plain(spaced) == old_plain(spaced)
    for text in ADVERSARIAL:
        assert v._plain(text) == old_plain(text)


def test_language_helpers() -> None:
    rng = random.Random(3)
    texts = [piece for piece, _ in _tidb_pieces()[::3]] + ADVERSARIAL
    for text in texts:
        assert v._meaningful_letters(v._WORD.findall(text)) == old_meaningful_letters(text)
        if len(text) > 2000:
            continue  # (the old _similar takes seconds on long repetitive text)
        for answer in (
            _drop_words(text, rng.randint(2, 9)),
            text,
            text.upper(),
            " ".join(text.split()[::-1]),
        ):
            got = v._words_removed(v._WORD.findall(text), answer)
            assert got == old_words_removed(text, answer)
            assert v._similar(text, answer) == old_similar(text, answer)
            if len(text) < 1000:
                edited = _near_echo(text, rng.randint(3, 40))
                assert v._similar(text, edited) == old_similar(text, edited)


def test_similar_decides_in_the_band() -> None:
    """Pairs whose quick ratios pass and whose full ratio falls either side of the
    threshold: the SequenceMatcher fallback decides them as before."""
    rng = random.Random(5)
    base = "The TiDB cluster restarts each Pod in turn when the configuration changes. " * 4
    verdicts: Counter[bool] = Counter()
    for _ in range(300):
        chars = list(base)
        for _ in range(rng.randint(0, len(chars) // 25)):
            i = rng.randrange(len(chars))
            j = rng.randrange(len(chars))
            chars[i], chars[j] = chars[j], chars[i]
        other = "".join(chars)
        if rng.random() < 0.3:
            other = other[: rng.randint(len(other) * 4 // 5, len(other))]
        verdict = v._similar(base, other)
        assert verdict == old_similar(base, other)
        verdicts[verdict] += 1
    assert verdicts[True] > 20
    assert verdicts[False] > 20
