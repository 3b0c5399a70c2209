"""The manifest: what the tool wrote into one output root, and from what.

It answers, without any model, whether each output is current, missing, stale
(source or settings changed), edited by hand, orphaned (source gone) or
untracked (never written by us). ``--check``, ``--prune`` and the hand-edit
guard are each a loop over ``status()``.

The file is JSON with sorted keys and one output per line, so committing it
gives readable diffs. It is replaced atomically: a crash leaves the old
manifest or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from pipeline.atomic import write_atomic
from pipeline.errors import ConfigError, WriteError

FORMAT_VERSION = 1

Status = Literal["current", "missing", "stale", "edited", "orphan", "untracked"]


def file_hash(data: bytes) -> str:
    """sha256 hex of a file's bytes."""
    return hashlib.sha256(data).hexdigest()


def settings_hash(settings: Mapping[str, object]) -> str:
    """sha256 hex of a canonical JSON of the settings that shape an output.

    Put in what changes the translated file (model, role, target language,
    prompt version, glossary, front-matter keys...); a change marks every
    output written under the old settings stale.
    """
    blob = json.dumps(dict(settings), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Record:
    # Source path relative to the input root, posix separators.
    source: str
    lang: str
    source_hash: str
    output_hash: str
    settings_hash: str
    # Unix time the output was written.
    written: float
    # Pieces of the output left in the source language because every answer
    # failed the checks (omitted from the file when 0).
    kept: int = 0


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (float, int) if f.name == "written" else (int,) if f.name == "kept" else (str,)
    for f in fields(Record)
}
_OPTIONAL = {"kept"}

# The settings hash recorded for an output that holds text kept in the source
# language because the backend failed on it: it never matches, so every later
# run (and --check) sees the output as not finished, and retries only those
# pieces (the rest hit the memory).
INCOMPLETE = "incomplete"

Verdict = Literal[
    "current", "missing", "stale", "incomplete", "edited", "conflict", "orphan", "untracked"
]


class Manifest:
    """The records of one output root. Safe to update from worker threads."""

    def __init__(self, path: Path, records: dict[str, Record] | None = None) -> None:
        self.path = path
        self._records: dict[str, Record] = dict(records or {})
        self._lock = threading.Lock()
        # What is on disk, so an unchanged manifest is not rewritten.
        self._saved: str | None = None

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read ``path``; a missing file is an empty manifest."""
        try:
            text = path.read_text("utf-8")
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise _corrupt(path, str(exc)) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _corrupt(path, f"invalid JSON at line {exc.lineno}") from None
        manifest = cls(path, _parse(path, data))
        manifest._saved = text
        return manifest

    def get(self, output_rel: str) -> Record | None:
        with self._lock:
            return self._records.get(output_rel)

    def set(self, output_rel: str, record: Record) -> None:
        with self._lock:
            self._records[output_rel] = record

    def remove(self, output_rel: str) -> None:
        """Forget one output; unknown names are ignored."""
        with self._lock:
            self._records.pop(output_rel, None)

    def items(self) -> Iterator[tuple[str, Record]]:
        """(output path relative to the output root, record), sorted by path."""
        with self._lock:
            snapshot = sorted(self._records.items())
        return iter(snapshot)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def save(self) -> None:
        """Write atomically (temp file in the same folder, fsync, rename, fsync folder)."""
        with self._lock:
            text = _render(self._records)
            if text == self._saved and self.path.exists():
                return
            try:
                write_atomic(self.path, text.encode("utf-8"))
            except OSError as exc:
                raise WriteError(
                    f"cannot write the manifest {self.path} ({exc.strerror or exc}); "
                    f"check free space and permissions, then run again (the previous "
                    f"manifest is unchanged)"
                ) from None
            self._saved = text


def status(
    record: Record | None,
    *,
    source_bytes: bytes | None,
    output_bytes: bytes | None,
    settings_hash: str,
) -> Status:
    """Where one output stands. ``None`` bytes mean the file does not exist.

    A hand edit wins over staleness: an edited output whose source also changed
    is "edited", so nothing overwrites it without --overwrite-edited. An
    orphan's output may still be edited: check ``wrote(record, output_bytes)``
    before --prune deletes it.
    """
    if record is None:
        return "missing" if output_bytes is None else "untracked"
    if source_bytes is None:
        return "orphan"
    if output_bytes is None:
        return "missing"
    if file_hash(output_bytes) != record.output_hash:
        return "edited"
    if file_hash(source_bytes) != record.source_hash or settings_hash != record.settings_hash:
        return "stale"
    return "current"


def verdict(
    record: Record | None,
    *,
    source_bytes: bytes | None,
    output_bytes: bytes | None,
    settings_hash: str,
) -> Verdict:
    """``status`` with the two rules every caller needs, decided here once:

    - an output edited by hand while its source stayed the same is "edited": up
      to date (a person improved it; CI must not fail forever after that), never
      overwritten without --overwrite-edited;
    - edited by hand *and* its source changed is a "conflict": out of date, and
      still not overwritten;
    - an output the backend failed on is "incomplete" rather than "stale".
    """
    state = status(
        record, source_bytes=source_bytes, output_bytes=output_bytes, settings_hash=settings_hash
    )
    if record is None:
        return state
    if state == "edited":
        same_source = record.source_hash == file_hash(source_bytes or b"")
        return "edited" if same_source else "conflict"
    if state == "stale" and record.settings_hash == INCOMPLETE:
        return "incomplete"
    return state


def wrote(record: Record | None, output_bytes: bytes | None) -> bool:
    """True when the output on disk is exactly what the tool last wrote there."""
    return (
        record is not None
        and output_bytes is not None
        and file_hash(output_bytes) == record.output_hash
    )


def _render(records: Mapping[str, Record]) -> str:
    lines = [f'{{\n  "version": {FORMAT_VERSION},\n  "outputs": {{']
    entries = [
        f"    {_dumps(rel)}: {_dumps(_entry(record))}" for rel, record in sorted(records.items())
    ]
    lines.append(",\n".join(entries))
    lines.append("  }\n}\n")
    return "\n".join(line for line in lines if line)


def _entry(record: Record) -> dict[str, object]:
    entry = asdict(record)
    for name in _OPTIONAL:
        if not entry[name]:
            del entry[name]
    return entry


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _parse(path: Path, data: Any) -> dict[str, Record]:
    if not isinstance(data, dict) or not isinstance(data.get("outputs"), dict):
        raise _corrupt(path, "not a translate-dir manifest")
    version = data.get("version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ConfigError(
                f"{path} was written by a newer translate-dir (manifest version {version}); "
                f"upgrade translate-dir to use this output folder"
            )
        raise _corrupt(path, f"unknown manifest version {version!r}")
    records: dict[str, Record] = {}
    for rel, raw in data["outputs"].items():
        if (
            not isinstance(raw, dict)
            or not set(_FIELD_TYPES) - _OPTIONAL <= set(raw) <= set(_FIELD_TYPES)
            or not all(
                isinstance(raw[name], types) and not isinstance(raw[name], bool)
                for name, types in _FIELD_TYPES.items()
                if name in raw
            )
        ):
            raise _corrupt(path, f"bad entry for {rel!r}")
        records[rel] = Record(**{**raw, "written": float(raw["written"])})
    return records


def _corrupt(path: Path, reason: str) -> ConfigError:
    return ConfigError(
        f"the manifest {path} is unreadable ({reason}); delete it to start over "
        f"(existing outputs then count as hand-edited until a run with --overwrite-edited)"
    )
