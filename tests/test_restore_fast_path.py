"""protect.restore's one-pass path gives what the problem-by-problem path gives.

The reference below is restore() as it was before the fast path: every
translation must come back the same, or fail with the same problems.
"""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import protect
from pipeline.errors import ValidationFailed
from pipeline.protect import MARKER_RE, Protected


def reference_restore(translation: str, protected: Protected) -> str:
    if not protected.spans and "⟦" not in translation and "⟧" not in translation:
        return translation
    count = len(protected.spans)
    seen = Counter(MARKER_RE.findall(translation))
    problems = []
    for number in range(1, count + 1):
        times = seen.pop(str(number), 0)
        if times == 0:
            problems.append(f"placeholder ⟦{number}⟧ missing")
        elif times > 1:
            problems.append(f"placeholder ⟦{number}⟧ duplicated")
    problems.extend(f"placeholder ⟦{name}⟧ unknown" for name in seen)
    rest = MARKER_RE.sub("", translation)
    if "⟦" in rest or "⟧" in rest:
        problems.append("a ⟦ or ⟧ outside any placeholder")
    if not problems:
        problems.extend(protect._value_problems(translation, protected.values))
    if problems:
        raise ValidationFailed(problems)
    return MARKER_RE.sub(lambda m: protected.spans[int(m.group(1)) - 1], translation)


def outcome(fn: object, translation: str, protected: Protected) -> tuple[str, object]:
    try:
        return "ok", fn(translation, protected)  # type: ignore[operator]
    except ValidationFailed as exc:
        return "failed", exc.problems


TOKENS = st.sampled_from(
    ["⟦1⟧", "⟦2⟧", "⟦3⟧", "⟦4⟧", "⟦0⟧", "⟦01⟧", "⟦12⟧", "⟦", "⟧", " ", "word", '"', "\n", "⟦x⟧"]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(TOKENS, max_size=12), st.integers(0, 4), st.booleans())
def test_any_translation_restores_or_fails_alike(
    tokens: list[str], count: int, guarded: bool
) -> None:
    spans = tuple(f"<s{n}>" for n in range(1, count + 1))
    values = ((1, 2, '"'),) if guarded and count >= 2 else ()
    protected = Protected("unused", spans, values)
    translation = "".join(tokens)
    assert outcome(protect.restore, translation, protected) == outcome(
        reference_restore, translation, protected
    )


@pytest.mark.parametrize(
    "content",
    [
        "Run `kubectl get pods` and see [the docs](https://example.com/a) or <b>this</b>.",
        'An image ![a cat](cat.png "Title") and `x` then `y` and https://example.com/z.',
        "No markup at all.",
    ],
)
def test_real_protected_texts_in_any_marker_order(content: str) -> None:
    protected = protect.protect(content)
    text = protected.text
    assert protect.restore(text, protected) == content
    markers = MARKER_RE.findall(text)
    reordered = " ".join(f"⟦{n}⟧ mot" for n in reversed(markers))
    assert outcome(protect.restore, reordered, protected) == outcome(
        reference_restore, reordered, protected
    )
