"""moto's server on 127.0.0.1, and the stack's resources built in it from ``trace_infra``.

The bucket and the table are created from the same definitions the
infrastructure uses, so a change there reaches these fixtures too.
"""

from __future__ import annotations

import json
import secrets
import select
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"


PROJECT_ROOT = Path(__file__).resolve().parents[2]


@cache
def shared_session() -> Any:
    """One boto3 session for every client the harness makes (each with its own
    credentials): a session loads each service's model once, a new one for every client.
    Typed Any: services are chosen at run time."""
    import boto3  # here: the module is imported before a session may need boto3

    return boto3.session.Session()


@dataclass
class AwsEndpoint:
    """Where the suite's AWS lives, and boto3 clients for the harness to reach it.

    A local emulator gets the suite's fake credentials; a deployed stack (no
    endpoint of its own) gets whatever credentials the environment holds.
    """

    endpoint: str | None
    region: str = REGION
    fake_credentials: bool = True
    _clients: dict[str, Any] = field(default_factory=dict, init=False)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            settings: dict[str, Any] = {"region_name": self.region}
            if self.endpoint:
                settings["endpoint_url"] = self.endpoint
            if self.fake_credentials:
                settings["aws_access_key_id"] = TEST_ACCESS_KEY_ID
                settings["aws_secret_access_key"] = TEST_SECRET_ACCESS_KEY
            self._clients[service] = shared_session().client(service, **settings)
        return self._clients[service]

    def stop(self) -> None:
        """An endpoint the suite did not start is left running."""


def listening_socket() -> socket.socket:
    """A port of 127.0.0.1, listening, to hand to a server not started yet. TCP_NODELAY
    is set before any connection can queue on it: a connection copies its listening
    socket's options when it is made, and one made without it would wait for the
    client's delayed ACK (40 ms) before the body of every answer."""
    listening = socket.create_server(("127.0.0.1", 0), backlog=64)
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


@dataclass(frozen=True)
class GateUrls:
    """Where the gates in front of the suite's AWS serve, and their control."""

    s3: str
    dynamodb: str
    control: str


@dataclass
class MotoServer(AwsEndpoint):
    """moto in server mode, with the S3 and DynamoDB gates in front of it, in a process
    of its own (``testkit.aws.moto_server``): every call of the code under test crosses
    real HTTP, and moto's and the gates' work runs beside the tests' instead of under
    their GIL. With ``upstream``, the process holds only the gates, in front of another
    AWS emulator, which is then the endpoint.

    ``launch()`` binds the ports here and hands them to the process, and returns at
    once: the endpoints are known before the process serves, so whatever needs them
    (the function's cold start) can start beside moto's. A request sent early waits in
    the port's queue; ``ready()`` waits until the process says it serves.
    """

    _process: subprocess.Popen[bytes] | None = None
    _gates: GateUrls | None = None
    _served: bool = False

    @classmethod
    def launch(cls, upstream: str | None = None) -> MotoServer:
        names = ("s3", "dynamodb", "control") if upstream else ("aws", "s3", "dynamodb", "control")
        sockets = {name: listening_socket() for name in names}
        try:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "testkit.aws.moto_server",
                    *(["--upstream", upstream] if upstream else []),
                    *[f"--listen={name}={s.fileno()}" for name, s in sockets.items()],
                ],
                cwd=PROJECT_ROOT,  # where `-m` finds the kit, as for every script of it
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=[s.fileno() for s in sockets.values()],
            )
        finally:
            ports = {name: s.getsockname()[1] for name, s in sockets.items()}
            for listening in sockets.values():
                listening.close()  # the process holds them now
        token = secrets.token_urlsafe(24)  # the control's, never on a command line
        assert process.stdin is not None
        process.stdin.write(f"{token}\n".encode())
        process.stdin.flush()
        urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        gates = GateUrls(urls["s3"], urls["dynamodb"], f"{urls['control']}/{token}")
        return cls(upstream or urls["aws"], _process=process, _gates=gates)

    def client(self, service: str) -> Any:
        return super(MotoServer, self.ready()).client(service)

    @property
    def gates(self) -> GateUrls:
        assert self._gates is not None
        return self._gates

    def ready(self, timeout: float = 60) -> MotoServer:
        """Wait until the process serves (its one line on stdout: its ports)."""
        if not self._served:
            process = self._process
            assert process is not None
            assert process.stdout is not None
            readable, _, _ = select.select([process.stdout], [], [], timeout)
            line = process.stdout.readline() if readable else b""
            try:
                self._served = isinstance(json.loads(line), dict)
            except ValueError:
                self._served = False
            if not self._served:
                self.stop()
                raise RuntimeError(f"moto's server did not start (exit status {process.poll()})")
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        assert process.stdin is not None
        assert process.stdout is not None
        if not self._served:
            process.kill()  # never served: no need to wait for its start-up to end
        process.stdin.close()  # the server's signal to stop
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
