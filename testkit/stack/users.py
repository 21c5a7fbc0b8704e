"""Users of the platform: a Cognito user pool in moto, its users and their ID tokens."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config

from testkit.stack.footprint import USER_MARKER, Mark

ID_TOKEN_ALGORITHM = "RS256"


@dataclass(frozen=True)
class UserPool:
    id: str
    client_id: str
    region: str
    endpoint: str

    @property
    def issuer(self) -> str:
        # moto stamps the real AWS issuer, even in server mode.
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint}/{self.id}/.well-known/jwks.json"


@dataclass(frozen=True)
class User:
    username: str
    password: str
    sub: str


def create_user_pool(
    cognito: Any, *, name: str, region: str, endpoint: str, tags: Mapping[str, str] | None = None
) -> UserPool:
    pool_id = cognito.create_user_pool(PoolName=name, UserPoolTags=dict(tags or {}))["UserPool"][
        "Id"
    ]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="bgagent-cli",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return UserPool(pool_id, client_id, region, endpoint)


def create_user(
    cognito: Any,
    pool: UserPool,
    username: str,
    password: str,
    *,
    attributes: Mapping[str, str] | None = None,
) -> User:
    created = cognito.admin_create_user(
        UserPoolId=pool.id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in (attributes or {}).items()],
    )["User"]
    cognito.admin_set_user_password(
        UserPoolId=pool.id, Username=username, Password=password, Permanent=True
    )
    sub = next(attr["Value"] for attr in created["Attributes"] if attr["Name"] == "sub")
    return User(username, password, sub)


def random_password() -> str:
    """A password nobody can guess from the user's name, meeting Cognito's default policy."""
    return f"Aa1!{secrets.token_urlsafe(18)}"


class UserDirectory:
    """Users of one pool, each created once, on first use: signing up is not what the
    scenarios are about, and each costs moto time.

    Usernames start with the session's name, for a person reading the pool; each user
    carries the session's marker (``testkit.stack.footprint``), which is what clean-up
    reads.
    """

    def __init__(self, cognito: Any, pool: UserPool, *, mark: Mark) -> None:
        self._cognito = cognito
        self.pool = pool
        self.mark = mark
        self._users: dict[str, User] = {}

    def user(self, name: str) -> User:
        if name not in self._users:
            username = f"{self.mark.session}-{name.lower()}"
            self._users[name] = create_user(
                self._cognito,
                self.pool,
                username,
                random_password(),
                attributes={USER_MARKER: str(self.mark)},
            )
        return self._users[name]

    def created(self) -> list[User]:
        return list(self._users.values())


def user_tokens(pool: UserPool, user: User) -> tuple[str, str]:
    """The user's ID and refresh tokens from a sign-in of the kit's own (an unsigned
    InitiateAuth, as any client makes it)."""
    cognito = boto3.client(
        "cognito-idp",
        region_name=pool.region,
        endpoint_url=pool.endpoint or None,  # a deployed pool: where the shell says
        config=Config(signature_version=UNSIGNED),
    )
    answer = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": user.username, "PASSWORD": user.password},
    )["AuthenticationResult"]
    return answer["IdToken"], answer["RefreshToken"]
