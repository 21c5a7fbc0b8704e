"""The stack a suite session runs against, chosen once by its settings
(``testkit.settings``): a stack the suite did not create (``deployed``), or the suite's
own local stack (``local``), built in another AWS emulator or in its own moto.

Either is a ``Stack``: what the scenarios' fixtures ask of it, whichever it is. The
parts only the suite's own stack has (its S3 gate, API Gateway and function) raise
``NotOnThisTarget`` on a stack the suite did not create.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from testkit.apigw.gateway import LocalApiGateway
from testkit.aws.endpoint import MotoServer
from testkit.aws.gate_control import S3GateHandle
from testkit.lambda_.function_code import FunctionCode, function_code
from testkit.lambda_.local_lambda import LocalLambda
from testkit.settings import Settings
from testkit.stack.deployed import DeployedStack
from testkit.stack.local import LocalStack
from testkit.stack.resources import Resources
from testkit.stack.users import UserDirectory
from trace_infra.definitions import GET_TRACE_URL


class Stack(Protocol):
    @property
    def resources(self) -> Resources: ...
    @property
    def users(self) -> UserDirectory: ...
    @property
    def gate(self) -> S3GateHandle: ...
    @property
    def gateway(self) -> LocalApiGateway: ...
    @property
    def function(self) -> LocalLambda: ...

    def cli_environment(self) -> dict[str, str]:
        """What a user's shell needs for ``bgagent login`` to reach the user pool."""
        ...

    def start_scenario(self) -> None:
        """An honest gate and clocks: what one scenario changed is not the next one's."""
        ...

    def refusals(self) -> list[str]:
        """What IAM refused since the scenario began (none known on a stack the suite
        did not create)."""
        ...

    def function_log_mark(self) -> int:
        """Where the function's log stream is now, where the suite can read it."""
        ...

    def function_log_since(self, mark: int) -> list[str]:
        """What the function logged since ``mark``; led by LOG_TRUNCATED when some of it
        is no longer kept."""
        ...

    def revoke(self, role: str, action: str) -> Callable[[], None]:
        """Take ``action`` from a role ("agent runtime" or "trace API"); returns the undo."""
        ...


def launch_moto(settings: Settings) -> MotoServer | None:
    """moto's server, launched ahead of the session's stack so that its start-up runs
    while pytest collects; None when the suite will not build its stack in moto."""
    if settings.deployed or settings.emulator:
        return None
    return MotoServer.launch()


def open_stack(
    settings: Settings, *, moto: MotoServer | None = None
) -> AbstractContextManager[Stack]:
    """The session's stack, running until the context ends; ``moto``, when given, is
    the server ``launch_moto`` started, and the stack's to stop."""
    if settings.deployed:
        return DeployedStack.session(settings.deployed, lease_seconds=settings.lease_seconds)
    code = function_code(GET_TRACE_URL.handler, settings.handler)
    return LocalStack.running(
        emulator=settings.emulator,
        moto=moto,
        code=code,
        function=settings.function,
        lease_seconds=settings.lease_seconds,
    )


def handler_code(settings: Settings) -> FunctionCode | None:
    """The handler the suite's own stack runs; None against a stack it did not create,
    which runs its own."""
    return None if settings.deployed else function_code(GET_TRACE_URL.handler, settings.handler)
