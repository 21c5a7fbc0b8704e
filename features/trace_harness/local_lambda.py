"""A Lambda function on 127.0.0.1, run as AWS runs it: the Python runtime interface client
(``awslambdaric``, the same bootstrap as the managed runtime) in a process of its own,
polling a local Lambda Runtime API; or, for a Node.js handler, the harness's bridge
polling the same API (``trace_harness.function_code``).

The process gets only the environment a Lambda gets: the function's variables from
the infrastructure's definition, the runtime's own (region, credentials, the log
format and level the construct sets), and nothing of the shell that runs the suite.
So the handler builds its clients once per process from that environment, and its
log records reach "CloudWatch" (the process's output) exactly as the runtime
formats and filters them.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer

from trace_harness import serving
from trace_harness.function_code import FunctionCode, python_handler
from trace_infra.definitions import FunctionDefinition

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_API = "/2018-06-01/runtime"
_STOP = object()


class InvocationFailed(Exception):
    """The function raised, timed out or could not start: API Gateway answers 502."""


@dataclass
class _Invocation:
    request_id: str
    event: Mapping[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: str = ""
    timer: threading.Timer | None = None


class LocalLambda:
    """One function instance: invocations run one at a time, as on one Lambda instance."""

    def __init__(
        self,
        function: FunctionDefinition,
        environment: Mapping[str, str],
        *,
        name: str,
        code: FunctionCode | None = None,
    ) -> None:
        """``code``: what the function runs; by default the definition's own handler."""
        self.function = function
        self.name = name
        self.code = code or python_handler(function.handler)
        self._environment = dict(environment)
        self._pending: queue.Queue[Any] = queue.Queue()
        self._running: dict[str, _Invocation] = {}
        self._server: BaseWSGIServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log = bytearray()
        self._log_lock = threading.Lock()
        self._init_error = ""

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the Runtime API and the runtime's process; the first invocation waits
        for the handler to be imported, as a cold start does."""
        self._server = serving.serve(self)
        # As on Lambda, the function's code is found in its task root (for this
        # project's handler, the folder the construct packages: the one holding
        # trace_infra), not in an installed package.
        runtime_env = {
            "LAMBDA_TASK_ROOT": str(self.code.task_root),
            "_HANDLER": self.code.handler,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self._server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory_mb),
            "AWS_LAMBDA_LOG_FORMAT": self.function.log_format,
            "AWS_LAMBDA_LOG_LEVEL": self.function.application_log_level,
            **dict(self.code.runtime_environment),
            **self._environment,
        }
        self._process = subprocess.Popen(
            self.code.command,
            env=runtime_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self._process.stdout is not None
        os.set_blocking(self._process.stdout.fileno(), False)
        threading.Thread(target=self._watch, daemon=True).start()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._pending.put(_STOP)
        serving.stop(self._server)
        if self._process is not None and self._process.stdout is not None:
            self._drain_log()
            self._process.stdout.close()

    def _watch(self) -> None:
        """A runtime that exits fails what it was running and everything queued after it."""
        assert self._process is not None
        code = self._process.wait()
        failure = self._init_error or f"the function's runtime exited with status {code}"
        for invocation in list(self._running.values()):
            self._finish(invocation, error=failure)
        while True:
            try:
                waiting = self._pending.get_nowait()
            except queue.Empty:
                break
            if isinstance(waiting, _Invocation):
                self._finish(waiting, error=failure)

    # --- invoking ---------------------------------------------------------------------

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """The function's result for ``event``; raises InvocationFailed when it raised,
        timed out or its runtime died."""
        invocation = _Invocation(str(uuid.uuid4()), event)
        if self._process is None or self._process.poll() is not None:
            raise InvocationFailed(self._init_error or "the function's runtime is not running")
        self._pending.put(invocation)
        # The runtime's death also sets `done` (see _watch); the timeout is the function's.
        invocation.done.wait()
        self._drain_log()
        if invocation.error:
            raise InvocationFailed(invocation.error)
        return invocation.result

    def log_lines(self) -> list[str]:
        """Everything the function wrote so far, as the log stream would hold it."""
        self._drain_log()
        with self._log_lock:
            return self._log.decode("utf-8", "replace").splitlines()

    def log_records(self) -> list[dict[str, Any]]:
        """The structured records among the log lines (JSON log format)."""
        records = []
        for line in self.log_lines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def _drain_log(self) -> None:
        # Whatever the function logged before posting its result is already in the pipe.
        if self._process is None or self._process.stdout is None:
            return
        with self._log_lock:
            while True:
                try:
                    chunk = os.read(self._process.stdout.fileno(), 65536)
                except BlockingIOError:
                    return
                except (OSError, ValueError):
                    return
                if not chunk:
                    return
                self._log.extend(chunk)

    def _finish(self, invocation: _Invocation, *, result: Any = None, error: str = "") -> None:
        self._running.pop(invocation.request_id, None)
        if invocation.timer is not None:
            invocation.timer.cancel()
        invocation.result, invocation.error = result, error
        invocation.done.set()

    def _timed_out(self, invocation: _Invocation) -> None:
        if not invocation.done.is_set():
            self._finish(
                invocation, error=f"Task timed out after {self.function.timeout_seconds} seconds"
            )
            # Lambda ends a timed-out instance. Here no new one starts: later invocations
            # fail too (no scenario lets the function time out).
            if self._process is not None:
                self._process.kill()

    # --- the Lambda Runtime API, as the runtime interface client calls it ------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if method == "GET" and path == f"{_API}/invocation/next":
            return self._next(start_response)
        parts = path.removeprefix(f"{_API}/").split("/")
        if method == "POST" and parts == ["init", "error"]:
            self._init_error = f"the function failed to start: {body.decode('utf-8', 'replace')}"
            return _answer(start_response, 202)
        if method == "POST" and len(parts) == 3 and parts[0] == "invocation":
            invocation = self._running.get(parts[1])
            if invocation is None:
                return _answer(start_response, 400)
            if parts[2] == "response":
                self._finish(invocation, result=json.loads(body))
                return _answer(start_response, 202)
            if parts[2] == "error":
                self._finish(invocation, error=body.decode("utf-8", "replace"))
                return _answer(start_response, 202)
        return _answer(start_response, 404)

    def _next(self, start_response: StartResponse) -> Iterable[bytes]:
        invocation = self._pending.get()
        if invocation is _STOP:
            return _answer(start_response, 500)
        assert isinstance(invocation, _Invocation)
        self._running[invocation.request_id] = invocation
        timeout = self.function.timeout_seconds
        invocation.timer = threading.Timer(timeout, self._timed_out, args=(invocation,))
        invocation.timer.daemon = True
        invocation.timer.start()
        deadline_ms = int((time.time() + timeout) * 1000)
        region = self._environment.get("AWS_REGION", "us-east-1")
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    f"arn:aws:lambda:{region}:000000000000:function:{self.name}",
                ),
            ],
        )
        return [json.dumps(invocation.event).encode()]


def _answer(start_response: StartResponse, status: int) -> Iterable[bytes]:
    start_response(f"{status} Status", [("Content-Type", "application/json")])
    return [b"{}"]
