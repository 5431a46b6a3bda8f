"""The dashboard: ``streamlit run app.py`` (or ``make app``), then open http://127.0.0.1:8501.

Runs live in ``$EXPLORER_RUNS_DIR`` (default ``runs/``); an empty one receives the shipped demo
runs. Each page is a module under ``dashboard/``; the ``explorer`` package does the work.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.common import runs_dir
from explorer.rundir.demo import install_demo_runs

# The icon from this repository, served by the dashboard itself: a Material icon would be fetched
# from Google's font server, which fails offline.
st.set_page_config(page_title="Spectral contrastive explorer",
                   page_icon=str(Path(__file__).resolve().parent / "assets" / "favicon.png"),
                   layout="wide")


@st.cache_resource(show_spinner=False)
def _first_start() -> dict[str, Any]:
    """Once per server: ship the demo runs into an empty runs directory."""
    return {"installed": install_demo_runs(runs_dir()), "announced": False}


@st.cache_resource(show_spinner=False)
def _warm_up() -> threading.Thread:
    """Once per server, after the first page is drawn: import what the other pages need (torch,
    the models, scikit-learn; about 2 s on 2 cores) in a background thread, so that the first
    visit to each page does not pay it."""

    def work() -> None:
        import explorer.builders  # noqa: F401  (torch, the data sets, models and views)
        import explorer.graphs.spectral  # noqa: F401  (scikit-learn)
        import explorer.losses  # noqa: F401
        import explorer.readings.gallery  # noqa: F401

    thread = threading.Thread(target=work, name="explorer-warm-up", daemon=True)
    thread.start()
    return thread


first_start = _first_start()
if first_start["installed"] and not first_start["announced"]:  # said once, not on every page
    first_start["announced"] = True
    st.toast(f"Installed the demo runs {', '.join(first_start['installed'])} into {runs_dir()}")

PAGES = [
    # The default page is served at "/" only; the hidden twin answers a link to /runs.
    st.Page("dashboard/runs_page.py", title="Runs", icon=":material/list:", default=True),
    st.Page("dashboard/runs_page.py", title="Runs", icon=":material/list:", url_path="runs",
            visibility="hidden"),
    st.Page("dashboard/train_page.py", title="Train", icon=":material/rocket_launch:",
            url_path="train"),
    st.Page("dashboard/embeddings_page.py", title="Embeddings", icon=":material/scatter_plot:",
            url_path="embeddings"),
    st.Page("dashboard/spectrum_page.py", title="Spectrum", icon=":material/ssid_chart:",
            url_path="spectrum"),
    st.Page("dashboard/probe_page.py", title="Probe", icon=":material/target:",
            url_path="probe"),
    st.Page("dashboard/augmentations_page.py", title="Augmentations", icon=":material/shuffle:",
            url_path="augmentations"),
    st.Page("dashboard/graph_page.py", title="Graph", icon=":material/hub:", url_path="graph"),
    st.Page("dashboard/sweep_page.py", title="Sweeps", icon=":material/tune:",
            url_path="sweeps"),
]
page = st.navigation(PAGES)
st.sidebar.caption(
    f"Runs directory: `{runs_dir()}`  \nSpectral contrastive learning "
    "(HaoChen, Wei, Gaidon, Ma, NeurIPS 2021): the loss learns the top eigenvectors of the "
    "augmentation graph."
)
if st.get_option("server.address") not in ("127.0.0.1", "localhost", "::1"):
    st.sidebar.warning("This server listens beyond this machine: anyone who reaches it can launch "
                       "training. Start it from the repository root (its .streamlit/config.toml "
                       "binds 127.0.0.1) or pass --server.address 127.0.0.1.")
try:
    page.run()
finally:  # also after st.stop(): the first page is drawn, now load the others' imports
    _warm_up()
