"""The gates' state, changed from the test process: the gates run in moto's process
(``testkit.aws.moto_server``), and the steps set their faults, clocks and roles from
the test process, through a small JSON API on a port of its own.

Every change is a request the gates' process acknowledges once it holds: when a setter
returns, the next call any layer makes meets it. A change the process refuses or never
answers raises ``ControlFailed``; nothing is retried, so nothing is applied twice.

- ``GateControl``: the API, a WSGI app beside the gates it changes.
- ``S3GateHandle``, ``RolesHandle``: what the steps hold in the test process.
"""

from __future__ import annotations

import hmac
import http.client
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from testkit.aws import local_server
from testkit.aws.auth import Role, Roles, Statement
from testkit.aws.s3_gate import ChecksumStyle, EtagStyle, Fault, S3Gate

T = TypeVar("T")
# How long a wait for one of the S3 gate's events may be asked to last.
MAX_WAIT_SECONDS = 120.0
_EVENTS = ("stalling", "body_begun")
_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "fault": lambda name: None if name is None else Fault[name],
    "fault_times": lambda times: None if times is None else int(times),
    "deny_uploads": bool,
    "etag_style": lambda name: EtagStyle[name],
    "checksum_style": lambda name: ChecksumStyle[name],
    "clock_offset": lambda seconds: timedelta(seconds=float(seconds)),
    "trickle_seconds": float,
}


class ControlFailed(RuntimeError):
    """The gates' process did not acknowledge a change."""


# --- in the gates' process ----------------------------------------------------------


class GateControl:
    """The API that changes the S3 gate and the roles both gates authorize against.
    Every path starts with ``token``, a secret of the session that launched the process:
    no other program on this machine (a layer under judgement among them) changes
    the gates by chance."""

    def __init__(self, s3: S3Gate, roles: Roles, *, token: str) -> None:
        self._s3 = s3
        self._roles = roles
        self._prefix = f"/{token}/"

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        request = local_server.read_request(environ)
        path = request.target.path
        if not hmac.compare_digest(path[: len(self._prefix)], self._prefix):
            return _json(start_response, "404 Not Found", {"error": "no such control"})
        try:
            body = json.loads(request.body) if request.body else None
            answer = self._answer(
                request.method, path[len(self._prefix) - 1 :], request.target.query, body
            )
        except (ValueError, KeyError, TypeError) as wrong:
            return _json(start_response, "400 Bad Request", {"error": repr(wrong)})
        if answer is _NOT_FOUND:
            return _json(start_response, "404 Not Found", {"error": request.target.path})
        return _json(start_response, "200 OK", answer)

    def _answer(self, method: str, path: str, query: str, body: Any) -> Any:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["scenario"]:
                self._s3.reset()
                self._roles.refusals.clear()
                return None
            case "POST", ["roles"]:
                self._roles.add(_role(body))
                return None
            case "PUT", ["roles", key_id, "statements"]:
                role = self._roles.by_access_key(key_id)
                if role is None:
                    raise KeyError(key_id)
                role.statements = [_statement(s) for s in body]
                return None
            case "GET", ["refusals"]:
                return list(self._roles.refusals)
            case "PATCH", ["s3"]:
                changes = {name: _SETTINGS[name](value) for name, value in body.items()}
                for name, value in changes.items():
                    setattr(self._s3, name, value)
                return None
            case "GET", ["s3", "presigned"]:
                return [_seen_as_json(seen) for seen in self._s3.presigned]
            case "GET", ["s3", event] if event in _EVENTS:
                wait = float(parse_qs(query).get("wait", ["0"])[0])
                happened: threading.Event = getattr(self._s3, event)
                return happened.wait(min(max(wait, 0.0), MAX_WAIT_SECONDS))
        return _NOT_FOUND


_NOT_FOUND = object()


def _json(start_response: local_server.StartResponse, status: str, value: Any) -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _role(fields: dict[str, Any]) -> Role:
    return Role(
        str(fields["name"]),
        str(fields["access_key_id"]),
        str(fields["secret_access_key"]),
        [_statement(s) for s in fields["statements"]],
    )


def _statement(fields: list[list[str]]) -> Statement:
    actions, resources = fields
    return Statement(tuple(map(str, actions)), tuple(map(str, resources)))


def _seen_as_json(seen: Any) -> dict[str, Any]:
    return {
        "algorithm": seen.algorithm,
        "signed_at": seen.signed_at.timestamp(),
        "expires_seconds": seen.expires_seconds,
        "verdict": seen.verdict,
        "role": seen.role.name if seen.role is not None else None,
        "signature": seen.signature,
    }


# --- in the test process -------------------------------------------------------------


