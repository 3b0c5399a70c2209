"""Check translations against their sources before anything is written.

``check_segment()`` judges one translated segment (placeholders still in) and
returns a list of problems: short English phrases that never quote more than a
few words of the document. ``check_of()`` names the check a problem comes from,
for the per-check counts of rejected answers in the report.

What one segment must keep: its placeholders; its block structure; its inline
structure as markdown-it renders it (emphasis, links and images with their
targets in order, code spans, inline HTML, hard breaks), with no delimiter
that renders literally where the source's did not; its lines where they carry
structure (block quotes, list items, front-matter values); its content (not
far fewer sentences, not shorter than the language pair's band, not the source
with words removed); and none of the prompt's own labels or words.

``structure()`` and ``compare_structure()`` compare a whole output document's
block structure with its source's, the last check before a file is written;
``block_structure()`` reads the source's side off the parse that
``segments.split()`` used, so the source is parsed once.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

from pipeline import chunks, cjk, languages, segments
from pipeline.clean import is_looping
from pipeline.protect import MARKER_RE, count_simple_links, has_letters, without_values
from pipeline.sites import PLAIN, Site

__all__ = [
    "BLOCKS",
    "CHECKS",
    "Structure",
    "block_structure",
    "check_of",
    "check_segment",
    "compare_structure",
    "content_problems",
    "prompt_phrases",
    "structure",
]

BLOCKS = frozenset({"paragraph", "heading", "table", "text", "html"})

_BLANK_SPLIT = re.compile(r"\n[ \t]*\n")
_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
# No "]" in the target: otherwise a long run of "](" is scanned to its end from
# every start (quadratic: minutes on a 100 KB line).
_LINK_TARGET = re.compile(r"\]\([^)\s\]]*(?:\s+\"[^\"]*\")?\)")
# The scheme is bounded (RFC 3986 schemes are short): an unbounded one backtracks
# quadratically over a long run of letters (a 100 KB line took minutes).
_URL = re.compile(r"<?[a-z][a-z0-9+.-]{0,31}://[^\s>)]*>?", re.IGNORECASE)

# Below these sizes (in letters of words that are not names, see
# _meaningful_letters) a segment is mostly names, numbers or placeholders, which
# legitimately stay as they are ("TiDB Operator", "v1.2.0").
_MIN_LETTERS_FOR_SCRIPT = 12
_MIN_LETTERS_FOR_ECHO = 20
_ECHO_RATIO = 0.9
_ECHO_SAMPLE = 2000
_MIN_CHARS_FOR_LENGTH = 40
# Too short is judged from 20 characters on ("The planner supports these plants:"
# answered "计划"); too long only from _MIN_CHARS_FOR_LENGTH (a short title may
# grow: "Two possible reasons:" -> "TiDB Operator 调度 Pod 失败的原因可能有两种情况：").
_MIN_CHARS_FOR_SHORT = 20
# translation chars / source chars. CJK scripts carry two to three times as much
# per character as alphabetic ones. The bands are wide on purpose: they catch
# answers that are clearly not a translation, and let every human FLORES devtest
# pair between en, de, fr, zh and ja pass (ratios seen: en->zh 0.17-1.00, fr->zh
# from 0.14, ja->zh from 0.38, en->de 0.69-1.83).
_DENSE = languages.CJK
_BAND_SAME = (0.4, 3.0)
_BAND_BOTH_DENSE = (0.25, 4.0)
_BAND_TO_DENSE = (0.1, 1.5)
_BAND_FROM_DENSE = (1 / 1.5, 1 / 0.1)
# The lowest length ratio accepted per language pair, for sources of
# _MIN_CHARS_FOR_LENGTH+ characters and (second value) of _LONG_SOURCE+ characters.
# Calibrated on human translations (bench/calibration.py prints the table, and
# tests/test_calibration.py holds every human pair to 0 rejections): each floor
# sits below the lowest ratio a human translation reached, FLORES-200 devtest
# sentences and five-sentence paragraphs, and the TiDB Operator pages en/zh
# paragraph by paragraph (headings and list items of 20+ characters included:
# "Configure monitoring dashboards" -> "监控面板" is 0.13).
_LONG_SOURCE = 200
_PAIR_LOW: dict[tuple[str, str], tuple[float, float]] = {
    ("en", "zh"): (0.1, 0.18),
    ("en", "ja"): (0.2, 0.28),
    ("en", "de"): (0.55, 0.8),
    ("en", "fr"): (0.6, 0.85),
    ("zh", "en"): (0.5, 1.0),
    ("ja", "en"): (0.5, 1.0),
    ("de", "en"): (0.45, 0.5),
    ("fr", "en"): (0.45, 0.5),
}
# An answer in the source's script whose words are (nearly) all the source's,
# fewer of them: the source with words removed. Human en->de/fr translations
# share at most 0.67 of their words with the English (FLORES devtest).
_REMOVED_WORDS_SHARE = 0.9
_MIN_WORDS_FOR_REMOVED = 4
# Far fewer sentences than the source: under a quarter of them. Human translations
# merge sentences, into Chinese most (TiDB en->zh: 4 -> 1; FLORES zh->en, de->en,
# fr->en: 3 -> 1), never more than that.
_MIN_SENTENCES = 5
_ENDERS = re.compile(r"[.!?。！？]")
_MAX_STRUCTURE_PROBLEMS = 6

# The checks, as the report counts the answers each one rejected.
CHECKS = (
    "empty",
    "placeholders",
    "prompt leak",
    "paragraphs",
    "lines",
    "inline markup",
    "block structure",
    "dropped text",
    "language",
    "echo",
    "loop",
    "backend",
)
_CHECK_OF = (
    ("empty", re.compile(r"empty answer")),
    ("placeholders", re.compile(r"placeholder|⟦")),
    ("prompt leak", re.compile(r"prompt")),
    ("paragraphs", re.compile(r"number of paragraphs|paragraph count|split by a blank")),
    ("lines", re.compile(r"line count|hard line break|split over several lines")),
    ("inline markup", re.compile(r"literal|emphasis|link|image|code span|inline HTML")),
    ("dropped text", re.compile(r"too short|sentences|words removed")),
    ("echo", re.compile(r"echoes")),
    ("language", re.compile(r"script in the answer|too long")),
    ("loop", re.compile(r"repetition|did not stop|bound")),
    ("block structure", re.compile(r"became|block structure|table|list|items|spacing|nesting")),
)


@functools.cache
def _inline_parser() -> MarkdownIt:
    """One parser per process (building one costs more than parsing a page). The
    block structure alone comes from ``segments.parse``, several times faster;
    both read tables and nest as deep."""
    return MarkdownIt("commonmark", {"maxNesting": segments.MAX_NESTING}).enable("table")


# --- one segment -------------------------------------------------------------------


def check_segment(
    source: str,
    translation: str,
    *,
    block: str,
    source_lang: str,
    target_lang: str,
    keep_lines: bool = False,
    prompt: Iterable[str] = (),
) -> list[str]:
    """Problems of one translated segment against its source; [] when it is fine.

    ``block`` is what the segment is: "paragraph", "heading" (its text: one line,
    or the lines of a setext heading),
    "table" (a whole GFM table), "text" (a paragraph of a plain-text file) or
    "html" (an HTML block whose only words are attribute values: ``alt="…"``).
    ``keep_lines``: the line count must hold (a paragraph in a block quote or a
    list item, a front-matter value). ``prompt``: phrases of the prompt
    (``prompt_phrases``) that must not turn up in the answer; the prompt's
    language labels ("English:") are always looked for.
    """
    if block not in BLOCKS:
        raise ValueError(f"unknown block kind {block!r}; expected one of {sorted(BLOCKS)}")
    if not translation.strip():
        return ["empty answer"]
    problems = _placeholder_problems(source, translation)
    problems += _leak_problems(source, translation, source_lang, target_lang, prompt)
    if block == "text":
        problems += _text_problems(source, translation)
    elif block == "html":
        problems += _html_problems(source, translation)
    else:
        blocks = _markdown_problems(source, translation, block)
        # Inside a block that changed, inline differences only repeat the news.
        problems += blocks or _inline_problems(source, translation, target_lang)
    if keep_lines and source.strip().count("\n") != translation.strip().count("\n"):
        want, got = source.strip().count("\n") + 1, translation.strip().count("\n") + 1
        problems.append(f"line count changed ({want} -> {got})")
    problems += _language_problems(source, translation, source_lang, target_lang)
    if is_looping(translation) and not is_looping(source):
        problems.append("repetition loop")
    # One fault may show in two checks (a link lost: block and inline counts).
    return list(dict.fromkeys(problems))


def check_of(problem: str) -> str:
    """The check (one of ``CHECKS``) that reported ``problem``."""
    for name, pattern in _CHECK_OF:
        if pattern.search(problem):
            return name
    return "backend"


def prompt_phrases(system: str, source_name: str, target_name: str) -> tuple[str, ...]:
    """What of a prompt may leak into an answer, besides the language labels: the
    first five words of each line of the role's system prompt (``{target}`` filled
    in) and the completion prompt's first line."""
    heads = [" ".join(line.split()[:5]) for line in system.splitlines() if len(line.strip()) >= 20]
    return (*heads, f"Translate {source_name} to {target_name}")


