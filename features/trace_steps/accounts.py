"""Users of the platform, each with a configured, signed-in ``bgagent``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytest_bdd import given, parsers

from bgagent.config import Credentials, save_credentials
from trace_harness.identities import UserDirectory
from trace_harness.stack import TraceStack
from trace_steps.cli import run_bgagent
from trace_steps.scene import Person, Scene


@given(parsers.parse("{first} and {second} have accounts on the platform"))
def users_with_accounts(
    first: str, second: str, scene: Scene, stack: TraceStack, directory: UserDirectory
) -> None:
    for name in (first, second):
        scene.people[name] = _signed_in_cli(name, scene, stack, directory)


def _signed_in_cli(name: str, scene: Scene, stack: TraceStack, directory: UserDirectory) -> Person:
    """The person's own ``bgagent``: configured for the stack, holding their tokens."""
    account = directory.signed_in(name)
    user, tokens = account.user, account.tokens
    person = Person(name, user, scene.workdir.parent / f"bgagent-{name.lower()}")
    configured = run_bgagent(
        person,
        "configure",
        "--api-url",
        stack.api_url,
        "--region",
        stack.pool.region,
        "--user-pool-id",
        stack.pool.id,
        "--client-id",
        stack.pool.client_id,
    )
    assert configured.exit_code == 0, configured.stderr
    expiry = datetime.now(UTC) + timedelta(seconds=tokens["ExpiresIn"])
    save_credentials(
        person.config_dir,
        Credentials(tokens["IdToken"], tokens.get("RefreshToken", ""), expiry.isoformat()),
    )
    person.id_token = tokens["IdToken"]
    return person


@given(parsers.parse("{name}'s sign-in is no longer accepted"))
def sign_in_not_accepted(name: str, scene: Scene) -> None:
    person = scene.person(name)
    header, payload, signature = person.id_token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"  # the signature no longer matches
    save_credentials(person.config_dir, Credentials(forged))
    person.id_token = forged


@given(parsers.parse("{name}'s downloads give up after {seconds:g} second"))
@given(parsers.parse("{name}'s downloads give up after {seconds:g} seconds"))
def download_time_limit(name: str, seconds: float, scene: Scene) -> None:
    scene.person(name)
    scene.cli_env["BGAGENT_DOWNLOAD_TIMEOUT"] = f"{seconds:g}"
