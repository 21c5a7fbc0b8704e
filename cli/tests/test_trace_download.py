import base64
import gzip
import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from bgagent.config import Config, save_config
from bgagent.main import run


def test_stdout_gets_the_gunzipped_jsonl(bgagent, backend) -> None:
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, backend.trace_lines, "")
    assert backend.seen_authorization == [backend.id_token]


def test_dash_o_writes_the_stored_bytes_and_says_so(bgagent, backend, tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 0
    assert target.read_bytes() == backend.artifact
    assert result.stderr == f"Wrote {target}\n"


@pytest.mark.parametrize("encoding", ["gzip", "identity", "br"])
def test_a_claimed_content_encoding_changes_nothing(
    bgagent, backend, tmp_path: Path, encoding: str
) -> None:
    backend.object_headers = {"Content-Encoding": encoding}
    target = tmp_path / "t.jsonl.gz"
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == backend.artifact
    assert bgagent("trace", "download", "t-1").stdout == backend.trace_lines


def test_an_existing_file_is_refused_before_any_network_call(bgagent, backend, tmp_path) -> None:
    target = tmp_path / "t.jsonl.gz"
    target.write_bytes(b"earlier artifact")
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 1
    assert "already exists; use --force" in result.stderr
    assert backend.seen_paths == []
    assert target.read_bytes() == b"earlier artifact"


def test_force_replaces_an_existing_file(bgagent, backend, tmp_path: Path) -> None:
    target = tmp_path / "t.jsonl.gz"
    target.write_bytes(b"earlier artifact")
    assert bgagent("trace", "download", "t-1", "-o", str(target), "--force").exit_code == 0
    assert target.read_bytes() == backend.artifact


def test_odd_task_ids_are_url_encoded(bgagent, backend) -> None:
    bgagent("trace", "download", "a/b c?d#%")
    assert backend.seen_paths[0] == "/prod/tasks/a%2Fb%20c%3Fd%23%25/trace"


CONTROL = "The task id contains control characters; check how it was pasted."


@pytest.mark.parametrize(
    ("task_id", "message"),
    [
        ("", "The task id is empty."),
        ("   ", "The task id is empty."),
        ("t\n1", CONTROL),
        ("t\x1b[2J", CONTROL),
        ("t\x1f", CONTROL),
        ("t\x7f", CONTROL),
        ("t\udcff", "The task id is not valid text; check how it was pasted."),
        (".", "'.' is not a task id."),
        ("..", "'..' is not a task id."),
    ],
)
def test_unusable_task_ids_are_refused(bgagent, backend, task_id: str, message: str) -> None:
    result = bgagent("trace", "download", task_id)
    assert (result.exit_code, result.stderr) == (1, f"bgagent: {message}\n")
    assert backend.seen_paths == []


@pytest.mark.parametrize("task_id", ["t 1", "t~1", "...", "t.1"])
def test_task_ids_with_spaces_tildes_or_dots_are_asked_for(bgagent, backend, task_id) -> None:
    assert bgagent("trace", "download", task_id).exit_code == 0


NO_TRACE = (
    "No trace is available for task t-1: either it did not run with --trace, or its trace "
    "upload has not completed yet. To capture one, submit the task again with --trace."
)
SESSION_HINT = " Your session may have expired: run `bgagent login` to sign in again."


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (403, {"error": {"code": "FORBIDDEN", "message": "No."}}, "No. (FORBIDDEN)"),
        (
            404,
            {
                "error": {
                    "code": "TASK_NOT_FOUND",
                    "message": "Task t-1 not found.",
                    "request_id": "r",
                }
            },
            "Task t-1 not found. (TASK_NOT_FOUND)",  # a request id only helps with a 5xx
        ),
        (
            500,
            {"error": {"code": "INTERNAL_ERROR", "message": "Oops.", "request_id": "r-9"}},
            "Oops. (INTERNAL_ERROR, request id r-9)",
        ),
        (
            499,  # a proxy's "client closed": below 500, so no request id
            {"error": {"code": "CLIENT_CLOSED", "message": "Gone.", "request_id": "r-4"}},
            "Gone. (CLIENT_CLOSED)",
        ),
        (503, {"error": {"message": "Busy."}}, "Busy."),
        (
            502,
            {"error": {"code": "BAD_GATEWAY", "message": "Oops.", "request_id": "r-2"}},
            "Oops. (BAD_GATEWAY, request id r-2)",
        ),
        (400, {"error": {"code": "VALIDATION_ERROR", "message": "No."}}, "No. (VALIDATION_ERROR)"),
        (401, {"message": "Unauthorized"}, "Unauthorized (HTTP 401)" + SESSION_HINT),
        (
            401,
            {"error": {"code": "UNAUTHORIZED", "message": "No."}},
            "No. (UNAUTHORIZED)" + SESSION_HINT,
        ),
        (403, {"message": "Forbidden"}, "Forbidden (HTTP 403)"),
        (418, {"error": {"message": ""}}, "The API request failed with HTTP 418."),
        (502, None, "The API request failed with HTTP 502."),
        (404, {"error": {"code": "TRACE_NOT_AVAILABLE", "message": "x"}}, NO_TRACE),
        (200, {"no": "data"}, "The API answered HTTP 200 without data; please report this."),
        (200, {"data": {}}, "The API answered without a trace link; please report this."),
        (
            200,
            {"data": {"url": "ftp://h/o"}},
            "The API answered without a trace link; please report this.",
        ),
        (
            200,
            {"data": {"url": "http://h/o", "checksum_sha256": "not-base64!"}},
            "The API answered with a malformed checksum; please report this.",
        ),
        (
            200,
            {"data": {"url": "http://h/o", "checksum_sha256": "AAAA"}},  # 3 bytes, not 32
            "The API answered with a malformed checksum; please report this.",
        ),
        (
            200,
            {
                "data": {
                    "url": "http://h/o",
                    "checksum_sha256": base64.b64encode(b"x" * 33).decode(),
                }
            },
            "The API answered with a malformed checksum; please report this.",
        ),
        (
            200,
            {
                "data": {
                    "url": "http://h/o",
                    "checksum_sha256": base64.b64encode(b"x" * 32).decode() + "!",
                }
            },
            "The API answered with a malformed checksum; please report this.",
        ),
    ],
)
def test_api_errors_become_one_line(bgagent, backend, status, body, expected) -> None:
    backend.api_status = status
    backend.api_body = json.dumps(body).encode() if body is not None else b"<html>oops</html>"
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stderr, result.stdout) == (1, f"bgagent: {expected}\n", b"")


