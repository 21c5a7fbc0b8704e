"""bgagent against hostile input, a hostile server and a hostile environment: every bad
input gets one line on stderr, never a traceback, and nothing is lost, half-written or
replaced that should not be."""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bgagent import api as api_module
from bgagent.config import (
    CREDENTIALS_FILE,
    Config,
    Credentials,
    load_credentials,
    save_config,
    save_credentials,
)
from bgagent.deadline import NetworkClock
from bgagent.download import Download, DownloadTimeout
from bgagent.errors import CliError
from bgagent.main import run

BGAGENT = [sys.executable, "-m", "bgagent"]


def one_line_no_traceback(stderr: str | bytes) -> str:
    text = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert "Traceback" not in text
    assert text.count("\n") == 1, text
    assert text.startswith("bgagent: "), text
    return text


def process(
    config_dir: Path, *args: str, shell_tail: str = "", prefix: str = ""
) -> subprocess.CompletedProcess:
    env = {**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)}
    command = prefix + " ".join([*BGAGENT, *args]) + shell_tail
    # In the test's own directory: what a command writes (`> out`) stays there.
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, timeout=60, cwd=config_dir.parent
    )


# --- -o and the files it writes ------------------------------------------------------------


@pytest.fixture
def private_null_device(tmp_path: Path) -> Path:
    """A character device of the test's own, like /dev/null: code that wrongly replaced
    it would damage only this copy, never the machine's."""
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root (CAP_MKNOD)")
    return device


def test_a_device_is_never_replaced_even_with_force(bgagent, backend, private_null_device):
    link = private_null_device.parent / "null-link"
    link.symlink_to(private_null_device)
    for target in (private_null_device, link):
        refused = bgagent("trace", "download", "t-1", "-o", str(target), "--force")
        assert refused.exit_code == 1
        assert one_line_no_traceback(refused.stderr) == (
            f"bgagent: {target} is not a regular file (a device, a pipe or a socket); -o saves "
            "to files only: use `-o -` to write the artifact to standard output.\n"
        )
    assert stat.S_ISCHR(os.stat(private_null_device).st_mode)
    assert link.is_symlink()
    assert backend.seen_paths == []  # refused before any network call


