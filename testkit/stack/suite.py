"""The stack a suite session runs against, chosen once, by the environment.

``TRACE_SUITE_API_URL`` names a stack the suite did not create (see
``testkit.stack.deployed``); else ``TRACE_SUITE_AWS_ENDPOINT`` names another AWS
emulator to build the local stack in; else the suite starts its own moto.
``TRACE_SUITE_HANDLER`` names the handler its local Lambda runs
(``testkit.lambda_.function_code``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager

from testkit.aws.endpoint import ENV_SUITE_ENDPOINT, MotoServer
from testkit.lambda_.function_code import (
    ENV_SUITE_HANDLER,
    FunctionCode,
    FunctionCodeError,
    function_code,
)
from testkit.stack.deployed import ENV_API_URL, DeployedStack, DeployedTarget
from testkit.stack.local import LocalStack
from testkit.stack.targets import Target, target_for
from trace_infra.definitions import GET_TRACE_URL

SuiteStack = LocalStack | DeployedStack


def target_of(environ: Mapping[str, str] = os.environ) -> Target:
    """What the environment points the suite at, and what that target provides."""
    deployed = DeployedTarget.from_environment(environ)
    return target_for(
        api_url=deployed.api_url if deployed else None,
        emulator=environ.get(ENV_SUITE_ENDPOINT),
    )


def launch_moto(environ: Mapping[str, str] = os.environ) -> MotoServer | None:
    """moto's server, launched ahead of the session's stack so that its start-up runs
    while pytest collects; None when the suite will not build its stack in moto."""
    if environ.get(ENV_API_URL) or environ.get(ENV_SUITE_ENDPOINT):
        return None
    return MotoServer.launch()


def open_suite_stack(
    environ: Mapping[str, str] = os.environ, *, moto: MotoServer | None = None
) -> AbstractContextManager[SuiteStack]:
    """The session's stack, running until the context ends; ``moto``, when given, is
    the server ``launch_moto`` started, and the stack's to stop."""
    code = suite_function_code(environ)
    deployed = DeployedTarget.from_environment(environ)
    if deployed:
        return DeployedStack.session(deployed)
    return LocalStack.running(emulator=environ.get(ENV_SUITE_ENDPOINT), moto=moto, code=code)


def suite_function_code(environ: Mapping[str, str] = os.environ) -> FunctionCode | None:
    """The handler the suite's own stack runs; None against a stack it did not create,
    which runs its own (and so refuses TRACE_SUITE_HANDLER)."""
    if environ.get(ENV_API_URL):
        if environ.get(ENV_SUITE_HANDLER, "").strip():
            raise FunctionCodeError(
                f"{ENV_SUITE_HANDLER} needs the suite's own stack; "
                f"{ENV_API_URL} points at one it did not create"
            )
        return None
    return function_code(GET_TRACE_URL.handler, environ)