# --- prompt leaks --------------------------------------------------------------------


@functools.cache
def _label(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(name)}\s*[:：]")


def _leak_problems(
    source: str, translation: str, source_lang: str, target_lang: str, prompt: Iterable[str]
) -> list[str]:
    # A base model that runs on past its answer writes the next few-shot label
    # ("Simplified Chinese: ..."); a chat model may echo its instructions.
    problems = []
    for name in _pair(source_lang, target_lang).names:
        label = _label(name)
        # The name itself first: a plain substring search, and rarely there.
        if name in translation and label.search(translation) and not label.search(source):
            problems.append(f"prompt label '{name}:' in the answer")
    for phrase in prompt:
        if phrase and phrase in translation and phrase not in source:
            problems.append("the prompt's own words in the answer")
            break
    return problems


# --- inline structure ----------------------------------------------------------------

# Anything that could be inline markup; text without any of these on both sides
# renders as plain text (the fast path: most answers).
_MAYBE_INLINE = re.compile(r"[*_\[\]`<\\]|  \n")
_CJK_EMPHASIS = re.compile(r"[*_]")
_INLINE_KINDS = {
    "strong_open": "strong emphasis",
    "em_open": "emphasis",
    "link_open": "link",
    "image": "image",
    "code_inline": "code span",
    "html_inline": "inline HTML",
    "hardbreak": "hard line break",
}
# Delimiters that, left in the rendered text, show as literal markup.
_LITERALS = ("**", "__", "](", "[", "]")