def test_a_fifo_is_refused_without_blocking(bgagent, backend, tmp_path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused = bgagent("trace", "download", "t-1", "-o", str(fifo), "--force")
    assert refused.exit_code == 1
    assert "is not a regular file" in refused.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_dash_o_dash_writes_the_raw_artifact_to_stdout(bgagent, backend, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = bgagent("trace", "download", "t-1", "-o", "-")
    assert (result.exit_code, result.stdout) == (0, backend.artifact)
    assert list(work.iterdir()) == []  # no file named "-"


def test_a_valid_long_file_name_is_saved(bgagent, backend, tmp_path) -> None:
    target = tmp_path / ("t" * 250 + ".gz")  # 253 bytes: within NAME_MAX
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == backend.artifact


def test_saving_needs_no_hard_links(bgagent, backend, tmp_path, monkeypatch) -> None:
    """As on vfat or exFAT: no hard links, and no file without a name either."""
    real_open = os.open

    def no_unnamed_files(path, flags, *args, **kwargs):
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")
        return real_open(path, flags, *args, **kwargs)

    def no_hard_links(*_: object, **__: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "open", no_unnamed_files)
    monkeypatch.setattr(os, "link", no_hard_links)
    target = tmp_path / "t.jsonl.gz"
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == backend.artifact
    again = bgagent("trace", "download", "t-1", "-o", str(target))
    assert again.exit_code == 1
    assert "already exists" in again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent", "t.jsonl.gz"]


def test_a_cut_body_without_length_or_checksum_is_never_saved(bgagent, backend, tmp_path) -> None:
    backend.object_body = backend.artifact[: len(backend.artifact) - 5]
    backend.close_delimited = True  # no Content-Length: only the gzip stream can tell
    target = tmp_path / "t.jsonl.gz"
    refused = bgagent("trace", "download", "t-1", "-o", str(target))
    assert refused.exit_code == 1
    assert "corrupt or not gzipped" in one_line_no_traceback(refused.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_saved_file_gets_the_users_umask(bgagent, backend, tmp_path, umask, mode) -> None:
    previous = os.umask(umask)
    try:
        target = tmp_path / "t.jsonl.gz"
        assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(target.stat().st_mode) == mode


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGALRM, signal.SIGUSR1],
    ids=["TERM", "HUP", "QUIT", "ALRM", "USR1"],
)
def test_a_signal_during_a_download_leaves_no_part_file(download_under_way, signum) -> None:
    running, target = download_under_way
    running.send_signal(signum)
    _, stderr = running.communicate(timeout=30)
    assert running.returncode == 128 + signum
    assert one_line_no_traceback(stderr) == ("bgagent: stopped by a signal; nothing was saved.\n")
    assert list(target.parent.iterdir()) == []


# --- time: the network is judged, never the reader -----------------------------------------


class _FakeMonotonic:
    """The network clock's time, moved by the test alone."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("spent", "expires"),
    [(0.4, False), (0.6, True)],
    ids=["within-budget", "past-budget"],
)
def test_the_clock_adds_up_the_network_time_of_every_wait(
    monkeypatch: pytest.MonkeyPatch, spent: float, expires: bool
) -> None:
    from bgagent import deadline

    fake = _FakeMonotonic()
    monkeypatch.setattr(deadline, "time", fake)
    clock = NetworkClock(1.0, lambda: None)
    for _ in range(2):  # two waits of ``spent`` seconds each: 0.8 s or 1.2 s in all
        clock.waiting()
        fake.now += spent
        clock.paused()
    fake.now += 50  # the consumer's time: never counted
    clock.waiting()  # the watcher now sees what is left of the budget at once
    try:
        assert clock.expired.wait(10 if expires else 0.3) is expires
    finally:
        clock.stop()


def test_a_stopped_clock_never_fires() -> None:
    fired = threading.Event()
    clock = NetworkClock(0.05, fired.set)
    clock.stop()
    clock.waiting()  # the download's last read, after its end was recorded
    assert not fired.wait(0.2)


@pytest.mark.parametrize(
    "program",
    [
        # A call abandoned by its deadline, still blocked when the command ends.
        "import time\nfrom bgagent.deadline import Expired, within\n"
        "try:\n    within(0.1, lambda: time.sleep(600))\nexcept Expired:\n    print('expired')",
        # A clock never stopped (a download abandoned before its body was read).
        "from bgagent.deadline import NetworkClock\nNetworkClock(600, lambda: None)\n"
        "print('expired')",
    ],
    ids=["abandoned-call", "clock-never-stopped"],
)
def test_a_waiting_deadline_never_keeps_the_command_from_exiting(program: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "expired\n")


def test_a_slow_reader_never_makes_a_healthy_download_time_out(backend) -> None:
    backend.object_body = os.urandom(3 * 1024 * 1024)  # 12 chunks
    with requests.Session() as session:
        # 5 s of network time is far more than 3 MiB on 127.0.0.1 needs, even on a busy
        # machine; the reader holds each chunk 0.5 s: 6 s in all, more than the deadline.
        download = Download(session, f"{backend.url}/object", 5.0)
        received = []
        for chunk in download.chunks():
            received.append(chunk)
            time.sleep(0.5)
    assert b"".join(received) == backend.object_body


@pytest.fixture
def trickling_server() -> Iterator[str]:
    """Sends a status line, then header bytes one by one, never ending the headers."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(200):  # 10 s at most
                    if stop.is_set():
                        break
                    try:
                        connection.sendall(b"a")
                    except OSError:
                        break
                    time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    listener.close()


def test_trickled_headers_cannot_outlast_the_download_deadline(trickling_server) -> None:
    with requests.Session() as session, pytest.raises(DownloadTimeout):
        Download(session, f"{trickling_server}/object", 0.3)


def test_the_api_call_has_an_overall_limit(bgagent, config_dir, trickling_server, monkeypatch):
    monkeypatch.setattr(api_module, "API_TIMEOUT_SECONDS", 0.3)
    save_config(config_dir, Config(trickling_server, "us-east-1", "pool", "client"))
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert "did not answer in time" in one_line_no_traceback(refused.stderr)


# --- standard streams ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", [(), ("-o", "-")], ids=["trajectory", "raw-artifact"])
def test_a_closed_stdout_is_one_line_on_stderr(config_dir, backend, raw) -> None:
    done = process(config_dir, "trace", "download", "t-1", *raw, shell_tail=" >&-")
    assert done.returncode == 1
    assert one_line_no_traceback(done.stderr) == (
        "bgagent: Cannot write to standard output: standard output is closed.\n"
    )


def test_a_full_disk_on_stdout_is_one_line_on_stderr(config_dir, backend) -> None:
    done = process(config_dir, "trace", "download", "t-1", shell_tail=" > /dev/full")
    assert done.returncode == 1
    assert one_line_no_traceback(done.stderr) == (
        "bgagent: Cannot write to standard output: No space left on device.\n"
    )


def test_with_stderr_closed_no_error_text_reaches_the_data_stream(config_dir, backend) -> None:
    backend.api_status = 404
    backend.api_body = b'{"error": {"code": "TASK_NOT_FOUND", "message": "Task t-1 not found."}}'
    done = process(config_dir, "trace", "download", "t-1", shell_tail=" 2>&-")
    assert (done.returncode, done.stdout) == (1, b"")


# --- configuration and input ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xff\xfe{not utf-8", "is not UTF-8 text; fix or remove it."),
        (b"[" * 60_000, "is nested too deeply; fix or remove it."),
        (b"{not json", "is not valid JSON; fix or remove it."),
        (b'["a", "list"]', "must hold a JSON object; fix or remove it."),
        (b" " * (64 * 1024 + 1), "is too large to be a settings file; fix or remove it."),
    ],
    ids=["not-utf8", "deep", "not-json", "not-an-object", "too-large"],
)
@pytest.mark.parametrize("name", ["config.json", CREDENTIALS_FILE])
def test_a_damaged_settings_file_is_one_line(bgagent, config_dir, name, content, says) -> None:
    (config_dir / name).write_bytes(content)
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == f"bgagent: {config_dir / name} {says}\n"


