"""What the trace storage says when it does not hand over the trace, and what the CLI
then tells the user: S3's own reason, never a guess; a retry where S3 asks for one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgagent import download

EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message><X-Amz-Expires>900</X-Amz-Expires>"
    b"<Expires>2025-01-01T00:15:00Z</Expires><ServerTime>2025-01-01T00:16:00Z</ServerTime>"
    b"</Error>"
)


def s3_error(code: str, message: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


XML = {"Content-Type": "application/xml"}
SLOW_DOWN = (503, s3_error("SlowDown", "Please reduce your request rate."), XML)
INTERNAL = (
    500,
    s3_error("InternalError", "We encountered an internal error. Please try again."),
    XML,
)


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Retries without waiting: the pauses the CLI would have taken, recorded."""
    pauses: list[float] = []
    monkeypatch.setattr(download, "_pause", pauses.append, raising=False)
    return pauses


def test_a_link_that_expired_says_so(bgagent, backend, tmp_path: Path) -> None:
    backend.object_answers = [(403, EXPIRED, XML)]
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The trace storage answered HTTP 403. The link may have expired "
        "(links last 15 minutes): run the command again for a new one.\n",
    )
    assert backend.object_requests == 1  # an expired link is never tried again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


EXPIRED_LINE = (
    "The trace storage answered HTTP 403. The link may have expired (links last 15 minutes): "
    "run the command again for a new one."
)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        # Every 403 in the contract's words: whatever S3's reason, running the command
        # again for a new link is what a user can do.
        ((403, s3_error("AccessDenied", "Access Denied"), XML), EXPIRED_LINE),
        ((403, s3_error("AccessDenied", "Request is not yet valid"), XML), EXPIRED_LINE),
        (
            (403, s3_error("SignatureDoesNotMatch", "The request signature we calculated"), XML),
            EXPIRED_LINE,
        ),
        ((403, b"", {}), EXPIRED_LINE),
        (
            (404, s3_error("NoSuchKey", "The specified key does not exist."), XML),
            "The trace storage answered HTTP 404 (NoSuchKey: The specified key does not exist.): "
            "the trace is no longer stored.",
        ),
        (
            (414, b"<html><body>URI Too Long</body></html>", {"Content-Type": "text/html"}),
            "The trace storage answered HTTP 414: the link is too long for it; please report this.",
        ),
    ],
    ids=["access-denied", "not-yet-valid", "bad-signature", "403-no-body", "no-such-key", "414"],
)
def test_a_refusal_is_told_and_never_retried(
    bgagent, backend, tmp_path: Path, no_backoff: list[float], answer, says: str
) -> None:
    backend.object_answers = [answer] * 3
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (1, f"bgagent: {says}\n")
    assert backend.object_requests == 1
    assert no_backoff == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (
            SLOW_DOWN,
            "The trace storage is busy (HTTP 503 SlowDown: Please reduce your request rate.); "
            "tried 3 times: run the command again in a minute.",
        ),
        (
            INTERNAL,
            "The trace storage answered HTTP 500 (InternalError: We encountered an internal "
            "error. Please try again.); tried 3 times: run the command again in a minute.",
        ),
        (
            (503, s3_error("ServiceUnavailable", "Service is unable to handle request."), XML),
            "The trace storage answered HTTP 503 (ServiceUnavailable: Service is unable to "
            "handle request.); tried 3 times: run the command again in a minute.",
        ),
        (
            (502, b"", {}),
            "The trace storage answered HTTP 502; tried 3 times: run the command again in a "
            "minute.",
        ),
    ],
    ids=["slow-down", "internal-error", "service-unavailable", "bad-gateway"],
)
def test_a_storage_that_keeps_failing_is_tried_three_times_then_told(
    bgagent, backend, tmp_path: Path, no_backoff: list[float], answer, says: str
) -> None:
    backend.object_answers = [answer] * 5
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (1, f"bgagent: {says}\n")
    assert backend.object_requests == 3
    assert len(no_backoff) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


@pytest.mark.parametrize("answer", [SLOW_DOWN, INTERNAL], ids=["slow-down", "internal-error"])
def test_a_storage_busy_for_a_moment_is_asked_again_and_the_trace_saved(
    bgagent, backend, tmp_path: Path, no_backoff: list[float], answer
) -> None:
    backend.object_answers = [answer, answer]
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (0, f"Wrote {target}\n")
    assert target.read_bytes() == backend.artifact
    assert backend.object_requests == 3


