"""The trace round trip's infrastructure as aws-cdk-lib constructs.

Every property comes from ``trace_infra.definitions``, the same definitions the
acceptance fixtures build moto's bucket and table from; ``cdk/tests`` checks the
synthesized template against both. Importing this module needs aws-cdk-lib; the
Lambda handler never imports it.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from trace_infra.definitions import (
    AGENT_RUNTIME_GRANTS,
    ENV_TASK_TABLE,
    ENV_TRACE_BUCKET,
    GET_TRACE_URL,
    GET_TRACE_URL_GRANTS,
    TASK_TABLE,
    TRACE_BUCKET,
    TRACE_KEY_PREFIX,
    Grant,
    TaskTableDefinition,
    TraceBucketDefinition,
)

HANDLER = GET_TRACE_URL.handler
# The Lambda asset is the folder that holds the trace_infra package (cdk/).
HANDLER_ASSET_DIR = Path(__file__).resolve().parent.parent
_ASSET_EXCLUDES = ["tests", "cdk.out", "**/__pycache__", "**/*.pyc", "cdk.json", "*.md"]


class TraceArtifactsBucket(Construct):
    """Where the agent stores traces: private, encrypted, TLS only, kept 7 days."""

    key_prefix = TRACE_KEY_PREFIX

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: TraceBucketDefinition = TRACE_BUCKET,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL
            if definition.block_public_access
            else None,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=definition.enforce_tls,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id=definition.lifecycle_rule_id,
                    expiration=Duration.days(definition.expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        definition.abort_incomplete_multipart_days
                    ),
                )
            ],
            removal_policy=removal_policy,
            auto_delete_objects=destroy,  # a bucket holding traces could not be deleted
        )

    def traces_arn(self) -> str:
        return self.bucket.arn_for_objects(f"{self.key_prefix}*")


class TaskTable(Construct):
    """The task records: one item per task, its status, and its trace link."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition: TaskTableDefinition = TASK_TABLE,
    ) -> None:
        super().__init__(scope, construct_id)
        self.definition = definition
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_string_key(definition.partition_key),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=definition.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=definition.point_in_time_recovery
            ),
        )
        for index in definition.global_indexes:
            self.table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string_key(index.partition_key),
                sort_key=_string_key(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType(index.projection),
            )


def grant(
    grantee: iam.IGrantable,
    grants: tuple[Grant, ...],
    *,
    traces: TraceArtifactsBucket,
    tasks: TaskTable,
) -> None:
    """One statement per grant of the definition, on the resource its scope names."""
    resources = {
        "trace objects": traces.traces_arn(),
        "trace bucket": traces.bucket.bucket_arn,
        "task table": tasks.table.table_arn,
    }
    for each in grants:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(each.actions), resources=[resources[each.scope]])
        )


def _string_key(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


class TraceEndpoint(Construct):
    """``GET /tasks/{task_id}/trace`` behind a Cognito user pool authorizer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        traces: TraceArtifactsBucket,
        tasks: TaskTable,
        user_pool: cognito.IUserPool,
        agent_runtime_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        function = GET_TRACE_URL
        environment = {
            ENV_TRACE_BUCKET: traces.bucket.bucket_name,
            ENV_TASK_TABLE: tasks.table.table_name,
        }
        assert tuple(environment) == function.environment_names
        self.function = lambda_.Function(
            self,
            "GetTraceUrl",
            runtime=lambda_.Runtime(function.runtime, lambda_.RuntimeFamily.PYTHON),
            handler=function.handler,
            code=lambda_.Code.from_asset(str(HANDLER_ASSET_DIR), exclude=_ASSET_EXCLUDES),
            environment=environment,
            timeout=Duration.seconds(function.timeout_seconds),
            memory_size=function.memory_mb,
            logging_format=lambda_.LoggingFormat(function.log_format.upper()),
            application_log_level_v2=lambda_.ApplicationLogLevel(function.application_log_level),
            system_log_level_v2=lambda_.SystemLogLevel(function.system_log_level),
        )
        # Least privilege, as trace_infra.definitions states it for each role.
        grant(self.function, GET_TRACE_URL_GRANTS, traces=traces, tasks=tasks)
        grant(agent_runtime_role, AGENT_RUNTIME_GRANTS, traces=traces, tasks=tasks)

        self.api = apigw.RestApi(self, "Api", description="bgagent task API: trace download")
        authorizer = apigw.CognitoUserPoolsAuthorizer(
            self, "Authorizer", cognito_user_pools=[user_pool]
        )
        trace = self.api.root.add_resource("tasks").add_resource("{task_id}").add_resource("trace")
        trace.add_method(
            "GET",
            apigw.LambdaIntegration(self.function),
            authorizer=authorizer,
            authorization_type=apigw.AuthorizationType.COGNITO,
        )
