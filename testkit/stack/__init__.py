"""The stack a suite session runs against, chosen once by its settings
(``testkit.settings``): a stack the suite did not create (``deployed``), or the suite's
own local stack (``local``), built in another AWS emulator or in its own moto.

Either is a ``Stack``: what the scenarios' fixtures ask of it, whichever it is.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from testkit.aws.endpoint import MotoServer
from testkit.lambda_.function_code import FunctionCode, function_code
from testkit.settings import Settings
from testkit.stack.deployed import DeployedStack
from testkit.stack.local import LocalStack
from trace_infra.definitions import GET_TRACE_URL

Stack = LocalStack | DeployedStack


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
        return DeployedStack.session(settings.deployed)
    code = function_code(GET_TRACE_URL.handler, settings.handler)
    return LocalStack.running(emulator=settings.emulator, moto=moto, code=code)


def handler_code(settings: Settings) -> FunctionCode | None:
    """The handler the suite's own stack runs; None against a stack it did not create,
    which runs its own."""
    return None if settings.deployed else function_code(GET_TRACE_URL.handler, settings.handler)
