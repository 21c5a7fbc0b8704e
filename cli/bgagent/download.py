"""Streaming download of a trace artifact: raw to a file, or gunzipped to a stream.

The body is always read undecoded (``decode_content=False``): the artifact is a
gzip file, and whatever ``Content-Encoding`` the server claims, ``-o`` must hold
exactly the stored bytes and stdout exactly one gunzip of them.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import html
import os
import random
import re
import secrets
import stat
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import requests
import urllib3

from bgagent.deadline import Expired, NetworkClock, within
from bgagent.errors import CliError, printable

CHUNK_BYTES = 256 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_MAX_INFLATE_STEP = 1024 * 1024  # bounds memory whatever the compression ratio

# S3 asks to be tried again with these (SlowDown, InternalError, ServiceUnavailable, and
# its front ends' 502 and 504), as the AWS SDKs' standard retry mode does: at most three
# tries in all, after pauses of up to 0.2 s, then 0.4 s (the SDK for JavaScript v3's
# base of 100 ms: a person is waiting, and the message says to try again in a minute).
RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
MAX_TRIES = 3
BACKOFF_BASE_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 20.0
_ERROR_BODY_BYTES = 8 * 1024  # S3's error document is a few hundred bytes
_S3_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")
_S3_MESSAGE = re.compile(rb"<Message>([^<]{0,1024})</Message>")
_pause = time.sleep


def backoff_seconds(retry: int) -> float:
    """The pause before the ``retry``-th retry: "full jitter" (anywhere from 0 up to a
    bound that doubles with each retry, at most MAX_BACKOFF_SECONDS), so that many
    clients told to slow down at once do not all come back at once."""
    return random.random() * min(MAX_BACKOFF_SECONDS, BACKOFF_BASE_SECONDS * 2.0**retry)


class _Sha256:
    """The artifact's SHA-256 as the API reported it, and that of what arrived."""

    def __init__(self, expected: str | None) -> None:
        self.expected = expected
        self._digest = hashlib.sha256()

    def update(self, chunk: bytes) -> None:
        self._digest.update(chunk)

    def matches(self) -> bool:
        return base64.b64encode(self._digest.digest()).decode() == self.expected


def keep_headers(request: Any) -> Any:
    """An explicit ``auth`` for requests: with none, it would send credentials from
    ``~/.netrc`` in place of the caller's own (to the API) or add them (to S3)."""
    return request


class ByteSink(Protocol):
    """Where bytes go: standard output, a file."""

    def write(self, data: bytes, /) -> int: ...

    def flush(self) -> None: ...


class DownloadTimeout(CliError):
    pass


class CorruptArtifact(CliError):
    pass


class DownloadFailed(CliError):
    pass


