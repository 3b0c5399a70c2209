"""Front matter: found at the top of a file, parsed, and edited in place.

YAML between ``---`` lines or TOML between ``+++`` lines, at the very start of a
Markdown file, is kept as its exact source text plus its parsed data
(``FrontMatter``). It is never re-serialised: ``replace_fields`` edits the
source text of only the values being translated, writes each new value as a
double-quoted YAML scalar or a TOML basic string, and re-parses the result to
prove that nothing else changed. Keys, order, quoting, comments and dates stay
exactly as written.

This module is the only user of python-frontmatter (its boundary patterns and
its YAML handler). python-frontmatter's TOML handler needs the third-party
``toml`` package; the standard library's ``tomllib`` parses TOML here instead.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

import yaml
from frontmatter.default_handlers import YAMLHandler

from pipeline.errors import DocumentError, ValidationFailed

__all__ = [
    "Field",
    "FrontMatter",
    "FrontMatterFormat",
    "replace_fields",
    "split_front_matter",
    "translatable_fields",
]

FrontMatterFormat = Literal["yaml", "toml"]

# python-frontmatter's boundary patterns. They are applied to one line at a time:
# with re.MULTILINE their ``\s*`` could otherwise run across several lines.
_BOUNDARY: dict[FrontMatterFormat, re.Pattern[str]] = {
    "yaml": YAMLHandler.FM_BOUNDARY,
    "toml": re.compile(r"^\+{3,}\s*$", re.MULTILINE),
}
_DELIMITER = {"yaml": "---", "toml": "+++"}

# A line that reads like the first entry of front matter. Used only to decide
# whether an opening delimiter without a closing one is broken front matter
# (an error) or a Markdown horizontal rule at the top of the body.
_LOOKS_LIKE_ENTRY: dict[FrontMatterFormat, re.Pattern[str]] = {
    "yaml": re.compile(r"""^["']?[\w.-]+["']?[ \t]*:(\s|$)"""),
    "toml": re.compile(r"""^\s*(\[|["']?[\w.-]+["']?\s*=)"""),
}


@dataclass(frozen=True)
class FrontMatter:
    """Front matter as written, plus its parsed data."""

    # The exact text, both delimiter lines and the newline after the closing one included.
    raw: str
    format: FrontMatterFormat
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Field:
    """One translatable string value of the front matter."""

    key: str
    # List position for list values, else None.
    index: int | None
    # The current (source) value.
    value: str


# --------------------------------------------------------------------------- split and parse


