"""The one exception type for mistakes a user can fix, and the one way to quote another error."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix (unknown name, missing files, bad value).

    The CLI prints ``str(err)`` on one line and exits with status 2, without a traceback.
    Programming errors (our own code passing bad shapes) raise ``ValueError`` instead.
    """


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of ``err``'s message (at most ``limit`` characters), or its type's name.

    For quoting a library's multi-line error inside a one-line :class:`UserError`.
    """
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__
