"""What a suite session adds to a stack it shares with others, marked so that clean-up
only ever removes what the suite itself created.

A session is named ``bgsuite-<start, hex>-<random>`` and holds a lease: the object
``bgsuite-leases/<session>.json`` in a bucket it writes to, holding a random proof
and the lease's length, rewritten four times per length while the session runs.
What the session creates carries its marker, ``<session>.<proof>``:

- a user, in its ``profile`` attribute;
- a task record, in its ``suite_session`` attribute;
- on an emulator the suite did not start, its bucket, table and user pool, in a tag.

A stored trace is the agent's writing, not the suite's: it is removed with its owner,
under the owner's key prefix (``traces/<sub>/``), which Cognito's ``sub`` makes that
user's alone.

A session is over when its lease has not been rewritten for its length, by S3's own
clock (its ``Date`` against the lease's ``LastModified``): not by host, process or age,
so a session in another PID namespace, or one running for days, is never over while
it renews. Clean-up removes only what carries the marker of a session that is over,
with the proof that session's lease holds: a name that looks like the suite's proves
nothing, and neither does a marker without its lease. A session whose lease is
missing, unreadable or still renewed is never touched. The lease goes last, once
what it proves is gone, so a clean-up cut short is finished by the next session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from trace_infra.definitions import TASK_TABLE, caller_key_prefix

PREFIX = "bgsuite"
LEASE_PREFIX = f"{PREFIX}-leases/"
USER_MARKER = "profile"  # a standard attribute: custom ones would change the pool's schema
ITEM_MARKER = "suite_session"
TAG_KEY = "bgsuite-session"
# Long enough for a session on a loaded machine to renew it three times over.
DEFAULT_LEASE_SECONDS = 300

_SESSION = rf"{PREFIX}-[0-9a-f]{{1,16}}-[0-9a-f]{{8}}"
_MARK = re.compile(rf"(?P<session>{_SESSION})\.(?P<proof>[0-9a-f]{{32}})")
_LEASE_KEY = re.compile(rf"{re.escape(LEASE_PREFIX)}(?P<session>{_SESSION})\.json")
_BY_USER = next(i.name for i in TASK_TABLE.global_indexes if i.partition_key == "user_id")


class LeaseRefused(RuntimeError):
    """The stack refused the session its lease: it may create nothing there."""


@dataclass(frozen=True)
class Mark:
    """A session's name and the proof its lease holds: what it writes on all it creates."""

    session: str
    proof: str

    @classmethod
    def new(cls) -> Mark:
        return cls(f"{PREFIX}-{int(time.time()):x}-{secrets.token_hex(4)}", secrets.token_hex(16))

    @classmethod
    def read(cls, value: object) -> Mark | None:
        """The mark a marker holds; None for anything else, however close."""
        if not isinstance(value, str):
            return None
        found = _MARK.fullmatch(value)
        return None if found is None else cls(found["session"], found["proof"])

    def __str__(self) -> str:
        return f"{self.session}.{self.proof}"


def lease_key(session: str) -> str:
    return f"{LEASE_PREFIX}{session}.json"