def _lines(text: str) -> Iterator[str]:
    """Lines with their endings. Only ``\\n`` ends a line (str.splitlines also
    splits at form feeds and U+2028, which would shift every offset)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _is_boundary(line: str, fmt: FrontMatterFormat) -> bool:
    return _BOUNDARY[fmt].fullmatch(line.rstrip("\n")) is not None


def split_front_matter(text: str, name: str) -> FrontMatter | None:
    """The front matter at the start of ``text``, or None; ``DocumentError`` when broken.

    Only the very first line can open it. An opening ``---`` with no closing
    line is an error when the next line reads like a ``key: value`` entry;
    otherwise it is a horizontal rule and belongs to the body. ``+++`` works
    the same way for TOML.
    """
    lines = _lines(text)
    first = next(lines, "")
    fmt: FrontMatterFormat
    for fmt in ("yaml", "toml"):
        if _is_boundary(first, fmt):
            break
    else:
        return None
    consumed = len(first)
    second: str | None = None
    for line in lines:
        if second is None:
            second = line
        consumed += len(line)
        if _is_boundary(line, fmt):
            raw = text[:consumed]
            inner = raw[len(first) : len(raw) - len(line)]
            return FrontMatter(raw=raw, format=fmt, data=_parse(inner, fmt, name))
    if second is not None and _LOOKS_LIKE_ENTRY[fmt].match(second):
        delimiter = _DELIMITER[fmt]
        raise DocumentError(
            f"the front matter opened by '{delimiter}' on line 1 is never closed; "
            f"add a '{delimiter}' line after its last entry (or, if line 1 is meant "
            "as a horizontal rule, put a blank line before it)",
            path=name,
        )
    return None


def _parse(inner: str, fmt: FrontMatterFormat, name: str) -> Mapping[str, Any]:
    """Parse the text between the delimiters. Line numbers in errors count from
    the top of the file (the opening delimiter is line 1)."""
    data: Any
    if fmt == "yaml":
        try:
            data = YAMLHandler().load(inner)
        except yaml.YAMLError as exc:
            raise DocumentError(
                f"the YAML front matter is invalid ({_yaml_problem(exc, inner)}); "
                "fix it, quoting values that contain ': ' or start with a special character",
                path=name,
            ) from None
        except ValueError as exc:
            # The YAML constructors raise ValueError for impossible dates.
            raise DocumentError(
                f"the YAML front matter has a value that cannot be read ({exc}); "
                "fix the value or quote it to keep it as text",
                path=name,
            ) from None
    else:
        try:
            data = tomllib.loads(inner)
        except tomllib.TOMLDecodeError as exc:
            where = re.sub(r"at line (\d+)", lambda m: f"at line {int(m.group(1)) + 1}", str(exc))
            raise DocumentError(
                f"the TOML front matter is invalid ({where}); fix it",
                path=name,
            ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        delimiter = _DELIMITER[fmt]
        raise DocumentError(
            f"the front matter is not a set of key/value entries; "
            f"write 'key: value' lines between the '{delimiter}' lines (or, if line 1 "
            "is meant as a horizontal rule, put a blank line before it)",
            path=name,
        )
    return MappingProxyType(data)


def _yaml_problem(exc: yaml.YAMLError, inner: str) -> str:
    """The parser's own words and the file line, without the quoted source that
    ``str(exc)`` would include."""
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        return f"line {mark.line + 2}: {problem}" if mark else problem
    if isinstance(exc, yaml.reader.ReaderError):
        line = inner.count("\n", 0, max(exc.position, 0)) + 2
        return f"line {line}: a control character is not allowed"
    return type(exc).__name__


# --------------------------------------------------------------------------- fields


def translatable_fields(fm: FrontMatter, keys: Sequence[str]) -> list[Field]:
    """The non-blank string values of the listed top-level keys, in ``keys`` order.

    A list value yields one ``Field`` per non-blank string item. Missing keys,
    non-string values and nested keys are skipped.
    """
    fields: list[Field] = []
    for key in dict.fromkeys(keys):
        value = fm.data.get(key)
        if isinstance(value, str):
            if value.strip():
                fields.append(Field(key, None, value))
        elif isinstance(value, list):
            fields.extend(
                Field(key, index, item)
                for index, item in enumerate(value)
                if isinstance(item, str) and item.strip()
            )
    return fields


def replace_fields(fm: FrontMatter, translations: Mapping[tuple[str, int | None], str]) -> str:
    """New front-matter text in which only the given values changed.

    Keys are ``(key, index)`` as in ``Field``. Every other byte is kept. The result
    is re-parsed and must equal the original data with exactly these values
    replaced; otherwise ``ValidationFailed`` is raised and the caller keeps the
    source values.
    """
    if not translations:
        return fm.raw
    for target, value in translations.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate cannot be written to any file; neither format escapes it.
            problem = f"front matter: the value for {_describe(target)} is not valid Unicode text"
            raise ValidationFailed([problem]) from None
    expected = _expected_data(fm, translations)
    lines = list(_lines(fm.raw))
    opening, closing = lines[0], lines[-1]
    inner = fm.raw[len(opening) : len(fm.raw) - len(closing)]
    try:
        if fm.format == "yaml":
            spans = _yaml_spans(inner, translations)
        else:
            spans = _toml_spans(inner, translations)
    except (yaml.YAMLError, _ScanError) as exc:
        problem = f"front matter: cannot locate the values to replace ({exc})"
        raise ValidationFailed([problem]) from None
    missing = sorted(set(translations) - {target for target, _, _ in spans}, key=str)
    if missing:
        where = ", ".join(_describe(target) for target in missing)
        raise ValidationFailed([f"front matter: no value written in place for {where}"])
    new_inner = inner
    for target, start, end in sorted(spans, key=lambda span: span[1], reverse=True):
        if fm.format == "yaml":
            replacement = _yaml_replacement(new_inner[start:end], translations[target])
        else:
            replacement = _toml_basic_string(translations[target])
        new_inner = new_inner[:start] + replacement + new_inner[end:]
    new_raw = opening + new_inner + closing
    try:
        reparsed = _parse(new_inner, fm.format, "front matter")
    except DocumentError:
        raise ValidationFailed(["front matter: the edited front matter does not parse"]) from None
    if not _same(dict(reparsed), expected):
        raise ValidationFailed(["front matter: the edited front matter changed other values"])
    return new_raw


def _describe(target: tuple[str, int | None]) -> str:
    key, index = target
    return key if index is None else f"{key}[{index}]"


def _expected_data(
    fm: FrontMatter, translations: Mapping[tuple[str, int | None], str]
) -> dict[str, Any]:
    # deepcopy keeps YAML aliases shared, as the re-parsed data will have them.
    expected = copy.deepcopy(dict(fm.data))
    for (key, index), value in translations.items():
        current = expected.get(key)
        if index is None and isinstance(current, str):
            expected[key] = value
        elif (
            index is not None
            and isinstance(current, list)
            and 0 <= index < len(current)
            and isinstance(current[index], str)
        ):
            current[index] = value
        else:
            problem = f"front matter: {_describe((key, index))} is not a string value"
            raise ValidationFailed([problem])
    return expected


def _same(a: Any, b: Any) -> bool:
    """Equality that tells 1, 1.0 and True apart and holds for NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _ScanError(Exception):
    """The value locator met something it does not follow (the edit is refused)."""


