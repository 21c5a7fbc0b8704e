"""The local API Gateway turns the function's proxy result into HTTP as API Gateway
does, and answers one it cannot turn (malformed) with its own 502, over real HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from testkit.apigw.gateway import LocalApiGateway

INTERNAL_ERROR = (502, {"message": "Internal server error"})


@pytest.fixture
def answer() -> Iterator[Any]:
    """The gateway, in front of a function that answers whatever the test sets."""
    results: list[Any] = []
    gateway = LocalApiGateway(lambda event: results[-1])
    gateway.authorizer = SimpleNamespace(claims_for=lambda token: {"sub": "s"})  # type: ignore[assignment]
    gateway.start()

    def ask(result: Any) -> http.client.HTTPResponse:
        results.append(result)
        connection = http.client.HTTPConnection(gateway.url.split("/")[2], timeout=10)
        connection.request("GET", "/prod/tasks/t-1/trace", headers={"Authorization": "token"})
        return connection.getresponse()

    yield ask
    gateway.stop()


def said(response: http.client.HTTPResponse) -> tuple[int, Any]:
    return response.status, json.loads(response.read())


def test_a_proxy_result_becomes_its_status_headers_and_body(answer: Any) -> None:
    response = answer(
        {
            "statusCode": 403,
            "headers": {"Content-Type": "application/json", "X-Count": 2},
            "multiValueHeaders": {"X-Many": ["a", "b"]},
            "body": '{"error": "no"}',
        }
    )
    assert said(response) == (403, {"error": "no"})
    assert (response.getheader("X-Count"), response.getheader("X-Many")) == ("2", "a, b")


def test_a_base64_body_is_decoded_and_a_status_in_digits_is_read(answer: Any) -> None:
    response = answer({"statusCode": "201", "body": "aGk=", "isBase64Encoded": True})
    assert (response.status, response.read()) == (201, b"hi")
    assert answer({"statusCode": 202.0}).status == 202


def test_a_result_without_headers_or_body_is_an_empty_answer(answer: Any) -> None:
    response = answer({"statusCode": 204, "headers": None, "body": None})
    assert (response.status, response.read()) == (204, b"")


@pytest.mark.parametrize(
    "result",
    [
        "not an object",
        {"statusCode": 200, "body": {"url": "https://x"}},
        {"statusCode": 1, "body": ""},
        {"statusCode": 1000, "body": ""},
        {"statusCode": True, "body": ""},
        {"statusCode": 200.5, "body": ""},
        {"body": "no status"},
        {"statusCode": 200, "headers": ["X-A", "1"]},
        {"statusCode": 200, "headers": {"X-A": {"nested": 1}}},
        {"statusCode": 200, "multiValueHeaders": {"X-A": "not a list"}},
        {"statusCode": 200, "headers": {"X-A": "\u00e9t\u00e9 \u2713"}},
        {"statusCode": 200, "headers": {"Bad Name": "1"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
    ids=[
        "no-object",
        "dict-body",
        "status-1",
        "status-1000",
        "status-true",
        "status-fraction",
        "no-status",
        "headers-list",
        "header-object",
        "multi-value-not-list",
        "header-not-latin-1",
        "header-name-with-space",
        "bad-base64",
    ],
)
def test_a_malformed_proxy_result_is_api_gateways_502(answer: Any, result: Any) -> None:
    assert said(answer(result)) == INTERNAL_ERROR


@pytest.mark.parametrize("line_break", ["\r\n", "\n", "\r"])
def test_a_line_break_in_a_header_value_never_starts_a_header(answer: Any, line_break: str) -> None:
    response = answer(
        {"statusCode": 200, "headers": {"X-A": f"1{line_break}Set-Cookie: stolen=1"}, "body": ""}
    )
    assert said(response) == INTERNAL_ERROR
    assert response.getheader("Set-Cookie") is None