def test_a_settings_file_of_exactly_the_size_limit_is_read(bgagent, config_dir) -> None:
    path = config_dir / CREDENTIALS_FILE
    cached = path.read_bytes()
    path.write_bytes(cached + b" " * (64 * 1024 - len(cached)))
    assert bgagent("trace", "download", "t-1").exit_code == 0


@pytest.mark.parametrize(
    ("credentials", "says"),
    [
        (None, "You are not logged in: run `bgagent login`."),
        (b'{"id_token": ""}', "Your cached credentials hold no ID token: run `bgagent login`."),
        (b'{"id_token": 7}', "Your cached credentials hold no ID token: run `bgagent login`."),
    ],
    ids=["none", "empty-token", "number-token"],
)
def test_missing_credentials_ask_to_sign_in(bgagent, config_dir, credentials, says) -> None:
    path = config_dir / CREDENTIALS_FILE
    path.unlink()
    if credentials is not None:
        path.write_bytes(credentials)
    refused = bgagent("trace", "download", "t-1")
    assert (refused.exit_code, refused.stderr) == (1, f"bgagent: {says}\n")


def test_an_expiry_near_year_one_counts_as_expired(bgagent, config_dir, backend) -> None:
    save_credentials(config_dir, Credentials("id", "refresh", "0001-01-01T00:00:00+00:00"))
    # The refresh reaches nothing (a closed port): the session is over.
    refused = bgagent(
        "trace",
        "download",
        "t-1",
        AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER="http://127.0.0.1:9",
    )
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        "bgagent: Your session has expired: run `bgagent login` to sign in again.\n"
    )


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309", "0", "-1", "soon", "1e9"])
def test_an_unusable_download_timeout_is_one_line(bgagent, backend, value) -> None:
    refused = bgagent("trace", "download", "t-1", BGAGENT_DOWNLOAD_TIMEOUT=value)
    assert refused.exit_code == 1
    assert "BGAGENT_DOWNLOAD_TIMEOUT must be a number of seconds" in one_line_no_traceback(
        refused.stderr
    )
    assert backend.seen_paths == []


@pytest.mark.parametrize(
    ("task_id", "says"),
    [
        ("task-\udcff", "is not valid text"),
        (".", "'.' is not a task id."),
        ("..", "'..' is not a task id."),
    ],
)
def test_a_task_id_that_cannot_be_sent_is_refused(bgagent, backend, task_id, says) -> None:
    refused = bgagent("trace", "download", task_id)
    assert refused.exit_code == 1
    assert says in one_line_no_traceback(refused.stderr)
    assert backend.seen_paths == []


@pytest.mark.parametrize("link", ["http://[::1", "http://127.0.0.1:9/x", "http://a:b:c/"])
def test_a_link_that_cannot_be_fetched_is_one_line(bgagent, backend, link) -> None:
    backend.api_body = f'{{"data": {{"url": "{link}", "expires_at": "x"}}}}'.encode()
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert "Could not reach the trace storage" in one_line_no_traceback(refused.stderr)


def test_a_token_that_is_not_ascii_is_one_line(bgagent, config_dir, backend) -> None:
    save_credentials(config_dir, Credentials("tökén✓", "", "2099-01-01T00:00:00+00:00"))
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        "bgagent: Your cached credentials are damaged: run `bgagent login`.\n"
    )


