"""The phrasebook: how the CLI under judgement words each message the scenarios check."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from features.steps import downloads, permissions
from testkit.conformance.phrasebook import (
    DEFAULT_PHRASEBOOK,
    MAX_BYTES,
    AmbiguousPhrase,
    MissingPhrase,
    Phrasebook,
    PhrasebookError,
    SaidAnotherMessage,
    SlowPhrase,
    WordingDiffers,
)
from tools.living_docs import parse_feature

FEATURES = Path(__file__).resolve().parents[2] / "features"


def book(tmp_path: Path, body: str) -> Phrasebook:
    path = tmp_path / "theirs.toml"
    path.write_text("[messages]\n" + body, encoding="utf-8")
    return Phrasebook.load(path)


def test_text_must_match_the_whole_line(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"refused" = "error: refused"\n')
    phrases.judge("refused", "error: refused")
    for line in ("error: refused.", "fatal error: refused", "error: REFUSED", ""):
        with pytest.raises(WordingDiffers):
            phrases.judge("refused", line)


def test_an_ellipsis_stands_for_any_text_even_none(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"lost" = "error: lost (…); retry"\n')
    phrases.judge("lost", "error: lost (ProtocolError); retry")
    phrases.judge("lost", "error: lost (); retry")
    with pytest.raises(WordingDiffers):
        phrases.judge("lost", "error: lost; retry")


@pytest.mark.parametrize(
    ("entry", "said", "differs"),
    [
        ("✓ saved → {file}", "✓ saved → /x", "✓ saved anything /x"),
        (
            "Task a.b not found. (TASK_NOT_FOUND)",
            "Task a.b not found. (TASK_NOT_FOUND)",
            "Task aXb not found. (TASK_NOT_FOUND)",
        ),
    ],
    ids=["beyond-ascii", "regex-characters"],
)
def test_text_is_literal(tmp_path: Path, entry: str, said: str, differs: str) -> None:
    phrases = book(tmp_path, f'"it" = "{entry}"\n')
    phrases.judge("it", said, file="/x")
    with pytest.raises(WordingDiffers):
        phrases.judge("it", differs, file="/x")


def test_placeholders_stand_for_the_file_and_the_task_exactly(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"saved" = "Saved {task} to {file}"\n')
    odd = "/tmp/a+b (1).*.gz"  # regex characters in a path are text
    phrases.judge("saved", f"Saved t-1 to {odd}", task="t-1", file=odd)
    with pytest.raises(WordingDiffers):
        phrases.judge("saved", "Saved t-1 to /tmp/aab (1)x.gz", task="t-1", file=odd)
    with pytest.raises(WordingDiffers):
        phrases.judge("saved", f"Saved t-2 to {odd}", task="t-1", file=odd)


def test_a_placeholder_the_message_does_not_have_is_text(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"saved" = "Saved {file}"\n')
    phrases.judge("saved", "Saved {file}")


def test_a_quantifier_after_a_placeholder_repeats_its_whole_value(tmp_path: Path) -> None:
    phrases = book(tmp_path, "\"twice\" = { regex = '{file}{2}' }\n")
    phrases.judge("twice", "/f/f", file="/f")
    with pytest.raises(WordingDiffers):
        phrases.judge("twice", "/ff", file="/f")


def test_a_phrasebook_may_begin_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "theirs.toml"
    path.write_bytes(b'\xef\xbb\xbf[messages]\n"a" = "b"\n')
    Phrasebook.load(path).judge("a", "b")


def test_a_regex_entry_must_match_the_whole_line_and_may_use_placeholders(
    tmp_path: Path,
) -> None:
    phrases = book(tmp_path, "\"saved\" = { regex = '(?i)wrote [0-9]{2} bytes to {file}' }\n")
    phrases.judge("saved", "WROTE 12 bytes to /tmp/x.gz", file="/tmp/x.gz")
    with pytest.raises(WordingDiffers):
        phrases.judge("saved", "wrote 12 bytes to /tmp/x.gz!", file="/tmp/x.gz")
    with pytest.raises(WordingDiffers):
        phrases.judge("saved", "wrote 123 bytes to /tmp/x.gz", file="/tmp/x.gz")


def test_a_difference_names_the_message_the_entry_and_what_the_cli_said(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"refused" = "error: refused"\n')
    with pytest.raises(WordingDiffers) as differs:
        phrases.judge("refused", "nope")
    assert str(differs.value) == (
        "the wording of \"refused\" differs: the phrasebook theirs.toml gives 'error: refused', "
        "the CLI said 'nope', which says no message it knows"
    )
    assert differs.value.kind == "wording"
    assert isinstance(differs.value, AssertionError)  # a scenario fails, never errors


def test_a_line_that_says_another_known_message_is_a_difference_of_behaviour(
    tmp_path: Path,
) -> None:
    phrases = book(
        tmp_path, '"forbidden" = "error: access denied"\n"gone" = "error: no task {task}"\n'
    )
    with pytest.raises(SaidAnotherMessage) as said:
        phrases.judge("forbidden", "error: no task t-1", task="t-1")
    assert said.value.kind == "behaviour"
    assert str(said.value) == (
        'the CLI said "gone" where "forbidden" was expected: \'error: no task t-1\''
    )


def test_a_line_two_messages_entries_both_read_judges_nothing(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"forbidden" = "error: …"\n"gone" = "error: no task {task}"\n')
    with pytest.raises(AmbiguousPhrase) as ambiguous:
        phrases.judge("forbidden", "error: no task t-1", task="t-1")
    assert ambiguous.value.kind == "ambiguous phrasebook"
    assert str(ambiguous.value) == (
        "the phrasebook theirs.toml reads 'error: no task t-1' both as \"forbidden\" and as "
        '"gone": its entries must tell the messages apart'
    )
    phrases.judge("forbidden", "error: access denied")  # says only the one
    three = book(tmp_path, '"a" = "…"\n"b" = "e: …"\n"c" = "e: x"\n')
    with pytest.raises(AmbiguousPhrase, match='both as "a" and as "b"'):  # the first other
        three.judge("a", "e: x")


def test_keys_given_the_same_words_name_one_message(tmp_path: Path) -> None:
    phrases = book(
        tmp_path,
        '"not traced" = "error: {task} has no trace"\n"no trace" = "error: {task} has no trace"\n'
        '"gone" = "error: t-1 has no trace"\n',
    )
    phrases.judge("not traced", "error: t-2 has no trace", task="t-2")
    phrases.judge("no trace", "error: t-2 has no trace", task="t-2")
    with pytest.raises(AmbiguousPhrase):  # other words: another message
        phrases.judge("not traced", "error: t-1 has no trace", task="t-1")


def test_another_clis_phrasebook_names_its_messages_as_the_default_one_does(
    tmp_path: Path,
) -> None:
    default = book(tmp_path, '"no access" = "bgagent: no access"\n"gone" = "bgagent: gone"\n')
    lenient = tmp_path / "lenient.toml"
    lenient.write_text('[messages]\n"no access" = "error: …"\n"gone" = "error: task … missing"\n')
    theirs = Phrasebook.load(lenient, names_from=default)
    theirs.judge("no access", "error: denied")
    with pytest.raises(AmbiguousPhrase):  # a refusal for the wrong reason cannot pass
        theirs.judge("no access", "error: task t-1 missing")
    everything = tmp_path / "everything.toml"
    everything.write_text('[messages]\n"no access" = "…"\n"gone" = "…"\n"theirs only" = "…"\n')
    with pytest.raises(AmbiguousPhrase):  # words that judge nothing
        Phrasebook.load(everything, names_from=default).judge("no access", "error: denied")


def test_a_missing_entry_fails_naming_the_message_never_passes(tmp_path: Path) -> None:
    phrases = book(tmp_path, '"refused" = "…"\n')
    with pytest.raises(MissingPhrase) as missing:
        phrases.judge("timed out", "error: timed out")
    assert isinstance(missing.value, AssertionError)
    assert str(missing.value) == (
        f'the phrasebook {phrases.path} has no entry for "timed out" '
        "(the CLI said 'error: timed out')"
    )
    assert missing.value.message == "timed out"
    assert missing.value.kind == "no phrasebook entry"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[messages\n", "phrasebook"),
        ('"a" = "b"\n', "no [messages] table"),
        ("messages = 3\n", "no [messages] table"),
        ('[messages]\n"a" = 3\n', '"a" must be text or { regex = "…" }, not 3'),
        ('[messages]\n"a" = { text = "b" }\n', '"a" must be text or'),
        ('[messages]\n"a" = {}\n', '"a" must be text or'),
        ('[messages]\n"a" = { regex = "b", also = "c" }\n', '"a" must be text or'),
        ('[messages]\n"a" = { regex = 3 }\n', '"a" must be text or'),
        ("[messages]\n\"a\" = { regex = '(unclosed' }\n", '"a": missing )'),
    ],
)
def test_an_unusable_phrasebook_is_refused_in_one_line(
    tmp_path: Path, text: str, says: str
) -> None:
    path = tmp_path / "theirs.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PhrasebookError) as refused:
        Phrasebook.load(path)
    assert says in str(refused.value)
    assert str(path) in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_phrasebook_that_cannot_be_read_is_refused(tmp_path: Path) -> None:
    for unreadable in (tmp_path / "absent.toml", tmp_path):
        with pytest.raises(PhrasebookError, match="phrasebook"):
            Phrasebook.load(unreadable)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[messages]")
    with pytest.raises(PhrasebookError, match="phrasebook"):
        Phrasebook.load(binary)


def messages_the_scenarios_check() -> set[str]:
    """Every quoted message of an `is told "…"` step (outlines: per example row), and
    the messages steps check by name."""
    told = re.compile(r' is told "(.*)"$')
    checked = {
        downloads.WHERE_WRITTEN,
        downloads.NO_ACCESS,
        downloads.NOT_AVAILABLE,
        downloads.RESUBMIT,
        downloads.INTERRUPTED,
        permissions.STORAGE_REFUSED_CHECK,
    }
    for feature_file in sorted(FEATURES.glob("*.feature")):
        for child in parse_feature(feature_file)["children"]:
            scenario = child.get("scenario")
            if scenario is None:
                continue
            rows = [
                {
                    header["value"]: cell["value"]
                    for header, cell in zip(
                        examples["tableHeader"]["cells"], row["cells"], strict=True
                    )
                }
                for examples in scenario["examples"]
                for row in examples["tableBody"]
            ] or [{}]
            for step in scenario["steps"]:
                found = told.search(step["text"])
                if found is None:
                    continue
                for row in rows:
                    message = found.group(1)
                    for name, value in row.items():
                        message = message.replace(f"<{name}>", value)
                    checked.add(message)
    return checked


def test_the_default_phrasebook_words_every_message_the_scenarios_check_and_no_other() -> None:
    default = Phrasebook.load(DEFAULT_PHRASEBOOK)
    checked = messages_the_scenarios_check()
    assert len(checked) > 20
    assert sorted(checked - set(default.entries)) == []
    assert sorted(set(default.entries) - checked) == []


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("fifo", "is no regular file"),
        ("device", "is no regular file"),
        ("folder", "is no regular file"),
        ("long", "longer than"),
    ],
)
def test_a_phrasebook_that_is_no_bounded_file_is_refused_at_once(
    tmp_path: Path, kind: str, reason: str
) -> None:
    """A pipe nobody writes, a device (one without end would fill the memory), a file
    past 1 MiB: refused, never waited for or read whole (in a thread, so a regression
    fails instead of hanging)."""
    path = tmp_path / "theirs.toml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path(os.devnull)
    elif kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(b"[messages]\n" + b"#" * MAX_BYTES)
    refused: list[BaseException] = []
    open_before = len(os.listdir("/proc/self/fd"))

    def load() -> None:
        try:
            Phrasebook.load(path)
        except PhrasebookError as error:
            refused.append(error)

    loading = threading.Thread(target=load, daemon=True)
    loading.start()
    loading.join(timeout=10)
    assert len(refused) == 1, "not refused at once"
    assert str(refused[0]).startswith(f"phrasebook {path}: ")
    assert reason in str(refused[0])
    assert len(os.listdir("/proc/self/fd")) == open_before  # nothing left open


def test_an_entry_that_backtracks_without_end_judges_nothing_in_bounded_time(
    tmp_path: Path,
) -> None:
    phrases = book(tmp_path, "\"slow\" = { regex = '(a|aa)+c' }\n")
    raised: list[BaseException] = []

    def judge() -> None:
        try:
            phrases.judge("slow", "a" * 40)
        except AssertionError as misjudged:
            raised.append(misjudged)

    judging = threading.Thread(target=judge, daemon=True)
    judging.start()
    judging.join(timeout=10)
    assert [type(error) for error in raised] == [SlowPhrase], "not judged in bounded time"
    assert "took more than 1 s" in str(raised[0])
