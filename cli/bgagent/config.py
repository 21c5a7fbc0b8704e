"""The CLI's settings and cached credentials (``BGAGENT_CONFIG_DIR``, else ``~/.bgagent``)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bgagent.errors import CliError

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
    return Path(configured) if configured else Path.home() / ".bgagent"


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


def _read_json(path: Path, *, missing: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CliError(missing) from None
    except OSError as err:
        raise CliError(f"Cannot read {path}: {err.strerror}.") from None
    except UnicodeDecodeError:
        raise CliError(f"{path} is not UTF-8 text; fix or remove it.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CliError(f"{path} is not valid JSON; fix or remove it.") from None
    except RecursionError:
        raise CliError(f"{path} is nested too deeply; fix or remove it.") from None
    if not isinstance(data, dict):
        raise CliError(f"{path} must hold a JSON object; fix or remove it.")
    return data


def _write_json(path: Path, data: Mapping[str, Any], *, mode: int) -> Path:
    """Replace ``path`` atomically: a write that fails midway (a full disk during a token
    refresh) leaves the previous file as it was, and no temporary file behind."""
    text = json.dumps(data, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created with its final mode, so a token is never readable by others, even briefly.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=".bgagent-", suffix=".tmp")
    except OSError as err:
        raise CliError(f"Cannot write {path}: {err.strerror}.") from None
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
        raise CliError(f"Cannot write {path}: {err.strerror}.") from None
    return path
