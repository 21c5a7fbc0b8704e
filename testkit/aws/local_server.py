"""Serving a WSGI app on 127.0.0.1 from a thread (moto, the gates, the API Gateway, a
Lambda Runtime API), and reading and forwarding the requests it receives."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import SplitResult, urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class LocalServer:
    """A WSGI app of the local stack, served on 127.0.0.1 once started: ``url`` says
    where (ending with ``path``)."""

    path = ""
    url = ""
    _server: BaseWSGIServer | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        raise NotImplementedError

    def start(self) -> str:
        self._server = serve(self)
        self.url = f"http://127.0.0.1:{self._server.server_port}{self.path}"
        return self.url

    def stop(self) -> None:
        stop(self._server)


def serve(app: Any, *, request_handler: type[WSGIRequestHandler] | None = None) -> BaseWSGIServer:
    """Start serving ``app`` on a free port of 127.0.0.1; ``server.server_port`` tells which."""
    # No access log: it would print presigned URLs, signatures included.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=request_handler)
    if isinstance(server, ThreadingMixIn):
        server.daemon_threads = True  # a stalled answer must not hold up the shutdown
    # A short poll interval: shutdown() otherwise waits up to half a second.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def stop(server: BaseWSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def request_target(environ: dict[str, Any]) -> SplitResult:
    """The request's path and query exactly as sent: werkzeug's PATH_INFO is already
    decoded, which would turn a task id's %2F into a path separator."""
    return urlsplit(environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ["PATH_INFO"])


def request_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").title(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").title()] = str(environ[key])
    return headers


@dataclass(frozen=True)
class Request:
    """One request as a gate received it: the target exactly as sent, the headers
    (``lower`` keyed by lower-case name), the whole body."""

    method: str
    target: SplitResult
    headers: dict[str, str]
    lower: dict[str, str]
    body: bytes


def read_request(environ: dict[str, Any]) -> Request:
    headers = request_headers(environ)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return Request(
        environ["REQUEST_METHOD"],
        request_target(environ),
        headers,
        {name.lower(): value for name, value in headers.items()},
        environ["wsgi.input"].read(length) if length else b"",
    )


class Upstream:
    """One request forwarded to a server behind a gate, exactly as it arrived: the path
    and query byte for byte (an HTTP library would remove ``.``/``..`` segments and
    reach another S3 key than the one signed), the body streamed back undecoded."""

    def __init__(
        self, base_url: str, method: str, raw_uri: str, headers: dict[str, str], body: bytes
    ) -> None:
        target = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(target.netloc, timeout=60)
        self._connection.putrequest(method, raw_uri, skip_accept_encoding=True)
        for name, value in headers.items():
            if name.lower() not in ("host", "content-length", *HOP_BY_HOP):
                self._connection.putheader(name, value)
        if body or method in ("PUT", "POST"):
            self._connection.putheader("Content-Length", str(len(body)))
        self._connection.endheaders(body or None)
        self._response = self._connection.getresponse()
        self.status = self._response.status
        self.reason = self._response.reason
        self.headers = [
            (name, value)
            for name, value in self._response.getheaders()
            if name.lower() not in HOP_BY_HOP
        ]

    def header(self, name: str) -> str:
        return self._response.getheader(name) or ""

    def read(self) -> bytes:
        try:
            return self._response.read()
        finally:
            self.close()

    def stream(self, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
        try:
            while chunk := self._response.read(chunk_bytes):
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()
        self._connection.close()


HOP_BY_HOP = ("connection", "transfer-encoding", "keep-alive", "te", "trailer", "upgrade")
