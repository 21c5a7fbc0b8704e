"""Where ``-o`` puts the trace, and what it leaves when the folder changes under it: the
file lands in the folder the download started in, or nowhere, and a folder that lets
files be added but never removed (append-only) gets the file and nothing else."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bgagent import download
from bgagent.download import AtomicFile
from bgagent.errors import CliError

BGAGENT = [sys.executable, "-m", "bgagent"]


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def save(chunks: Iterator[bytes], target: Path, *, replace: bool = False) -> None:
    with AtomicFile(target, replace=replace) as sink:
        sink.write_all(chunks)
        sink.commit()


def changing_folder_midway(change: Callable[[], None], *, then: str) -> Iterator[bytes]:
    """Half the bytes, then the folder changes (as another program could change it while
    the download runs), then the rest arrives ("complete") or the download breaks."""
    yield b"the first half, "
    change()
    if then == "breaks":
        raise CliError("The download was interrupted (ProtocolError); run the command again.")
    yield b"and the rest"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The folder the user names, where it is moved to, and another folder."""
    named, moved, other = tmp_path / "named", tmp_path / "moved", tmp_path / "other"
    named.mkdir()
    other.mkdir()
    return named, moved, other


MOVED = (
    "Nothing was saved: the folder {dir} was moved, removed or replaced during the download; "
    "run the command again."
)


@pytest.mark.parametrize("then", ["complete", "breaks"])
def test_a_folder_renamed_mid_download_keeps_nothing(folders, then: str) -> None:
    named, moved, _ = folders
    target = named / "t.jsonl.gz"
    with pytest.raises(CliError) as failed:
        save(changing_folder_midway(lambda: named.rename(moved), then=then), target)
    if then == "complete":
        assert str(failed.value) == MOVED.format(dir=named)
    assert not named.exists()
    assert entries(moved) == []  # neither the file nor a hidden part of it


@pytest.mark.parametrize("then", ["complete", "breaks"])
def test_a_folder_swapped_for_a_symlink_mid_download_gets_nothing_anywhere(
    folders, then: str
) -> None:
    """The name now leads to another folder: the trace must not land there, where the user
    never asked for it, nor stay behind in the folder that was moved away."""
    named, moved, other = folders

    def swap() -> None:
        named.rename(moved)
        named.symlink_to(other)

    with pytest.raises(CliError) as failed:
        save(changing_folder_midway(swap, then=then), named / "t.jsonl.gz")
    if then == "complete":
        assert str(failed.value) == MOVED.format(dir=named)
    assert entries(moved) == []
    assert entries(other) == []


def test_a_folder_swapped_for_another_folder_mid_download_gets_nothing_anywhere(folders) -> None:
    named, moved, _ = folders

    def swap() -> None:
        named.rename(moved)
        named.mkdir()

    with pytest.raises(CliError, match="was moved, removed or replaced during the download"):
        save(changing_folder_midway(swap, then="complete"), named / "t.jsonl.gz")
    assert entries(moved) == []
    assert entries(named) == []


def test_a_folder_that_can_be_written_but_not_read_is_saved_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drop box (mode 0733): its files cannot be listed, yet `>` can create one in it.
    Root reads every folder, so the refusal to read it is made at the os boundary."""
    real_open = os.open
    drop_box = tmp_path / "drop-box"
    drop_box.mkdir(mode=0o733)

    def unreadable(path, flags, *args, **kwargs):
        reads = flags & (os.O_WRONLY | os.O_RDWR | os.O_PATH) == 0
        if reads and os.path.realpath(path) == str(drop_box):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(download.os, "open", unreadable)
    save(iter([b"whole"]), drop_box / "t.jsonl.gz")
    assert (drop_box / "t.jsonl.gz").read_bytes() == b"whole"


def test_a_folder_removed_mid_download_is_said_to_be_gone(folders) -> None:
    """The file being written has no name, so the folder is empty and can be removed."""
    named, _, _ = folders
    with pytest.raises(CliError) as failed:
        save(changing_folder_midway(named.rmdir, then="complete"), named / "t.jsonl.gz")
    assert str(failed.value) == MOVED.format(dir=named)
    assert not named.exists()


def test_a_folder_swapped_for_an_older_folder_mid_download_gets_nothing_anywhere(
    tmp_path: Path,
) -> None:
    """Whichever of the two folders the file system numbered first."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    older, named = sorted((first, second), key=lambda folder: folder.stat().st_ino)
    moved = tmp_path / "moved"

    def swap() -> None:
        named.rename(moved)
        named.symlink_to(older)

    with pytest.raises(CliError, match="was moved, removed or replaced during the download"):
        save(changing_folder_midway(swap, then="complete"), named / "t.jsonl.gz")
    assert entries(moved) == []
    assert entries(older) == []


