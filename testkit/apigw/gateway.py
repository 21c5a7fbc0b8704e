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
Invoke = Callable[[dict[str, Any]], Mapping[str, Any]]

STAGE = "prod"
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
            result = self._invoke(event)
            return _http_from_result(result)
        except Exception:
            return _gateway_answer(502, "Internal server error")


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


def _http_from_result(result: Mapping[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    status = int(result["statusCode"])
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ", ".join(str(v) for v in values)
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    return status, list(headers.items()), payload


def _gateway_answer(status: int, message: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """An answer API Gateway gives itself, when the handler is never reached."""
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()
