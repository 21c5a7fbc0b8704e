"""The suite as a conformance kit: another phrasebook or handler, whole runs judged, and
the report of what differed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from testkit.conformance.judgement import names_from_its_test
from testkit.conformance.phrasebook import DEFAULT_PHRASEBOOK
from testkit.settings import ENV_PHRASEBOOK
from testkit.stack.local import WARM_UP_OWNER, WARM_UP_TASK
from tests.harness.suite_runs import (
    ROOT,
    STACK_NOT_CREATED_HERE,
    judged,
    judged_with_cli,
    run_acceptance_suite,
)
from trace_infra.definitions import GET_TRACE_URL

CHANGED = "The download was interrupted"


def test_a_phrasebook_that_words_one_message_otherwise_fails_exactly_its_scenarios(
    tmp_path: Path,
) -> None:
    """With this project's handler named as a foreign Python handler is named."""
    theirs = tmp_path / "theirs.toml"
    entry = re.compile(rf'^"{CHANGED}" = .*$', re.MULTILINE)
    default = DEFAULT_PHRASEBOOK.read_text(encoding="utf-8")
    assert len(entry.findall(default)) == 1
    theirs.write_text(entry.sub(f'"{CHANGED}" = "Error: connection lost"', default))
    report = tmp_path / "conformance.json"

    done = run_acceptance_suite(
        "features/",
        f"--conformance-report={report}",
        env={ENV_PHRASEBOOK: str(theirs), "TRACE_SUITE_HANDLER": GET_TRACE_URL.handler},
    )

    verdict = json.loads(report.read_text())
    # Every step that checks the message, as the feature files hold it: a quoted step,
    # or a row of an outline's examples.
    checking = sum(
        text.count(f'told "{CHANGED}"') + text.count(f"| {CHANGED} ")
        for text in (p.read_text() for p in (ROOT / "features").glob("*.feature"))
    )
    assert checking >= 3
    assert done.returncode == 1, done.stdout[-3000:]
    assert len(verdict["failed"]) == checking
    assert verdict["scenarios"]["ran"] - verdict["scenarios"]["passed"] == checking
    for failed in verdict["failed"]:
        assert failed["step"].endswith(f'is told "{CHANGED}"')
        assert failed["kind"] == "wording"
        assert failed["detail"].startswith(
            f'the wording of "{CHANGED}" differs: the phrasebook theirs.toml gives '
            "'Error: connection lost', the CLI said 'bgagent: The download was interrupted ("
        )
    assert sorted(failed["example"] for failed in verdict["failed"]) == sorted(
        [f"{fault} | {CHANGED}" for fault in ("a connection reset mid-body",) * 2]
        + [f"{fault} | {CHANGED}" for fault in ("a body shorter than its stated length",) * 2]
        + [""]  # the scenario that is no outline
    )
    assert verdict["missing_from_phrasebook"] == []
    assert verdict["implementations"]["phrasebook"] == str(theirs)
    assert verdict["implementations"]["handler"].startswith(f"{GET_TRACE_URL.handler} (Python")
    # The terminal says the same.
    summary = judged(done)
    assert f"phrasebook: {theirs}\n" in summary
    assert f"{verdict['scenarios']['ran']} scenarios ran:" in summary
    assert summary.count(f'wording: the wording of "{CHANGED}" differs') == checking


