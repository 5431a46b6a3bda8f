"""The dashboard: ``streamlit run app.py`` (or ``make app``), then open http://127.0.0.1:8501.

Runs live in ``$EXPLORER_RUNS_DIR`` (default ``runs/``); an empty one receives the shipped demo
runs. Each page is a module under ``dashboard/``; the ``explorer`` package does the work.
"""

from __future__ import annotations

import streamlit as st

from dashboard.common import runs_dir
from explorer.demo import install_demo_runs

st.set_page_config(page_title="Spectral contrastive explorer", page_icon="🌈", layout="wide")


@st.cache_resource(show_spinner=False)
def _first_start() -> list[str]:
    """Once per server: ship the demo runs into an empty runs directory."""
    return install_demo_runs(runs_dir())


installed = _first_start()
if installed:
    st.toast(f"Installed the demo runs {', '.join(installed)} into {runs_dir()}")

PAGES = [
    st.Page("dashboard/runs_page.py", title="Runs", icon="📋", default=True, url_path="runs"),
    st.Page("dashboard/train_page.py", title="Train", icon="🚀", url_path="train"),
    st.Page("dashboard/embeddings_page.py", title="Embeddings", icon="🗺️", url_path="embeddings"),
    st.Page("dashboard/spectrum_page.py", title="Spectrum", icon="📉", url_path="spectrum"),
    st.Page("dashboard/probe_page.py", title="Probe", icon="🎯", url_path="probe"),
    st.Page("dashboard/augmentations_page.py", title="Augmentations", icon="🔀",
            url_path="augmentations"),
    st.Page("dashboard/graph_page.py", title="Graph", icon=":material/hub:", url_path="graph"),
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
page.run()
