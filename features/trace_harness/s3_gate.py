"""The S3 endpoint as the code under test sees it: a gate in front of moto.

moto serves presigned URLs even when expired or tampered with. The gate
recomputes the SigV4 query signature of every presigned request for the test
credentials, and checks ``X-Amz-Date`` + ``X-Amz-Expires`` against a clock the
test controls, answering 403 as S3 does. Everything else is forwarded to moto
unchanged. It can also misbehave on purpose on presigned downloads (reset,
short body, corrupt bytes, error status, stall) so the suite can show that the
CLI loses nothing.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import socket
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

import requests
from werkzeug.serving import BaseWSGIServer

from trace_harness import serving

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
_HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "te", "trailer", "upgrade"}


class Fault(enum.Enum):
    """Ways a presigned download can go wrong on the wire."""

    RESET_MID_BODY = "reset mid-body"
    SHORT_BODY = "body shorter than its Content-Length"
    CORRUPT_BODY = "bytes that are not gzip"
    FORBIDDEN = "403"
    SERVER_ERROR = "500"
    STALL = "stall mid-body"
    TRICKLE = "a byte at a time, too slowly to finish"


@dataclass(frozen=True)
class PresignedRequest:
    """What the gate saw of one presigned request, for the suite to check."""

    algorithm: str
    signed_at: datetime
    expires_seconds: int
    verdict: str  # "ok" or the S3 error code it answered


class SigV4QueryVerifier:
    """Checks a query-string-signed S3 request as S3 would, for one secret key."""

    def __init__(self, secret_key: str, region: str) -> None:
        self._secret = secret_key
        self._region = region

    def verify(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], now: datetime
    ) -> PresignedRequest:
        params = parse_qsl(raw_query, keep_blank_values=True)
        query = dict(params)
        algorithm = query.get("X-Amz-Algorithm", "")
        try:
            signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            expires = int(query["X-Amz-Expires"])
            credential = query["X-Amz-Credential"]
            signed_headers = query["X-Amz-SignedHeaders"]
            signature = query["X-Amz-Signature"]
        except (KeyError, ValueError):
            return PresignedRequest(algorithm, now, 0, "AuthorizationQueryParametersError")

        def seen(verdict: str) -> PresignedRequest:
            return PresignedRequest(algorithm, signed_at, expires, verdict)

        if algorithm != ALGORITHM or not 1 <= expires <= MAX_EXPIRES_SECONDS:
            return seen("AuthorizationQueryParametersError")
        _, date, region, service, terminal = (credential.split("/") + [""] * 5)[:5]
        if (region, service, terminal) != (self._region, "s3", "aws4_request"):
            return seen("AuthorizationQueryParametersError")

        canonical_query = "&".join(
            f"{_uri_encode(k)}={_uri_encode(v)}"
            for k, v in sorted(params)
            if k != "X-Amz-Signature"
        )
        names = signed_headers.split(";")
        canonical_headers = "".join(
            f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names
        )
        canonical_request = "\n".join(
            [
                method,
                raw_path,
                canonical_query,
                canonical_headers,
                signed_headers,
                "UNSIGNED-PAYLOAD",
            ]
        )
        scope = f"{date}/{region}/{service}/aws4_request"
        string_to_sign = "\n".join(
            [
                ALGORITHM,
                query["X-Amz-Date"],
                scope,
                hashlib.sha256(canonical_request.encode()).hexdigest(),
            ]
        )
        key = f"AWS4{self._secret}".encode()
        for part in (date, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return seen("SignatureDoesNotMatch")
        if now > signed_at + timedelta(seconds=expires):
            return seen("AccessDenied")  # S3: "Request has expired"
        return seen("ok")


def _uri_encode(value: str) -> str:
    return quote(value, safe="-_.~")


class S3Gate:
    """A WSGI app on 127.0.0.1 standing where S3's endpoint is."""

    def __init__(self, upstream: str, *, secret_key: str, region: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._verifier = SigV4QueryVerifier(secret_key, region)
        self._session = requests.Session()
        self._server: BaseWSGIServer | None = None
        self.url = ""
        self.reset()

    def reset(self) -> None:
        """Back to an honest clock and a well-behaved wire."""
        self.clock_offset = timedelta(0)
        self.fault: Fault | None = None
        self.deny_uploads = False
        self.stall_seconds = 5.0
        self.presigned: list[PresignedRequest] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def start(self) -> str:
        self._server = serving.serve(self)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        return self.url

    def stop(self) -> None:
        serving.stop(self._server)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        split = serving.request_target(environ)
        raw_uri = split.geturl()
        method = environ["REQUEST_METHOD"]
        headers = serving.request_headers(environ)
        if "X-Amz-Signature=" in split.query or "X-Amz-Algorithm=" in split.query:
            seen = self._verifier.verify(
                method,
                split.path,
                split.query,
                {k.lower(): v for k, v in headers.items()},
                self.now(),
            )
            self.presigned.append(seen)
            if seen.verdict != "ok":
                return _s3_error(start_response, seen.verdict)
            if self.fault is not None and method == "GET":
                return self._misbehave(environ, start_response, raw_uri, headers)
        elif self.deny_uploads and method == "PUT":
            return _s3_error(start_response, "AccessDenied", message="Access Denied")
        return self._forward(environ, start_response, method, raw_uri, headers)

    def _forward(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        method: str,
        raw_uri: str,
        headers: dict[str, str],
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        upstream = self._upstream_request(method, raw_uri, headers, body)
        start_response(
            f"{upstream.status_code} {upstream.reason}",
            [(k, v) for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP],
        )
        if method == "HEAD":
            upstream.close()
            return []
        return _closing(upstream.raw.stream(64 * 1024, decode_content=False), upstream)

    def _upstream_request(
        self, method: str, raw_uri: str, headers: dict[str, str], body: bytes | None = None
    ) -> requests.Response:
        """The same request, sent on to moto; the body is streamed back undecoded."""
        return self._session.request(
            method,
            self._upstream + raw_uri,
            headers={k: v for k, v in headers.items() if k.lower() != "host"},
            data=body,
            stream=True,
            allow_redirects=False,
        )

    def _misbehave(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        raw_uri: str,
        headers: dict[str, str],
    ) -> Iterable[bytes]:
        fault = self.fault
        if fault is Fault.FORBIDDEN:
            return _s3_error(start_response, "AccessDenied")
        if fault is Fault.SERVER_ERROR:
            return _s3_error(start_response, "InternalError", status="500 Internal Server Error")
        original = self._upstream_request("GET", raw_uri, headers)
        stored = original.raw.read(decode_content=False)  # the bytes as stored, never unpacked
        half = len(stored) // 2
        if fault is Fault.CORRUPT_BODY:  # a gzip header, then flipped bits
            stored = stored[:half] + bytes(byte ^ 0x5A for byte in stored[half:])
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/gzip"),
                ("Content-Length", str(len(stored))),
                ("ETag", original.headers.get("ETag", "")),
            ],
        )

        def body() -> Iterator[bytes]:
            yield stored[:half]
            if fault is Fault.RESET_MID_BODY:
                _reset(environ)
                return
            if fault is Fault.SHORT_BODY:
                return  # the connection closes with Content-Length unmet
            if fault is Fault.STALL:
                time.sleep(self.stall_seconds)
            if fault is Fault.TRICKLE:  # never silent long enough for a read timeout
                deadline = time.monotonic() + self.stall_seconds
                for index in range(half, len(stored)):
                    if time.monotonic() > deadline:
                        return
                    yield stored[index : index + 1]
                    time.sleep(0.02)
                return
            yield stored[half:]

        return body()


def _closing(chunks: Iterator[bytes], response: requests.Response) -> Iterator[bytes]:
    try:
        yield from chunks
    finally:
        response.close()


def _reset(environ: dict[str, Any]) -> None:
    """Abort the connection with a TCP RST, as a dropped connection looks to a client."""
    sock: socket.socket | None = environ.get("werkzeug.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


_S3_MESSAGES = {
    "AccessDenied": "Request has expired",
    "SignatureDoesNotMatch": "The request signature we calculated does not match.",
    "AuthorizationQueryParametersError": "Query-string authentication needs valid X-Amz values.",
    "InternalError": "We encountered an internal error. Please try again.",
}


def _s3_error(
    start_response: StartResponse,
    code: str,
    *,
    status: str = "403 Forbidden",
    message: str | None = None,
) -> list[bytes]:
    text = message or _S3_MESSAGES.get(code, code)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
    ).encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]