# A span to overwrite in the inner front-matter text: (field, start, end).
_Span = tuple[tuple[str, int | None], int, int]


# --------------------------------------------------------------------------- YAML


def _yaml_spans(inner: str, translations: Mapping[tuple[str, int | None], str]) -> list[_Span]:
    """Where the wanted values are written, from the parser's event marks.

    Only top-level keys are followed. A scalar's event starts at its anchor or
    tag, so the scanner's token marks give where the scalar itself starts; an
    alias (``*name``) is replaced by the new scalar, leaving the anchor alone.
    """
    scalar_start = {
        _mark_index(token.end_mark): _mark_index(token.start_mark)
        for token in yaml.scan(inner, Loader=yaml.SafeLoader)
        if isinstance(token, yaml.ScalarToken)
    }

    def span(event: yaml.Event) -> tuple[int, int]:
        start, end = _mark_index(event.start_mark), _mark_index(event.end_mark)
        if not isinstance(event, yaml.ScalarEvent):
            return start, end
        start = scalar_start.get(end, start)
        if event.style in ("|", ">"):
            # A block scalar's mark runs past its line break and trailing blank
            # lines; those stay, so the next key keeps its own line. U+0085,
            # U+2028 and U+2029 are line breaks to YAML too.
            end = start + len(inner[start:end].rstrip(" \t\r\n\x85\u2028\u2029"))
        return start, end

    events = yaml.parse(inner, Loader=yaml.SafeLoader)
    spans: list[_Span] = []
    for event in events:
        if isinstance(event, yaml.MappingStartEvent):
            break
        if isinstance(event, yaml.SequenceStartEvent | yaml.ScalarEvent):
            return spans
    else:
        return spans
    while True:
        key_event = next(events)
        if isinstance(key_event, yaml.MappingEndEvent):
            return spans
        key = key_event.value if isinstance(key_event, yaml.ScalarEvent) else None
        _skip_collection(key_event, events)
        value = next(events)
        if isinstance(value, yaml.ScalarEvent | yaml.AliasEvent):
            if key is not None and (key, None) in translations:
                spans.append(((key, None), *span(value)))
        elif isinstance(value, yaml.SequenceStartEvent) and key is not None:
            for index, item in enumerate(events):
                if isinstance(item, yaml.SequenceEndEvent):
                    break
                if (
                    isinstance(item, yaml.ScalarEvent | yaml.AliasEvent)
                    and (key, index) in translations
                ):
                    spans.append(((key, index), *span(item)))
                _skip_collection(item, events)
        else:
            _skip_collection(value, events)


