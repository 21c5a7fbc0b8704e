"""TRACE_SUITE_CLI: the scenarios run another bgagent-compatible command line, as a
process of its own, for every sign-in, download and interruption."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from testkit.conformance import cli
from testkit.scene import CliRun, Person
from testkit.stack.users import User
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


@pytest.mark.parametrize("own_session", [False, True], ids=["in-its-group", "in-a-session"])
def test_a_cli_that_leaves_a_helper_holding_its_output_is_ended_in_bounded_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_session: bool
) -> None:
    """The helper is ended with it (its process group); one it moved out of the group
    cannot hold the run up beyond the second bound either."""
    monkeypatch.setattr(cli, "_RUN_SECONDS", 1)
    helper = tmp_path / "helper.pid"
    script = tmp_path / "leaves_a_helper.py"
    script.write_text(
        "import subprocess, sys\n"
        f"kept = subprocess.Popen(['sleep', '60'], start_new_session={own_session})\n"
        f"open({str(helper)!r}, 'w').write(str(kept.pid))\n"
        "print('done', flush=True)\n"
    )
    person = Person("Alice", User("alice", "password", "sub"), tmp_path / "home")
    ran: list[CliRun] = []
    runner = threading.Thread(
        target=lambda: ran.append(cli.run_command([sys.executable, str(script)], person, [])),
        daemon=True,  # a regression fails the test below, and holds nothing up
    )
    runner.start()
    runner.join(timeout=20)
    assert ran, "the run did not end"
    assert ran[0].exit_code == 0
    assert ran[0].stderr.endswith("(the run was ended after 1 s)")
    if own_session:
        os.kill(int(helper.read_text()), signal.SIGKILL)  # the harness cannot reach it
    else:
        assert ran[0].stdout == b"done\n"
        assert ended(int(helper.read_text()))


def ended(pid: int) -> bool:
    """Whether the process is gone or a zombie (its parent gone, nobody may reap it yet),
    polled for at most 5 s."""
    for _ in range(500):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False
