"""Running the acceptance suite against a stack it did not start: a deployed dev stack,
or the sandbox in another shell standing in for one.

Set ``TRACE_SUITE_API_URL`` and the suite drives that API instead of starting moto,
the S3 gate and its local API Gateway. It runs the agent's code here, writing to
the stack's bucket and table as the agent runtime would, with the credentials the
environment holds, and creates its users (tagged with the session, with random
passwords) in the stack's user pool.

Nothing else of the stack is changed: no policy, no other user, no other item.
What the session added (its users, their task records and stored traces) is
removed when it ends, and what sessions that were killed left behind is removed
when the next one starts (``testkit.stack.footprint``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import boto3

from testkit.aws.endpoint import AwsEndpoint
from testkit.stack.footprint import SessionTag, StackFootprint
from testkit.stack.resources import AgentRuntime, TraceStack
from testkit.stack.targets import NotOnThisTarget, Target, target_for
from testkit.stack.users import UserDirectory, UserPool
from trace_infra.definitions import ENV_TASK_TABLE, ENV_TRACE_BUCKET

ENV_API_URL = "TRACE_SUITE_API_URL"
ENV_USER_POOL_ID = "TRACE_SUITE_USER_POOL_ID"
ENV_CLIENT_ID = "TRACE_SUITE_CLIENT_ID"


class IncompleteTarget(Exception):
    """TRACE_SUITE_API_URL is set, but not everything the suite needs with it."""


@dataclass(frozen=True)
class DeployedTarget:
    """Where the stack is, as the environment names it."""

    api_url: str
    user_pool_id: str
    client_id: str
    region: str
    bucket: str
    table: str
    aws_endpoint: str | None  # AWS_ENDPOINT_URL, when the "deployed" stack is local

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> DeployedTarget | None:
        if not environ.get(ENV_API_URL):
            return None
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "")
        needed = {
            ENV_USER_POOL_ID: environ.get(ENV_USER_POOL_ID, ""),
            ENV_CLIENT_ID: environ.get(ENV_CLIENT_ID, ""),
            ENV_TRACE_BUCKET: environ.get(ENV_TRACE_BUCKET, ""),
            ENV_TASK_TABLE: environ.get(ENV_TASK_TABLE, ""),
            "AWS_REGION": region,
        }
        missing = [name for name, value in needed.items() if not value]
        if missing:
            raise IncompleteTarget(f"{ENV_API_URL} is set; also set {', '.join(missing)}")
        return cls(
            api_url=environ[ENV_API_URL].rstrip("/"),
            user_pool_id=needed[ENV_USER_POOL_ID],
            client_id=needed[ENV_CLIENT_ID],
            region=region,
            bucket=needed[ENV_TRACE_BUCKET],
            table=needed[ENV_TASK_TABLE],
            aws_endpoint=environ.get("AWS_ENDPOINT_URL") or None,
        )


@dataclass(frozen=True)
class DeployedStack:
    """A session's view of a stack it did not create."""

    target: Target
    tag: SessionTag
    stack: TraceStack
    users: UserDirectory

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    def cli_environment(self) -> dict[str, str]:
        return {}  # the shell's own settings reach the real user pool

    def start_scenario(self) -> None:
        """Nothing to reset: the suite owns no gate or clock here."""

    def function_log(self) -> list[str]:
        """The function's logs are in the stack's CloudWatch, out of the suite's reach."""
        return []

    def revoke(self, role: str, action: str) -> NoReturn:
        raise NotOnThisTarget(f"a change to the {role}'s role")

    @property
    def gate(self) -> NoReturn:
        raise NotOnThisTarget("the S3 gate")

    @property
    def gateway(self) -> NoReturn:
        raise NotOnThisTarget("the local API Gateway")

    @property
    def function(self) -> NoReturn:
        raise NotOnThisTarget("the local function")

    @classmethod
    @contextmanager
    def session(cls, where: DeployedTarget) -> Iterator[DeployedStack]:
        tag = SessionTag.new()
        aws = AwsEndpoint(where.aws_endpoint, where.region, fake_credentials=False)
        pool = UserPool(where.user_pool_id, where.client_id, where.region, "")
        cognito = aws.client("cognito-idp")
        footprint = StackFootprint(
            cognito,
            aws.client("dynamodb"),
            aws.client("s3"),
            where.user_pool_id,
            where.table,
            where.bucket,
        )
        footprint.remove_leftovers(tag)
        # The agent runtime's clients, from this shell's environment (endpoints included).
        session: Any = boto3.session.Session(region_name=where.region)
        agent = AgentRuntime(
            session.client("s3"), session.client("dynamodb"), where.bucket, where.table
        )
        users = UserDirectory(cognito, pool, tag=str(tag))
        try:
            yield cls(
                target=target_for(api_url=where.api_url, emulator=None),
                tag=tag,
                stack=TraceStack(aws, agent, pool, where.api_url, where.bucket, where.table),
                users=users,
            )
        finally:
            for user in users.created():
                footprint.remove_user(user.username, user.sub)
