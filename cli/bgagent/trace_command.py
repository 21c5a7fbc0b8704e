"""``bgagent trace download <task-id> [-o FILE] [-f|--force]``."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, TextIO

import requests

from bgagent.api import ApiClient, ApiError
from bgagent.auth import fresh_credentials
from bgagent.config import config_dir, load_config
from bgagent.download import AtomicFile, Download, gunzip_to, proven_gzip
from bgagent.errors import CliError

DEFAULT_DOWNLOAD_TIMEOUT_SECONDS = 120.0
ENV_DOWNLOAD_TIMEOUT = "BGAGENT_DOWNLOAD_TIMEOUT"


def download_trace(
    task_id: str,
    output: Path | None,
    *,
    force: bool,
    stdout: BinaryIO,
    stderr: TextIO,
    environ: Mapping[str, str],
) -> int:
    check_task_id(task_id)
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
        if sink is None:
            gunzip_to(download.chunks(), stdout)
        else:
            chunks = download.chunks()
            # Without the stored checksum, at least the gzip stream must end cleanly.
            sink.write_all(chunks if download.has_checksum else proven_gzip(chunks))
            sink.commit()
            print(f"Wrote {output}", file=stderr)
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


def check_output_path(output: Path, *, force: bool) -> None:
    if output.is_dir():
        raise CliError(f"{output} is a directory; give a file name to -o.")
    if output.exists() and not force:
        raise CliError(f"{output} already exists; use --force to replace it.")
    parent = output.parent
    if not parent.is_dir():
        raise CliError(f"Cannot write {output}: the directory {parent} does not exist.")


def download_timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get(ENV_DOWNLOAD_TIMEOUT)
    if not raw:
        return DEFAULT_DOWNLOAD_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise CliError(f"{ENV_DOWNLOAD_TIMEOUT} must be a positive number of seconds, not {raw!r}.")
    return value
