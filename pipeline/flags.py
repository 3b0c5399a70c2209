"""The flags file the review page exports: which pieces to translate again
(``--retranslate FILE``) or to record as reviewed (``--accept FILE``).

```json
{"format": "translate-dir-flags", "version": 1,
 "flags": [{"source": "blog-post.md", "lang": "zh", "key": "<memory key>",
            "text": "<the piece's source text>", "note": "Hugo is a name"}]}
```

A piece is named by its memory key; its source file, language and source text
find it again when the key no longer matches (another model, another prompt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import UsageError

FORMAT = "translate-dir-flags"
VERSION = 1
# A note is guidance for one piece, not a document.
MAX_NOTE = 1000


@dataclass(frozen=True)
class Flag:
    source: str  # source path relative to the input root, posix
    lang: str
    key: str
    text: str = ""
    note: str = ""


def load(path: Path, option: str) -> tuple[Flag, ...]:
    """Read and check a flags file; any problem is one UsageError (exit 2)."""

    def bad(reason: str) -> UsageError:
        return UsageError(
            f"{option} {path}: {reason}; export it again from the review page "
            "(translate-dir review)"
        )

    try:
        data: Any = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{option} {path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise bad(f"not JSON (line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise bad("not a translate-dir flags file")
    if data.get("version") != VERSION:
        raise bad(f"unknown version {data.get('version')!r}")
    items = data.get("flags")
    if not isinstance(items, list):
        raise bad('"flags" is not a list')
    flags = []
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise bad(f"flag {i} is not an object")
        for name in ("source", "lang", "key"):
            if not isinstance(item.get(name), str) or not item[name]:
                raise bad(f'flag {i} has no "{name}"')
        for name in ("text", "note"):
            if not isinstance(item.get(name, ""), str):
                raise bad(f'flag {i}: "{name}" is not text')
        note = " ".join(str(item.get("note", "")).split())
        if len(note) > MAX_NOTE:
            raise bad(f"flag {i}: the note is longer than {MAX_NOTE} characters")
        flags.append(Flag(item["source"], item["lang"], item["key"], item.get("text", ""), note))
    return tuple(flags)


def dumps(flags: list[Flag]) -> str:
    """The file's text, as the page exports it (tests and tools write it too)."""
    return json.dumps(
        {
            "format": FORMAT,
            "version": VERSION,
            "flags": [vars(f) for f in flags],
        },
        ensure_ascii=False,
        indent=1,
    )
