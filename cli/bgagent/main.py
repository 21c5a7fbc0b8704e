"""Entry point of the ``bgagent`` command."""

from __future__ import annotations

import argparse
import contextlib
import errno
import getpass
import io
import os
import select
import signal
import stat
import sys
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, NoReturn, TextIO

from bgagent.auth import login
from bgagent.config import Config, check_config, config_dir, load_config, save_config
from bgagent.errors import CliError

EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
EXIT_SOFTWARE = 70  # sysexits' EX_SOFTWARE: a defect of bgagent


class _Parser(argparse.ArgumentParser):
    """Writes help to the stdout and usage errors to the stderr ``run`` was given
    (argparse itself writes to ``sys``'s); takes no abbreviations (``--password`` must
    never be read as ``--password-stdin``)."""

    def __init__(self, *args: Any, out: _Output, err: TextIO, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)
        self.out, self.err = out, err

    def print_help(self, file: object = None) -> None:
        self.out.write(self.format_help().encode())
        self.out.flush()

    def print_usage(self, file: object = None) -> None:
        self.err.write(self.format_usage())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.err.write(message)
        raise SystemExit(status)

    def error(self, message: str) -> NoReturn:
        self.print_usage()
        self.exit(2, f"bgagent: error: {message}\n")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=28)