def test_an_invalid_region_is_one_line(sign_in, config_dir) -> None:
    save_config(config_dir, Config("http://127.0.0.1:9/prod", "not a region!", "p", "c"))
    code, stderr = sign_in()
    assert code == 1
    assert "region 'not a region!' is not valid" in one_line_no_traceback(stderr)


def test_end_of_input_at_the_password_prompt_is_one_line(config_dir) -> None:
    done = subprocess.run(
        [*BGAGENT, "login", "--username", "alice"],
        env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=30,
        start_new_session=True,  # no terminal: getpass reads standard input
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.decode().endswith("bgagent: No password was given (end of input).\n")
    assert b"Traceback" not in done.stderr


def test_an_unwritable_config_directory_is_one_line(bgagent, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    refused = bgagent(
        "configure",
        "--api-url",
        "https://api.example/prod",
        "--region",
        "us-east-1",
        "--user-pool-id",
        "p",
        "--client-id",
        "c",
        BGAGENT_CONFIG_DIR=str(blocker / "bgagent"),
    )
    assert refused.exit_code == 1
    assert "Cannot write" in one_line_no_traceback(refused.stderr)


def test_a_directory_that_cannot_be_searched_is_one_line(bgagent, backend, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    real_stat = os.stat

    def stat_as_another_user(path, *args, **kwargs):  # root may search anything
        if str(path).startswith(str(locked)):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat_as_another_user)
    refused = bgagent("trace", "download", "t-1", "-o", str(locked / "sub" / "t.gz"))
    assert refused.exit_code == 1
    assert "Permission denied" in one_line_no_traceback(refused.stderr)
    assert backend.seen_paths == []


def test_a_credentials_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch):
    save_credentials(tmp_path, Credentials("old-id", "old-refresh", "2099-01-01T00:00:00+00:00"))

    def disk_full(_: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(CliError, match="No space left on device"):
        save_credentials(tmp_path, Credentials("new-id", "new-refresh", "2099-01-01"))
    assert load_credentials(tmp_path).id_token == "old-id"
    assert sorted(os.listdir(tmp_path)) == [CREDENTIALS_FILE]
    assert stat.S_IMODE((tmp_path / CREDENTIALS_FILE).stat().st_mode) == 0o600


def test_no_option_is_taken_as_an_abbreviation(bgagent) -> None:
    refused = bgagent("login", "--password", "hunter2")
    assert refused.exit_code == 2
    assert "unrecognized arguments: --password hunter2" in refused.stderr


def test_an_api_message_is_shown_as_plain_text_without_the_token(bgagent, backend) -> None:
    token = backend.id_token
    backend.api_status = 400
    backend.api_body = (
        '{"error": {"code": "BAD\\u001b[31m", "message": "bad\\u001b]0;owned\\u0007 token '
        + token
        + '\\nnext line"}}'
    ).encode()
    refused = bgagent("trace", "download", "t-1")
    text = one_line_no_traceback(refused.stderr)
    assert token not in text
    assert "[token]" in text
    assert "\x1b" not in text
    assert "\x07" not in text


def test_a_defect_is_one_line_that_says_how_to_report_it(bgagent, monkeypatch) -> None:
    from bgagent import trace_command

    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("a defect")

    monkeypatch.setattr(trace_command, "download_trace", broken)
    result = bgagent("trace", "download", "t-1")
    assert result.exit_code == 70
    assert one_line_no_traceback(result.stderr) == (
        "bgagent: unexpected error (RuntimeError); please report it "
        "(BGAGENT_DEBUG=1 shows the details).\n"
    )


def test_gzip_of_the_payload_is_what_dash_o_saves(bgagent, backend, tmp_path) -> None:
    target = tmp_path / "t.jsonl.gz"
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert gzip.decompress(target.read_bytes()) == backend.trace_lines


def test_a_short_write_to_stdout_is_a_failure_never_a_truncated_success(config_dir, backend):
    lines = b"".join(b'{"noise":"%s"}\n' % os.urandom(20).hex().encode() for _ in range(6000))
    backend.trace_lines, backend.object_body = lines, gzip.compress(lines)
    for option in ("", " -o -"):
        done = process(
            config_dir,
            "trace",
            "download",
            "t-1" + option,
            shell_tail=" > out",
            prefix="ulimit -f 50; ",  # a file size limit: writes come back short
        )
        assert done.returncode == 1, option
        assert "Cannot write to standard output" in one_line_no_traceback(done.stderr)


class _FullDisk(io.BufferedWriter):
    """A file on a full disk: bytes are buffered, then every flush fails."""

    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_dash_o_leaves_no_hidden_file(bgagent, backend, tmp_path, monkeypatch):
    from bgagent import download

    real_fdopen = os.fdopen

    def on_full_disk(fd: int, mode: str = "r", *args: object, **kwargs: object):
        if mode == "wb":
            return _FullDisk(io.FileIO(fd, "wb"))
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(download.os, "fdopen", on_full_disk)
    target = tmp_path / "t.jsonl.gz"
    refused = bgagent("trace", "download", "t-1", "-o", str(target))
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        f"bgagent: Could not write {target}: No space left on device.\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


# --- what the helper's attack found: servers that answer oddly, files that are not files ---


def test_netrc_credentials_never_replace_the_token(config_dir, backend, tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine 127.0.0.1 login bob password netrcsecret\n")
    (home / ".netrc").chmod(0o600)
    done = subprocess.run(
        [*BGAGENT, "trace", "download", "t-1"],
        env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir), "HOME": str(home)},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert backend.seen_authorization == [backend.id_token]
    assert backend.seen_object_authorization == [""]  # a presigned link carries its own


@pytest.mark.parametrize(
    "data",
    [
        "[1, 2]",
        "null",
        '"x"',
        '{"url": 7}',
        '{"url": "ftp://x"}',
        '{"url": "http://h/o", "checksum_sha256": 5}',
        '{"url": "http://h/o", "checksum_sha256": "not base64!"}',
    ],
)
def test_an_odd_api_answer_is_one_line(bgagent, backend, data) -> None:
    backend.api_body = f'{{"data": {data}}}'.encode()
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert "please report this" in one_line_no_traceback(refused.stderr)


def test_an_api_answer_nested_too_deeply_is_one_line(bgagent, backend) -> None:
    backend.api_status = 500
    backend.api_body = b"[" * 100_000
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert "HTTP 500" in one_line_no_traceback(refused.stderr)


class _BodyThatBreaks:
    """An answer whose body cannot be read: the connection fails under the read."""

    def __init__(self) -> None:
        self.closed = False
        self.raw = self

    def read(self, amount: int, decode_content: bool) -> bytes:
        raise ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")

    def close(self) -> None:
        self.closed = True


def test_an_api_body_that_cannot_be_read_counts_as_no_json() -> None:
    answer = _BodyThatBreaks()
    assert api_module._json_or_none(answer) is None  # type: ignore[arg-type]
    assert answer.closed


@pytest.mark.parametrize(
    "body",
    [
        b'{"AuthenticationResult": {"IdToken": 7, "ExpiresIn": 3600}}',
        b'{"AuthenticationResult": {"IdToken": "a.b.c", "ExpiresIn": 99999999999}}',
        b'{"AuthenticationResult": {"IdToken": "a.b.c", "ExpiresIn": -5}}',
        b'{"AuthenticationResult": {"IdToken": "a.b.c", "ExpiresIn": "soon"}}',
        b'{"AuthenticationResult": {"IdToken": "\\u001b[31m", "ExpiresIn": 60}}',
        b"{}",
        b"[1, 2]",
        b"not json",
    ],
)
def test_an_odd_cognito_answer_is_one_line_and_caches_nothing(sign_in, config_dir, cognito, body):
    cognito["body"] = body
    code, stderr = sign_in()
    assert code == 1
    assert "Cognito answered the sign-in in a form bgagent cannot use" in one_line_no_traceback(
        stderr
    )
    assert load_credentials(config_dir).id_token != "a.b.c"  # the earlier cache is kept


def test_cognito_text_reaches_the_terminal_as_plain_text(sign_in, config_dir, cognito) -> None:
    cognito["body"] = b'{"ChallengeName": "SMS\\u001b]0;pwned\\u0007\\nX", "Session": "s"}'
    _, stderr = sign_in()
    text = one_line_no_traceback(stderr)
    assert "does not support" in text
    assert "\x1b" not in text
    assert "\x07" not in text


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("name", ["config.json", CREDENTIALS_FILE])
def test_a_settings_file_that_is_not_a_file_is_refused(bgagent, config_dir, name, kind) -> None:
    path = config_dir / name
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # a private /dev/zero
        except PermissionError:
            pytest.skip("creating a device node needs root (CAP_MKNOD)")
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        f"bgagent: {path} is not a regular file; remove it.\n"
    )


URL_RULE = "--api-url must be an http(s) URL with a host and no query or fragment, not '{}'."


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--api-url", "ftp://x", URL_RULE.format("ftp://x")),
        ("--api-url", "", URL_RULE.format("")),
        ("--api-url", "https:///prod", URL_RULE.format("https:///prod")),
        ("--api-url", "https://h/prod#frag", URL_RULE.format("https://h/prod#frag")),
        ("--api-url", "https://h/prod?stage=1", URL_RULE.format("https://h/prod?stage=1")),
        ("--api-url", "https://u@h/prod", URL_RULE.format("https://u@h/prod")),
        ("--api-url", "https://h/a b", URL_RULE.format("https://h/a b")),
        ("--api-url", "https://h/p\x1b", URL_RULE.format("https://h/p?")),
        (
            "--api-url",
            "https://h:99999/prod",
            "--api-url is not a valid URL: 'https://h:99999/prod'.",
        ),
        ("--region", "", "--region must be an AWS region such as us-east-1, not ''."),
        (
            "--region",
            "not a region!",
            "--region must be an AWS region such as us-east-1, not 'not a region!'.",
        ),
        ("--user-pool-id", "", "--user-pool-id must be a non-empty id, not ''."),
        ("--client-id", "a\nb", "--client-id must be a non-empty id, not 'a?b'."),
        ("--client-id", "c" * 257, f"--client-id must be a non-empty id, not '{'c' * 257}'."),
    ],
)
def test_configure_refuses_what_could_never_work(bgagent, tmp_path, option, value, message) -> None:
    settings = {
        "--api-url": "https://api.example/prod",
        "--region": "us-east-1",
        "--user-pool-id": "us-east-1_pool",
        "--client-id": "client",
    }
    settings[option] = value
    directory = tmp_path / "fresh"
    argv = [part for pair in settings.items() for part in pair]
    refused = bgagent("configure", *argv, BGAGENT_CONFIG_DIR=str(directory))
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == f"bgagent: {message}\n"
    assert not directory.exists()


