"""Users of the platform: a Cognito user pool in moto, its users and their ID tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def create_user_pool(cognito: Any, *, name: str, region: str, endpoint: str) -> UserPool:
    pool_id = cognito.create_user_pool(PoolName=name)["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="bgagent-cli",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return UserPool(pool_id, client_id, region, endpoint)


def create_user(cognito: Any, pool: UserPool, username: str, password: str) -> User:
    cognito.admin_create_user(UserPoolId=pool.id, Username=username, MessageAction="SUPPRESS")
    cognito.admin_set_user_password(
        UserPoolId=pool.id, Username=username, Password=password, Permanent=True
    )
    attributes = cognito.admin_get_user(UserPoolId=pool.id, Username=username)["UserAttributes"]
    sub = next(attr["Value"] for attr in attributes if attr["Name"] == "sub")
    return User(username, password, sub)


class UserDirectory:
    """Users of one pool, each created once, on first use: signing up is not what the
    scenarios are about, and moto spends about 100 ms on a pool."""

    def __init__(self, cognito: Any, pool: UserPool, *, username_suffix: str = "") -> None:
        self._cognito = cognito
        self.pool = pool
        self._suffix = username_suffix  # in a shared pool, this session's users only
        self._users: dict[str, User] = {}

    def user(self, name: str) -> User:
        if name not in self._users:
            username = f"{name.lower()}{self._suffix}"
            password = f"Correct-Horse-{name}-1{self._suffix}"
            self._users[name] = create_user(self._cognito, self.pool, username, password)
        return self._users[name]

    def remove_users(self) -> None:
        for user in self._users.values():
            self._cognito.admin_delete_user(UserPoolId=self.pool.id, Username=user.username)
