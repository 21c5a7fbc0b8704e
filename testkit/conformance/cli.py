"""Running a ``bgagent`` as a given person: this project's CLI in-process (the module), or
as an installed command in a process of its own, the way users run it.

``TRACE_SUITE_CLI`` (or a profile's ``[cli]``) names another ``bgagent``-compatible
command line (for example ``node path/to/bgagent.js``): every run of the CLI in the
scenarios is then that command, as a subprocess, with the person's own folder in the
variable its profile names (``BGAGENT_CONFIG_DIR`` by default). People sign in through
it as its profile says; the kit reads this project's credentials file only from a CLI
that keeps it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol, SupportsIndex

from bgagent import download
from bgagent.config import load_credentials
from bgagent.main import run
from testkit.process_tree import run_tree
from testkit.scene import CliRun, Person
from testkit.settings import Settings
from testkit.stack.users import User, UserPool, user_tokens

_RUN_SECONDS = 60


class Awaited(Protocol):
    """Something that happens once, waited for: a ``threading.Event``, or an event of a
    gate in another process."""

    def wait(self, timeout: float | None = None) -> bool: ...


# The most of its stdout (a trace printed whole) and of its stderr that is kept.
OUTPUT_LIMITS = (256 * 1024 * 1024, 1024 * 1024)


def run_bgagent(
    person: Person,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    interrupt_when: Awaited | None = None,
) -> CliRun:
    """One run of the CLI; ``interrupt_when``: press Ctrl-C once that event is set."""
    command = Settings.current().cli
    if command is not None:
        return run_command(
            command, person, args, env=env, stdin=stdin, interrupt_when=interrupt_when
        )
    stdout, stderr = io.BytesIO(), io.StringIO()
    environ = _environ(person, env)
    main = threading.main_thread().ident or 0

    def press() -> None:
        # In-process the CLI runs on the main thread: the signal is aimed there (sent to
        # the process, it could reach one of the local servers' threads).
        signal.pthread_kill(main, signal.SIGINT)

    with (
        _sigint_handled(interrupt_when),
        _pressed_when(interrupt_when, press),
        _retries_without_pauses(),
    ):
        exit_code = run(
            list(args), stdout=stdout, stderr=stderr, stdin=io.StringIO(stdin), environ=environ
        )
    return _ran(CliRun(list(args), exit_code, stdout.getvalue(), stderr.getvalue()))


@contextmanager
def _retries_without_pauses() -> Iterator[None]:
    """In-process, the CLI asks the storage again at once: how long it pauses between
    tries is pinned by its own tests (``cli/tests/test_storage_answers.py``), and a
    scenario only waits for it. A CLI run as a command pauses as it does."""
    paused, download._pause = download._pause, _no_pause
    try:
        yield
    finally:
        download._pause = paused


def _no_pause(seconds: float | SupportsIndex) -> None:
    """A pause between tries, not taken."""


def installed_bgagent() -> str:
    """This project's bgagent command, as installed next to this Python."""
    installed = shutil.which("bgagent", path=str(Path(sys.executable).parent))
    assert installed, "the bgagent command is not installed next to this Python"
    return installed


def run_bgagent_process(person: Person, *args: str) -> CliRun:
    """The command users run: the CLI under judgement, or this project's installed one."""
    return run_command(Settings.current().cli or (installed_bgagent(),), person, args)


def run_command(
    command: Sequence[str],
    person: Person,
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    interrupt_when: Awaited | None = None,
) -> CliRun:
    def pressing(process: subprocess.Popen[bytes]) -> AbstractContextManager[None]:
        # Ctrl-C at a terminal reaches the foreground process group, not one process.
        return _pressed_when(interrupt_when, lambda: _signal(process, signal.SIGINT))

    with _sigint_handled(interrupt_when):  # a child inherits SIGINT ignored, not handled
        done = run_tree(
            [*command, *args],
            env=_environ(person, env),
            stdin=stdin.encode(),
            seconds=_RUN_SECONDS,
            limits=OUTPUT_LIMITS,
            # The folder the person's own is in, the scenario's: whatever a CLI writes
            # where it runs stays in the run's temporary folders, never in the project.
            cwd=person.home.parent,
            while_running=pressing,
        )
    stderr = done.stderr.decode("utf-8", "replace")
    return _ran(CliRun([*command, *args], done.status, done.stdout, stderr))


def _environ(person: Person, env: Mapping[str, str] | None) -> dict[str, str]:
    """The person's shell: this one's, the scenario's settings, and their own folder."""
    home = Settings.current().cli_profile.home
    return {**os.environ, **(env or {}), home: str(person.config_dir)}


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@contextmanager
def _sigint_handled(interrupt_when: Awaited | None) -> Iterator[None]:
    """For a run to be interrupted: Ctrl-C as at a terminal, even for a suite a shell
    started in the background (its `&` leaves SIGINT ignored, and Python keeps it so)."""
    if interrupt_when is None:
        yield
        return
    handled = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handled)


@contextmanager
def _pressed_when(event: Awaited | None, press: Callable[[], None]) -> Iterator[None]:
    """``press`` Ctrl-C from a thread of its own once ``event`` is set, if the run has
    not ended by then."""
    if event is None:
        yield
        return
    over = threading.Event()

    def once_set() -> None:
        if event.wait(_RUN_SECONDS) and not over.is_set():
            press()

    threading.Thread(target=once_set, daemon=True).start()
    try:
        yield
    finally:
        over.set()


# Every run of the CLI in this session, for the check that no secret was ever shown.
RUNS: list[CliRun] = []


def _ran(cli_run: CliRun) -> CliRun:
    RUNS.append(cli_run)
    return cli_run


SignIns = Callable[[str, Path], Person]  # a person's sign-in, copied into a scenario's folder


class SignInFailed(AssertionError):
    """The CLI could not configure or sign a person in, as its profile says it does, or
    showed a token while it did."""


# A JSON Web Token, as Cognito's ID and access tokens are: whatever CLI shows one, and
# whatever token it is, it was shown.
A_TOKEN = re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}")


def shows_a_token(text: str) -> bool:
    return A_TOKEN.search(text) is not None


def sign_in(name: str, user: User, api_url: str, pool: UserPool, config_dir: Path) -> Person:
    """A ``bgagent`` of the person's own, configured and signed in as a user would do it,
    in the words of the CLI's profile. The person's tokens are the CLI's own where it
    keeps this project's credentials file; otherwise the kit's own sign-in of the same
    user, for the steps that call the API as a plain client would."""
    profile = Settings.current().cli_profile
    person = Person(name, user, config_dir)
    values = {
        "api_url": api_url,
        "region": pool.region,
        "user_pool_id": pool.id,
        "client_id": pool.client_id,
        "username": user.username,
        "password": user.password,
    }
    for step, template in (("configure", profile.configure), ("sign-in", profile.sign_in)):
        stdin = user.password if step == "sign-in" and profile.password_on_stdin else ""
        done = run_bgagent(person, *(part.format_map(values) for part in template), stdin=stdin)
        if done.exit_code != 0:
            said = done.stderr.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            raise SignInFailed(
                f"the CLI's {step} of {name} ended with status {done.exit_code}: {said[0][:300]}"
            )
        if shows_a_token(done.stderr + done.stdout.decode("utf-8", "replace")):
            raise SignInFailed(f"the CLI's {step} of {name} showed a token")
    if profile.keeps_our_files:
        cached = load_credentials(person.config_dir)
        person.id_token, person.refresh_token = cached.id_token, cached.refresh_token
    else:
        person.id_token, person.refresh_token = user_tokens(pool, user)
    return person
