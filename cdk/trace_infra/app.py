"""The CDK app: ``python -m trace_infra.app`` (or ``cdk synth`` in ``cdk/``) writes cdk.out.

Synthesizes offline: no AWS account or credentials are needed, and the stack is
environment-agnostic.
"""

from __future__ import annotations

import os
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from constructs import Construct

from trace_infra.constructs import TaskTable, TraceArtifactsBucket, TraceEndpoint

STACK_NAME = "BgagentTraceRoundTrip"


class TraceRoundTripStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.traces = TraceArtifactsBucket(self, "TraceArtifacts")
        self.tasks = TaskTable(self, "Tasks")
        self.user_pool = cognito.UserPool(self, "Users", self_sign_up_enabled=False)
        self.user_pool.add_client(
            "Cli", auth_flows=cognito.AuthFlow(user_password=True), generate_secret=False
        )
        # The agent runtime (Bedrock AgentCore) is deployed elsewhere; its role is
        # what this stack grants to.
        self.agent_runtime_role = iam.Role(
            self,
            "AgentRuntimeRole",
            assumed_by=iam.ServicePrincipal("bedrock-agentcore.amazonaws.com"),
        )
        self.endpoint = TraceEndpoint(
            self,
            "TraceEndpoint",
            traces=self.traces,
            tasks=self.tasks,
            user_pool=self.user_pool,
            agent_runtime_role=self.agent_runtime_role,
        )


def build_app(outdir: str | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir) if outdir else cdk.App()
    TraceRoundTripStack(app, STACK_NAME)
    return app


if __name__ == "__main__":
    # `cdk synth` names the output folder itself; run directly, write ./cdk.out.
    build_app(None if "CDK_OUTDIR" in os.environ else "cdk.out").synth()