def test_configure_accepts_an_id_of_256_characters_and_a_port(bgagent, tmp_path) -> None:
    directory = tmp_path / "fresh"
    done = bgagent(
        "configure",
        *("--api-url", "http://h:8080/prod", "--region", "eu-central-2"),
        *("--user-pool-id", "p" * 256, "--client-id", "client"),
        BGAGENT_CONFIG_DIR=str(directory),
    )
    assert (done.exit_code, done.stderr) == (0, f"Saved {directory / 'config.json'}\n")


def test_configure_writes_settings_a_person_can_read_and_edit(bgagent, tmp_path) -> None:
    directory = tmp_path / "fresh"
    done = bgagent(
        "configure",
        *("--api-url", "https://api.example/prod", "--region", "us-east-1"),
        *("--user-pool-id", "us-east-1_pool", "--client-id", "client"),
        BGAGENT_CONFIG_DIR=str(directory),
    )
    assert done.exit_code == 0
    assert (directory / "config.json").read_text() == (
        "{\n"
        '  "api_url": "https://api.example/prod",\n'
        '  "region": "us-east-1",\n'
        '  "user_pool_id": "us-east-1_pool",\n'
        '  "client_id": "client"\n'
        "}\n"
    )


def test_configure_creates_every_missing_folder_of_the_settings_directory(
    bgagent, tmp_path
) -> None:
    directory = tmp_path / "not" / "yet" / "there"
    done = bgagent(
        "configure",
        *("--api-url", "https://api.example/prod", "--region", "us-east-1"),
        *("--user-pool-id", "us-east-1_pool", "--client-id", "client"),
        BGAGENT_CONFIG_DIR=str(directory),
    )
    assert (done.exit_code, done.stderr) == (0, f"Saved {directory / 'config.json'}\n")


