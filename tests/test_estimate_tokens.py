"""estimate_tokens counts code points from U+2E80 up one each, the rest four to a token."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.backends.base import estimate_tokens


def reference(text: str) -> int:
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + (len(text) - cjk + 3) // 4


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_any_text_counts_as_the_character_loop_does(text: str) -> None:
    assert estimate_tokens(text) == reference(text)


def test_edges_of_the_range() -> None:
    for text in ("", "abcd", "\u2e7f", "\u2e80", "中文⟦1⟧", "\U0010ffff", "😀 emoji", "é" * 9):
        assert estimate_tokens(text) == reference(text)
    assert estimate_tokens("中文") == 2 and estimate_tokens("abcdefgh") == 2
