"""Asking for a trace, and what the person then sees: output, messages, files."""

from __future__ import annotations

import json

import requests
from pytest_bdd import parsers, then, when

from bgagent.api import ApiClient
from bgagent.config import config_dir, load_config, load_credentials
from trace_agent.trajectory import HEADER_EVENT
from trace_harness.stack import TraceStack
from trace_steps.cli import run_bgagent
from trace_steps.scene import Scene

SAVED_TRACE_NAME = "trace.jsonl.gz"


# --- asking for the trace -------------------------------------------------------------


@when(parsers.parse("{name} downloads the task's trace"))
def download_own_trace(name: str, scene: Scene) -> None:
    scene.cli = run_bgagent(scene.person(name), "trace", "download", scene.current_task().task_id)


@when(parsers.parse("{name} downloads the trace of {owner}'s task"))
def download_someone_elses_trace(name: str, owner: str, scene: Scene) -> None:
    task = scene.current_task()
    assert task.owner.name == owner
    scene.cli = run_bgagent(scene.person(name), "trace", "download", task.task_id)


@when(parsers.parse("{name} saves the task's trace to a file"))
def save_trace_to_file(name: str, scene: Scene) -> None:
    scene.output = scene.workdir / SAVED_TRACE_NAME
    scene.cli = run_bgagent(
        scene.person(name),
        "trace",
        "download",
        scene.current_task().task_id,
        "-o",
        str(scene.output),
    )


@when(parsers.parse("{name}'s trace link is fetched by an ordinary HTTP client"))
def fetch_link_with_plain_client(name: str, scene: Scene) -> None:
    directory = config_dir({"BGAGENT_CONFIG_DIR": str(scene.person(name).config_dir)})
    with requests.Session() as session:
        link = ApiClient(load_config(directory), load_credentials(directory), session)
        url = link.get_trace_link(scene.current_task().task_id).url
    # A plain GET, as a browser or a script would do it: requests unpacks any
    # Content-Encoding on the way, exactly as those clients do.
    scene.http_response = requests.get(url, timeout=10)


# --- what the person sees -------------------------------------------------------------


@then("the download succeeds")
def download_succeeds(scene: Scene) -> None:
    run = scene.last_run()
    assert run.exit_code == 0, run.stderr


@then(
    parsers.re(r"(?:she|he) reads the trajectory as JSON Lines, headed by a summary of the trace")
)
def reads_jsonl_with_header(scene: Scene) -> None:
    lines = _stdout_jsonl(scene)
    header = lines[0]
    assert header["event"] == HEADER_EVENT
    assert header["task_id"] == scene.current_task().task_id


@then("the summary counts every event of the task, none dropped")
def summary_counts_every_event(scene: Scene) -> None:
    header = _stdout_jsonl(scene)[0]
    assert header["accumulated_events"] == len(scene.current_task().events)
    assert header["dropped"] == 0


@then("every event of the task follows in the order it happened")
def events_in_order(scene: Scene) -> None:
    assert _stdout_jsonl(scene)[1:] == scene.current_task().events


@then("the file holds exactly the artifact stored for the task")
def file_holds_stored_artifact(scene: Scene, stack: TraceStack) -> None:
    assert scene.output is not None
    stored = stack.stored_artifact(scene.current_task().task_id)
    assert scene.output.read_bytes() == stored


@then(parsers.re(r"(?:she|he) is told where the trace was written"))
def told_where_written(scene: Scene) -> None:
    assert scene.last_run().stderr_lines == [f"Wrote {scene.output}"]


@then("the client receives exactly the gzip artifact stored for the task")
def client_receives_stored_artifact(scene: Scene, stack: TraceStack) -> None:
    response = scene.http_response
    assert response is not None
    assert response.status_code == 200
    assert response.content == stack.stored_artifact(scene.current_task().task_id)


@then(
    parsers.re(
        r"the download fails, telling (?:him|her) (?:he|she) does not have access to the task"
    )
)
def refused_access(scene: Scene) -> None:
    message = _one_line_failure(scene)
    assert "You do not have access to this task. (FORBIDDEN)" in message


@then(
    "the download fails, explaining that the task did not run with --trace "
    "or its upload has not completed"
)
def trace_not_available(scene: Scene) -> None:
    message = _one_line_failure(scene)
    assert "did not run with --trace" in message
    assert "upload has not completed" in message


@then(parsers.re(r"(?:she|he) is told how to submit the task again with a trace"))
def told_how_to_resubmit(scene: Scene) -> None:
    assert "submit the task again with --trace" in scene.last_run().stderr


@then("nothing was downloaded")
def nothing_downloaded(scene: Scene) -> None:
    assert scene.last_run().stdout == b""
    assert list(scene.workdir.iterdir()) == []


def _stdout_jsonl(scene: Scene) -> list[dict]:
    return [json.loads(line) for line in scene.last_run().stdout.splitlines()]


def _one_line_failure(scene: Scene) -> str:
    run = scene.last_run()
    assert run.exit_code != 0
    assert len(run.stderr_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr
    return run.stderr_lines[0]
