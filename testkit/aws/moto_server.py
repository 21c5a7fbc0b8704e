"""moto's server in a process of its own: ``python -m testkit.aws.moto_server``.

Its CPU is off the test process's GIL, and its start-up (moto, Flask, the S3,
DynamoDB and Cognito backends) runs while pytest collects. It writes its port as
one line on stdout once it serves, and serves until its stdin closes: when the
process that started it ends, however it ends, so does this one.

It drives moto's server through moto's internals (its dispatcher, which it tells
each request's service, and its backend apps): this module is the only one that
touches them, and a moto without them stops the server's start with one line that
says what is missing.
"""

from __future__ import annotations

import os
import signal
import sys
from importlib.metadata import version
from typing import Any
from urllib.parse import unquote

from testkit.aws import local_server

# Every backend the stack uses, loaded before the first request needs it.
SERVICES = ("s3", "dynamodb", "cognito-idp")
_TARGETS = {"DynamoDB_20120810": "dynamodb", "AWSCognitoIdentityProviderService": "cognito-idp"}
# What of moto's server module the server is built from.
_INTERNALS = ("DomainDispatcherApplication", "MotoRequestHandler", "create_backend_app")


def incompatibility() -> str:
    """What the installed moto lacks of the internals this server uses; "" if nothing."""
    try:
        from moto.moto_server import werkzeug_app
    except ImportError as missing:
        absent = [f"moto.moto_server.werkzeug_app ({missing})"]
    else:
        absent = [name for name in _INTERNALS if not hasattr(werkzeug_app, name)]
        dispatcher = getattr(werkzeug_app, "DomainDispatcherApplication", None)
        if dispatcher is not None and not hasattr(dispatcher, "get_application"):
            absent.append("DomainDispatcherApplication.get_application")
    if not absent:
        return ""
    return (
        f"moto {version('moto')} lacks what the suite's moto server is built from: "
        f"{', '.join(absent)}; the suite supports the moto versions pyproject.toml names"
    )


def _application() -> Any:
    """moto's dispatcher, told the service by what the request itself says: its
    signature's scope (in its header, or in a presigned link's query) or its
    X-Amz-Target; with every backend the stack uses loaded. moto's own lookup, which
    it falls back to, lists the folders of its package for every request."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Dispatcher(DomainDispatcherApplication):
        def get_application(self, environ: dict[str, Any]) -> Any:
            app = self.app_instances.get(_service_of(environ))
            return app if app is not None else super().get_application(environ)

    app = Dispatcher(create_backend_app)
    for service in SERVICES:
        app.app_instances[service] = create_backend_app(service)  # type: ignore[arg-type]
    return app


def _service_of(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return _TARGETS.get(target.split(".", 1)[0], "")
    signature = environ.get("HTTP_AUTHORIZATION") or unquote(environ.get("QUERY_STRING", ""))
    if "Credential=" not in signature:
        return ""
    scope = signature.split("Credential=", 1)[1].split(",", 1)[0].split("&", 1)[0]
    parts = scope.split("/")  # key id / date / region / service / aws4_request
    return parts[3] if len(parts) == 5 and parts[3] in SERVICES else ""


def main() -> None:
    # Ctrl-C at a terminal reaches the whole process group: the server ends when its
    # stdin closes, with the session that started it, not with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    problem = incompatibility()
    if problem:
        sys.exit(problem)  # on stderr, which the session shows; its port never comes
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    server = local_server.serve(_application(), request_handler=MotoRequestHandler)
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()
    # Nobody reads the pipe after the port: what moto prints goes to stderr instead.
    os.dup2(2, 1)
    sys.stdin.buffer.read()  # until the parent closes it, or is gone
    local_server.stop(server)
    # Nothing to save: skip the interpreter's slow tear-down of moto.
    os._exit(0)


if __name__ == "__main__":
    main()
