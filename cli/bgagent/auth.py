"""Signing in with Cognito (USER_PASSWORD_AUTH) and keeping the ID token fresh."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bgagent.config import Config, Credentials, load_credentials, save_credentials
from bgagent.errors import CliError, printable

# Refresh a little before expiry, so a token never expires on its way to the API.
REFRESH_MARGIN = timedelta(minutes=5)
MAX_TOKEN_LIFETIME_SECONDS = 24 * 3600  # Cognito's ID tokens last at most a day
# A stalled Cognito must not hold a command for minutes (botocore's defaults).
COGNITO_CONNECT_SECONDS, COGNITO_READ_SECONDS = 5, 10
SESSION_EXPIRED = "Your session has expired: run `bgagent login` to sign in again."
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def login(
    config: Config, directory: Path, username: str, password: str, *, now: Clock = _utc_now
) -> Credentials:
    """Sign in with a username and password; cache the tokens (mode 0600)."""
    if not username or not password:
        raise CliError("A username and a password are needed to sign in.")
    result = _initiate_auth(
        config, "USER_PASSWORD_AUTH", {"USERNAME": username, "PASSWORD": password}
    )
    challenge = result.get("ChallengeName")
    if challenge == "NEW_PASSWORD_REQUIRED":
        raise CliError(
            "Your account needs a new password before its first sign-in: set one with "
            "your administrator's sign-up page, then run `bgagent login` again."
        )
    if challenge:
        raise CliError(
            f"Cognito asks for a {printable(challenge)} step, which bgagent does not support."
        )
    credentials = _credentials_from(result, now(), refresh_token=None)
    save_credentials(directory, credentials)
    return credentials


def fresh_credentials(config: Config, directory: Path, *, now: Clock = _utc_now) -> Credentials:
    """The cached credentials, refreshed first if the ID token is (nearly) expired."""
    credentials = load_credentials(directory)
    expiry = _parse_time(credentials.token_expiry)
    current = now()
    if expiry is None or current < _refresh_time(expiry):
        return credentials
    if not credentials.refresh_token:
        raise CliError(SESSION_EXPIRED)
    try:
        result = _initiate_auth(
            config, "REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": credentials.refresh_token}
        )
    except CliError:
        raise CliError(SESSION_EXPIRED) from None
    refreshed = _credentials_from(result, current, refresh_token=credentials.refresh_token)
    with contextlib.suppress(CliError):  # unsaved (a read-only directory), still good now
        save_credentials(directory, refreshed)
    return refreshed


def _credentials_from(
    result: dict[str, Any], issued: datetime, *, refresh_token: str | None
) -> Credentials:
    """The tokens of a Cognito answer, checked before anything is cached."""
    auth = result.get("AuthenticationResult")
    auth = auth if isinstance(auth, dict) else {}
    id_token, new_refresh, lifetime = (
        auth.get("IdToken"),
        auth.get("RefreshToken"),
        auth.get("ExpiresIn", 3600),
    )
    if (
        not _is_token(id_token)
        or (new_refresh is not None and not _is_token(new_refresh))
        or type(lifetime) is not int  # not a bool either
        or not 0 < lifetime <= MAX_TOKEN_LIFETIME_SECONDS
    ):
        raise CliError("Cognito answered the sign-in in a form bgagent cannot use.")
    return Credentials(
        id_token=str(id_token),
        # A refresh answers without a new refresh token: keep the one we have.
        refresh_token=new_refresh or refresh_token or "",
        token_expiry=(issued + timedelta(seconds=lifetime)).isoformat(timespec="seconds"),
    )


def _is_token(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) < 16384
        and value.isascii()
        and (value.isprintable())
    )


AuthFlow = Literal["USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"]


def _initiate_auth(config: Config, flow: AuthFlow, parameters: dict[str, str]) -> dict[str, Any]:
    if not config.region or not config.client_id:
        raise CliError("The configuration has no region or client id: run `bgagent configure`.")
    # Imported here, not at the top: boto3 is slow to import, and most
    # commands (a download with a fresh token) never talk to Cognito.
    import boto3
    from botocore.config import Config as BotoConfig
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        # InitiateAuth is an unsigned call: no AWS credentials are needed on this machine.
        cognito = boto3.client(
            "cognito-idp",
            region_name=config.region,
            config=BotoConfig(
                retries={"max_attempts": 2},
                connect_timeout=COGNITO_CONNECT_SECONDS,
                read_timeout=COGNITO_READ_SECONDS,
            ),
        )
    except ValueError:  # botocore's InvalidRegionError
        raise CliError(
            f"The configured region '{printable(config.region)}' is not valid: "
            "run `bgagent configure`."
        ) from None
    try:
        return dict(
            cognito.initiate_auth(
                ClientId=config.client_id, AuthFlow=flow, AuthParameters=parameters
            )
        )
    except ClientError as err:
        raise CliError(_sign_in_failure(err)) from None
    except BotoCoreError as err:
        raise CliError(
            f"Could not reach Cognito in {printable(config.region)} ({type(err).__name__})."
        ) from None
    except Exception:  # an answer botocore cannot parse (not JSON, a list, ...)
        raise CliError("Cognito answered the sign-in in a form bgagent cannot use.") from None


def _sign_in_failure(err: Any) -> str:  # a botocore ClientError
    code = err.response.get("Error", {}).get("Code", "")
    if code in ("NotAuthorizedException", "UserNotFoundException"):
        return "Incorrect username or password."
    if code == "PasswordResetRequiredException":
        return "Your password must be reset before you can sign in."
    if code == "UserNotConfirmedException":
        return "Your account is not confirmed yet."
    if code == "ResourceNotFoundException":
        return "The configured app client does not exist: check `bgagent configure`."
    return f"Sign-in failed ({printable(code) or 'unknown error'})."


def _refresh_time(expiry: datetime) -> datetime:
    try:
        return expiry - REFRESH_MARGIN
    except OverflowError:  # an expiry near year 1: long past
        return datetime.min.replace(tzinfo=UTC)


def _parse_time(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
