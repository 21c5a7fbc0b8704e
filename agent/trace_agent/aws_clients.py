"""boto3 clients for the agent runtime, built once per configuration and reused.

Building a client costs tens of milliseconds; a task ends with several AWS
calls. The cache key follows the environment boto3 reads, so a changed region
or endpoint gets a fresh client.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import boto3


def client(service: str) -> Any:
    environ = os.environ
    return _client(
        service,
        environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION"),
        environ.get(f"AWS_ENDPOINT_URL_{service.upper()}") or environ.get("AWS_ENDPOINT_URL"),
        environ.get("AWS_ACCESS_KEY_ID"),
    )


@lru_cache(maxsize=8)
def _client(service: str, region: str | None, endpoint: str | None, key_id: str | None) -> Any:
    del endpoint, key_id  # boto3 reads them from the environment; they key the cache only
    return boto3.session.Session(region_name=region).client(service)
