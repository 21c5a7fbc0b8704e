"""The acceptance suite's environment: moto, the S3 gate, the API gateway, the users.

moto's server (or the emulator TRACE_SUITE_AWS_ENDPOINT names), the S3 gate in
front of it and the API gateway start once, on 127.0.0.1, with the stack's bucket,
table and user pool. Scenarios are kept apart by
their own task ids; each gets an honest gate and clock, and what it changes in the
shared resources is put back after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest

from trace_harness.api_gateway import CognitoAuthorizer, LocalApiGateway
from trace_harness.identities import UserDirectory, create_user_pool
from trace_harness.local_aws import (
    ENV_SUITE_ENDPOINT,
    REGION,
    TEST_SECRET_ACCESS_KEY,
    AwsEndpoint,
    start_aws,
)
from trace_harness.s3_gate import S3Gate
from trace_harness.stack import StackNames, TraceStack, code_under_test_environment
from trace_infra.handlers.get_trace_url import lambda_handler


@pytest.fixture(scope="session")
def aws() -> Iterator[AwsEndpoint]:
    endpoint = start_aws()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def stack_names() -> StackNames:
    return StackNames.unique()


@pytest.fixture(scope="session")
def s3_gate(aws: AwsEndpoint) -> Iterator[S3Gate]:
    gate = S3Gate(aws.endpoint, secret_key=TEST_SECRET_ACCESS_KEY, region=REGION)
    gate.start()
    yield gate
    gate.stop()


@pytest.fixture(scope="session")
def aws_environment(
    aws: AwsEndpoint, s3_gate: S3Gate, stack_names: StackNames
) -> Iterator[dict[str, str]]:
    environment = code_under_test_environment(aws, s3_gate.url, stack_names)
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
def directory(
    aws: AwsEndpoint, api_gateway: tuple[LocalApiGateway, str]
) -> Iterator[UserDirectory]:
    """The platform's users: one user pool for the session, each user signed up once."""
    gateway, _ = api_gateway
    cognito = aws.client("cognito-idp")
    pool = create_user_pool(cognito, name="bgagent-users", region=REGION, endpoint=aws.endpoint)
    gateway.authorizer = CognitoAuthorizer(pool)
    yield UserDirectory(cognito, pool)
    cognito.delete_user_pool(UserPoolId=pool.id)


@pytest.fixture(scope="session")
def session_stack(
    aws: AwsEndpoint,
    directory: UserDirectory,
    api_gateway: tuple[LocalApiGateway, str],
    stack_names: StackNames,
) -> Iterator[TraceStack]:
    built = TraceStack.build(aws, directory.pool, api_gateway[1], stack_names)
    yield built
    built.remove()


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against another emulator, scenarios that rely on moto's own behaviour are skipped,
    and say why."""
    external = os.environ.get(ENV_SUITE_ENDPOINT)
    if not external:
        return
    reason = (
        f"needs moto's own behaviour (a Deny bucket policy blocks every request); "
        f"{ENV_SUITE_ENDPOINT} points the suite at {external}"
    )
    for item in items:
        if item.get_closest_marker("needs_moto"):
            item.add_marker(pytest.mark.skip(reason=reason))
