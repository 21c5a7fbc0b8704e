"""The one builder of the local stack, for the acceptance suite, the sandbox and the
benchmarks: moto's server (or another emulator), the S3 and DynamoDB gates in front
of it, the handler in a local Lambda of its own, and the API Gateway in front of
that, on 127.0.0.1; the stack's bucket, table and user pool built from
``trace_infra``. The agent runtime and the handler each sign their calls as a
role of their own, whose policy comes from the infrastructure's grants."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from testkit.apigw.authorizer import CognitoAuthorizer
from testkit.apigw.gateway import LocalApiGateway, proxy_event
from testkit.aws.auth import ResourceArns, Role, Roles, Statement, statements_for
from testkit.aws.endpoint import REGION, AwsEndpoint, MotoServer, shared_session
from testkit.aws.gate_control import RolesHandle, S3GateHandle
from testkit.aws.resources import create_task_table, create_trace_bucket
from testkit.conformance.profile import HandlerProfile
from testkit.lambda_.function_code import FunctionCode
from testkit.lambda_.local_lambda import InvocationFailed, LocalLambda
from testkit.stack.footprint import (
    DEFAULT_LEASE_SECONDS,
    TAG_KEY,
    Clients,
    Lease,
    Mark,
    remove_leftover_stacks,
    remove_stack,
)
from testkit.stack.resources import AgentRuntime, ResourceNames, Resources
from testkit.stack.users import User, UserDirectory, create_user, create_user_pool
from trace_infra.definitions import (
    AGENT_RUNTIME_GRANTS,
    ENV_TASK_TABLE,
    ENV_TRACE_BUCKET,
    GET_TRACE_URL,
    GET_TRACE_URL_GRANTS,
)

FUNCTION_NAME = "GetTraceUrl"
# The request that warms the function: no task has this id, no user this sub.
WARM_UP_TASK = "bgsuite-warm-up"
WARM_UP_OWNER = "00000000-0000-0000-0000-000000000000"
WARM_UP_SECONDS = 30


@dataclass(frozen=True)
class LocalStack:
    aws: AwsEndpoint
    gate: S3GateHandle
    endpoints: GatedEndpoints
    names: ResourceNames
    roles: RolesHandle
    agent_role: Role
    function_role: Role
    function: LocalLambda
    gateway: LocalApiGateway
    resources: Resources
    users: UserDirectory

    def revoke(self, role: str, action: str) -> Callable[[], None]:
        named = {"agent runtime": self.agent_role, "trace API": self.function_role}
        return self.roles.revoke(named[role], action)

    def cli_environment(self) -> dict[str, str]:
        assert self.aws.endpoint is not None
        return {"AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER": self.aws.endpoint}

    def start_scenario(self) -> None:
        self.gate.reset()  # and what IAM refused
        if self.gateway.authorizer is not None:
            self.gateway.authorizer.reset()

    def refusals(self) -> list[str]:
        return self.roles.refusals()

    def function_log_mark(self) -> int:
        return self.function.log_mark()

    def function_log_since(self, mark: int) -> list[str]:
        return self.function.log_since(mark)

    def add_user(self, name: str, password: str) -> User:
        return create_user(self.aws.client("cognito-idp"), self.resources.pool, name, password)

    @classmethod
    @contextmanager
    def running(
        cls,
        *,
        emulator: str | None = None,
        moto: MotoServer | None = None,
        code: FunctionCode | None = None,
        function: HandlerProfile | None = None,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> Iterator[LocalStack]:
        """Everything started, and stopped (with what it created) on the way out.

        ``emulator``: an AWS emulator that is already running, instead of moto's server;
        ``moto``: moto's server already launched (``MotoServer.launch``), stopped here;
        ``code``: the handler the function runs, this project's by default;
        ``function``: the role and environment another team's handler runs with;
        ``lease_seconds``: how long the session's lease on an emulator it shares lasts
        unrenewed (``testkit.stack.footprint``).
        """
        function = function or HandlerProfile()
        mark = Mark.new()
        names = ResourceNames.for_session(mark)
        with ExitStack() as stopping:
            if emulator and moto:
                moto.stop()  # launched for nothing
            aws = (
                MotoServer.launch(upstream=emulator) if emulator else (moto or MotoServer.launch())
            )
            stopping.callback(aws.stop)
            gates = aws.gates  # known at once: the ports are bound before moto starts
            assert aws.endpoint is not None
            arns = ResourceArns(names.bucket, names.table, REGION)
            if function.policy is None:
                granted = statements_for(GET_TRACE_URL_GRANTS, arns)
            else:
                granted = [
                    Statement(s.actions, tuple(map(arns.substitute, s.resources)))
                    for s in function.policy
                ]
            function_role = Roles.new_role(f"{FUNCTION_NAME} role", granted)
            agent_role = Roles.new_role(
                "agent runtime role", statements_for(AGENT_RUNTIME_GRANTS, arns)
            )
            roles = RolesHandle(gates.control)  # served before moto is
            for role in (function_role, agent_role):
                roles.add(role)
            endpoints = GatedEndpoints(aws.endpoint, gates.s3, gates.dynamodb)
            # The function's cold start overlaps moto's start and building the resources.
            environment = function_environment(endpoints, names, function_role)
            if function.environment:  # the variables another team's handler reads
                for name in GET_TRACE_URL.environment_names:
                    del environment[name]
                named = {"trace bucket": names.bucket, "task table": names.table}
                environment |= {v: named[r] for v, r in function.environment.items()}
            lambda_ = LocalLambda(GET_TRACE_URL, environment, name=FUNCTION_NAME, code=code)
            lambda_.start()
            stopping.callback(lambda_.stop)
            warming = threading.Thread(target=_warm_up, args=(lambda_,), daemon=True)
            warming.start()
            _load_service_models()  # while moto's server starts
            aws.ready()
            gate = S3GateHandle(gates.control, gates.s3)
            clients = Clients(aws.client("s3"), aws.client("dynamodb"), aws.client("cognito-idp"))
            if emulator:
                remove_leftover_stacks(clients, mark)

            tags = {TAG_KEY: str(mark)}
            create_trace_bucket(clients.s3, names.bucket, tags=tags)
            lease = Lease(clients.s3, names.bucket, mark, lease_seconds)
            if emulator:  # taken before anything else is created, so it proves it all
                try:
                    lease.hold()
                except BaseException:
                    # Without its lease nothing would ever prove the bucket over: it
                    # goes now, or stays for ever.
                    with contextlib.suppress(Exception):
                        clients.s3.delete_bucket(Bucket=names.bucket)
                    raise
                stopping.callback(lease.stop)
            create_task_table(clients.dynamodb, names.table, tags=tags)
            pool = create_user_pool(
                clients.cognito, name=names.pool, region=REGION, endpoint=aws.endpoint, tags=tags
            )
            if emulator:
                stopping.callback(
                    remove_stack,
                    clients,
                    bucket=names.bucket,
                    table=names.table,
                    pool_id=pool.id,
                    lease=lease,
                )

            gateway = LocalApiGateway(lambda_.invoke)
            gateway.authorizer = CognitoAuthorizer(pool)
            gateway.start()
            stopping.callback(gateway.stop)
            # A handler that cannot load stops the stack now, saying why, rather than
            # failing every scenario with a 502.
            lambda_.wait_started()
            warming.join(WARM_UP_SECONDS)

            agent = AgentRuntime(
                s3=_client("s3", gates.s3, agent_role),
                dynamodb=_client("dynamodb", gates.dynamodb, agent_role),
                bucket=names.bucket,
                table=names.table,
                environment=function_environment(endpoints, names, agent_role),
            )
            resources = Resources(aws, agent, pool, gateway.url, names.bucket, names.table, mark)
            yield cls(
                aws=aws,
                gate=gate,
                endpoints=endpoints,
                names=names,
                roles=roles,
                agent_role=agent_role,
                function_role=function_role,
                function=lambda_,
                gateway=gateway,
                resources=resources,
                users=UserDirectory(clients.cognito, pool, mark=mark),
            )


@dataclass(frozen=True)
class GatedEndpoints:
    """Where the layers reach AWS: S3 and DynamoDB through their gates."""

    aws: str
    s3: str
    dynamodb: str


def function_environment(
    endpoints: GatedEndpoints, names: ResourceNames, role: Role
) -> dict[str, str]:
    """What the function's process gets: the variables the infrastructure sets, and what
    the Lambda runtime provides (region, its role's credentials), pointed at the local
    endpoints. The agent runtime's environment has the same shape.

    boto3 honours the AWS_ENDPOINT_URL variables itself: the handler needs no test
    hook. No config files: nothing of this machine's AWS set-up is reachable.
    """
    infrastructure = {ENV_TRACE_BUCKET: names.bucket, ENV_TASK_TABLE: names.table}
    assert tuple(infrastructure) == GET_TRACE_URL.environment_names
    return {
        **infrastructure,
        "AWS_ACCESS_KEY_ID": role.access_key_id,
        "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoints.aws,
        "AWS_ENDPOINT_URL_S3": endpoints.s3,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoints.dynamodb,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }


def _warm_up(function: LocalLambda) -> None:
    """One request for a task nobody owns, sent as the function's instance starts: the
    handler's first invocation (what it builds once, its clients) runs beside moto's
    start, not in the first scenario, as most requests on Lambda meet a warm instance.
    Its answer is not read; it is logged before any scenario's mark."""
    event = proxy_event("GET", f"/tasks/{WARM_UP_TASK}/trace", {"sub": WARM_UP_OWNER})
    with contextlib.suppress(InvocationFailed):
        function.invoke(event)


def _load_service_models() -> None:
    """The stack's service models loaded into the shared session, while moto starts: a
    client made, pointed nowhere, loads them; no call is made."""
    for service in ("s3", "dynamodb", "cognito-idp"):
        shared_session().client(
            service,
            endpoint_url="http://127.0.0.1:9",
            region_name=REGION,
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
        )


def _client(service: str, endpoint: str, role: Role) -> Any:
    return shared_session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=role.access_key_id,
        aws_secret_access_key=role.secret_access_key,
        region_name=REGION,
    )
