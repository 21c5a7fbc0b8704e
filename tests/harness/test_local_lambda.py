"""The local Lambda's instances, as Lambda runs them: a handler that cannot load, one
that ends its process or times out, and one that writes more than a pipe holds."""

from __future__ import annotations

import dataclasses
import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit.lambda_.function_code import python_handler
from testkit.lambda_.local_lambda import InvocationFailed, LocalLambda
from trace_infra.definitions import GET_TRACE_URL, FunctionDefinition


@contextmanager
def running(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    *,
    handler: str = "their_handler.handle",
    function: FunctionDefinition = GET_TRACE_URL,
) -> Iterator[LocalLambda]:
    """A handler module written for a test, found as TRACE_SUITE_HANDLER finds one."""
    (tmp_path / "their_handler.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    local = LocalLambda(function, {}, name="GetTraceUrl", code=python_handler(handler))
    local.start()
    try:
        if not handler.endswith(".nope"):
            local.wait_started()  # a handler that loads has started once this returns
        yield local
    finally:
        local.stop()


def test_a_handler_that_writes_more_than_a_pipe_holds_is_never_held_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "print('loading ' + 'x' * 220_000, flush=True)\n"
        "def handle(event, context):\n"
        "    for n in range(3000):\n"
        "        print(f'line {n} ' + 'y' * 100)\n"
        "    return 'done'\n"
    )
    with running(tmp_path, monkeypatch, source) as local:
        assert local.invoke({}) == "done"
        lines = local.log_lines()
    assert lines[0].startswith("loading xxx")
    assert len([line for line in lines if line.startswith("line ")]) == 3000
    assert lines[-1].startswith("line 2999 ")


def test_an_instance_whose_process_ends_fails_only_what_it_was_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "import os, time\n"
        "LOADED = time.monotonic_ns()\n"
        "def handle(event, context):\n"
        "    if event.get('crash'):\n"
        "        os._exit(3)\n"
        "    return LOADED\n"
    )
    with running(tmp_path, monkeypatch, source) as local:
        before = local.invoke({})
        with pytest.raises(InvocationFailed, match="exited with status 3"):
            local.invoke({"crash": True})
        after = local.invoke({})
        assert local.invoke({}) == after
    assert after != before  # a new instance: the module was loaded again


def test_a_timed_out_invocation_ends_its_instance_and_the_next_gets_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = (
        "import threading, time\n"
        "LOADED = time.monotonic_ns()\n"
        "def handle(event, context):\n"
        "    if event.get('hang'):\n"
        "        threading.Event().wait()\n"
        "    return LOADED\n"
    )
    quick = dataclasses.replace(GET_TRACE_URL, timeout_seconds=1)
    with running(tmp_path, monkeypatch, source, function=quick) as local:
        before = local.invoke({})
        with pytest.raises(InvocationFailed, match="Task timed out after 1 seconds"):
            local.invoke({"hang": True})
        assert local.invoke({}) != before


def test_a_handler_that_cannot_load_fails_to_start_and_is_tried_again_when_invoked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "def handle(event, context):\n    return 1\n"
    with running(tmp_path, monkeypatch, source, handler="their_handler.nope") as local:
        with pytest.raises(InvocationFailed) as failed:
            local.wait_started()
        assert str(failed.value) == (
            "the function failed to start: Runtime.HandlerNotFound: "
            "Handler 'nope' missing on module 'their_handler'"
        )
        for _ in range(2):  # each invocation tries a new instance, as Lambda does
            with pytest.raises(InvocationFailed, match="Handler 'nope' missing"):
                local.invoke({})


def test_a_stopped_function_is_not_invoked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running(tmp_path, monkeypatch, "def handle(event, context):\n    return 1\n") as local:
        assert local.invoke({}) == 1
    with pytest.raises(InvocationFailed, match="the function is not running"):
        local.invoke({})


def test_what_an_invocation_logged_is_in_the_log_when_its_answer_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = "def handle(event, context):\n    print(f'last of {event}', flush=True)\n"
    with running(tmp_path, monkeypatch, source) as local:
        for number in range(300):
            local.invoke(number)
            assert local.log_lines()[-1] == f"last of {number}"


@pytest.mark.parametrize("own_session", [False, True], ids=["in-its-group", "in-a-session"])
def test_a_stopped_function_leaves_no_process_thread_or_descriptor_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_session: bool
) -> None:
    """Also a helper the handler moved out of its process group into a session of its
    own: it holds the log's pipe open, and is ended with the function."""
    gc.collect()  # what earlier tests left for the collector closes now, not midway
    threads, descriptors = set(threading.enumerate()), len(os.listdir("/proc/self/fd"))
    source = (
        "import subprocess\n"
        "def handle(event, context):\n"
        f"    return subprocess.Popen(['sleep', '600'], start_new_session={own_session}).pid\n"
    )
    with running(tmp_path, monkeypatch, source) as local:
        runtime, spawned = local.runtime_pid, local.invoke({})
    for pid in (runtime, spawned):
        assert pid is not None
        assert _ended(pid)
    for thread in set(threading.enumerate()) - threads:  # ending: timers cancelled, servers
        thread.join(5)
    assert set(threading.enumerate()) == threads
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == descriptors


def _ended(pid: int) -> bool:
    """Gone, or a zombie no one has reaped yet (this machine's first process may not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True
