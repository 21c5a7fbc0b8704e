"""The acceptance fixtures cannot drift from the infrastructure.

The bucket and table the acceptance suite builds in moto are read back as moto
reports them, and compared with the synthesized template. A construct changed
without the fixtures following (a GSI added, a lifetime shortened, a prefix
renamed) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from testkit.aws.resources import create_task_table, create_trace_bucket
from trace_agent.upload import TRACE_KEY_PREFIX as AGENT_KEY_PREFIX
from trace_infra.definitions import caller_key_prefix


@pytest.fixture(scope="module")
def fixtures_in_moto() -> Iterator[dict[str, Any]]:
    """The acceptance fixtures' bucket and table, as moto reports them."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        create_trace_bucket(s3, "fixture-bucket")
        create_task_table(ddb, "fixture-table")
        yield {
            "lifecycle": s3.get_bucket_lifecycle_configuration(Bucket="fixture-bucket")["Rules"],
            "encryption": s3.get_bucket_encryption(Bucket="fixture-bucket")[
                "ServerSideEncryptionConfiguration"
            ]["Rules"],
            "public_access": s3.get_public_access_block(Bucket="fixture-bucket")[
                "PublicAccessBlockConfiguration"
            ],
            "table": ddb.describe_table(TableName="fixture-table")["Table"],
            "ttl": ddb.describe_time_to_live(TableName="fixture-table")["TimeToLiveDescription"],
            "backups": ddb.describe_continuous_backups(TableName="fixture-table")[
                "ContinuousBackupsDescription"
            ],
        }


def template_bucket(synthesized) -> dict[str, Any]:
    return synthesized.resources_of("AWS::S3::Bucket")[synthesized.logical_id("AWS::S3::Bucket")][
        "Properties"
    ]


def template_table(synthesized) -> dict[str, Any]:
    return synthesized.one("AWS::DynamoDB::Table")["Properties"]


def test_lifecycle_matches(synthesized, fixtures_in_moto) -> None:
    def from_template(rule: dict) -> tuple:
        return (
            rule["Id"],
            rule["Status"],
            rule.get("Prefix", ""),
            rule.get("ExpirationInDays"),
            rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
        )

    def from_moto(rule: dict) -> tuple:
        return (
            rule["ID"],
            rule["Status"],
            rule.get("Filter", {}).get("Prefix", rule.get("Prefix", "")),
            rule.get("Expiration", {}).get("Days"),
            rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
        )

    rules = template_bucket(synthesized)["LifecycleConfiguration"]["Rules"]
    assert sorted(map(from_template, rules)) == sorted(
        map(from_moto, fixtures_in_moto["lifecycle"])
    )


def test_encryption_matches(synthesized, fixtures_in_moto) -> None:
    configured = template_bucket(synthesized)["BucketEncryption"][
        "ServerSideEncryptionConfiguration"
    ]
    assert [r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in configured] == [
        r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        for r in fixtures_in_moto["encryption"]
    ]


def test_public_access_block_matches(synthesized, fixtures_in_moto) -> None:
    assert (
        template_bucket(synthesized)["PublicAccessBlockConfiguration"]
        == fixtures_in_moto["public_access"]
    )


def test_tls_only_policy_is_in_the_template(synthesized) -> None:
    """moto cannot carry it (any Deny blocks every request there): checked as data."""
    statements = synthesized.one("AWS::S3::BucketPolicy")["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )


def test_table_keys_and_indexes_match(synthesized, fixtures_in_moto) -> None:
    template, moto_table = template_table(synthesized), fixtures_in_moto["table"]

    def keys(schema: list[dict]) -> list[tuple[str, str]]:
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    def indexes(items: list[dict]) -> dict[str, tuple]:
        return {
            i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in items
        }

    assert keys(template["KeySchema"]) == keys(moto_table["KeySchema"])
    assert sorted(map(tuple, (d.values() for d in template["AttributeDefinitions"]))) == sorted(
        map(tuple, (d.values() for d in moto_table["AttributeDefinitions"]))
    )
    assert indexes(template["GlobalSecondaryIndexes"]) == indexes(
        moto_table["GlobalSecondaryIndexes"]
    )


def test_table_billing_ttl_and_recovery_match(synthesized, fixtures_in_moto) -> None:
    template = template_table(synthesized)
    assert template["BillingMode"] == fixtures_in_moto["table"]["BillingModeSummary"]["BillingMode"]
    assert template["TimeToLiveSpecification"] == {
        "AttributeName": fixtures_in_moto["ttl"]["AttributeName"],
        "Enabled": fixtures_in_moto["ttl"]["TimeToLiveStatus"] == "ENABLED",
    }
    recovery = fixtures_in_moto["backups"]["PointInTimeRecoveryDescription"]
    assert template["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    }


def test_grants_use_the_prefix_the_agent_writes_and_the_handler_checks(synthesized) -> None:
    suffixes = set()
    for policy in synthesized.resources_of("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Action"] in ("s3:PutObject", "s3:GetObject"):
                suffixes.add(statement["Resource"]["Fn::Join"][1][-1])
    assert suffixes == {f"/{AGENT_KEY_PREFIX}*"}
    assert caller_key_prefix("u").startswith(AGENT_KEY_PREFIX)
