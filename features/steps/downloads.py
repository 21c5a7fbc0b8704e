"""Asking for a trace, and what the person then sees: output, messages, files."""

from __future__ import annotations

import json
from datetime import timedelta
from urllib.parse import quote

import regex
import requests
from pytest_bdd import given, parsers, then, when

from testkit.aws.auth import ALGORITHM as SIGV4
from testkit.aws.gate_control import S3GateHandle
from testkit.aws.s3_gate import ChecksumStyle, EtagStyle, Fault
from testkit.conformance.cli import Awaited, run_bgagent, run_bgagent_process
from testkit.conformance.phrasebook import MATCH_SECONDS, Phrasebook
from testkit.scene import CliRun, Scene
from testkit.settings import Settings
from testkit.stack.resources import Resources
from trace_agent.trajectory import HEADER_EVENT, TrajectoryAccumulator
from trace_infra.definitions import trace_object_key

SAVED_TRACE_NAME = "trace.jsonl.gz"

# The messages steps check without quoting them, by the names the phrasebook gives them.
WHERE_WRITTEN = "where the trace was written"
NO_ACCESS = "You do not have access to this task. (FORBIDDEN)"
NOT_AVAILABLE = "the task did not run with --trace or its upload has not completed"
RESUBMIT = "how to submit the task again with a trace"
INTERRUPTED = "interrupted; nothing was saved"


# --- asking for the trace -------------------------------------------------------------


def _download(scene: Scene, name: str, *extra: str, interrupt_when: Awaited | None = None) -> None:
    task_id = scene.current_task().task_id
    scene.cli = run_bgagent(
        scene.person(name),
        "trace",
        "download",
        task_id,
        *extra,
        env=scene.cli_env,
        interrupt_when=interrupt_when,
    )


@when(parsers.parse("{name} downloads the task's trace"))
def download_own_trace(name: str, scene: Scene) -> None:
    _download(scene, name)


@when(parsers.parse("{name} downloads the trace of {owner}'s task"))
def download_someone_elses_trace(name: str, owner: str, scene: Scene) -> None:
    scene.task = scene.tasks[owner]
    _download(scene, name)


@when(parsers.parse("{name} saves the task's trace to a file"))
@when(parsers.parse("{name} saves the task's trace to that file"))
def save_trace_to_file(name: str, scene: Scene) -> None:
    scene.output = scene.workdir / SAVED_TRACE_NAME
    _download(scene, name, "-o", str(scene.output))


@when(parsers.parse("{name} saves the task's trace to that file, replacing it"))
def save_trace_replacing(name: str, scene: Scene) -> None:
    scene.output = scene.workdir / SAVED_TRACE_NAME
    _download(scene, name, "-o", str(scene.output), "--force")


@when(parsers.parse("{name} runs the bgagent command to download the task's trace"))
def run_installed_command(name: str, scene: Scene) -> None:
    scene.cli = run_bgagent_process(
        scene.person(name), "trace", "download", scene.current_task().task_id
    )


@when(parsers.parse("{name} interrupts the download of the task's trace to a file"))
def interrupt_download(name: str, scene: Scene, gate: S3GateHandle) -> None:
    assert gate.fault is Fault.STALL, "an interrupt needs a download that is still running"
    # Ctrl-C once the CLI is waiting for the rest of the body (the gate says when it has
    # started stalling; the stall lasts until the scenario ends), never after a guessed
    # delay.
    scene.output = scene.workdir / SAVED_TRACE_NAME
    _download(scene, name, "-o", str(scene.output), interrupt_when=gate.stalling)


def _trace_link(scene: Scene, resources: Resources, name: str) -> str:
    """The link the API hands the person for the current task, asked for as any client
    of the API asks: the answer's ``data.url``, whatever else it holds."""
    task_id = quote(scene.current_task().task_id, safe="")
    answer = requests.get(
        f"{resources.api_url}/tasks/{task_id}/trace",
        headers={"Authorization": scene.person(name).id_token},
        timeout=10,
    )
    assert answer.status_code == 200, f"the API answered {answer.status_code}: {answer.text[:300]}"
    return str(answer.json()["data"]["url"])


