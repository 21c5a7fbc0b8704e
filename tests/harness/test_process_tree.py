"""A foreign process tree: ended together with every process that carries its mark, what
it said kept within its bounds, and for as long as a helper it left may hold its output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from testkit import process_tree
from testkit.process_tree import Finished

KIT = str(Path(process_tree.__file__).resolve().parents[1])


def run(source: str, *, stdin: bytes = b"", limits: tuple[int, int] = (1000, 1000)) -> Finished:
    """``source`` run by Python as a tree; in a thread, so that a regression fails the
    test instead of hanging it."""
    ran: list[Finished] = []
    runner = threading.Thread(
        target=lambda: ran.append(
            process_tree.run_tree(
                [sys.executable, "-c", source],
                env=os.environ,
                stdin=stdin,
                seconds=20,
                limits=limits,
            )
        ),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=25)
    assert ran, "the run did not end"
    return ran[0]


def test_ending_a_tree_ends_each_process_with_its_mark_but_the_one_ending_it() -> None:
    """Whichever started first, and wherever it went; the process that ends the tree,
    marked too, is spared."""
    env, mark = process_tree.marked(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([KIT, env.get("PYTHONPATH", "")])
    earlier = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    gone = subprocess.Popen(["true"], start_new_session=True)  # a group that has ended
    gone.wait()
    try:
        ender = subprocess.run(
            [
                sys.executable,
                "-c",
                "from testkit.process_tree import end_tree\n"
                f"end_tree({gone.pid}, {mark!r})\n"
                "print('spared')\n",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert (ender.returncode, ender.stdout) == (0, "spared\n"), ender.stderr
        assert earlier.wait(timeout=5) == -signal.SIGKILL
    finally:
        earlier.kill()
        earlier.wait()


def test_what_a_helper_says_within_a_second_of_the_end_is_kept_and_no_more() -> None:
    helper = (
        "import time\n"
        "time.sleep(0.2)\n"
        "print('soon', flush=True)\n"
        "time.sleep(1.4)\n"
        "print('late', flush=True)\n"
        "time.sleep(60)\n"
    )
    done = run(
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {helper!r}])\n"
        "print('done', flush=True)\n"
    )
    assert (done.status, done.stdout) == (0, b"done\nsoon\n")
    assert done.stderr.endswith(b"(its output was held open by a process it left)")


def test_a_helper_out_of_reach_that_holds_the_output_is_said_once_and_left(
    tmp_path: Path,
) -> None:
    """Without the mark and in a session of its own, it cannot be ended: what was said
    until a second after that is all there is."""
    pid = tmp_path / "helper.pid"
    unmarked = (
        "import os\n"
        "os.setsid()\n"
        f"open({str(pid)!r}, 'w').write(str(os.getpid()))\n"
        "os.execve('/bin/sleep', ['sleep', '30'], {})\n"
    )
    try:
        done = run(
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {unmarked!r}])\n"
            "print('done', flush=True)\n"
        )
        assert (done.status, done.stdout) == (0, b"done\n")
        assert done.stderr == b"\n(its output was held open by a process it left)"
    finally:
        if pid.exists():
            os.kill(int(pid.read_text()), signal.SIGKILL)


def test_input_it_does_not_read_is_dropped_without_a_word() -> None:
    given = b"y" * 5_000_000  # far more than a pipe holds
    done = run("import os\nos.close(0)\nprint('ok')\n", stdin=given)
    assert (done.status, done.stdout, done.stderr) == (0, b"ok\n", b"")


@pytest.mark.parametrize("size", [1, 1000])
def test_output_that_fills_its_bound_exactly_is_kept_without_a_word(size: int) -> None:
    done = run(f"import sys\nsys.stdout.write('x' * {size})\n", limits=(size, 1000))
    assert (done.status, done.stdout, done.stderr) == (0, b"x" * size, b"")


def test_a_run_ended_by_any_signal_has_the_status_a_shell_reports() -> None:
    done = run("import os, signal\nos.kill(os.getpid(), signal.SIGHUP)\n")
    assert done.status == 128 + signal.SIGHUP
