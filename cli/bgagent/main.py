"""Entry point of the ``bgagent`` command."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NoReturn, TextIO

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from bgagent.auth import login
from bgagent.config import Config, config_dir, load_config, save_config
from bgagent.errors import CliError
from bgagent.trace_command import download_trace

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


class _Parser(argparse.ArgumentParser):
    """Writes usage and errors to the stream ``run`` was given."""

    stderr: TextIO = sys.stderr

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        if not message:
            return
        stdout: TextIO = sys.stdout
        if file is stdout:
            stdout.write(message)
        else:
            self.stderr.write(message)

    def error(self, message: str) -> NoReturn:
        self.print_usage(self.stderr)
        self.exit(2, f"bgagent: error: {message}\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=28)


def build_parser(stderr: TextIO) -> argparse.ArgumentParser:
    _Parser.stderr = stderr
    parser = _Parser(
        prog="bgagent",
        description="Command line of the background coding agent.",
        epilog=(
            "first time:  bgagent configure --api-url URL --region R --user-pool-id P "
            "--client-id C\n"
            "             bgagent login\n"
            "a trace:     bgagent trace download TASK_ID | jq -s .\n"
            "             bgagent trace download TASK_ID -o trace.jsonl.gz"
        ),
        formatter_class=_formatter,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", parser_class=_Parser
    )

    configure = commands.add_parser(
        "configure",
        help="save the API endpoint and Cognito settings",
        description="Save the API endpoint and the Cognito user pool settings to config.json.",
        formatter_class=_formatter,
    )
    configure.add_argument("--api-url", required=True, help="base URL of the REST API")
    configure.add_argument("--region", required=True, help="AWS region of the user pool")
    configure.add_argument("--user-pool-id", required=True, help="Cognito user pool id")
    configure.add_argument("--client-id", required=True, help="Cognito app client id")

    login = commands.add_parser(
        "login",
        help="sign in and cache your tokens",
        description=(
            "Sign in with your platform username and password (Cognito).\n"
            "The tokens are cached in credentials.json, readable by you only,\n"
            "and refreshed before they expire."
        ),
        formatter_class=_formatter,
    )
    login.add_argument("--username", help="your username (asked for if not given)")
    login.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from standard input instead of prompting",
    )

    trace = commands.add_parser("trace", help="work with task traces", formatter_class=_formatter)
    trace_commands = trace.add_subparsers(
        dest="trace_command", required=True, title="commands", parser_class=_Parser
    )
    download = trace_commands.add_parser(
        "download",
        help="download a task's trace",
        description=(
            "Download the trajectory of a task run with --trace.\n\n"
            "By default the JSON Lines go to stdout: pipe them on, e.g. to `jq -s .`.\n"
            "With -o, the gzip artifact is saved exactly as stored."
        ),
        formatter_class=_formatter,
    )
    download.add_argument("task_id", metavar="TASK_ID", help="the task whose trace to download")
    download.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="save the raw .jsonl.gz artifact to FILE"
    )
    download.add_argument(
        "-f", "--force", action="store_true", help="replace FILE if it already exists"
    )
    return parser


def run(
    argv: Sequence[str] | None = None,
    *,
    stdout: BinaryIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one command; returns the exit status. Expected failures print one line."""
    out = stdout if stdout is not None else sys.stdout.buffer
    err = stderr if stderr is not None else sys.stderr
    env = environ if environ is not None else os.environ
    try:
        args = build_parser(err).parse_args(argv)
        if args.command == "configure":
            path = save_config(
                config_dir(env),
                Config(args.api_url.rstrip("/"), args.region, args.user_pool_id, args.client_id),
            )
            print(f"Saved {path}", file=err)
            return 0
        if args.command == "login":
            return _login(args, env, stdin if stdin is not None else sys.stdin, err)
        return download_trace(
            args.task_id, args.output, force=args.force, stdout=out, stderr=err, environ=env
        )
    except CliError as failure:
        print(f"bgagent: {failure}", file=err)
        return failure.exit_code
    except KeyboardInterrupt:
        print("bgagent: interrupted; nothing was saved.", file=err)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_BROKEN_PIPE  # the reader went away (`| head`): nothing to report


def _login(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO, err: TextIO) -> int:
    directory = config_dir(env)
    config = load_config(directory)  # before asking for anything: it may be missing
    username = args.username or _ask("Username: ", stdin, err)
    if args.password_stdin:
        password = stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ", stream=err)
    login(config, directory, username.strip(), password)
    print(f"Signed in as {username.strip()}.", file=err)
    return 0


def _ask(prompt: str, stdin: TextIO, err: TextIO) -> str:
    print(prompt, end="", file=err, flush=True)
    return stdin.readline().strip()


def main() -> NoReturn:
    status = run()
    if status == EXIT_BROKEN_PIPE:
        # Python would report the broken pipe again when flushing at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
