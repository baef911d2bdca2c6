"""The one exception type a user can cause.

A :class:`GuardError` carries a message meant for a person: the CLI prints it as a
single line and exits non-zero, without a traceback.
"""


class GuardError(Exception):
    """An error caused by input, configuration or environment, with a one-line message."""

    exit_code = 2