def test_an_api_answer_compressed_in_transit_is_read(bgagent, backend) -> None:
    """API Gateway gzips an answer for a client that accepts it, as requests says it does."""
    link = {"url": f"{backend.url}/object", "expires_at": "x"}
    backend.api_body = gzip.compress(json.dumps({"data": link}).encode())
    backend.api_headers = {"Content-Encoding": "gzip"}
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, backend.trace_lines, "")


def test_what_the_api_says_never_shows_the_callers_token(bgagent, backend) -> None:
    backend.api_status = 403
    backend.api_body = json.dumps(
        {"error": {"code": "FORBIDDEN", "message": f"token {backend.id_token} refused"}}
    ).encode()
    result = bgagent("trace", "download", "t-1")
    assert result.stderr == "bgagent: token [token] refused (FORBIDDEN)\n"


def test_an_unreachable_api_is_one_line(bgagent, config_dir, refused_url) -> None:
    api_url = f"{refused_url}/prod"
    save_config(config_dir, Config(api_url, "us-east-1", "pool", "client"))
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stderr) == (
        1,
        f"bgagent: Could not reach the API at {api_url} (ConnectionError).\n",
    )


@pytest.mark.parametrize("status", [300, 400, 404, 500])
def test_storage_errors_leave_no_file_and_never_guess_an_expired_link(
    bgagent, backend, tmp_path, status, monkeypatch
) -> None:
    """Only a 403 (a refused link) is said to be maybe an expired one; what S3 says of
    each is in test_storage_answers.py."""
    from bgagent import download

    monkeypatch.setattr(download, "_pause", lambda _: None)
    backend.object_status = status
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"bgagent: The trace storage answered HTTP {status}")
    assert "expired" not in result.stderr
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]  # no file, no .part


def test_bytes_that_are_not_gzip_are_reported_as_corrupt(bgagent, backend) -> None:
    backend.object_body = b'{"not": "gzipped"}\n'
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The trace artifact is corrupt or not gzipped; use -o FILE to save the raw "
        "bytes and inspect them.\n",
    )


def test_a_stalled_download_times_out_and_leaves_no_file(bgagent, backend, tmp_path) -> None:
    backend.object_stall_seconds = 5
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target), BGAGENT_DOWNLOAD_TIMEOUT="0.3")
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The download timed out after 0.3 s; run the command again.\n",
    )
    assert os.listdir(tmp_path) == ["bgagent"]