@when(parsers.parse("{name}'s trace link is fetched by an ordinary HTTP client"))
def fetch_link_with_plain_client(name: str, scene: Scene, resources: Resources) -> None:
    url = _trace_link(scene, resources, name)
    # A plain GET, as a browser or a script would do it: requests unpacks any
    # Content-Encoding on the way, exactly as those clients do.
    scene.http_response = requests.get(url, timeout=10)


@when(parsers.parse("{name}'s trace link is altered to point at {other}'s trace and fetched"))
def fetch_link_pointing_elsewhere(
    name: str, other: str, scene: Scene, resources: Resources
) -> None:
    scene.task = scene.tasks[name]
    url = _trace_link(scene, resources, name)
    mine = quote(trace_object_key(scene.person(name).user.sub, scene.tasks[name].task_id))
    theirs = quote(trace_object_key(scene.person(other).user.sub, scene.tasks[other].task_id))
    assert mine in url
    scene.http_response = requests.get(url.replace(mine, theirs), timeout=10)


@when(parsers.parse("{name}'s trace link is altered to last a week and fetched"))
def fetch_link_lasting_longer(name: str, scene: Scene, resources: Resources) -> None:
    url = _trace_link(scene, resources, name)
    assert "X-Amz-Expires=900" in url
    scene.http_response = requests.get(
        url.replace("X-Amz-Expires=900", "X-Amz-Expires=604800"), timeout=10
    )


# --- the wire between the CLI and the trace storage -------------------------------------

_FAULTS = {
    "a connection reset mid-body": Fault.RESET_MID_BODY,
    "a body shorter than its stated length": Fault.SHORT_BODY,
    "corrupt gzip bytes": Fault.CORRUPT_BODY,
    "a single changed byte": Fault.FLIPPED_BYTE,
    "access denied": Fault.FORBIDDEN,
    "a server error": Fault.SERVER_ERROR,
    "a request to slow down": Fault.SLOW_DOWN,
    "a stall mid-body": Fault.STALL,
    "a trickle too slow to finish in time": Fault.TRICKLE,
}


_ETAGS = {"a KMS key": EtagStyle.KMS, "a multipart upload": EtagStyle.MULTIPART}


@given(parsers.parse("the trace storage keeps the trace under {how}, so its ETag is no MD5"))
def etag_not_md5(how: str, gate: S3GateHandle) -> None:
    gate.etag_style = _ETAGS[how]


@given(parsers.parse("the trace storage will answer the download with {fault}"))
def storage_fault(fault: str, gate: S3GateHandle) -> None:
    gate.fault = _FAULTS[fault]


@given("the trace storage is too busy to answer the first try of the download")
def storage_busy_once(gate: S3GateHandle) -> None:
    gate.fault = Fault.SLOW_DOWN
    gate.fault_times = 1


@given("the trace storage keeps the trace as a multipart upload, with a checksum of its parts")
def stored_in_parts(gate: S3GateHandle) -> None:
    gate.etag_style = EtagStyle.MULTIPART
    gate.checksum_style = ChecksumStyle.COMPOSITE


@given(parsers.parse("{name}'s download starts {minutes:d} minutes after the link was issued"))
def link_used_late(name: str, minutes: int, gate: S3GateHandle) -> None:
    gate.clock_offset = timedelta(minutes=minutes)


@given(parsers.parse("{name} already has a file at the download target"))
def earlier_file(name: str, scene: Scene) -> None:
    scene.output = scene.workdir / SAVED_TRACE_NAME
    scene.earlier_file = b"an artifact saved earlier\n"
    scene.output.write_bytes(scene.earlier_file)


# --- what the person sees -------------------------------------------------------------


@then("the command exits successfully and prints nothing but the trajectory")
def command_prints_only_the_trajectory(scene: Scene) -> None:
    run = scene.last_run()
    assert (run.exit_code, _said(run)) == (0, []), run.stderr[-300:]
    assert _stdout_jsonl(scene)[0]["event"] == HEADER_EVENT


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