@dataclass
class Lease:
    """A session's claim on what it creates, in ``bucket``: taken before anything is
    created, renewed in the background while the session runs, released last."""

    s3: Any
    bucket: str
    mark: Mark
    seconds: int
    _stop: threading.Event | None = None
    _renewer: threading.Thread | None = None

    def renew(self) -> None:
        held = {
            "proof": self.mark.proof,
            "seconds": self.seconds,
            # For a person reading the bucket; clean-up never reads them.
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
        self.s3.put_object(
            Bucket=self.bucket,
            Key=lease_key(self.mark.session),
            Body=json.dumps(held).encode(),
            ContentType="application/json",
        )

    def hold(self) -> None:
        """Take the lease now and renew it until ``stop``; a lease refused stops the
        session, saying what it needs."""
        try:
            self.renew()
        except ClientError as refused:
            raise LeaseRefused(
                f"the session's lease s3://{self.bucket}/{lease_key(self.mark.session)} "
                f"could not be written ({refused.response['Error'].get('Code', refused)}): "
                f"the suite needs s3:PutObject, s3:GetObject and s3:DeleteObject on "
                f"{LEASE_PREFIX}* in that bucket"
            ) from None
        stop = threading.Event()

        def renewing() -> None:
            while not stop.wait(self.seconds / 4):
                # A failed renewal is tried again; the lease's length allows three.
                with contextlib.suppress(Exception):
                    self.renew()

        self._stop = stop
        self._renewer = threading.Thread(target=renewing, name="lease", daemon=True)
        self._renewer.start()

    def stop(self) -> None:
        if self._stop is not None and self._renewer is not None:
            self._stop.set()
            self._renewer.join()

    def release(self) -> None:
        """Give the lease up, once everything it proves is gone."""
        self.stop()
        self.s3.delete_object(Bucket=self.bucket, Key=lease_key(self.mark.session))


def over_lease(s3: Any, bucket: str, session: str) -> Mark | None:
    """The mark of ``session`` if its lease in ``bucket`` is over; None while it is
    renewed, or when there is no lease there that the suite could have written."""
    try:
        answer = s3.get_object(Bucket=bucket, Key=lease_key(session))
    except s3.exceptions.ClientError:
        return None
    body = answer["Body"].read(4096)
    try:
        held = json.loads(body)
        proof, seconds = held["proof"], held["seconds"]
    except (ValueError, TypeError, KeyError, RecursionError):  # nested past the limit
        return None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        return None
    mark = Mark.read(f"{session}.{proof}")
    if mark is None:
        return None
    date = answer["ResponseMetadata"]["HTTPHeaders"].get("date")
    try:
        # S3 always says its time; an emulator in this process may not, and shares
        # this machine's clock.
        now = datetime.now(UTC) if date is None else parsedate_to_datetime(date)
        age = (now - answer["LastModified"]).total_seconds()
    except (TypeError, ValueError):  # a time that is no time: nothing to judge by
        return None
    return mark if age >= seconds else None


def over_sessions(s3: Any, bucket: str, current: Mark) -> dict[str, Mark]:
    """The sessions whose lease in ``bucket`` is over, by name (never ``current``)."""
    over = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LEASE_PREFIX):
        for stored in page.get("Contents", []):
            found = _LEASE_KEY.fullmatch(stored["Key"])
            if found is None or found["session"] == current.session:
                continue
            mark = over_lease(s3, bucket, found["session"])
            if mark is not None:
                over[mark.session] = mark
    return over


def proven(marker: object, over: dict[str, Mark]) -> Mark | None:
    """The mark of a session that is over, if ``marker`` is exactly that mark."""
    mark = Mark.read(marker)
    return mark if mark is not None and over.get(mark.session) == mark else None


@dataclass(frozen=True)
class Footprint:
    """Where a session's users leave things on a stack it did not create: the stack's
    pool, table and bucket (where the leases also are)."""

    cognito: Any
    dynamodb: Any
    s3: Any
    pool_id: str
    table: str
    bucket: str

    def lease(self, mark: Mark, seconds: int) -> Lease:
        return Lease(self.s3, self.bucket, mark, seconds)

    def remove_user(self, username: str, sub: str, mark: Mark) -> None:
        """The user, their task records that carry ``mark``, and their stored traces."""
        query = {
            "TableName": self.table,
            "IndexName": _BY_USER,
            "KeyConditionExpression": "user_id = :u",
            "ExpressionAttributeValues": {":u": {"S": sub}},
            "ProjectionExpression": "task_id",
        }
        for page in self.dynamodb.get_paginator("query").paginate(**query):
            for item in page.get("Items", []):
                # Checked by DynamoDB as it deletes: an item the suite did not write stays.
                with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
                    self.dynamodb.delete_item(
                        TableName=self.table,
                        Key={"task_id": item["task_id"]},
                        ConditionExpression="#m = :m",
                        ExpressionAttributeNames={"#m": ITEM_MARKER},
                        ExpressionAttributeValues={":m": {"S": str(mark)}},
                    )
        listing = self.s3.get_paginator("list_objects_v2")
        for page in listing.paginate(Bucket=self.bucket, Prefix=caller_key_prefix(sub)):
            for stored in page.get("Contents", []):
                self.s3.delete_object(Bucket=self.bucket, Key=stored["Key"])
        with contextlib.suppress(self.cognito.exceptions.UserNotFoundException):
            self.cognito.admin_delete_user(UserPoolId=self.pool_id, Username=username)

    def remove_leftovers(self, current: Mark) -> list[str]:
        """Remove the users (with their tasks and traces) of sessions that are over, then
        their leases; returns the users removed."""
        over = over_sessions(self.s3, self.bucket, current)
        if not over:
            return []
        removed = []
        for user in self._suite_named_users():
            attributes = {a["Name"]: a["Value"] for a in user.get("Attributes", [])}
            mark = proven(attributes.get(USER_MARKER), over)
            if mark is None or "sub" not in attributes:
                continue
            self.remove_user(user["Username"], attributes["sub"], mark)
            removed.append(user["Username"])
        for session in over:
            self.s3.delete_object(Bucket=self.bucket, Key=lease_key(session))
        return removed

    def _suite_named_users(self) -> Iterator[dict[str, Any]]:
        """The users whose names start as the suite names them: a narrowing of the
        listing only; their marker decides."""
        pages = self.cognito.get_paginator("list_users").paginate(
            UserPoolId=self.pool_id, Filter=f'username ^= "{PREFIX}-"'
        )
        for page in pages:
            yield from page.get("Users", [])


