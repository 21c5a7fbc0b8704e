"""Another team's agent, as a profile names it: called in a process of its own, which
no agent code can hang, crash or change for the suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.conformance import agent
from testkit.conformance.agent import AgentCodeError, check, run_other_agent, stop_agents
from testkit.conformance.profile import AgentProfile

ADAPTER = """
import os, sys, time
calls = []

def dump(task_id, events):
    return repr((task_id, len(events))).encode()

def upload(body, task_id, user_id):
    calls.append(task_id)
    print("uploading", task_id)  # its log, never its answer
    return f"s3://b/traces/{user_id}/{task_id}.jsonl.gz?{len(calls)}"

def finish(task_id, status, trace_s3_uri):
    print("finished", task_id, status, trace_s3_uri, file=sys.stderr)

def hang(body, task_id, user_id):
    time.sleep(600)

def die(body, task_id, user_id):
    os._exit(3)

def wrong(body, task_id, user_id):
    return 42

def raises(body, task_id, user_id):
    raise RuntimeError("no bucket")

def moves(body, task_id, user_id):
    os.chdir("/")
    os.environ["TRACE_SUITE_PROFILE"] = "/nowhere"
    return None
"""


@pytest.fixture
def adapter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "their_adapter.py").write_text(ADAPTER, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "their_adapter"
    stop_agents()


def run(adapter: str, upload: str, *, trace: bool = True) -> str | None:
    profile = AgentProfile(f"{adapter}:dump", f"{adapter}:{upload}", f"{adapter}:finish")
    outcome = run_other_agent(
        profile,
        "t-1",
        "u-1",
        [{"event": "X"}],
        trace=trace,
        environment={"THEIR_SETTING": "1"},
        records=None,  # type: ignore[arg-type]  # its own terminal write: never used
    )
    assert (outcome.status, outcome.status_written) == ("COMPLETED", True)
    return outcome.trace_s3_uri


def test_its_calls_go_by_name_to_one_process_kept_for_the_session(adapter: str) -> None:
    assert run(adapter, "upload") == "s3://b/traces/u-1/t-1.jsonl.gz?1"
    assert run(adapter, "upload") == "s3://b/traces/u-1/t-1.jsonl.gz?2"  # the same process
    assert run(adapter, "upload", trace=False) is None


@pytest.mark.parametrize(
    ("upload", "said"),
    [
        ("die", "the agent's process ended with status 3"),
        ("wrong", "the agent's their_adapter:wrong returned a int"),
        ("raises", "the agent's their_adapter:raises raised RuntimeError('no bucket')"),
        ("absent", "the agent's their_adapter:absent cannot be loaded: AttributeError"),
    ],
)
def test_an_agent_that_breaks_fails_its_task_saying_how(
    adapter: str, upload: str, said: str
) -> None:
    with pytest.raises(AgentCodeError, match=f"^{said}".replace("(", r"\(").replace(")", r"\)")):
        run(adapter, upload)
    assert run(adapter, "upload") is not None  # the next task gets a working process


def test_an_agent_that_hangs_is_ended_in_time(
    adapter: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent, "AGENT_SECONDS", 1)
    with pytest.raises(AgentCodeError, match="did not answer within 1 s"):
        run(adapter, "hang")
    assert not agent._RUNNING or not next(iter(agent._RUNNING.values())).alive


def test_what_an_agent_changes_in_its_process_stays_there(adapter: str) -> None:
    before, where = dict(os.environ), os.getcwd()
    assert run(adapter, "moves") is None
    assert (dict(os.environ), os.getcwd()) == (before, where)


def test_an_agent_runs_in_a_folder_of_its_own_removed_with_it(adapter: str) -> None:
    assert run(adapter, "upload") is not None
    [running] = agent._RUNNING.values()
    folder = Path(running.folder)
    assert folder.is_dir()
    assert folder != Path.cwd()
    stop_agents()
    assert not folder.exists()


def test_a_profile_naming_what_cannot_load_is_told_before_any_task(adapter: str) -> None:
    check(AgentProfile(f"{adapter}:dump", f"{adapter}:upload"), {})
    with pytest.raises(AgentCodeError, match="no_such_module:dump cannot be loaded"):
        check(AgentProfile("no_such_module:dump", f"{adapter}:upload"), {})