@then(
    parsers.parse(
        "the trace holds the task's events from the first, in order, as many as fit in {kib:d} KiB"
    )
)
def events_up_to_the_cap(kib: int, scene: Scene) -> None:
    kept, events = _stdout_jsonl(scene)[1:], scene.current_task().events
    assert 0 < len(kept) < len(events)
    assert kept == events[: len(kept)]
    # The next event would not have fitted under the cap.
    assert _counted_size(kept) <= kib * 1024 < _counted_size(events[: len(kept) + 1])


@then("the summary counts the events kept and the events dropped")
def summary_counts_kept_and_dropped(scene: Scene) -> None:
    header, *kept = _stdout_jsonl(scene)
    assert header["accumulated_events"] == len(kept)
    assert header["accumulated_bytes"] == _counted_size(kept)
    assert header["dropped"] == len(scene.current_task().events) - len(kept)
    assert header["max_bytes"] == scene.trace_max_bytes


def _counted_size(events: list[dict]) -> int:
    """How many bytes of the cap the agent counts for these events, by its own measure."""
    measure = TrajectoryAccumulator("measure", enabled=True)
    for event in events:
        measure.record(event)
    return measure.accumulated_bytes


@then("every event of the task follows in the order it happened")
def events_in_order(scene: Scene) -> None:
    assert _stdout_jsonl(scene)[1:] == scene.current_task().events


@then("the file holds exactly the artifact stored for the task")
def file_holds_stored_artifact(scene: Scene, resources: Resources) -> None:
    assert scene.output is not None
    stored = resources.stored_artifact(scene.current_task().task_id)
    assert scene.output.read_bytes() == stored


@then(parsers.re(r"(?:she|he) is told where the trace was written"))
def told_where_written(scene: Scene, phrasebook: Phrasebook) -> None:
    line = _one_line(scene.last_run())
    phrasebook.judge(WHERE_WRITTEN, line, **_placeholders(scene))


@then("the client receives exactly the gzip artifact stored for the task")
def client_receives_stored_artifact(scene: Scene, resources: Resources) -> None:
    response = scene.http_response
    assert response is not None
    assert response.status_code == 200
    assert response.content == resources.stored_artifact(scene.current_task().task_id)


@then(
    parsers.re(
        r"the download fails, telling (?:him|her) (?:he|she) does not have access to the task"
    )
)
def refused_access(scene: Scene, phrasebook: Phrasebook) -> None:
    phrasebook.judge(NO_ACCESS, _one_line_failure(scene), **_placeholders(scene))


@then(
    "the download fails, explaining that the task did not run with --trace "
    "or its upload has not completed"
)
def trace_not_available(scene: Scene, phrasebook: Phrasebook) -> None:
    phrasebook.judge(NOT_AVAILABLE, _one_line_failure(scene), **_placeholders(scene))


@then(parsers.re(r"(?:she|he) is told how to submit the task again with a trace"))
def told_how_to_resubmit(scene: Scene, phrasebook: Phrasebook) -> None:
    phrasebook.judge(RESUBMIT, _one_line_failure(scene), **_placeholders(scene))


@then("it gave up partway through the trace")
def gave_up_partway(gate: S3GateHandle) -> None:
    # Not before the trace began: a deadline that expired while the answer's headers
    # were awaited would show the same message without trying the mid-body path.
    assert gate.body_begun.is_set(), "the download gave up before the trace began to arrive"


@then("nothing was downloaded")
def nothing_downloaded(scene: Scene) -> None:
    assert scene.last_run().stdout == b""
    assert list(scene.workdir.iterdir()) == []


@then("no file was written")
def no_file_written(scene: Scene) -> None:
    assert list(scene.workdir.iterdir()) == []


@then("the trace storage was never asked for the trace")
def storage_never_asked(gate: S3GateHandle) -> None:
    assert gate.presigned == []


