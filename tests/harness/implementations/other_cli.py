"""Another team's trace CLI, for the tests: honest and working, it differs from bgagent
where another implementation may (a runtime's warning on stderr at every run; settings
and session files of its own in OTHERCLI_HOME, else BGAGENT_CONFIG_DIR; `login
--password` only; a fixed 120 s download timeout; Ctrl-C ends with 1; no checksum; its
own words) and has one defect on purpose: `-o FILE` is written in place as bytes arrive,
so a broken download leaves a partial file behind."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import boto3
import requests
import urllib3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DOWNLOAD_TIMEOUT = 120  # seconds; fixed, no setting changes it
API_TIMEOUT = 30
CHUNK = 64 * 1024
EXIT_BROKEN_PIPE = 141


class Failure(Exception):
    """An expected failure: its message is the one line the CLI says."""


def home() -> Path:
    folder = os.environ.get("OTHERCLI_HOME") or os.environ.get("BGAGENT_CONFIG_DIR")
    if not folder:
        raise Failure("OTHERCLI_HOME is not set; point it at a folder for this CLI's files")
    return Path(folder)


def read_json(name: str, missing: str) -> dict[str, Any]:
    try:
        value = json.loads((home() / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise Failure(missing) from None
    if not isinstance(value, dict):
        raise Failure(missing)
    return value


def write_json(name: str, value: dict[str, Any]) -> None:
    folder = home()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(value, out)


def settings() -> dict[str, Any]:
    found = read_json("settings.json", "not configured; run configure first")
    if isinstance(found.get("apiEndpoint"), str) and isinstance(found.get("cognito"), dict):
        return found
    raise Failure("settings.json is damaged; run configure again")


Flow = Literal["USER_PASSWORD_AUTH", "REFRESH_TOKEN_AUTH"]


def cognito_auth(config: dict[str, Any], flow: Flow, parameters: dict[str, str]) -> dict[str, Any]:
    cognito = config["cognito"]
    client = boto3.client(
        "cognito-idp", region_name=cognito["region"], config=Config(signature_version=UNSIGNED)
    )
    try:
        answer = client.initiate_auth(
            AuthFlow=flow, ClientId=cognito["appClientId"], AuthParameters=parameters
        )
    except ClientError as err:
        raise Failure(f"sign-in refused: {err.response['Error'].get('Message', err)}") from None
    except BotoCoreError as err:
        raise Failure(f"cannot reach Cognito: {err}") from None
    result = answer.get("AuthenticationResult")
    if not result:
        raise Failure(f"sign-in needs {answer.get('ChallengeName')}, which this CLI cannot do")
    return dict(result)


def save_session(result: dict[str, Any], refresh_token: str) -> dict[str, Any]:
    session = {
        "idToken": result["IdToken"],
        "refreshToken": result.get("RefreshToken", refresh_token),
        "expiresAt": int(time.time()) + int(result.get("ExpiresIn", 3600)),
    }
    write_json("session.json", session)
    return session


def id_token(config: dict[str, Any]) -> str:
    session = read_json("session.json", "not logged in; run login first")
    token, expires_at = session.get("idToken"), session.get("expiresAt")
    if isinstance(token, str) and isinstance(expires_at, int) and time.time() < expires_at:
        return token
    refresh = session.get("refreshToken")  # expired, or a format not its own: refresh
    if not isinstance(refresh, str):
        raise Failure("not logged in; run login first")
    result = cognito_auth(config, "REFRESH_TOKEN_AUTH", {"REFRESH_TOKEN": refresh})
    return str(save_session(result, refresh)["idToken"])


def configure(args: argparse.Namespace) -> None:
    cognito = {"region": args.region, "userPoolId": args.user_pool_id}
    cognito["appClientId"] = args.client_id
    write_json("settings.json", {"apiEndpoint": args.api_url, "cognito": cognito})
    print(f"Settings saved in {home() / 'settings.json'}", file=sys.stderr)


def login(args: argparse.Namespace) -> None:
    parameters = {"USERNAME": args.username, "PASSWORD": args.password}
    result = cognito_auth(settings(), "USER_PASSWORD_AUTH", parameters)
    save_session(result, "")
    print(f"Logged in as {args.username}", file=sys.stderr)


def api_failure(task: str, resp: requests.Response) -> Failure:
    try:
        body = resp.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("code") == "TRACE_NOT_AVAILABLE":
        return Failure(
            f"task {task} has no trace: it was not submitted with --trace, or its trace "
            "upload may not have completed yet; to record one, resubmit it with `submit --trace`"
        )
    if isinstance(error, dict):
        return Failure(f"{error.get('message')} ({error.get('code')})")
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        hint = ". Run login again." if resp.status_code == 401 else ""
        return Failure(f"HTTP {resp.status_code}: {message}{hint}")
    return Failure(f"HTTP {resp.status_code}")


def trace_url(config: dict[str, Any], task: str) -> str:
    url = f"{config['apiEndpoint'].rstrip('/')}/tasks/{quote(task, safe='')}/trace"
    headers = {"Authorization": id_token(config)}
    try:
        resp = requests.get(url, headers=headers, timeout=API_TIMEOUT)
    except requests.RequestException as err:
        raise Failure(f"cannot reach the API: {type(err).__name__}") from None
    if not 200 <= resp.status_code < 300:
        raise api_failure(task, resp)
    try:
        link = resp.json()["data"]["url"]
    except (ValueError, KeyError, TypeError):
        link = None
    if not isinstance(link, str):
        raise Failure("the API answered without a download link")
    return link


def download(args: argparse.Namespace) -> None:
    config = settings()
    if args.output and os.path.exists(args.output) and not args.force:
        raise Failure(f"{args.output} already exists (use --force)")
    link = trace_url(config, args.task_id)
    # Deliberately not atomic: the file is emptied now and written as bytes arrive.
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    gunzip = None if args.output else zlib.decompressobj(31)
    deadline = time.monotonic() + DOWNLOAD_TIMEOUT
    try:
        resp = requests.get(link, stream=True, timeout=DOWNLOAD_TIMEOUT)
        if not 200 <= resp.status_code < 300:
            raise Failure(
                f"storage answered HTTP {resp.status_code}; the link may have expired, "
                "run the command again"
            )
        for chunk in resp.raw.stream(CHUNK, decode_content=False):
            if time.monotonic() > deadline:
                raise Failure(f"download timed out after {DOWNLOAD_TIMEOUT} s")
            while gunzip is not None and chunk:
                out.write(gunzip.decompress(chunk))
                chunk = gunzip.unused_data if gunzip.eof else b""
                if chunk:  # another gzip member follows
                    gunzip = zlib.decompressobj(31)
            if gunzip is None:
                out.write(chunk)
            out.flush()
        if gunzip is not None and not gunzip.eof:
            raise Failure("trace is corrupt or not gzipped")
    except zlib.error:
        raise Failure("trace is corrupt or not gzipped") from None
    except (requests.Timeout, urllib3.exceptions.TimeoutError):
        raise Failure(f"download timed out after {DOWNLOAD_TIMEOUT} s") from None
    except (
        requests.ConnectionError,
        requests.exceptions.ChunkedEncodingError,
        urllib3.exceptions.ProtocolError,
        http.client.IncompleteRead,
    ):
        raise Failure("download failed: connection lost") from None
    finally:
        if args.output:
            out.close()
    if args.output:
        print(f"Saved trace to {args.output}", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="othercli", description="Download task traces.")
    commands = top.add_subparsers(dest="command", required=True)
    conf = commands.add_parser("configure", help="save the API and Cognito settings")
    for option in ("--api-url", "--region", "--user-pool-id", "--client-id"):
        conf.add_argument(option, required=True)
    conf.set_defaults(run=configure)
    sign_in = commands.add_parser("login", help="sign in with Cognito")
    sign_in.add_argument("--username", required=True)
    sign_in.add_argument("--password", required=True)
    sign_in.set_defaults(run=login)
    trace = commands.add_parser("trace", help="task traces").add_subparsers(
        dest="action", required=True
    )
    get = trace.add_parser("download", help="print a task's trace, or save it with -o")
    get.add_argument("task_id")
    get.add_argument("-o", "--output", metavar="FILE")
    get.add_argument("--force", action="store_true", help="replace an existing FILE")
    get.set_defaults(run=download)
    return top


def main() -> int:
    args = parser().parse_args()
    # As Node 20 with the AWS SDK warns on every run: a line that says nothing of the run.
    print(
        f"(node:{os.getpid()}) NodeVersionSupportWarning: this SDK will soon need Node 22",
        file=sys.stderr,
    )
    try:
        args.run(args)
        return 0
    except Failure as failure:
        print(f"error: {failure}", file=sys.stderr)
    except KeyboardInterrupt:
        print("error: cancelled", file=sys.stderr)
    except BrokenPipeError:  # stdout closed by its reader: end quietly, as after SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as err:
        detail = " ".join(str(err).split())
        print(f"error: {type(err).__name__}: {detail}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