def _mark_index(mark: Any) -> int:
    if mark is None:
        raise _ScanError("the YAML parser gave no position")
    index: int = mark.index
    return index


def _skip_collection(event: yaml.Event, events: Iterator[yaml.Event]) -> None:
    """Consume the rest of a collection whose start event was just read."""
    if not isinstance(event, yaml.CollectionStartEvent):
        return
    depth = 1
    for inner_event in events:
        if isinstance(inner_event, yaml.CollectionStartEvent):
            depth += 1
        elif isinstance(inner_event, yaml.CollectionEndEvent):
            depth -= 1
            if depth == 0:
                return


_BLOCK_HEADER = re.compile(r"[|>][-+0-9]*(?P<comment>[ \t]+#[^\n]*?)?\r?$")


def _yaml_replacement(old: str, value: str) -> str:
    """A double-quoted scalar for ``value``; a block scalar keeps its header comment."""
    quoted = _yaml_double_quoted(value)
    if old[:1] in "|>":
        header = _BLOCK_HEADER.match(old.split("\n", 1)[0])
        if header and header.group("comment"):
            return quoted + header.group("comment")
    return quoted


_YAML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\x00": "\\0",
    "\x08": "\\b",
    "\x0c": "\\f",
}


def _yaml_plain_char(ch: str) -> bool:
    """Characters YAML readers take as they are inside a double-quoted scalar:
    printable, not a line break (U+0085, U+2028, U+2029 fold like newlines), not a BOM."""
    return (
        " " <= ch <= "~"
        or ("\xa0" <= ch <= "\ud7ff" and ch not in "\u2028\u2029")
        or ("\ue000" <= ch <= "\ufffd" and ch != "\ufeff")
        or ch >= "\U00010000"
    )


def _yaml_double_quoted(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in _YAML_ESCAPES:
            out.append(_YAML_ESCAPES[ch])
        elif _yaml_plain_char(ch):
            out.append(ch)
        elif ch <= "\xff":
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    out.append('"')
    return "".join(out)


# --------------------------------------------------------------------------- TOML


_TOML_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\x08": "\\b",
    "\x0c": "\\f",
}


def _toml_basic_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[ch])
        elif ch < " " or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


_STRING_KINDS = frozenset({"basic", "literal", "ml_basic", "ml_literal"})
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_DATE_TIME_SPACE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:")


@dataclass
class _TomlValue:
    kind: str
    start: int
    end: int
    items: list[_TomlValue]


