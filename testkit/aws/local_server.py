"""Serving a WSGI app on 127.0.0.1 from a thread (the API Gateway, a Lambda Runtime API,
a gate under test) or from a pool of threads keeping connections alive (moto and its
gates, ``serve_keep_alive``), and reading and forwarding the requests it receives: over
HTTP to a server, or as a call of a WSGI app in the same process."""

from __future__ import annotations

import http.client
import io
import logging
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from cheroot import wsgi
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# Where a keep-alive server puts the request's connection, for a gate to break it.
SOCKET_KEY = "testkit.socket"


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
    # Inherited by every connection it accepts: werkzeug writes an answer's headers and
    # body apart, and on a kept-alive connection the body would wait for the client's
    # delayed ACK (40 ms) before it leaves.
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if isinstance(server, ThreadingMixIn):
        server.daemon_threads = True  # a stalled answer must not hold up the shutdown
    # A short poll interval: shutdown() otherwise waits up to half a second.
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    return server


def stop(server: BaseWSGIServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


class _GatewayWithSocket(wsgi.Gateway_10):
    """cheroot's WSGI gateway, with the request's connection in the environ."""

    def get_environ(self) -> dict[str, Any]:  # type: ignore[override]  # stubbed as None
        environ: dict[str, Any] = super().get_environ()
        environ[SOCKET_KEY] = self.req.conn.socket
        return environ


class _QuietServer(wsgi.Server):
    listening: socket.socket | None = None

    def error_log(self, *args: Any, **kwargs: Any) -> None:
        """Not printed: a connection a gate breaks on purpose is no error of the server's,
        and an app's own error is answered as a 500."""

    def bind(self, family: Any, type: Any, proto: Any = 0) -> Any:
        if self.listening is None:
            return super().bind(family, type, proto)
        self.socket = self.listening
        # As cheroot sets it on a socket of its own: without it, an answer written in
        # two parts waits for the client's delayed ACK (40 ms) before its second.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bind_addr = self.listening.getsockname()[:2]
        return self.socket


class KeepAliveServer:
    """``app`` served on 127.0.0.1 by cheroot: a pool of threads, and connections kept
    alive between requests, as AWS's endpoints keep them (werkzeug's server opens a
    thread for every connection). ``listening``: a socket already bound and listening
    (its port known to others before this server starts), else a free port's."""

    def __init__(
        self, app: WsgiApp, *, threads: int = 16, listening: socket.socket | None = None
    ) -> None:
        self._server = _QuietServer(("127.0.0.1", 0), app, numthreads=threads, timeout=60)
        self._server.listening = listening
        self._server.gateway = _GatewayWithSocket
        self._server.prepare()
        self.port: int = self._server.bind_addr[1]
        threading.Thread(target=self._server.serve, daemon=True).start()

    def stop(self) -> None:
        self._server.stop()


class ConnectionDropped(Exception):
    """Raised by an app mid-answer to have a keep-alive server drop the connection."""


def connection_socket(environ: dict[str, Any]) -> socket.socket | None:
    """The socket the request arrived on, under either server."""
    found = environ.get(SOCKET_KEY) or environ.get("werkzeug.socket")
    return found if isinstance(found, socket.socket) else None


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


class AppUpstream:
    """One request handed to a WSGI app in this process, as werkzeug's server would
    hand it over (the path decoded, the target as sent in ``RAW_URI``), with the same
    reading as ``Upstream``: one hop fewer than HTTP."""

    def __init__(
        self, app: WsgiApp, method: str, raw_uri: str, headers: dict[str, str], body: bytes
    ) -> None:
        target = urlsplit(raw_uri)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(target.path).encode().decode("latin-1"),
            "QUERY_STRING": target.query,
            "RAW_URI": raw_uri,
            "REQUEST_URI": raw_uri,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ[key] = value
            elif key != "CONTENT_LENGTH" and name.lower() not in HOP_BY_HOP:
                environ[f"HTTP_{key}"] = value
        answered: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> Any:
            answered[:] = [status, headers]
            return lambda data: None  # the write() callable: unused by moto

        self._body = app(environ, start_response)
        self._chunks = iter(self._body)
        first = next(self._chunks, b"")  # a generator's app starts the answer here
        self._pending = [first] if first else []
        status, self.headers = answered
        code, _, self.reason = status.partition(" ")
        self.status = int(code)
        self.headers = [(n, v) for n, v in self.headers if n.lower() not in HOP_BY_HOP]

    def header(self, name: str) -> str:
        return next((v for n, v in self.headers if n.lower() == name.lower()), "")

    def read(self) -> bytes:
        try:
            return b"".join(self.stream())
        finally:
            self.close()

    def stream(self, chunk_bytes: int = 64 * 1024) -> Iterator[bytes]:
        try:
            yield from self._pending
            self._pending = []
            yield from self._chunks
        finally:
            self.close()

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def forward(
    upstream: str | WsgiApp, method: str, raw_uri: str, headers: dict[str, str], body: bytes
) -> Upstream | AppUpstream:
    """The request, exactly as it arrived, to the server at ``upstream`` (a URL) or to
    the app ``upstream`` in this process."""
    if isinstance(upstream, str):
        return Upstream(upstream, method, raw_uri, headers, body)
    return AppUpstream(upstream, method, raw_uri, headers, body)


HOP_BY_HOP = ("connection", "transfer-encoding", "keep-alive", "te", "trailer", "upgrade")
