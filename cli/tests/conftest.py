from __future__ import annotations

import gzip
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bgagent.config import Config, Credentials, save_config, save_credentials
from bgagent.main import run

TRACE_LINES = b'{"event":"TRAJECTORY_ARTIFACT_HEADER"}\n{"event":"TRAJECTORY_TURN"}\n'
ARTIFACT = gzip.compress(TRACE_LINES, mtime=0)
ID_TOKEN = "header.payload.signature-of-the-id-token"


@dataclass
class FakeBackend:
    """A stand-in API and object store on 127.0.0.1, answering as configured."""

    url: str = ""
    trace_lines: bytes = TRACE_LINES
    artifact: bytes = ARTIFACT
    id_token: str = ID_TOKEN
    api_status: int = 200
    api_body: bytes | None = None
    api_headers: dict[str, str] = field(default_factory=dict)
    object_status: int = 200
    object_body: bytes = ARTIFACT
    object_headers: dict[str, str] = field(default_factory=dict)
    object_stall_seconds: float = 0.0
    checksum_sha256: str | None = None  # what the API reports of the stored artifact
    close_delimited: bool = False  # the object's answer states no Content-Length
    # Answers given to the first object requests, in turn, before the configured one:
    # (status, body, headers), or a WSGI app of the test's own.
    object_answers: list[Any] = field(default_factory=list)
    object_requests: int = 0
    object_started: threading.Event = field(default_factory=threading.Event)
    seen_paths: list[str] = field(default_factory=list)
    seen_authorization: list[str] = field(default_factory=list)
    seen_object_authorization: list[str] = field(default_factory=list)

    def app(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        self.seen_paths.append(environ.get("RAW_URI", request.path))
        if request.path == "/object":
            self.seen_object_authorization.append(request.headers.get("Authorization", ""))
            self.object_requests += 1
            if self.object_answers:
                answer = self.object_answers.pop(0)
                if callable(answer):
                    return answer(environ, start_response)
                status, body, headers = answer
                return Response(body, status, headers=headers)(environ, start_response)
            return self._object()(environ, start_response)
        self.seen_authorization.append(request.headers.get("Authorization", ""))
        body = self.api_body
        if body is None:
            data = {"url": f"{self.url}/object?X-Amz-Signature=s3cr3t", "expires_at": "x"}
            if self.checksum_sha256 is not None:
                data["checksum_sha256"] = self.checksum_sha256
            body = json.dumps({"data": data}).encode()
        return Response(
            body, self.api_status, headers=self.api_headers, content_type="application/json"
        )(environ, start_response)

    def _object(self) -> Response:
        def body() -> Iterator[bytes]:
            half = len(self.object_body) // 2
            yield self.object_body[:half]
            self.object_started.set()
            time.sleep(self.object_stall_seconds)
            yield self.object_body[half:]

        response = Response(body(), self.object_status, headers=self.object_headers)
        if not self.close_delimited:
            response.headers["Content-Length"] = str(len(self.object_body))
        return response


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    fake = FakeBackend()
    server = make_server("127.0.0.1", 0, fake.app, threaded=True)
    server.daemon_threads = True  # a stalled response must not hold up the teardown
    fake.url = f"http://127.0.0.1:{server.server_port}"
    # A short poll interval: shutdown() otherwise waits up to half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@dataclass
class CliResult:
    exit_code: int
    stdout: bytes
    stderr: str


@pytest.fixture
def config_dir(tmp_path: Path, backend: FakeBackend) -> Path:
    directory = tmp_path / "bgagent"
    save_config(directory, Config(f"{backend.url}/prod", "us-east-1", "pool", "client"))
    save_credentials(directory, Credentials(ID_TOKEN, "refresh", "2099-01-01T00:00:00+00:00"))
    return directory


@pytest.fixture
def bgagent(config_dir: Path) -> Callable[..., CliResult]:
    def invoke(*args: str, **extra_env: str) -> CliResult:
        stdout, stderr = io.BytesIO(), io.StringIO()
        env = {"BGAGENT_CONFIG_DIR": str(config_dir), **extra_env}
        code = run(list(args), stdout=stdout, stderr=stderr, environ=env)
        return CliResult(code, stdout.getvalue(), stderr.getvalue())

    return invoke


@pytest.fixture
def cognito(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A stand-in Cognito on 127.0.0.1 that answers InitiateAuth as told (boto3 reads
    its endpoint from the process environment)."""
    from werkzeug.serving import make_server
    from werkzeug.wrappers import Response

    answer: dict = {"status": 200, "body": b"{}"}

    def app(environ, start_response):
        response = Response(
            answer["body"], answer["status"], content_type="application/x-amz-json-1.1"
        )
        return response(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", endpoint)
    yield answer
    server.shutdown()
    server.server_close()


@pytest.fixture
def sign_in(config_dir: Path) -> Callable[[], tuple[int, str]]:
    """``bgagent login`` as alice, a password on stdin: its exit status and its stderr."""

    def invoke() -> tuple[int, str]:
        stderr = io.StringIO()
        code = run(
            ["login", "--username", "alice", "--password-stdin"],
            stdout=io.BytesIO(),
            stderr=stderr,
            stdin=io.StringIO("a password\n"),
            environ={"BGAGENT_CONFIG_DIR": str(config_dir)},
        )
        return code, stderr.getvalue()

    return invoke


@pytest.fixture
def refused_url() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where nothing answers: the port is bound, never
    listening, and held for the whole test, so no other process can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}"


@pytest.fixture
def download_under_way(
    config_dir: Path, backend: FakeBackend, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """``bgagent trace download t-1 -o out/t.jsonl.gz`` in a process of its own, once
    its download has begun (and stalls there), with the file it is to write; killed at
    the end whatever the test did."""
    backend.object_stall_seconds = 30
    target = tmp_path / "out" / "t.jsonl.gz"
    target.parent.mkdir()
    running = subprocess.Popen(
        [sys.executable, "-m", "bgagent", "trace", "download", "t-1", "-o", str(target)],
        env={**os.environ, "BGAGENT_CONFIG_DIR": str(config_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not backend.object_started.is_set():  # the download is under way
            assert running.poll() is None
            assert time.monotonic() < deadline
            backend.object_started.wait(0.05)
        yield running, target
    finally:
        running.kill()
        running.communicate()
