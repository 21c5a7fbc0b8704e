"""Who signed a request, and what their role allows, as AWS decides it.

Each layer runs under a role of its own (an access key id and secret), as it does
on AWS; the gates in front of moto authorize every request against that role's
policy, built from the same grants as the CDK constructs (``trace_infra.definitions``):
a grant changed there changes what is allowed here. Evaluation is IAM's for identity
policies of Allow statements: a request is allowed when some statement names its
action and its resource (``*`` and ``?`` wildcards), and denied otherwise.

Signatures are checked with botocore's own signers as the reference: the request is
rebuilt from what arrived (method, raw path and query, the headers it says it
signed, exactly) and signed again with the secret of the role its access key id
names; its credential's date must be the day it says it was signed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from urllib.parse import parse_qsl

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from testkit.aws.local_server import Request
from trace_infra.definitions import TRACE_KEY_PREFIX, Grant, Scope

ACCOUNT_ID = "123456789012"  # moto's default account
ALGORITHM = "AWS4-HMAC-SHA256"
ALLOWED_SKEW = timedelta(minutes=15)
# What another team's policy may say for this stack's own names (testkit.conformance.profile).
POLICY_PLACEHOLDERS = ("${TraceBucket}", "${TaskTable}", "${Region}", "${Account}")
MAX_EXPIRES_SECONDS = 7 * 24 * 3600
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def allows(self, action: str, resource: str) -> bool:
        # IAM reads action names without regard to case; resources are case-sensitive.
        return any(fnmatchcase(action.lower(), a.lower()) for a in self.actions) and any(
            fnmatchcase(resource, r) for r in self.resources
        )


@dataclass(frozen=True)
class ResourceArns:
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

    def substitute(self, written: str) -> str:
        """A policy's resource with its placeholders made this stack's own."""
        values = (self.bucket, self.table, self.region, ACCOUNT_ID)
        for placeholder, value in zip(POLICY_PLACEHOLDERS, values, strict=True):
            written = written.replace(placeholder, value)
        return written


def statements_for(grants: Iterable[Grant], arns: ResourceArns) -> list[Statement]:
    return [Statement(grant.actions, (arns.of(grant.scope),)) for grant in grants]


@dataclass
class Role:
    """A role as the local stack knows it: credentials and the statements it holds."""

    name: str
    access_key_id: str
    secret_access_key: str
    statements: list[Statement] = field(default_factory=list)

    def allows(self, action: str, resource: str) -> bool:
        return any(statement.allows(action, resource) for statement in self.statements)


class Roles:
    """Every role of the local stack, by access key id."""

    _REFUSALS_KEPT = 20

    def __init__(self) -> None:
        self._by_key: dict[str, Role] = {}
        self._lock = threading.Lock()
        # What IAM refused since the scenario began, for the verdict of one that failed.
        self.refusals: list[str] = []

    def refused(self, role: Role, action: str, resource: str, consequence: str = "") -> None:
        said = f"{role.name} is not allowed {action} on {resource}"
        with self._lock:
            if len(self.refusals) < self._REFUSALS_KEPT:
                self.refusals.append(f"{said}: {consequence}" if consequence else said)

    def create(self, name: str, statements: list[Statement]) -> Role:
        return self.add(self.new_role(name, statements))

    @staticmethod
    def new_role(name: str, statements: list[Statement]) -> Role:
        """A role with credentials of its own, known to no ``Roles`` yet."""
        key_id = "AKIA" + secrets.token_hex(8).upper()
        return Role(name, key_id, secrets.token_urlsafe(30), list(statements))

    def add(self, role: Role) -> Role:
        with self._lock:
            self._by_key[role.access_key_id] = role
        return role

    def by_access_key(self, access_key_id: str) -> Role | None:
        with self._lock:
            return self._by_key.get(access_key_id)

    def revoke(self, role: Role, action: str) -> Callable[[], None]:
        """Take ``action`` out of every statement of the role; returns the undo."""
        before = list(role.statements)
        role.statements = self.without(before, action)

        def restore() -> None:
            role.statements = before

        return restore

    @staticmethod
    def without(statements: list[Statement], action: str) -> list[Statement]:
        return [
            Statement(tuple(a for a in s.actions if a != action), s.resources) for s in statements
        ]


@dataclass(frozen=True)
class Verdict:
    """Who signed the request, or the error code AWS would answer with."""

    role: Role | None
    error: str = ""  # "" when the signature holds


@dataclass(frozen=True)
class PresignedRequest:
    """What a gate saw of one presigned request, for the suite to check."""

    algorithm: str
    signed_at: datetime
    expires_seconds: int
    verdict: str  # "ok" or the S3 error code it answered
    role: Role | None = None
    signature: str = ""  # a secret: whoever holds the link may fetch the trace


def is_sigv2(authorization: str, query: str) -> bool:
    return authorization.startswith("AWS ") or "AWSAccessKeyId=" in query


def verify_request(request: Request, roles: Roles, *, region: str, service: str) -> Verdict:
    """A header-signed request, checked at the real time."""
    headers = request.lower
    authorization = headers.get("authorization", "")
    if not authorization:
        return Verdict(None, "AccessDenied")  # an anonymous request: no grant applies
    parsed = _AUTHORIZATION.match(authorization)
    if parsed is None:
        return Verdict(None, "IncompleteSignature")
    role = roles.by_access_key(parsed["key"])
    if role is None:
        return Verdict(None, "InvalidAccessKeyId")
    amz_date = headers.get("x-amz-date", "")
    signed_at = _parse_time(amz_date)
    if signed_at is None:
        return Verdict(role, "AccessDenied")
    scope = (parsed["date"], parsed["region"], parsed["service"])
    if scope != (amz_date[:8], region, service):
        return Verdict(role, "SignatureDoesNotMatch")
    if abs(datetime.now(UTC) - signed_at) > ALLOWED_SKEW:
        return Verdict(role, "RequestTimeTooSkewed")
    names = parsed["signed"].split(";")
    if "host" not in names or any(name not in headers for name in names):
        return Verdict(role, "SignatureDoesNotMatch")
    payload_hash = headers.get("x-amz-content-sha256", "")
    if re.fullmatch(r"[0-9a-f]{64}", payload_hash) and (
        hashlib.sha256(request.body).hexdigest() != payload_hash
    ):
        return Verdict(role, "XAmzContentSHA256Mismatch")
    signer = (_S3Signed if service == "s3" else _ExactlySigned)(_credentials(role), service, region)
    rebuilt = AWSRequest(
        method=request.method,
        url=_url(headers, request.target.path, request.target.query),
        headers={name: headers[name] for name in names},
        data=request.body,
    )
    if _signature(signer, rebuilt, amz_date) != parsed["signature"]:
        return Verdict(role, "SignatureDoesNotMatch")
    return Verdict(role)


def verify_presigned(
    request: Request, roles: Roles, *, region: str, now: datetime
) -> PresignedRequest:
    """A query-signed S3 request (a presigned link), checked at ``now``: the scenario's
    clock, which ages links."""
    params = parse_qsl(request.target.query, keep_blank_values=True)
    query = dict(params)
    algorithm = query.get("X-Amz-Algorithm", "")
    signed_at = _parse_time(query.get("X-Amz-Date", ""))
    try:
        expires = int(query["X-Amz-Expires"])
        key_id, _, scope = query["X-Amz-Credential"].partition("/")
        names = query["X-Amz-SignedHeaders"].split(";")
        signature = query["X-Amz-Signature"]
    except (KeyError, ValueError):
        signed_at = None
    if signed_at is None:
        return PresignedRequest(algorithm, now, 0, "AuthorizationQueryParametersError")
    role = roles.by_access_key(key_id)

    def seen(verdict: str) -> PresignedRequest:
        return PresignedRequest(algorithm, signed_at, expires, verdict, role, signature)

    if algorithm != ALGORITHM or not 1 <= expires <= MAX_EXPIRES_SECONDS:
        return seen("AuthorizationQueryParametersError")
    if scope.split("/") != [query["X-Amz-Date"][:8], region, "s3", "aws4_request"]:
        return seen("AuthorizationQueryParametersError")
    if role is None:
        return seen("InvalidAccessKeyId")
    signer = _S3QuerySigned(_credentials(role), "s3", region, expires=expires)
    rebuilt = AWSRequest(
        method=request.method,
        url=_url(request.lower, request.target.path, ""),
        headers={name: request.lower.get(name, "") for name in names},
        # A list, not a mapping: a repeated parameter is signed as often as it is sent.
        params=[(k, v) for k, v in params if k != "X-Amz-Signature"],  # type: ignore[arg-type]
    )
    if _signature(signer, rebuilt, query["X-Amz-Date"]) != signature:
        return seen("SignatureDoesNotMatch")
    if signed_at > now + ALLOWED_SKEW:
        return seen("RequestNotYetValid")
    if now > signed_at + timedelta(seconds=expires):
        return seen("AccessDenied")  # S3: "Request has expired"
    return seen("ok")


class _ExactlySigned(SigV4Auth):
    """Signs exactly the headers the request carries: the ones it says it signed.
    botocore's own signing leaves some out (User-Agent, Expect), which AWS signs when a
    client names them."""

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        signed = HTTPHeaders()
        for name, value in request.headers.items():
            signed[name] = value
        return signed


class _S3Signed(_ExactlySigned, S3SigV4Auth):
    pass


class _S3QuerySigned(_ExactlySigned, S3SigV4QueryAuth):
    pass


def _signature(signer: SigV4Auth, request: AWSRequest, amz_date: str) -> str:
    request.context["timestamp"] = amz_date
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _credentials(role: Role) -> Credentials:
    return Credentials(role.access_key_id, role.secret_access_key)


def _url(headers: dict[str, str], raw_path: str, raw_query: str) -> str:
    return f"http://{headers.get('host', '')}{raw_path}" + (f"?{raw_query}" if raw_query else "")


def _parse_time(amz_date: str) -> datetime | None:
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
