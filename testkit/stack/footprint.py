"""What a suite session adds to a stack, named so that it can always be found and removed.

Every user the suite signs up (and, on an emulator the suite did not start, every
bucket, table and user pool it creates) carries the session's tag:
``bgsuite-<start, hex>-<host>-<pid>``. Task records and stored traces belong to
those users. A session removes its own footprint when it ends, and at its start
removes what sessions that are over left behind (killed, or crashed): on this
host, a session is over when its process is gone; from another host, after
``MAX_SESSION_AGE``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from trace_infra.definitions import TASK_TABLE, caller_key_prefix

PREFIX = "bgsuite"
MAX_SESSION_AGE_SECONDS = 6 * 3600
_TAG = re.compile(
    rf"^{PREFIX}-(?P<started>[0-9a-f]+)-(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)-(?P<nonce>[0-9a-f]{{4}})"
)
_BY_USER = next(i.name for i in TASK_TABLE.global_indexes if i.partition_key == "user_id")


def is_running(pid: int) -> bool:
    """Whether a process of this machine still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _this_host() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


@dataclass(frozen=True)
class SessionTag:
    started: int
    host: str
    pid: int
    # Two stacks of one process started in the same second (the suite's, and one a
    # harness test starts) share moto's state: their names must still differ.
    nonce: str = "0000"

    @classmethod
    def new(cls) -> SessionTag:
        return cls(int(time.time()), _this_host(), os.getpid(), secrets.token_hex(2))

    @classmethod
    def found_in(cls, name: str) -> SessionTag | None:
        match = _TAG.match(name)
        if match is None:
            return None
        return cls(int(match["started"], 16), match["host"], int(match["pid"]), match["nonce"])

    def __str__(self) -> str:
        return f"{PREFIX}-{self.started:x}-{self.host}-{self.pid}-{self.nonce}"

    def is_over(self) -> bool:
        if time.time() - self.started > MAX_SESSION_AGE_SECONDS:
            return True
        return self.host == _this_host() and not is_running(self.pid)


def left_over(name: str, current: SessionTag) -> bool:
    """True for a name tagged by a session that is over (never the current one)."""
    tag = SessionTag.found_in(name)
    return tag is not None and tag != current and tag.is_over()


@dataclass(frozen=True)
class Footprint:
    """Where a session's users leave things: the stack's pool, table and bucket."""

    cognito: Any
    dynamodb: Any
    s3: Any
    pool_id: str
    table: str
    bucket: str

    def remove_user(self, username: str, sub: str) -> None:
        """The user, their task records and their stored traces."""
        query = {
            "TableName": self.table,
            "IndexName": _BY_USER,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": {"S": sub}},
            "ProjectionExpression": "task_id",
        }
        for page in self.dynamodb.get_paginator("query").paginate(**query):
            for item in page.get("Items", []):
                self.dynamodb.delete_item(TableName=self.table, Key={"task_id": item["task_id"]})
        listing = self.s3.get_paginator("list_objects_v2")
        for page in listing.paginate(Bucket=self.bucket, Prefix=caller_key_prefix(sub)):
            for stored in page.get("Contents", []):
                self.s3.delete_object(Bucket=self.bucket, Key=stored["Key"])
        with contextlib.suppress(self.cognito.exceptions.UserNotFoundException):
            self.cognito.admin_delete_user(UserPoolId=self.pool_id, Username=username)

    def remove_leftovers(self, current: SessionTag) -> list[str]:
        """Remove the users (with their tasks and traces) of sessions that are over."""
        removed = []
        pages = self.cognito.get_paginator("list_users").paginate(
            UserPoolId=self.pool_id, Filter=f'username ^= "{PREFIX}-"'
        )
        for page in pages:
            for user in page.get("Users", []):
                username = user["Username"]
                if not left_over(username, current):
                    continue
                sub = next(a["Value"] for a in user.get("Attributes", []) if a["Name"] == "sub")
                self.remove_user(username, sub)
                removed.append(username)
        return removed