class _Client:
    def __init__(self, url: str) -> None:
        target = urlsplit(url)
        self._netloc = target.netloc
        self._prefix = target.path.rstrip("/")  # the session's token

    def call(self, method: str, path: str, value: Any = None, *, seconds: float = 60) -> Any:
        """One request, answered before this returns; its answer's JSON."""
        connection = http.client.HTTPConnection(self._netloc, timeout=seconds)
        try:
            body = None if value is None else json.dumps(value).encode()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            connection.request(method, self._prefix + path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
        except OSError as lost:
            raise ControlFailed(
                f"the gates' process did not answer {method} {path}: {lost}"
            ) from None
        finally:
            connection.close()
        if response.status != 200:
            said = answer.decode("utf-8", "replace")[:300]
            raise ControlFailed(f"the gates' process refused {method} {path}: {said}")
        return json.loads(answer)


@dataclass(frozen=True)
class SeenLink:
    """What the S3 gate saw of one presigned request."""

    algorithm: str
    signed_at: datetime
    expires_seconds: int
    verdict: str  # "ok" or the S3 error code it answered
    role: str | None  # the name of the role that signed it
    signature: str  # a secret: whoever holds the link may fetch the trace


class GateEvent:
    """One of the S3 gate's events (a stall begun, a faulty body begun), read where it
    happens: a wait returns as soon as the gate sets it."""

    def __init__(self, client: _Client, name: str) -> None:
        self._client = client
        self._name = name

    def wait(self, timeout: float | None = None) -> bool:
        seconds = MAX_WAIT_SECONDS if timeout is None else min(timeout, MAX_WAIT_SECONDS)
        return bool(
            self._client.call("GET", f"/s3/{self._name}?wait={seconds}", seconds=seconds + 10)
        )

    def is_set(self) -> bool:
        return self.wait(0)


class _Setting(Generic[T]):
    """One of the S3 gate's settings, as its handle holds it: set in the gates' process
    before the assignment returns; read as this handle last set it, or as a reset
    leaves it (``default``)."""

    def __init__(self, default: T, wire: Callable[[T], Any]) -> None:
        self._default = default
        self._wire = wire
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, handle: Any, owner: type) -> T:
        return cast(T, handle._settings.get(self._name, self._default))

    def __set__(self, handle: Any, value: T) -> None:
        handle._client.call("PATCH", "/s3", {self._name: self._wire(value)})
        handle._settings[self._name] = value


class S3GateHandle:
    """The S3 gate as the steps change it: each setting is applied in the gates'
    process before the assignment returns; ``reset`` puts every one back."""

    def __init__(self, control_url: str, url: str) -> None:
        self._client = _Client(control_url)
        self.url = url
        self.stalling = GateEvent(self._client, "stalling")
        self.body_begun = GateEvent(self._client, "body_begun")
        self._settings: dict[str, Any] = {}  # what this handle set since the last reset

    def reset(self) -> None:
        self._client.call("POST", "/scenario")
        self._settings.clear()

    fault = _Setting[Fault | None](None, lambda fault: None if fault is None else fault.name)
    # How many presigned downloads the fault answers (None: every one of them).
    fault_times = _Setting[int | None](None, lambda times: times)
    deny_uploads = _Setting[bool](False, bool)
    etag_style = _Setting[EtagStyle](EtagStyle.MD5, lambda style: style.name)
    checksum_style = _Setting[ChecksumStyle](ChecksumStyle.WHOLE, lambda style: style.name)
    clock_offset = _Setting[timedelta](timedelta(0), lambda offset: offset.total_seconds())
    trickle_seconds = _Setting[float](5.0, float)

    @property
    def presigned(self) -> list[SeenLink]:
        """Every presigned request the gate saw since the scenario began."""
        return [
            SeenLink(
                seen["algorithm"],
                datetime.fromtimestamp(seen["signed_at"], UTC),
                seen["expires_seconds"],
                seen["verdict"],
                seen["role"],
                seen["signature"],
            )
            for seen in self._client.call("GET", "/s3/presigned")
        ]


class RolesHandle:
    """The stack's roles: made here (their secrets never leave the suite's processes),
    held by the gates' process, which authorizes every call against them."""

    def __init__(self, control_url: str) -> None:
        self._client = _Client(control_url)

    def create(self, name: str, statements: list[Statement]) -> Role:
        return self.add(Roles.new_role(name, statements))

    def add(self, role: Role) -> Role:
        """A role made with ``Roles.new_role``, known to the gates from now on."""
        self._client.call(
            "POST",
            "/roles",
            {
                "name": role.name,
                "access_key_id": role.access_key_id,
                "secret_access_key": role.secret_access_key,
                "statements": _statements_as_json(role.statements),
            },
        )
        return role

    def revoke(self, role: Role, action: str) -> Callable[[], None]:
        """Take ``action`` out of every statement of the role; returns the undo."""
        before = list(role.statements)
        self._replace(role, Roles.without(before, action))

        def restore() -> None:
            self._replace(role, before)

        return restore

    def _replace(self, role: Role, statements: list[Statement]) -> None:
        path = f"/roles/{role.access_key_id}/statements"
        self._client.call("PUT", path, _statements_as_json(statements))
        role.statements = statements

    def refusals(self) -> list[str]:
        """What IAM refused since the scenario began."""
        return [str(refusal) for refusal in self._client.call("GET", "/refusals")]


def _statements_as_json(statements: list[Statement]) -> list[list[list[str]]]:
    return [[list(s.actions), list(s.resources)] for s in statements]
