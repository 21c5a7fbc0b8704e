import io
import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bgagent.auth import SESSION_EXPIRED, fresh_credentials, login
from bgagent.config import Config, Credentials, load_credentials, save_config, save_credentials
from bgagent.errors import CliError
from bgagent.main import run

PASSWORD = "Correct-Horse-Battery-9"


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with mock_aws():
        cognito = boto3.client("cognito-idp", region_name="eu-west-1")
        pool_id = cognito.create_user_pool(PoolName="users")["UserPool"]["Id"]
        client_id = cognito.create_user_pool_client(
            UserPoolId=pool_id, ClientName="cli", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
        )["UserPoolClient"]["ClientId"]
        cognito.admin_create_user(UserPoolId=pool_id, Username="alice")
        cognito.admin_set_user_password(
            UserPoolId=pool_id, Username="alice", Password=PASSWORD, Permanent=True
        )
        config = Config("https://api.example.test/prod", "eu-west-1", pool_id, client_id)
        directory = tmp_path / "cfg"
        save_config(directory, config)
        yield {"cognito": cognito, "config": config, "dir": directory, "pool_id": pool_id}


def test_login_caches_tokens_readable_by_the_user_only(pool: dict) -> None:
    stderr = io.StringIO()
    code = run(
        ["login", "--username", "alice", "--password-stdin"],
        stdin=io.StringIO(PASSWORD + "\n"),
        stderr=stderr,
        environ={"BGAGENT_CONFIG_DIR": str(pool["dir"])},
    )
    assert (code, stderr.getvalue()) == (0, "Signed in as alice.\n")
    path = pool["dir"] / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cached = json.loads(path.read_text())
    assert cached["id_token"].count(".") == 2
    assert cached["refresh_token"]
    assert datetime.fromisoformat(cached["token_expiry"]) > datetime.now(UTC)


def test_a_wrong_password_is_one_clear_line(pool: dict) -> None:
    stderr = io.StringIO()
    code = run(
        ["login", "--username", "alice", "--password-stdin"],
        stdin=io.StringIO("wrong\n"),
        stderr=stderr,
        environ={"BGAGENT_CONFIG_DIR": str(pool["dir"])},
    )
    assert (code, stderr.getvalue()) == (1, "bgagent: Incorrect username or password.\n")
    assert not (pool["dir"] / "credentials.json").exists()


def test_a_required_new_password_is_explained(pool: dict) -> None:
    pool["cognito"].admin_create_user(
        UserPoolId=pool["pool_id"], Username="newbie", TemporaryPassword="Temp-Password-1"
    )
    with pytest.raises(CliError, match="needs a new password"):
        login(pool["config"], pool["dir"], "newbie", "Temp-Password-1")


def test_an_unknown_user_gets_the_same_message_as_a_wrong_password(pool: dict) -> None:
    with pytest.raises(CliError, match=r"^Incorrect username or password\.$"):
        login(pool["config"], pool["dir"], "mallory", PASSWORD)


def test_an_expiring_token_is_refreshed_before_use(pool: dict) -> None:
    first = login(pool["config"], pool["dir"], "alice", PASSWORD)
    later = datetime.now(UTC) + timedelta(minutes=58)  # inside the refresh margin

    refreshed = fresh_credentials(pool["config"], pool["dir"], now=lambda: later)

    assert refreshed.refresh_token == first.refresh_token
    assert datetime.fromisoformat(refreshed.token_expiry) > later + timedelta(minutes=30)
    assert load_credentials(pool["dir"]) == refreshed


def test_a_valid_token_is_used_as_is(pool: dict) -> None:
    first = login(pool["config"], pool["dir"], "alice", PASSWORD)
    assert fresh_credentials(pool["config"], pool["dir"]) == first


def test_an_expired_session_without_refresh_asks_to_sign_in_again(pool: dict) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    save_credentials(pool["dir"], Credentials("old.id.token", "", past))
    with pytest.raises(CliError, match="run `bgagent login`"):
        fresh_credentials(pool["config"], pool["dir"])


def test_a_rejected_refresh_asks_to_sign_in_again(pool: dict) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    save_credentials(pool["dir"], Credentials("old.id.token", "revoked-refresh-token", past))
    with pytest.raises(CliError) as raised:
        fresh_credentials(pool["config"], pool["dir"])
    assert str(raised.value) == SESSION_EXPIRED


