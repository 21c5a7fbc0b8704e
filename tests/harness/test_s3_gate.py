"""The gates refuse what AWS refuses and pass the rest to moto exactly as it was signed:
presigned links checked like S3 (signature, lifetime, dates, signer), header-signed
calls checked with botocore's signer, every call authorized against its signer's
policy, keys forwarded byte for byte."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
import requests
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from testkit.aws.auth import (
    ResourceArns,
    Role,
    Roles,
    Statement,
    verify_presigned,
    verify_request,
)
from testkit.aws.dynamodb_gate import DynamoDbGate
from testkit.aws.endpoint import REGION, MotoServer
from testkit.aws.local_server import read_request
from testkit.aws.resources import create_task_table
from testkit.aws.s3_gate import ChecksumStyle, Fault, S3Gate

BUCKET, TABLE = "gate-bucket", "gate-table"
NOWHERE = "http://127.0.0.1:9"  # never contacted: presigning is local


def client(service: str, endpoint: str, role: Role, **config: Any) -> Any:
    session: Any = boto3.session.Session(
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        region_name=REGION,
    )
    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, **config),
    )


# --- the presigned-link check, on its own -------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> tuple[Roles, Role]:
    roles = Roles()
    return roles, roles.create("signer", [])


def presign(
    role: Role, key: str = "traces/alice/t1.jsonl.gz", *, v4: bool = True, expires=900
) -> str:
    s3 = client("s3", NOWHERE, role)
    if not v4:
        s3 = boto3.client(
            "s3",
            endpoint_url=NOWHERE,
            region_name=REGION,
            aws_access_key_id=role.access_key_id,
            aws_secret_access_key=role.secret_access_key,
            config=Config(signature_version="s3"),
        )
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": key}, ExpiresIn=expires
    )


def verdict(roles: Roles, url: str, *, now: datetime | None = None, method="GET", **headers: str):
    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": method,
        "RAW_URI": f"{parts.path}?{parts.query}",
        "HTTP_HOST": parts.netloc,
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    request = read_request(environ)
    return verify_presigned(request, roles, region=REGION, now=now or datetime.now(UTC)).verdict


def test_a_fresh_botocore_link_passes(signer) -> None:
    roles, role = signer
    assert verdict(roles, presign(role)) == "ok"


def test_unusual_keys_pass_when_untouched(signer) -> None:
    roles, role = signer
    assert verdict(roles, presign(role, "traces/alice/tâche 1+2=%.jsonl.gz")) == "ok"


@pytest.mark.parametrize(
    ("old", "new"),
    [("traces/alice/", "traces/bob/"), ("X-Amz-Expires=900", "X-Amz-Expires=3600")],
    ids=["other-key", "longer-life"],
)
def test_a_changed_link_is_refused(signer, old: str, new: str) -> None:
    roles, role = signer
    assert verdict(roles, presign(role).replace(old, new)) == "SignatureDoesNotMatch"


def test_a_link_used_for_another_method_is_refused(signer) -> None:
    roles, role = signer
    assert verdict(roles, presign(role), method="DELETE") == "SignatureDoesNotMatch"


def test_a_link_is_refused_once_its_lifetime_has_passed(signer) -> None:
    roles, role = signer
    url = presign(role)
    assert verdict(roles, url, now=datetime.now(UTC) + timedelta(seconds=899)) == "ok"
    assert verdict(roles, url, now=datetime.now(UTC) + timedelta(seconds=901)) == ("AccessDenied")


def test_a_link_dated_beyond_the_clock_skew_is_refused(signer) -> None:
    roles, role = signer
    url = presign(role)
    early = datetime.now(UTC) - timedelta(minutes=16)
    assert verdict(roles, url, now=early) == "RequestNotYetValid"
    assert verdict(roles, url, now=datetime.now(UTC) - timedelta(minutes=14)) == "ok"


def test_a_link_over_seven_days_is_refused(signer) -> None:
    roles, role = signer
    url = presign(role).replace("X-Amz-Expires=900", "X-Amz-Expires=604801")
    assert verdict(roles, url) == "AuthorizationQueryParametersError"


def test_a_link_of_an_unknown_access_key_is_refused(signer) -> None:
    roles, _ = signer
    stranger = Role("stranger", "AKIASTRANGER0000", "secret")
    assert verdict(roles, presign(stranger)) == "InvalidAccessKeyId"


def test_a_link_whose_credential_names_another_day_is_refused(signer) -> None:
    roles, role = signer
    url = presign(role)
    day = re.search(r"X-Amz-Date=(\d{8})", url)
    assert day is not None
    other = url.replace(f"%2F{day[1]}%2F", "%2F19700101%2F")
    assert verdict(roles, other) == "AuthorizationQueryParametersError"


def test_a_link_that_signed_more_headers_than_botocore_would_passes_with_them(signer) -> None:
    """AWS checks the headers a link says it signed, User-Agent included, where botocore
    never signs it (and every parameter, a blank one too): the link is signed here by
    hand, as the SigV4 specification says."""
    roles, role = signer
    now = datetime.now(UTC)
    day, stamp = now.strftime("%Y%m%d"), now.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{day}/{REGION}/s3/aws4_request"
    params = {
        "x-id": "",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{role.access_key_id}/{scope}",
        "X-Amz-Date": stamp,
        "X-Amz-Expires": "900",
        "X-Amz-SignedHeaders": "host;user-agent",
    }
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items())
    )
    canonical = "\n".join(
        [
            "GET",
            "/bucket/key",
            query,
            "host:127.0.0.1:9\nuser-agent:their-sdk/1.0\n",
            "host;user-agent",
            "UNSIGNED-PAYLOAD",
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = f"AWS4{role.secret_access_key}".encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    url = f"{NOWHERE}/bucket/key?{query}&X-Amz-Signature={signature}"
    assert verdict(roles, url, user_agent="their-sdk/1.0") == "ok"
    assert verdict(roles, url, user_agent="another/2.0") == "SignatureDoesNotMatch"


def test_a_link_signed_with_another_secret_is_refused(signer) -> None:
    roles, role = signer
    forged = Role("forger", role.access_key_id, "not-the-secret")
    assert verdict(roles, presign(forged)) == "SignatureDoesNotMatch"


# --- the gates in front of moto ----------------------------------------------------------


@dataclass
class Gates:
    moto: MotoServer
    s3: S3Gate
    dynamodb: DynamoDbGate
    reader: Role  # GetObject on traces/*, ListBucket on the bucket
    blind_reader: Role  # GetObject on traces/* only
    writer: Role  # PutObject on traces/*, GetItem on the table
    admin: Any  # moto, straight: the scenarios' own set-up


@pytest.fixture(scope="module")
def gates() -> Iterator[Gates]:
    moto = MotoServer.launch().ready()
    assert moto.endpoint is not None
    roles = Roles()
    arns = ResourceArns(BUCKET, TABLE, REGION)
    objects, bucket = arns.of("trace objects"), arns.of("trace bucket")
    reader = roles.create(
        "reader",
        [Statement(("s3:GetObject",), (objects,)), Statement(("s3:ListBucket",), (bucket,))],
    )
    blind = roles.create("blind reader", [Statement(("s3:GetObject",), (objects,))])
    writer = roles.create(
        "writer",
        [
            Statement(("s3:PutObject",), (objects,)),
            Statement(("dynamodb:GetItem",), (arns.of("task table"),)),
        ],
    )
    s3 = S3Gate(moto.endpoint, roles=roles, region=REGION)
    s3.start()
    dynamodb = DynamoDbGate(moto.endpoint, roles=roles, region=REGION)
    dynamodb.start()
    admin = moto.client("s3")
    admin.create_bucket(Bucket=BUCKET)
    create_task_table(moto.client("dynamodb"), TABLE)
    yield Gates(moto, s3, dynamodb, reader, blind, writer, admin)
    dynamodb.stop()
    s3.stop()
    moto.stop()


def stored_keys(gates: Gates) -> list[str]:
    listing = gates.admin.list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.mark.parametrize(
    "key",
    ["traces/alice/../bob/x.jsonl.gz", "traces/alice//x.jsonl.gz", "traces/alice/./x.jsonl.gz"],
)
def test_a_key_reaches_moto_exactly_as_signed(gates: Gates, key: str) -> None:
    client("s3", gates.s3.url, gates.writer).put_object(Bucket=BUCKET, Key=key, Body=b"as signed")
    assert key in stored_keys(gates)
    assert gates.admin.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"as signed"
    link = client("s3", gates.s3.url, gates.reader).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=60
    )
    parts = urlsplit(link)
    connection = http.client.HTTPConnection(parts.netloc)  # sends the path as it is
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"as signed")


def test_a_call_outside_the_signers_policy_is_denied(gates: Gates) -> None:
    writer = client("s3", gates.s3.url, gates.writer)
    with pytest.raises(ClientError) as denied:
        writer.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "elsewhere/x" not in stored_keys(gates)


def test_a_missing_key_is_404_only_to_who_may_list_the_bucket(gates: Gates) -> None:
    key = "traces/alice/never-stored.jsonl.gz"
    for role, status in ((gates.reader, "404"), (gates.blind_reader, "403")):
        with pytest.raises(ClientError) as missing:
            client("s3", gates.s3.url, role).head_object(Bucket=BUCKET, Key=key)
        assert missing.value.response["Error"]["Code"] == status, role.name


def test_a_presigned_link_carries_its_signers_permissions(gates: Gates) -> None:
    gates.admin.put_object(Bucket=BUCKET, Key="traces/alice/t.jsonl.gz", Body=b"trace")
    for role, status in ((gates.reader, 200), (gates.writer, 403)):
        link = client("s3", gates.s3.url, role).generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "traces/alice/t.jsonl.gz"}
        )
        assert requests.get(link, timeout=10).status_code == status, role.name


@pytest.fixture
def faulty_gate(gates: Gates) -> Iterator[Gates]:
    """The module's gates, put back to an honest wire after the test."""
    yield gates
    gates.s3.reset()


