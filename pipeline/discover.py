"""Which files are there to translate.

Walks the input folder (or takes a list of files under a root), applies the
include/exclude globs, refuses to follow symlinks out of the input folder unless
asked, and never picks up the output folder's own files. Where each translation
goes is ``targets``' job.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.errors import UsageError

# post.zh.md, notes.pt-br.markdown: a language suffix before the extension.
_LANG_SUFFIX = re.compile(r"\.([a-z]{2,3}(?:[-_][a-zA-Z0-9]{2,8})?)$")
# A mirror run's output folder holds this file (targets.STATE_DIR / its manifest). Such
# a folder is all translations: never a source, whichever languages a later run
# translates into. (Suffix, hugo-dir and docusaurus manifests are named
# manifest-<lang>.json and sit where sources may live too.)
MIRROR_MANIFEST = (".translate-dir", "manifest.json")


@dataclass(frozen=True)
class SourceFile:
    src: Path  # absolute path of the source
    rel: PurePosixPath  # path relative to the input root
    markdown: bool  # False for .txt


def matches(rel: str, patterns: Sequence[str]) -> bool:
    """True when the posix path ``rel`` matches one of the glob ``patterns``
    (``files.include``/``exclude``); "**/*.md" matches "a.md" at the root too,
    as users expect."""
    return any(
        fnmatch.fnmatchcase(rel, p) or (p.startswith("**/") and fnmatch.fnmatchcase(rel, p[3:]))
        for p in patterns
    )


def has_language_suffix(rel: PurePosixPath, known: Iterable[str]) -> bool:
    """True for ``post.zh.md`` when ``zh`` is one of the known language codes."""
    match = _LANG_SUFFIX.search(PurePosixPath(rel.stem).name)
    return match is not None and match.group(1).lower().replace("_", "-") in set(known)


def is_output_folder(folder: Path) -> bool:
    """True for the output folder of a mirror run (it holds that run's manifest)."""
    return folder.joinpath(*MIRROR_MANIFEST).is_file()


@dataclass(frozen=True)
class Found:
    files: list[SourceFile]
    # What was skipped, one line each, for the user.
    warnings: list[str]
    # Files named on the command line that translate-dir cannot translate at all
    # (another file type, not a file): with none left to translate, a usage error.
    refused: int = 0


def discover(
    root: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    follow_symlinks: bool,
    skip_dirs: Sequence[Path] = (),
    files: Sequence[Path] | None = None,
) -> Found:
    """Sources under ``root`` (sorted), and warnings about what was skipped.

    ``files``: translate just these (pre-commit passes the staged files); each must
    lie under ``root``. ``skip_dirs``: output folders inside the input, never read.
    """
    root = root.resolve()
    skip = [d.resolve() for d in skip_dirs]
    warnings: list[str] = []
    found: list[SourceFile] = []
    refused = 0
    if files is not None:
        candidates: Iterator[Path] = (Path(f) for f in files)
    else:
        candidates = _walk(root, follow_symlinks, skip, warnings)
    for path in candidates:
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            resolved = absolute.resolve()
        except (OSError, RuntimeError):
            # a.md -> b.md -> a.md (Python < 3.13 raises RuntimeError, later OSError)
            warnings.append(f"{_shown(path, root)}: skipped, a symlink loop")
            continue
        if not inside(resolved, root):
            if files is not None and not inside(Path(os.path.abspath(absolute)), root):
                raise UsageError(f"{path} is not under the root folder {root}; pass --root")
            if not follow_symlinks:
                warnings.append(
                    f"{_shown(path, root)}: skipped, a symlink that points outside "
                    "the input folder (pass --follow-symlinks to follow it)"
                )
                continue
        if any(inside(resolved, d) for d in skip):
            continue
        try:
            rel = PurePosixPath(Path(os.path.abspath(absolute)).relative_to(root).as_posix())
        except ValueError:
            rel = PurePosixPath(resolved.relative_to(root).as_posix())
        rel_text = rel.as_posix()
        if files is not None and not matches(rel_text, include):
            # Named on the command line: say why it is not translated.
            warnings.append(
                f"{path}: skipped, not a file type translate-dir handles "
                f"(files.include: {', '.join(include)})"
            )
            refused += 1
            continue
        if not matches(rel_text, include) or matches(rel_text, exclude):
            continue
        if files is not None and any(
            is_output_folder(root.joinpath(*rel.parts[:n])) for n in range(1, len(rel.parts))
        ):
            continue
        if not absolute.is_file():
            if files is not None:
                warnings.append(f"{path}: skipped, not a file")
                refused += 1
            continue
        found.append(SourceFile(src=absolute, rel=rel, markdown=rel.suffix.lower() != ".txt"))
    found.sort(key=lambda s: s.rel.as_posix())
    return Found(found, warnings, refused)


def _shown(path: Path, root: Path) -> str:
    """A path as the user should see it: relative to the input folder when under it."""
    try:
        return Path(os.path.abspath(path)).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _walk(root: Path, follow: bool, skip: list[Path], warnings: list[str]) -> Iterator[Path]:
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow):
        here = Path(dirpath)
        try:
            st = here.stat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in seen:
            # A symlink loop (only possible when following links).
            warnings.append(f"{here}: skipped, a symlink loop")
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        kept = []
        for d in sorted(dirnames):
            sub = here / d
            if (
                d.startswith(".")
                or any(inside(sub.resolve(), s) for s in skip)
                or is_output_folder(sub)
            ):
                continue
            if sub.is_symlink() and not follow:
                if not inside(sub.resolve(), root):
                    warnings.append(
                        f"{sub.relative_to(root)}: skipped, a symlink that points outside "
                        "the input folder (pass --follow-symlinks to follow it)"
                    )
                continue
            kept.append(d)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.startswith("."):
                yield here / name