def test_a_settings_file_that_is_a_symlink_stays_one(tmp_path) -> None:
    """A dotfiles manager's link keeps pointing at the file it manages, now rewritten."""
    managed = tmp_path / "dotfiles" / "credentials.json"
    managed.parent.mkdir()
    managed.write_text("{}")
    directory = tmp_path / "cfg"
    directory.mkdir()
    (directory / CREDENTIALS_FILE).symlink_to(managed)
    save_credentials(directory, Credentials("new.id.token"))
    assert (directory / CREDENTIALS_FILE).is_symlink()
    assert json.loads(managed.read_text())["id_token"] == "new.id.token"


def test_a_settings_directory_that_is_a_file_is_one_line(bgagent, tmp_path) -> None:
    not_a_folder = tmp_path / "settings"
    not_a_folder.write_text("a file, not a folder")
    refused = bgagent("trace", "download", "t-1", BGAGENT_CONFIG_DIR=str(not_a_folder))
    assert (refused.exit_code, one_line_no_traceback(refused.stderr)) == (
        1,
        f"bgagent: Cannot read {not_a_folder / 'config.json'}: Not a directory.\n",
    )


def test_a_settings_file_that_fails_to_read_is_one_line(bgagent, config_dir, monkeypatch):
    """A read error of the disk itself (EIO), after the file opened."""
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, handle: io.BufferedReader) -> None:
            self._handle = handle

        def __enter__(self) -> Failing:
            return self

        def __exit__(self, *_: object) -> None:
            self._handle.close()

        def read(self, _: int) -> bytes:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: Failing(real_fdopen(fd, mode)))
    refused = bgagent("trace", "download", "t-1")
    assert (refused.exit_code, one_line_no_traceback(refused.stderr)) == (
        1,
        f"bgagent: Cannot read {config_dir / 'config.json'}: Input/output error.\n",
    )


