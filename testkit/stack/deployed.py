"""Running the acceptance suite against a stack it did not start: a deployed dev stack,
or the sandbox in another shell standing in for one.

Set ``TRACE_SUITE_API_URL`` and the suite drives that API instead of starting moto,
the S3 gate and its local API Gateway. It runs the agent's code here, writing to
the stack's bucket and table as the agent runtime would, with the credentials the
environment holds, and creates its users (with random passwords) in the stack's
user pool.

Nothing else of the stack is changed: no policy, no tag, no other user, item or
object. What the session added (its lease, its users, their task records and
stored traces), all carrying its marker, is removed when it ends; what a session
that is over (killed, or crashed) left behind is removed by a later one, once its
lease is over (``testkit.stack.footprint``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import boto3

from testkit.aws.endpoint import AwsEndpoint
from testkit.settings import DeployedTarget, NotOnThisTarget
from testkit.stack.footprint import Footprint, Mark
from testkit.stack.resources import AgentRuntime, Resources
from testkit.stack.users import UserDirectory, UserPool
from trace_infra.definitions import ENV_TASK_TABLE, ENV_TRACE_BUCKET


@dataclass(frozen=True)
class DeployedStack:
    """A session's view of a stack it did not create."""

    resources: Resources
    users: UserDirectory

    def cli_environment(self) -> dict[str, str]:
        return {}  # the shell's own settings reach the real user pool

    def start_scenario(self) -> None:
        """Nothing to reset: the suite owns no gate or clock here."""

    def refusals(self) -> list[str]:
        return []  # IAM's decisions are in CloudTrail, out of the suite's reach

    def function_log_mark(self) -> int:
        """The function's logs are in the stack's CloudWatch, out of the suite's reach."""
        return 0

    def function_log_since(self, mark: int) -> list[str]:
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
    def session(cls, where: DeployedTarget, *, lease_seconds: int) -> Iterator[DeployedStack]:
        mark = Mark.new()
        aws = AwsEndpoint(where.aws_endpoint, where.region, fake_credentials=False)
        pool = UserPool(where.user_pool_id, where.client_id, where.region, "")
        cognito = aws.client("cognito-idp")
        footprint = Footprint(
            cognito,
            aws.client("dynamodb"),
            aws.client("s3"),
            where.user_pool_id,
            where.table,
            where.bucket,
        )
        footprint.remove_leftovers(mark)
        lease = footprint.lease(mark, lease_seconds)
        lease.hold()  # before anything is created, so that it proves it all
        users = UserDirectory(cognito, pool, mark=mark)
        try:
            # The agent runtime's clients, from this shell's environment (endpoints
            # included).
            session: Any = boto3.session.Session(region_name=where.region)
            agent = AgentRuntime(
                session.client("s3"),
                session.client("dynamodb"),
                where.bucket,
                where.table,
                # The shell's credentials reach the stack; the names are the stack's.
                environment={ENV_TRACE_BUCKET: where.bucket, ENV_TASK_TABLE: where.table},
            )
            yield cls(
                resources=Resources(
                    aws, agent, pool, where.api_url, where.bucket, where.table, mark
                ),
                users=users,
            )
        finally:
            lease.stop()
            for user in users.created():
                footprint.remove_user(user.username, user.sub, mark)
            # Only once all it proves is gone: a removal cut short is finished later.
            lease.release()
