"""moto's server with the S3 and DynamoDB gates in front of it, in a process of its own:
``python -m testkit.aws.moto_server [--upstream URL]``.

Its CPU is off the test process's GIL, and its start-up (moto, the S3, DynamoDB and
Cognito backends, the user pools' key) runs while pytest collects. Each gate calls
moto's app in this process: a layer's call crosses HTTP once, to its gate, on a
connection kept alive (``local_server.KeepAliveServer``). With ``--upstream``, another
AWS emulator stands where moto would, and the gates reach it over HTTP.

It serves four ports: moto itself (for the suite's own set-up, and Cognito), the S3
gate, the DynamoDB gate, and the gates' control (``testkit.aws.gate_control``), whose
secret token is the first line on its stdin. It writes one JSON line on stdout once it
serves, and serves until its stdin closes: when the process that started it ends,
however it ends, so does this one.

It drives moto's server through moto's internals (its dispatcher, which it tells
each request's service, its backend apps, and the user pools' key): this module is
the only one that touches them, and a moto without them stops the server's start with
one line that says what is missing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from importlib.metadata import version
from typing import Any
from urllib.parse import unquote

from testkit.aws import local_server
from testkit.aws.auth import Roles
from testkit.aws.dynamodb_gate import DynamoDbGate
from testkit.aws.gate_control import GateControl
from testkit.aws.s3_gate import S3Gate

REGION = "us-east-1"

# Every backend the stack uses, loaded before the first request needs it.
SERVICES = ("s3", "dynamodb", "cognito-idp")
_TARGETS = {"DynamoDB_20120810": "dynamodb", "AWSCognitoIdentityProviderService": "cognito-idp"}
# What of moto's server module the server is built from.
_INTERNALS = ("DomainDispatcherApplication", "create_backend_app")


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


# One prime of the RSA key moto signs every user pool's tokens with (its
# cognitoidp/resources/jwks-private.json, a JWK without its primes). Recovering the
# primes from the JWK, as joserfc does, costs 0.1 to 0.3 s of CPU at every start.
_MOTO_KEY_PRIME = int(
    "a0b21500aef6971385b5ac70c8984ae68c02e2755a4ad4a28c1d4787991e3b46c688b0d82bc29f65d2b5"
    "a56fec3d49e60876d0e0b6b393d05d5c9c101383454775158f2a4b333f227ddc7fee513f6cec26fd0e"
    "aec525b93c88893521ae93a722afb71f81565a90e44aafac88f59f9a603d6eea6c2e17c44726e1824"
    "694f218e5",
    16,
)


def _one_key_for_every_pool() -> None:
    """moto imports the same RSA key for every user pool, at 0.1 to 0.3 s of CPU each
    time: it is imported once, and built from its known prime when the JWK is moto's
    (any other key is imported as joserfc imports it)."""
    from moto.cognitoidp import models

    jwk = models.jwk
    keys: dict[str, Any] = {}

    class RSAKey(jwk.RSAKey):
        @classmethod
        def import_key(cls, value: Any, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or not isinstance(value, dict):
                return jwk.RSAKey.import_key(value, *args, **kwargs)
            text = json.dumps(value, sort_keys=True)
            if text not in keys:
                keys[text] = _from_known_prime(jwk, value) or jwk.RSAKey.import_key(value)
            return keys[text]

    class Keys:
        def __getattr__(self, name: str) -> Any:
            return RSAKey if name == "RSAKey" else getattr(jwk, name)

    models.jwk = Keys()  # type: ignore[assignment]
    models.jwk.RSAKey.import_key(models.load_resource("cognitoidp/resources/jwks-private.json"))


def _from_known_prime(jwk: Any, value: dict[str, Any]) -> Any:
    """The JWK's key built from ``_MOTO_KEY_PRIME``, or None if that is none of its
    primes."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        n, e, d = (int.from_bytes(base64.urlsafe_b64decode(value[k] + "==")) for k in "ned")
    except (KeyError, TypeError, ValueError):
        return None
    p = _MOTO_KEY_PRIME
    if n % p:
        return None
    q = n // p
    numbers = rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, n),
    )
    # p divides n: the key is whole, and a wrong d would fail every token's check.
    private = numbers.private_key(unsafe_skip_rsa_key_validation=True)
    return jwk.RSAKey.import_key(
        private, {k: v for k, v in value.items() if k in ("kid", "alg", "use")}
    )


