"""TRACE_SUITE_CLI: the scenarios run another bgagent-compatible command line, as a
process of its own, for every sign-in, download and interruption."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from testkit import process_tree
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


def run_script(tmp_path: Path, source: str) -> CliRun:
    """A CLI written for the test, run as the scenarios run another CLI; in a thread, so
    that a regression fails the test instead of hanging it."""
    script = tmp_path / "their_cli.py"
    script.write_text(source)
    person = Person("Alice", User("alice", "password", "sub"), tmp_path / "home")
    ran: list[CliRun] = []
    runner = threading.Thread(
        target=lambda: ran.append(cli.run_command([sys.executable, str(script)], person, [])),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=20)
    assert ran, "the run did not end"
    return ran[0]


@pytest.mark.parametrize("own_session", [False, True], ids=["in-its-group", "in-a-session"])
def test_what_a_cli_said_is_kept_when_a_helper_it_left_holds_its_output(
    tmp_path: Path, own_session: bool
) -> None:
    """The helper is ended with it, also one it moved out of its process group into a
    session of its own; what it said is kept, and the held pipe said."""
    helper = tmp_path / "helper.pid"
    ran = run_script(
        tmp_path,
        "import subprocess\n"
        f"kept = subprocess.Popen(['sleep', '60'], start_new_session={own_session})\n"
        f"open({str(helper)!r}, 'w').write(str(kept.pid))\n"
        "print('done', flush=True)\n",
    )
    assert (ran.exit_code, ran.stdout) == (0, b"done\n")
    assert ran.stderr.endswith("(its output was held open by a process it left)")
    assert ended(int(helper.read_text()))


def test_a_helper_that_lets_go_of_the_output_still_ends_with_the_run(tmp_path: Path) -> None:
    """A daemon it started, in a session of its own and with its output closed, does not
    outlive the run."""
    helper = tmp_path / "helper.pid"
    ran = run_script(
        tmp_path,
        "import subprocess\n"
        "kept = subprocess.Popen(['sleep', '60'], start_new_session=True,\n"
        "    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        f"open({str(helper)!r}, 'w').write(str(kept.pid))\n",
    )
    assert (ran.exit_code, ran.stderr) == (0, "")
    assert ended(int(helper.read_text()))


def test_what_a_cli_prints_is_kept_within_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "OUTPUT_LIMITS", (1000, 100))
    ran = run_script(
        tmp_path,
        "import sys\n"
        "for _ in range(2000):\n"
        "    sys.stdout.write('x' * 1000)\n"
        "    sys.stderr.write('e' * 1000)\n",
    )
    assert (ran.exit_code, ran.stdout) == (0, b"x" * 1000)
    assert ran.stderr.startswith("e" * 100 + "\n(its output passed its bound")
    assert ran.stderr.count("passed its bound") == 2


def test_what_is_given_on_stdin_reaches_it_whole_or_as_far_as_it_reads(tmp_path: Path) -> None:
    person = Person("Alice", User("alice", "password", "sub"), tmp_path / "home")
    given = "y" * 300_000  # more than a pipe holds
    whole = cli.run_command(
        [sys.executable, "-c", "import sys; print(len(sys.stdin.read()))"], person, [], stdin=given
    )
    assert whole.stdout == b"300000\n"
    closed = cli.run_command(
        [sys.executable, "-c", "import os; os.close(0); print('ok')"], person, [], stdin=given
    )
    assert (closed.exit_code, closed.stdout) == (0, b"ok\n")


def test_a_cli_that_does_not_end_is_ended_with_its_group_and_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "_RUN_SECONDS", 1)
    ran = run_script(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(60)\n")
    assert (ran.exit_code, ran.stdout) == (128 + signal.SIGKILL, b"started\n")
    assert ran.stderr.endswith("(the run was ended after 1 s)")


def test_a_cli_ended_by_a_signal_has_the_status_a_shell_reports(tmp_path: Path) -> None:
    ran = run_script(
        tmp_path,
        "import os, signal\n"
        "signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
        "os.kill(os.getpid(), signal.SIGINT)\n",
    )
    assert ran.exit_code == 130


def test_a_suite_stopped_mid_run_ends_the_cli_and_all_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = tmp_path / "started.pid"
    script = tmp_path / "their_cli.py"
    script.write_text(
        "import os, subprocess\n"
        "kept = subprocess.Popen(['sleep', '60'])\n"
        f"open({str(started)!r}, 'w').write(f'{{os.getpid()}} {{kept.pid}}')\n"
        "kept.wait()\n"
    )

    def stopped(process: object, *given: object) -> tuple[bytes, bytes]:
        for _ in range(1000):  # polled, for at most 10 s, for the CLI's word that it runs
            if started.exists() and started.read_text():
                break
            time.sleep(0.01)
        raise KeyboardInterrupt  # Ctrl-C on the suite itself

    monkeypatch.setattr(process_tree, "_output", stopped)
    person = Person("Alice", User("alice", "password", "sub"), tmp_path / "home")
    with pytest.raises(KeyboardInterrupt):
        cli.run_command([sys.executable, str(script)], person, [])
    assert all(ended(int(pid)) for pid in started.read_text().split())


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


def test_what_a_cli_writes_where_it_runs_stays_in_the_scenarios_folder(tmp_path: Path) -> None:
    ran = run_script(tmp_path, "open('stray.txt', 'w').write('x')\n")
    assert ran.exit_code == 0
    assert (tmp_path / "stray.txt").exists()  # the person's folder's parent
    assert not (Path.cwd() / "stray.txt").exists()
