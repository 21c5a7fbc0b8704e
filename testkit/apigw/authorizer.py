"""API Gateway's Cognito user pool authorizer, as the local gateway runs it: an ID
token's signature (RS256, against the pool's JWKS), issuer, audience, ``token_use``
and expiry, on a clock a scenario may move."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import requests
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from testkit.stack.users import ID_TOKEN_ALGORITHM, UserPool


class CognitoAuthorizer:
    """Verifies an ID token as API Gateway's Cognito authorizer does."""

    def __init__(self, pool: UserPool) -> None:
        self._pool = pool
        self._keys: KeySet | None = None
        self.clock_offset = timedelta(0)  # the test's clock: lets a token expire
        self.refused: set[str] = set()  # users (by sub) whose sign-ins are no longer accepted
        self.seen: set[str] = set()  # every token presented, for the check that none is shown

    def reset(self) -> None:
        """As a scenario finds it: an honest clock, every sign-in accepted."""
        self.clock_offset = timedelta(0)
        self.refused.clear()

    def claims_for(self, token: str) -> dict[str, str]:
        """The token's claims as strings; raises Unauthorized when it must be refused."""
        if not token:
            raise Unauthorized("Unauthorized")
        self.seen.add(token)
        try:
            decoded = jwt.decode(token, self._key_set(), algorithms=[ID_TOKEN_ALGORITHM])
            jwt.JWTClaimsRegistry(
                now=lambda: int(time.time() + self.clock_offset.total_seconds()),
                iss={"essential": True, "value": self._pool.issuer},
                aud={"essential": True, "value": self._pool.client_id},
                token_use={"essential": True, "value": "id"},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
        except ExpiredTokenError:
            raise Unauthorized("The incoming token has expired") from None
        except (JoseError, ValueError):
            raise Unauthorized("Unauthorized") from None
        if decoded.claims.get("sub") in self.refused:  # as a token whose key was rotated
            raise Unauthorized("Unauthorized")
        # API Gateway hands every claim to the handler as a string.
        return {name: _claim_text(value) for name, value in decoded.claims.items()}

    def _key_set(self) -> KeySet:
        if self._keys is None:
            response = requests.get(self._pool.jwks_url, timeout=10)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys


class Unauthorized(Exception):
    """The authorizer refused the token; API Gateway answers 401 with this message."""


def _claim_text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
