r"""What another implementation offers, in one small TOML file (``TRACE_SUITE_PROFILE``):
its CLI and how it signs in, its handler with its role and settings, its agent, and its
phrasebook. Paths in the file are relative to it; every section is optional, and a
layer the profile does not name is this project's.

    phrasebook = "phrasebook.toml"

    [cli]
    command = ["node", "dist/bgagent.js"]
    # How a person signs in; "{password}" in the command, or the password on stdin.
    sign_in = ["login", "--username", "{username}", "--password", "{password}"]
    configure = ["configure", "--api-url", "{api_url}", "--region", "{region}",
                 "--user-pool-id", "{user_pool_id}", "--client-id", "{client_id}"]
    home = "BGAGENT_CONFIG_DIR"      # the variable naming each person's own folder
    download_deadline = ""           # the variable giving the deadline in seconds; "": none
    interrupted_status = 1           # its exit status after Ctrl-C
    stderr_noise = '\(node:\d+\) .*'  # lines on stderr that say nothing of the run

    [handler]
    code = "dist/handler.js:handler"
    policy = "handler-policy.json"   # its role's IAM policy; ${TraceBucket}, ${TaskTable}
    environment = { TASKS_TABLE = "task table", TRACES_BUCKET = "trace bucket" }
    log_reason = "error"             # the field of its error record that says why

    [agent]
    dump = "their_agent.adapter:dump"      # (task_id, events) -> gzipped JSON Lines | None
    upload = "their_agent.adapter:upload"  # (body, task_id, user_id) -> s3:// URI | None
    finish = "their_agent.adapter:finish"  # (task_id, status, trace_s3_uri); optional

The kit never writes a profiled CLI's files: it signs people in through the CLI, and
refuses a sign-in at the API Gateway, never by editing what the CLI keeps.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex

from testkit.aws.auth import POLICY_PLACEHOLDERS
from testkit.conformance.phrasebook import read_bounded

# What this project's CLI is, described as a profile describes another.
CONFIGURE = (
    "configure",
    "--api-url",
    "{api_url}",
    "--region",
    "{region}",
    "--user-pool-id",
    "{user_pool_id}",
    "--client-id",
    "{client_id}",
)
SIGN_IN = ("login", "--username", "{username}", "--password-stdin")
HOME = "BGAGENT_CONFIG_DIR"
DOWNLOAD_DEADLINE = "BGAGENT_DOWNLOAD_TIMEOUT"
INTERRUPTED_STATUS = 130  # as a shell reports Ctrl-C: 128 + SIGINT

# What the CLI's configure and sign-in templates may name.
TEMPLATE_VALUES = ("api_url", "region", "user_pool_id", "client_id", "username", "password")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")

# What a handler's environment variable may name.
RESOURCES = ("trace bucket", "task table")


class ProfileError(Exception):
    """The profile cannot be used; its message is one line."""


@dataclass(frozen=True)
class CliProfile:
    configure: tuple[str, ...] = CONFIGURE
    sign_in: tuple[str, ...] = SIGN_IN
    home: str = HOME
    download_deadline: str | None = DOWNLOAD_DEADLINE
    interrupted_status: int = INTERRUPTED_STATUS
    # Lines it writes to stderr that say nothing of the run (a runtime's deprecation
    # warning): a regular expression a whole line must match; "": none.
    stderr_noise: str = ""
    # Whether it keeps this project's files (config.json, credentials.json), which the
    # kit may then read and, on a stack it did not create, edit.
    keeps_our_files: bool = True

    @property
    def password_on_stdin(self) -> bool:
        return not any("{password}" in part for part in self.sign_in)


@dataclass(frozen=True)
class PolicyStatement:
    """One Allow statement of a handler's policy, its resources as written."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True)
class HandlerProfile:
    code: str = ""  # "": this project's handler
    policy: tuple[PolicyStatement, ...] | None = None  # None: this project's grants
    policy_source: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)  # name -> a RESOURCES
    log_reason: str = "reason"  # the field of its error record that says why


@dataclass(frozen=True)
class AgentProfile:
    dump: str
    upload: str
    finish: str = ""  # "": this project's terminal write stands in for the agent's


