"""Checking a header-signed AWS request (SigV4) as AWS does, with botocore's own signer as
the reference: the request is rebuilt from what arrived (method, raw path and query,
the headers it says it signed, its payload hash) and signed again with the secret of
the identity its access key id names."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from testkit.aws.iam import Identities, Identity
from testkit.aws.local_server import Request

ALLOWED_SKEW = timedelta(minutes=15)
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request,\s*SignedHeaders=(?P<signed>[^,\s]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Verdict:
    """Who signed the request, or the error code AWS would answer with."""

    identity: Identity | None
    error: str = ""  # "" when the signature holds


def verify_request(
    request: Request, identities: Identities, *, region: str, service: str
) -> Verdict:
    """``verify_header_signature`` for a request as a gate read it, at the real time."""
    return verify_header_signature(
        method=request.method,
        raw_path=request.target.path,
        raw_query=request.target.query,
        headers=request.lower,
        body=request.body,
        identities=identities,
        region=region,
        service=service,
        now=datetime.now(UTC),
    )


def is_sigv2(authorization: str, query: str) -> bool:
    return authorization.startswith("AWS ") or "AWSAccessKeyId=" in query


def verify_header_signature(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: dict[str, str],  # lower-case names
    body: bytes,
    identities: Identities,
    region: str,
    service: str,
    now: datetime,
) -> Verdict:
    authorization = headers.get("authorization", "")
    if not authorization:
        return Verdict(None, "AccessDenied")  # an anonymous request: no grant applies
    parsed = _AUTHORIZATION.match(authorization)
    if parsed is None:
        return Verdict(None, "IncompleteSignature")
    identity = identities.by_access_key(parsed["key"])
    if identity is None:
        return Verdict(None, "InvalidAccessKeyId")
    if (parsed["region"], parsed["service"]) != (region, service):
        return Verdict(identity, "SignatureDoesNotMatch")
    amz_date = headers.get("x-amz-date", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return Verdict(identity, "AccessDenied")
    if abs(now - signed_at) > ALLOWED_SKEW:
        return Verdict(identity, "RequestTimeTooSkewed")
    names = parsed["signed"].split(";")
    if "host" not in names or any(name not in headers for name in names):
        return Verdict(identity, "SignatureDoesNotMatch")
    url = f"http://{headers['host']}{raw_path}" + (f"?{raw_query}" if raw_query else "")
    request = AWSRequest(method=method, url=url, headers={n: headers[n] for n in names}, data=body)
    request.context["timestamp"] = amz_date
    signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_class(
        Credentials(identity.access_key_id, identity.secret_access_key), service, region
    )
    payload_hash = headers.get("x-amz-content-sha256", "")
    if re.fullmatch(r"[0-9a-f]{64}", payload_hash) and (
        hashlib.sha256(body).hexdigest() != payload_hash
    ):
        return Verdict(identity, "XAmzContentSHA256Mismatch")
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != parsed["signature"]:
        return Verdict(identity, "SignatureDoesNotMatch")
    return Verdict(identity)