@dataclass(frozen=True)
class _Inline:
    counts: tuple[int, ...]  # per _INLINE_KINDS
    targets: tuple[str, ...]  # link and image targets in order
    literals: tuple[int, ...]  # per _LITERALS, in the rendered text


# Text whose only inline markup is links and images to ⟦n⟧ targets (how the
# pipeline sends them) and literal brackets: read without parsing, to the same
# _Inline that markdown-it gives (its link rule takes the innermost bracket pair).
_NOT_QUICK = re.compile(r"[*_`<\\&]|  \n")
_QUICK_LINK = re.compile(r"(!?)\[[^\[\]]*\]\((⟦\d{1,9}⟧)\)")
_LINK_OPEN = tuple(_INLINE_KINDS).index("link_open")
_IMAGE = tuple(_INLINE_KINDS).index("image")


def _quick_inline(text: str) -> _Inline | None:
    if _NOT_QUICK.search(text):
        return None
    targets = []
    rest = []
    last = 0
    for m in _QUICK_LINK.finditer(text):
        targets.append(f"{'i' if m.group(1) else 'l'}:{m.group(2)}")
        rest.append(text[last : m.start()])
        last = m.end()
    rest.append(text[last:])
    plain = "\x00".join(rest)
    if "](" in plain:
        return None  # perhaps a link with a title or another target: parse it
    counts = [0] * len(_INLINE_KINDS)
    counts[_IMAGE] = sum(t[0] == "i" for t in targets)
    counts[_LINK_OPEN] = len(targets) - counts[_IMAGE]
    return _Inline(tuple(counts), tuple(targets), tuple(plain.count(d) for d in _LITERALS))


def _inline(text: str) -> _Inline:
    tokens = _inline_parser().parseInline(text, {})
    counts = dict.fromkeys(_INLINE_KINDS, 0)
    targets = []
    rendered = []
    for child in tokens[0].children or () if tokens else ():
        if child.type in counts:
            counts[child.type] += 1
        if child.type in ("link_open", "image"):
            targets.append(f"{child.type[0]}:{child.attrGet('href') or child.attrGet('src')}")
        elif child.type == "text":
            rendered.append(child.content)
    plain = "\x00".join(rendered)
    return _Inline(tuple(counts.values()), tuple(targets), tuple(plain.count(d) for d in _LITERALS))


def _inline_problems(source: str, translation: str, target_lang: str) -> list[str]:
    if _dense(target_lang) and _CJK_EMPHASIS.search(translation):
        # What will be written: assemble repairs CJK emphasis the same way.
        translation = cjk.fix_cjk_emphasis(translation)
    if _MAYBE_INLINE.search(source) is None and _MAYBE_INLINE.search(translation) is None:
        return []
    quick = _quick_inline(source), _quick_inline(translation)
    if quick[0] is not None and quick[1] is not None:
        want, got = quick[0], quick[1]
    else:
        want, got = _inline(source), _inline(translation)
    if want == got:
        return []
    problems = []
    for name, a, b in zip(_INLINE_KINDS.values(), want.counts, got.counts, strict=True):
        if a != b:
            problems.append(f"{name} count changed ({a} -> {b})")
    if want.counts == got.counts and want.targets != got.targets:
        if sorted(want.targets) == sorted(got.targets):
            problems.append("links in another order")
        else:
            problems.append("link targets changed")
    for delimiter, a, b in zip(_LITERALS, want.literals, got.literals, strict=True):
        if b > a:
            problems.append(f"literal '{delimiter}' in the answer (markup that does not render)")
    return problems


