"""The REST API as the CLI sees it: authenticated calls and the error envelope."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from bgagent.config import Config, Credentials
from bgagent.deadline import Expired, within
from bgagent.download import keep_headers
from bgagent.errors import CliError, printable

API_TIMEOUT_SECONDS = 30
MAX_API_BODY_BYTES = 1024 * 1024  # an answer of the trace API is a few hundred bytes


class ApiError(CliError):
    """The API answered with an error."""

    def __init__(
        self, status: int, code: str | None, message: str, request_id: str | None = None
    ) -> None:
        self.status = status
        self.code = code
        details = [code] if code else []
        if status >= 500 and request_id:  # lets the user's report find the server's log
            details.append(f"request id {request_id}")
        text = f"{message} ({', '.join(details)})" if details else message
        if status == 401:
            text += " Your session may have expired: run `bgagent login` to sign in again."
        super().__init__(text)


@dataclass(frozen=True)
class TraceLink:
    url: str
    expires_at: str
    # The stored artifact's SHA-256 (base64), as S3 keeps it with the object; None when
    # the API gave none, or gave S3's composite checksum of a multipart upload, which
    # no whole body can be checked against.
    checksum_sha256: str | None = None


class ApiClient:
    def __init__(self, config: Config, credentials: Credentials, session: requests.Session) -> None:
        self._config = config
        self._credentials = credentials
        self._session = session

    def get_trace_link(self, task_id: str) -> TraceLink:
        data = self._get(f"/tasks/{quote(task_id, safe='')}/trace")
        url = data.get("url") if isinstance(data, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise CliError("The API answered without a trace link; please report this.")
        return TraceLink(
            url=url,
            expires_at=str(data.get("expires_at", "")),
            checksum_sha256=_whole_body_sha256(data.get("checksum_sha256")),
        )

    def _get(self, path: str) -> Any:
        url = self._config.api_url + path
        token = self._credentials.id_token
        if not token.isascii() or not token.isprintable():
            raise CliError("Your cached credentials are damaged: run `bgagent login`.")

        def fetch() -> tuple[int, Any]:
            response = self._session.get(
                url,
                headers={"Authorization": token},
                timeout=API_TIMEOUT_SECONDS,
                auth=keep_headers,  # never credentials from ~/.netrc in their place
                stream=True,
            )
            return response.status_code, _json_or_none(response)

        try:
            # The whole call, body included, is bounded, however slowly the server answers.
            status, body = within(API_TIMEOUT_SECONDS, fetch)
        except (Expired, requests.Timeout):
            raise CliError(
                f"The API at {printable(self._config.api_url)} did not answer in time."
            ) from None
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            ValueError,
            OSError,  # e.g. a CA bundle that cannot be read
        ) as err:
            raise CliError(
                f"Could not reach the API at {printable(self._config.api_url)} "
                f"({type(err).__name__})."
            ) from None
        if status != 200:
            raise _api_error(status, body, token)
        if not isinstance(body, dict) or "data" not in body:
            raise CliError("The API answered HTTP 200 without data; please report this.")
        return body["data"]


# S3's checksum of a multipart upload: the SHA-256 of the parts' SHA-256s, then how
# many parts there were (1 to 10,000).
_COMPOSITE_SHA256 = re.compile(r"([A-Za-z0-9+/]{43}=)-([1-9][0-9]{0,3}|10000)")


def _whole_body_sha256(value: object) -> str | None:
    """The artifact's SHA-256 as the API reported it, if it is one the whole body can be
    checked against: None when there is none, or when it is S3's composite checksum (the
    download is then proven whole by its gzip stream, as without a checksum). Anything
    else is refused: a checksum that cannot be read must not silently turn into none."""
    if value is None:
        return None
    if isinstance(value, str):
        composite = _COMPOSITE_SHA256.fullmatch(value)
        if composite and _is_sha256(composite.group(1)):
            return None
        if _is_sha256(value):
            return value
    raise CliError("The API answered with a malformed checksum; please report this.")


def _is_sha256(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == 32
    except ValueError:
        return False


def _json_or_none(response: requests.Response) -> Any:
    """The body as JSON, read up to MAX_API_BODY_BYTES; None if it is not JSON."""
    try:
        body = response.raw.read(MAX_API_BODY_BYTES + 1, decode_content=True)
    except (urllib3.exceptions.HTTPError, OSError):
        return None
    finally:
        response.close()
    if len(body) > MAX_API_BODY_BYTES:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _api_error(status: int, body: Any, token: str) -> ApiError:
    def shown(value: object) -> str:
        # What a server says is shown as text only, and never with the caller's token.
        return printable(str(value).replace(token, "[token]"))

    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str) and error["message"]:
            return ApiError(
                status,
                shown(error.get("code") or "") or None,
                shown(error["message"]),
                shown(error.get("request_id") or "") or None,
            )
        if (
            isinstance(body.get("message"), str) and body["message"]
        ):  # API Gateway's own answers: {"message": "Unauthorized"}
            return ApiError(status, None, f"{shown(body['message'])} (HTTP {status})")
    return ApiError(status, None, f"The API request failed with HTTP {status}.")