class Download:
    """One GET of a presigned URL, streamed, under an overall deadline."""

    def __init__(
        self,
        session: requests.Session,
        url: str,
        timeout_seconds: float,
        *,
        checksum_sha256: str | None = None,
    ) -> None:
        self._timeout = timeout_seconds
        self._checksum = _Sha256(checksum_sha256)
        started = time.monotonic()
        tries = 0
        while True:
            tries += 1
            self._response = self._get(session, url, timeout_seconds - (time.monotonic() - started))
            if 200 <= self._response.status_code < 300:  # a redirect not followed is none
                break
            # Nothing of the trace has been written yet: trying again is safe.
            refusal = _Refusal.read(self._response, timeout_seconds - (time.monotonic() - started))
            pause = backoff_seconds(tries)
            if (
                refusal.status in RETRYABLE_STATUSES
                and tries < MAX_TRIES
                and time.monotonic() - started + pause < timeout_seconds
            ):
                _pause(pause)
                continue
            raise DownloadFailed(refusal.message(tries))
        # A stalled or trickling body cannot outlive the deadline: shutting the socket
        # down from the clock's thread unblocks the read wherever it is. The clock runs
        # only while the download waits for the network.
        self._clock = NetworkClock(timeout_seconds - (time.monotonic() - started), self._expire)

    def _get(self, session: requests.Session, url: str, seconds: float) -> requests.Response:
        """The answer's status and headers, within ``seconds`` in all."""
        if seconds <= 0:
            raise DownloadTimeout(self._timeout_message())
        try:
            # The whole wait for the answer's headers is bounded, however slowly a
            # server trickles them (requests' timeout only bounds each read).
            return within(
                seconds,
                lambda: session.get(url, stream=True, timeout=seconds, auth=keep_headers),
            )
        except (Expired, requests.Timeout):
            raise DownloadTimeout(self._timeout_message()) from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as err:
            # urllib3's LocationParseError is not a RequestException.
            raise DownloadFailed(
                f"Could not reach the trace storage ({type(err).__name__})."
            ) from None

    @property
    def size(self) -> int | None:
        """The artifact's size in bytes, as the storage announced it (Content-Length)."""
        return announced_size(self._response.headers.get("Content-Length", ""))

    @property
    def has_checksum(self) -> bool:
        """Whether the API gave the artifact's checksum, so that chunks() proves it."""
        return self._checksum.expected is not None

    def _expire(self) -> None:
        with contextlib.suppress(OSError):  # the peer may have closed it already
            self._response.raw.shutdown()

    def _timeout_message(self) -> str:
        return f"The download timed out after {self._timeout:g} s; run the command again."

    def chunks(self) -> Iterator[bytes]:
        """The stored bytes, as they arrive.

        Raises CliError if the body is cut short, stalls, or does not match the
        stored object's checksum; a caller writing a file must not keep it then.
        """
        stream = self._response.raw.stream(CHUNK_BYTES, decode_content=False)
        try:
            while True:
                self._clock.waiting()
                chunk = next(stream, None)
                self._clock.paused()  # what the consumer does with it is not network time
                if chunk is None:
                    break
                self._checksum.update(chunk)
                yield chunk
        except (urllib3.exceptions.HTTPError, OSError) as err:
            if self._clock.expired.is_set() or isinstance(err, urllib3.exceptions.ReadTimeoutError):
                raise DownloadTimeout(self._timeout_message()) from None
            raise DownloadFailed(
                f"The download was interrupted ({type(err).__name__}); run the command again."
            ) from None
        finally:
            self._clock.stop()
            self._response.close()
        if self._clock.expired.is_set():
            raise DownloadTimeout(self._timeout_message())
        if self.has_checksum and not self._checksum.matches():
            raise CorruptArtifact(
                "The downloaded bytes do not match the stored trace (checksum mismatch); "
                "run the command again."
            )


class _Refusal:
    """What the trace storage said instead of handing over the trace: its HTTP status and,
    from S3's error document, its code and message."""

    def __init__(self, status: int, code: str | None, text: str | None) -> None:
        self.status, self.code, self.text = status, code, text

    @classmethod
    def read(cls, response: requests.Response, seconds: float) -> _Refusal:
        """The refusal in ``response`` (closed once read): a bounded start of its body,
        read within ``seconds``; without it, the status alone."""
        try:
            body = within(
                max(seconds, 0.0),
                lambda: response.raw.read(_ERROR_BODY_BYTES, decode_content=False),
            )
        except Expired:
            body = b""
            # The read still holds the stream: closing it would wait for that read,
            # which a trickling server can make last for ever. Cut the connection first.
            with contextlib.suppress(OSError):
                response.raw.shutdown()
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            body = b""
        finally:
            response.close()
        code, text = _S3_CODE.search(body), _S3_MESSAGE.search(body)
        return cls(
            response.status_code,
            code.group(1).decode() if code else None,
            printable(html.unescape(text.group(1).decode(errors="replace")), limit=200)
            if text
            else None,
        )

    def message(self, tries: int) -> str:
        said = f"{self.code}: {self.text}" if self.code and self.text else self.code or ""
        status = f"HTTP {self.status}"
        if self.status == 403:
            # The contract's words for a refused link, whatever S3's reason: an expired
            # link is the one a user can mend, by running the command again.
            return (
                "The trace storage answered HTTP 403. The link may have expired "
                "(links last 15 minutes): run the command again for a new one."
            )
        if self.status in RETRYABLE_STATUSES:
            told = "tried once" if tries == 1 else f"tried {tries} times"
            if self.code == "SlowDown":
                what = f"is busy ({status} {said})"
            else:
                what = f"answered {status}" + (f" ({said})" if said else "")
            return f"The trace storage {what}; {told}: run the command again in a minute."
        answered = f"The trace storage answered {status}" + (f" ({said})" if said else "")
        if self.status == 404:
            return f"{answered}: the trace is no longer stored."
        if self.status == 414:
            return f"{answered}: the link is too long for it; please report this."
        return f"{answered}; run the command again."


