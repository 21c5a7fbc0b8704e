"""The CLI's settings and cached credentials (``BGAGENT_CONFIG_DIR``, else ``~/.bgagent``)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bgagent.errors import CliError, printable

CONFIG_FILE = "config.json"
CREDENTIALS_FILE = "credentials.json"


@dataclass(frozen=True)
class Config:
    api_url: str
    region: str
    user_pool_id: str
    client_id: str


@dataclass(frozen=True)
class Credentials:
    id_token: str
    refresh_token: str = ""
    token_expiry: str = ""


def config_dir(environ: Mapping[str, str]) -> Path:
    configured = environ.get("BGAGENT_CONFIG_DIR")
    if configured:
        return Path(configured)
    home = environ.get("HOME", "") if "HOME" in environ else str(Path.home())
    if not home:
        raise CliError("HOME is empty: set HOME, or BGAGENT_CONFIG_DIR to a directory.")
    return Path(home) / ".bgagent"


_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


def check_config(config: Config) -> None:
    """What `bgagent configure` accepts: a usable API URL, a region name, two ids."""
    try:
        url = urlsplit(config.api_url)
        port = url.port
    except ValueError:
        raise CliError(f"--api-url is not a valid URL: '{printable(config.api_url)}'.") from None
    if (
        not config.api_url.startswith(("https://", "http://"))
        or "\\" in config.api_url
        or port == 0
        or not url.hostname
        or url.query
        or url.fragment
        or url.username
        or not config.api_url.isprintable()
        or " " in config.api_url
    ):
        raise CliError(
            f"--api-url must be an http(s) URL with a host and no query or fragment, not "
            f"'{printable(config.api_url)}'."
        )
    if not _REGION.fullmatch(config.region):
        raise CliError(
            f"--region must be an AWS region such as us-east-1, not '{printable(config.region)}'."
        )
    for name, value in (("--user-pool-id", config.user_pool_id), ("--client-id", config.client_id)):
        if not value or not value.isprintable() or len(value) > 256:
            raise CliError(f"{name} must be a non-empty id, not '{printable(value)}'.")


def load_config(directory: Path) -> Config:
    data = _read_json(
        directory / CONFIG_FILE, missing="Not configured yet: run `bgagent configure`."
    )
    api_url = data.get("api_url")
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise CliError(
            f"{directory / CONFIG_FILE} has no valid api_url: run `bgagent configure` again."
        )
    return Config(
        api_url=api_url.rstrip("/"),
        region=str(data.get("region", "")),
        user_pool_id=str(data.get("user_pool_id", "")),
        client_id=str(data.get("client_id", "")),
    )


def load_credentials(directory: Path) -> Credentials:
    data = _read_json(
        directory / CREDENTIALS_FILE, missing="You are not logged in: run `bgagent login`."
    )
    id_token = data.get("id_token")
    if not isinstance(id_token, str) or not id_token:
        raise CliError("Your cached credentials hold no ID token: run `bgagent login`.")
    return Credentials(
        id_token=id_token,
        refresh_token=str(data.get("refresh_token", "")),
        token_expiry=str(data.get("token_expiry", "")),
    )


def save_config(directory: Path, config: Config) -> Path:
    return _write_json(directory / CONFIG_FILE, asdict(config), mode=0o644)


def save_credentials(directory: Path, credentials: Credentials) -> Path:
    return _write_json(directory / CREDENTIALS_FILE, asdict(credentials), mode=0o600)


MAX_SETTINGS_BYTES = 64 * 1024


def _read_json(path: Path, *, missing: str) -> dict[str, Any]:
    try:
        # Opened without blocking: a FIFO put there must not hang the command.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise CliError(missing) from None
    except OSError as err:
        raise CliError(f"Cannot read {printable(path)}: {err.strerror}.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a directory, a FIFO, a device
        os.close(fd)
        raise CliError(f"{printable(path)} is not a regular file; remove it.")
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(MAX_SETTINGS_BYTES + 1)
        except OSError as err:
            raise CliError(f"Cannot read {printable(path)}: {err.strerror}.") from None
    if len(raw) > MAX_SETTINGS_BYTES:
        raise CliError(f"{printable(path)} is too large to be a settings file; fix or remove it.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{printable(path)} is not UTF-8 text; fix or remove it.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CliError(f"{printable(path)} is not valid JSON; fix or remove it.") from None
    except RecursionError:
        raise CliError(f"{printable(path)} is nested too deeply; fix or remove it.") from None
    if not isinstance(data, dict):
        raise CliError(f"{printable(path)} must hold a JSON object; fix or remove it.")
    return data


def _write_json(path: Path, data: Mapping[str, Any], *, mode: int) -> Path:
    """Replace ``path`` atomically: a write that fails midway (a full disk during a token
    refresh) leaves the previous file as it was, and no temporary file behind."""
    text = json.dumps(data, indent=2) + "\n"
    # A settings file that is a symbolic link (a dotfiles manager's) keeps its link:
    # the file it points at is the one replaced.
    path = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        existing = path.stat()
    except OSError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        # Never replace a device, a pipe or a directory (or what a link points at).
        raise CliError(f"{printable(path)} is not a regular file; remove it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created with its final mode, so a token is never readable by others, even briefly.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".bgagent-", suffix=".tmp")
    except OSError as err:
        raise CliError(f"Cannot write {printable(path)}: {err.strerror}.") from None
    temporary = Path(name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise CliError(f"Cannot write {printable(path)}: {err.strerror}.") from None
    return path
