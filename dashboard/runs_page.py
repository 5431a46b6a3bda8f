"""Runs: every run in a table, and the training curves of the chosen runs overlaid."""

from __future__ import annotations

import streamlit as st

from dashboard.common import runs_dir
from dashboard.memory import drop_missing, kept
from explorer.errors import UserError
from explorer.figures import training_curves
from explorer.overview import RunSummary, summaries
from explorer.runs import Run

st.title("Runs")


def _state(summary: RunSummary) -> str:
    """A finished run may still be probed and analysed by its live process: say so."""
    if summary.activity in (None, "training"):
        return summary.state
    return f"{summary.state}, now {summary.activity}"


@st.fragment(run_every=3)
def runs_table() -> None:
    rows = summaries(runs_dir())
    if not rows:
        st.info(f"No runs in `{runs_dir()}` yet: launch one on the **Train** page.")
        return
    st.dataframe(
        [
            {
                "name": s.name,
                "state": _state(s),
                "dataset": s.dataset,
                "backbone": s.backbone,
                "loss": s.loss,
                "μ": "n/a (no μ)" if s.mu is None else f"{s.mu:g}",  # SimCLR, SimSiam
                "epochs": s.epochs_text if s.state != "corrupt" else "?",
                "progress": s.progress,
                "linear %": None if s.linear is None else round(100 * s.linear, 1),
                "kNN %": None if s.knn is None else round(100 * s.knn, 1),
            }
            for s in rows
        ],
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
        },
    )
    for s in rows:
        if s.state in ("corrupt", "failed", "died") and s.error:
            st.warning(f"`{s.name}` is {s.state}: {s.error}")


runs_table()

rows = [s for s in summaries(runs_dir()) if s.state != "corrupt"]
if rows:
    st.subheader("Training curves")
    names = [s.name for s in rows]
    # The first visit shows the run picked elsewhere (or the newest); after that, the user's
    # own choice, whatever is picked on other pages.
    default = [n for n in names if n == st.session_state.get("selected_run")] or names[-3:]
    drop_missing("runs-overlay", names)
    chosen = kept("runs-overlay", default, st.multiselect,
                  "Overlay runs (spectral beside SimCLR and SimSiam)", names)
    metrics = {}
    for name in chosen:
        try:
            metrics[name] = Run(runs_dir() / name).metrics()
        except (OSError, UserError):  # deleted since the listing
            st.warning(f"Run `{name}` is gone.")
    if any(metrics.values()):
        st.plotly_chart(training_curves(metrics), key="curves")
        st.caption("The spectral loss is −2·E[z·z⁺] + E[(z·z′)²] (HaoChen et al. 2021, eq. 5): "
                   "its positive part pulls two views of one image together, its negative part "
                   "pushes apart views of different images. SimCLR and SimSiam losses sit on "
                   "their own scales.")
    elif chosen:
        st.info("No metrics logged yet.")
