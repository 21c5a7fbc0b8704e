"""TRACE_SUITE_CLI: the scenarios run another bgagent-compatible command line, as a
process of its own, for every sign-in, download and interruption."""

from __future__ import annotations

from pathlib import Path

from tests.harness.suite_runs import another_cli, run_acceptance_suite


def test_the_scenarios_run_the_named_command_for_every_cli_run(tmp_path: Path) -> None:
    calls = tmp_path / "calls.txt"
    logged = another_cli(  # this project's bgagent, each call noted
        tmp_path,
        "logged_bgagent",
        "import os, sys\n"
        f"with open({str(calls)!r}, 'a') as log:\n"
        "    log.write(' '.join(sys.argv[1:3]) + '\\n')\n"
        "os.execv(BGAGENT, [BGAGENT, *sys.argv[1:]])\n",
    )
    done = run_acceptance_suite(
        "features/test_trace_download.py",
        "features/test_trace_faults.py",
        "-k",
        "keeps_the_stored_artifact_byte_for_byte or ctrlc",
        env={"TRACE_SUITE_CLI": logged},
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 passed" in done.stdout
    # Alice and Bob configure and sign in through it; both scenarios download through it.
    assert sorted(calls.read_text().splitlines()) == sorted(
        ["configure --api-url", "login --username"] * 2 + ["trace download"] * 2
    )
