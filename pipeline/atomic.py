"""The one atomic writer: every file translate-dir writes (outputs, the manifest)
goes through ``write_atomic``.

Write a temporary file in the same folder, fsync it, rename it over the target,
then fsync the folder. Readers see the old file or the new one, never a part; a
crash or a full disk leaves the old file and no temporary behind. An existing
file keeps its permission bits; a new one gets the usual 0666 less the umask.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from pathlib import Path


def _umask() -> int:
    # Read once at import: os.umask can only be read by setting it.
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = _NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            # mkstemp makes the file private (0600): give it the mode it should have.
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    # The rename is durable only once the folder entry is on disk too. The new
    # file is already in place, and some file systems refuse to fsync a folder,
    # so a failure here must not report the write as failed.
    with suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_or_none(path: Path) -> bytes | None:
    """A file's bytes, or None where there is no such file."""
    try:
        return path.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
