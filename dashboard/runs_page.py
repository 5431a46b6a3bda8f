"""Runs: every run in a table, and the training curves of the chosen runs overlaid."""

from __future__ import annotations

import streamlit as st

from dashboard.common import run_names, runs_dir
from dashboard.memory import drop_missing, kept
from explorer.errors import UserError
from explorer.figures import run_colors, share_overlay_figure, training_curves
from explorer.overview import RunSummary, share_history, summaries
from explorer.runs import Run

st.title("Runs")


def _state(summary: RunSummary) -> str:
    """A finished run may still be probed and analysed by its live process: say so."""
    if summary.activity in (None, "training"):
        return summary.state
    return f"{summary.state}, now {summary.activity}"


def _percent(value: float | None) -> str:
    """A fraction in percent, or — where there is none yet (a run still training)."""
    return "—" if value is None else f"{100 * value:.1f}"


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
                "augment": s.augment or "—",
                "μ": "n/a (no μ)" if s.mu is None else f"{s.mu:g}",  # SimCLR, SimSiam
                "lr": "—" if s.lr is None else f"{s.lr:g}",
                "batch": "—" if s.batch_size is None else str(s.batch_size),
                "epochs": s.epochs_text if s.state != "corrupt" else "?",
                "progress": s.progress,
                "linear %": _percent(s.linear),
                "kNN %": _percent(s.knn),
                "of optimum %": _percent(s.share),
            }
            for s in rows
        ],
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1),
            "of optimum %": st.column_config.TextColumn(
                help="L(f)/L* at the latest analysed checkpoint, on the exact augmentation "
                     "graph (shapes runs): 100 at the provable optimum, 0 for f = 0, below 0 "
                     "for features worse than f = 0; — before an analysis"),
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
        # Colours by place among every run (the Train page's too), not by the chosen ones.
        st.plotly_chart(training_curves(metrics, run_colors(run_names())), key="curves")
        st.caption("The spectral loss is −2·E[z·z⁺] + E[(z·z′)²] (HaoChen et al. 2021, eq. 5): "
                   "its positive part pulls two views of one image together, its negative part "
                   "pushes apart views of different images. SimCLR and SimSiam losses sit on "
                   "their own scales.")
    elif chosen:
        st.info("No metrics logged yet.")
    histories = {name: share_history(Run(runs_dir() / name)) for name in chosen}
    histories = {name: history for name, history in histories.items() if history}
    if histories:
        st.subheader("Share of the provable optimum")
        st.plotly_chart(share_overlay_figure(histories, run_colors(run_names())), key="shares")
        st.caption("L(f)/L* on each run's exact augmentation graph (shapes runs, analysed "
                   "checkpoints): 100% at the optimum −Σγᵢ², 0% for f = 0. A run scored on a "
                   "graph it did not train on (the image-space run) can sit below 0. The "
                   "Spectrum page reads each run's in full.")
