"""A profile of another implementation: what each key says, and the one line a profile
the suite cannot use stops the run with."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from testkit.aws.auth import ResourceArns, Statement
from testkit.conformance.profile import (
    CONFIGURE,
    DOWNLOAD_DEADLINE,
    SIGN_IN,
    CliProfile,
    PolicyStatement,
    Profile,
    ProfileError,
)
from testkit.settings import Settings, SettingsError
from tests.harness.suite_runs import STACK_NOT_CREATED_HERE, run_acceptance_suite

POLICY = """{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::${TraceBucket}/traces/*"},
  {"Sid": "Tasks", "Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:Query"],
   "Resource": ["arn:aws:dynamodb:${Region}:${Account}:table/${TaskTable}"]}]}"""


def written(folder: Path, text: str, name: str = "profile.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profile_names_each_layer_relative_to_itself(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "cli.js").write_text("")
    written(tmp_path, POLICY, "policy.json")
    profile = Profile.load(
        written(
            tmp_path,
            f"""
phrasebook = "words.toml"
[cli]
command = ["{sys.executable}", "bin/cli.js", "--quiet"]
sign_in = ["signin", "-u", "{{username}}", "-p", "{{password}}"]
home = "THEIR_HOME"
interrupted_status = 1
[handler]
code = "bin/cli.js:handler"
policy = "policy.json"
environment = {{ TABLE = "task table", BUCKET = "trace bucket" }}
log_reason = "error"
[agent]
dump = "their.agent:Accumulator.dump"
upload = "their.agent:upload"
""",
        )
    )
    assert profile.cli_command == (sys.executable, str(tmp_path / "bin/cli.js"), "--quiet")
    assert profile.cli == CliProfile(
        configure=CONFIGURE,
        sign_in=("signin", "-u", "{username}", "-p", "{password}"),
        home="THEIR_HOME",
        download_deadline=None,
        interrupted_status=1,
        keeps_our_files=False,
    )
    assert not profile.cli.password_on_stdin
    assert profile.phrasebook == tmp_path / "words.toml"
    assert profile.handler.code == f"{tmp_path / 'bin/cli.js'}:handler"
    assert profile.handler.environment == {"TABLE": "task table", "BUCKET": "trace bucket"}
    assert profile.handler.log_reason == "error"
    assert profile.handler.policy == (
        PolicyStatement(("s3:GetObject",), ("arn:aws:s3:::${TraceBucket}/traces/*",)),
        PolicyStatement(
            ("dynamodb:GetItem", "dynamodb:Query"),
            ("arn:aws:dynamodb:${Region}:${Account}:table/${TaskTable}",),
        ),
    )
    assert profile.agent is not None
    assert (profile.agent.dump, profile.agent.finish) == ("their.agent:Accumulator.dump", "")


def test_a_command_is_read_as_a_shell_beside_the_profile_reads_it(tmp_path: Path) -> None:
    (tmp_path / "othercli").mkdir()  # a folder: a module's name, not a file
    (tmp_path / "tool").write_text("")
    profile = written(tmp_path, '[cli]\ncommand = ["python3", "-m", "othercli", "tool"]\n')
    assert Profile.load(profile).cli_command == ("python3", "-m", "othercli", f"{tmp_path}/tool")
    on_path = written(tmp_path, '[cli]\ncommand = ["tool", "x"]\n')
    assert Profile.load(on_path).cli_command == ("tool", "x")  # found on PATH, as a shell does
    by_path = written(tmp_path, '[cli]\ncommand = ["./bin/cli", "x"]\n')
    assert Profile.load(by_path).cli_command == (f"{tmp_path}/bin/cli", "x")


def test_without_a_cli_section_the_cli_is_this_projects(tmp_path: Path) -> None:
    profile = Profile.load(written(tmp_path, '[handler]\ncode = "their.handler"\n'))
    assert profile.cli_command is None
    assert profile.cli == CliProfile()
    assert (profile.cli.sign_in, profile.cli.download_deadline) == (SIGN_IN, DOWNLOAD_DEADLINE)
    assert profile.cli.password_on_stdin
    assert profile.cli.keeps_our_files
    assert profile.handler.code == "their.handler"  # a Python handler, by module path


def test_a_policys_placeholders_become_the_sessions_own_names() -> None:
    arns = ResourceArns("b", "t", "eu-west-1")
    statement = PolicyStatement(("s3:GetObject",), ("arn:aws:s3:::${TraceBucket}/traces/*",))
    assert Statement(statement.actions, tuple(map(arns.substitute, statement.resources))).allows(
        "s3:GetObject", "arn:aws:s3:::b/traces/u/t.jsonl.gz"
    )
    assert (
        arns.substitute("arn:aws:dynamodb:${Region}:${Account}:table/${TaskTable}")
        == "arn:aws:dynamodb:eu-west-1:123456789012:table/t"
    )


def test_iam_reads_action_names_without_regard_to_case_and_resources_with_it() -> None:
    statement = Statement(("S3:getobject",), ("arn:aws:s3:::b/traces/*",))
    assert statement.allows("s3:GetObject", "arn:aws:s3:::b/traces/x")
    assert not statement.allows("s3:GetObject", "arn:aws:s3:::B/traces/x")
    assert not statement.allows("s3:GetObjectAcl", "arn:aws:s3:::b/traces/x")


def test_the_settings_take_the_profiles_layers(tmp_path: Path) -> None:
    profile = written(tmp_path, f'phrasebook = "w.toml"\n[cli]\ncommand = ["{sys.executable}"]\n')
    settings = Settings.read({"TRACE_SUITE_PROFILE": str(profile)})
    assert settings.cli == (sys.executable,)
    assert settings.phrasebook == tmp_path / "w.toml"
    assert settings.profile == profile
    assert settings.lacks(["needs_download_deadline"]) == (
        "the CLI has no setting for how long its downloads may take"
    )
    assert settings.lacks(["needs_our_agent", "cli"]) is None
    agent = written(tmp_path, '[agent]\ndump = "a:b"\nupload = "a:c"\n', "agent.toml")
    assert Settings.read({"TRACE_SUITE_PROFILE": str(agent)}).lacks(["needs_our_agent"]) == (
        "it judges this project's agent or its role; the agent judged is another"
    )
    assert Settings().lacks(["needs_download_deadline", "needs_our_agent"]) is None


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("[cli\n", "Expected ']'"),
        ("cli = 3\n", "cli: must be a table"),
        ("[client]\n", "client: unknown; known are agent, cli, handler, phrasebook"),
        ("[server]\n[client]\n", "client: unknown; known are"),  # the first, in order
        ("[cli]\nsign_in = ['x']\n", "cli.command: must be a list of words"),
        ('[cli]\ncommand = "bgagent"\n', "cli.command: must be a list of words"),
        (f'[cli]\ncommand = ["{sys.executable}", 1]\n', "cli.command: must be a list of words"),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nsign_in = ["login"]\n',
            "cli.sign_in: must name the {username}",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\ninterrupted_status = 300\n',
            "cli.interrupted_status: must be an exit status, not 300",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\ninterrupted_status = 256\n',
            "cli.interrupted_status: must be an exit status, not 256",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\ninterrupted_status = -1\n',
            "cli.interrupted_status: must be an exit status, not -1",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\ninterrupted_status = true\n',
            "cli.interrupted_status: must be an exit status, not True",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\npassword = "x"\n',
            "[cli] password: unknown",
        ),
        ("[handler]\nenvironment = { T = 'the table' }\n", "handler.environment: must map"),
        (
            "[handler]\nenvironment = { 'A=B' = 'task table' }\n",
            "handler.environment: 'A=B' is no environment variable's name",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nsign_in = ["{{username}}", "{{pasword}}"]\n',
            "cli.sign_in: '{pasword}': KeyError('pasword'); a word may name api_url, region",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nconfigure = ["{{0}}"]\n',
            "cli.configure: '{0}': ValueError('Format string contains positional fields')",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nconfigure = ["{{"]\n',
            "cli.configure: '{': ValueError(",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nhome = "A=B"\n',
            "cli.home: 'A=B' is no environment variable's name",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\ndownload_deadline = "1X"\n',
            "cli.download_deadline: '1X' is no environment variable's name",
        ),
        (
            f'[cli]\ncommand = ["{sys.executable}"]\nstderr_noise = "(unclosed"\n',
            "cli.stderr_noise: missing )",
        ),
        ("[handler]\nlog_reason = 1\n", "log_reason: must be text, not 1"),
        ('[handler]\npolicy = "absent.json"\n', "handler.policy: "),
        ('[handler]\ncode = "dist/absent.js:handler"\n', "handler.code: no file /"),
        ('[agent]\ndump = "a.b"\nupload = "a:b"\n', "agent.dump: must name a callable"),
        ('[agent]\ndump = "a:b"\n', "agent.upload: must name a callable"),
        ('[agent]\nupload = "a:b"\n', "agent.dump: must name a callable"),
        ('[agent]\ndump = ":b"\nupload = "a:b"\n', "agent.dump: must name a callable"),
        ('phrasebook = ["a"]\n', "phrasebook: must be text"),
    ],
)
def test_a_profile_the_suite_cannot_use_is_one_line(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(ProfileError) as stopped:
        Profile.load(written(tmp_path, text))
    line = str(stopped.value)
    assert said in line
    assert "\n" not in line
    assert line.startswith(f"profile {tmp_path / 'profile.toml'}: ")


@pytest.mark.parametrize("status", [0, 255])
def test_a_clis_status_after_ctrl_c_may_be_any_exit_status(tmp_path: Path, status: int) -> None:
    profile = written(
        tmp_path, f'[cli]\ncommand = ["{sys.executable}"]\ninterrupted_status = {status}\n'
    )
    assert Profile.load(profile).cli.interrupted_status == status


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        ("[", "policy.json: Expecting value"),
        ('{"Statement": []}', "no Statement list"),
        ('{"Statement": ["x"]}', "statement 1: not an object"),
        (
            '{"Statement": {"Effect": "Deny", "Action": "s3:*", "Resource": "*"}}',
            "statement 1: Effect 'Deny' is beyond what the local stack enforces",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}]}',
            "statement 1: NotAction is beyond what the local stack enforces",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",'
            ' "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}',
            "statement 1: Condition is beyond what the local stack enforces",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "NotAction": "s3:*", "NotResource": "*",'
            ' "Condition": {}}]}',
            "statement 1: Condition is beyond",  # the first, in order
        ),
        (
            '{"Statement": [{"Action": "s3:*", "Resource": "*"}]}',
            "statement 1: Effect None is beyond what the local stack enforces",
        ),
        ('{"Statement": [{"Effect": "Allow", "Action": [], "Resource": "*"}]}', ": Action"),
        (
            '{"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", 1], "Resource": "*"}]}',
            ": Action",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",'
            ' "Resource": "arn:aws:s3:::${TracesBucket}/*"}]}',
            "statement 1: ${TracesBucket} is no placeholder the kit fills in",
        ),
        (
            '{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject",'
            ' "Resource": "arn:aws:s3:::${Zone}/${TracesBucket}/*"}]}',
            "statement 1: ${TracesBucket} is no placeholder",  # the first, in order
        ),
        ('{"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}', ": Resource"),
    ],
)
def test_a_policy_the_local_stack_cannot_enforce_is_refused(
    tmp_path: Path, policy: str, said: str
) -> None:
    written(tmp_path, policy, "policy.json")
    with pytest.raises(ProfileError, match=r"handler\.policy: ") as stopped:
        Profile.load(written(tmp_path, '[handler]\npolicy = "policy.json"\n'))
    assert said in str(stopped.value)


def test_a_profile_that_is_no_regular_file_is_refused_without_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match="is no regular file"):
        Profile.load(fifo)  # a FIFO nobody writes: opening it to read would wait for ever
    with pytest.raises(ProfileError, match="is no regular file"):
        Profile.load(tmp_path)


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"TRACE_SUITE_PROFILE": "absent.toml"}, "TRACE_SUITE_PROFILE: profile "),
        ({"TRACE_SUITE_CLI": "bgagent"}, "TRACE_SUITE_CLI and the profile"),
        ({"TRACE_SUITE_HANDLER": "x.y"}, "TRACE_SUITE_HANDLER and the profile"),
        ({"TRACE_SUITE_PHRASEBOOK": "p.toml"}, "TRACE_SUITE_PHRASEBOOK and the profile"),
        (STACK_NOT_CREATED_HERE, "TRACE_SUITE_PROFILE's [handler] needs the suite's own stack"),
    ],
)
def test_a_layer_named_twice_or_a_profile_not_found_stops_the_run(
    tmp_path: Path, environ: dict[str, str], said: str
) -> None:
    profile = written(
        tmp_path,
        f'phrasebook = "w.toml"\n[cli]\ncommand = ["{sys.executable}"]\n'
        '[handler]\ncode = "their.handler"\n',
    )
    with pytest.raises(SettingsError, match=said.replace("[", r"\[")):
        Settings.read({"TRACE_SUITE_PROFILE": str(profile), **environ})


def test_a_cli_the_profile_names_that_cannot_run_is_one_line(tmp_path: Path) -> None:
    profile = written(tmp_path, '[cli]\ncommand = ["no-such-cli", "x"]\n')
    with pytest.raises(SettingsError, match=f"^{profile}: 'no-such-cli' is no command"):
        Settings.read({"TRACE_SUITE_PROFILE": str(profile)})


def test_an_unusable_profile_stops_the_scenarios_before_they_start(tmp_path: Path) -> None:
    done = run_acceptance_suite(
        "features/",
        env={"TRACE_SUITE_PROFILE": str(written(tmp_path, "[cli]\ncommand = 1\n"))},
        timeout=60,
    )
    assert done.returncode == 4, done.stdout[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert errors == [
        f"ERROR: TRACE_SUITE_PROFILE: profile {tmp_path / 'profile.toml'}: cli.command: "
        "must be a list of words, the command first"
    ]
