"""Running the acceptance suite against a stack it did not start: a deployed dev stack,
or the sandbox in another shell standing in for one.

Set ``TRACE_SUITE_API_URL`` and the suite drives that API instead of starting moto,
the S3 gate and its local API Gateway. It runs the agent's code here, writing to
the stack's bucket and table as the agent runtime would, with the credentials the
environment holds, and creates its users (named for the session) in the stack's
user pool, deleting them at the end.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from trace_infra.definitions import ENV_TASK_TABLE, ENV_TRACE_BUCKET

ENV_API_URL = "TRACE_SUITE_API_URL"
ENV_USER_POOL_ID = "TRACE_SUITE_USER_POOL_ID"
ENV_CLIENT_ID = "TRACE_SUITE_CLIENT_ID"


class IncompleteTarget(Exception):
    """TRACE_SUITE_API_URL is set, but not everything the suite needs with it."""


@dataclass(frozen=True)
class DeployedStack:
    api_url: str
    user_pool_id: str
    client_id: str
    region: str
    bucket: str
    table: str
    aws_endpoint: str | None  # AWS_ENDPOINT_URL, when the "deployed" stack is local

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> DeployedStack | None:
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
