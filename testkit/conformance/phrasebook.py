"""The words a CLI uses for each message the scenarios check.

What a CLI does is judged exactly (exit status, stdout bytes, files, one line on
stderr with no stack trace); the words of its messages are judged against a
phrasebook: a TOML file whose ``[messages]`` table maps each message, named as the
scenarios name it, to how the CLI under judgement says it. This project's own
wording is ``features/phrasebook.toml``, the default; ``TRACE_SUITE_PHRASEBOOK``
names another.

An entry is either text, where ``…`` stands for any text, or ``{ regex = "…" }``;
either must match the whole line, and the line must match no other message's entry
(several keys may name one message: the default phrasebook gives them the same
words). A line that says another message the book knows is a difference of
behaviour, not of words. ``{file}`` and
``{task}`` stand for the file written and the task's id, where the message has them.
A message missing from the book fails its scenario, saying so: it never passes
unjudged.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import regex

DEFAULT_PHRASEBOOK = Path(__file__).resolve().parents[2] / "features" / "phrasebook.toml"
ANY_TEXT = "…"
MAX_BYTES = 1024 * 1024
MATCH_SECONDS = 1.0  # how long an entry may take to read a line
PLACEHOLDERS = ("file", "task")
_TOKEN = re.compile(r"(…|\{(?:" + "|".join(PLACEHOLDERS) + r")\})")


class PhrasebookError(Exception):
    """The phrasebook cannot be read, or one of its entries is not a pattern."""


class Misjudged(AssertionError):
    """A message the CLI did not say as the scenario expects; ``kind`` says how."""

    kind = "behaviour"


class SaidAnotherMessage(Misjudged):
    """The CLI said another message the phrasebook knows: what it did differs."""


class WordingDiffers(Misjudged):
    """The CLI's line says no message of its phrasebook: most likely the expected one in
    other words (or something the scenarios never check)."""

    kind = "wording"


class AmbiguousPhrase(Misjudged):
    """The line says the expected message and another one, in the phrasebook's words: the
    phrasebook cannot tell them apart, so the line judges nothing."""

    kind = "ambiguous phrasebook"


class SlowPhrase(Misjudged):
    """An entry (a regular expression that backtracks without end) took too long to read
    a line: the phrasebook cannot judge it."""

    kind = "slow phrasebook entry"


class MissingPhrase(Misjudged):
    """The phrasebook does not say how the CLI words a message a scenario checks."""

    kind = "no phrasebook entry"

    def __init__(self, text: str, message: str) -> None:
        super().__init__(text)
        self.message = message


@dataclass(frozen=True)
class Entry:
    written: str  # as the phrasebook writes it
    is_regex: bool

    def pattern(self, values: Mapping[str, str]) -> regex.Pattern[str]:
        if self.is_regex:
            source = self.written
            for name, value in values.items():  # a group: a quantifier after it repeats all
                source = source.replace("{" + name + "}", f"(?:{regex.escape(value)})")
            return regex.compile(source)
        parts = []
        for token in _TOKEN.split(self.written):
            if token == ANY_TEXT:
                parts.append(".*")
            elif token.startswith("{") and token[1:-1] in values:
                parts.append(regex.escape(values[token[1:-1]]))
            else:
                parts.append(regex.escape(token))
        return regex.compile("".join(parts))

    def reads(self, line: str, values: Mapping[str, str]) -> bool:
        """Whether this entry reads ``line`` whole, within MATCH_SECONDS."""
        try:
            return self.pattern(values).fullmatch(line, timeout=MATCH_SECONDS) is not None
        except TimeoutError:
            raise SlowPhrase(
                f"the phrasebook's entry {self.written!r} took more than {MATCH_SECONDS:g} s "
                f"to read {line[:200]!r}: it judges nothing"
            ) from None


@dataclass
class Phrasebook:
    path: Path
    entries: dict[str, Entry]
    # Which message each key names: several keys may name one message (the scenarios
    # quote it in part, or by different words). The default phrasebook tells: keys it
    # gives the same words name one message.
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, *, names_from: Phrasebook | None = None) -> Phrasebook:
        """``names_from``: the phrasebook that says which keys name one message (the
        default phrasebook, for another CLI's); by default this one."""
        try:
            document = tomllib.loads(read_bounded(path).decode("utf-8-sig"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
            raise PhrasebookError(f"phrasebook {path}: {err}") from None
        messages = document.get("messages")
        if not isinstance(messages, dict):
            raise PhrasebookError(f"phrasebook {path}: no [messages] table")
        entries = {key: _entry(path, key, value) for key, value in messages.items()}
        reference = (names_from or cls(path, entries)).entries
        names = {key: reference[key].written if key in reference else key for key in entries}
        return cls(path, entries, names)

    def judge(self, message: str, line: str, **values: str) -> None:
        """``line`` must say ``message`` in this phrasebook's words, and no other message;
        raises a Misjudged (an AssertionError) saying how it does not."""
        entry = self.entries.get(message)
        if entry is None:
            raise MissingPhrase(
                f'the phrasebook {self.path} has no entry for "{message}" (the CLI said {line!r})',
                message,
            )
        expected = entry.reads(line, values)
        others = [
            key
            for key, other in self.entries.items()
            if self.names.get(key, key) != self.names.get(message, message)
            and other.reads(line, values)
        ]
        if expected and others:
            raise AmbiguousPhrase(
                f'the phrasebook {self.path.name} reads {line!r} both as "{message}" and as '
                f'"{others[0]}": its entries must tell the messages apart'
            )
        if expected:
            return
        if others:
            raise SaidAnotherMessage(
                f'the CLI said "{others[0]}" where "{message}" was expected: {line!r}'
            )
        raise WordingDiffers(
            f'the wording of "{message}" differs: the phrasebook {self.path.name} '
            f"gives {entry.written!r}, the CLI said {line!r}, which says no message it knows"
        )


def _entry(path: Path, key: str, value: object) -> Entry:
    if isinstance(value, str):
        return Entry(value, is_regex=False)
    if isinstance(value, dict) and set(value) == {"regex"} and isinstance(value["regex"], str):
        try:
            regex.compile(_TOKEN.sub("x", value["regex"]))
        except regex.error as err:
            raise PhrasebookError(f'phrasebook {path}: "{key}": {err}') from None
        return Entry(value["regex"], is_regex=True)
    raise PhrasebookError(
        f'phrasebook {path}: "{key}" must be text or {{ regex = "…" }}, not {value!r}'
    )


def read_bounded(path: Path) -> bytes:
    """A regular file's bytes, at most MAX_BYTES: never a pipe that may never end, nor a
    device without end."""
    # Opened without waiting: opening a pipe to read waits for a writer.
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(f"{path} is no regular file")
        read = os.read(descriptor, MAX_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(read) > MAX_BYTES:
        raise OSError(f"longer than {MAX_BYTES} bytes")
    return read