def presigned_get(gates: Gates, key: str) -> str:
    return client("s3", gates.s3.url, gates.reader).generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": key}
    )


def test_the_gate_asks_to_slow_down_for_as_many_tries_as_told(faulty_gate: Gates) -> None:
    gates = faulty_gate
    gates.admin.put_object(Bucket=BUCKET, Key="traces/alice/busy.jsonl.gz", Body=b"trace")
    link = presigned_get(gates, "traces/alice/busy.jsonl.gz")
    gates.s3.fault = Fault.SLOW_DOWN
    gates.s3.fault_times = 2
    answers = [requests.get(link, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [503, 503, 200]
    assert "<Code>SlowDown</Code><Message>Please reduce your request rate.</Message>" in (
        answers[0].text
    )
    assert answers[2].content == b"trace"
    assert gates.s3.faults_answered == 2


def test_the_gates_faults_last_until_reset_unless_counted(faulty_gate: Gates) -> None:
    gates = faulty_gate
    gates.admin.put_object(Bucket=BUCKET, Key="traces/alice/down.jsonl.gz", Body=b"trace")
    link = presigned_get(gates, "traces/alice/down.jsonl.gz")
    gates.s3.fault = Fault.SERVER_ERROR
    assert [requests.get(link, timeout=10).status_code for _ in range(4)] == [500] * 4
    gates.s3.fault = Fault.FORBIDDEN
    refused = requests.get(link, timeout=10)
    assert refused.status_code == 403
    assert "<Code>AccessDenied</Code><Message>Access Denied</Message>" in refused.text
    gates.s3.reset()
    assert requests.get(link, timeout=10).content == b"trace"


def test_the_gate_presents_a_stored_sha256_as_a_multipart_uploads_composite(
    faulty_gate: Gates,
) -> None:
    gates = faulty_gate
    key = "traces/alice/multipart.jsonl.gz"
    client("s3", gates.s3.url, gates.writer).put_object(
        Bucket=BUCKET, Key=key, Body=b"trace", ChecksumAlgorithm="SHA256"
    )
    reader = client("s3", gates.s3.url, gates.reader)
    whole = reader.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert whole["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"trace").digest()).decode()
    gates.s3.checksum_style = ChecksumStyle.COMPOSITE
    head = reader.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    value, parts = head["ChecksumSHA256"].rsplit("-", 1)
    assert parts == "2"
    assert len(base64.b64decode(value, validate=True)) == 32
    assert value != whole["ChecksumSHA256"]
    assert head["ResponseMetadata"]["HTTPHeaders"]["x-amz-checksum-type"] == "COMPOSITE"
    fetched = requests.get(
        presigned_get(gates, key), headers={"x-amz-checksum-mode": "ENABLED"}, timeout=10
    )
    assert fetched.content == b"trace"
    assert fetched.headers["x-amz-checksum-sha256"] == head["ChecksumSHA256"]
    assert fetched.headers["x-amz-checksum-type"] == "COMPOSITE"
    # An object stored without a SHA-256 is given none.
    gates.admin.put_object(Bucket=BUCKET, Key="traces/alice/plain", Body=b"x")
    plain = reader.head_object(Bucket=BUCKET, Key="traces/alice/plain", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in plain


def test_sigv2_and_unknown_keys_are_refused(gates: Gates) -> None:
    gates.admin.put_object(Bucket=BUCKET, Key="traces/alice/v2.jsonl.gz", Body=b"x")
    sigv2 = boto3.client(
        "s3",
        endpoint_url=gates.s3.url,
        region_name=REGION,
        aws_access_key_id=gates.reader.access_key_id,
        aws_secret_access_key=gates.reader.secret_access_key,
        config=Config(signature_version="s3"),
    )
    link = sigv2.generate_presigned_url(
        "get_object", Params={"Bucket": BUCKET, "Key": "traces/alice/v2.jsonl.gz"}
    )
    refused = requests.get(link, timeout=10)
    assert refused.status_code == 400
    assert "<Code>InvalidRequest</Code>" in refused.text
    stranger = Role("stranger", "AKIASTRANGER0000", "secret")
    with pytest.raises(ClientError) as unknown:
        client("s3", gates.s3.url, stranger).head_object(
            Bucket=BUCKET, Key="traces/alice/v2.jsonl.gz"
        )
    assert unknown.value.response["Error"]["Code"] == "403"


def test_a_tampered_header_signed_call_is_refused(gates: Gates) -> None:
    writer = client("s3", gates.s3.url, gates.writer)

    def tamper(request: Any, **_: Any) -> None:
        request.headers["Content-Type"] = "text/plain"  # after signing: the signature breaks

    writer.meta.events.register("before-send.s3.PutObject", tamper)
    with pytest.raises(ClientError) as refused:
        writer.put_object(
            Bucket=BUCKET, Key="traces/alice/tampered", Body=b"x", ContentType="application/gzip"
        )
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


def test_a_denied_dynamodb_call_answers_access_denied(gates: Gates) -> None:
    writer = client("dynamodb", gates.dynamodb.url, gates.writer)
    assert "Item" not in writer.get_item(TableName=TABLE, Key={"task_id": {"S": "t"}})
    with pytest.raises(ClientError) as denied:
        writer.put_item(TableName=TABLE, Item={"task_id": {"S": "t"}})
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    body = json.dumps(denied.value.response)
    assert "dynamodb:PutItem" in body


def header_signed(role: Role, target: str = "/bucket/key", body: bytes = b"") -> dict[str, Any]:
    """The WSGI environ of an S3 call botocore signed in its headers, as a gate reads it."""
    signed = AWSRequest(method="PUT", url=f"{NOWHERE}{target}", data=body)
    credentials = Credentials(role.access_key_id, role.secret_access_key)
    S3SigV4Auth(credentials, "s3", REGION).add_auth(signed)
    return {
        "REQUEST_METHOD": "PUT",
        "RAW_URI": target,
        "HTTP_HOST": urlsplit(NOWHERE).netloc,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        **{f"HTTP_{n.upper().replace('-', '_')}": v for n, v in signed.headers.items()},
    }


def refusal(roles: Roles, environ: dict[str, Any]) -> str:
    environ["wsgi.input"].seek(0)
    return verify_request(read_request(environ), roles, region=REGION, service="s3").error


def test_a_call_whose_credential_names_another_day_is_refused(signer) -> None:
    """The credential's date is not signed itself: it must be the day of X-Amz-Date."""
    roles, role = signer
    environ = header_signed(role)
    assert refusal(roles, environ) == ""
    day = environ["HTTP_X_AMZ_DATE"][:8]
    environ["HTTP_AUTHORIZATION"] = environ["HTTP_AUTHORIZATION"].replace(f"/{day}/", "/19700101/")
    assert refusal(roles, environ) == "SignatureDoesNotMatch"


def test_a_call_with_a_query_is_signed_with_it(signer) -> None:
    roles, role = signer
    environ = header_signed(role, "/bucket?list-type=2&prefix=traces%2F")
    assert refusal(roles, environ) == ""
    environ["RAW_URI"] = "/bucket?list-type=2&prefix=other%2F"
    assert refusal(roles, environ) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("body", [b"0", b"1", b"tampered"])
def test_a_call_whose_body_is_not_the_one_signed_is_refused(signer, body: bytes) -> None:
    roles, role = signer
    environ = header_signed(role, body=b"the signed body")
    environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
    assert refusal(roles, environ) == "XAmzContentSHA256Mismatch"


def test_a_call_without_a_header_it_signed_is_refused(signer) -> None:
    roles, role = signer
    environ = header_signed(role)
    del environ["HTTP_X_AMZ_CONTENT_SHA256"]
    assert refusal(roles, environ) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("forged", ["0" * 64, "f" * 64])
def test_a_call_with_another_signature_is_refused(signer, forged: str) -> None:
    roles, role = signer
    environ = header_signed(role)
    environ["HTTP_AUTHORIZATION"] = re.sub(
        r"Signature=[0-9a-f]{64}", f"Signature={forged}", environ["HTTP_AUTHORIZATION"]
    )
    assert refusal(roles, environ) == "SignatureDoesNotMatch"


def test_a_call_with_an_unreadable_date_is_refused(signer) -> None:
    roles, role = signer
    environ = header_signed(role)
    environ["HTTP_X_AMZ_DATE"] = "yesterday"
    assert refusal(roles, environ) == "AccessDenied"


def test_a_link_is_good_up_to_its_last_second_and_from_the_skew_before_it(signer) -> None:
    roles, role = signer
    url = presign(role)
    stamp = re.search(r"X-Amz-Date=(\w+)", url)
    assert stamp is not None
    signed_at = datetime.strptime(stamp[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    for now in (signed_at + timedelta(seconds=900), signed_at - timedelta(minutes=15)):
        assert verdict(roles, url, now=now) == "ok"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA512"),
        ("X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256"),
        ("X-Amz-Expires=900", "X-Amz-Expires=0"),
        ("X-Amz-Expires=900", "X-Amz-Expires=soon"),
        ("X-Amz-Expires=900&", ""),
        ("%2Fus-east-1%2F", "%2Fus-west-2%2F"),
        ("X-Amz-Date=", "X-Amz-Date=x"),
    ],
    ids=[
        "other-algorithm",
        "algorithm-sorting-first",
        "no-lifetime",
        "lifetime-not-a-number",
        "lifetime-missing",
        "other-region",
        "unreadable-date",
    ],
)
def test_a_link_with_malformed_parameters_is_refused_as_such(signer, old: str, new: str) -> None:
    roles, role = signer
    url = presign(role)
    assert old in url
    assert verdict(roles, url.replace(old, new)) == "AuthorizationQueryParametersError"


def test_a_link_of_one_second_is_good_for_one_second(signer) -> None:
    roles, role = signer
    url = presign(role, expires=1)
    assert verdict(roles, url) == "ok"


def test_a_call_dated_beyond_the_skew_is_refused_as_too_skewed(signer) -> None:
    roles, role = signer
    environ = header_signed(role)
    signed_at = datetime.strptime(environ["HTTP_X_AMZ_DATE"], "%Y%m%dT%H%M%SZ")
    # Twenty minutes away, on the same day: the credential's day still holds.
    away = timedelta(minutes=20)
    shifted = (
        signed_at - away if (signed_at - away).date() == signed_at.date() else signed_at + away
    )
    environ["HTTP_X_AMZ_DATE"] = shifted.strftime("%Y%m%dT%H%M%SZ")
    assert refusal(roles, environ) == "RequestTimeTooSkewed"


def test_a_revoked_action_is_the_only_one_a_role_loses() -> None:
    roles = Roles()
    role = roles.create("r", [Statement(("s3:GetObject", "s3:ListBucket"), ("*",))])
    restore = roles.revoke(role, "s3:GetObject")
    assert (role.allows("s3:GetObject", "x"), role.allows("s3:ListBucket", "x")) == (False, True)
    restore()
    assert role.allows("s3:GetObject", "x")


def test_a_link_that_cannot_be_read_records_no_lifetime(signer) -> None:
    roles, role = signer
    url = presign(role).replace("X-Amz-Expires=900&", "")
    parts = urlsplit(url)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{parts.path}?{parts.query}",
        "HTTP_HOST": parts.netloc,
    }
    seen = verify_presigned(read_request(environ), roles, region=REGION, now=datetime.now(UTC))
    assert (seen.verdict, seen.expires_seconds) == ("AuthorizationQueryParametersError", 0)