_WARM_UP = {
    "s3": ("GET", "/", "", b""),
    "dynamodb": ("POST", "/", "DynamoDB_20120810.ListTables", b"{}"),
    "cognito-idp": (
        "POST",
        "/",
        "AWSCognitoIdentityProviderService.ListUserPools",
        b'{"MaxResults": 1}',
    ),
}


def _warm_up(app: Any) -> None:
    """One call of each backend, so that the first request of a scenario does not pay
    for its creation."""
    for service, (method, path, target, body) in _WARM_UP.items():
        headers = {
            "Host": "127.0.0.1",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/"
            f"{service}/aws4_request, SignedHeaders=host, Signature=0",
            "Content-Type": "application/x-amz-json-1.1",
        }
        if target:
            headers["X-Amz-Target"] = target
        local_server.AppUpstream(app, method, path, headers, body).read()


def _as_werkzeug_serves(app: Any) -> local_server.WsgiApp:
    """moto's app as its own server would call it: the path fully decoded, and the
    target as sent in RAW_URI, which moto reads keys from (cheroot keeps %2F encoded
    in PATH_INFO, and names the target REQUEST_URI)."""

    def served(environ: dict[str, Any], start_response: local_server.StartResponse) -> Any:
        raw_uri = environ.get("REQUEST_URI", "")
        environ["RAW_URI"] = raw_uri
        path = raw_uri.split("?", 1)[0]
        environ["PATH_INFO"] = unquote(path).encode().decode("latin-1")
        return app(environ, start_response)

    return served


class _Later:
    """moto's app, once it is built: the gates are made before it."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", help="another AWS emulator, instead of moto")
    parser.add_argument(
        "--listen",
        action="append",
        default=[],
        metavar="NAME=FD",
        help="serve NAME (aws, s3, dynamodb, control) on this inherited listening socket",
    )
    args = parser.parse_args(argv)
    upstream = args.upstream
    inherited = {name: int(fd) for name, _, fd in (s.partition("=") for s in args.listen)}

    def listening(name: str) -> socket.socket | None:
        fd = inherited.get(name)
        return None if fd is None else socket.socket(fileno=fd)

    # Ctrl-C at a terminal reaches the whole process group: the server ends when its
    # stdin closes, with the session that started it, not with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The control first: the roles are known before moto is, so the first call a layer
    # makes (queued on its gate's port until the gate serves) finds its signer.
    roles = Roles()
    moto = _Later()
    s3 = S3Gate(upstream or moto, roles=roles, region=REGION)
    token = sys.stdin.buffer.readline().strip().decode("ascii", "replace")  # the first line
    servers = {
        "control": local_server.KeepAliveServer(
            GateControl(s3, roles, token=token), listening=listening("control")
        )
    }
    try:
        _serve(servers, s3, roles, moto, upstream, listening)
    except SystemExit as stopped:  # one line, on stderr, which the session shows
        sys.stderr.write(f"{stopped.code}\n")
    except BaseException:
        traceback.print_exc()
    sys.stderr.flush()
    os._exit(1)  # the control's threads would keep the process alive


def _serve(
    servers: dict[str, local_server.KeepAliveServer],
    s3: S3Gate,
    roles: Roles,
    moto: _Later,
    upstream: str | None,
    listening: Callable[[str], socket.socket | None],
) -> None:
    """moto and the gates served, until stdin closes; then the process ends."""
    if upstream is None:
        problem = incompatibility()
        if problem:
            sys.exit(problem)  # its ports never come
        moto.app = _application()
        _one_key_for_every_pool()
        _warm_up(moto.app)
        servers["aws"] = local_server.KeepAliveServer(
            _as_werkzeug_serves(moto.app), listening=listening("aws")
        )
    servers["s3"] = local_server.KeepAliveServer(s3, listening=listening("s3"))
    servers["dynamodb"] = local_server.KeepAliveServer(
        DynamoDbGate(upstream or moto, roles=roles, region=REGION), listening=listening("dynamodb")
    )
    sys.stdout.write(json.dumps({name: server.port for name, server in servers.items()}) + "\n")
    sys.stdout.flush()
    # Nobody reads the pipe after the ports: what moto prints goes to stderr instead.
    os.dup2(2, 1)
    sys.stdin.buffer.read()  # until the parent closes it, or is gone
    s3.stop()  # a stalled answer ends
    # Nothing to save: skip the servers' and the interpreter's slow tear-down.
    os._exit(0)


if __name__ == "__main__":
    main()