class _TomlScanner:
    """Finds where the top-level values of a (valid) TOML text are written.

    tomllib has no source positions, so this walks the text just far enough to
    know the extent of every value: strings of all four kinds, arrays, inline
    tables and bare scalars. It stops at the first table header.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def fail(self, what: str) -> _ScanError:
        line = self.text.count("\n", 0, self.pos) + 2
        return _ScanError(f"{what} at line {line}")

    def skip_space(self, newlines: bool) -> None:
        blank = " \t\r\n" if newlines else " \t"
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch in blank:
                self.pos += 1
            elif ch == "#" and newlines:
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def top_level(self) -> Iterator[tuple[str | None, _TomlValue]]:
        """(key, value) for each top-level entry; key None for a dotted key."""
        while True:
            self.skip_space(newlines=True)
            if self.pos >= len(self.text) or self.peek() == "[":
                return
            key = self.key()
            self.skip_space(newlines=False)
            if self.peek() != "=":
                raise self.fail("expected '='")
            self.pos += 1
            self.skip_space(newlines=False)
            yield key, self.value()

    def key(self) -> str | None:
        parts: list[str] = []
        while True:
            self.skip_space(newlines=False)
            start = self.pos
            if self.peek() in ('"', "'"):
                self.single_line_string()
                # A quoted key is decoded by the real parser, escapes and all.
                parts.append(next(iter(tomllib.loads(self.text[start : self.pos] + " = 0"))))
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    raise self.fail("expected a key")
                self.pos = match.end()
                parts.append(match.group())
            self.skip_space(newlines=False)
            if self.peek() != ".":
                return parts[0] if len(parts) == 1 else None
            self.pos += 1

    def single_line_string(self) -> str:
        quote = self.peek()
        self.pos += 1
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and quote == '"':
                self.pos += 2
            elif ch == quote:
                self.pos += 1
                return "basic" if quote == '"' else "literal"
            elif ch == "\n":
                break
            else:
                self.pos += 1
        raise self.fail("unterminated string")

    def multi_line_string(self) -> str:
        quote = self.peek(3)
        self.pos += 3
        while self.pos < len(self.text):
            if self.text[self.pos] == "\\" and quote == '"""':
                self.pos += 2
            elif self.text.startswith(quote, self.pos):
                self.pos += 3
                # Up to two quotes right before the closing delimiter are content.
                for _ in range(2):
                    if self.peek() == quote[0]:
                        self.pos += 1
                return "ml_basic" if quote == '"""' else "ml_literal"
            else:
                self.pos += 1
        raise self.fail("unterminated multi-line string")

    def value(self) -> _TomlValue:
        start = self.pos
        items: list[_TomlValue] = []
        if self.peek(3) in ('"""', "'''"):
            kind = self.multi_line_string()
        elif self.peek() in ('"', "'"):
            kind = self.single_line_string()
        elif self.peek() == "[":
            kind = "array"
            self.pos += 1
            while True:
                self.skip_space(newlines=True)
                if self.peek() == "]":
                    break
                items.append(self.value())
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.fail("expected ',' or ']'")
            self.pos += 1
        elif self.peek() == "{":
            kind = "table"
            self.pos += 1
            while True:
                self.skip_space(newlines=True)
                if self.peek() == "}":
                    break
                self.key()
                self.skip_space(newlines=False)
                if self.peek() != "=":
                    raise self.fail("expected '='")
                self.pos += 1
                self.skip_space(newlines=False)
                self.value()
                self.skip_space(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "}":
                    raise self.fail("expected ',' or '}'")
            self.pos += 1
        else:
            kind = "scalar"
            if _DATE_TIME_SPACE.match(self.text, self.pos):
                self.pos += 11
            while self.pos < len(self.text) and self.text[self.pos] not in " \t\r\n,]}#":
                self.pos += 1
            if self.pos == start:
                raise self.fail("expected a value")
        return _TomlValue(kind, start, self.pos, items)


def _toml_spans(inner: str, translations: Mapping[tuple[str, int | None], str]) -> list[_Span]:
    spans: list[_Span] = []
    for key, value in _TomlScanner(inner).top_level():
        if key is None:
            continue
        if value.kind in _STRING_KINDS and (key, None) in translations:
            spans.append(((key, None), value.start, value.end))
        for index, item in enumerate(value.items if value.kind == "array" else []):
            if item.kind in _STRING_KINDS and (key, index) in translations:
                spans.append(((key, index), item.start, item.end))
    return spans
