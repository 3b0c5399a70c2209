"""Reading and writing documents losslessly: encodings, byte-order marks, line endings.

``decode`` turns the bytes of one input file into a ``Document``: the body text,
the front matter (found and parsed by ``pipeline.front_matter``), and what is
needed to write the file back byte for byte (BOM, encoding, newline style).
``encode`` is its inverse, so ``encode(d, d.text, d.front_matter.raw)`` returns
the original bytes.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import DocumentError
from pipeline.front_matter import FrontMatter, split_front_matter

__all__ = ["Document", "FrontMatter", "decode", "encode"]


@dataclass(frozen=True)
class Document:
    """One decoded input file and what is needed to write it back unchanged."""

    # The decoded body after the front matter (no BOM), original line endings kept.
    text: str
    front_matter: FrontMatter | None
    # The file started with a byte-order mark (always so for UTF-16); kept on write.
    bom: bool
    encoding: Literal["utf-8", "utf-16"]
    # Dominant line ending of the file, for lines the tool creates.
    newline: Literal["\n", "\r\n"]
    # False for plain text (.txt): no front matter, no Markdown structure.
    markdown: bool
    # Byte order of a UTF-16 file, so it is written back as it came.
    byte_order: Literal["little", "big"] = "little"


# --------------------------------------------------------------------------- decode


def decode(raw: bytes, *, name: str, markdown: bool) -> Document:
    """bytes -> Document, or ``DocumentError`` saying what is wrong and what to do.

    Front matter is recognised only in Markdown documents, only on the very first
    line (after a BOM). An opening ``---`` with no closing line is an error when
    the next line reads like a ``key: value`` entry; otherwise it is a horizontal
    rule and belongs to the body. ``+++`` works the same way for TOML.
    """
    text, bom, encoding, byte_order = _decode_text(raw, name)
    newline = _dominant_newline(text)
    front_matter = split_front_matter(text, name) if markdown else None
    body = text[len(front_matter.raw) :] if front_matter else text
    return Document(
        text=body,
        front_matter=front_matter,
        bom=bom,
        encoding=encoding,
        newline=newline,
        markdown=markdown,
        byte_order=byte_order,
    )


def _decode_text(
    raw: bytes, name: str
) -> tuple[str, bool, Literal["utf-8", "utf-16"], Literal["little", "big"]]:
    for bom_bytes, order in ((codecs.BOM_UTF16_LE, "little"), (codecs.BOM_UTF16_BE, "big")):
        if raw.startswith(bom_bytes):
            codec = "utf-16-le" if order == "little" else "utf-16-be"
            try:
                text = raw[2:].decode(codec)
            except UnicodeDecodeError as exc:
                raise DocumentError(
                    f"not valid UTF-16 (byte {exc.start + 2}); "
                    "re-save the file as UTF-8 or as UTF-16 with a byte-order mark",
                    path=name,
                ) from None
            if "\x00" in text:
                raise DocumentError(
                    "contains NUL characters, so it is not a text document; "
                    "remove it from the input or add it to [files] exclude",
                    path=name,
                )
            return text, True, "utf-16", "little" if order == "little" else "big"
    if b"\x00" in raw:
        raise DocumentError(
            "looks binary (it contains NUL bytes); "
            "remove it from the input or add it to [files] exclude",
            path=name,
        )
    bom = raw.startswith(codecs.BOM_UTF8)
    payload = raw[len(codecs.BOM_UTF8) :] if bom else raw
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(codecs.BOM_UTF8) if bom else 0)
        line = raw.count(b"\n", 0, offset) + 1
        raise DocumentError(
            f"not valid UTF-8 at byte {offset} (line {line}); "
            "re-save the file as UTF-8 (or UTF-16 with a byte-order mark)",
            path=name,
        ) from None
    return text, bom, "utf-8", "little"


def _dominant_newline(text: str) -> Literal["\n", "\r\n"]:
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    return "\r\n" if crlf > lf else "\n"


# --------------------------------------------------------------------------- encode


def encode(doc: Document, body: str, front_matter_raw: str | None) -> bytes:
    """Reassemble BOM + front matter + body in the document's own encoding.

    Line endings inside ``body`` and ``front_matter_raw`` are written as given.
    """
    text = (front_matter_raw or "") + body
    if doc.encoding == "utf-16":
        if doc.byte_order == "big":
            return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
        return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    data = text.encode("utf-8")
    return codecs.BOM_UTF8 + data if doc.bom else data
