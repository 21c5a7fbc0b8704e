"""moto's server on 127.0.0.1, and the stack's resources built in it from ``trace_infra``.

The bucket and the table are created from the same definitions the
infrastructure uses, so a change there reaches these fixtures too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer

from trace_harness import serving

REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"


ENV_SUITE_ENDPOINT = "TRACE_SUITE_AWS_ENDPOINT"


@cache
def shared_session() -> Any:
    """One boto3 session for every client the harness makes (each with its own
    credentials): a session loads each service's model once, a new one again (about
    0.1 s a client). Typed Any: services are chosen at run time."""
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


def start_aws() -> AwsEndpoint:
    """moto's server on 127.0.0.1; or, when TRACE_SUITE_AWS_ENDPOINT names one, an AWS
    emulator that is already running (LocalStack, a moto_server process)."""
    external = os.environ.get(ENV_SUITE_ENDPOINT)
    return AwsEndpoint(external) if external else MotoServer.start()


@dataclass
class MotoServer(AwsEndpoint):
    """moto in server mode: every call of the code under test crosses real HTTP.

    The same WSGI app and request handler as moto's ThreadedMotoServer, served
    by trace_harness.serving: ThreadedMotoServer's stop() waits up to 0.5 s.
    """

    _server: BaseWSGIServer | None = None

    @classmethod
    def start(cls) -> MotoServer:
        app = DomainDispatcherApplication(create_backend_app)
        server = serving.serve(app, request_handler=MotoRequestHandler)
        return cls(f"http://127.0.0.1:{server.server_port}", _server=server)

    def stop(self) -> None:
        serving.stop(self._server)