def test_secrets_never_reach_the_terminal(bgagent, backend) -> None:
    backend.object_status = 403
    result = bgagent("trace", "download", "t-1")
    assert backend.id_token not in result.stderr
    assert "s3cr3t" not in result.stderr


def test_missing_configuration_points_to_configure(tmp_path: Path) -> None:
    stderr = io.StringIO()
    code = run(
        ["trace", "download", "t"],
        stdout=io.BytesIO(),
        stderr=stderr,
        environ={"BGAGENT_CONFIG_DIR": str(tmp_path / "none")},
    )
    assert code == 1
    assert "bgagent configure" in stderr.getvalue()


def sha256_of(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_a_file_is_written_only_when_its_checksum_matches(bgagent, backend, tmp_path) -> None:
    target = tmp_path / "t.jsonl.gz"
    backend.checksum_sha256 = sha256_of(backend.object_body)
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == backend.object_body

    other = tmp_path / "other.jsonl.gz"
    backend.checksum_sha256 = sha256_of(b"some other artifact")
    refused = bgagent("trace", "download", "t-1", "-o", str(other))
    assert refused.exit_code == 1
    assert refused.stderr == (
        "bgagent: The downloaded bytes do not match the stored trace (checksum mismatch); "
        "run the command again.\n"
    )
    assert not other.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no .part left


def test_an_etag_that_is_no_md5_is_not_a_checksum(bgagent, backend, tmp_path) -> None:
    backend.object_headers = {"ETag": '"0123456789abcdef0123456789abcdef"'}  # as under SSE-KMS
    target = tmp_path / "t.jsonl.gz"
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.read_bytes() == backend.object_body


def test_without_a_checksum_a_cut_gzip_is_never_saved(bgagent, backend, tmp_path) -> None:
    backend.object_body = backend.object_body[:-6]  # the gzip trailer is missing
    target = tmp_path / "t.jsonl.gz"
    refused = bgagent("trace", "download", "t-1", "-o", str(target))
    assert refused.exit_code == 1
    assert "corrupt or not gzipped" in refused.stderr
    assert not target.exists()


def test_the_terminal_output_is_checked_against_the_checksum_too(bgagent, backend) -> None:
    backend.checksum_sha256 = sha256_of(b"some other artifact")
    refused = bgagent("trace", "download", "t-1")
    assert refused.exit_code == 1
    assert "checksum mismatch" in refused.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{dir}/", "{dir}/ names a directory; give a file name to -o."),
        ("{dir}", "{dir} is a directory; give a file name to -o."),
        ("{dir}/taken", "{dir}/taken already exists; use --force to replace it."),
        (
            "{dir}/none/t.gz",
            "Cannot write {dir}/none/t.gz: the directory {dir}/none does not exist.",
        ),
        ("{dir}/" + "n" * 256, "The file name given to -o is longer than 255 bytes."),
    ],
    ids=["trailing-slash", "directory", "existing", "no-directory", "long-name"],
)
def test_an_unusable_target_is_refused_before_any_network_call(
    bgagent, backend, tmp_path, target: str, message: str
) -> None:
    (tmp_path / "taken").write_bytes(b"earlier")
    result = bgagent("trace", "download", "t-1", "-o", target.format(dir=tmp_path))
    assert (result.exit_code, result.stderr) == (1, f"bgagent: {message.format(dir=tmp_path)}\n")
    assert backend.seen_paths == []
    assert (tmp_path / "taken").read_bytes() == b"earlier"


def test_a_file_name_of_exactly_255_bytes_is_saved(bgagent, tmp_path) -> None:
    target = tmp_path / ("n" * 255)
    assert bgagent("trace", "download", "t-1", "-o", str(target)).exit_code == 0
    assert target.exists()


def test_unreachable_trace_storage_is_one_line(bgagent, backend, refused_url) -> None:
    backend.api_body = json.dumps({"data": {"url": f"{refused_url}/object"}}).encode()
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: Could not reach the trace storage (ConnectionError).\n",
    )


def test_a_changed_byte_under_a_stored_checksum_is_refused_whole(bgagent, backend, tmp_path):
    backend.checksum_sha256 = base64.b64encode(hashlib.sha256(backend.artifact).digest()).decode()
    backend.object_body = backend.artifact[:-1] + bytes([backend.artifact[-1] ^ 1])
    result = bgagent("trace", "download", "t-1", "-o", str(tmp_path / "t.gz"))
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The downloaded bytes do not match the stored trace (checksum mismatch); "
        "run the command again.\n",
    )
