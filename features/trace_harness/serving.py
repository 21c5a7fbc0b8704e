"""Serving a WSGI app on 127.0.0.1 from a thread: moto, the S3 gate, the API gateway."""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import SplitResult, urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


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
