"""The local stack's identities and their policies, from ``trace_infra.definitions``.

Each layer runs under an identity of its own (an access key id and secret), as it
does on AWS under its role; the gates in front of moto authorize every request
against that identity's policy, which is built from the same grants the CDK
constructs are built from. A grant changed there changes what is allowed here.

Evaluation is IAM's for identity policies made of Allow statements: a request is
allowed when some statement names its action and its resource (``*`` and ``?``
wildcards), and denied otherwise.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from trace_infra.definitions import TRACE_KEY_PREFIX, Grant, Scope

ACCOUNT_ID = "123456789012"  # moto's default account


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str) -> bool:
        return any(fnmatchcase(action, a) for a in self.actions) and any(
            fnmatchcase(resource, r) for r in self.resources
        )


@dataclass(frozen=True)
class StackArns:
    bucket: str
    table: str
    region: str

    def of(self, scope: Scope) -> str:
        return {
            "trace objects": f"arn:aws:s3:::{self.bucket}/{TRACE_KEY_PREFIX}*",
            "trace bucket": f"arn:aws:s3:::{self.bucket}",
            "task table": self.table_arn(self.table),
        }[scope]

    def table_arn(self, table: str) -> str:
        return f"arn:aws:dynamodb:{self.region}:{ACCOUNT_ID}:table/{table}"


def statements_for(grants: Iterable[Grant], arns: StackArns) -> list[Statement]:
    return [Statement(grant.actions, (arns.of(grant.scope),)) for grant in grants]


@dataclass
class Identity:
    """A role as the local stack knows it: credentials and the statements it holds."""

    name: str
    access_key_id: str
    secret_access_key: str
    statements: list[Statement] = field(default_factory=list)

    def allows(self, action: str, resource: str) -> bool:
        return any(statement.allows(action, resource) for statement in self.statements)


class Identities:
    """Every identity of the local stack, by access key id."""

    def __init__(self) -> None:
        self._by_key: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def create(self, name: str, statements: list[Statement]) -> Identity:
        key_id = "AKIA" + secrets.token_hex(8).upper()
        identity = Identity(name, key_id, secrets.token_urlsafe(30), list(statements))
        with self._lock:
            self._by_key[key_id] = identity
        return identity

    def by_access_key(self, access_key_id: str) -> Identity | None:
        with self._lock:
            return self._by_key.get(access_key_id)

    def revoke(self, identity: Identity, action: str) -> Callable[[], None]:
        """Take ``action`` out of every statement of the identity; returns the undo."""
        before = list(identity.statements)
        identity.statements = [
            Statement(tuple(a for a in s.actions if a != action), s.resources)
            for s in identity.statements
        ]

        def restore() -> None:
            identity.statements = before

        return restore
