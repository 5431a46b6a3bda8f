"""The dashboard's Streamlit script: ``explorer app`` (or ``make app``) serves it on
http://127.0.0.1:8501 through :mod:`explorer_dashboard.__main__`.

Runs live in ``$EXPLORER_RUNS_DIR`` (default ``runs/``); an empty one receives the shipped demo
runs, unless the server is read-only. Each page is a module beside this one; the ``explorer``
package does the work.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import streamlit as st

from explorer_dashboard.preload import PLOTLY, TABLES_AND_CURVES, preload

# The icon from this repository, served by the dashboard itself: a Material icon would be fetched
# from Google's font server, which fails offline.
st.set_page_config(page_title="Spectral contrastive explorer",
                   page_icon=str(Path(__file__).resolve().parent / "favicon.png"),
                   layout="wide")
PAGES = [
    # The default page is served at "/" only; the hidden twin answers a link to /runs.
    st.Page("runs_page.py", title="Runs", icon=":material/list:", default=True),
    st.Page("runs_page.py", title="Runs", icon=":material/list:", url_path="runs",
            visibility="hidden"),
    st.Page("train_page.py", title="Train", icon=":material/rocket_launch:",
            url_path="train"),
    st.Page("embeddings_page.py", title="Embeddings", icon=":material/scatter_plot:",
            url_path="embeddings"),
    st.Page("spectrum_page.py", title="Spectrum", icon=":material/ssid_chart:",
            url_path="spectrum"),
    st.Page("probe_page.py", title="Probe", icon=":material/target:",
            url_path="probe"),
    st.Page("augmentations_page.py", title="Augmentations", icon=":material/shuffle:",
            url_path="augmentations"),
    st.Page("graph_page.py", title="Graph", icon=":material/hub:", url_path="graph"),
    st.Page("sweep_page.py", title="Sweeps", icon=":material/tune:",
            url_path="sweeps"),
]
page = st.navigation(PAGES)
# On the Runs page, the first thing drawn, before the imports that read runs (scipy, pandas):
# the browser loads the page's table and chart code while the server reads the runs.
# Other pages have it loaded once they are drawn, not while they draw.
runs_page_first = page.title == "Runs"
if runs_page_first:
    preload(TABLES_AND_CURVES)

from explorer.rundir.demo import install_demo_runs  # noqa: E402
from explorer_dashboard.common import read_only, runs_dir  # noqa: E402


@st.cache_resource(show_spinner=False)
def _first_start(runs: str, writable: bool) -> dict[str, Any]:
    """Once per server (per runs directory and mode, which a server never changes; a test
    process runs many): ship the demo runs into an empty runs directory (a read-only server
    writes nothing)."""
    installed = install_demo_runs(runs) if writable else []
    return {"installed": installed, "announced": False}


#: Seconds between the first page's script ending and the imports of the other pages: the page
#: is still being sent and drawn, and torch's import holds Python's global lock for long
#: stretches (its libraries load under it), which stalls the server's answer.
WARM_UP_DELAY_S = 2.0


@st.cache_resource(show_spinner=False)
def _warm_up() -> threading.Thread:
    """Once per server, shortly after the first page is sent: import what the other pages need
    (torch, the models, scikit-learn, Plotly; about 2 s on 2 cores) in a background thread, so
    that the first visit to each page does not pay it."""

    def work() -> None:
        time.sleep(WARM_UP_DELAY_S)
        import explorer.builders  # noqa: F401  (torch, the data sets, models and views)
        import explorer.graphs.spectral  # noqa: F401  (scikit-learn)
        import explorer.losses  # noqa: F401
        import explorer.readings.figures  # noqa: F401  (Plotly)
        import explorer.readings.gallery  # noqa: F401

    thread = threading.Thread(target=work, name="explorer-warm-up", daemon=True)
    thread.start()
    return thread


first_start = _first_start(str(runs_dir()), not read_only())
if first_start["installed"] and not first_start["announced"]:  # said once, not on every page
    first_start["announced"] = True
    st.toast(f"Installed the demo runs {', '.join(first_start['installed'])} into {runs_dir()}")

st.sidebar.caption(
    f"Runs directory: `{runs_dir()}`  \nSpectral contrastive learning "
    "(HaoChen, Wei, Gaidon, Ma, NeurIPS 2021): the loss learns the top eigenvectors of the "
    "augmentation graph."
)
if read_only():
    st.sidebar.info("Read-only: every page reads the runs; launching, stopping, resuming, "
                    "renaming, deleting and importing are refused (started with --read-only).")
elif st.get_option("server.address") not in ("127.0.0.1", "localhost", "::1"):
    st.sidebar.warning("This server listens beyond this machine: anyone who reaches it can launch "
                       "training and delete runs. Restart it with `explorer app --read-only`, or "
                       "without --host to listen on 127.0.0.1 only.")
try:
    page.run()
finally:  # also after st.stop(): the first page is drawn, now load the others' imports
    _warm_up()
    # and, in the browser, the other pages' chart code
    preload(PLOTLY if runs_page_first else TABLES_AND_CURVES + PLOTLY, after_drawn=True)
