"""The run the Train page watches: its own picker, and a finished run's summary with its pages.

The picker shares ``selected_run`` with the other pages' run pickers (dashboard.common), so a run
picked here opens on Spectrum, and a run launched here is watched at once; but it is the Train
page's own widget, so resuming an older run no longer means visiting another page to pick it.
"""

from __future__ import annotations

import streamlit as st
from streamlit.errors import StreamlitPageNotFoundError

from explorer.readings.overview import RunSummary

PICKER = "train-picker"
#: The pages a finished run is read on: (script, label, icon).
RUN_PAGES = [
    ("spectrum_page.py", "Spectrum: the theorem, measured", ":material/ssid_chart:"),
    ("embeddings_page.py", "Embeddings", ":material/scatter_plot:"),
    ("probe_page.py", "Probe", ":material/target:"),
]


def _picked() -> None:
    st.session_state["selected_run"] = st.session_state[PICKER]


def watch_picker(names: list[str]) -> str | None:
    """A select box of ``names``, at the run picked last on any page (else the newest)."""
    if not names:
        return None
    selected = st.session_state.get("selected_run")
    if selected not in names:
        selected = names[-1]
    st.session_state["selected_run"] = selected
    # Set only when it differs: a value set through session state is pushed to the browser,
    # and on every 2-second rerun it would close the list the user is opening.
    if st.session_state.get(PICKER) != selected:
        st.session_state[PICKER] = selected
    return st.selectbox(
        "Watch run",
        names,
        key=PICKER,
        on_change=_picked,
        help="The run shown below, with its Stop or Resume; the other pages open on it too",
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def finished_summary(summary: RunSummary) -> None:
    """What a finished run reached (its probes, its share of the optimum) and where to read it."""
    cells = st.columns(4)
    cells[0].metric(
        "linear probe",
        _percent(summary.linear),
        help="test accuracy of a linear classifier on the final backbone features",
    )
    cells[1].metric("kNN probe", _percent(summary.knn))
    share_help = "L(f)/L* on the exact augmentation graph: 100% at the optimum, 0% for f = 0" + (
        f" (checkpoint {summary.share_epoch})" if summary.share_epoch else ""
    )
    cells[2].metric("of the provable optimum", _percent(summary.share), help=share_help)
    if summary.linear is None and summary.share is None:
        cells[3].caption(
            "Not probed or analysed yet: `explorer probe` and `explorer analyze` fill these in."
        )
    links = st.columns(len(RUN_PAGES))
    for cell, (script, text, icon) in zip(links, RUN_PAGES, strict=True):
        try:
            cell.page_link(script, label=text, icon=icon)
        except StreamlitPageNotFoundError:  # the page drawn alone (AppTest), not by app.py
            cell.caption(text)
