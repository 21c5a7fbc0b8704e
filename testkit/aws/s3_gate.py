"""The S3 endpoint as the code under test sees it: a gate in front of moto, as strict as S3
where moto is blind.

Every request must be signed with SigV4 by a known role (both kinds of signature
are recomputed with botocore's own signers, ``testkit.aws.auth``), within the clock
skew S3 allows, and presigned links within their lifetime (at most 7 days) on a
clock the test controls. SigV2 is refused. The
signer's policy (``testkit.aws.auth``, from the infrastructure's grants) must
allow the action on the resource; a GET or HEAD of a missing key answers 404 only
to a role allowed ``s3:ListBucket`` on the bucket, 403 otherwise. What
passes is forwarded to moto byte for byte (keys are literal). The gate can also
misbehave on purpose on presigned downloads (reset, short body, corrupt bytes,
error status, S3 asking to slow down, stall), every time or for the first few tries
only, so the suite can show that the CLI loses nothing, and present a stored object's
ETag and checksum as S3 does after a multipart upload or under SSE-KMS.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from testkit.aws import local_server
from testkit.aws.auth import PresignedRequest, Roles, is_sigv2, verify_presigned, verify_request

_LISTING_PARAMETERS = {
    "list-type", "prefix", "delimiter", "max-keys", "continuation-token", "start-after",
    "encoding-type", "fetch-owner", "marker",
}  # fmt: skip


class Fault(enum.Enum):
    """Ways a presigned download can go wrong on the wire."""

    RESET_MID_BODY = "reset mid-body"
    SHORT_BODY = "body shorter than its Content-Length"
    CORRUPT_BODY = "bytes that are not gzip"
    FLIPPED_BYTE = "one byte changed"
    FORBIDDEN = "403"
    SERVER_ERROR = "500"
    SLOW_DOWN = "503 SlowDown"
    STALL = "stall mid-body"
    TRICKLE = "a byte at a time, too slowly to finish"


class EtagStyle(enum.Enum):
    MD5 = "the MD5 of the object"
    KMS = "an opaque value, as under SSE-KMS"
    MULTIPART = "<hex>-<parts>, as after a multipart upload"


class ChecksumStyle(enum.Enum):
    WHOLE = "the SHA-256 of the whole object"
    COMPOSITE = "<base64>-<parts>, the SHA-256 of the parts' SHA-256s (a multipart upload)"


class S3Gate(local_server.LocalServer):
    """A WSGI app on 127.0.0.1 standing where S3's endpoint is."""

    def __init__(self, upstream: str | local_server.WsgiApp, *, roles: Roles, region: str) -> None:
        # moto's server (a URL), or moto's app in this process
        self._upstream = upstream.rstrip("/") if isinstance(upstream, str) else upstream
        self._roles = roles
        self._region = region
        self._released = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Back to an honest clock and a well-behaved wire."""
        self.clock_offset = timedelta(0)
        self.fault: Fault | None = None
        # How many presigned downloads the fault answers before the wire behaves again
        # (None: every one of them).
        self.fault_times: int | None = None
        self.faults_answered = 0
        self.deny_uploads = False
        # A stalled answer waits until the scenario ends (the next reset), so a download
        # that should give up or be interrupted can never complete instead.
        self._released.set()
        self._released = threading.Event()
        self.stalling = threading.Event()  # set once a stalled download is under way
        self.body_begun = threading.Event()  # set once a faulty answer's body has begun
        self.trickle_seconds = 5.0
        # What the ETag of a downloaded object looks like: an MD5 (single-part upload
        # under SSE-S3), or not (under SSE-KMS, or after a multipart upload).
        self.etag_style = EtagStyle.MD5
        # What a stored SHA-256 checksum looks like (HEAD or GET with the checksum mode):
        # the whole object's, or the composite S3 keeps for a multipart upload.
        self.checksum_style = ChecksumStyle.WHOLE
        self.presigned: list[PresignedRequest] = []

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def stop(self) -> None:
        self._released.set()
        super().stop()

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        request = local_server.read_request(environ)
        split, method, body = request.target, request.method, request.body
        headers, lower, raw_uri = request.headers, request.lower, request.target.geturl()
        presigned = "X-Amz-Signature=" in split.query or "X-Amz-Algorithm=" in split.query
        if is_sigv2(lower.get("authorization", ""), split.query):
            return _s3_error(start_response, "InvalidRequest", status="400 Bad Request")
        if presigned:
            seen = verify_presigned(request, self._roles, region=self._region, now=self.now())
            self.presigned.append(seen)
            if seen.verdict != "ok":
                return _s3_error(start_response, seen.verdict)
            role = seen.role
        else:
            # The test clock ages links; a header-signed call is checked at the real time.
            verdict = verify_request(request, self._roles, region=self._region, service="s3")
            if verdict.error:
                return _s3_error(start_response, verdict.error)
            role = verdict.role
        assert role is not None
        bucket, key = _bucket_and_key(split.path)
        action = _action(method, key, split.query)
        if not role.allows(action, _arn(bucket, key)):
            self._roles.refused(role, action, _arn(bucket, key))
            return _s3_error(start_response, "AccessDenied", message="Access Denied")
        if self.deny_uploads and method == "PUT":
            return _s3_error(start_response, "AccessDenied", message="Access Denied")
        if presigned and method == "GET" and self._faulty():
            return self._misbehave(environ, start_response, raw_uri, headers)
        upstream = local_server.forward(self._upstream, method, raw_uri, headers, body)
        if (
            upstream.status == 404
            and action == "s3:GetObject"
            and not role.allows("s3:ListBucket", _arn(bucket, ""))
        ):
            # S3 tells a caller that may not list the bucket nothing of which keys exist.
            upstream.close()
            self._roles.refused(
                role,
                "s3:ListBucket",
                _arn(bucket, ""),
                f"so S3 answered 403, not 404, to its {method} of a missing key",
            )
            if method == "HEAD":
                start_response("403 Forbidden", [("Content-Length", "0")])
                return []
            return _s3_error(start_response, "AccessDenied", message="Access Denied")
        start_response(
            f"{upstream.status} {upstream.reason}",
            self._checksum_as_styled(self._etag_as_styled(upstream.headers)),
        )
        if method == "HEAD":
            upstream.close()
            return []
        return upstream.stream()

    def _faulty(self) -> bool:
        """Whether this presigned download gets the fault (and counts it if so)."""
        if self.fault is None:
            return False
        if self.fault_times is not None and self.faults_answered >= self.fault_times:
            return False
        self.faults_answered += 1
        return True

    def _etag_as_styled(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        if self.etag_style is EtagStyle.MD5:
            return headers
        stored = next((v for n, v in headers if n.lower() == "etag"), "")
        opaque = hashlib.sha256(stored.encode()).hexdigest()[:32]
        etag = f'"{opaque}"' if self.etag_style is EtagStyle.KMS else f'"{opaque}-2"'
        return [(n, etag if n.lower() == "etag" else v) for n, v in headers]

    def _checksum_as_styled(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """A stored SHA-256 as S3 gives it after a multipart upload of two parts: a
        checksum of checksums, marked COMPOSITE. Simulated: the parts are not known here,
        so the value is derived from the whole object's (it is no checksum of its body)."""
        if self.checksum_style is ChecksumStyle.WHOLE:
            return headers
        styled = []
        for name, value in headers:
            if name.lower() == "x-amz-checksum-sha256":
                digest = hashlib.sha256(base64.b64decode(value)).digest()
                styled.append((name, f"{base64.b64encode(digest).decode()}-2"))
            elif name.lower() != "x-amz-checksum-type":
                styled.append((name, value))
        if any(name.lower() == "x-amz-checksum-sha256" for name, _ in headers):
            styled.append(("x-amz-checksum-type", "COMPOSITE"))
        return styled

    def _misbehave(
        self,
        environ: dict[str, Any],
        start_response: local_server.StartResponse,
        raw_uri: str,
        headers: dict[str, str],
    ) -> Iterable[bytes]:
        fault, stalling, released, begun = (
            self.fault,
            self.stalling,
            self._released,
            self.body_begun,
        )
        if fault is Fault.FORBIDDEN:  # refused, as S3 refuses a signer without the right
            return _s3_error(start_response, "AccessDenied", message="Access Denied")
        if fault is Fault.SERVER_ERROR:
            return _s3_error(start_response, "InternalError", status="500 Internal Server Error")
        if fault is Fault.SLOW_DOWN:
            return _s3_error(start_response, "SlowDown", status="503 Slow Down")
        original = local_server.forward(self._upstream, "GET", raw_uri, headers, b"")
        stored = original.read()  # the bytes as stored, never unpacked
        half = len(stored) // 2
        if fault is Fault.CORRUPT_BODY:  # a gzip header, then flipped bits
            stored = stored[:half] + bytes(byte ^ 0x5A for byte in stored[half:])
        if fault is Fault.FLIPPED_BYTE:
            stored = stored[:half] + bytes([stored[half] ^ 0x01]) + stored[half + 1 :]
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/gzip"),
                ("Content-Length", str(len(stored))),
                *self._checksum_as_styled(
                    self._etag_as_styled(
                        [
                            ("ETag", original.header("ETag")),
                            *[
                                (n, v)
                                for n, v in original.headers
                                if n.lower().startswith("x-amz-checksum-")
                            ],
                        ]
                    )
                ),
            ],
        )

        def body() -> Iterator[bytes]:
            yield stored[:half]
            begun.set()  # the first half is on the wire
            if fault is Fault.RESET_MID_BODY:
                _reset(environ)
                return
            if fault is Fault.SHORT_BODY:
                _close(environ)  # with Content-Length unmet
                return
            if fault is Fault.STALL:
                stalling.set()
                released.wait()
                _close(environ)
                return
            if fault is Fault.TRICKLE:  # never silent long enough for a read timeout
                deadline = time.monotonic() + self.trickle_seconds
                for index in range(half, len(stored)):
                    if time.monotonic() > deadline:
                        _close(environ)
                        return
                    yield stored[index : index + 1]
                    time.sleep(0.02)
                return
            yield stored[half:]

        return body()


