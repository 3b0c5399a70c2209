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
    outs: Sequence[targets.Target],
    *,
    is_document: Callable[[PurePosixPath], bool],
) -> Copied:
    """Copy the files the ``sources`` refer to beside their translations, for
    every target.

    A reference for which ``is_document`` is true (a file type translate-dir
    translates, even when excluded or not part of this run) is a link to a
    document, never copied: the output folder holds translations only. Each
    source is read once, and only when some target puts its translation in
    another folder; each file referred to is copied once per target.
    """
    done = Copied()
    copies = [_Copies(target) for target in outs]
    for src in sources:
        wanted = [(c, d) for c in copies if (d := c.folder_of(src)) is not None]
        text = _text(src) if wanted else None
        if text is None:
            continue
        root = _input_root(src)
        real_root = root.resolve()
        for ref in references(text):
            rel = _asset_rel(src.rel, ref)
            if rel is None or is_document(rel):
                continue
            asset = root / Path(*rel.parts)
            if not asset.is_file() or not discover.inside(asset.resolve(), real_root):
                continue
            for each, dest_dir in wanted:
                each.put(asset, dest_dir / Path(*PurePosixPath(ref).parts), done)
    for each in copies:
        each.save()
    return done


class _Copies:
    """One target's copies and their record (``assets-<lang>.json``)."""

    def __init__(self, target: targets.Target) -> None:
        self.target = target
        self.out_root = target.out_root.resolve()
        self.path = target.state_dir / f"assets-{target.lang}.json"
        self.record = _load(self.path)
        self.changed = False
        self.seen: set[str] = set()

    def folder_of(self, src: SourceFile) -> Path | None:
        """Where ``src``'s translation goes, or None when it needs no copies:
        beside its source (suffix layout), or its output path leads outside
        (that file failed already)."""
        try:
            folder = targets.destination(src.rel, self.target).parent
        except UsageError:
            return None
        return None if folder.resolve() == src.src.parent.resolve() else folder

    def put(self, asset: Path, dest: Path, done: Copied) -> None:
        """Copy ``asset`` to ``dest`` unless it is there already or the file
        there is the user's own (it differs from the source and from our copy)."""
        if not discover.inside(dest.resolve(), self.out_root):
            return
        key = targets.output_rel(dest, self.target)
        if key in self.seen:
            return  # another page refers to it too: done already
        self.seen.add(key)
        data = asset.read_bytes()
        present = read_or_none(dest)
        if present == data:
            self.changed |= self.record.get(key) != file_hash(data)
            self.record[key] = file_hash(data)
            return
        if present is not None and self.record.get(key) != file_hash(present):
            done.theirs.append(key)
            return
        write_atomic(dest, data)
        self.record[key] = file_hash(data)
        self.changed = True
        done.copied.append(key)

    def save(self) -> None:
        if self.changed:
            data = json.dumps(self.record, indent=0, sort_keys=True) + "\n"
            write_atomic(self.path, data.encode())


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