def _placeholder_problems(source: str, translation: str) -> list[str]:
    wanted = Counter(MARKER_RE.findall(source))
    found = Counter(MARKER_RE.findall(translation))
    problems = []
    for key in sorted(wanted, key=int):
        if key not in found:
            problems.append(f"placeholder ⟦{key}⟧ missing")
        elif found[key] != wanted[key]:
            problems.append(
                f"placeholder ⟦{key}⟧ appears {found[key]} times, expected {wanted[key]}"
            )
    problems += [
        f"unknown placeholder ⟦{key}⟧" for key in sorted(found, key=int) if key not in wanted
    ]
    return problems


def _html_problems(source: str, translation: str) -> list[str]:
    # Only the quoted values (the runs with words) may change: the markers stay
    # in order and the text between them without words (blanks) stays as it is.
    # That the values keep their quotes is restore()'s check.
    want = MARKER_RE.split(source)
    got = MARKER_RE.split(translation)
    if want[1::2] != got[1::2]:
        return ["inline HTML moved: the placeholders are in another order"]
    for a, b in zip(want[0::2], got[0::2], strict=True):
        if a != b and not has_letters(a):
            return ["inline HTML changed outside the quoted values"]
    return []


def _text_problems(source: str, translation: str) -> list[str]:
    # Plain text has no Markdown structure, but its paragraphs are spliced back
    # by blank lines, so their number must hold.
    want = len(_BLANK_SPLIT.split(source.strip()))
    got = len(_BLANK_SPLIT.split(translation.strip()))
    if want != got:
        return [f"paragraph count changed ({want} -> {got})"]
    return []


def _markdown_problems(source: str, translation: str, block: str) -> list[str]:
    problems = []
    # A heading is one line (a setext heading may have a few): more lines than
    # the source means the model broke it up.
    if block == "heading" and translation.strip().count("\n") > source.strip().count("\n"):
        problems.append("heading split over several lines")
    if block == "paragraph" and len(_BLANK_SPLIT.split(translation.strip())) > len(
        _BLANK_SPLIT.split(source.strip())
    ):
        problems.append("paragraph split by a blank line")
    if block == "paragraph" and _plain_paragraph(source) and _plain_paragraph(translation):
        # Neither text can open another block or hold a link: one paragraph each,
        # no links, the same structure. Parsing would only confirm it.
        return problems
    if block == "paragraph":
        want_links = _simple_paragraph_links(source)
        got_links = None if want_links is None else _simple_paragraph_links(translation)
        if want_links is not None and got_links is not None:
            # One paragraph each, no images: only the link counts can differ, and
            # they are counted without parsing (most paragraphs with links).
            if want_links != got_links:
                problems.append(f"link count changed ({want_links} -> {got_links})")
            return problems
    want = _blocks(source)
    got = _blocks(translation)
    if [b.kinds for b in want] != [b.kinds for b in got]:
        label = "heading text" if block == "heading" else block
        if len(want) == 1:
            problems.append(f"{label} became {_describe_blocks(got)}")
        else:
            problems.append(
                f"block structure changed ({_describe_blocks(want)} -> {_describe_blocks(got)})"
            )
    else:
        for w, g in zip(want, got, strict=True):
            problems += _detail_problems(w.sig, g.sig)
    return problems


# A line that could start a block other than a paragraph continuation, or any
# character that could make a link, image, table, HTML or a hard-break marker.
_NOT_PLAIN = re.compile(r"(?m)^(?: {0,3}(?:[#>+*=|`~<_-]|\d{1,9}[.)])| {4}|\t)|[\[\]!|\\<]")


# What could make a text more than one paragraph: a block start on any line, a
# table pipe, a reference definition's "]:", a tab, a "\r" (a line end to
# markdown-it) or a blank line. And link targets markdown-it refuses as links.
_NOT_ONE_PARAGRAPH = re.compile(
    r"(?m)^(?: {0,3}(?:[#>+*=|`~<_-]|\d{1,9}[.)])| {4})|[|\t\r]|\]:|\n[ \t]*\n"
)
_UNSAFE_SCHEME = re.compile(r"(?i)(?:vbscript|javascript|file|data):")