def _bucket_and_key(raw_path: str) -> tuple[str, str]:
    """Path-style addressing: ``/<bucket>/<key>``, the key percent-decoded, never normalised."""
    bucket, _, key = raw_path.lstrip("/").partition("/")
    return unquote(bucket), unquote(key)


def _arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}" if key else f"arn:aws:s3:::{bucket}"


def _action(method: str, key: str, raw_query: str) -> str:
    """The IAM action S3 authorizes the request as (for the operations the layers use)."""
    if key:
        return {
            "GET": "s3:GetObject",
            "HEAD": "s3:GetObject",  # there is no separate HEAD action
            "PUT": "s3:PutObject",
            "DELETE": "s3:DeleteObject",
        }.get(method, f"s3:{method.title()}Object")
    parameters = {name for name, _ in parse_qsl(raw_query, keep_blank_values=True)}
    if method in ("GET", "HEAD") and parameters <= _LISTING_PARAMETERS:
        return "s3:ListBucket"
    return "s3:BucketConfiguration"  # no layer is granted anything of the kind


def _reset(environ: dict[str, Any]) -> None:
    """Abort the connection with a TCP RST, as a dropped connection looks to a client."""
    sock = local_server.connection_socket(environ)
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if environ.get(local_server.SOCKET_KEY) is sock:
        # A keep-alive server watches its connections: it closes this one itself once
        # the answer fails, and the close resets it.
        raise local_server.ConnectionDropped
    sock.close()