@dataclass(frozen=True)
class Clients:
    """The clients of an emulator the suite builds its stacks in, shared with others."""

    s3: Any
    dynamodb: Any
    cognito: Any


def remove_stack(aws: Clients, *, bucket: str, table: str, pool_id: str, lease: Lease) -> None:
    """A session's own bucket, table and pool on an emulator that outlives it; the
    bucket, which holds the lease, last."""
    lease.stop()
    aws.cognito.delete_user_pool(UserPoolId=pool_id)
    aws.dynamodb.delete_table(TableName=table)
    _empty_and_delete(aws.s3, bucket, lease=lease_key(lease.mark.session))


def remove_leftover_stacks(aws: Clients, current: Mark) -> list[str]:
    """What sessions that are over left on a shared emulator: the pools, tables and
    buckets tagged with their marker, each proven by the lease in that session's
    bucket; returns the names removed."""
    over: dict[str, Mark] = {}
    buckets: dict[str, Mark] = {}
    for bucket in aws.s3.list_buckets().get("Buckets", []):
        name = bucket["Name"]
        if not name.startswith(f"{PREFIX}-"):
            continue
        mark = Mark.read(_bucket_tag(aws.s3, name))
        if mark is None or mark.session == current.session:
            continue
        if over_lease(aws.s3, name, mark.session) == mark:
            over[mark.session] = buckets[name] = mark
    if not over:
        return []
    # Another session starting now may find the same stacks over and remove a part
    # first: a part gone meanwhile is gone, as asked.
    removed = []
    for pool in _user_pools(aws.cognito):
        with _unless_gone():
            described = aws.cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
            if proven(described.get("UserPoolTags", {}).get(TAG_KEY), over):
                aws.cognito.delete_user_pool(UserPoolId=pool["Id"])
                removed.append(pool["Name"])
    for table in _tables(aws.dynamodb):
        with _unless_gone():
            arn = aws.dynamodb.describe_table(TableName=table)["Table"]["TableArn"]
            tags = aws.dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
            if proven(next((t["Value"] for t in tags if t["Key"] == TAG_KEY), None), over):
                aws.dynamodb.delete_table(TableName=table)
                removed.append(table)
    for name, mark in buckets.items():
        with _unless_gone():
            _empty_and_delete(aws.s3, name, lease=lease_key(mark.session))
            removed.append(name)
    return removed


_GONE = frozenset({"ResourceNotFoundException", "NoSuchBucket"})


@contextlib.contextmanager
def _unless_gone() -> Iterator[None]:
    """Passes over a pool, table or bucket that no longer exists."""
    try:
        yield
    except ClientError as err:
        if err.response.get("Error", {}).get("Code") not in _GONE:
            raise


def _bucket_tag(s3: Any, bucket: str) -> str | None:
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except s3.exceptions.ClientError:
        return None  # no tags, or not ours to read
    return next((t["Value"] for t in tags if t["Key"] == TAG_KEY), None)


def _user_pools(cognito: Any) -> Iterator[dict[str, Any]]:
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        yield from (p for p in page.get("UserPools", []) if p["Name"].startswith(f"{PREFIX}-"))


def _tables(dynamodb: Any) -> Iterator[str]:
    for page in dynamodb.get_paginator("list_tables").paginate():
        yield from (t for t in page.get("TableNames", []) if t.startswith(f"{PREFIX}-"))


def _empty_and_delete(s3: Any, bucket: str, *, lease: str) -> None:
    """Every object but the lease, then the lease, then the bucket: a removal cut short
    keeps the proof the next session needs to finish it."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for stored in page.get("Contents", []):
            if stored["Key"] != lease:
                s3.delete_object(Bucket=bucket, Key=stored["Key"])
    s3.delete_object(Bucket=bucket, Key=lease)
    s3.delete_bucket(Bucket=bucket)
