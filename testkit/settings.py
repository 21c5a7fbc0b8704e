"""Every ``TRACE_SUITE_*`` setting, read from the environment here and nowhere else.

- ``TRACE_SUITE_CLI``: another ``bgagent``-compatible command line to judge
  (``testkit.conformance.cli``); unset, this project's CLI runs in-process.
- ``TRACE_SUITE_HANDLER``: the handler the local Lambda runs
  (``testkit.lambda_.function_code``); unset, this project's.
- ``TRACE_SUITE_PHRASEBOOK``: how the CLI under judgement words its messages
  (``testkit.conformance.phrasebook``); unset, ``features/phrasebook.toml``.
- ``TRACE_SUITE_PROFILE``: one file that describes another implementation's layers
  (``testkit.conformance.profile``): its CLI and how it signs in, its handler with its
  role and environment, its agent, its phrasebook. A layer named both there and by
  one of the variables above stops the run.
- ``TRACE_SUITE_AWS_ENDPOINT``: another AWS emulator to build the local stack in.
- ``TRACE_SUITE_API_URL``, with ``TRACE_SUITE_USER_POOL_ID``, ``TRACE_SUITE_CLIENT_ID``,
  the stack's bucket and table variables and ``AWS_REGION``: a stack the suite did not
  create (``testkit.stack.deployed``).
- ``TRACE_SUITE_LEASE_SECONDS``: on a stack the suite shares (another emulator, or a
  stack it did not create), how long a session's lease lasts unrenewed before a later
  session may remove what it left (``testkit.stack.footprint``); 300 unless set.

A setting the suite cannot use stops the run before it starts, in one line. The
settings choose the suite's target (its own moto, another emulator, or a stack it did
not create), and what a target provides: a scenario tagged with a capability its
target lacks is skipped, and says why.
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from testkit.conformance.phrasebook import DEFAULT_PHRASEBOOK
from testkit.conformance.profile import (
    AgentProfile,
    CliProfile,
    HandlerProfile,
    Profile,
    ProfileError,
)
from testkit.stack.footprint import DEFAULT_LEASE_SECONDS
from trace_infra.definitions import ENV_TASK_TABLE, ENV_TRACE_BUCKET

ENV_CLI = "TRACE_SUITE_CLI"
ENV_HANDLER = "TRACE_SUITE_HANDLER"
ENV_PHRASEBOOK = "TRACE_SUITE_PHRASEBOOK"
ENV_PROFILE = "TRACE_SUITE_PROFILE"
ENV_AWS_ENDPOINT = "TRACE_SUITE_AWS_ENDPOINT"
ENV_API_URL = "TRACE_SUITE_API_URL"
ENV_USER_POOL_ID = "TRACE_SUITE_USER_POOL_ID"
ENV_CLIENT_ID = "TRACE_SUITE_CLIENT_ID"
ENV_LEASE_SECONDS = "TRACE_SUITE_LEASE_SECONDS"
# A lease is renewed four times per length: shorter would renew faster than S3's
# one-second clock can tell.
LEASE_SECONDS_RANGE = range(2, 7 * 24 * 3600 + 1)


# Each capability is a tag a scenario can carry, with what it means.
CAPABILITIES = {
    "needs_local_stack": (
        "needs the suite's own stack: its S3 gate, function and API Gateway (their clocks, "
        "faults and logs), or a change to the stack's shared configuration"
    ),
    "needs_moto": "relies on moto's own behaviour (a Deny bucket policy blocks every request)",
}


# What a scenario may need of the implementation under judgement, as tags: without it,
# the scenario is not applicable.
NEEDS = {
    "needs_download_deadline": "sets how long the CLI's downloads may take",
    "needs_our_agent": (
        "judges this project's agent: its pipeline (the trace cap, the cancel, crash and "
        "refusal paths, its log) or its runtime's role"
    ),
}


class NotOnThisTarget(Exception):
    """A scenario asked for something its target does not have."""


NOT_APPLICABLE = "not applicable: "  # how a skip says the implementation lacks something


def not_applicable(reason: str) -> NoReturn:
    """The scenario needs what the implementation under judgement does not offer: it is
    neither failed nor passed, and the verdict counts it apart."""
    pytest.skip(NOT_APPLICABLE + reason)


@contextmanager
def needs_local_stack() -> Iterator[None]:
    """A scenario that reaches for a part only the suite's own stack has fails on
    another target, saying which tag it lacks."""
    try:
        yield
    except NotOnThisTarget as missing:
        pytest.fail(f"this scenario needs {missing}: tag it @needs_local_stack")


@dataclass(frozen=True)
class Target:
    description: str
    provides: frozenset[str]

    def skip_reason(self, tags: Iterable[str]) -> str | None:
        for tag in tags:
            if tag in CAPABILITIES and tag not in self.provides:
                return f"{CAPABILITIES[tag]}; {self.description}"
        return None


OWN_MOTO = Target("the suite's own moto on 127.0.0.1", frozenset(CAPABILITIES))


class SettingsError(Exception):
    """A setting the suite cannot use; its message is the one line the run stops with."""


def names_a_deployed_stack(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the scenarios run against a stack the suite did not create, with the
    credentials of the shell (checked before the settings are read whole)."""
    return bool(environ.get(ENV_API_URL, "").strip())