@pytest.mark.parametrize("tail", [" >&-", " > /dev/full"], ids=["closed", "full"])
def test_help_into_a_closed_or_full_stdout_is_one_line(config_dir, tail) -> None:
    done = process(config_dir, "--help", shell_tail=tail)
    assert done.returncode == 1
    assert "Cannot write to standard output" in one_line_no_traceback(done.stderr)


def test_login_with_stdin_closed_is_one_line(config_dir) -> None:
    done = process(config_dir, "login", shell_tail=" 0<&-")
    assert done.returncode == 1
    assert done.stderr.decode().endswith("bgagent: No username was given.\n")
    assert b"Traceback" not in done.stderr


def test_an_empty_home_is_one_line(bgagent) -> None:
    stderr = io.StringIO()
    code = run(
        ["trace", "download", "t-1"], stdout=io.BytesIO(), stderr=stderr, environ={"HOME": ""}
    )
    assert code == 1
    assert one_line_no_traceback(stderr.getvalue()) == (
        "bgagent: HOME is empty: set HOME, or BGAGENT_CONFIG_DIR to a directory.\n"
    )


def test_a_target_ending_in_a_slash_is_refused(bgagent, backend, tmp_path) -> None:
    refused = bgagent("trace", "download", "t-1", "-o", f"{tmp_path}/nodir/")
    assert refused.exit_code == 1
    assert "names a directory" in one_line_no_traceback(refused.stderr)
    assert backend.seen_paths == []


def test_a_name_too_long_is_refused_before_any_download(bgagent, backend, tmp_path) -> None:
    refused = bgagent("trace", "download", "t-1", "-o", str(tmp_path / ("t" * 256)))
    assert refused.exit_code == 1
    assert "longer than 255 bytes" in one_line_no_traceback(refused.stderr)
    assert backend.seen_paths == []


def test_force_through_a_symlink_replaces_the_file_it_points_at(bgagent, backend, tmp_path):
    real = tmp_path / "real.gz"
    real.write_bytes(b"earlier")
    link = tmp_path / "link.gz"
    link.symlink_to(real)
    assert bgagent("trace", "download", "t-1", "-o", str(link), "--force").exit_code == 0
    assert link.is_symlink()
    assert real.read_bytes() == backend.artifact


def test_the_raw_artifact_is_never_written_to_a_terminal(config_dir, backend) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        done = subprocess.run(
            [*BGAGENT, "trace", "download", "t-1", "-o", "-"],
            env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)},
            stdout=terminal,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)
    assert done.returncode == 1
    assert one_line_no_traceback(done.stderr) == (
        "bgagent: Refusing to write the gzip artifact to a terminal: redirect it, "
        "e.g. `-o - > trace.jsonl.gz`.\n"
    )


# --- what the second attack found -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["device", "fifo", "link-to-device"])
def test_login_never_replaces_a_settings_file_that_is_not_a_file(
    sign_in, config_dir, cognito, kind
):
    credentials = config_dir / CREDENTIALS_FILE
    credentials.unlink()
    device = config_dir.parent / "private-null"
    if kind == "fifo":
        os.mkfifo(credentials)
    else:
        try:
            os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("creating a device node needs root (CAP_MKNOD)")
        if kind == "device":
            device.rename(credentials)
        else:
            credentials.symlink_to(device)
    cognito["body"] = b'{"AuthenticationResult": {"IdToken": "a.b.c", "ExpiresIn": 3600}}'
    code, stderr = sign_in()
    assert code == 1
    assert "is not a regular file" in one_line_no_traceback(stderr)
    kept = credentials.resolve() if kind == "link-to-device" else credentials
    assert not stat.S_ISREG(os.stat(kept).st_mode)


