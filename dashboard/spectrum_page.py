"""Spectrum: eigenvalues of batch Gram matrices per checkpoint, RankMe and α over training."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.common import analysed_checkpoints, chosen_run
from explorer.figures import NEAR_ONE, spectrum_figure, spectrum_metrics_figure
from explorer.shapes_graph import default_shapes_spectrum

st.title("Spectrum")
st.caption(
    "With f = clip(z) the spectral loss times μ is −2E[fᵀf⁺] + E[(fᵀf′)²]; at its optimum E[f fᵀ] "
    "holds the top eigenvalues γ₁ = 1 ≥ γ₂ ≥ … of the augmentation graph's normalised adjacency "
    f"(HaoChen et al. 2021, Theorem 3.2). Eigenvalues of the estimate ≥ {NEAR_ONE} are starred: "
    "about one per well-separated cluster of the graph."
)

run, config = chosen_run(analysed_only=True)
by_epoch = analysed_checkpoints(run)

epochs = sorted(by_epoch)
epoch = (st.select_slider("Checkpoint (epoch)", epochs, value=epochs[-1])
         if len(epochs) > 1 else epochs[0])
exact = None
if config.dataset == "shapes" and st.toggle("Overlay the exact graph's spectrum", value=True,
                                            help="the default shapes sub-grid (explorer.graph)"):
    with st.spinner("Building the exact shapes graph (once, about 10 s)…"):
        width = len(by_epoch[epoch]["arrays"]["graph_c_eigs"])
        exact = np.asarray(default_shapes_spectrum())[:width]
st.plotly_chart(spectrum_figure(by_epoch[epoch], exact), key="spectrum")
st.plotly_chart(spectrum_metrics_figure(by_epoch), key="spectrum-metrics")
metrics = by_epoch[epoch].get("metrics", {})
st.dataframe(
    [{"features": part, **{k: v for k, v in values.items() if not isinstance(v, dict)}}
     for part, values in metrics.items() if isinstance(values, dict)],
    hide_index=True,
)