def test_login_without_configuration_points_to_configure(tmp_path: Path) -> None:
    stderr = io.StringIO()
    code = run(
        ["login", "--username", "alice", "--password-stdin"],
        stdin=io.StringIO(PASSWORD),
        stderr=stderr,
        environ={"BGAGENT_CONFIG_DIR": str(tmp_path / "nothing")},
    )
    assert code == 1
    assert "bgagent configure" in stderr.getvalue()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("NotAuthorizedException", "Incorrect username or password."),
        ("UserNotFoundException", "Incorrect username or password."),
        ("PasswordResetRequiredException", "Your password must be reset before you can sign in."),
        ("UserNotConfirmedException", "Your account is not confirmed yet."),
        (
            "ResourceNotFoundException",
            "The configured app client does not exist: check `bgagent configure`.",
        ),
        ("TooManyRequestsException", "Sign-in failed (TooManyRequestsException)."),
        ("UsernameExistsException", "Sign-in failed (UsernameExistsException)."),
    ],
)
def test_each_refused_sign_in_says_why_in_one_line(
    sign_in, config_dir: Path, cognito: dict, code: str, message: str
) -> None:
    cognito["status"] = 400
    cognito["body"] = json.dumps({"__type": code, "message": "from Cognito"}).encode()
    assert sign_in() == (1, f"bgagent: {message}\n")


@pytest.mark.parametrize(("body", "reason"), [(b"{}", "400"), (b'{"__type": ""}', "unknown error")])
def test_a_sign_in_refused_without_an_error_name_says_what_it_can(
    sign_in, config_dir: Path, cognito: dict, body: bytes, reason: str
) -> None:
    cognito["status"] = 400
    cognito["body"] = body
    assert sign_in() == (1, f"bgagent: Sign-in failed ({reason}).\n")


@pytest.mark.parametrize("challenge", ["SOFTWARE_TOKEN_MFA", "SMS_MFA", "CUSTOM_CHALLENGE"])
def test_a_sign_in_step_bgagent_cannot_take_is_named(
    sign_in, config_dir: Path, cognito: dict, challenge: str
) -> None:
    cognito["body"] = json.dumps({"ChallengeName": challenge, "Session": "s"}).encode()
    assert sign_in() == (
        1,
        f"bgagent: Cognito asks for a {challenge} step, which bgagent does not support.\n",
    )


def test_a_required_new_password_is_one_line_with_what_to_do(
    sign_in, config_dir: Path, cognito: dict
) -> None:
    cognito["body"] = b'{"ChallengeName": "NEW_PASSWORD_REQUIRED", "Session": "s"}'
    assert sign_in() == (
        1,
        "bgagent: Your account needs a new password before its first sign-in: set one with "
        "your administrator's sign-up page, then run `bgagent login` again.\n",
    )