def test_a_settings_file_that_is_a_directory_is_refused(bgagent, config_dir) -> None:
    (config_dir / "config.json").unlink()
    (config_dir / "config.json").mkdir()
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        f"bgagent: {config_dir / 'config.json'} is not a regular file; remove it.\n"
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--api-url", "http://[::1"),
        ("--api-url", "HTTP://h/prod"),
        ("--api-url", "http://h:0/prod"),
        ("--api-url", "http://h\\evil.com/prod"),
        ("--region", "us-east-1\n"),
    ],
)
def test_configure_refuses_urls_and_regions_that_could_never_work(bgagent, tmp_path, option, value):
    settings = {
        "--api-url": "https://api.example/prod",
        "--region": "us-east-1",
        "--user-pool-id": "p",
        "--client-id": "c",
        option: value,
    }
    argv = [part for pair in settings.items() for part in pair]
    refused = bgagent("configure", *argv, BGAGENT_CONFIG_DIR=str(tmp_path / "fresh"))
    assert refused.exit_code == 1
    assert option in one_line_no_traceback(refused.stderr)


def test_a_lifetime_that_is_a_boolean_is_refused(sign_in, config_dir, cognito) -> None:
    cognito["body"] = b'{"AuthenticationResult": {"IdToken": "a.b.c", "ExpiresIn": true}}'
    code, stderr = sign_in()
    assert code == 1
    assert "cannot use" in one_line_no_traceback(stderr)


def test_control_characters_in_the_configured_url_are_not_shown(bgagent, config_dir) -> None:
    (config_dir / "config.json").write_text(
        '{"api_url": "http://127.0.0.1:9/\\u001b[31mRED\\u0007", "region": "us-east-1",'
        ' "user_pool_id": "p", "client_id": "c"}'
    )
    refused = bgagent("trace", "download", "t-1")
    text = one_line_no_traceback(refused.stderr)
    assert "\x1b" not in text
    assert "\x07" not in text


def test_a_burst_of_signals_still_leaves_no_part_file(config_dir, backend, tmp_path) -> None:
    backend.object_stall_seconds = 30
    target = tmp_path / "out" / "t.jsonl.gz"
    target.parent.mkdir()
    running = subprocess.Popen(
        [*BGAGENT, "trace", "download", "t-1", "-o", str(target)],
        env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert backend.object_started.wait(30)
        for _ in range(50):
            if running.poll() is not None:
                break
            running.send_signal(signal.SIGTERM)
        _, stderr = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 128 + signal.SIGTERM
    assert one_line_no_traceback(stderr) == "bgagent: stopped by a signal; nothing was saved.\n"
    assert list(target.parent.iterdir()) == []


def _api_answer_of(size: int, backend) -> bytes:
    head = b'{"data": {"url": "%s/object", "pad": "' % backend.url.encode()
    return head + b"x" * (size - len(head) - 3) + b'"}}'


def test_an_api_answer_too_large_to_be_one_is_refused(bgagent, backend) -> None:
    backend.api_body = _api_answer_of(1024 * 1024 + 1, backend)
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert one_line_no_traceback(refused.stderr) == (
        "bgagent: The API answered HTTP 200 without data; please report this.\n"
    )


def test_an_api_answer_past_the_cap_is_refused_even_if_its_start_is_whole(bgagent, backend):
    whole = json.dumps({"data": {"url": f"{backend.url}/object"}}).encode()
    backend.api_body = whole + b" " * (1024 * 1024 + 1 - len(whole))
    refused = bgagent("trace", "download", "t-1")
    assert one_line_no_traceback(refused.stderr) == (
        "bgagent: The API answered HTTP 200 without data; please report this.\n"
    )


def test_an_api_answer_of_exactly_one_mebibyte_is_read(bgagent, backend) -> None:
    backend.api_body = _api_answer_of(1024 * 1024, backend)
    assert len(backend.api_body) == 1024 * 1024
    done = bgagent("trace", "download", "t-1")
    assert (done.exit_code, done.stdout) == (0, backend.trace_lines)


def test_an_api_call_is_given_thirty_seconds_in_all(bgagent, backend, monkeypatch) -> None:
    from bgagent import api

    limits: list[float] = []

    def recorded(seconds, call):
        limits.append(seconds)
        return call()

    monkeypatch.setattr(api, "within", recorded)
    assert bgagent("trace", "download", "t-1").exit_code == 0
    assert limits == [30]
