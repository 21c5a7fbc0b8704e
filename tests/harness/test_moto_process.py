"""moto's server in its own process: it serves once it says so, and it ends with the
process that started it, stopped or killed."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
from typing import Any

import moto
import pytest
import requests

from testkit.aws import local_server
from testkit.aws.endpoint import PROJECT_ROOT, MotoServer, listening_socket
from testkit.aws.moto_server import _service_of, incompatibility


def test_its_ports_are_known_at_once_and_a_request_sent_before_it_serves_is_answered() -> None:
    moto = MotoServer.launch()
    try:
        assert moto.endpoint is not None
        assert not moto._served
        # Queued on the port bound before the process started, answered once it serves.
        answer = requests.get(f"{moto.gates.control}/refusals", timeout=60)
        assert answer.json() == []
    finally:
        moto.stop()


def test_once_ready_it_answers_and_once_stopped_it_is_gone() -> None:
    moto = MotoServer.launch()
    assert moto.ready() is moto
    assert moto.endpoint is not None
    pid = moto._process.pid if moto._process else 0
    assert moto.client("s3").list_buckets()["Buckets"] == []
    moto.stop()
    with pytest.raises(ProcessLookupError):  # gone, and reaped
        os.kill(pid, 0)
    try:
        requests.get(moto.endpoint, timeout=5)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the stopped server still answers")
    moto.stop()  # a second stop does nothing


def test_it_ends_when_the_process_that_started_it_is_killed() -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from testkit.aws.endpoint import MotoServer
                moto = MotoServer.launch().ready()
                print(moto._process.pid, flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    pidfd = None
    try:
        assert starter.stdout is not None
        moto_pid = int(starter.stdout.readline())
        pidfd = os.pidfd_open(moto_pid)  # before the kill: the pid cannot be reused under it
        starter.send_signal(signal.SIGKILL)
        # Its stdin closed with the starter: wait for its exit (an event, not a delay).
        ended, _, _ = select.select([pidfd], [], [], 30)
        if not ended:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        assert ended, "moto's server outlived the process that started it"
    finally:
        starter.kill()
        starter.wait()
        if starter.stdout is not None:
            starter.stdout.close()
        if pidfd is not None:
            os.close(pidfd)


def test_a_server_that_never_starts_says_so() -> None:
    exits_at_once = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.exit(3)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    failed = MotoServer(None, _process=exits_at_once)
    with pytest.raises(RuntimeError) as error:
        failed.ready()
    assert str(error.value) == "moto's server did not start (exit status 3)"
    assert failed.endpoint is None
    failed.stop()  # already stopped: nothing to do


def test_requests_go_to_their_service_by_what_they_say() -> None:
    signed = "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/{}/aws4_request, Signature=x"
    assert _service_of({"HTTP_AUTHORIZATION": signed.format("s3")}) == "s3"
    assert _service_of({"HTTP_AUTHORIZATION": signed.format("dynamodb")}) == "dynamodb"
    target = {"HTTP_X_AMZ_TARGET": "AWSCognitoIdentityProviderService.InitiateAuth"}
    assert _service_of(target) == "cognito-idp"  # unsigned: no scope to read
    dynamodb = {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}
    assert _service_of({**dynamodb, "HTTP_AUTHORIZATION": signed.format("s3")}) == "dynamodb"
    # Anything else is left to moto's own lookup.
    assert _service_of({"HTTP_AUTHORIZATION": signed.format("sqs")}) == ""
    assert _service_of({"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"}) == ""
    presigned = "X-Amz-Credential=AKID%2F20261125%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=x"
    assert _service_of({"QUERY_STRING": presigned}) == "s3"
    assert _service_of({"QUERY_STRING": "X-Amz-Credential=AKID%2F20261125"}) == ""
    assert _service_of({"HTTP_AUTHORIZATION": "AWS AKID:signature"}) == ""


def test_the_installed_moto_has_what_the_server_is_built_from() -> None:
    assert incompatibility() == ""


def test_a_moto_without_them_is_named_with_what_it_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server import werkzeug_app

    monkeypatch.delattr(werkzeug_app.DomainDispatcherApplication, "get_application")
    monkeypatch.delattr(werkzeug_app, "create_backend_app")
    said = incompatibility()
    assert said.startswith(f"moto {moto.__version__} lacks what the suite's moto server")
    assert "create_backend_app, DomainDispatcherApplication.get_application;" in said


def test_the_server_of_a_moto_without_them_stops_with_that_line() -> None:
    script = (
        "from moto.moto_server import werkzeug_app\n"
        "del werkzeug_app.create_backend_app\n"
        "from testkit.aws import moto_server\n"
        "moto_server.main()\n"
    )
    done = _ended_server("-c", script)
    assert len(done.stderr.splitlines()) == 1
    assert "lacks what the suite's moto server is built from: create_backend_app;" in done.stderr


@pytest.mark.parametrize("bound_before", [True, False])
def test_a_keep_alive_server_sends_each_part_of_an_answer_at_once(bound_before: bool) -> None:
    """TCP_NODELAY on every connection it accepts, on a port it bound or one handed to
    it: else the second write of an answer waits for the client's delayed ACK."""
    seen: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        connection = environ[local_server.SOCKET_KEY]
        seen.append(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        start_response("200 OK", [("Content-Length", "2")])
        return [b"o", b"k"]

    listening = socket.create_server(("127.0.0.1", 0)) if bound_before else None
    server = local_server.KeepAliveServer(app, listening=listening)
    try:
        assert requests.get(f"http://127.0.0.1:{server.port}/", timeout=10).text == "ok"
    finally:
        server.stop()
    assert seen == [1]


def test_the_user_pools_key_is_moto_s_own_imported_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Built from its known prime, the key signs tokens that moto's key, imported as
    joserfc imports it, verifies; and every pool gets the one key."""
    from joserfc import jwk, jwt
    from moto.cognitoidp import models

    from testkit.aws.moto_server import _one_key_for_every_pool

    monkeypatch.setattr(models, "jwk", models.jwk)  # put back after the test
    resource = models.load_resource("cognitoidp/resources/jwks-private.json")
    as_joserfc_imports_it = jwk.RSAKey.import_key(resource)
    _one_key_for_every_pool()
    key = models.jwk.RSAKey.import_key(resource)
    assert models.jwk.RSAKey.import_key(dict(resource)) is key
    token = jwt.encode({"kid": "dummy", "alg": "RS256"}, {"sub": "alice"}, key)
    assert jwt.decode(token, as_joserfc_imports_it).claims == {"sub": "alice"}
    other = jwk.RSAKey.generate_key(2048).as_dict(private=True)
    assert models.jwk.RSAKey.import_key(other).as_dict(private=True) == other


def test_a_server_that_fails_once_its_control_serves_still_ends() -> None:
    """The control's threads outlive a failure of the rest of the start: the process
    ends all the same, with the failure on stderr, and never says it serves."""
    done = _ended_server("-m", "testkit.aws.moto_server", "--listen", "s3=987654")
    assert "OSError" in done.stderr


def _ended_server(*args: str) -> subprocess.CompletedProcess[str]:
    """moto's server started with ``args``, that ended without ever saying it serves."""
    done = subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (1, "")
    return done


def test_a_connection_queued_before_its_server_starts_sends_each_part_at_once() -> None:
    """The ports handed to moto's process: a layer may connect before the process
    serves (the function's warm-up does), and that connection is kept alive."""
    listening = listening_socket()
    with listening, socket.create_connection(listening.getsockname()[:2]):
        accepted, _ = listening.accept()
        with accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
