"""The whole round trip's AWS side running in this process, for the sandbox and the
benchmarks: moto, the S3 gate and the API gateway on 127.0.0.1, with the stack's
bucket, table and user pool."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from trace_agent.pipeline import run_task
from trace_agent.task_config import TaskConfig
from trace_agent.task_record import TaskRecords
from trace_harness.api_gateway import CognitoAuthorizer, LocalApiGateway
from trace_harness.identities import User, create_user, create_user_pool
from trace_harness.local_aws import REGION, TEST_SECRET_ACCESS_KEY, MotoServer
from trace_harness.s3_gate import S3Gate
from trace_harness.stack import StackNames, TraceStack, code_under_test_environment
from trace_infra.handlers.get_trace_url import lambda_handler


@dataclass(frozen=True)
class RunningStack:
    moto: MotoServer
    gate: S3Gate
    gateway: LocalApiGateway
    stack: TraceStack

    @property
    def api_url(self) -> str:
        return self.stack.api_url

    def add_user(self, name: str, password: str) -> User:
        return create_user(self.moto.client("cognito-idp"), self.stack.pool, name, password)

    def finished_task(
        self, owner: User, events: Iterable[Mapping[str, Any]], *, trace: bool = True
    ) -> str:
        """A task submitted for ``owner`` and run to its end by the real pipeline."""
        task_id = f"task-{uuid.uuid4().hex[:12]}"
        self.stack.submit_task(task_id, owner.sub, trace=trace)
        run_task(
            TaskConfig(task_id, owner.sub, trace=trace),
            events,
            records=TaskRecords.from_environment(),
        )
        return task_id


@contextmanager
def running_stack() -> Iterator[RunningStack]:
    moto = MotoServer.start()
    gate = S3Gate(moto.endpoint, secret_key=TEST_SECRET_ACCESS_KEY, region=REGION)
    gate.start()
    names = StackNames.unique()
    # The agent and the handler run in this process and read these, as in AWS.
    environment = code_under_test_environment(moto, gate.url, names)
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    gateway = LocalApiGateway(lambda_handler)
    api_url = gateway.start()
    try:
        pool = create_user_pool(
            moto.client("cognito-idp"), name="bgagent-users", region=REGION, endpoint=moto.endpoint
        )
        gateway.authorizer = CognitoAuthorizer(pool)
        yield RunningStack(moto, gate, gateway, TraceStack.build(moto, pool, api_url, names))
    finally:
        gateway.stop()
        gate.stop()
        moto.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
