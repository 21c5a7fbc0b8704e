"""Users of the platform, each with a configured, signed-in ``bgagent``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_bdd import given, parsers

from bgagent.config import Credentials, load_credentials, save_credentials
from testkit.apigw.gateway import LocalApiGateway
from testkit.conformance.cli import run_bgagent
from testkit.scene import Person, Scene
from testkit.stack.resources import Resources
from testkit.stack.users import (
    User,
    UserDirectory,
    UserPool,
    create_user,
    create_user_pool,
    random_password,
)

SignIns = Callable[[str, Path], Person]


@pytest.fixture(scope="session")
def signed_in(
    directory: UserDirectory, api_url: str, tmp_path_factory: pytest.TempPathFactory
) -> SignIns:
    """Each person configures bgagent and signs in through it once per session; every
    scenario that calls on them then works on its own copy of that configuration. Their
    credentials live under pytest's temporary directories, removed with the run."""
    sessions: dict[str, Person] = {}

    def person(name: str, workdir: Path) -> Person:
        if name not in sessions:
            home = tmp_path_factory.mktemp(f"bgagent-{name.lower()}")
            sessions[name] = signed_in_cli(
                name, directory.user(name), api_url, directory.pool, home
            )
        first = sessions[name]
        own = workdir.parent / f"bgagent-{name.lower()}"
        return Person(name, first.user, own, first.id_token, first.refresh_token, first.config_dir)

    return person


@given(parsers.parse("{first} and {second} have accounts on the platform"))
def users_with_accounts(
    first: str, second: str, scene: Scene, resources: Resources, signed_in: SignIns
) -> None:
    for name in (first, second):
        scene.people[name] = signed_in(name, scene.workdir)


def signed_in_cli(name: str, user: User, api_url: str, pool: UserPool, config_dir: Path) -> Person:
    """A ``bgagent`` of the person's own, configured and signed in as a user would do it."""
    person = Person(name, user, config_dir)
    configured = run_bgagent(
        person,
        "configure",
        "--api-url",
        api_url,
        "--region",
        pool.region,
        "--user-pool-id",
        pool.id,
        "--client-id",
        pool.client_id,
    )
    assert configured.exit_code == 0, configured.stderr
    signed_in = run_bgagent(
        person, "login", "--username", user.username, "--password-stdin", stdin=user.password
    )
    assert signed_in.exit_code == 0, signed_in.stderr
    cached = load_credentials(person.config_dir)
    person.id_token, person.refresh_token = cached.id_token, cached.refresh_token
    return person


@pytest.fixture
def other_user_pool(resources: Resources) -> Iterator[UserPool]:
    """A user pool of someone else's, removed after the scenario."""
    cognito = resources.aws.client("cognito-idp")
    other = create_user_pool(
        cognito,
        name="someone-elses-users",
        region=resources.pool.region,
        endpoint=resources.pool.endpoint,
    )
    yield other
    cognito.delete_user_pool(UserPoolId=other.id)


@given(parsers.parse("{name} signed in to another user pool"))
def signed_in_elsewhere(
    name: str, scene: Scene, resources: Resources, other_user_pool: UserPool
) -> None:
    cognito = resources.aws.client("cognito-idp")
    user = create_user(cognito, other_user_pool, name.lower(), random_password())
    # Configured for this platform's API, signed in with the other pool's client.
    config_dir = scene.workdir.parent / f"bgagent-{name.lower()}-elsewhere"
    scene.people[name] = signed_in_cli(name, user, resources.api_url, other_user_pool, config_dir)


@given(parsers.parse("{name}'s sign-in expired an hour ago"))
def sign_in_expired(name: str, scene: Scene, api_gateway: LocalApiGateway) -> None:
    scene.person(name)
    assert api_gateway.authorizer is not None
    api_gateway.authorizer.clock_offset = timedelta(hours=2)  # the token lasts one hour


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
