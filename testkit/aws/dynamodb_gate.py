"""The DynamoDB endpoint as the code under test sees it: a gate in front of moto that
authorizes every call as DynamoDB does.

Each call must be SigV4-signed (checked with botocore's own signer) by a known
identity whose policy (``testkit.aws.iam``) allows the call's action
(``dynamodb:<Operation>``, from ``X-Amz-Target``) on the table it names, or the
index of that table it queries. A denied call answers HTTP 400 with an
``AccessDeniedException``, as DynamoDB does. What passes goes to moto unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer

from testkit.aws import local_server
from testkit.aws.iam import Identities, StackArns
from testkit.aws.sigv4 import verify_request

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_ERROR_STATUS = {"InvalidAccessKeyId": "UnrecognizedClientException"}


class DynamoDbGate:
    def __init__(self, upstream: str, *, identities: Identities, region: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._identities = identities
        self._region = region
        self._server: BaseWSGIServer | None = None
        self.url = ""

    def start(self) -> str:
        self._server = local_server.serve(self)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        local_server.stop(self._server)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = local_server.read_request(environ)
        split, headers, lower, body = request.target, request.headers, request.lower, request.body
        verdict = verify_request(request, self._identities, region=self._region, service="dynamodb")
        if verdict.error:
            code = _ERROR_STATUS.get(verdict.error, verdict.error)
            return _error(start_response, code, f"The request was refused: {verdict.error}")
        assert verdict.identity is not None
        operation = lower.get("x-amz-target", "").rpartition(".")[2]
        action = f"dynamodb:{operation}"
        resource = self._resource(body)
        if not verdict.identity.allows(action, resource):
            return _error(
                start_response,
                "AccessDeniedException",
                f"User: {verdict.identity.name} is not authorized to perform: {action} "
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
        arn = StackArns("", table, self._region).table_arn(table)
        index = request.get("IndexName") if isinstance(request, dict) else None
        return f"{arn}/index/{index}" if index else arn


def _error(start_response: StartResponse, code: str, message: str) -> list[bytes]:
    body = json.dumps(
        {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message}
    ).encode()
    start_response(
        "400 Bad Request",
        [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))],
    )
    return [body]
