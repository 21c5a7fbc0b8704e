"""``bgagent trace download <task-id> [-o FILE] [-f|--force]``."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import requests

from bgagent.api import ApiClient, ApiError
from bgagent.auth import fresh_credentials
from bgagent.config import config_dir, load_config
from bgagent.download import (
    AtomicFile,
    ByteSink,
    Download,
    copy_to,
    gunzip_to,
    not_a_regular_file,
    proven_gzip,
)
from bgagent.errors import CliError, printable
from bgagent.progress import Progress

DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 120.0
MAX_DOWNLOAD_TIMEOUT_SECONDS = 7 * 24 * 3600.0
ENV_DOWNLOAD_TIMEOUT = "BGAGENT_DOWNLOAD_TIMEOUT"


def download_trace(
    task_id: str,
    output_name: str | None,
    *,
    force: bool,
    stdout: ByteSink,
    stdout_is_terminal: bool = False,
    stdout_is_file: bool = False,
    stderr: TextIO,
    stderr_is_terminal: bool = False,
    environ: Mapping[str, str],
) -> int:
    check_task_id(task_id)
    to_stdout_raw = output_name == "-"  # as curl's `-o -`
    if output_name is not None and output_name.endswith(os.sep):  # Path() would drop the /
        raise CliError(f"{printable(output_name)} names a directory; give a file name to -o.")
    output = Path(output_name) if output_name is not None and not to_stdout_raw else None
    if to_stdout_raw and stdout_is_terminal:
        raise CliError(
            "Refusing to write the gzip artifact to a terminal: redirect it, "
            "e.g. `-o - > trace.jsonl.gz`."
        )
    if output is not None:
        check_output_path(output, force=force)  # before any network call
    timeout = download_timeout(environ)
    directory = config_dir(environ)
    config = load_config(directory)
    credentials = fresh_credentials(config, directory)

    with contextlib.ExitStack() as stack:
        # The file is opened first: a place that cannot be written is found
        # before anything is downloaded.
        sink = stack.enter_context(AtomicFile(output, replace=force)) if output else None
        session = stack.enter_context(requests.Session())
        try:
            link = ApiClient(config, credentials, session).get_trace_link(task_id)
        except ApiError as err:
            if err.code == "TRACE_NOT_AVAILABLE":
                raise CliError(trace_not_available_message(task_id)) from None
            raise
        download = Download(session, link.url, timeout, checksum_sha256=link.checksum_sha256)
        # Progress goes to a terminal on stderr, only while the trace goes to a file: a
        # trace on the terminal, or piped to a reader that may show it there (`| less`),
        # would be mixed with the bar.
        to_a_file = sink is not None or stdout_is_file
        watched = stderr if stderr_is_terminal and to_a_file else None
        size = download.size if watched else None
        progress = stack.enter_context(Progress(watched, size))  # cleared first
        chunks = progress.track(download.chunks())
        if sink is None and to_stdout_raw:
            copy_to(chunks if download.has_checksum else proven_gzip(chunks), stdout)
        elif sink is None:
            gunzip_to(chunks, stdout)
        else:
            # Without the stored checksum, at least the gzip stream must end cleanly.
            sink.write_all(chunks if download.has_checksum else proven_gzip(chunks))
            note = sink.commit()
            progress.close()
            print(f"Wrote {printable(output)}" + (f" ({note})." if note else ""), file=stderr)
    return 0


def trace_not_available_message(task_id: str) -> str:
    return (
        f"No trace is available for task {task_id}: either it did not run with --trace, "
        "or its trace upload has not completed yet. To capture one, submit the task "
        "again with --trace."
    )


def check_task_id(task_id: str) -> None:
    if not task_id.strip():
        raise CliError("The task id is empty.")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in task_id):
        raise CliError("The task id contains control characters; check how it was pasted.")
    try:
        task_id.encode("utf-8")
    except UnicodeEncodeError:  # unpaired surrogates, from bytes that were not UTF-8
        raise CliError("The task id is not valid text; check how it was pasted.") from None
    if task_id in (".", ".."):
        # HTTP clients and servers resolve these as path segments: another URL entirely.
        raise CliError(f"{task_id!r} is not a task id.")


def check_output_path(output: Path, *, force: bool) -> None:
    try:
        longest = os.pathconf(output.parent if str(output.parent) else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if len(os.fsencode(output.name)) > longest:
        raise CliError(f"The file name given to -o is longer than {longest} bytes.")
    try:
        existing = output.stat() if os.path.lexists(output) else None
        parent_is_dir = output.parent.is_dir()
    except FileNotFoundError:  # a symbolic link to nothing
        existing, parent_is_dir = None, output.parent.is_dir()
    except OSError as err:
        raise CliError(f"Cannot write {printable(output)}: {err.strerror}.") from None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise CliError(f"{printable(output)} is a directory; give a file name to -o.")
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        raise CliError(not_a_regular_file(output))
    if os.path.lexists(output) and not force:
        raise CliError(f"{printable(output)} already exists; use --force to replace it.")
    if not parent_is_dir:
        raise CliError(
            f"Cannot write {printable(output)}: the directory "
            f"{printable(output.parent)} does not exist."
        )


def download_timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_DOWNLOAD_TIMEOUT)
    if not raw:
        return DEFAULT_DOWNLOAD_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (0 < value <= MAX_DOWNLOAD_TIMEOUT_SECONDS):  # also refuses nan and inf
        raise CliError(
            f"{ENV_DOWNLOAD_TIMEOUT} must be a number of seconds above 0 and at most "
            f"{MAX_DOWNLOAD_TIMEOUT_SECONDS:g}, not {raw!r}."
        )
    return value
