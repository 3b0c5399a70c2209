"""The file system on purpose: symlink loops and escapes, an output folder inside
the input, input equal to output, a read-only output folder and a full disk.

Each ends in a clear line and an exit code, never a traceback, and never leaves a
partial or temporary file behind. Where the machine allows it (root with mount),
the read-only folder and the full disk are real tmpfs mounts; otherwise the disk
filling up is simulated by failing the write itself.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from pipeline import atomic, output
from pipeline.plan import FileJob
from pipeline.targets import output_rel
from pipeline.testing import ScriptedBackend
from tests.reliability_support import (
    STATE_DIR,
    assert_good_translated,
    invoke,
    outputs,
    temp_files,
    write_good,
)

# --------------------------------------------------------------------------- symlinks


def test_file_symlink_loop_is_skipped_with_one_line(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "a.md").symlink_to("b.md")
    (src / "b.md").symlink_to("a.md")
    (src / "self.md").symlink_to("self.md")
    out = tmp_path / "out"
    for extra in ([], ["--follow-symlinks"]):
        outcome = invoke(src, "--to", "zh", "--out", out, *extra)
        assert outcome.code == 0, outcome.stderr
        assert_good_translated(out)
        for name in ("a.md", "b.md", "self.md"):
            lines = outcome.lines_about(name)
            assert len(lines) == 1 and "skipped, a symlink loop" in lines[0], outcome.stderr
        assert set(outputs(out)) == {"good.md"}


def test_directory_symlink_loop(scripted: ScriptedBackend, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_good(src / "docs")
    (src / "docs" / "back").symlink_to("..", target_is_directory=True)
    (src / "docs" / "itself").symlink_to(".", target_is_directory=True)
    out = tmp_path / "out"
    plain = invoke(src, "--to", "zh", "--out", out)
    assert plain.code == 0, plain.stderr
    assert set(outputs(out)) == {"docs/good.md"}
    followed = invoke(src, "--to", "zh", "--out", out, "--follow-symlinks")
    assert followed.code == 0, followed.stderr
    # Each real file is translated once; the walk does not go round the loop.
    assert set(outputs(out)) == {"docs/good.md"}
    assert "skipped, a symlink loop" in followed.stderr


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A private folder outside the input, reachable only through symlinks."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "secret.md").write_text("# Secret\n\nPrivate words outside the input.\n")
    return folder


def test_symlink_out_of_the_input_is_not_followed_by_default(
    scripted: ScriptedBackend, tmp_path: Path, outside: Path
) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "linked.md").symlink_to(outside / "secret.md")
    (src / "linked-dir").symlink_to(outside, target_is_directory=True)
    out = tmp_path / "out"
    outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 0, outcome.stderr
    assert set(outputs(out)) == {"good.md"}
    assert all("Private words" not in r.prompt.text for r in scripted.requests)
    assert len(outcome.lines_about("linked.md")) == 1
    assert "points outside the input folder" in outcome.lines_about("linked.md")[0]
    [line] = outcome.lines_about("linked-dir")
    assert "pass --follow-symlinks to follow it" in line


def test_follow_symlinks_translates_what_they_point_to(
    scripted: ScriptedBackend, tmp_path: Path, outside: Path
) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "linked.md").symlink_to(outside / "secret.md")
    (src / "linked-dir").symlink_to(outside, target_is_directory=True)
    out = tmp_path / "out"
    outcome = invoke(src, "--to", "zh", "--out", out, "--follow-symlinks")
    assert outcome.code == 0, outcome.stderr
    written = outputs(out)
    assert set(written) == {"good.md", "linked.md", "linked-dir/secret.md"}
    assert b"Private words" not in written["linked.md"]
    # The source behind the links is untouched.
    assert (outside / "secret.md").read_text().endswith("Private words outside the input.\n")


def test_dangling_symlink_is_ignored(scripted: ScriptedBackend, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "gone.md").symlink_to(tmp_path / "missing.md")
    outcome = invoke(src, "--to", "zh", "--out", tmp_path / "out")
    assert outcome.code == 0, outcome.stderr
    assert set(outputs(tmp_path / "out")) == {"good.md"}


# --------------------------------------------------------------------------- output vs input


def test_output_inside_input_is_never_a_source(scripted: ScriptedBackend, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_good(src)
    write_good(src / "sub", "more.md")
    out = src / "translated"
    for attempt in range(3):
        outcome = invoke(src, "--to", "zh", "--out", out)
        assert outcome.code == 0, outcome.stderr
        assert set(outputs(out)) == {"good.md", "sub/more.md"}, f"run {attempt + 1}"
        assert "translated/" not in outcome.stderr
    assert len(scripted.requests) == 2, "the second and third runs had nothing to do"
    # Nested output folders per language, also inside the input.
    outcome = invoke(src, "--to", "zh,ja", "--out", src / "i18n")
    assert outcome.code == 0, outcome.stderr
    for lang in ("zh", "ja"):
        assert set(outputs(src / "i18n" / lang)) == {"good.md", "sub/more.md"}
    assert not (src / "i18n" / "zh" / "translated").exists()


def test_default_output_inside_input_when_run_from_the_input(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    write_good(src)
    monkeypatch.chdir(src)
    for _ in range(2):
        outcome = invoke(".", "--to", "zh")
        assert outcome.code == 0, outcome.stderr
        assert set(outputs(src / "output" / "zh")) == {"good.md"}
    assert len(scripted.requests) == 1


@pytest.mark.parametrize("how", ["same", "trailing-slash", "dot-dot", "symlink"])
def test_input_equal_to_output_is_a_usage_error(
    scripted: ScriptedBackend, tmp_path: Path, how: str
) -> None:
    src = tmp_path / "in"
    write_good(src)
    before = outputs(src)
    out = {
        "same": str(src),
        "trailing-slash": f"{src}/",
        "dot-dot": str(src / "sub" / ".."),
        "symlink": str(tmp_path / "alias"),
    }[how]
    (src / "sub").mkdir()
    (tmp_path / "alias").symlink_to(src, target_is_directory=True)
    outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 2
    assert "is the input folder; pass --out DIR" in outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) <= 3
    assert outputs(src) == before and not (src / STATE_DIR).exists()
    assert scripted.requests == []


# --------------------------------------------------------------------------- read-only and full


@contextlib.contextmanager
def tmpfs(path: Path, *options: str) -> Iterator[Path]:
    """A small tmpfs at ``path`` (root with mount rights only; else the test skips)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = ",".join(["size=256k", *options])
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def read_only_folder(path: Path) -> contextlib.AbstractContextManager[Path]:
    """A folder nothing can be written into: chmod for a user, a ro mount for root."""
    if os.geteuid() != 0:

        @contextlib.contextmanager
        def chmodded() -> Iterator[Path]:
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o555)
            try:
                yield path
            finally:
                path.chmod(0o755)

        return chmodded()
    return tmpfs(path, "ro")


