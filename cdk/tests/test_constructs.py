"""The synthesized stack has every property the contract gives the infrastructure."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match

from trace_infra.constructs import HANDLER
from trace_infra.definitions import (
    AGENT_RUNTIME_GRANTS,
    ENV_TASK_TABLE,
    ENV_TRACE_BUCKET,
    GET_TRACE_URL,
    GET_TRACE_URL_GRANTS,
    TRACE_KEY_PREFIX,
    Grant,
)


def statements_of_role(synthesized, role_name_part: str) -> list[dict]:
    policies = [
        resource
        for resource in synthesized.resources_of("AWS::IAM::Policy").values()
        if any(role_name_part in ref["Ref"] for ref in resource["Properties"]["Roles"])
    ]
    return [s for policy in policies for s in policy["Properties"]["PolicyDocument"]["Statement"]]


def object_arn_suffix(resource: Any) -> str:
    """The literal tail of an ``arn_for_objects`` Fn::Join: ``/traces/*``."""
    parts = resource["Fn::Join"][1]
    return parts[-1]


def test_trace_bucket_is_private_encrypted_tls_only_and_short_lived(synthesized) -> None:
    template = synthesized.template
    template.has_resource(
        "AWS::S3::Bucket",
        {
            "DeletionPolicy": "Delete",
            "Properties": {
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                    ]
                },
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "trace-artifacts-ttl",
                            "Status": "Enabled",
                            "ExpirationInDays": 7,
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                        }
                    ]
                },
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    # Destroyed with the stack: emptied first, or CloudFormation could not delete it.
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)


def test_task_table_keys_billing_ttl_pitr_and_indexes(synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "task_id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "UserStatusIndex",
                    "KeySchema": [
                        {"AttributeName": "user_id", "KeyType": "HASH"},
                        {"AttributeName": "status_created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "StatusIndex",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "IdempotencyIndex",
                    "KeySchema": [{"AttributeName": "idempotency_key", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                },
            ],
        },
    )


def test_the_handler_is_a_python_lambda_with_the_tables_it_reads(synthesized) -> None:
    function = synthesized.one("AWS::Lambda::Function", name_part="GetTraceUrl")
    properties = function["Properties"]
    assert properties["Runtime"].startswith("python3.")
    assert properties["Handler"] == HANDLER
    variables = properties["Environment"]["Variables"]
    assert variables[ENV_TRACE_BUCKET] == {"Ref": synthesized.logical_id("AWS::S3::Bucket")}
    assert variables[ENV_TASK_TABLE] == {"Ref": synthesized.logical_id("AWS::DynamoDB::Table")}
    assert tuple(variables) == GET_TRACE_URL.environment_names


def test_the_handler_runs_as_its_definition_says_and_logs_json_at_info(synthesized) -> None:
    """What the local stack runs the handler with is what is deployed."""
    properties = synthesized.one("AWS::Lambda::Function", name_part="GetTraceUrl")["Properties"]
    assert properties["Runtime"] == GET_TRACE_URL.runtime == "python3.12"
    assert properties["Timeout"] == GET_TRACE_URL.timeout_seconds == 10
    assert properties["MemorySize"] == GET_TRACE_URL.memory_mb == 256
    # Without an application log level the runtime drops INFO records, and the
    # text format never prints a record's structured fields.
    assert properties["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "WARN",
    }


def test_the_route_is_get_tasks_task_id_trace_behind_the_user_pool(synthesized) -> None:
    paths = {
        name: resource["Properties"]["PathPart"]
        for name, resource in synthesized.resources_of("AWS::ApiGateway::Resource").items()
    }
    assert sorted(paths.values()) == sorted(["tasks", "{task_id}", "trace"])
    method = synthesized.one("AWS::ApiGateway::Method")["Properties"]
    assert method["HttpMethod"] == "GET"
    assert method["ResourceId"] == {"Ref": next(n for n, p in paths.items() if p == "trace")}
    assert method["AuthorizationType"] == "COGNITO_USER_POOLS"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    authorizer = synthesized.one("AWS::ApiGateway::Authorizer")["Properties"]
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    pool = synthesized.logical_id("AWS::Cognito::UserPool")
    assert authorizer["ProviderARNs"] == [{"Fn::GetAtt": [pool, "Arn"]}]
    client = synthesized.one("AWS::Cognito::UserPoolClient")["Properties"]
    assert "ALLOW_USER_PASSWORD_AUTH" in client["ExplicitAuthFlows"]


def granted(synthesized, role_name_part: str) -> set[tuple[tuple[str, ...], str]]:
    """Each Allow statement of the role as (actions, scope), the scope read off its resource."""
    bucket = synthesized.logical_id("AWS::S3::Bucket")
    table = synthesized.logical_id("AWS::DynamoDB::Table")
    scopes = []
    for statement in statements_of_role(synthesized, role_name_part):
        assert statement["Effect"] == "Allow"
        actions = statement["Action"]
        actions = tuple([actions] if isinstance(actions, str) else actions)
        resource = statement["Resource"]
        if resource == {"Fn::GetAtt": [table, "Arn"]}:
            scope = "task table"
        elif resource == {"Fn::GetAtt": [bucket, "Arn"]}:
            scope = "trace bucket"
        else:
            assert resource["Fn::Join"][1][0] == {"Fn::GetAtt": [bucket, "Arn"]}
            assert object_arn_suffix(resource) == f"/{TRACE_KEY_PREFIX}*"
            scope = "trace objects"
        scopes.append((actions, scope))
    assert len(scopes) == len(set(scopes))
    return set(scopes)


def test_each_role_is_granted_exactly_its_definition(synthesized) -> None:
    """The local stack authorizes every call against these same definitions."""
    assert granted(synthesized, "GetTraceUrlServiceRole") == {
        (grant.actions, grant.scope) for grant in GET_TRACE_URL_GRANTS
    }
    assert granted(synthesized, "AgentRuntimeRole") == {
        (grant.actions, grant.scope) for grant in AGENT_RUNTIME_GRANTS
    }


def test_least_privilege_for_the_handler_and_the_agent() -> None:
    assert (
        Grant(("s3:GetObject",), "trace objects"),
        # Only so that S3 answers 404, not 403, for a trace that has left storage.
        Grant(("s3:ListBucket",), "trace bucket"),
        Grant(("dynamodb:GetItem",), "task table"),
    ) == GET_TRACE_URL_GRANTS
    assert (
        Grant(("s3:PutObject",), "trace objects"),
        Grant(("dynamodb:UpdateItem",), "task table"),
    ) == AGENT_RUNTIME_GRANTS


def test_the_lambda_package_holds_the_handler_and_no_tests(synthesized) -> None:
    [root] = [
        asset for asset in synthesized.outdir.glob("asset.*") if (asset / "trace_infra").is_dir()
    ]
    files = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert "trace_infra/handlers/get_trace_url.py" in files
    assert "trace_infra/definitions.py" in files
    assert not [f for f in files if f.startswith("tests/") or "__pycache__" in f]
