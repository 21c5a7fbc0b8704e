"""Session-wide local AWS for the acceptance suite: moto's server and the API gateway.

moto's server, the S3 gate in front of it and the API gateway start once, on
127.0.0.1, with the stack's bucket, table and user pool. Scenarios are kept apart by
their own task ids; each gets an honest gate and clock, and what it changes in the
shared resources is put back after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest

from trace_harness.api_gateway import CognitoAuthorizer, LocalApiGateway
from trace_harness.identities import UserDirectory, create_user_pool
from trace_harness.local_aws import REGION, TEST_SECRET_ACCESS_KEY, MotoServer
from trace_harness.s3_gate import S3Gate
from trace_harness.stack import TraceStack, code_under_test_environment
from trace_infra.handlers.get_trace_url import lambda_handler
from trace_steps.scene import Scene

pytest_plugins = [
    "trace_steps.scene",
    "trace_steps.accounts",
    "trace_steps.tasks",
    "trace_steps.downloads",
]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_gate(moto_server: MotoServer) -> Iterator[S3Gate]:
    gate = S3Gate(moto_server.endpoint, secret_key=TEST_SECRET_ACCESS_KEY, region=REGION)
    gate.start()
    yield gate
    gate.stop()


@pytest.fixture(scope="session")
def aws_environment(moto_server: MotoServer, s3_gate: S3Gate) -> Iterator[dict[str, str]]:
    environment = code_under_test_environment(moto_server, s3_gate.url)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        yield environment


@pytest.fixture(scope="session")
def api_gateway(aws_environment: dict[str, str]) -> Iterator[tuple[LocalApiGateway, str]]:
    gateway = LocalApiGateway(lambda_handler)
    url = gateway.start()
    yield gateway, url
    gateway.stop()


@pytest.fixture(scope="session")
def directory(moto_server: MotoServer, api_gateway: tuple[LocalApiGateway, str]) -> UserDirectory:
    """The platform's users: one user pool for the session, each user signed up once."""
    gateway, _ = api_gateway
    cognito = moto_server.client("cognito-idp")
    pool = create_user_pool(
        cognito, name="bgagent-users", region=REGION, endpoint=moto_server.endpoint
    )
    gateway.authorizer = CognitoAuthorizer(pool)
    return UserDirectory(cognito, pool)


@pytest.fixture(scope="session")
def session_stack(
    moto_server: MotoServer, directory: UserDirectory, api_gateway: tuple[LocalApiGateway, str]
) -> TraceStack:
    return TraceStack.build(moto_server, directory.pool, api_gateway[1])


@pytest.fixture
def stack(
    session_stack: TraceStack,
    s3_gate: S3Gate,
    directory: UserDirectory,
    api_gateway: tuple[LocalApiGateway, str],
) -> Iterator[TraceStack]:
    """The stack as a scenario finds it: an honest gate and clock, its own task ids."""
    s3_gate.reset()
    authorizer = api_gateway[0].authorizer
    assert authorizer is not None
    authorizer.clock_offset = timedelta(0)
    yield session_stack
    session_stack.undo_scenario_changes()


@pytest.fixture(autouse=True)
def _secrets_stay_secret(scene: Scene, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """In every scenario: no ID token and no link signature in any layer's logs or in
    what the CLI printed."""
    for layer in ("trace_agent", "trace_infra", "bgagent"):
        caplog.set_level(logging.DEBUG, logger=layer)
    yield
    # In teardown, caplog.text would only hold the teardown's records.
    logged = [r.getMessage() for when in ("setup", "call") for r in caplog.get_records(when)]
    shown = "\n".join(logged) + (scene.cli.stderr if scene.cli else "")
    assert "X-Amz-Signature" not in shown
    for person in scene.people.values():
        assert person.id_token not in shown, f"{person.name}'s ID token was shown"
