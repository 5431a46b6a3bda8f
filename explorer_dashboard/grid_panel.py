"""The Graph page's Shapes mode beyond the dense sub-grid: larger sub-grids up to the whole grid,
read matrix-free (explorer.graphs.grid_reading). The reading takes seconds (2-5 s for the whole
grid's 46,800 nodes on 2 quiet cores, a minute under load), so it runs beside the page: the page
answers at once, shows the stage under way and the time spent, and draws the reading on arrival.
A newer slider value supersedes the reading of the last one (:mod:`explorer_dashboard.latest`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
import streamlit as st

from explorer.graphs import grid_reading
from explorer.readings.graph_figures import class_weights_heatmap, features_heatmap, spectrum_bars
from explorer.rundir.guarantee_record import bracket_text, percent
from explorer_dashboard.latest import Job, LatestReadings

#: How often a pending reading is looked for (a fragment rerun; it holds the GIL the solve needs).
POLL_S = 1.0

Settings = tuple[int, float, float, float, float]  # grid, crop, rotation, colour, class change


def _read(settings: Settings, on_stage: Callable[[int, str], None]) -> grid_reading.GridReading:
    return grid_reading.grid_reading(*settings, on_stage=on_stage)


@st.cache_resource(show_spinner=False)
def readings() -> LatestReadings[grid_reading.GridReading]:
    """One per server: the readings asked for, solved one at a time in a thread."""
    return LatestReadings(_read, keep=8, name="grid-reading")


def viewer() -> str:
    """This browser session, for :meth:`LatestReadings.request`."""
    return st.session_state.setdefault("grid-viewer", uuid.uuid4().hex)


def grid_label(index: int) -> str:
    """The sub-grid's name and size, for the page's choice."""
    return f"{grid_reading.GRIDS[index][0]} ({grid_reading.grid_tuples(index):,} natural tuples)"


def reading_panel(job: Job[grid_reading.GridReading], polling: bool) -> None:
    """The reading once solved; until then its stage and the time spent, looked at again every
    :data:`POLL_S`."""
    reading = job.future
    if not reading.done():
        stages = grid_reading.STAGES
        index, name = job.stage or (-1, "waiting for the reading before it")
        st.progress(max(index, 0) / len(stages), text=(
            f"Reading the graph matrix-free, once for these settings: step {index + 1} of "
            f"{len(stages)}, {name} ({job.elapsed():.0f} s)" if index >= 0 else
            f"Reading the graph matrix-free: {name}…"))
        return
    if polling:
        st.rerun()  # drawn by a full run, which also stops this timer
    if reading.cancelled() or reading.exception() is not None:
        st.error(f"The reading failed: {reading.exception() if not reading.cancelled() else ''}"
                 ". Choose a smaller sub-grid.")
        return
    draw(reading.result())


def draw(r: grid_reading.GridReading) -> None:
    """The reading as the dense sub-grid's page shows its graph: the metrics, the guarantee, W
    (by class), the spectrum, f* (on a sample)."""
    k = len(r.classes)
    gammas, point = r.gammas, r.guarantee
    st.caption(
        f"{r.num_nodes:,} images from {r.num_tuples:,} factor tuples, natural data uniform over "
        f"them, {k} classes; W ({r.num_nodes:,}²) is never formed: each number below comes from "
        f"products W·F by the kernel's Kronecker parts (read in {r.seconds:.1f} s)."
    )
    metrics = st.columns(6)
    metrics[0].metric("nodes", f"{r.num_nodes:,}")
    metrics[1].metric(
        "γᵢ before the largest gap", str(r.before_gap),
        help=f"the largest drop among the top {len(gammas)} eigenvalues of Ā computed is after "
        f"γ_{r.before_gap}: {gammas[r.before_gap - 1]:.3f} → {gammas[r.before_gap]:.3f}",
    )
    metrics[2].metric(f"γ_k (k = {k})", f"{gammas[k - 1]:.3f}")
    metrics[3].metric("γ_{k+1}", f"{gammas[k]:.3f}")
    metrics[4].metric("clustering ARI", f"{r.ari:.3f}",
                      help="spectral clustering of every node against the classes")
    metrics[5].metric("probe accuracy", f"{100 * r.probe_accuracy:.1f}%",
                      help="logistic regression on the top-k eigenvector features, fitted on "
                      "half of the nodes, scored on the other half")
    row = st.columns(6)
    row[0].metric("α (Assumption 3.5)", percent(point.alpha))
    row[1].metric(f"E(f*) (k = {k})", bracket_text(point.optimum),
                  help="the paper's downstream error of the top-k eigenvector features: the best "
                  f"head found ({point.optimum.head}) from above; from below "
                  f"{point.optimum.lower_method}. Computed from two products of the natural "
                  "kernel A: no search over labellings on a graph this large"
                  + ("; γ_k = γ_{k+1}: the eigensolver's choice of f*" if point.tied else ""))
    row[2].metric("bound 8α/λ + 2α", percent(point.bound),
                  help="λ = 1 − γ_{k+1}; proven in docs/THEORY.md; above 100% it says nothing")
    row[3].metric("Theorem 3.7: α log k / ρ²",
                  "∞" if not np.isfinite(point.theorem_order) else f"{point.theorem_order:.3g}")
    left, right = st.columns(2)
    left.plotly_chart(class_weights_heatmap(r.class_weights, r.class_nodes, r.classes),
                      key="grid-weights")
    left.caption(
        "W summed over each pair of classes (one product W·Y with the class indicators) and "
        "divided by the pairs of nodes: the diagonal is the views that keep their class, the "
        "cells off it the class changes (blank: none). The mass of each cell is in the hover."
    )
    right.plotly_chart(spectrum_bars(gammas, r.before_gap, k, r.num_nodes), key="grid-spectrum")
    right.caption(
        f"The top {len(gammas)} eigenvalues of Ā = D^-1/2 W D^-1/2 (LOBPCG on the operator); "
        "red: before the largest drop."
    )
    left, right = st.columns(2)
    left.plotly_chart(
        features_heatmap(r.sample_features, r.sample_labels, r.classes, len(r.sample),
                         rows=f"{len(r.sample)} sampled nodes"),
        key="grid-eigenvectors",
    )
    left.caption(
        f"f = D^-1/2 v on {grid_reading.SAMPLE_PER_CLASS} nodes drawn at random from each class, "
        "in class order (the ARI and the probe above read every node). Without class change each "
        "column is constant on a class: cluster indicators up to a rotation."
    )
    right.info(
        "The table trainer and the class-change sweep need the dense W: choose the default "
        "sub-grid for them. A network on the whole grid, scored on its own graph: "
        "`explorer train --preset shapes-grid-demo`, then its Spectrum page."
    )


def grid_section(settings: Settings) -> None:
    """The matrix-free reading of ``settings`` (answering at once, drawn when solved)."""
    job = readings().request(settings, viewer())
    st.fragment(run_every=None if job.future.done() else POLL_S)(reading_panel)(
        job, not job.future.done()
    )
