"""A Lambda function on 127.0.0.1, run as AWS runs it: the Python runtime interface client
(``awslambdaric``, the same bootstrap as the managed runtime) in a process of its own,
polling a local Lambda Runtime API; or, for a Node.js handler, the harness's bridge
polling the same API (``testkit.lambda_.function_code``).

The process gets only the environment a Lambda gets: the function's variables from
the infrastructure's definition, the runtime's own (region, credentials, the log
format and level the construct sets), and nothing of the shell that runs the suite.
So the handler builds its clients once per process from that environment, and its
log records reach "CloudWatch" (the process's output) exactly as the runtime
formats and filters them.

As on Lambda, an instance whose process ends (a crash, a timeout) fails only what it
was running: the next invocation gets a new instance, a cold start of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer

from testkit.aws import local_server
from testkit.lambda_.function_code import FunctionCode, python_handler
from testkit.process_tree import end_tree, marked
from trace_infra.definitions import FunctionDefinition

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


INIT_SECONDS = 10  # Lambda's limit on loading the handler (its init phase)
MAX_LOG_BYTES = 16 * 1024 * 1024
LOG_TRUNCATED = "(the local Lambda kept only the latest of this log: it passed its bound)"
_LOG_POLL_MS = 100  # how soon the log's reader sees that its runtime has ended


class _Instance:
    """One instance of the function: its runtime's process (and whatever that starts,
    in a process group of its own), and the Runtime API that process polls, with the
    invocations queued for it."""

    process: subprocess.Popen[bytes]  # started once its Runtime API listens
    mark: str  # what its process tree carries in its environment

    def __init__(self) -> None:
        self.server: BaseWSGIServer | None = None
        self.threads: list[threading.Thread] = []  # its watch, and its log's reader
        self.pending: queue.Queue[Any] = queue.Queue()
        self.running: dict[str, _Invocation] = {}
        self.init_error = ""
        self.loaded = threading.Event()  # the runtime loaded the handler and asked for work
        self.ended = threading.Event()  # its process ended, and was seen to
        self.settled = threading.Event()  # loaded, or ended
        self.init_timer: threading.Timer | None = None

    def kill(self) -> None:
        """End the instance: its runtime and every process it started, in its group or
        not (they hold its log's pipe open)."""
        end_tree(self.process.pid, self.mark)


class LocalLambda:
    """One function: invocations run one at a time, as on one Lambda instance."""

    def __init__(
        self,
        function: FunctionDefinition,
        environment: Mapping[str, str],
        *,
        name: str,
        code: FunctionCode | None = None,
        init_seconds: float = INIT_SECONDS,
        max_log_bytes: int = MAX_LOG_BYTES,
    ) -> None:
        """``code``: what the function runs; by default the definition's own handler.
        ``init_seconds``: how long an instance may take to load it. ``max_log_bytes``: how
        much of its log is kept; beyond it, the oldest half is let go."""
        self.function = function
        self.init_seconds = init_seconds
        self.max_log_bytes = max_log_bytes
        self.name = name
        self.code = code or python_handler(function.handler)
        self._environment = dict(environment)
        self._instance: _Instance | None = None
        self._lock = threading.Lock()  # which instance is current
        self._stopped = False
        self._log = bytearray()
        self._dropped_lines = 0  # written, then let go to keep the log in its bound
        self._log_lock = threading.Lock()

    # --- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        """Start the first instance; the first invocation waits for the handler to be
        loaded, as a cold start does (``wait_started`` waits for it now)."""
        with self._lock:
            self._instance = self._launch()

    @property
    def runtime_pid(self) -> int | None:
        """The process id of the current instance's runtime, if one was started."""
        instance = self._instance
        return instance.process.pid if instance is not None else None

    def wait_started(self) -> None:
        """Wait until the current instance has loaded the handler; raises InvocationFailed
        if it could not (an error, an exit, or more than Lambda's 10 s init phase)."""
        instance = self._instance
        if instance is None:
            raise InvocationFailed("the function is not running")
        instance.settled.wait(self.init_seconds + 5)  # its init timer ends it before
        if not instance.loaded.is_set():
            raise InvocationFailed(instance.init_error or _failed_to_start(instance.process))

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            instance, self._instance = self._instance, None
        if instance is not None:
            instance.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                instance.process.wait(timeout=5)
            instance.kill()
            for thread in instance.threads:  # its end, and the last of its log
                thread.join()

    def _launch(self) -> _Instance:
        """A new instance: its own Runtime API, and its runtime's process."""
        instance = _Instance()
        server = instance.server = local_server.serve(_RuntimeApi(self, instance))
        # As on Lambda, the function's code is found in its task root (for this
        # project's handler, the folder the construct packages: the one holding
        # trace_infra), not in an installed package.
        runtime_env = {
            "LAMBDA_TASK_ROOT": str(self.code.task_root),
            "_HANDLER": self.code.handler,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_port}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory_mb),
            "AWS_LAMBDA_LOG_FORMAT": self.function.log_format,
            "AWS_LAMBDA_LOG_LEVEL": self.function.application_log_level,
            **dict(self.code.runtime_environment),
            **self._environment,
        }
        runtime_env, instance.mark = marked(runtime_env)
        instance.process = subprocess.Popen(
            self.code.command,
            env=runtime_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, ended as a whole
        )
        assert instance.process.stdout is not None
        os.set_blocking(instance.process.stdout.fileno(), False)
        instance.init_timer = threading.Timer(self.init_seconds, self._init_timed_out, (instance,))
        instance.init_timer.daemon = True
        instance.init_timer.start()
        for work in (self._pump_log, self._watch):
            thread = threading.Thread(target=work, args=(instance,), daemon=True)
            thread.start()
            instance.threads.append(thread)
        return instance

    def _init_timed_out(self, instance: _Instance) -> None:
        if not instance.loaded.is_set():
            instance.init_error = f"the function did not start within {self.init_seconds:g} s"
            instance.kill()

    def _watch(self, instance: _Instance) -> None:
        """An instance whose process ends fails what it was running. What was queued for
        it goes to a new instance, unless it never loaded the handler: then that fails
        too, and the next invocation tries a new instance."""
        instance.process.wait()
        instance.ended.set()
        instance.kill()  # what it started goes with it, as a Lambda sandbox's processes
        if instance.init_timer is not None:
            instance.init_timer.cancel()
        failure = instance.init_error or (
            _exited(instance.process)
            if instance.loaded.is_set()
            else _failed_to_start(instance.process)
        )
        instance.settled.set()
        with self._lock:
            for invocation in list(instance.running.values()):
                self._finish(instance, invocation, error=failure)
            queued = _take_all(instance.pending)
            if self._instance is instance and not self._stopped and instance.loaded.is_set():
                queued = self._hand_over(queued)
        for invocation in queued:
            self._finish(instance, invocation, error=failure)
        instance.pending.put(_STOP)  # for a poll the ended process left waiting
        local_server.stop(instance.server)

    def _hand_over(self, invocations: list[_Invocation]) -> list[_Invocation]:
        """Queue ``invocations`` on a live instance, starting one if the current one has
        ended; under the lock. Returns those it could not queue (the function stopped)."""
        if self._stopped or self._instance is None:
            return invocations
        if self._instance.ended.is_set():
            self._instance = self._launch()  # the last one ended: a cold start
        for invocation in invocations:
            self._instance.pending.put(invocation)
        return []

    # --- invoking ---------------------------------------------------------------------

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """The function's result for ``event``; raises InvocationFailed when it raised,
        timed out, or its instance could not start or died running it."""
        invocation = _Invocation(str(uuid.uuid4()), event)
        with self._lock:
            if self._hand_over([invocation]):
                raise InvocationFailed("the function is not running")
        # Set by its answer, its timeout, or its instance's end; the backstop only turns
        # a defect of this harness into a failure instead of a hang.
        if not invocation.done.wait(self.init_seconds + self.function.timeout_seconds + 30):
            raise InvocationFailed("the local Lambda lost the invocation")
        self._drain_log()
        if invocation.error:
            raise InvocationFailed(invocation.error)
        return invocation.result

    def log_lines(self) -> list[str]:
        """What the function wrote, as the log stream would hold it: all of it, or once it
        has written more than ``max_log_bytes``, its latest part (half of that or more)."""
        return self._kept()[1]

    def log_mark(self) -> int:
        """How many lines the function has written so far, kept or not (counted as
        ``log_lines`` counts them, without reading them)."""
        self._drain_log()
        with self._log_lock:
            partial = bool(self._log) and not self._log.endswith(b"\n")
            return self._dropped_lines + self._log.count(b"\n") + partial

    def log_since(self, mark: int) -> list[str]:
        """The lines written since ``mark``; led by LOG_TRUNCATED when some of them are
        no longer kept."""
        dropped, lines = self._kept()
        return [LOG_TRUNCATED, *lines] if mark < dropped else lines[mark - dropped :]

    def _kept(self) -> tuple[int, list[str]]:
        """How many lines were let go, and the lines kept, read together."""
        self._drain_log()
        with self._log_lock:
            dropped, text = self._dropped_lines, self._log.decode("utf-8", "replace")
        # Lines end with "\n" only: a runtime writes "\r" inside one log event.
        return dropped, text.removesuffix("\n").split("\n") if text else []

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

    def _pump_log(self, instance: _Instance) -> None:
        """Read the instance's output as it comes, so that a runtime never blocks on a
        full pipe; every read happens under the log's lock, so lines keep their order.
        Once the runtime has ended, what it wrote is read and the pipe let go: a process
        it left in a session of its own may hold the pipe open for ever."""
        stdout = instance.process.stdout
        assert stdout is not None
        ready = select.poll()  # not select(): a descriptor may be above 1023
        ready.register(stdout.fileno(), select.POLLIN | select.POLLHUP)
        while True:
            ended = instance.ended.is_set()
            ready.poll(_LOG_POLL_MS)
            with self._log_lock:
                if not self._read(stdout) or ended:
                    stdout.close()
                    return

    def _drain_log(self) -> None:
        # The runtimes write what the function logged before they post its result.
        instance = self._instance
        if instance is not None and instance.process.stdout is not None:
            with self._log_lock:
                self._read(instance.process.stdout)

    def _read(self, stdout: Any) -> bool:
        """Append what the pipe holds now; False once it is closed at the other end."""
        while True:
            try:
                chunk = os.read(stdout.fileno(), 65536)
            except BlockingIOError:
                return True
            except (OSError, ValueError):  # closed here
                return False
            if not chunk:
                return False
            self._log.extend(chunk)
            if len(self._log) > self.max_log_bytes:  # keep the latest half, whole lines
                start = len(self._log) - self.max_log_bytes // 2
                cut = self._log.find(b"\n", start) + 1 or start
                self._dropped_lines += self._log.count(b"\n", 0, cut)
                del self._log[:cut]

    def _finish(
        self, instance: _Instance, invocation: _Invocation, *, result: Any = None, error: str = ""
    ) -> None:
        instance.running.pop(invocation.request_id, None)
        if invocation.timer is not None:
            invocation.timer.cancel()
        if not invocation.done.is_set():
            invocation.result, invocation.error = result, error
            invocation.done.set()

    def _timed_out(self, instance: _Instance, invocation: _Invocation) -> None:
        if not invocation.done.is_set():
            self._finish(
                instance,
                invocation,
                error=f"Task timed out after {self.function.timeout_seconds} seconds",
            )
            instance.kill()  # Lambda ends a timed-out instance

    # --- the Lambda Runtime API, as a runtime calls it --------------------------------

    def next_invocation(
        self, instance: _Instance, asked_by: Callable[[], bool]
    ) -> _Invocation | None:
        """The next invocation for this instance, waiting for one while ``asked_by()``
        (the runtime that asked is still there); None once it, or the instance, ends."""
        instance.loaded.set()
        instance.settled.set()
        while True:
            try:
                invocation = instance.pending.get(timeout=0.05)
            except queue.Empty:
                if asked_by():
                    continue
                return None
            if invocation is _STOP:
                return None
            assert isinstance(invocation, _Invocation)
            if asked_by():
                break
            # The runtime that asked has ended: the invocation never ran.
            with self._lock:
                if self._hand_over([invocation]):
                    self._finish(instance, invocation, error="the function is not running")
            return None
        instance.running[invocation.request_id] = invocation
        timeout = self.function.timeout_seconds
        invocation.timer = threading.Timer(timeout, self._timed_out, args=(instance, invocation))
        invocation.timer.daemon = True
        invocation.timer.start()
        return invocation