@dataclass(frozen=True)
class Profile:
    path: Path
    cli_command: tuple[str, ...] | None = None
    cli: CliProfile = field(default_factory=CliProfile)
    handler: HandlerProfile = field(default_factory=HandlerProfile)
    agent: AgentProfile | None = None
    phrasebook: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Profile:
        try:
            document = tomllib.loads(read_bounded(path).decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise ProfileError(f"profile {path}: {err}") from None
        reader = _Reader(path)
        reader.only(document, "", {"phrasebook", "cli", "handler", "agent"})
        cli = reader.table(document, "cli")
        handler = reader.table(document, "handler")
        agent = reader.table(document, "agent")
        book = reader.text(document, "phrasebook", None)
        return cls(
            path=path,
            cli_command=reader.command_words(reader.command(cli, "cli.command")) if cli else None,
            cli=reader.cli(cli) if cli else CliProfile(),
            handler=reader.handler(handler),
            agent=reader.agent(agent) if agent else None,
            phrasebook=reader.resolve(book) if book else None,
        )


class _Reader:
    """Reads a profile's values, each checked, each error one line naming the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, why: str) -> ProfileError:
        return ProfileError(f"profile {self.path}: {key}: {why}")

    def only(self, table: Mapping[str, Any], name: str, known: set[str]) -> None:
        unknown = sorted(set(table) - known)
        if unknown:
            where = f"[{name}] " if name else ""
            raise self.fail(
                f"{where}{unknown[0]}", f"unknown; known are {', '.join(sorted(known))}"
            )

    def table(self, document: Mapping[str, Any], key: str) -> dict[str, Any]:
        value = document.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def text(self, table: Mapping[str, Any], key: str, default: str | None) -> str | None:
        value = table.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.fail(key, f"must be text, not {value!r}")
        return value

    def resolve(self, value: str) -> Path:
        # Absolute, but symbolic links kept: a virtual environment's python is a link, and
        # what it links to runs without the environment's packages.
        return Path(os.path.normpath(self.path.parent / Path(value).expanduser()))

    def command(self, table: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key.rpartition(".")[2])
        if not (isinstance(value, list) and value and all(isinstance(p, str) and p for p in value)):
            raise self.fail(key, "must be a list of words, the command first")
        return tuple(value)

    def beside(self, word: str) -> str:
        """A word naming a file beside the profile, as an absolute path; others as they are."""
        found = self.resolve(word)
        return str(found) if not Path(word).is_absolute() and found.is_file() else word

    def command_words(self, words: tuple[str, ...]) -> tuple[str, ...]:
        """The command as a shell beside the profile would run it: a first word with a
        slash is a path from there, one without is found on PATH; a later word naming a
        file there is that file."""
        first, *rest = words
        program = str(self.resolve(first)) if "/" in first else first
        return (program, *map(self.beside, rest))

    def cli(self, table: Mapping[str, Any]) -> CliProfile:
        known = {"command", "sign_in", "configure", "home", "download_deadline"}
        self.only(table, "cli", known | {"interrupted_status", "stderr_noise"})
        sign_in = self.command(table, "cli.sign_in") if "sign_in" in table else SIGN_IN
        if not any("{username}" in part for part in sign_in):
            raise self.fail("cli.sign_in", "must name the {username}")
        configure = self.command(table, "cli.configure") if "configure" in table else CONFIGURE
        for key, template in (("cli.sign_in", sign_in), ("cli.configure", configure)):
            self.template(key, template)
        noise = self.text(table, "stderr_noise", "") or ""
        try:
            regex.compile(noise)
        except regex.error as err:
            raise self.fail("cli.stderr_noise", str(err)) from None
        status = table.get("interrupted_status", INTERRUPTED_STATUS)
        if not isinstance(status, int) or isinstance(status, bool) or not 0 <= status <= 255:
            raise self.fail("cli.interrupted_status", f"must be an exit status, not {status!r}")
        return CliProfile(
            configure=configure,
            sign_in=sign_in,
            home=self.variable("cli.home", self.text(table, "home", HOME) or HOME),
            download_deadline=self.variable(
                "cli.download_deadline", self.text(table, "download_deadline", "") or ""
            )
            or None,
            interrupted_status=status,
            stderr_noise=noise,
            keeps_our_files=False,
        )

    def template(self, key: str, words: tuple[str, ...]) -> None:
        """Each word's placeholders must be ones the kit fills in."""
        for word in words:
            try:
                word.format_map({name: "" for name in TEMPLATE_VALUES})
            except (KeyError, ValueError, IndexError) as err:
                raise self.fail(
                    key,
                    f"{word!r}: {err!r}; a word may name {', '.join(TEMPLATE_VALUES)} "
                    "(in braces; double a brace to keep it)",
                ) from None

    def variable(self, key: str, name: str) -> str:
        if name and not _VARIABLE.fullmatch(name):
            raise self.fail(key, f"{name!r} is no environment variable's name")
        return name

    def handler(self, table: Mapping[str, Any]) -> HandlerProfile:
        self.only(table, "handler", {"code", "policy", "environment", "log_reason"})
        environment = table.get("environment", {})
        if not isinstance(environment, dict) or not all(
            isinstance(v, str) and v in RESOURCES for v in environment.values()
        ):
            raise self.fail(
                "handler.environment",
                f"must map each variable to one of {', '.join(map(repr, RESOURCES))}",
            )
        for name in environment:
            self.variable("handler.environment", name)
        policy = self.text(table, "policy", None)
        code = self.text(table, "code", "") or ""
        file, colon, export = code.rpartition(":")
        if colon and not self.resolve(file).is_file():
            raise self.fail("handler.code", f"no file {self.resolve(file)}")
        return HandlerProfile(
            code=f"{self.beside(file)}:{export}" if colon else code,
            policy=self.policy(self.resolve(policy)) if policy else None,
            policy_source=str(self.resolve(policy)) if policy else "",
            environment=dict(environment),
            log_reason=self.text(table, "log_reason", "reason") or "reason",
        )

    def policy(self, path: Path) -> tuple[PolicyStatement, ...]:
        """A standard IAM policy document of Allow statements (the local stack enforces
        no Deny, conditions or NotAction; such a policy is refused rather than misread)."""
        key = "handler.policy"
        try:
            document = json.loads(read_bounded(path))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise self.fail(key, f"{path}: {err}") from None
        statements = document.get("Statement") if isinstance(document, dict) else None
        if isinstance(statements, dict):
            statements = [statements]
        if not isinstance(statements, list) or not statements:
            raise self.fail(key, f"{path}: no Statement list")
        read = []
        for number, statement in enumerate(statements, 1):
            where = f"{path} statement {number}"
            if not isinstance(statement, dict):
                raise self.fail(key, f"{where}: not an object")
            beyond = sorted(set(statement) - {"Sid", "Effect", "Action", "Resource"})
            if statement.get("Effect") != "Allow" or beyond:
                what = beyond[0] if beyond else f"Effect {statement.get('Effect')!r}"
                raise self.fail(key, f"{where}: {what} is beyond what the local stack enforces")
            resources = _words(statement.get("Resource"), self.fail(key, f"{where}: Resource"))
            for resource in resources:
                unknown = set(_PLACEHOLDER.findall(resource)) - set(POLICY_PLACEHOLDERS)
                if unknown:
                    raise self.fail(
                        key,
                        f"{where}: {sorted(unknown)[0]} is no placeholder the kit fills in "
                        f"({', '.join(POLICY_PLACEHOLDERS)})",
                    )
            read.append(
                PolicyStatement(
                    _words(statement.get("Action"), self.fail(key, f"{where}: Action")),
                    resources,
                )
            )
        return tuple(read)

    def agent(self, table: Mapping[str, Any]) -> AgentProfile:
        self.only(table, "agent", {"dump", "upload", "finish"})
        named = {}
        for key in ("dump", "upload", "finish"):
            value = self.text(table, key, None)
            if key == "finish" and value is None:
                continue
            module, colon, attribute = (value or "").partition(":")
            if not (module and colon and attribute):
                raise self.fail(f"agent.{key}", "must name a callable as module:attribute")
            named[key] = value or ""
        return AgentProfile(**named)


def _words(value: object, error: ProfileError) -> tuple[str, ...]:
    words = [value] if isinstance(value, str) else value
    if not (isinstance(words, list) and words and all(isinstance(w, str) and w for w in words)):
        raise error
    return tuple(words)
