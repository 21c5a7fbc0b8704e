import dataclasses
import errno
import gzip
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgagent.config import (
    Config,
    Credentials,
    config_dir,
    load_config,
    save_config,
    save_credentials,
)
from bgagent.download import AtomicFile, CorruptArtifact, gunzip_to
from bgagent.errors import CliError


def write_atomically(chunks: Iterator[bytes], target: Path, *, replace: bool) -> None:
    with AtomicFile(target, replace=replace) as sink:
        sink.write_all(chunks)
        sink.commit()


PAYLOAD = b"".join(b'{"event":"TRAJECTORY_TURN","turn":%d}\n' % i for i in range(2000))


def chunked(data: bytes, size: int = 97) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_gunzip_streams_in_small_chunks() -> None:
    out = io.BytesIO()
    assert gunzip_to(chunked(gzip.compress(PAYLOAD)), out) == len(PAYLOAD)
    assert out.getvalue() == PAYLOAD


def test_gunzip_decodes_concatenated_members_like_gunzip() -> None:
    out = io.BytesIO()
    gunzip_to(iter([gzip.compress(b"a\n") + gzip.compress(b"b\n")]), out)
    assert out.getvalue() == b"a\nb\n"


def test_gunzip_keeps_memory_bounded_on_highly_compressible_input() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    sizes: list[int] = []

    class Sink(io.RawIOBase):
        def write(self, data: bytes) -> int:
            sizes.append(len(data))
            return len(data)

    gunzip_to(iter([bomb]), Sink())
    assert sum(sizes) == 64 * 1024 * 1024
    assert max(sizes) <= 1024 * 1024


@pytest.mark.parametrize(
    "data",
    [b"", b"plain text\n", gzip.compress(PAYLOAD)[:-20], gzip.compress(b"a") + b"junk"],
    ids=["empty", "not-gzip", "truncated", "trailing-junk"],
)
def test_gunzip_refuses_what_is_not_a_whole_gzip_stream(data: bytes) -> None:
    with pytest.raises(CorruptArtifact, match="corrupt or not gzipped"):
        gunzip_to(iter([data]), io.BytesIO())


def test_gunzip_accepts_an_empty_but_valid_gzip() -> None:
    assert gunzip_to(iter([gzip.compress(b"")]), io.BytesIO()) == 0


def failing_after(data: bytes) -> Iterator[bytes]:
    yield data
    raise CliError("The download was interrupted (ProtocolError); run the command again.")


def test_an_interrupted_write_leaves_neither_target_nor_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "t.gz"
    with pytest.raises(CliError, match="interrupted"):
        write_atomically(failing_after(b"partial"), target, replace=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_forced_write_keeps_the_earlier_file(tmp_path: Path) -> None:
    target = tmp_path / "t.gz"
    target.write_bytes(b"earlier")
    with pytest.raises(CliError):
        write_atomically(failing_after(b"partial"), target, replace=True)
    assert [p.name for p in tmp_path.iterdir()] == ["t.gz"]
    assert target.read_bytes() == b"earlier"


def test_a_file_that_appears_during_the_download_is_not_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "t.gz"

    def racing() -> Iterator[bytes]:
        yield b"new"
        target.write_bytes(b"written meanwhile")

    with pytest.raises(CliError, match="already exists"):
        write_atomically(racing(), target, replace=False)
    assert target.read_bytes() == b"written meanwhile"
    assert [p.name for p in tmp_path.iterdir()] == ["t.gz"]


def test_credentials_are_private_to_the_user(tmp_path: Path) -> None:
    path = save_credentials(tmp_path / "cfg", Credentials("token"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700  # a new directory: the user's


def test_the_configuration_is_readable_by_all_the_credentials_by_the_user(
    tmp_path: Path,
) -> None:
    previous = os.umask(0)  # the modes are bgagent's own, whatever the umask allows
    try:
        config = save_config(tmp_path / "cfg", Config("https://a.test/prod", "eu-west-1", "p", "c"))
        credentials = save_credentials(tmp_path / "cfg", Credentials("token"))
    finally:
        os.umask(previous)
    assert stat.S_IMODE(config.stat().st_mode) == 0o644
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700


def test_config_round_trips_and_rejects_a_bad_api_url(tmp_path: Path) -> None:
    config = Config("https://api.example.test/prod", "eu-west-1", "pool", "client")
    save_config(tmp_path, config)
    assert load_config(tmp_path) == config
    (tmp_path / "config.json").write_text('{"api_url": "ftp://x"}')
    with pytest.raises(CliError, match="no valid api_url"):
        load_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CliError, match="not valid JSON"):
        load_config(tmp_path)


def test_a_forced_write_to_a_new_name_creates_the_file(tmp_path: Path) -> None:
    target = tmp_path / "t.gz"
    write_atomically(iter([b"new"]), target, replace=True)
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["t.gz"]


def test_a_pipe_that_appears_during_a_forced_download_is_not_replaced(tmp_path: Path) -> None:
    target = tmp_path / "t.gz"

    def racing() -> Iterator[bytes]:
        yield b"new"
        os.mkfifo(target)

    with pytest.raises(CliError) as refused:
        write_atomically(racing(), target, replace=True)
    assert str(refused.value) == (
        f"{target} is not a regular file (a device, a pipe or a socket); -o saves to files "
        "only: use `-o -` to write the artifact to standard output."
    )
    assert stat.S_ISFIFO(os.stat(target).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["t.gz"]


def test_a_link_refused_for_another_reason_than_no_hard_links_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused_link(*_: object, **__: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "link", refused_link)
    target = tmp_path / "t.gz"
    with pytest.raises(CliError) as refused:
        write_atomically(iter([b"new"]), target, replace=False)
    assert str(refused.value) == f"Could not write {target}: Permission denied."
    assert list(tmp_path.iterdir()) == []


def test_settings_live_in_the_given_directory_or_under_home() -> None:
    assert config_dir({"BGAGENT_CONFIG_DIR": "/srv/cfg", "HOME": "/h"}) == Path("/srv/cfg")
    assert config_dir({"HOME": "/home/alice"}) == Path("/home/alice/.bgagent")
    assert config_dir({}) == Path.home() / ".bgagent"


def test_settings_cannot_change_once_read() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config("https://a.test/prod", "eu-west-1", "p", "c").api_url = "https://b.test"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Credentials("token").id_token = "another"  # type: ignore[misc]