def test_a_missing_entry_fails_its_scenario_and_is_listed_also_from_parallel_workers(
    tmp_path: Path,
) -> None:
    theirs = tmp_path / "theirs.toml"
    theirs.write_text('[messages]\n"where the trace was written" = "Wrote {file}"\n')
    done = run_acceptance_suite(
        "features/test_trace_download.py",
        "-k",
        "byte_for_byte or another_user_is_refused",
        "-n",
        "2",
        env={ENV_PHRASEBOOK: str(theirs)},
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert "1 failed, 2 passed" in done.stdout
    summary = judged(done)
    assert "3 scenarios ran: 2 passed, 1 failed" in summary
    assert "Another user is refused and receives nothing" in summary
    assert "no phrasebook entry: the phrasebook" in summary
    assert (
        "The phrasebook has no entry for 1 message(s) the scenarios check:\n"
        '    "You do not have access to this task. (FORBIDDEN)"'
    ) in summary


def test_a_failure_after_the_steps_is_reported_with_its_reason(tmp_path: Path) -> None:
    """A CLI of another team's that shows the user's ID token: every step passes, and the
    check every scenario ends with fails."""
    summary = judged_with_cli(
        tmp_path,
        "leaky_bgagent",
        "import json, os, sys\n"
        "if sys.argv[1:3] == ['trace', 'download']:\n"
        "    folder = os.environ['BGAGENT_CONFIG_DIR']\n"
        "    with open(os.path.join(folder, 'credentials.json')) as saved:\n"
        "        print(json.load(saved)['id_token'], flush=True)\n"
        "os.execv(BGAGENT, [BGAGENT, *sys.argv[1:]])\n",
        "features/test_trace_download.py",
        "-k",
        "keeps_the_stored_artifact_byte_for_byte",
    )
    assert "1 scenarios ran: 0 passed, 1 failed" in summary
    assert (
        "✗ contract · Downloading the trace of a task: Saving the trace to a file keeps the stored "
        "artifact byte for byte\n    after its steps\n"
        "    behaviour: Alice's ID token was shown"
    ) in summary


def test_a_cli_that_shows_a_token_of_its_own_fails_whenever_it_shows_it(tmp_path: Path) -> None:
    """A token the suite cannot know (another CLI keeps its own), shown at sign-in or in
    a download, is still found: a JSON Web Token is never for the user's eyes."""
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0aGVpcnMifQ.c2lnbmF0dXJlLW9mLXRoZWlyLW93bg"
    summary = judged_with_cli(
        tmp_path,
        "token_showing_bgagent",
        "import os, sys\n"
        "if sys.argv[1:3] == ['trace', 'download']:\n"
        f"    print({token!r}, flush=True)\n"
        "os.execv(BGAGENT, [BGAGENT, *sys.argv[1:]])\n",
        "features/test_trace_download.py",
        "-k",
        "keeps_the_stored_artifact_byte_for_byte",
    )
    assert "behaviour: a token was shown (a JSON Web Token the suite did not know)" in summary
    at_sign_in = judged_with_cli(
        tmp_path,
        "token_showing_login",
        "import os, sys\n"
        "if sys.argv[1:2] == ['login']:\n"
        f"    print('signed in with', {token!r}, flush=True)\n"
        "os.execv(BGAGENT, [BGAGENT, *sys.argv[1:]])\n",
        "features/test_trace_download.py",
        "-k",
        "keeps_the_stored_artifact_byte_for_byte",
    )
    assert "the CLI's sign-in of Alice showed a token" in at_sign_in


def test_a_cli_that_says_more_than_one_line_or_a_stack_trace_differs_in_behaviour(
    tmp_path: Path,
) -> None:
    summary = judged_with_cli(  # a stack trace after each failure
        tmp_path,
        "chatty_bgagent",
        "import subprocess, sys\n"
        "done = subprocess.run([BGAGENT, *sys.argv[1:]])\n"
        "if done.returncode == 1:\n"
        "    print('Traceback (most recent call last):', file=sys.stderr)\n"
        "sys.exit(done.returncode)\n",
        "features/test_trace_download.py",
        "-k",
        "another_user_is_refused or without_trace_gets",
    )
    assert "2 scenarios ran: 0 passed, 2 failed" in summary
    assert summary.count("    behaviour: a stack trace on stderr: ") == 2


# A Node.js handler's answer to a stranger, as the contract has it.
REFUSAL = (
    "  const error = { code: 'FORBIDDEN', message: 'You do not have access to this task.',"
    " request_id: context.awsRequestId };\n"
    "  return { statusCode: 403, headers: { 'Content-Type': 'application/json' },"
    " body: JSON.stringify({ error }) };\n"
)


def test_a_scenario_runs_against_a_node_handler_through_the_bridge(tmp_path: Path) -> None:
    """A handler written for this test: it refuses every caller, as the contract says a
    stranger is refused, and notes each call."""
    calls = tmp_path / "calls.txt"
    handler = tmp_path / "refuse.mjs"
    handler.write_text(
        'import { appendFileSync } from "node:fs";\n'
        "export const handler = async (event, context) => {\n"
        f"  appendFileSync({json.dumps(str(calls))}, "
        "`${event.pathParameters.task_id} ${event.requestContext.authorizer.claims.sub}\\n`);\n"
        + REFUSAL
        + "};\n"
    )
    done = refusing_a_stranger_with(handler)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    # The stack's one warm-up request comes first: a task nobody owns, for nobody.
    warm_up, call = calls.read_text().splitlines()
    assert warm_up == f"{WARM_UP_TASK} {WARM_UP_OWNER}"
    task_id, caller = call.split(" ")
    assert task_id.startswith("task-")
    assert caller  # from the claims the gateway verified
    assert f"handler: {handler}:handler (Node.js v" in done.stdout


def refusing_a_stranger_with(handler: Path) -> subprocess.CompletedProcess[str]:
    """The scenario of a stranger refused, with a Node.js handler written for the test."""
    return run_acceptance_suite(
        "features/test_trace_download.py",
        "-k",
        "another_user_is_refused",
        env={"TRACE_SUITE_HANDLER": f"{handler}:handler"},
    )


def test_a_handler_that_refuses_for_the_wrong_reason_differs_in_behaviour(
    tmp_path: Path,
) -> None:
    """A stranger told the task is not found, where the contract says "no access": the
    CLI says another message the phrasebook knows, which is no matter of words."""
    handler = tmp_path / "not_found.cjs"
    handler.write_text(
        "exports.handler = async (event, context) => ({\n"
        "  statusCode: 404,\n"
        "  headers: { 'Content-Type': 'application/json' },\n"
        "  body: JSON.stringify({ error: { code: 'TASK_NOT_FOUND', request_id: 'r-1',\n"
        "    message: `Task ${event.pathParameters.task_id} not found.` } }),\n"
        "});\n"
    )
    done = refusing_a_stranger_with(handler)
    assert done.returncode == 1, done.stdout[-3000:]
    summary = judged(done)
    assert (
        '    behaviour: the CLI said "not found. (TASK_NOT_FOUND)" where '
        '"You do not have access to this task. (FORBIDDEN)" was expected: '
        "'bgagent: Task task-"
    ) in summary


def test_a_handler_that_cannot_load_stops_the_run_before_any_scenario(tmp_path: Path) -> None:
    handler = tmp_path / "no_export.mjs"
    handler.write_text("export const other = 1;\n")
    done = run_acceptance_suite(
        "features/test_trace_download.py", env={"TRACE_SUITE_HANDLER": f"{handler}:handler"}
    )
    assert done.returncode == 4, done.stdout[-3000:]
    assert "no tests ran" in done.stdout
    assert (
        "the trace API's handler cannot run: the function failed to start: "
        f"Error: {handler} exports no function named handler"
    ) in done.stdout


def test_an_unusable_phrasebook_or_handler_stops_the_run_before_it_starts(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[messages\n")
    for env, says in (
        ({ENV_PHRASEBOOK: str(broken)}, f"phrasebook {broken}:"),
        ({"TRACE_SUITE_HANDLER": "no_such_module_here.handle"}, "no module file"),
        (
            {"TRACE_SUITE_HANDLER": GET_TRACE_URL.handler, **STACK_NOT_CREATED_HERE},
            "needs the suite's own stack",
        ),
    ):
        done = run_acceptance_suite("features/test_trace_download.py", env=env)
        assert done.returncode == 4, done.stdout[-2000:] + done.stderr[-2000:]
        [line] = [line for line in done.stderr.splitlines() if line.startswith("ERROR:")]
        assert says in line
        assert "Traceback" not in done.stderr


def test_a_scenario_that_failed_before_it_began_is_named_from_its_test() -> None:
    def scenario_test() -> None:
        """/somewhere/features/trace_download.feature: A traced task: uploads, downloads"""

    item = SimpleNamespace(obj=scenario_test, name="test_a_traced_task")
    assert names_from_its_test(item) == (  # type: ignore[arg-type]
        "trace_download.feature",
        "A traced task: uploads, downloads",
    )
    bare = SimpleNamespace(obj=None, name="test_a_traced_task")
    assert names_from_its_test(bare) == ("", "test_a_traced_task")  # type: ignore[arg-type]


def test_a_run_of_scenarios_gets_its_verdict_whatever_its_mark_expression() -> None:
    done = run_acceptance_suite(
        "-m", "", "features/test_trace_download.py", "-k", "keeps_the_stored_artifact", env={}
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 scenarios ran: 1 passed, 0 failed" in judged(done)


def test_a_handler_that_logs_past_the_bound_in_a_scenario_fails_it_unchecked(
    tmp_path: Path,
) -> None:
    """What it logged can no longer all be checked for secrets: the scenario says so
    instead of passing unchecked."""
    handler = tmp_path / "flooding.mjs"
    handler.write_text(
        "export const handler = async (event, context) => {\n"
        '  for (let i = 0; i < 17; i++) process.stdout.write("x".repeat(1024 * 1024) + "\\n");\n'
        + REFUSAL
        + "};\n"
    )
    done = refusing_a_stranger_with(handler)
    assert done.returncode == 1, done.stdout[-3000:]
    assert (
        "    after its steps\n    behaviour: the function's log passed its bound in this "
        "scenario: it was not all checked"
    ) in judged(done)


IMPLEMENTATIONS = ROOT / "tests" / "harness" / "implementations"


def another_teams_profile(folder: Path) -> Path:
    """The checked-in profile of another team's three layers, copied with its paths made
    absolute and its CLI run by this Python."""
    text = (IMPLEMENTATIONS / "profile.toml").read_text(encoding="utf-8")
    replacements = {
        '"../../../.venv/bin/python"': json.dumps(sys.executable),
        **{
            f'"{relative}': f'"{IMPLEMENTATIONS / relative}'
            for relative in (
                "phrasebook.toml",
                "other_cli.py",
                "node_handler/handler.js",
                "node_handler/policy.json",
            )
        },
    }
    for written, absolute in replacements.items():
        assert written in text, f"profile.toml no longer names {written}"
        text = text.replace(written, absolute)
    copied = folder / "profile.toml"
    copied.write_text(text, encoding="utf-8")
    return copied


def test_another_teams_layers_fail_exactly_the_contract_they_break(tmp_path: Path) -> None:
    """Another team's CLI (sign-in by argument, files of its own, no deadline setting,
    exit 1 on Ctrl-C, a -o written in place), Node.js handler (unbundled, on the runtime's
    SDK, its role without s3:ListBucket, variables of its own) and agent (which stores a
    Content-Encoding), judged in one run with their profile."""
    report = tmp_path / "conformance.json"
    done = run_acceptance_suite(
        "features/",
        f"--conformance-report={report}",
        env={"TRACE_SUITE_PROFILE": str(another_teams_profile(tmp_path))},
    )
    assert done.returncode == 1, done.stdout[-3000:]
    verdict = json.loads(report.read_text())
    assert verdict["verdict"] == "does not conform"
    broken = {
        (d["scenario"], d["example"].partition(" | ")[0])
        for d in verdict["failed"]
        if d["contract"]
    }
    assert broken == {
        # The CLI: its -o is written in place, and emptied before the download.
        ("A broken download to a file leaves no file behind", "a connection reset mid-body"),
        (
            "A broken download to a file leaves no file behind",
            "a body shorter than its stated length",
        ),
        ("A broken download to a file leaves no file behind", "access denied"),
        ("A broken download to a file leaves no file behind", "a server error"),
        ("A broken download never replaces an earlier file, even with --force", ""),
        ("Interrupting a download with Ctrl-C leaves nothing behind", ""),
        # The handler: without s3:ListBucket, a trace that left storage is a 500; a task
        # id longer than DynamoDB's key limit too.
        (
            "The API refuses the download, and the user sees why",
            "the task's trace has since expired from storage",
        ),
        (
            "The API refuses the download, and the user sees why",
            "the task id is longer than any task's id can be",
        ),
        # The agent: a Content-Encoding on the stored trace.
        ("The stored trace carries no content encoding, so any HTTP client gets it as stored", ""),
    }
    [expired] = [d for d in verdict["failed"] if "expired from storage" in d["example"]]
    assert any(
        said.startswith("IAM: GetTraceUrl role is not allowed s3:ListBucket on arn:aws:s3:::")
        and said.endswith("so S3 answered 403, not 404, to its HEAD of a missing key")
        for said in expired["said"]
    ), expired["said"]
    for failed in verdict["failed"]:
        if failed["scenario"] == "A broken download to a file leaves no file behind":
            assert failed["step"] == "And nothing was downloaded" or not failed["contract"]
    # What the CLI and the agent do not offer is not applicable, never failed.
    reasons = {item["reason"] for item in verdict["not_applicable"]}
    assert reasons == {
        "the CLI has no setting for how long its downloads may take",
        "it judges this project's agent or its role; the agent judged is another",
    }
    # Every other scenario of the contract passes; its extras (a checksum, a blank-id
    # check) fail as extras.
    nothing_else = {"set_up_failed": 0, "not_finished": 0}
    assert verdict["contract"] == {"passed": 35, "failed": 9, "not_applicable": 12, **nothing_else}
    assert verdict["extras"] == {"passed": 2, "failed": 5, "not_applicable": 5, **nothing_else}
    assert {d["scenario"] for d in verdict["failed"] if not d["contract"]} == {
        "A broken download to a file leaves no file behind",  # its checksum and busy rows
        "The CLI refuses a blank task id itself",
        "A trace storage too busy for a moment is asked again, and the trace saves intact",
    }
    summary = judged(done)
    assert "The round trip's contract: does not conform (9 of 44 scenarios failed" in summary
    assert "The CLI refuses a blank task id itself" in summary