def test_a_storage_busy_for_a_moment_still_prints_the_trace_once(
    bgagent, backend, no_backoff: list[float]
) -> None:
    backend.object_answers = [SLOW_DOWN]
    result = bgagent("trace", "download", "t-1")
    assert (result.exit_code, result.stdout, result.stderr) == (0, backend.trace_lines, "")
    assert backend.object_requests == 2


def test_the_pauses_between_tries_grow_and_are_jittered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(download.random, "random", lambda: 1.0)
    assert [download.backoff_seconds(n) for n in (1, 2, 3, 8, 9)] == [
        0.2,
        0.4,
        0.8,
        20.0,
        20.0,
    ]
    monkeypatch.setattr(download.random, "random", lambda: 0.25)
    assert [download.backoff_seconds(n) for n in (1, 2)] == [0.05, 0.1]


def test_retries_never_outlast_the_download_deadline(
    bgagent, backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = iter([0.05, 60.0])  # the first fits in the 3 s, the second would not
    monkeypatch.setattr(download, "backoff_seconds", lambda retry: next(pauses))
    backend.object_answers = [SLOW_DOWN] * 5
    target = tmp_path / "t.jsonl.gz"
    started = time.monotonic()
    result = bgagent("trace", "download", "t-1", "-o", str(target), BGAGENT_DOWNLOAD_TIMEOUT="3")
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The trace storage is busy (HTTP 503 SlowDown: Please reduce your request "
        "rate.); tried 2 times: run the command again in a minute.\n",
    )
    assert backend.object_requests == 2
    assert time.monotonic() - started >= 0.05  # the first pause was taken
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


def test_a_pause_that_would_pass_the_deadline_is_not_taken(
    bgagent, backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(download, "backoff_seconds", lambda retry: 60.0)
    backend.object_answers = [SLOW_DOWN] * 3
    started = time.monotonic()
    result = bgagent("trace", "download", "t-1", BGAGENT_DOWNLOAD_TIMEOUT="3")
    assert time.monotonic() - started < 30  # far from the 60 s pause
    assert result.exit_code == 1
    assert "tried once: run the command again in a minute." in result.stderr
    assert backend.object_requests == 1


def test_what_s3_says_is_shown_as_one_line_of_plain_text(
    bgagent, backend, no_backoff: list[float]
) -> None:
    message = "a\x1b[31mred\x07 line\nand &lt;more&gt; " + "x" * 400
    backend.object_answers = [(404, s3_error("NoSuchKey", message), XML)]
    result = bgagent("trace", "download", "t-1")
    line = result.stderr
    assert result.exit_code == 1
    assert line.count("\n") == 1
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "(NoSuchKey: a?[31mred? line?and <more> xxx" in line
    assert len(line) < 500


def test_an_endless_error_body_is_read_only_so_far(
    bgagent, backend, no_backoff: list[float]
) -> None:
    backend.object_answers = [(403, b"<Error><Code>AccessDenied</Code>" + b" " * 10**7, XML)]
    result = bgagent("trace", "download", "t-1")
    assert result.exit_code == 1
    assert result.stderr.startswith("bgagent: The trace storage answered HTTP 403")


def test_an_error_body_trickled_forever_never_outlasts_the_deadline(
    bgagent, backend, no_backoff: list[float]
) -> None:
    """The reason is read within the deadline; once it passes, the CLI gives up reading
    it (the read blocked in another thread is cut off, never waited for)."""
    sent_some = threading.Event()

    def forever() -> Iterator[bytes]:
        yield b"<Error><Code>SlowDown</Code>"
        sent_some.set()
        while True:
            yield b" "
            time.sleep(0.05)

    backend.object_answers = [(503, forever(), {"Content-Length": "100000"})]
    outcome: list = []
    running = threading.Thread(
        target=lambda: outcome.append(
            bgagent("trace", "download", "t-1", BGAGENT_DOWNLOAD_TIMEOUT="0.5")
        ),
        daemon=True,
    )
    running.start()
    running.join(10)
    assert outcome, "the CLI was still reading the error after 10 s, past its 0.5 s deadline"
    assert sent_some.is_set()
    (result,) = outcome
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The trace storage answered HTTP 503; tried once: run the command again "
        "in a minute.\n",
    )


def test_a_redirect_that_was_not_followed_is_a_refusal_never_a_trace(
    bgagent, backend, tmp_path: Path, no_backoff: list[float]
) -> None:
    """S3 answers a link to the wrong region with 301 and no Location: its error document
    is no trace, and must not be judged as one (corrupt, or a checksum mismatch)."""
    moved = s3_error("PermanentRedirect", "The bucket you are attempting to access must be")
    backend.object_answers = [(301, moved, XML)]
    target = tmp_path / "t.jsonl.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target))
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The trace storage answered HTTP 301 (PermanentRedirect: The bucket you are "
        "attempting to access must be); run the command again.\n",
    )
    assert backend.object_requests == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bgagent"]


def test_a_reason_that_takes_a_moment_to_arrive_is_still_read(
    bgagent, backend, no_backoff: list[float]
) -> None:
    """The reason is read within what is left of the deadline, not less."""
    said = s3_error("NoSuchKey", "The specified key does not exist.")

    def slowly() -> Iterator[bytes]:
        yield b""  # the status goes out at once
        time.sleep(0.3)  # the peer is slow: the reason arrives late, within the deadline
        yield said

    backend.object_answers = [(404, slowly(), {"Content-Length": str(len(said))})]
    result = bgagent("trace", "download", "t-1", BGAGENT_DOWNLOAD_TIMEOUT="5")
    assert result.stderr.startswith(
        "bgagent: The trace storage answered HTTP 404 (NoSuchKey: The specified key does not"
    )


def test_every_try_shares_the_one_deadline(
    bgagent, backend, no_backoff: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second try whose answer never comes gives up when the download's deadline does,
    counted from the first try, not from its own start."""
    monkeypatch.setattr(download.random, "random", lambda: 0.0)  # no pause at all
    never = threading.Event()

    def busy_after_a_while(environ, start_response):
        time.sleep(0.6)  # the first answer takes a good part of the deadline
        start_response("503 Slow Down", [("Content-Length", str(len(SLOW_DOWN[1])))])
        return [SLOW_DOWN[1]]

    def silent(environ, start_response):
        never.wait(10)  # no answer at all, until the test is over
        start_response("200 OK", [])
        return [b""]

    backend.object_answers = [busy_after_a_while, silent]
    started = time.monotonic()
    try:
        result = bgagent("trace", "download", "t-1", BGAGENT_DOWNLOAD_TIMEOUT="1")
    finally:
        never.set()
    assert time.monotonic() - started < 1.4
    assert (result.exit_code, result.stderr) == (
        1,
        "bgagent: The download timed out after 1 s; run the command again.\n",
    )
    assert backend.object_requests == 2


def test_the_body_after_a_retry_is_given_what_is_left_of_the_deadline(
    bgagent, backend, tmp_path: Path, no_backoff: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither more (a trickling body gives up when the whole download must) ..."""
    monkeypatch.setattr(download.random, "random", lambda: 0.0)

    def busy_after_a_while(environ, start_response):
        time.sleep(0.6)  # the first answer takes a good part of the deadline
        start_response("503 Slow Down", [("Content-Length", str(len(SLOW_DOWN[1])))])
        return [SLOW_DOWN[1]]

    def trickling(environ, start_response):
        start_response("200 OK", [("Content-Length", str(len(backend.artifact) * 100))])

        def body() -> Iterator[bytes]:
            for byte in backend.artifact * 100:
                yield bytes([byte])
                time.sleep(0.02)  # never silent long enough for a read timeout

        return body()

    backend.object_answers = [busy_after_a_while, trickling]
    started = time.monotonic()
    result = bgagent(
        "trace", "download", "t-1", "-o", str(tmp_path / "t.gz"), BGAGENT_DOWNLOAD_TIMEOUT="1"
    )
    assert time.monotonic() - started < 1.4
    assert result.stderr == "bgagent: The download timed out after 1 s; run the command again.\n"


def test_the_body_after_a_retry_still_has_the_rest_of_the_deadline(
    bgagent, backend, tmp_path: Path, no_backoff: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """... nor less: a body that pauses briefly, well within the deadline, arrives."""
    monkeypatch.setattr(download.random, "random", lambda: 0.0)
    backend.object_answers = [SLOW_DOWN]
    backend.object_stall_seconds = 0.3
    target = tmp_path / "t.gz"
    result = bgagent("trace", "download", "t-1", "-o", str(target), BGAGENT_DOWNLOAD_TIMEOUT="1")
    assert (result.exit_code, result.stderr) == (0, f"Wrote {target}\n")
    assert target.read_bytes() == backend.artifact
