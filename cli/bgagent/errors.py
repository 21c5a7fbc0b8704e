"""Expected failures: one line for the user, never a traceback."""


class CliError(Exception):
    """A failure the user can act on; its message is printed as is."""

    exit_code = 1


def printable(value: object, *, limit: int = 300) -> str:
    """``value`` as one line of plain text for a message: no control characters
    (terminal escapes, line breaks, C1 codes) and no format characters (bidi
    overrides and isolates: Python counts none of them printable), at most ``limit``
    characters."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"
