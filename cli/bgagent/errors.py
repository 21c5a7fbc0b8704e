"""Expected failures: one line for the user, never a traceback."""


class CliError(Exception):
    """A failure the user can act on; its message is printed as is."""

    exit_code = 1
