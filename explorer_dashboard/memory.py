"""Widget values that outlive their page.

Streamlit forgets a widget's value at the end of a run that does not draw it, so leaving a page
and coming back reset its widgets: the Train form came back at the preset's 450 epochs with an
empty run name. A widget drawn through :func:`kept` keeps a copy of its value under a key of its
own (which Streamlit never cleans up) and gets it back when its page is drawn again.

Its value is set through session state only when the widget is re-created, never on the runs in
between: a value set there is pushed to the browser, and would overwrite what the user is typing
in another field while a rerun is under way. The copy is taken by the widget's ``on_change``
callback, which Streamlit calls before the next run starts: a run cut short by the next change or
by a page change (the user types, presses Enter and moves on) would not reach the widget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

#: Where a widget's copy is kept: ``KEPT_PREFIX + key``.
KEPT_PREFIX = "kept:"


def restore(key: str, default: Any) -> None:
    """Before the widget ``key`` is drawn: its value from the last visit, else ``default``.

    The widget must then be drawn without a default of its own (``value=``/``index=``):
    Streamlit warns when both set it.
    """
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(KEPT_PREFIX + key, default)


def keep(key: str) -> None:
    """After the widget ``key`` is drawn: remember its value for the next visit."""
    st.session_state[KEPT_PREFIX + key] = st.session_state[key]


def forget(key: str) -> None:
    """Drop what is remembered of ``key`` (the widget's own value stays until its next run)."""
    st.session_state.pop(KEPT_PREFIX + key, None)


def drop_missing(key: str, options: list[Any]) -> None:
    """Take out of the list-valued widget ``key`` (and what is kept of it) the values that are
    no longer offered (a deleted run): Streamlit refuses a value outside the options."""
    for name in (key, KEPT_PREFIX + key):
        value = st.session_state.get(name)
        if isinstance(value, list) and any(v not in options for v in value):
            st.session_state[name] = [v for v in value if v in options]


def kept(key: str, default: Any, draw: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``draw(*args, key=key, **kwargs)``, a widget that comes back as the user left it."""
    restore(key, default)
    return draw(*args, key=key, on_change=keep, args=(key,), **kwargs)