def _simple_paragraph_links(text: str) -> int | None:
    """The link count of ``text`` when it is one paragraph of plain text, code spans
    and ``[label](destination)`` links, which is all ``_blocks`` would find in
    it: ``("paragraph", "0", "links=N", "images=0")``. None for anything else."""
    if (
        not text.strip()
        or _NOT_ONE_PARAGRAPH.search(text)
        or (":" in text and _UNSAFE_SCHEME.search(text))
    ):
        return None
    return count_simple_links(text)


def _plain_paragraph(text: str) -> bool:
    stripped = text.strip()
    return (
        bool(stripped)
        and _BLANK_SPLIT.search(stripped) is None
        and _NOT_PLAIN.search(stripped) is None
    )


def _describe_blocks(blocks: Sequence[_Block]) -> str:
    names = [_describe(b.sig) for b in blocks if b.sig[1] == "0"]
    if not names:
        return "nothing"
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    return shown if len(names) == 1 else f"{len(names)} blocks ({shown})"


def _detail_problems(want: tuple[str, ...], got: tuple[str, ...]) -> list[str]:
    problems = []
    kind = want[0]
    wanted, found = _fields(want), _fields(got)
    for name in ("links", "images"):
        if wanted.get(name) != found.get(name):
            problems.append(f"{name[:-1]} count changed ({wanted.get(name)} -> {found.get(name)})")
    if kind == "table":
        if wanted.get("rows") != found.get("rows"):
            problems.append(
                f"table row count changed ({wanted.get('rows')} -> {found.get('rows')})"
            )
        else:
            want_cols = wanted.get("cols", "").split(",")
            got_cols = found.get("cols", "").split(",")
            for row, (a, b) in enumerate(zip(want_cols, got_cols, strict=True)):
                if a != b:
                    # Line of the table, counting the delimiter row under the header.
                    line = row + 1 if row == 0 else row + 2
                    problems.append(f"table line {line} has {b} cells instead of {a}")
    for name in ("items", "start", "tag", "spacing"):
        if wanted.get(name) != found.get(name):
            problems.append(f"{kind} {name} changed ({wanted.get(name)} -> {found.get(name)})")
    return problems


