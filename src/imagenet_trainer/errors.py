"""The one exception type for bad user input; the CLI turns it into a one-line message and exit code 2."""


class UsageError(Exception):
    """Bad input or bad usage: the message names the file or option and says what to do."""


class CheckError(Exception):
    """A result failed its own check (exit code 1, one line): the message says what and what was kept."""
