"""boto3 clients for the agent runtime: built once per process, on first use, from the
environment the runtime gives it (region, endpoint, credentials), and reused.

Building a client costs tens of milliseconds; a task ends with several AWS calls.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:
    session: Any = boto3.session.Session()  # the service is chosen at run time
    return session.client(service)