def test_an_unreachable_cognito_is_one_line(
    sign_in, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", refused_url)
    assert sign_in() == (
        1,
        "bgagent: Could not reach Cognito in us-east-1 (EndpointConnectionError).\n",
    )


@pytest.mark.parametrize(("username", "password"), [("", "pw"), ("alice", "")])
def test_a_sign_in_needs_both_a_username_and_a_password(
    pool: dict, username: str, password: str
) -> None:
    with pytest.raises(CliError) as refused:
        login(pool["config"], pool["dir"], username, password)
    assert str(refused.value) == "A username and a password are needed to sign in."


def test_a_token_is_refreshed_from_five_minutes_before_it_expires(pool: dict) -> None:
    first = login(pool["config"], pool["dir"], "alice", PASSWORD)
    expiry = datetime.fromisoformat(first.token_expiry)
    margin = timedelta(minutes=5)

    just_before = expiry - margin - timedelta(seconds=1)
    assert fresh_credentials(pool["config"], pool["dir"], now=lambda: just_before) == first

    inside = expiry - margin + timedelta(seconds=1)
    refreshed = fresh_credentials(pool["config"], pool["dir"], now=lambda: inside)
    assert refreshed.token_expiry != first.token_expiry


def answer(id_token: object = "a.b.c", **fields: object) -> bytes:
    return json.dumps({"AuthenticationResult": {"IdToken": id_token, **fields}}).encode()


@pytest.mark.parametrize(
    "body",
    [
        answer(ExpiresIn=0),
        answer(ExpiresIn=24 * 3600 + 1),
        answer(ExpiresIn=True),
        answer(ExpiresIn=60.0),
        answer(""),
        answer("t" * 16384),
        answer("t" * 16385),
        answer(ExpiresIn=60, RefreshToken=7),
        answer(ExpiresIn=60, RefreshToken=""),
    ],
    ids=[
        "0s",
        "over-a-day",
        "bool",
        "float",
        "empty",
        "16384",
        "16385",
        "refresh-7",
        "refresh-empty",
    ],
)
def test_a_sign_in_answer_outside_cognitos_limits_is_refused(
    sign_in, config_dir: Path, cognito: dict, body: bytes
) -> None:
    cognito["body"] = body
    assert sign_in() == (
        1,
        "bgagent: Cognito answered the sign-in in a form bgagent cannot use.\n",
    )


@pytest.mark.parametrize(
    ("body", "lifetime"),
    [
        (answer(ExpiresIn=1), 1),
        (answer(ExpiresIn=24 * 3600), 24 * 3600),
        (answer(), 3600),  # no lifetime given: Cognito's default hour
        (answer("t" * 16383, ExpiresIn=60), 60),
        (answer("t", ExpiresIn=60), 60),
    ],
    ids=["1s", "a-day", "default", "16383", "1"],
)
def test_a_sign_in_answer_within_cognitos_limits_is_cached(
    sign_in, config_dir: Path, cognito: dict, body: bytes, lifetime: int
) -> None:
    cognito["body"] = body
    before = datetime.now(UTC).replace(microsecond=0)
    assert sign_in() == (0, "Signed in as alice.\n")
    expiry = datetime.fromisoformat(load_credentials(config_dir).token_expiry)
    after = datetime.now(UTC)
    assert before + timedelta(seconds=lifetime) <= expiry <= after + timedelta(seconds=lifetime)


def test_a_token_is_refreshed_at_exactly_five_minutes_before_it_expires(pool: dict) -> None:
    first = login(pool["config"], pool["dir"], "alice", PASSWORD)
    at_the_margin = datetime.fromisoformat(first.token_expiry) - timedelta(minutes=5)
    refreshed = fresh_credentials(pool["config"], pool["dir"], now=lambda: at_the_margin)
    assert refreshed.token_expiry != first.token_expiry


def test_cognito_is_given_five_seconds_to_connect_and_ten_to_answer(
    pool: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Any] = []
    real = boto3.client

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs["config"])
        return real(*args, **kwargs)

    monkeypatch.setattr(boto3, "client", recording)
    login(pool["config"], pool["dir"], "alice", PASSWORD)
    [config] = made
    assert (config.connect_timeout, config.read_timeout) == (5, 10)
    assert config.retries["total_max_attempts"] == 3  # the first try and 2 retries


@pytest.mark.parametrize(("region", "client_id"), [("eu-west-1", ""), ("", "client")])
def test_a_configuration_without_region_or_client_points_to_configure(
    tmp_path: Path, region: str, client_id: str
) -> None:
    config = Config("https://api.example.test/prod", region, "pool", client_id)
    with pytest.raises(CliError) as refused:
        login(config, tmp_path, "alice", PASSWORD)
    assert str(refused.value) == (
        "The configuration has no region or client id: run `bgagent configure`."
    )


def test_a_cached_expiry_without_a_time_zone_is_read_as_utc(pool: dict) -> None:
    first = login(pool["config"], pool["dir"], "alice", PASSWORD)
    naive = datetime.fromisoformat(first.token_expiry).replace(tzinfo=None).isoformat()
    save_credentials(pool["dir"], Credentials(first.id_token, first.refresh_token, naive))
    just_before_the_margin = datetime.fromisoformat(first.token_expiry) - timedelta(minutes=6)
    kept = fresh_credentials(pool["config"], pool["dir"], now=lambda: just_before_the_margin)
    assert kept.token_expiry == naive  # still fresh: read as UTC, not refreshed


@pytest.mark.parametrize("expiry", ["", "soon", "2099-13-01T00:00:00+00:00"])
def test_a_cached_expiry_that_is_no_time_leaves_the_token_as_it_is(
    tmp_path: Path, expiry: str
) -> None:
    """Nothing to refresh by: the token goes to the API, which says if it is stale."""
    cached = Credentials("cached.id.token", "refresh", expiry)
    save_credentials(tmp_path, cached)
    no_cognito = Config("https://api.example.test/prod", "", "pool", "")  # never asked
    assert fresh_credentials(no_cognito, tmp_path) == cached
