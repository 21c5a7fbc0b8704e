"""A session on a shared emulator whose lease is refused (a bucket policy denying the
lease prefix, say) must not leave its tagged bucket behind: without a lease nothing
ever proves it over, so no later session would remove it."""

from __future__ import annotations

import socket

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from testkit.stack import footprint
from testkit.stack.local import LocalStack


def test_a_session_whose_lease_is_refused_leaves_no_bucket_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    refused = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"
    )

    def hold(self: footprint.Lease) -> None:
        raise refused

    monkeypatch.setattr(footprint.Lease, "hold", hold)
    try:
        with pytest.raises(ClientError), LocalStack.running(emulator=endpoint):
            pass
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == []
    finally:
        server.stop()
