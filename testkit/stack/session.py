"""The stack a suite session runs against, chosen once by its settings
(``testkit.settings``): a stack the suite did not create (``deployed``), or the suite's
own local stack (``local``), built in another AWS emulator or in its own moto.

Either is a ``Stack``: what the scenarios' fixtures ask of it, whichever it is. The
parts only the suite's own stack has (its S3 gate, API Gateway and function) raise
``NotOnThisTarget`` on a stack the suite did not create.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
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


class StackOpening:
    """The session's stack, opened in a thread of its own (``start``), so that it starts
    while pytest collects, and closed with whatever it started. ``moto``: the server
    launched early (``testkit.stack.launch``), now this opening's to use or stop.

    The thread imports and makes loggers, and pytest walks the loggers at the start of
    every phase of a run (``_pytest.logging.catching_logs``): it runs only between such
    walks, from collection's start to its end (``wait``)."""

    def __init__(self, settings: Settings, moto: MotoServer | None) -> None:
        if settings.deployed and moto is not None:
            moto.stop()  # the stack is elsewhere
            moto = None
        self._opened = open_stack(settings, moto=moto)
        self._stopping = ExitStack()
        self._stack: Stack | None = None
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._open, name="stack opening", daemon=True)

    def start(self) -> None:
        if self._thread.ident is None:
            self._thread.start()

    def wait(self) -> None:
        """Until the stack is open, or could not open."""
        self.start()
        self._thread.join()

    def _open(self) -> None:
        try:
            self._stack = self._stopping.enter_context(self._opened)
        except BaseException as failed:  # raised where the stack is asked for
            self._failure = failed

    def stack(self) -> Stack:
        """The stack, once open; what kept it from opening is raised here."""
        self.wait()
        if self._failure is not None:
            raise self._failure
        assert self._stack is not None
        return self._stack

    def close(self) -> None:
        if self._thread.ident is not None:
            self._thread.join()
        self._stopping.close()


def open_stack(
    settings: Settings, *, moto: MotoServer | None = None
) -> AbstractContextManager[Stack]:
    """The session's stack, running until the context ends; ``moto``, when given, is
    the server launched early, and the stack's to stop."""
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
