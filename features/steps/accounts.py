"""Users of the platform, each with a configured, signed-in ``bgagent``."""

from __future__ import annotations

from datetime import timedelta

from pytest_bdd import given, parsers

from bgagent.config import Credentials, save_credentials
from testkit.apigw.gateway import LocalApiGateway
from testkit.conformance.cli import SignIns, sign_in
from testkit.scene import Scene
from testkit.settings import NotOnThisTarget, Settings, not_applicable
from testkit.stack.resources import Resources
from testkit.stack.session import Stack
from testkit.stack.users import (
    UserPool,
    create_user,
    random_password,
)


@given(parsers.parse("{first} and {second} have accounts on the platform"))
def users_with_accounts(
    first: str, second: str, scene: Scene, resources: Resources, signed_in: SignIns
) -> None:
    for name in (first, second):
        scene.people[name] = signed_in(name, scene.workdir)


@given(parsers.parse("{name} signed in to another user pool"))
def signed_in_elsewhere(
    name: str, scene: Scene, resources: Resources, other_user_pool: UserPool
) -> None:
    cognito = resources.aws.client("cognito-idp")
    user = create_user(cognito, other_user_pool, name.lower(), random_password())
    # Configured for this platform's API, signed in with the other pool's client.
    config_dir = scene.workdir.parent / f"bgagent-{name.lower()}-elsewhere"
    scene.people[name] = sign_in(name, user, resources.api_url, other_user_pool, config_dir)


@given(parsers.parse("{name}'s sign-in expired an hour ago"))
def sign_in_expired(name: str, scene: Scene, api_gateway: LocalApiGateway) -> None:
    scene.person(name)
    assert api_gateway.authorizer is not None
    api_gateway.authorizer.clock_offset = timedelta(hours=2)  # the token lasts one hour


@given(parsers.parse("{name}'s sign-in is no longer accepted"))
def sign_in_not_accepted(name: str, scene: Scene, stack: Stack) -> None:
    """The API Gateway refuses the person's tokens, whatever the CLI keeps; on a stack
    the suite did not create, only this project's credentials file can be edited."""
    person = scene.person(name)
    try:
        authorizer = stack.gateway.authorizer
    except NotOnThisTarget:
        if not Settings.current().cli_profile.keeps_our_files:
            not_applicable("the kit cannot refuse a sign-in of a CLI whose files it cannot edit")
        header, payload, signature = person.id_token.split(".")
        forged = f"{header}.{payload}.{signature[::-1]}"  # the signature no longer matches
        save_credentials(person.config_dir, Credentials(forged))
        person.id_token = forged
        return
    assert authorizer is not None
    authorizer.refused.add(person.user.sub)


@given(parsers.parse("{name}'s downloads give up after {seconds:g} second"))
@given(parsers.parse("{name}'s downloads give up after {seconds:g} seconds"))
def download_time_limit(name: str, seconds: float, scene: Scene) -> None:
    scene.person(name)
    setting = Settings.current().cli_profile.download_deadline
    if setting is None:
        not_applicable("the CLI has no setting for how long its downloads may take")
    scene.cli_env[setting] = f"{seconds:g}"
