"""The TRACE_SUITE_* settings: what each names, and the one line a bad one stops with."""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit.conformance.phrasebook import DEFAULT_PHRASEBOOK
from testkit.settings import (
    CAPABILITIES,
    OWN_MOTO,
    NotOnThisTarget,
    Settings,
    SettingsError,
    names_a_deployed_stack,
    needs_local_stack,
)
from tests.harness.suite_runs import STACK_NOT_CREATED_HERE


def test_unset_the_suite_judges_this_project_in_its_own_moto() -> None:
    for blank in ({}, {name: " " for name in ("TRACE_SUITE_CLI", "TRACE_SUITE_HANDLER")}):
        settings = Settings.read(blank)
        assert settings == Settings()
        assert settings.target == OWN_MOTO
    assert Settings().phrasebook == DEFAULT_PHRASEBOOK


def test_each_setting_names_what_it_says(tmp_path: Path) -> None:
    settings = Settings.read(
        {
            "TRACE_SUITE_CLI": "node 'their cli/bgagent.js'",
            "TRACE_SUITE_HANDLER": " their.handler ",
            "TRACE_SUITE_PHRASEBOOK": str(tmp_path / "theirs.toml"),
            "TRACE_SUITE_AWS_ENDPOINT": "http://127.0.0.1:4566",
            "TRACE_SUITE_LEASE_SECONDS": " 2 ",
        }
    )
    assert settings.lease_seconds == 2
    assert settings.cli == ("node", "their cli/bgagent.js")
    assert settings.handler == "their.handler"
    assert settings.phrasebook == tmp_path / "theirs.toml"
    assert settings.emulator == "http://127.0.0.1:4566"
    assert settings.target.provides == frozenset({"needs_local_stack"})


def test_a_stack_the_suite_did_not_create_is_named_whole() -> None:
    deployed = Settings.read({**STACK_NOT_CREATED_HERE, "TRACE_SUITE_API_URL": "https://x/prod/"})
    assert deployed.deployed is not None
    assert (deployed.deployed.api_url, deployed.deployed.bucket) == ("https://x/prod", "bucket")
    assert deployed.target.provides == frozenset()


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        *(
            (
                {"TRACE_SUITE_LEASE_SECONDS": given},
                f"TRACE_SUITE_LEASE_SECONDS={given!r}: give a whole number of seconds, 2 to 604800",
            )
            for given in ("5m", "1", "604801", "٣٠٠")
        ),
        ({"TRACE_SUITE_CLI": "node 'unclosed"}, 'TRACE_SUITE_CLI="node \'unclosed": No closing'),
        (
            {"TRACE_SUITE_CLI": "no-such-bgagent trace"},
            "TRACE_SUITE_CLI='no-such-bgagent trace': 'no-such-bgagent' is no command",
        ),
        ({"TRACE_SUITE_CLI": "/tmp"}, "TRACE_SUITE_CLI='/tmp': '/tmp' is no command that can run"),
        (
            {"TRACE_SUITE_API_URL": "https://x/prod", "AWS_REGION": "eu-west-1"},
            "TRACE_SUITE_API_URL is set; also set TRACE_SUITE_USER_POOL_ID, "
            "TRACE_SUITE_CLIENT_ID, TRACE_ARTIFACTS_BUCKET_NAME, TASK_TABLE_NAME",
        ),
        (
            {**STACK_NOT_CREATED_HERE, "TRACE_SUITE_HANDLER": "their.handler"},
            "TRACE_SUITE_HANDLER needs the suite's own stack; TRACE_SUITE_API_URL points at "
            "one it did not create",
        ),
    ],
    ids=[
        "lease-not-a-number",
        "lease-too-short",
        "lease-too-long",
        "lease-not-ascii",
        "badly-quoted-cli",
        "cli-not-found",
        "cli-a-folder",
        "incomplete-stack",
        "handler-for-a-deployed-stack",
    ],
)
def test_a_setting_the_suite_cannot_use_is_one_line(environ: dict[str, str], said: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.read(environ)
    assert str(refused.value).startswith(said)
    assert "\n" not in str(refused.value)


def test_a_blank_api_url_names_no_deployed_stack_anywhere() -> None:
    """The credentials of the shell are kept for scenarios only when the settings too
    say the stack is not the suite's own."""
    for blank in ("", "  "):
        assert not names_a_deployed_stack({"TRACE_SUITE_API_URL": blank})
        assert Settings.read({"TRACE_SUITE_API_URL": blank}).deployed is None
    assert names_a_deployed_stack(STACK_NOT_CREATED_HERE)


def test_a_stack_the_suite_did_not_create_may_sit_behind_an_endpoint_of_its_own() -> None:
    local = Settings.read({**STACK_NOT_CREATED_HERE, "AWS_ENDPOINT_URL": "http://127.0.0.1:5"})
    assert local.deployed is not None
    assert local.deployed.aws_endpoint == "http://127.0.0.1:5"
    assert Settings.read(STACK_NOT_CREATED_HERE).deployed.aws_endpoint is None  # type: ignore[union-attr]


def test_a_scenario_is_skipped_for_the_first_tag_its_target_lacks() -> None:
    deployed = Settings.read(STACK_NOT_CREATED_HERE).target
    assert deployed.skip_reason(["integration", "regression"]) is None
    reason = deployed.skip_reason(["integration", "needs_moto", "needs_local_stack"])
    assert reason == f"{CAPABILITIES['needs_moto']}; {deployed.description}"
    assert OWN_MOTO.skip_reason(["needs_moto", "needs_local_stack"]) is None


def test_reaching_for_a_part_the_target_lacks_fails_the_scenario_naming_its_tag() -> None:
    said = "needs the S3 gate: tag it @needs_local_stack"
    with pytest.raises(pytest.fail.Exception, match=said), needs_local_stack():
        raise NotOnThisTarget("the S3 gate")
