"""Expected failures: one line for the user, never a traceback."""


class CliError(Exception):
    """A failure the user can act on; its message is printed as is."""

    exit_code = 1


def printable(value: object, *, limit: int = 300) -> str:
    """``value`` as one line of plain text for a message: no control characters
    (terminal escapes, line breaks, C1 codes, bidi overrides), at most ``limit``
    characters."""
    text = "".join(c if c.isprintable() and not _is_bidi(c) else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_bidi(char: str) -> bool:
    return "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069"