def _fields(sig: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in sig[2:]:
        name, sep, value = item.partition("=")
        if sep:
            out[name] = value
    return out


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def _meaningful_letters(words: Sequence[str]) -> int:
    """Letters that ask to be translated. In scripts with case, only all-lowercase
    words count: capitalised and mixed-case words are mostly names ("AWS Load
    Balancer Controller", "TiDB Operator") that translators keep as they are.
    Caseless scripts (Chinese, Japanese, Arabic, ...) count in full. ``words``:
    the text's ``_WORD`` matches."""
    count = 0
    for word in words:
        if word.islower() or not any(ch.isupper() or ch.islower() for ch in word):
            count += len(word)
    return count


def _plain(text: str) -> str:
    """What the language checks look at: the text without placeholders, link
    targets and URLs (never language), with whitespace runs collapsed."""
    # Each pattern runs only where its fixed part is present (most texts have
    # none), and str.split() splits on exactly the characters \s matches.
    if "](" in text:
        text = _LINK_TARGET.sub("]", text)
    if "⟦" in text:
        text = MARKER_RE.sub("", text)
    if "://" in text:
        text = _URL.sub("", text)
    return " ".join(text.split())


def _shares_script(source_lang: str, target_lang: str) -> bool:
    src, tgt = languages.base(source_lang), languages.base(target_lang)
    src_script, tgt_script = languages.script_pattern(src), languages.script_pattern(tgt)
    if src_script is None or tgt_script is None:
        # Languages without an entry in SCRIPTS are written in Latin script.
        return src_script is None and tgt_script is None
    return src_script.pattern == tgt_script.pattern or {src, tgt} <= {"zh", "ja"}


def _band(source_lang: str, target_lang: str) -> tuple[float, float]:
    src_dense, tgt_dense = _dense(source_lang), _dense(target_lang)
    if tgt_dense and not src_dense:
        return _BAND_TO_DENSE
    if src_dense and not tgt_dense:
        return _BAND_FROM_DENSE
    return _BAND_BOTH_DENSE if src_dense else _BAND_SAME


def _low(source_lang: str, target_lang: str, length: int) -> float:
    pair = _PAIR_LOW.get((languages.base(source_lang), languages.base(target_lang)))
    if pair is None:
        return _band(source_lang, target_lang)[0]
    return pair[1] if length >= _LONG_SOURCE else pair[0]


@functools.cache
def _dense(lang: str) -> bool:
    return languages.base(lang) in _DENSE


@dataclass(frozen=True)
class _Pair:
    """What the checks use of a language pair, worked out once per pair."""

    names: tuple[str, ...]  # the prompt's language labels, each once
    script: re.Pattern[str] | None  # the target's
    shares_script: bool
    high: float  # the highest length ratio
    low: float  # the lowest, for sources under _LONG_SOURCE characters
    low_long: float  # the lowest, for longer sources


@functools.cache
def _pair(source_lang: str, target_lang: str) -> _Pair:
    return _Pair(
        names=tuple(dict.fromkeys((languages.name(source_lang), languages.name(target_lang)))),
        script=languages.script_pattern(target_lang),
        shares_script=_shares_script(source_lang, target_lang),
        high=_band(source_lang, target_lang)[1],
        low=_low(source_lang, target_lang, 0),
        low_long=_low(source_lang, target_lang, _LONG_SOURCE),
    )


def content_problems(
    source: str, translation: str, source_lang: str, target_lang: str
) -> list[str]:
    """The language and content checks alone (wrong script, echo, text dropped):
    what ``bench/calibration.py`` holds to 0 rejections on human translations."""
    return _language_problems(source, translation, source_lang, target_lang)


def _language_problems(
    source: str, translation: str, source_lang: str, target_lang: str
) -> list[str]:
    problems = []
    pair = _pair(source_lang, target_lang)
    src, out = _plain(source), _plain(translation)
    src_words = _WORD.findall(src)
    letters = _meaningful_letters(src_words)
    script = pair.script
    script_present = script is None or bool(script.search(out))
    if not script_present and letters >= _MIN_LETTERS_FOR_SCRIPT:
        problems.append(f"no {languages.name(target_lang)} script in the answer")
    source_script = not script_present or pair.shares_script
    if source_script and letters > _MIN_LETTERS_FOR_ECHO and _similar(src, out):
        problems.append("answer echoes the source")
    elif source_script and letters > _MIN_LETTERS_FOR_SCRIPT and _words_removed(src_words, out):
        problems.append("answer is the source with words removed")
    if len(src) >= _MIN_CHARS_FOR_SHORT:
        ratio = len(out) / len(src)
        if ratio < (pair.low_long if len(src) >= _LONG_SOURCE else pair.low):
            problems.append(f"answer too short for its source (length ratio {ratio:.2f})")
        elif ratio > pair.high and len(src) > _MIN_CHARS_FOR_LENGTH:
            problems.append(f"answer too long for its source (length ratio {ratio:.2f})")
    want = chunks.count_sentences(src) if len(_ENDERS.findall(src)) >= _MIN_SENTENCES else 0
    if want >= _MIN_SENTENCES:
        got = chunks.count_sentences(out)
        if got * 4 < want:
            problems.append(f"sentences missing ({want} -> {got})")
    return problems


def _words_removed(source_words: Sequence[str], out: str) -> bool:
    """``out`` is the source (its ``_WORD`` matches: ``source_words``) with words
    left out: fewer words, nearly all of them the source's."""
    answer = _WORD.findall(out)
    # The counts first: lower-casing keeps them, and most answers stop here.
    if len(answer) < _MIN_WORDS_FOR_REMOVED or len(answer) >= len(source_words):
        return False
    words = Counter(w.lower() for w in source_words)
    shared = sum(min(n, words[w]) for w, n in Counter(w.lower() for w in answer).items())
    return shared >= _REMOVED_WORDS_SHARE * len(answer)


def _ratio(matches: int, length: int) -> float:
    """difflib's ratio of ``matches`` in sequences of ``length`` elements together."""
    return 2.0 * matches / length if length else 1.0


def _similar(a: str, b: str) -> bool:
    if a == b:
        return True
    # SequenceMatcher is quadratic on repetitive text (a 100 KB echo took minutes):
    # compare the first _ECHO_SAMPLE characters, more than one default chunk.
    a, b = a[:_ECHO_SAMPLE], b[:_ECHO_SAMPLE]
    # difflib's real_quick_ratio() and quick_ratio(), the same numbers computed
    # without building a SequenceMatcher: upper bounds of ratio() at which most
    # real translations stop.
    length = len(a) + len(b)
    if _ratio(min(len(a), len(b)), length) <= _ECHO_RATIO:
        return False
    if _ratio((Counter(a) & Counter(b)).total(), length) <= _ECHO_RATIO:
        return False
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() > _ECHO_RATIO


# --- block structure ---------------------------------------------------------------


class _Block(NamedTuple):
    sig: tuple[str, ...]
    line: int  # 1-based line in the parsed text

    @property
    def kinds(self) -> tuple[str, ...]:
        return self.sig[:2]


def structure(markdown: str, *, site: Site = PLAIN) -> list[tuple[str, ...]]:
    """A comparable signature of a document's block structure.

    One tuple per block token: kind and nesting depth first, then ``name=value``
    details: heading tag, list item count, start number and spacing, table rows
    and columns per row (counted from the source lines, as GFM does), link and
    image counts of the block's inline text, and for verbatim blocks (fences,
    indented code, HTML) the fence info and a hash of the content; an HTML
    block's hash leaves out the values of ``site.text_attributes``, which are
    translated (``protect.without_values``). Pass the body without front matter.
    """
    return [b.sig for b in _blocks(markdown, site=site)]


@dataclass(frozen=True)
class Structure:
    """A body's block structure without links: what ``compare_structure`` needs of
    a source, kept from the parse that cut it into segments.

    Two plain tuples rather than one tuple of blocks: an analysis worker sends
    it back pickled, and pickle writes plain tuples in C where a NamedTuple
    costs a Python call each (the 140 TiDB pages: 1.0 ms instead of 6.2)."""

    sigs: tuple[tuple[str, ...], ...]  # each block's signature, in order
    lines: tuple[int, ...]  # each block's 1-based line in the parsed text
    # The site it was read with: its text_attributes are left out of HTML
    # blocks' hashes, in the output's too.
    site: Site = PLAIN

    @property
    def blocks(self) -> list[_Block]:
        return list(map(_Block, self.sigs, self.lines))


def block_structure(parsed: segments.Parsed) -> Structure:
    """The block structure of an already parsed body (``segments.parse``), for
    ``compare_structure(..., links=False)``: the source is not parsed again."""
    sigs: list[tuple[str, ...]] = []
    lines: list[int] = []
    for sig, line in _walk(parsed.tokens, parsed.lines, parsed.site):
        sigs.append(sig)
        lines.append(line)
    return Structure(tuple(sigs), tuple(lines), parsed.site)


def compare_structure(
    source: str | Structure, output: str, *, links: bool = True, site: Site = PLAIN
) -> list[str]:
    """Where ``output``'s block structure differs from ``source``'s; [] when the same.

    ``links=False`` compares blocks only, not the links and images inside them:
    the check of a whole document whose segments were each checked already.
    ``source`` may be the ``block_structure`` of the source's parse, with
    ``links=False`` only (it carries its site). ``site``: the site both texts
    are read as (its translatable attribute values are not structure)."""
    if isinstance(source, Structure):
        if links:
            raise ValueError("a precomputed Structure has no links: pass links=False")
        site = source.site
        got = _blocks(output, inline=False, site=site)
        if list(source.sigs) == [b.sig for b in got]:
            return []
        want = source.blocks
    else:
        want = _blocks(source, inline=links, site=site)
        got = _blocks(output, inline=links, site=site)
        if [b.sig for b in want] == [b.sig for b in got]:
            return []
    problems: list[str] = []
    matcher = difflib.SequenceMatcher(
        None, [b.sig for b in want], [b.sig for b in got], autojunk=False
    )
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        if op == "replace" and i2 - i1 == j2 - j1:
            for w, g in zip(want[i1:i2], got[j1:j2], strict=True):
                problems.append(f"line {w.line}: {_describe_change(w.sig, g.sig)}")
            continue
        for w in want[i1:i2]:
            problems.append(f"line {w.line}: {_describe(w.sig)} missing in the output")
        for g in got[j1:j2]:
            problems.append(f"output line {g.line}: unexpected {_describe(g.sig)}")
    if len(problems) > _MAX_STRUCTURE_PROBLEMS:
        extra = len(problems) - _MAX_STRUCTURE_PROBLEMS
        problems = [*problems[:_MAX_STRUCTURE_PROBLEMS], f"and {extra} more differences"]
    return problems


def _describe(sig: tuple[str, ...]) -> str:
    tag = _fields(sig).get("tag")
    return f"{sig[0]} {tag}" if tag else sig[0]


def _describe_change(want: tuple[str, ...], got: tuple[str, ...]) -> str:
    if want[:2] != got[:2]:
        if want[0] == got[0]:
            return f"{want[0]} nesting changed"
        return f"{_describe(want)} became {_describe(got)}"
    details = _detail_problems(want, got)
    wanted, found = _fields(want), _fields(got)
    if wanted.get("hash") != found.get("hash") or wanted.get("info") != found.get("info"):
        details.append(f"{want[0]} content changed")
    return "; ".join(details) or f"{want[0]} changed"


def _blocks(markdown: str, *, inline: bool = True, site: Site = PLAIN) -> list[_Block]:
    if not inline:
        parsed = segments.parse(markdown)
        return list(map(_Block._make, _walk(parsed.tokens, parsed.lines, site)))
    tokens = _inline_parser().parse(markdown)
    # The lines markdown-it counts in token.map: it takes \r\n and a lone \r
    # (old Mac files) as line ends too.
    lines = re.split(r"\r\n?|\n", markdown)
    return list(map(_Block._make, _walk(tokens, lines, site)))


def _walk(
    tokens: list[Token], lines: list[str], site: Site = PLAIN
) -> Iterator[tuple[tuple[str, ...], int]]:
    """(signature, 1-based line) of each block."""
    # Blocks alike share one signature: analysis workers send the structure
    # back pickled, and pickle writes a shared object once (half the bytes).
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}
    i = 0
    end = len(tokens)
    while i < end:
        tok = tokens[i]
        i += 1
        if tok.nesting < 0:
            continue  # a closing tag: its block was signed at the opening
        kind = tok.type
        sig: tuple[str, ...]
        if kind == "paragraph_open" or kind == "heading_open":
            fields = [f"tag={tok.tag}"] if kind == "heading_open" else []
            sig = (kind[: -len("_open")], _level(tok), *fields, *_link_fields([tokens[i]]))
            i += 2  # its inline token and its closing tag
        elif kind == "list_item_open" or kind == "blockquote_open" or kind == "hr":
            sig = (kind.removesuffix("_open"), _level(tok))
        elif kind == "bullet_list_open" or kind == "ordered_list_open":
            sig = (kind[: -len("_open")], _level(tok), *_list_fields(tokens, i - 1))
        elif kind == "fence" or kind == "code_block" or kind == "html_block":
            fields = [f"info={tok.info.strip()}"] if kind == "fence" else []
            content = tok.content
            if kind == "html_block":
                content = without_values(content, site=site)
            digest = hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()[:12]
            sig = (kind, _level(tok), *fields, f"hash={digest}")
        elif kind == "table_open":
            close = _closing(tokens, i - 1)
            sig = ("table", _level(tok), *_table_fields(tok, tokens[i - 1 : close], lines))
            i = close + 1
        else:
            continue
        yield shared.setdefault(sig, sig), tok.map[0] + 1 if tok.map else 0