def test_a_folder_named_through_a_symlink_from_the_start_is_saved_to(folders) -> None:
    named, _, other = folders
    link = named / "link"
    link.symlink_to(other)
    save(iter([b"whole"]), link / "t.jsonl.gz")
    assert (other / "t.jsonl.gz").read_bytes() == b"whole"
    assert entries(other) == ["t.jsonl.gz"]


def test_the_cli_says_in_one_line_that_nothing_was_saved(
    bgagent, backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    named, moved = tmp_path / "named", tmp_path / "moved"
    named.mkdir()
    arriving = download.Download.chunks

    def moved_midway(self: download.Download) -> Iterator[bytes]:
        for index, chunk in enumerate(arriving(self)):
            if index == 0:
                named.rename(moved)
            yield chunk

    monkeypatch.setattr(download.Download, "chunks", moved_midway)
    result = bgagent("trace", "download", "t-1", "-o", str(named / "t.jsonl.gz"))
    assert (result.exit_code, result.stderr) == (1, f"bgagent: {MOVED.format(dir=named)}\n")
    assert entries(moved) == []


# --- a folder where files can be added but never renamed or removed (chattr +a) -------------


@pytest.fixture
def append_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "append-only"
    folder.mkdir()
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("no chattr here")
    done = subprocess.run([chattr, "+a", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"this file system or user cannot make a folder append-only: {done.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run([chattr, "-a", str(folder)], check=True)


def test_a_trace_saved_into_an_append_only_folder_leaves_only_itself(
    bgagent, backend, append_only: Path
) -> None:
    target = append_only / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (0, f"Wrote {target}\n")
    assert target.read_bytes() == backend.artifact
    assert entries(append_only) == ["t.jsonl.gz"]


def test_a_new_name_with_force_in_an_append_only_folder_is_saved(
    bgagent, backend, append_only: Path
) -> None:
    target = append_only / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target), "--force")
    assert (result.exit_code, result.stderr) == (0, f"Wrote {target}\n")
    assert target.read_bytes() == backend.artifact
    assert entries(append_only) == ["t.jsonl.gz"]


def test_a_broken_download_into_an_append_only_folder_leaves_nothing(
    bgagent, backend, append_only: Path
) -> None:
    backend.object_body = backend.artifact[:-6]  # the gzip trailer never arrives
    result = bgagent("trace", "download", "t-1", "-o", str(append_only / "t.jsonl.gz"))
    assert result.exit_code == 1
    assert "corrupt or not gzipped" in result.stderr
    assert entries(append_only) == []


def test_a_file_that_cannot_be_replaced_keeps_and_says_where_the_complete_trace_is(
    bgagent, backend, append_only: Path
) -> None:
    """Replacing takes a rename, which the folder refuses: the earlier file stays, the
    complete trace is kept beside it, and the user is told both, in one line."""
    target = append_only / "t.jsonl.gz"
    target.write_bytes(b"earlier")
    result = bgagent("trace", "download", "t-1", "-o", str(target), "--force")
    assert result.exit_code == 1
    assert target.read_bytes() == b"earlier"
    (kept,) = [name for name in entries(append_only) if name != "t.jsonl.gz"]
    assert (append_only / kept).read_bytes() == backend.artifact
    assert result.stderr == (
        f"bgagent: Could not replace {target}: Operation not permitted; the complete trace "
        f"is saved as {append_only / kept}.\n"
    )


def test_without_unnamed_files_an_append_only_folder_still_gets_the_whole_file(
    bgagent, backend, append_only: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that cannot make a file without a name (no O_TMPFILE): the file is
    written under a hidden name first, which the folder will not let go; the user is told
    that it is a second name of the same, complete file."""
    refuse_unnamed_files(monkeypatch)
    target = append_only / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 0
    assert target.read_bytes() == backend.artifact
    (second,) = [name for name in entries(append_only) if name != "t.jsonl.gz"]
    assert os.path.samefile(append_only / second, target)
    assert result.stderr == (
        f"Wrote {target} (its temporary name {append_only / second} could not be removed: "
        "Operation not permitted; it is a second name of the same file).\n"
    )


def refuse_unnamed_files(monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def no_tmpfile(path, flags, *args, **kwargs):
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(download.os, "open", no_tmpfile)


def test_without_unnamed_files_a_folder_renamed_mid_download_keeps_nothing(
    folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_unnamed_files(monkeypatch)
    named, moved, _ = folders
    for then in ("complete", "breaks"):
        with pytest.raises(CliError):
            save(changing_folder_midway(lambda: named.rename(moved), then=then), named / "t")
        assert entries(moved) == []
        moved.rename(named)


def test_a_download_killed_outright_leaves_no_part_file(download_under_way) -> None:
    """SIGKILL cannot be caught: only a file that never had a name is gone with it."""
    running, target = download_under_way
    running.send_signal(signal.SIGKILL)
    running.wait(30)
    assert entries(target.parent) == []


def without_proc(monkeypatch: pytest.MonkeyPatch, *, shows: Path | None = None) -> None:
    """As in a chroot or a container without /proc: a file without a name could never be
    given one. ``shows``: /proc is there, but shows another file (another process's)."""
    real_stat, real_link = os.stat, os.link

    def stat(path, *args, **kwargs):
        if str(path).startswith("/proc/self/fd/"):
            if shows is None:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
            return real_stat(shows)
        return real_stat(path, *args, **kwargs)

    def link(source, *args, **kwargs):
        if str(source).startswith("/proc/self/fd/"):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT))
        return real_link(source, *args, **kwargs)

    monkeypatch.setattr(download.os, "stat", stat)
    monkeypatch.setattr(download.os, "link", link)


@pytest.mark.parametrize("proc", ["missing", "another-file"])
def test_without_proc_the_trace_is_saved_under_a_hidden_name_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, proc: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"")
    folder = tmp_path / "out"
    folder.mkdir()
    without_proc(monkeypatch, shows=elsewhere if proc == "another-file" else None)
    save(iter([b"whole"]), folder / "t.jsonl.gz")
    assert (folder / "t.jsonl.gz").read_bytes() == b"whole"
    assert entries(folder) == ["t.jsonl.gz"]


