"""What the CLI shows of text it did not write (a server's message, a file name): one
line of plain text, never terminal control."""

from __future__ import annotations

import pytest

from bgagent.errors import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, été ✓", "plain text, été ✓"),
        ("\x1b[31mred\x1b[0m", "?[31mred?[0m"),  # a terminal escape
        ("two\nlines\r", "two?lines?"),
        ("\x9b2J", "?2J"),  # a C1 control
        ("\u202eevil\u202c", "?evil?"),  # a bidi override and its end
        ("\u2066isolated\u2069", "?isolated?"),
        ("\u200etoward", "?toward"),
        (42, "42"),
    ],
)
def test_text_from_elsewhere_is_shown_as_plain_text(text: object, shown: str) -> None:
    assert printable(text) == shown


def test_text_from_elsewhere_is_cut_to_its_limit_with_an_ellipsis() -> None:
    assert printable("x" * 300) == "x" * 300
    assert printable("x" * 301) == "x" * 299 + "…"
    assert printable("abcdef", limit=4) == "abc…"