def _close(environ: dict[str, Any]) -> None:
    """End the answer by closing the connection (a server that keeps connections alive
    would otherwise wait for the client to take the next request)."""
    if environ.get(local_server.SOCKET_KEY) is not None:
        raise local_server.ConnectionDropped


_S3_MESSAGES = {
    "AccessDenied": "Request has expired",
    "InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
    "InvalidRequest": "The authorization mechanism you have provided is not supported. "
    "Please use AWS4-HMAC-SHA256.",
    "RequestNotYetValid": "Request is not yet valid",
    "RequestTimeTooSkewed": "The difference between the request time and the current time "
    "is too large.",
    "XAmzContentSHA256Mismatch": "The provided 'x-amz-content-sha256' header does not match "
    "what was computed.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match.",
    "AuthorizationQueryParametersError": "Query-string authentication needs valid X-Amz values.",
    "InternalError": "We encountered an internal error. Please try again.",
    "SlowDown": "Please reduce your request rate.",
}


def _s3_error(
    start_response: local_server.StartResponse,
    code: str,
    *,
    status: str = "403 Forbidden",
    message: str | None = None,
) -> list[bytes]:
    text = message or _S3_MESSAGES.get(code, code)
    code = "AccessDenied" if code == "RequestNotYetValid" else code  # as S3 names it
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{text}</Message></Error>"
    ).encode()
    start_response(
        status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    )
    return [body]