class _Gunzip:
    """Inflates gzip members in turn, as ``gunzip`` does, with a bounded step; each
    member's CRC32 and length are checked by zlib as it ends."""

    def __init__(self, out: ByteSink) -> None:
        self._out = out
        self.written = 0
        self._members = 0
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._member_started = False

    def feed(self, chunk: bytes) -> None:
        pending = chunk
        try:
            while pending:
                self._member_started = True
                self._emit(self._inflater.decompress(pending, _MAX_INFLATE_STEP))
                if self._inflater.eof:
                    self._members += 1
                    pending = self._inflater.unused_data
                    self._inflater = zlib.decompressobj(_GZIP_WBITS)
                    self._member_started = False
                else:
                    pending = self._inflater.unconsumed_tail
        except zlib.error:
            raise CorruptArtifact(_CORRUPT) from None

    def finish(self) -> None:
        try:
            while self._member_started and not self._inflater.eof:
                data = self._inflater.decompress(b"", _MAX_INFLATE_STEP)  # what the bound held
                if not data:
                    break
                self._emit(data)
        except zlib.error:
            raise CorruptArtifact(_CORRUPT) from None
        if self._inflater.eof:
            self._members += 1
            self._member_started = False
        if self._member_started or self._members == 0:  # cut short, or no gzip at all
            raise CorruptArtifact(_CORRUPT)

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self.written += len(data)


def gunzip_to(chunks: Iterator[bytes], out: ByteSink) -> int:
    """Write the gunzipped stream to ``out``; returns the bytes written.

    Concatenated gzip members are decoded in turn, as ``gunzip`` does.
    """
    gunzip = _Gunzip(out)
    for chunk in chunks:
        gunzip.feed(chunk)
    gunzip.finish()
    out.flush()
    return gunzip.written


class _Discard:
    def write(self, data: bytes, /) -> int:
        return len(data)

    def flush(self) -> None:
        pass