@dataclass(frozen=True)
class DeployedTarget:
    """Where a stack the suite did not create is, as the environment names it."""

    api_url: str
    user_pool_id: str
    client_id: str
    region: str
    bucket: str
    table: str
    aws_endpoint: str | None  # AWS_ENDPOINT_URL, when the "deployed" stack is local


@dataclass(frozen=True)
class Settings:
    cli: tuple[str, ...] | None = None  # None: this project's CLI, in-process
    handler: str = ""  # "": this project's handler
    phrasebook: Path = DEFAULT_PHRASEBOOK
    emulator: str | None = None
    deployed: DeployedTarget | None = None
    # How the CLI signs in and what it offers; the handler's role and environment.
    cli_profile: CliProfile = field(default_factory=CliProfile)
    function: HandlerProfile = field(default_factory=HandlerProfile)
    agent: AgentProfile | None = None  # None: this project's agent
    profile: Path | None = None
    lease_seconds: int = DEFAULT_LEASE_SECONDS

    @classmethod
    def current(cls) -> Settings:
        """This process's settings, read once for as long as the environment names the
        same (a relative path is what it named from where the run started, and a profile
        edited mid-run, or a layer that changes the working folder, changes nothing)."""
        named = tuple(
            (name, value)
            for name, value in sorted(os.environ.items())
            if name.startswith("TRACE_SUITE_") or name in _ALSO_READ
        )
        return _read_once(named)

    @classmethod
    def read(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def setting(name: str) -> str:
            return environ.get(name, "").strip()

        profile = _profile(setting(ENV_PROFILE))
        for variable, in_profile in (
            (ENV_CLI, profile.cli_command),
            (ENV_HANDLER, profile.handler.code),
            (ENV_PHRASEBOOK, profile.phrasebook),
        ):
            if setting(variable) and in_profile:
                raise SettingsError(
                    f"{variable} and the profile {profile.path} both name it: keep one"
                )
        try:
            cli = tuple(shlex.split(setting(ENV_CLI))) or profile.cli_command
        except ValueError as unparsable:
            raise SettingsError(f"{ENV_CLI}={setting(ENV_CLI)!r}: {unparsable}") from None
        if cli and not _is_command(cli[0]):
            named = f"{ENV_CLI}={setting(ENV_CLI)!r}" if setting(ENV_CLI) else str(profile.path)
            raise SettingsError(f"{named}: {cli[0]!r} is no command that can run here")
        handler = setting(ENV_HANDLER) or profile.handler.code
        deployed = _deployed(environ) if names_a_deployed_stack(environ) else None
        if deployed and (handler or profile.handler != HandlerProfile()):
            named = ENV_HANDLER if setting(ENV_HANDLER) else f"{ENV_PROFILE}'s [handler]"
            raise SettingsError(
                f"{named} needs the suite's own stack; "
                f"{ENV_API_URL} points at one it did not create"
            )
        book = setting(ENV_PHRASEBOOK)
        return cls(
            cli=cli,
            handler=handler,
            phrasebook=Path(book).expanduser().resolve()
            if book
            else profile.phrasebook or DEFAULT_PHRASEBOOK,
            emulator=setting(ENV_AWS_ENDPOINT) or None,
            deployed=deployed,
            cli_profile=profile.cli,
            function=profile.handler,
            agent=profile.agent,
            profile=profile.path if setting(ENV_PROFILE) else None,
            lease_seconds=_lease_seconds(setting(ENV_LEASE_SECONDS)),
        )

    def lacks(self, tags: Iterable[str]) -> str | None:
        """Why the implementation under judgement cannot be judged by a scenario with these
        tags, if it cannot."""
        for tag in tags:
            if tag == "needs_download_deadline" and self.cli_profile.download_deadline is None:
                return "the CLI has no setting for how long its downloads may take"
            if tag == "needs_our_agent" and self.agent is not None:
                return "it judges this project's agent or its role; the agent judged is another"
        return None

    @property
    def target(self) -> Target:
        """What the suite runs against, and what that target provides: a stack it did not
        create wins over another emulator."""
        if self.deployed:
            return Target(f"{ENV_API_URL} points the suite at {self.deployed.api_url}", frozenset())
        if self.emulator:
            return Target(
                f"{ENV_AWS_ENDPOINT} points the suite at {self.emulator}",
                frozenset({"needs_local_stack"}),
            )
        return OWN_MOTO


_ALSO_READ = frozenset(
    {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", ENV_TRACE_BUCKET, ENV_TASK_TABLE}
)


@functools.lru_cache(maxsize=4)
def _read_once(named: tuple[tuple[str, str], ...]) -> Settings:
    return Settings.read(dict(named))


def _profile(named: str) -> Profile:
    if not named:
        return Profile(Path())
    try:
        return Profile.load(Path(os.path.abspath(Path(named).expanduser())))
    except ProfileError as unusable:
        raise SettingsError(f"{ENV_PROFILE}: {unusable}") from None


def _lease_seconds(named: str) -> int:
    if not named:
        return DEFAULT_LEASE_SECONDS
    if named.isascii() and named.isdigit() and int(named) in LEASE_SECONDS_RANGE:
        return int(named)
    low, high = LEASE_SECONDS_RANGE[0], LEASE_SECONDS_RANGE[-1]
    raise SettingsError(
        f"{ENV_LEASE_SECONDS}={named!r}: give a whole number of seconds, {low} to {high}"
    )


def _is_command(name: str) -> bool:
    """An executable file, named by path or found on PATH (never a folder)."""
    found = shutil.which(name)
    return found is not None and Path(found).is_file()


def _deployed(environ: Mapping[str, str]) -> DeployedTarget:
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION", "")
    needed = {
        name: environ.get(name, "")
        for name in (ENV_USER_POOL_ID, ENV_CLIENT_ID, ENV_TRACE_BUCKET, ENV_TASK_TABLE)
    }
    missing = [name for name, value in {**needed, "AWS_REGION": region}.items() if not value]
    if missing:
        raise SettingsError(f"{ENV_API_URL} is set; also set {', '.join(missing)}")
    return DeployedTarget(
        api_url=environ[ENV_API_URL].strip().rstrip("/"),
        user_pool_id=needed[ENV_USER_POOL_ID],
        client_id=needed[ENV_CLIENT_ID],
        region=region,
        bucket=needed[ENV_TRACE_BUCKET],
        table=needed[ENV_TASK_TABLE],
        aws_endpoint=environ.get("AWS_ENDPOINT_URL") or None,
    )
