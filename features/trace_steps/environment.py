"""The acceptance suite's environment: moto, the S3 gate, the API gateway, the users.

Three targets, chosen by the environment, never by code: the suite's own moto
(the default); another AWS emulator (TRACE_SUITE_AWS_ENDPOINT); a stack the suite
did not start, such as a deployed dev stack (TRACE_SUITE_API_URL, see
trace_harness.deployed).

moto's server (or the emulator TRACE_SUITE_AWS_ENDPOINT names), the S3 gate in
front of it and the API gateway start once, on 127.0.0.1, with the stack's bucket,
table and user pool. Scenarios are kept apart by
their own task ids; each gets an honest gate and clock, and what it changes in the
shared resources is put back after it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from trace_harness.api_gateway import CognitoAuthorizer, LocalApiGateway
from trace_harness.deployed import ENV_API_URL, DeployedStack, IncompleteTarget
from trace_harness.identities import UserDirectory, UserPool, create_user_pool
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
def deployed() -> DeployedStack | None:
    """The stack named by TRACE_SUITE_API_URL, if the suite runs against one."""
    try:
        return DeployedStack.from_environment()
    except IncompleteTarget as incomplete:
        raise pytest.UsageError(str(incomplete)) from None


@pytest.fixture(scope="session")
def aws(deployed: DeployedStack | None) -> Iterator[AwsEndpoint]:
    if deployed is not None:
        yield AwsEndpoint(deployed.aws_endpoint, deployed.region, fake_credentials=False)
        return
    endpoint = start_aws()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="session")
def stack_names(deployed: DeployedStack | None) -> StackNames:
    if deployed is not None:
        return StackNames(deployed.bucket, deployed.table)
    return StackNames.unique()


@pytest.fixture(scope="session")
def s3_gate(aws: AwsEndpoint, deployed: DeployedStack | None) -> Iterator[S3Gate | None]:
    """The S3 gate in front of the suite's own S3; a deployed stack has real S3."""
    if deployed is not None:
        yield None
        return
    assert aws.endpoint is not None
    gate = S3Gate(aws.endpoint, secret_key=TEST_SECRET_ACCESS_KEY, region=REGION)
    gate.start()
    yield gate
    gate.stop()


@pytest.fixture
def gate(s3_gate: S3Gate | None) -> S3Gate:
    """The S3 gate, for the steps that move its clock, read its records or break the wire."""
    if s3_gate is None:
        pytest.fail("this scenario needs the suite's own S3 gate: tag it @needs_local_stack")
    return s3_gate


@pytest.fixture(scope="session")
def aws_environment(
    aws: AwsEndpoint,
    s3_gate: S3Gate | None,
    stack_names: StackNames,
    deployed: DeployedStack | None,
) -> Iterator[dict[str, str]]:
    """What the code under test reads: set here for the suite's own stack; a deployed
    stack's comes from the shell that runs the suite."""
    if deployed is not None or s3_gate is None:
        yield dict(os.environ)
        return
    environment = code_under_test_environment(aws, s3_gate.url, stack_names)
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(name, raising=False)
        for name, value in environment.items():
            patch.setenv(name, value)
        yield environment


@pytest.fixture(scope="session")
def api_gateway(
    aws_environment: dict[str, str], deployed: DeployedStack | None
) -> Iterator[LocalApiGateway | None]:
    """The local API Gateway in front of the real handler; a deployed stack has its own."""
    if deployed is not None:
        yield None
        return
    gateway = LocalApiGateway(lambda_handler)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="session")
def api_url(api_gateway: LocalApiGateway | None, deployed: DeployedStack | None) -> str:
    if deployed is not None:
        return deployed.api_url
    assert api_gateway is not None
    return api_gateway.url


@pytest.fixture(scope="session")
def directory(
    aws: AwsEndpoint, api_gateway: LocalApiGateway | None, deployed: DeployedStack | None
) -> Iterator[UserDirectory]:
    """The platform's users: each signed up once per session."""
    cognito = aws.client("cognito-idp")
    if deployed is not None:
        pool = UserPool(deployed.user_pool_id, deployed.client_id, deployed.region, "")
        users = UserDirectory(cognito, pool, username_suffix=f"-{uuid.uuid4().hex[:8]}")
        yield users
        users.remove_users()
        return
    assert api_gateway is not None
    assert aws.endpoint is not None
    pool = create_user_pool(cognito, name="bgagent-users", region=REGION, endpoint=aws.endpoint)
    api_gateway.authorizer = CognitoAuthorizer(pool)
    yield UserDirectory(cognito, pool)
    cognito.delete_user_pool(UserPoolId=pool.id)


@pytest.fixture(scope="session")
def session_stack(
    aws: AwsEndpoint,
    directory: UserDirectory,
    api_url: str,
    stack_names: StackNames,
    deployed: DeployedStack | None,
) -> Iterator[TraceStack]:
    if deployed is not None:
        yield TraceStack(aws, directory.pool, api_url, deployed.bucket, deployed.table)
        return
    built = TraceStack.build(aws, directory.pool, api_url, stack_names)
    yield built
    built.remove()


@pytest.fixture
def stack(
    session_stack: TraceStack,
    s3_gate: S3Gate | None,
    api_gateway: LocalApiGateway | None,
) -> Iterator[TraceStack]:
    """The stack as a scenario finds it: an honest gate and clock, its own task ids."""
    if s3_gate is not None:
        s3_gate.reset()
    if api_gateway is not None and api_gateway.authorizer is not None:
        api_gateway.authorizer.clock_offset = timedelta(0)
    yield session_stack
    session_stack.undo_scenario_changes()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scenarios that need what the chosen target lacks are skipped, and say why."""
    reasons = {}
    if os.environ.get(ENV_API_URL):
        target = f"{ENV_API_URL} points the suite at {os.environ[ENV_API_URL]}"
        reasons["needs_local_stack"] = (
            f"needs the suite's own S3 gate, API Gateway clock or throwaway resources; {target}"
        )
        reasons["needs_moto"] = f"needs moto's own behaviour; {target}"
    elif os.environ.get(ENV_SUITE_ENDPOINT):
        reasons["needs_moto"] = (
            "needs moto's own behaviour (a Deny bucket policy blocks every request); "
            f"{ENV_SUITE_ENDPOINT} points the suite at {os.environ[ENV_SUITE_ENDPOINT]}"
        )
    for item in items:
        for marker, reason in reasons.items():
            if item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))
                break
