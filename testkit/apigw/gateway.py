"""A local stand-in for API Gateway (REST v1) with a Cognito user pool authorizer.

HTTP request in; the ID token verified as the authorizer does (``authorizer``); a REST v1 proxy
event carrying the caller's claims handed to the function (the real handler, in
a local Lambda of its own); its proxy result turned back into HTTP. Served by
werkzeug on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from testkit.apigw.authorizer import CognitoAuthorizer, Unauthorized
from testkit.aws import local_server

# Invokes the function with a proxy event and returns its proxy result; raises when the
# function fails (API Gateway then answers 502).
Invoke = Callable[[dict[str, Any]], Any]

STAGE = "prod"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")  # Latin-1, no control but a tab
_ROUTES = (("GET", "/tasks/{task_id}/trace", re.compile(r"^/tasks/(?P<task_id>[^/]+)/trace$")),)
_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class LocalApiGateway(local_server.LocalServer):
    """Routes ``/<stage>/tasks/{task_id}/trace`` to the handler, behind the authorizer."""

    path = f"/{STAGE}"

    def __init__(self, invoke: Invoke) -> None:
        self._invoke = invoke
        self.authorizer: CognitoAuthorizer | None = None

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        status, headers, body = self._answer(environ)
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Status')}", headers)
        return [body]

    def _answer(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        target = local_server.request_target(environ)
        raw_path, query = target.path, target.query
        stage_prefix = f"/{STAGE}"
        route = None
        if raw_path.startswith(stage_prefix + "/"):
            route = _match(environ["REQUEST_METHOD"], raw_path[len(stage_prefix) :])
        if route is None:
            return _gateway_answer(403, "Missing Authentication Token")
        resource, path, path_parameters = route

        if self.authorizer is None:
            return _gateway_answer(401, "Unauthorized")
        try:
            claims = self.authorizer.claims_for(environ.get("HTTP_AUTHORIZATION", ""))
        except Unauthorized as refused:
            return _gateway_answer(401, str(refused))

        event = _proxy_event(environ, resource, path, path_parameters, query, claims)
        try:
            return _http_from_result(self._invoke(event))
        except Exception:  # the function failed, or answered no proxy result
            return _gateway_answer(502, "Internal server error")


def proxy_event(method: str, raw_path: str, claims: dict[str, str]) -> dict[str, Any]:
    """The event the gateway hands the function for a request it has authorized, with
    these claims: for a request of the harness's own (``raw_path`` without the stage)."""
    route = _match(method, raw_path)
    if route is None:
        raise ValueError(f"no route for {method} {raw_path}")
    environ = {"REQUEST_METHOD": method, "HTTP_HOST": "127.0.0.1"}
    return _proxy_event(environ, *route, "", claims)


def _match(method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
    for route_method, resource, pattern in _ROUTES:
        found = pattern.match(path)
        if found and method == route_method:
            # API Gateway hands path parameters to the handler URL-decoded.
            return resource, unquote(path), {k: unquote(v) for k, v in found.groupdict().items()}
    return None


def _proxy_event(
    environ: Mapping[str, Any],
    resource: str,
    path: str,
    path_parameters: dict[str, str],
    query: str,
    claims: dict[str, str],
) -> dict[str, Any]:
    headers = local_server.request_headers(dict(environ))
    query_values = parse_qs(query, keep_blank_values=True)
    now = datetime.now(UTC)
    return {
        "resource": resource,
        "path": path,
        "httpMethod": environ["REQUEST_METHOD"],
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in query_values.items()} or None,
        "multiValueQueryStringParameters": query_values or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": environ["REQUEST_METHOD"],
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "identity": {"sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1")},
            "authorizer": {"claims": claims},
        },
    }


class MalformedResult(Exception):
    """The function's answer is no proxy result API Gateway can turn into HTTP."""


def _http_from_result(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The HTTP answer of a proxy result; MalformedResult where API Gateway answers 502
    ("Malformed Lambda proxy response"): no object, a status outside 100-599, a body
    that is no string, headers that are no object of scalar values, a value that is no
    Latin-1 or holds a line break (it would start a header of its own), or a body
    marked base64 that is not."""
    if not isinstance(result, Mapping):
        raise MalformedResult("the result is no object")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isascii() and status.isdigit():
        status = int(status)
    if isinstance(status, float) and status.is_integer():
        status = int(status)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedResult(f"statusCode {status!r}")
    headers = {name: _header(value) for name, value in _object(result, "headers").items()}
    for name, values in _object(result, "multiValueHeaders").items():
        if not isinstance(values, list):
            raise MalformedResult(f"multiValueHeaders {name!r} is no list")
        headers[name] = ", ".join(_header(value) for value in values)
    if not all(_TOKEN.fullmatch(name) for name in headers):
        raise MalformedResult(f"a header name among {list(headers)!r}")
    body = result.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise MalformedResult(f"a body of type {type(body).__name__}")
    try:
        payload = base64.b64decode(body, validate=True) if result.get("isBase64Encoded") else None
    except ValueError:
        raise MalformedResult("a body marked base64 that is not") from None
    return status, list(headers.items()), body.encode() if payload is None else payload


def _object(result: Mapping[str, Any], field: str) -> Mapping[str, Any]:
    value = result.get(field)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(name, str) for name in value):
        raise MalformedResult(f"{field} is no object")
    return value


def _header(value: object) -> str:
    text = str(value)
    if isinstance(value, (dict, list)) or value is None or not _FIELD_VALUE.fullmatch(text):
        raise MalformedResult(f"a header value {value!r}")
    return text


def _gateway_answer(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An answer API Gateway gives itself, when the handler is never reached."""
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()
