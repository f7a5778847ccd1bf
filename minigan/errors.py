"""The one exception type for a user's mistake (bad path, bad data, bad checkpoint, no network).

Library code raises `MiniganError` with a message that says what went wrong and what to do; the
training scripts catch it, print that single line and exit with status 2 (no traceback). Everything
else -- a bug -- still raises normally, with its traceback.
"""


class MiniganError(Exception):
    """A problem the user can fix; its message is one line: what failed and what to do."""
