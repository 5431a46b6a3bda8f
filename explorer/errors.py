"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (unknown name, missing files, bad value).

    The CLI prints ``str(err)`` on one line and exits with status 2, without a traceback.
    Programming errors (our own code passing bad shapes) raise ``ValueError`` instead.
    """
