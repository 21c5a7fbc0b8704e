"""boto3 clients for the agent runtime: built once per process, on first use, from the
environment the runtime gives it (region, endpoint, credentials), and reused.

Building a client costs tens of milliseconds; a task ends with several AWS calls.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# A task must end promptly even when S3 or DynamoDB accepts connections and never
# answers: botocore's defaults (60 s reads, several retries) would hold the terminal
# write for minutes. Trace uploads are fail-open, so bounded waits lose nothing.
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2})


@cache
def client(service: str) -> Any:
    return _session().client(service, config=CLIENT_CONFIG)


@cache
def _session() -> Any:  # Any: the service is chosen at run time
    # One session for both clients: each new session loads the service models again.
    return boto3.session.Session()
