"""The S3 gate's signature check agrees with botocore's presigner, and refuses what S3
would refuse: a changed key, a changed lifetime, an expired link, SigV2."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

from trace_harness.s3_gate import SigV4QueryVerifier

ENDPOINT = "http://127.0.0.1:9"  # never contacted: presigning is local


def presign(key: str = "traces/alice/t1.jsonl.gz", *, v4: bool = True, expires: int = 900) -> str:
    config = Config(signature_version="s3v4" if v4 else "s3")
    s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", config=config)
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": key}, ExpiresIn=expires
    )


def verdict(url: str, *, now: datetime | None = None) -> str:
    parts = urlsplit(url)
    return (
        SigV4QueryVerifier("testing", "us-east-1")
        .verify("GET", parts.path, parts.query, {"host": parts.netloc}, now or datetime.now(UTC))
        .verdict
    )


def test_a_fresh_botocore_link_passes() -> None:
    assert verdict(presign()) == "ok"


def test_unusual_keys_pass_when_untouched() -> None:
    assert verdict(presign("traces/alice/tâche 1+2=%.jsonl.gz")) == "ok"


@pytest.mark.parametrize(
    ("old", "new"),
    [("traces/alice/", "traces/bob/"), ("X-Amz-Expires=900", "X-Amz-Expires=3600")],
    ids=["other-key", "longer-life"],
)
def test_a_changed_link_is_refused(old: str, new: str) -> None:
    assert verdict(presign().replace(old, new)) == "SignatureDoesNotMatch"


def test_a_link_used_for_another_method_is_refused() -> None:
    parts = urlsplit(presign())
    result = SigV4QueryVerifier("testing", "us-east-1").verify(
        "DELETE", parts.path, parts.query, {"host": parts.netloc}, datetime.now(UTC)
    )
    assert result.verdict == "SignatureDoesNotMatch"


def test_a_link_is_refused_once_its_lifetime_has_passed() -> None:
    url = presign()
    assert verdict(url, now=datetime.now(UTC) + timedelta(seconds=899)) == "ok"
    assert verdict(url, now=datetime.now(UTC) + timedelta(seconds=901)) == "AccessDenied"


def test_a_sigv2_link_is_refused() -> None:
    assert verdict(presign(v4=False)) == "AuthorizationQueryParametersError"


def test_a_link_signed_with_another_secret_is_refused() -> None:
    parts = urlsplit(presign())
    result = SigV4QueryVerifier("not-the-secret", "us-east-1").verify(
        "GET", parts.path, parts.query, {"host": parts.netloc}, datetime.now(UTC)
    )
    assert result.verdict == "SignatureDoesNotMatch"