def proven_gzip(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks, passed on as they come; raises at the end unless they form a complete
    gzip stream (every member's CRC32 and length hold). For an artifact that arrives
    without a stored checksum to prove it whole."""
    gunzip = _Gunzip(_Discard())
    for chunk in chunks:
        gunzip.feed(chunk)
        yield chunk
    gunzip.finish()


_CORRUPT = (
    "The trace artifact is corrupt or not gzipped; "
    "use -o FILE to save the raw bytes and inspect them."
)


def copy_to(chunks: Iterator[bytes], out: ByteSink) -> int:
    """Write the chunks to ``out`` as they come (``-o -``); returns the bytes written."""
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    out.flush()
    return written


def _user_file_mode() -> int:
    """The mode a new file gets under the user's umask, as ``>`` would create it."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


class AtomicFile:
    """A file that appears at ``target`` complete, or not at all.

    The folder is opened once, up front, and every later step happens in it, whatever
    it is called by then: the bytes go to a file of its own that has no name (or, where
    the file system cannot make one, a hidden name beside ``target``: a short one, so
    that any valid target name works), created up front so that an unwritable place is
    found before any download; ``commit`` gives it the target's name, with the mode the
    user's umask gives new files. Without ``replace`` an existing ``target`` is never
    overwritten, even one that appeared while the download ran. Leaving the ``with``
    block without a commit leaves nothing: a file without a name is gone once closed,
    a hidden one is removed.

    If the folder's name no longer leads to the folder the download started in (it was
    moved, or replaced by another folder or a symbolic link), nothing is saved: the
    file would land where the user did not ask for it, or where they would not find it.
    A folder that lets files be added but never renamed or removed (append-only) gets
    the file and nothing else; a file in it cannot be replaced, and then the complete
    trace is kept under another name, which the error says.
    """

    def __init__(self, target: Path, *, replace: bool) -> None:
        # Replacing through a symbolic link replaces the file it points at, as `>` does.
        if replace and target.is_symlink():
            target = Path(os.path.realpath(target))
        self.target = target
        self._replace = replace
        self._name = target.name
        self._folder_named = target.parent
        self._temp: str | None = None  # the file's hidden name, while it has one
        try:
            self._folder = os.open(self._folder_named, _FOLDER_FLAGS)
        except OSError as err:
            raise CliError(f"Cannot write {printable(target)}: {err.strerror}.") from None
        try:
            descriptor = self._unnamed_file()
            if descriptor is None:
                descriptor, self._temp = self._hidden_file()
        except OSError as err:
            os.close(self._folder)
            raise CliError(f"Cannot write {printable(target)}: {err.strerror}.") from None
        self._handle = os.fdopen(descriptor, "wb")

    def _unnamed_file(self) -> int | None:
        """A file in the folder that has no name yet (O_TMPFILE), if the file system
        can make one and it can be given a name later; else None."""
        if _O_TMPFILE is None:
            return None
        try:
            descriptor = os.open(
                ".", _O_TMPFILE | os.O_WRONLY | _CLOEXEC, 0o600, dir_fd=self._folder
            )
        except OSError:
            return None
        try:
            # It is named later through /proc (linkat with AT_EMPTY_PATH needs a
            # privilege): without /proc, it could never be named.
            reachable = os.stat(_proc_path(descriptor))
            mine = os.fstat(descriptor)
            if (reachable.st_dev, reachable.st_ino) == (mine.st_dev, mine.st_ino):
                return descriptor
        except OSError:
            pass
        os.close(descriptor)
        return None

    def _hidden_file(self) -> tuple[int, str]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
        for _ in range(100):
            name = _hidden_name()
            try:
                return os.open(name, flags, 0o600, dir_fd=self._folder), name
            except FileExistsError:
                continue
        raise FileExistsError(errno.EEXIST, "No usable temporary name")

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, *_: object) -> None:
        # Closing flushes again: on a full disk that fails too, and must not keep the
        # hidden file from going.
        with contextlib.suppress(OSError):
            self._handle.close()
        if self._temp is not None:
            with contextlib.suppress(OSError):  # gone already, or an append-only folder
                os.unlink(self._temp, dir_fd=self._folder)
        with contextlib.suppress(OSError):
            os.close(self._folder)

    def write_all(self, chunks: Iterator[bytes]) -> int:
        size = 0
        try:
            for chunk in chunks:
                self._handle.write(chunk)
                size += len(chunk)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            os.fchmod(self._handle.fileno(), _user_file_mode())
        except OSError as err:
            raise CliError(f"Could not write {printable(self.target)}: {err.strerror}.") from None
        return size

    def commit(self) -> str | None:
        """Gives the file the target's name; returns what the user should also know of
        it (a second name that could not be removed), if anything."""
        self._check_folder_is_where_named()
        try:
            if self._replace:
                return self._replace_regular_file()
            return self._place_without_overwriting()
        except FileExistsError:
            raise CliError(
                f"{printable(self.target)} already exists; use --force to replace it."
            ) from None
        except OSError as err:
            raise CliError(f"Could not write {printable(self.target)}: {err.strerror}.") from None
        finally:
            # A file without a name is gone once closed: only now, once it has one.
            with contextlib.suppress(OSError):
                self._handle.close()

    def _check_folder_is_where_named(self) -> None:
        try:
            named = os.stat(self._folder_named)  # where the name leads now, links followed
        except OSError:
            named = None
        held = os.fstat(self._folder)
        if named is None or (named.st_dev, named.st_ino) != (held.st_dev, held.st_ino):
            raise CliError(
                f"Nothing was saved: the folder {printable(self._folder_named)} was moved, "
                "removed or replaced during the download; run the command again."
            )

    def _link(self, name: str) -> None:
        """Gives the file ``name`` too; FileExistsError if that name is taken."""
        if self._temp is None:
            os.link(
                _proc_path(self._handle.fileno()),
                name,
                dst_dir_fd=self._folder,
                follow_symlinks=True,
            )
        else:
            os.link(self._temp, name, src_dir_fd=self._folder, dst_dir_fd=self._folder)

    def _place_without_overwriting(self) -> str | None:
        try:
            self._link(self._name)  # fails, atomically, if the target exists
        except FileExistsError:
            raise
        except OSError as err:
            if self._temp is None or err.errno not in _NO_HARD_LINKS:
                raise
            # A file system without hard links (vfat, exFAT, some network mounts):
            # claim the name exclusively, then move the complete file onto the claim.
            claim = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
            os.close(os.open(self._name, claim, 0o600, dir_fd=self._folder))
            os.replace(self._temp, self._name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
            self._temp = None
            return None
        if self._temp is None:
            return None
        temp, self._temp = self._temp, None
        try:
            os.unlink(temp, dir_fd=self._folder)
        except OSError as err:  # an append-only folder: the file is whole, under two names
            return (
                f"its temporary name {printable(self._folder_named / temp)} could not be "
                f"removed: {err.strerror}; it is a second name of the same file"
            )
        return None

    def _replace_regular_file(self) -> str | None:
        existing = self._existing_target()
        if existing is None:
            # A new name needs no rename, which an append-only folder would refuse.
            try:
                return self._place_without_overwriting()
            except FileExistsError:  # it appeared meanwhile: replaced, as asked
                existing = self._existing_target()
        # A device, a pipe or a socket (or a link to one) is never replaced by a file.
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise CliError(not_a_regular_file(self.target))
        if self._temp is None:
            self._temp = self._link_under_a_hidden_name()
        try:
            os.replace(self._temp, self._name, src_dir_fd=self._folder, dst_dir_fd=self._folder)
        except OSError as err:
            # The complete trace stays where it is, and the user is told where.
            kept, self._temp = self._temp, None
            raise CliError(
                f"Could not replace {printable(self.target)}: {err.strerror}; the complete "
                f"trace is saved as {printable(self._folder_named / kept)}."
            ) from None
        self._temp = None
        return None

    def _existing_target(self) -> os.stat_result | None:
        try:
            return os.stat(self._name, dir_fd=self._folder)
        except FileNotFoundError:
            return None

    def _link_under_a_hidden_name(self) -> str:
        for _ in range(100):
            name = _hidden_name()
            try:
                self._link(name)
            except FileExistsError:
                continue
            return name
        raise FileExistsError(errno.EEXIST, "No usable temporary name")


_O_TMPFILE: int | None = getattr(os, "O_TMPFILE", None)
_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
# O_PATH holds a folder without reading it: one the user may write to but not list
# (a drop box, mode 0733) works as it does for `>`.
_FOLDER_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | _CLOEXEC


def _proc_path(descriptor: int) -> str:
    return f"/proc/self/fd/{descriptor}"


def _hidden_name() -> str:
    return f".bgagent-{secrets.token_hex(4)}.part"


_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK})


def not_a_regular_file(target: Path) -> str:
    return (
        f"{printable(target)} is not a regular file (a device, a pipe or a socket); -o saves "
        "to files only: use `-o -` to write the artifact to standard output."
    )


def announced_size(content_length: str) -> int | None:
    """A Content-Length as a number of bytes; None for anything but up to 19 ASCII digits
    (HTTP clients read a longer or odd one as "no length")."""
    if len(content_length) <= 19 and content_length.isascii() and content_length.isdigit():
        return int(content_length)
    return None