def test_read_only_output_folder(scripted: ScriptedBackend, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_good(src)
    with read_only_folder(tmp_path / "ro") as out:
        outcome = invoke(src, "--to", "zh", "--out", out)
        assert outcome.code == 1, outcome.stderr
        [line] = [x for x in outcome.stderr.splitlines() if "error" in x]
        assert line.startswith("translate-dir: error: cannot write to the output folder")
        assert str(out) in line and "check its permissions" in line
        assert list(out.iterdir()) == []
    # Refused before the model was started: no document text left the machine.
    assert scripted.requests == []


def test_read_only_output_file_fails_that_file_only(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes through file permissions")
    src = tmp_path / "in"
    write_good(src)
    write_good(src, "other.md")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").mkdir()
    write_good(src / "sub", "locked.md")
    (out / "sub").chmod(0o555)
    try:
        outcome = invoke(src, "--to", "zh", "--out", out)
    finally:
        (out / "sub").chmod(0o755)
    assert outcome.code == 1
    [line] = outcome.lines_about("sub/locked.md")
    assert "failed: cannot write" in line and "Permission denied" in line
    assert set(outputs(out)) == {"good.md", "other.md"}
    assert temp_files(out) == []


def big_document(kib: int) -> str:
    para = "Words that take room on the disk, one sentence after another. " * 8
    return "# Big\n\n" + (para + "\n\n") * (kib * 1024 // (len(para) + 2))


def test_full_disk_real_tmpfs(scripted: ScriptedBackend, tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "zbig.md").write_text(big_document(512))
    with tmpfs(tmp_path / "small") as out:
        outcome = invoke(src, "--to", "zh", "--out", out)
        assert outcome.code == 1, outcome.stderr
        [line] = outcome.lines_about("zbig.md")
        assert "failed: cannot write" in line and "No space left on device" in line
        assert temp_files(out) == []
        assert set(outputs(out)) == {"good.md"}
        assert_good_translated(out)
        # Both files were translated and are in the memory: only the write failed.
        assert len(scripted.requests) >= 2


@pytest.mark.parametrize("where", ["write", "replace"])
def test_full_disk_simulated(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """ENOSPC while writing the temporary file, or while renaming it over the
    target: the old output stays whole, no temp file is left, one line says why."""
    src = tmp_path / "in"
    write_good(src)
    (src / "victim.md").write_text("# Victim\n\nThis one hits the full disk.\n")
    out = tmp_path / "out"
    # An earlier translation of victim.md exists: it must survive unchanged.
    assert invoke(src, "--to", "zh", "--out", out).code == 0
    old = outputs(out)["victim.md"]
    (src / "victim.md").write_text("# Victim\n\nThis one changed and hits the full disk.\n")
    (src / "good.md").write_text("# Good file\n\nThis paragraph changed as well.\n")

    real_replace = os.replace
    real_fsync = os.fsync

    def fail_for_victim(path: object) -> bool:
        return "victim" in str(path)

    def replace(a: object, b: object) -> None:
        if where == "replace" and fail_for_victim(b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_replace(a, b)  # type: ignore[arg-type]

    def fsync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if where == "write" and fail_for_victim(name):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as patched:
        patched.setattr(os, "replace", replace)
        patched.setattr(os, "fsync", fsync)
        if where == "write":
            # Files written together are synced together: the full disk shows
            # at that sync too, and each file is then synced on its own.
            patched.setattr(atomic, "_load_syncfs", lambda: write_back_error)
        outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 1, outcome.stderr
    [line] = outcome.lines_about("victim.md")
    assert line.startswith("victim.md: failed: cannot write ")
    assert line.endswith("No space left on device")
    assert temp_files(out) == []
    written = outputs(out)
    assert written["victim.md"] == old, "the previous translation is whole"
    assert b"changed" not in written["good.md"] and written["good.md"] != old
    # Space again: the re-run writes victim.md from the memory, no new request.
    asked = len(scripted.requests)
    again = invoke(src, "--to", "zh", "--out", out)
    assert again.code == 0, again.stderr
    assert len(scripted.requests) == asked
    assert outputs(out)["victim.md"] != old


def test_manifest_on_a_full_disk_is_one_clear_line(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    write_good(src)
    out = tmp_path / "out"
    from pipeline import manifest

    def full(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patched:
        patched.setattr(manifest, "write_atomic", full)
        outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 1
    assert "cannot write the manifest" in outcome.stderr
    assert "No space left on device" in outcome.stderr
    assert temp_files(out) == []
    # The translation itself was written whole, and the memory has it.
    assert_good_translated(out)
    asked = len(scripted.requests)
    assert invoke(src, "--to", "zh", "--out", out).code == 0
    assert len(scripted.requests) == asked


# --------------------------------------------------------------------------- background writes


def write_back_error(fd: int) -> None:
    """A syncfs that finds a file of the batch could not be written back."""
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_the_next_run_removes_the_temporaries_a_killed_run_left(
    scripted: ScriptedBackend, tmp_path: Path
) -> None:
    """A SIGKILL (or a power cut) between a temporary's creation and its rename
    leaves the temporary: nothing in that process can remove it. The next
    run, holding the output folder's lock, does; any other file stays."""
    src = tmp_path / "in"
    write_good(src)
    write_good(src / "sub", "deep.md")
    out = tmp_path / "out"
    assert invoke(src, "--to", "zh", "--out", out).code == 0
    before = outputs(out)
    leftovers = [
        out / ".good.md.0a1b2c3d.tmp",
        out / "sub" / ".deep.md.ffffffff.tmp",
        out / STATE_DIR / ".manifest.json.12345678.tmp",
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half a transl")
    # Only the folders the run writes to are looked at: not the rest of the
    # output root (a Docusaurus site's node_modules, with the docusaurus layout).
    (out / "node_modules").mkdir()
    theirs = [
        out / ".notes.tmp",
        out / "sub" / ".x.1234.tmp",
        out / "draft.0a1b2c3d.tmp",
        out / "node_modules" / ".index.js.0a1b2c3d.tmp",
    ]
    for path in theirs:
        path.write_bytes(b"someone else's")
    outcome = invoke(src, "--to", "zh", "--out", out)
    assert outcome.code == 0, outcome.stderr
    assert sorted(temp_files(out)) == sorted(p for p in theirs if p.name.startswith("."))
    assert all(path.read_bytes() == b"someone else's" for path in theirs)
    after = outputs(out)
    assert {k: v for k, v in after.items() if k in before} == before


def test_background_writes_commit_together_and_only_then_report_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = atomic._load_syncfs()
    if real is None:
        pytest.skip("syncfs: Linux 5.8 or later only")
    syncs: list[int] = []
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted_syncfs(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(atomic, "_load_syncfs", lambda: counted_syncfs)
    monkeypatch.setattr(os, "fsync", counted_fsync)
    release = threading.Event()
    paths = [tmp_path / "out" / f"sub{n % 2}" / f"{n}.md" for n in range(8)]
    in_place: list[bool] = []

    def held(path: Path) -> None:
        release.wait(timeout=5)
        atomic.write_atomic(path, path.name.encode())

    def check(path: Path, future: Future[None]) -> None:
        in_place.append(path.read_bytes() == path.name.encode())

    with atomic.BackgroundWriter(threads=4) as writer:
        futures = []
        for n, path in enumerate(paths):
            # The first four wait until all eight are handed over: one batch.
            write = (
                functools.partial(held, path)
                if n < 4
                else functools.partial(atomic.write_atomic, path, path.name.encode())
            )
            future = writer.submit(path, write)
            future.add_done_callback(functools.partial(check, path))
            futures.append(future)
        assert not any(f.done() for f in futures[:4])
        release.set()
    assert all(f.result() is None for f in futures)
    assert in_place == [True] * 8, "a future said done before its file was in place"
    assert len(syncs) == 2 and fsyncs == [], "one syncfs before the renames, one after"
    assert temp_files(tmp_path) == []
    assert {p.read_bytes() for p in paths} == {p.name.encode() for p in paths}


def test_a_commit_interrupted_answers_every_write_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C lands on the main thread, which commits a batch when a write was
    # done before its callback was added, or when leaving the block.
    paths = [tmp_path / f"{n}.md" for n in range(3)]
    batch = []
    for path in paths:
        staged: list[tuple[str, Path]] = []
        monkeypatch.setattr(atomic._batch, "staged", staged, raising=False)
        atomic.write_atomic(path, path.name.encode())
        batch.append(atomic._Staged(Future(), None, staged))
    monkeypatch.delattr(atomic._batch, "staged")
    real_replace = os.replace

    def replace(src: str, dst: Path) -> None:
        if dst == paths[1]:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        atomic._commit(batch)
    assert all(staged.future.done() for staged in batch), "a caller would wait forever"
    assert batch[0].future.result() is None and paths[0].read_bytes() == b"0.md"
    for staged, path in zip(batch[1:], paths[1:], strict=True):
        problem = staged.future.exception()
        assert isinstance(problem, OSError) and problem.errno == errno.ECANCELED
        assert not path.exists()
    assert temp_files(tmp_path) == []


def test_without_syncfs_each_background_write_syncs_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before Linux 5.8 syncfs did not report a failed write-back, and other
    # systems have none: there every write keeps its own two fsyncs.
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(atomic, "_load_syncfs", lambda: None)
    monkeypatch.setattr(os, "fsync", counted_fsync)
    paths = [tmp_path / f"{n}.md" for n in range(8)]
    with atomic.BackgroundWriter() as writer:
        for path in paths:
            writer.submit(path, functools.partial(atomic.write_atomic, path, b"x"))
    assert len(fsyncs) == 16 and all(p.read_bytes() == b"x" for p in paths)


def test_a_background_write_alone_is_synced_as_write_atomic_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    monkeypatch.setattr(atomic, "_load_syncfs", lambda: syncs.append)
    path = tmp_path / "one.md"
    with atomic.BackgroundWriter() as writer:
        assert (
            writer.submit(path, functools.partial(atomic.write_atomic, path, b"x")).result() is None
        )
    assert syncs == [] and path.read_bytes() == b"x"


def test_background_writes_one_at_a_time_are_each_done_at_once(tmp_path: Path) -> None:
    # A run writes a file now and then (each after the model's time): each is
    # on disk as soon as it is written, not at the end of the run.
    with atomic.BackgroundWriter() as writer:
        for n in range(3):
            path = tmp_path / f"{n}.md"
            future = writer.submit(path, functools.partial(atomic.write_atomic, path, b"x"))
            assert future.result(timeout=10) is None
            assert path.read_bytes() == b"x"
    assert temp_files(tmp_path) == []


def test_background_writes_to_one_path_keep_their_order(tmp_path: Path) -> None:
    target = tmp_path / "out" / "page.md"
    order: list[str] = []
    second_ran = threading.Event()

    def first() -> None:
        # Would see the second write run beside it if the writer let it.
        second_ran.wait(timeout=0.3)
        atomic.write_atomic(target, b"first")
        order.append("first")

    def second() -> None:
        second_ran.set()
        atomic.write_atomic(target, b"second")
        order.append("second")

    with atomic.BackgroundWriter(threads=2) as writer:
        writer.submit(target, first)
        writer.submit(target, second)
    assert order == ["first", "second"]
    assert target.read_bytes() == b"second"


def test_background_writer_interrupted_finishes_what_it_started(tmp_path: Path) -> None:
    """Ctrl-C inside the block: the write under way ends whole, the waiting ones
    are cancelled and leave nothing; each future says which."""
    started = threading.Event()

    def slow(path: Path) -> None:
        started.set()
        time_to_interrupt.wait(timeout=5)
        atomic.write_atomic(path, b"whole")

    time_to_interrupt = threading.Event()
    # One thread: one write under way and one waiting (the most it lets wait).
    paths = [tmp_path / f"{n}.md" for n in range(2)]
    futures = []
    with pytest.raises(KeyboardInterrupt), atomic.BackgroundWriter(threads=1) as writer:
        futures.append(writer.submit(paths[0], functools.partial(slow, paths[0])))
        for path in paths[1:]:
            futures.append(
                writer.submit(path, functools.partial(atomic.write_atomic, path, b"never"))
            )
        assert started.wait(timeout=5)
        time_to_interrupt.set()
        raise KeyboardInterrupt
    assert futures[0].result() is None and paths[0].read_bytes() == b"whole"
    assert futures[1].cancelled()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["0.md"]


def _planned_jobs(
    src: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[FileJob, bytes]]:
    """The jobs and bytes of a real run, then their outputs and records gone
    again: ready to be written a second time."""
    jobs: list[tuple[FileJob, bytes]] = []
    real_submit = output.Writer.submit

    def keep(writer: output.Writer, job: FileJob, data: bytes) -> None:
        jobs.append((job, data))
        real_submit(writer, job, data)

    with monkeypatch.context() as patched:
        patched.setattr(output.Writer, "submit", keep)
        assert invoke(src, "--to", "zh", "--out", out).code == 0
    for job, _ in jobs:
        job.dest.unlink()
        job.target.manifest.remove(output_rel(job.dest, job.target))
        job.report.status, job.report.message = "failed", ""
    return jobs


def test_output_writer_reports_in_order_and_records_only_files_on_disk(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    write_good(src)
    for name in ("a.md", "victim.md", "z.md"):
        (src / name).write_text(f"# {name}\n\nA paragraph of {name}.\n")
    out = tmp_path / "out"
    jobs = _planned_jobs(src, out, monkeypatch)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if "victim" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", fsync)
        patched.setattr(atomic, "_load_syncfs", lambda: write_back_error)
        with output.Writer(overwrite_edited=False) as writer:
            for job, data in jobs:
                writer.submit(job, data)
            reports = writer.finished(wait=True)
    assert [r.source for r in reports] == [job.report.source for job, _ in jobs]
    by_name = {r.source: r for r in reports}
    assert by_name["victim.md"].status == "failed"
    assert by_name["victim.md"].message.endswith("No space left on device")
    assert {r.status for n, r in by_name.items() if n != "victim.md"} == {"written"}
    assert temp_files(out) == []
    for job, data in jobs:
        recorded = job.target.manifest.get(output_rel(job.dest, job.target))
        if job.report.source == "victim.md":
            assert recorded is None and not job.dest.exists()
        else:
            assert recorded is not None and job.dest.read_bytes() == data


def test_output_writer_interrupted_records_only_what_was_written(
    scripted: ScriptedBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    write_good(src)
    (src / "a.md").write_text("# A\n\nA paragraph of a.md.\n")
    out = tmp_path / "out"
    # One thread: one write under way and one waiting (the most it lets wait).
    jobs = _planned_jobs(src, out, monkeypatch)
    assert len(jobs) == 2
    started, interrupted = threading.Event(), threading.Event()
    real_write = atomic.write_atomic

    def slow_first(path: Path, data: bytes) -> None:
        if not started.is_set():
            started.set()
            interrupted.wait(timeout=5)
        real_write(path, data)

    with monkeypatch.context() as patched:
        patched.setattr(output, "write_atomic", slow_first)
        with (
            pytest.raises(KeyboardInterrupt),
            output.Writer(overwrite_edited=False, threads=1) as writer,
        ):
            for job, data in jobs:
                writer.submit(job, data)
            assert started.wait(timeout=5)
            interrupted.set()
            raise KeyboardInterrupt
    (first, first_data), *rest = jobs
    assert first.report.status == "written" and first.dest.read_bytes() == first_data
    assert first.target.manifest.get(output_rel(first.dest, first.target)) is not None
    for job, _ in rest:
        assert job.report.status == "cancelled" and not job.dest.exists()
        assert job.target.manifest.get(output_rel(job.dest, job.target)) is None
    assert temp_files(out) == []