class _RuntimeApi:
    """The Lambda Runtime API of one instance, as the runtime interface client calls it."""

    def __init__(self, function: LocalLambda, instance: _Instance) -> None:
        self.function = function
        self.instance = instance

    def __call__(
        self, environ: dict[str, Any], start_response: local_server.StartResponse
    ) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if method == "GET" and path == f"{_API}/invocation/next":
            return self._next(start_response, environ.get("werkzeug.socket"))
        parts = path.removeprefix(f"{_API}/").split("/")
        if method == "POST" and parts == ["init", "error"]:
            self.instance.init_error = f"the function failed to start: {_error_text(body)}"
            return _answer(start_response, 202)
        if method == "POST" and len(parts) == 3 and parts[0] == "invocation":
            invocation = self.instance.running.get(parts[1])
            if invocation is None:
                return _answer(start_response, 400)
            if parts[2] == "response":
                self.function._finish(self.instance, invocation, result=json.loads(body))
                return _answer(start_response, 202)
            if parts[2] == "error":
                error = body.decode("utf-8", "replace")
                self.function._finish(self.instance, invocation, error=error)
                return _answer(start_response, 202)
        return _answer(start_response, 404)

    def _next(self, start_response: local_server.StartResponse, connection: Any) -> Iterable[bytes]:
        invocation = self.function.next_invocation(self.instance, lambda: _open(connection))
        if invocation is None:
            return _answer(start_response, 500)
        deadline_ms = int((time.time() + self.function.function.timeout_seconds) * 1000)
        region = self.function._environment.get("AWS_REGION", "us-east-1")
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                (
                    "Lambda-Runtime-Invoked-Function-Arn",
                    f"arn:aws:lambda:{region}:000000000000:function:{self.function.name}",
                ),
            ],
        )
        return [json.dumps(invocation.event).encode()]


def _open(connection: socket.socket | None) -> bool:
    """Whether the peer of ``connection`` is still there: a process that ended has closed
    its end (the kernel does it as the process exits), so a read would find no bytes."""
    if connection is None:
        return True
    try:
        return connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def _take_all(pending: queue.Queue[Any]) -> list[_Invocation]:
    taken: list[_Invocation] = []
    while True:
        try:
            waiting = pending.get_nowait()
        except queue.Empty:
            return taken
        if isinstance(waiting, _Invocation):
            taken.append(waiting)


def _exited(process: subprocess.Popen[bytes]) -> str:
    return f"the function's runtime exited with status {process.returncode}"


def _failed_to_start(process: subprocess.Popen[bytes]) -> str:
    return f"the function failed to start: its runtime exited with status {process.returncode}"


def _error_text(body: bytes) -> str:
    """A runtime's error document as one readable line: "Type: message"."""
    text = body.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorType', 'Error')}: {document['errorMessage']}"
    return text


def _answer(start_response: local_server.StartResponse, status: int) -> Iterable[bytes]:
    start_response(f"{status} Status", [("Content-Type", "application/json")])
    return [b"{}"]
