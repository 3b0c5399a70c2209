"""protect's jump to where a text span can start finds what the plain scan finds.

``_TEXT_SPAN_RE`` (bare URLs, ``{#id}`` attribute lists, stray ``⟦``/``⟧``)
opens with a lookbehind, so ``finditer`` tries it at every position;
``_text_span_matches`` tries only where a match can start. Every match, its
span and its group must be the same, in any slice of any text.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import protect

PIECES = st.sampled_from(
    [
        "http://",
        "https://",
        "ftp://",
        "www.",
        "xhttp://",
        "/https://",
        "h",
        "ttp",
        "://",
        "w",
        "f",
        "{",
        "}",
        "{#",
        "{:",
        "{.",
        "⟦",
        "⟧",
        "[",
        "]",
        "<",
        ">",
        "`",
        " ",
        "\n",
        "a.b",
        "é",
        ".",
        ")",
    ]
)


def both(content: str, begin: int, end: int) -> tuple[list[object], list[object]]:
    plain = [(m.span(), m.lastgroup) for m in protect._TEXT_SPAN_RE.finditer(content, begin, end)]
    fast = [(m.span(), m.lastgroup) for m in protect._text_span_matches(content, begin, end)]
    return plain, fast


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=16), st.data())
def test_every_slice_of_any_text_matches_alike(pieces: list[str], data: st.DataObject) -> None:
    content = "".join(pieces)
    begin = data.draw(st.integers(0, len(content)))
    end = data.draw(st.integers(begin, len(content)))
    plain, fast = both(content, begin, end)
    assert fast == plain


def test_real_pages_match_alike() -> None:
    pages = sorted(Path(__file__).parent.glob("data/tidb-operator-docs/en/*.md"))
    assert pages
    found = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        plain, fast = both(text, 0, len(text))
        assert fast == plain, page.name
        found += len(plain)
    assert found > 100  # the pages do hold URLs: the comparison is not of empty lists
