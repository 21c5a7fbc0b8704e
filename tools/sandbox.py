"""A local sandbox of the trace round trip, to try it by hand:
``python -m tools.sandbox`` (``mise run sandbox``).

Starts the local stack (``LocalStack.running``: moto, the S3 gate, the handler in a
local Lambda, the API gateway) on 127.0.0.1; creates the stack's
bucket, table and user pool, two users and a finished traced task; writes a CLI
configuration for each user in a directory of its own; prints the commands to
try. Ctrl-C stops it. Nothing leaves this machine.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

from bgagent.config import Config, save_config
from testkit.agent_runs import agent_run
from testkit.aws.endpoint import REGION
from testkit.settings import ENV_API_URL, ENV_CLIENT_ID, ENV_USER_POOL_ID
from testkit.stack.local import LocalStack

USERS = {"alice": "Alice-Sandbox-Pass-1", "bob": "Bob-Sandbox-Pass-1"}
COGNITO_ENDPOINT_ENV = "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.sandbox",
        description="Run the trace round trip locally (moto, S3 gate, API gateway) to try "
        "bgagent by hand. Ctrl-C stops it.",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(".bgagent-sandbox"),
        help="where the users' CLI configurations are written (default: ./.bgagent-sandbox)",
    )
    args = parser.parse_args(argv)
    workdir = args.dir.resolve()

    with LocalStack.running() as running:
        users = {name: running.add_user(name, password) for name, password in USERS.items()}
        traced, untraced = _task_id(), _task_id()
        for task_id, trace in ((traced, True), (untraced, False)):
            running.resources.run_task(task_id, users["alice"].sub, agent_run(5), trace=trace)
        pool = running.resources.pool
        for name in users:
            save_config(
                workdir / name, Config(running.resources.api_url, REGION, pool.id, pool.client_id)
            )
        assert running.aws.endpoint is not None
        print(_instructions(workdir, running.aws.endpoint, traced, untraced), flush=True)
        print(_suite_instructions(running), flush=True)
        print("Ctrl-C stops the sandbox.", flush=True)
        _wait_for_interrupt()
    print("Sandbox stopped.", flush=True)
    return 0


def _instructions(workdir: Path, moto_endpoint: str, traced: str, untraced: str) -> str:
    def as_user(name: str, command: str) -> str:
        return f"BGAGENT_CONFIG_DIR={shlex.quote(str(workdir / name))} {command}"

    return "\n".join(
        [
            "Sandbox ready: moto, the S3 gate, the handler in a local Lambda and the API "
            "gateway run on 127.0.0.1.",
            "",
            "In another shell (bgagent is in this project's .venv/bin):",
            "bgagent login must reach the local user pool:",
            f"  export {COGNITO_ENDPOINT_ENV}={moto_endpoint}",
            "",
            f"Sign in as alice (password {USERS['alice']}) and bob (password {USERS['bob']}):",
            "  " + as_user("alice", "bgagent login --username alice"),
            "  " + as_user("bob", "bgagent login --username bob"),
            "",
            f"Alice's traced task {traced}:",
            "  " + as_user("alice", f"bgagent trace download {traced}"),
            "  " + as_user("alice", f"bgagent trace download {traced} -o trace.jsonl.gz"),
            "Bob may not download it:",
            "  " + as_user("bob", f"bgagent trace download {traced}"),
            f"Alice's task {untraced} ran without --trace:",
            "  " + as_user("alice", f"bgagent trace download {untraced}"),
            "",
        ]
    )


def _task_id() -> str:
    return f"task-{uuid.uuid4().hex[:16]}"


def _suite_instructions(running: LocalStack) -> str:
    """The environment that points the acceptance suite at this sandbox, as at a
    deployed stack: the suite then drives an API it did not start."""
    resources = running.resources
    exports = {
        ENV_API_URL: resources.api_url,
        ENV_USER_POOL_ID: resources.pool.id,
        ENV_CLIENT_ID: resources.pool.client_id,
        # The suite stands in for the agent runtime: its environment, and its role.
        **running.resources.agent.environment,
    }
    lines = "\n".join(f"  export {name}={value}" for name, value in exports.items())
    return (
        "\nTo run the acceptance suite against this sandbox, as against a deployed stack:\n"
        f"{lines}\n  .venv/bin/pytest -m integration features/\n"
    )


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops it even when started by a script in the background, which makes a
    # child inherit SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
