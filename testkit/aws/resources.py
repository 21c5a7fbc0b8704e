"""The stack's bucket and table built in an AWS emulator (moto, in-process or served) from
``trace_infra.definitions``: the unit tests of every layer and the acceptance harness
build them the same way, so a change to the infrastructure reaches them all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trace_infra.definitions import (
    TASK_TABLE,
    TRACE_BUCKET,
    TaskTableDefinition,
    TraceBucketDefinition,
)


def create_trace_bucket(
    s3: Any,
    name: str,
    definition: TraceBucketDefinition = TRACE_BUCKET,
    *,
    tags: Mapping[str, str] | None = None,
) -> None:
    """The trace bucket as TraceArtifactsBucket defines it (less the TLS-only policy),
    with ``tags`` of the caller's besides.

    moto denies every request under a policy with any Deny statement, so the
    TLS-only policy cannot be carried here; it is checked in the template instead.
    """
    s3.create_bucket(Bucket=name)
    if tags:
        s3.put_bucket_tagging(
            Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )
    if definition.block_public_access:
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": definition.sse_algorithm}}
            ]
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": definition.lifecycle_rule_id,
                    "Filter": {"Prefix": ""},
                    "Status": "Enabled",
                    "Expiration": {"Days": definition.expiration_days},
                    "AbortIncompleteMultipartUpload": {
                        "DaysAfterInitiation": definition.abort_incomplete_multipart_days
                    },
                }
            ]
        },
    )


def create_task_table(
    dynamodb: Any,
    name: str,
    definition: TaskTableDefinition = TASK_TABLE,
    *,
    tags: Mapping[str, str] | None = None,
) -> None:
    """The task table as TaskTable defines it: keys, GSIs, billing, TTL, PITR; with
    ``tags`` of the caller's besides."""
    indexes = []
    for index in definition.global_indexes:
        schema = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        if index.sort_key:
            schema.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        indexes.append(
            {
                "IndexName": index.name,
                "KeySchema": schema,
                "Projection": {"ProjectionType": index.projection},
            }
        )
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": kind}
            for attr, kind in definition.key_attributes().items()
        ],
        KeySchema=[{"AttributeName": definition.partition_key, "KeyType": "HASH"}],
        BillingMode=definition.billing_mode,
        GlobalSecondaryIndexes=indexes,
        **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]} if tags else {}),
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": definition.ttl_attribute},
    )
    if definition.point_in_time_recovery:
        dynamodb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
