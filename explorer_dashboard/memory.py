"""Widget values that outlive their page.

Streamlit forgets a widget's value at the end of a run that does not draw it, so leaving a page
and coming back reset its widgets: the Train form came back at the preset's 450 epochs with an
empty run name. A widget drawn through :func:`kept` is kept by Streamlit itself
(``persist_state="session"``): its value stays in session state while it is not drawn, on this
page (the Train form's folded groups) or after a page change, and comes back when it is drawn.

Why not a copy of each value taken in the widget's ``on_change`` callback (this module's first
design): under load the copy missed values a user had typed (issue 28, item 8). With fast reruns
Streamlit starts a new script thread for each change while the previous run is still stopping,
and a change could reach session state with its callback never called (seen in the server's
log: the rerun that carried the typed value began, its callback did not run, and the form came
back at the preset's value). The persisted value is the widget's own state: there is no second
copy to miss.

A value is set through session state only before its widget is first drawn (:func:`restore`),
never on the runs in between: a value set there is pushed to the browser, and would overwrite
what the user is typing in another field while a rerun is under way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st


def restore(key: str, default: Any) -> None:
    """Before the widget ``key`` is drawn: ``default`` unless it holds a value already.

    The widget must then be drawn without a default of its own (``value=``/``index=``):
    Streamlit warns when both set it.
    """
    if key not in st.session_state:
        st.session_state[key] = default


def drop_missing(key: str, options: list[Any]) -> None:
    """Take out of the list-valued widget ``key`` the values that are no longer offered (a
    deleted run): Streamlit refuses a value outside the options."""
    value = st.session_state.get(key)
    if isinstance(value, list) and any(v not in options for v in value):
        st.session_state[key] = [v for v in value if v in options]


def kept(key: str, default: Any, draw: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``draw(*args, key=key, **kwargs)``, a widget that comes back as the user left it."""
    restore(key, default)
    return draw(*args, key=key, persist_state="session", **kwargs)
