"""The DynamoDB endpoint as the code under test sees it: a gate in front of moto that
authorizes every call as DynamoDB does.

Each call must be SigV4-signed (checked with botocore's own signer) by a known
role whose policy (``testkit.aws.auth``) allows the call's action
(``dynamodb:<Operation>``, from ``X-Amz-Target``) on the table it names, or the
index of that table it queries. A denied call answers HTTP 400 with an
``AccessDeniedException``, as DynamoDB does. What passes goes to moto unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from testkit.aws import local_server
from testkit.aws.auth import ResourceArns, Roles, verify_request

_ERROR_STATUS = {"InvalidAccessKeyId": "UnrecognizedClientException"}


class DynamoDbGate(local_server.LocalServer):
    def __init__(self, upstream: str, *, roles: Roles, region: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._roles = roles
        self._region = region

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        request = local_server.read_request(environ)
        split, headers, lower, body = request.target, request.headers, request.lower, request.body
        verdict = verify_request(request, self._roles, region=self._region, service="dynamodb")
        if verdict.error:
            code = _ERROR_STATUS.get(verdict.error, verdict.error)
            return _error(start_response, code, f"The request was refused: {verdict.error}")
        assert verdict.role is not None
        operation = lower.get("x-amz-target", "").rpartition(".")[2]
        action = f"dynamodb:{operation}"
        resource = self._resource(body)
        if not verdict.role.allows(action, resource):
            self._roles.refused(verdict.role, action, resource)
            return _error(
                start_response,
                "AccessDeniedException",
                f"User: {verdict.role.name} is not authorized to perform: {action} "
                f"on resource: {resource}",
            )
        upstream = local_server.Upstream(
            self._upstream, request.method, split.geturl(), headers, body
        )
        start_response(f"{upstream.status} {upstream.reason}", upstream.headers)
        return upstream.stream()

    def _resource(self, body: bytes) -> str:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        table = str(request.get("TableName", "")) if isinstance(request, dict) else ""
        arn = ResourceArns("", table, self._region).table_arn(table)
        index = request.get("IndexName") if isinstance(request, dict) else None
        return f"{arn}/index/{index}" if index else arn


def _error(start_response: local_server.StartResponse, code: str, message: str) -> list[bytes]:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    ).encode()
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]
