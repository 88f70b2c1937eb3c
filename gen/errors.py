"""The one exception type the command line turns into a single ``sparsegen: error:`` line."""

__all__ = ["UsageError"]


class UsageError(Exception):
    """Bad input from the user: unknown design or parameter, bad value, bad tensor, bad path.

    The message is one line that names the offending thing; the CLI prints it and exits 2.
    """
