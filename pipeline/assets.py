"""Assets: the local files a document refers to, copied beside its translation.

When the translation lands in another folder (``mirror``, ``hugo-dir``,
``docusaurus``), ``./img/setup.png`` in a page would point at nothing: the
picture stays beside the source. Docusaurus then refuses to build, Hugo page
bundles lose their images, and a README's screenshots go blank. So every
relative reference of a source document (Markdown images and links, link
reference definitions, HTML and shortcode ``src``/``href``, MDX ``import``s of
relative files) that names a file inside the input folder, and is not a
document the run translates, is copied to the same relative place beside the
translation, byte for byte.

What is copied is recorded (``assets-<lang>.json`` in the state folder) by the
hash of the bytes written, so a later run updates a copy whose source changed,
but never replaces a file the user put there themselves (a localized
screenshot): a file that differs from both the source and the recorded copy is
theirs. Nothing is read or written outside the input and output folders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from pipeline import discover, documents, targets
from pipeline.atomic import read_or_none, write_atomic
from pipeline.discover import SourceFile
from pipeline.errors import DocumentError, UsageError
from pipeline.manifest import file_hash

# ](dest "title") and ](<dest with spaces>): inline links and images.
_INLINE_RE = re.compile(r"\]\(\s*(?:<([^<>\n]+)>|([^\s()<>]+))")
# [label]: dest  (a link reference definition, up to three spaces indented).
_DEFINITION_RE = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(?:<([^<>\n]+)>|(\S+))", re.MULTILINE)
# src="…" / href='…' in HTML, JSX and Hugo shortcodes.
_ATTRIBUTE_RE = re.compile(r"""\b(?:src|href)\s*=\s*(?:"([^"\n]+)"|'([^'\n]+)')""")
# MDX: import x from './file.js' / require('./img.png').
_IMPORT_RE = re.compile(r"""(?:\bfrom\s+|\brequire\(\s*)["'](\.{1,2}/[^"'\n]+)["']""")


def references(text: str) -> list[str]:
    """The relative file paths ``text`` refers to, in order, each once.

    URLs with a scheme or host, site-absolute paths (``/img/a.png``, served from
    the site's static folder), bare fragments and queries are left out.
    """
    found: dict[str, None] = {}
    for pattern in (_INLINE_RE, _DEFINITION_RE, _ATTRIBUTE_RE, _IMPORT_RE):
        for match in pattern.finditer(text):
            url = next(g for g in match.groups() if g is not None)
            path = _relative_path(url)
            if path:
                found.setdefault(path, None)
    return list(found)


def _relative_path(url: str) -> str:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return ""
    if parts.scheme or parts.netloc or not parts.path or parts.path.startswith("/"):
        return ""
    return unquote(parts.path)


@dataclass
class Copied:
    """What the asset step did for one target, for the summary."""

    copied: list[str] = field(default_factory=list)
    # Files beside the translation that differ from the source and were not
    # written by us: the user's own, left alone.
    theirs: list[str] = field(default_factory=list)


def copy(
    sources: Sequence[SourceFile],
    target: targets.Target,
    *,
    is_document: Callable[[PurePosixPath], bool],
) -> Copied:
    """Copy the files the ``sources`` refer to beside their translations.

    A reference for which ``is_document`` is true (a file type translate-dir
    translates, even when excluded or not part of this run) is a link to a
    document, never copied: the output folder holds translations only.
    """
    done = Copied()
    record_path = target.state_dir / f"assets-{target.lang}.json"
    record = _load(record_path)
    changed = False
    for src in sources:
        text = _text(src)
        if text is None:
            continue
        root = _input_root(src)
        try:
            dest_dir = targets.destination(src.rel, target).parent
        except UsageError:
            continue  # an output path that leads outside: that file failed already
        if dest_dir.resolve() == src.src.parent.resolve():
            continue  # the translation sits beside its source (suffix layout)
        for ref in references(text):
            rel = _asset_rel(src.rel, ref)
            if rel is None or is_document(rel):
                continue
            asset = root / Path(*rel.parts)
            if not asset.is_file() or not discover.inside(asset.resolve(), root.resolve()):
                continue
            dest = dest_dir / Path(*PurePosixPath(ref).parts)
            if not discover.inside(dest.resolve(), target.out_root.resolve()):
                continue
            key = targets.output_rel(dest, target)
            data = asset.read_bytes()
            present = read_or_none(dest)
            if present == data:
                changed |= record.get(key) != file_hash(data)
                record[key] = file_hash(data)
                continue
            if present is not None and record.get(key) != file_hash(present):
                if key not in done.theirs:
                    done.theirs.append(key)
                continue
            write_atomic(dest, data)
            record[key] = file_hash(data)
            changed = True
            done.copied.append(key)
    if changed:
        write_atomic(record_path, (json.dumps(record, indent=0, sort_keys=True) + "\n").encode())
    return done


def _text(src: SourceFile) -> str | None:
    try:
        raw = src.src.read_bytes()
        return documents.decode(raw, name=src.rel.name, markdown=src.markdown).text
    except (OSError, DocumentError):
        return None  # the translating stages report the file; it has no assets here


def _input_root(src: SourceFile) -> Path:
    root = src.src
    for _ in src.rel.parts:
        root = root.parent
    return root


def _asset_rel(doc: PurePosixPath, ref: str) -> PurePosixPath | None:
    """``ref`` seen from the document ``doc``, relative to the input root, or None
    when it leaves the input folder."""
    parts: list[str] = list(doc.parent.parts)
    for part in PurePosixPath(ref).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts) if parts else None


def _load(path: Path) -> dict[str, str]:
    data = read_or_none(path)
    if data is None:
        return {}
    try:
        loaded = json.loads(data)
    except ValueError:
        return {}  # a damaged record only means copies are treated as the user's
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