def build_parser(out: _Output, err: TextIO) -> argparse.ArgumentParser:
    streams: dict[str, Any] = {"out": out, "err": err}
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
        **streams,
    )
    commands = parser.add_subparsers(
        dest="command", required=True, title="commands", parser_class=_Parser
    )

    configure = commands.add_parser(
        "configure",
        **streams,
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
        **streams,
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

    trace = commands.add_parser(
        "trace", help="work with task traces", formatter_class=_formatter, **streams
    )
    trace_commands = trace.add_subparsers(
        dest="trace_command", required=True, title="commands", parser_class=_Parser
    )
    download = trace_commands.add_parser(
        "download",
        **streams,
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
        "-o",
        "--output",
        metavar="FILE",
        help="save the raw .jsonl.gz artifact to FILE (- for stdout)",
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
    """Run one command; returns the exit status. Every failure prints one line."""
    raw_out = stdout if stdout is not None else _process_stdout()
    out = _Output(raw_out)
    err = stderr if stderr is not None else (sys.stderr or _Discard())  # closed: say nothing
    env = environ if environ is not None else os.environ
    try:
        args = build_parser(out, err).parse_args(argv)
        if args.command == "configure":
            config = Config(
                args.api_url.rstrip("/"), args.region, args.user_pool_id, args.client_id
            )
            check_config(config)
            path = save_config(config_dir(env), config)
            print(f"Saved {path}", file=err)
            return 0
        if args.command == "login":
            given_stdin = stdin if stdin is not None else sys.stdin
            if given_stdin is None:  # started with descriptor 0 closed
                given_stdin = io.StringIO()
            return _login(args, env, given_stdin, err)
        # Imported once the command is known: requests is slow to import, and
        # signals reach this point already handled (see main).
        from bgagent import trace_command

        return trace_command.download_trace(
            args.task_id,
            args.output,
            force=args.force,
            stdout=out,
            stdout_is_terminal=_is_terminal(raw_out),
            stdout_is_file=_is_regular_file(raw_out),
            stderr=err,
            stderr_is_terminal=_is_terminal(err),
            environ=env,
        )
    except CliError as failure:
        print(f"bgagent: {failure}", file=err)
        return failure.exit_code
    except KeyboardInterrupt:
        print("bgagent: interrupted; nothing was saved.", file=err)
        return EXIT_INTERRUPTED
    except Terminated as signalled:
        print("bgagent: stopped by a signal; nothing was saved.", file=err)
        return 128 + signalled.signum
    except BrokenPipeError:
        return EXIT_BROKEN_PIPE  # the reader went away (`| head`): nothing to report
    except SystemExit as done:  # argparse: usage errors (2) and --help (0)
        return done.code if isinstance(done.code, int) else 2
    except Exception as bug:  # a defect: still one line, and what to report
        if env.get("BGAGENT_DEBUG"):
            raise
        print(
            f"bgagent: unexpected error ({type(bug).__name__}); please report it "
            "(BGAGENT_DEBUG=1 shows the details).",
            file=err,
        )
        return EXIT_SOFTWARE


def _login(args: argparse.Namespace, env: Mapping[str, str], stdin: TextIO, err: TextIO) -> int:
    directory = config_dir(env)
    config = load_config(directory)  # before asking for anything: it may be missing
    username = args.username or _ask("Username: ", stdin, err)
    if not username.strip():
        raise CliError("No username was given.")
    if args.password_stdin:
        password = stdin.readline().rstrip("\n")
    elif _has_terminal():
        try:
            password = getpass.getpass("Password: ", stream=err)
        except EOFError:
            print(file=err)  # the error goes on a line of its own, not after the prompt
            raise CliError("No password was given (end of input).") from None
    else:  # no terminal to read it without echo: standard input, without getpass' warning
        password = _ask("Password: ", stdin, err)
        if not password:
            raise CliError("No password was given (end of input).")
    login(config, directory, username.strip(), password)
    print(f"Signed in as {username.strip()}.", file=err)
    return 0


def _has_terminal() -> bool:
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _ask(prompt: str, stdin: TextIO, err: TextIO) -> str:
    print(prompt, end="", file=err, flush=True)
    answer = stdin.readline()
    if not answer:
        print(file=err)  # end of input: whatever follows starts a line of its own
    return answer.strip()


# Every signal whose default action ends the process: each unwinds like Ctrl-C
# instead, so that a download to a file never leaves its hidden file behind.
TERMINATING_SIGNALS = (
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGALRM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGVTALRM,
    signal.SIGPROF,
    signal.SIGXCPU,
)


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like Ctrl-C, so that nothing half-written stays."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    # The first signal unwinds; any that follow (a burst of them) must not interrupt
    # the cleanup it starts.
    for other in (*TERMINATING_SIGNALS, signal.SIGINT):
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


class _Output:
    """Standard output as the commands write to it: a write that fails (a full disk, a
    closed descriptor) is one line on stderr, never a traceback or text in the data."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw

    def write(self, data: bytes) -> int:
        """All of ``data``, or CliError: a short write (a file size limit, a full
        filesystem, a non-blocking pipe) never silently drops bytes."""
        view = memoryview(data)
        try:
            while view:
                try:
                    written = self._raw.write(view)
                except BlockingIOError as busy:  # stdout left non-blocking by another program
                    written = busy.characters_written
                    _wait_writable(self._raw)
                if written is None:
                    _wait_writable(self._raw)
                    continue
                if written == 0:
                    raise OSError(errno.EFBIG, "the output accepts no more bytes")
                view = view[written:]
        except BrokenPipeError:
            raise
        except OSError as err:
            raise CliError(f"Cannot write to standard output: {err.strerror}.") from None
        return len(data)

    def flush(self) -> None:
        try:
            self._raw.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            raise CliError(f"Cannot write to standard output: {err.strerror}.") from None


def _wait_writable(stream: Any) -> None:
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    select.select([], [descriptor], [])


class _ClosedStdout:
    def write(self, _: bytes) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def flush(self) -> None:
        pass


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)


def _is_terminal(stream: TextIO | BinaryIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):  # closed, detached, or no such method
        return False


def _is_regular_file(stream: BinaryIO) -> bool:
    """Whether the stream is a file (`> trace.jsonl`): not a terminal, not a pipe whose
    reader (`| less`, `| cat`) may show it on the terminal, not a stream in memory."""
    try:
        return stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _process_stdout() -> BinaryIO:
    if sys.stdout is None:  # started with descriptor 1 closed
        return _ClosedStdout()  # type: ignore[return-value]
    return sys.stdout.buffer


def main() -> NoReturn:
    for signum in TERMINATING_SIGNALS:
        signal.signal(signum, _terminate)
    status = run()
    if sys.stdout is not None:
        try:
            sys.stdout.flush()
        except OSError:
            status = status or EXIT_SOFTWARE
        if status != 0:
            # Whatever is still buffered for a broken or full stdout would be reported
            # again by Python at exit, as a traceback-like message.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