@then("the trace storage was asked for the trace twice")
def storage_asked_twice(gate: S3GateHandle) -> None:
    assert [seen.verdict for seen in gate.presigned] == ["ok", "ok"]


@then("the earlier file is unchanged")
def earlier_file_unchanged(scene: Scene) -> None:
    assert scene.output is not None
    assert scene.output.read_bytes() == scene.earlier_file
    assert [p.name for p in scene.workdir.iterdir()] == [SAVED_TRACE_NAME]


@then(parsers.parse('the download fails and {name} is told "{message}"'))
def fails_with_message(name: str, message: str, scene: Scene, phrasebook: Phrasebook) -> None:
    """The one line must say ``message``, in the words the phrasebook gives it."""
    phrasebook.judge(message, _one_line_failure(scene), **_placeholders(scene))


@then(parsers.re(r"the download stops, telling (?:him|her) nothing was saved"))
def interrupted(scene: Scene, phrasebook: Phrasebook) -> None:
    run = scene.last_run()
    interrupted_status = Settings.current().cli_profile.interrupted_status  # 130 for this CLI
    assert run.exit_code == interrupted_status, (
        f"exit status {run.exit_code}, not {interrupted_status} (interrupted by Ctrl-C)"
    )
    phrasebook.judge(INTERRUPTED, _one_line(run), **_placeholders(scene))


@then(parsers.re(r"the link (?:she|he) used was signed with AWS Signature Version 4"))
def link_was_sigv4(gate: S3GateHandle) -> None:
    used = gate.presigned[-1]
    assert (used.algorithm, used.verdict) == (SIGV4, "ok")


@then("it was valid for exactly 15 minutes")
def link_valid_15_minutes(gate: S3GateHandle) -> None:
    assert gate.presigned[-1].expires_seconds == 15 * 60


@then("the trace storage refuses it as a forged link")
def refused_as_forged(scene: Scene) -> None:
    response = scene.http_response
    assert response is not None
    assert response.status_code == 403
    assert "<Code>SignatureDoesNotMatch</Code>" in response.text


@then(parsers.parse("none of {other}'s trace was received"))
def nothing_of_theirs(other: str, scene: Scene, resources: Resources) -> None:
    response = scene.http_response
    assert response is not None
    theirs = resources.stored_artifact(scene.tasks[other].task_id)
    assert theirs not in response.content


def _stdout_jsonl(scene: Scene) -> list[dict]:
    return [json.loads(line) for line in scene.last_run().stdout.splitlines()]


def _one_line_failure(scene: Scene) -> str:
    """The one line of a failure the CLI expected (exit 1, as opposed to a defect's 70)."""
    run = scene.last_run()
    assert run.exit_code == 1, (
        f"exit status {run.exit_code}, not 1 (a failure the CLI expected); "
        f"stderr: {run.stderr[-300:]!r}"
    )
    return _one_line(run)


def _one_line(run: CliRun) -> str:
    """What the CLI said on stderr: one line, no stack trace."""
    assert "Traceback" not in run.stderr, f"a stack trace on stderr: {run.stderr[-300:]!r}"
    said = _said(run)
    assert len(said) == 1, f"{len(said)} lines on stderr, not one: {run.stderr[-300:]!r}"
    return said[0]


def _said(run: CliRun) -> list[str]:
    """The lines of the CLI's stderr, less those its profile says say nothing of the run
    (a runtime's warning); a line the pattern takes too long to read is kept."""
    noise = Settings.current().cli_profile.stderr_noise
    if not noise:
        return run.stderr_lines
    pattern = regex.compile(noise)

    def is_noise(line: str) -> bool:
        try:
            return pattern.fullmatch(line, timeout=MATCH_SECONDS) is not None
        except TimeoutError:
            return False

    return [line for line in run.stderr_lines if not is_noise(line)]


def _placeholders(scene: Scene) -> dict[str, str]:
    """What a phrasebook entry may name: the task's id, the file written."""
    values = {"task": scene.task.task_id} if scene.task is not None else {}
    if scene.output is not None:
        values["file"] = str(scene.output)
    return values