_LEVELS = tuple(str(level) for level in range(64))


def _level(token: Token) -> str:
    level = token.level
    return _LEVELS[level] if level < len(_LEVELS) else str(level)


def _closing(tokens: list[Token], start: int) -> int:
    depth = 0
    for j in range(start, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _link_fields(inlines: Sequence[Token]) -> list[str]:
    links = images = 0
    for inline in inlines:
        for child in inline.children or ():
            if child.type == "link_open":
                links += 1
            elif child.type == "image":
                images += 1
    return [f"links={links}", f"images={images}"]


def _list_fields(tokens: list[Token], start: int) -> list[str]:
    opening = tokens[start]
    end = _closing(tokens, start)
    inner = tokens[start + 1 : end]
    items = sum(1 for t in inner if t.type == "list_item_open" and t.level == opening.level + 1)
    # Tight lists hide their paragraphs; a blank line added between items makes
    # the list loose and changes the rendering.
    tight = any(
        t.type == "paragraph_open" and t.hidden and t.level == opening.level + 2 for t in inner
    )
    fields = [f"items={items}"]
    if opening.type == "ordered_list_open":
        fields.append(f"start={opening.attrGet('start') or 1}")
    fields.append(f"spacing={'tight' if tight or items == 0 else 'loose'}")
    return fields


def _table_fields(opening: Token, tokens: Sequence[Token], lines: list[str]) -> list[str]:
    # markdown-it pads and truncates body rows to the header's width, so the
    # columns are counted on the source lines, the way GFM splits them.
    assert opening.map is not None
    first, last = opening.map
    rows = [lines[n] for n in range(first, last) if n != first + 1]
    cols = ",".join(str(_cell_count(row)) for row in rows)
    return [
        f"rows={len(rows)}",
        f"cols={cols}",
        *_link_fields([t for t in tokens if t.type == "inline"]),
    ]


def _cell_count(row: str) -> int:
    text = row.lstrip(" \t>").strip()
    if text.startswith("|"):
        text = text[1:]
    if text.endswith("|") and not text.endswith("\\|"):
        text = text[:-1]
    return len(_UNESCAPED_PIPE.split(text))
