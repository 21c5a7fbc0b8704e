"""Users of the platform, each with a configured, signed-in ``bgagent``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pytest_bdd import given, parsers

from bgagent.config import Credentials, save_credentials
from trace_harness.identities import create_user, id_token_for
from trace_harness.stack import TraceStack
from trace_steps.cli import run_bgagent
from trace_steps.scene import Person, Scene


@given(parsers.parse("{first} and {second} have accounts on the platform"))
def users_with_accounts(first: str, second: str, scene: Scene, stack: TraceStack) -> None:
    for name in (first, second):
        scene.people[name] = _sign_up(name, scene, stack)


def _sign_up(name: str, scene: Scene, stack: TraceStack) -> Person:
    cognito = stack.moto.client("cognito-idp")
    user = create_user(cognito, stack.pool, name.lower(), f"Correct-Horse-{name}-1")
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
    tokens = id_token_for(cognito, stack.pool, user)
    expiry = datetime.now(UTC) + timedelta(seconds=tokens["ExpiresIn"])
    save_credentials(
        person.config_dir,
        Credentials(tokens["IdToken"], tokens.get("RefreshToken", ""), expiry.isoformat()),
    )
    return person