def test_a_hidden_file_is_private_while_the_download_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part of a trace may hold secrets: nobody else may read it, whatever the umask;
    the complete file then gets the umask's mode."""
    refuse_unnamed_files(monkeypatch)
    modes: list[int] = []

    def arriving() -> Iterator[bytes]:
        yield b"the first half"
        (hidden,) = tmp_path.iterdir()
        modes.append(stat.S_IMODE(hidden.stat().st_mode))
        yield b" and the rest"

    old = os.umask(0)
    try:
        save(arriving(), tmp_path / "t.jsonl.gz")
    finally:
        os.umask(old)
    assert modes == [0o600]
    assert stat.S_IMODE((tmp_path / "t.jsonl.gz").stat().st_mode) == 0o666


def test_without_hard_links_a_file_that_appears_mid_download_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on vfat: the name is claimed exclusively, so a file that appeared meanwhile is
    never overwritten."""
    refuse_unnamed_files(monkeypatch)

    def no_hard_links(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(download.os, "link", no_hard_links)
    target = tmp_path / "t.jsonl.gz"

    def racing() -> Iterator[bytes]:
        yield b"new"
        target.write_bytes(b"written meanwhile")

    with pytest.raises(CliError, match="already exists"):
        save(racing(), target)
    assert target.read_bytes() == b"written meanwhile"
    assert entries(tmp_path) == ["t.jsonl.gz"]
