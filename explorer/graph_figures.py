"""Plotly figures of the Graph page: W, the spectrum of Abar, its top eigenvectors, the
degradation curve and a table's training (:mod:`explorer.graph_lab`,
:mod:`explorer.graph_training`).

Pure functions from arrays to ``plotly.graph_objects.Figure``; no Streamlit here. Large graphs
are drawn block-averaged (at most ``max_bins`` rows and columns), so that a 2,000-node W stays a
small chart in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.graph_lab import DegradationCurve
from explorer.graph_training import TrainPoint


def _bins(n: int, max_bins: int) -> list[np.ndarray]:
    """Consecutive groups of node indices: one per node up to ``max_bins`` nodes."""
    return np.array_split(np.arange(n), min(n, max_bins))


def _cluster_ticks(
    labels: np.ndarray, bins: list[np.ndarray], classes: Sequence[str]
) -> dict[str, object]:
    """Axis ticks at the middle of each cluster, in bin coordinates (nodes sorted by cluster)."""
    first = np.array([labels[b[0]] for b in bins])
    positions = [
        float(np.flatnonzero(first == c).mean()) for c in range(len(classes)) if (first == c).any()
    ]
    names = [classes[c] for c in range(len(classes)) if (first == c).any()]
    return {"tickmode": "array", "tickvals": positions, "ticktext": names}


def weights_heatmap(
    W: np.ndarray, labels: np.ndarray, classes: Sequence[str], max_bins: int = 160
) -> go.Figure:
    """log10 of the edge weights w(x, x') (W summing to 1), nodes ordered by cluster; above
    ``max_bins`` nodes each cell is the mean over a block of nodes. Blank cells: no edge."""
    bins = _bins(W.shape[0], max_bins)
    starts = np.array([b[0] for b in bins])
    sums = np.add.reduceat(np.add.reduceat(np.asarray(W), starts, axis=0), starts, axis=1)
    sizes = np.array([len(b) for b in bins], dtype=np.float64)
    means = sums / np.outer(sizes, sizes)
    with np.errstate(divide="ignore"):
        z = np.where(means > 0, np.log10(means), np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            colorscale="Viridis",
            colorbar={"title": "log10 w"},
            hovertemplate="row %{y}, column %{x}: log10 w = %{z:.2f}<extra></extra>",
        )
    )
    ticks = _cluster_ticks(labels, bins, classes)
    fig.update_xaxes(**ticks, showgrid=False)
    fig.update_yaxes(**ticks, autorange="reversed", showgrid=False, scaleanchor="x")
    fig.update_layout(
        height=420,
        margin={"t": 30, "b": 30, "l": 10, "r": 10},
        title=f"W: {W.shape[0]} nodes"
        + (f" (means over blocks of ~{W.shape[0] // len(bins)})" if len(bins) < W.shape[0] else ""),
    )
    return fig


def spectrum_bars(
    gammas: np.ndarray, threshold: float, k: int, num_nodes: int, max_shown: int = 60
) -> go.Figure:
    """The top eigenvalues gamma_1 >= gamma_2 >= ... of Abar, those above ``threshold`` in
    colour, the threshold dashed and the number of clusters k marked."""
    shown = np.asarray(gammas)[:max_shown]
    index = np.arange(1, len(shown) + 1)
    near = shown > threshold
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=index,
            y=shown,
            marker_color=np.where(near, "#EF553B", "#636EFA"),
            hovertemplate="γ%{x} = %{y:.4f}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_hline(
        y=threshold,
        line_dash="dash",
        line_color="gray",
        annotation_text=f"{threshold} ({int(near.sum())} above)",
        annotation_position="top right",
    )
    fig.add_vline(
        x=k + 0.5,
        line_dash="dot",
        line_color="black",
        annotation_text=f"k = {k}",
        annotation_position="bottom right",
    )
    what = "all" if len(gammas) == num_nodes and len(shown) == len(gammas) else f"top {len(shown)}"
    fig.update_layout(
        title=f"eigenvalues of Ā ({what} of {num_nodes})",
        height=420,
        margin={"t": 40, "b": 40, "l": 10, "r": 10},
        bargap=0.15,
    )
    fig.update_xaxes(title_text="i")
    fig.update_yaxes(title_text="γᵢ", range=[min(0.0, float(shown.min())), 1.05])
    return fig


def eigenvector_heatmap(
    vectors: np.ndarray,
    degrees: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    max_bins: int = 300,
) -> go.Figure:
    """The features f_i(x) = v_i(x) / sqrt(w_x) (f = D^{-1/2} v) of the top-k eigenvectors v_i of
    Abar (columns), one row per node ordered by cluster (block means above ``max_bins`` nodes).

    ``degrees`` are the w_x (any scale: normalised to sum 1 here). These f are the optimum f* of
    the spectral contrastive loss without its sqrt(gamma_i) per column, with E_w[f_i f_j] =
    delta_ij; on disconnected clusters each column is constant on every cluster (v itself is
    sqrt(w_x) times that, so it varies with the degrees inside a cluster).
    """
    n, k = vectors.shape
    w = np.asarray(degrees, dtype=np.float64)
    f = vectors / np.sqrt(w / w.sum())[:, None]
    bins = _bins(n, max_bins)
    starts = np.array([b[0] for b in bins])
    sizes = np.array([len(b) for b in bins], dtype=np.float64)
    rows = np.add.reduceat(f, starts, axis=0) / sizes[:, None]
    limit = float(np.abs(rows).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=rows,
            x=[f"f{i + 1}" for i in range(k)],
            colorscale="RdBu",
            zmid=0,
            zmin=-limit,
            zmax=limit,
            hovertemplate="%{x}, row %{y}: %{z:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(**_cluster_ticks(labels, bins, classes), autorange="reversed", showgrid=False)
    fig.update_layout(
        title=f"f = D^-1/2 v of the top {k} eigenvectors (rows: nodes)",
        height=420,
        margin={"t": 40, "b": 30, "l": 10, "r": 10},
    )
    return fig


def degradation_figure(curve: DegradationCurve, current: float, parameter: str) -> go.Figure:
    """gamma_k, gamma_{k+1}, the probe's accuracy and the ARI against the swept ``parameter``,
    the current value marked."""
    fig = go.Figure()
    series = [
        ("γ_k", curve.gamma_k, "#636EFA", "dot"),
        ("γ_{k+1}", curve.gamma_next, "#00CC96", "dot"),
        ("linear probe accuracy", curve.probe_accuracy, "#EF553B", "solid"),
        ("spectral clustering ARI", curve.ari, "#AB63FA", "solid"),
    ]
    for name, values, color, dash in series:
        fig.add_trace(
            go.Scatter(
                x=curve.values,
                y=values,
                name=name,
                mode="lines+markers",
                line={"color": color, "dash": dash},
                hovertemplate=f"{name}: %{{y:.3f}}<extra></extra>",
            )
        )
    fig.add_vline(x=current, line_color="gray", line_dash="dash", annotation_text="now")
    fig.update_layout(
        title=f"as {parameter} grows",
        height=420,
        hovermode="x unified",
        margin={"t": 40, "b": 40, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(title_text=parameter)
    fig.update_yaxes(range=[min(-0.05, float(np.min(curve.ari)) - 0.05), 1.05])
    return fig


def training_loss_figure(
    history: Sequence[TrainPoint], optimum: float, ball: float | None, mu: float
) -> go.Figure:
    """The exact population loss L(f) of the trained table against steps, with the optimum
    -sum gamma_i^2 and, when the ball binds, the best loss inside the ball."""
    steps = [p.step for p in history]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=[p.loss for p in history],
            name="L(f), exact",
            mode="lines+markers",
            line={"color": "#636EFA"},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=[p.batch_loss for p in history],
            name="μ × batch loss",
            mode="lines",
            line={"color": "#B6BEF5", "dash": "dot"},
        )
    )
    fig.add_hline(
        y=optimum,
        line_color="#EF553B",
        line_dash="dash",
        annotation_text=f"−Σγᵢ² = {optimum:.3f}",
        annotation_position="bottom right",
    )
    if ball is not None:
        fig.add_hline(
            y=ball,
            line_color="#00CC96",
            line_dash="dash",
            annotation_text=f"best inside the ball μ = {mu:g}: {ball:.3f}",
            annotation_position="top right",
        )
    low = min([optimum] + [p.loss for p in history])
    fig.update_layout(
        title="population loss of the table",
        height=380,
        hovermode="x unified",
        margin={"t": 40, "b": 40, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(range=[low - 0.05 * abs(low), 0.05 * abs(low)])
    return fig


def second_moment_figure(eigenvalues: np.ndarray, gammas: np.ndarray) -> go.Figure:
    """Eigenvalues of E_w[f f^T] beside gamma_1..gamma_d: equal at the unconstrained optimum
    (necessary, not sufficient: the optimum also needs sqrt(w) f to span the top-d eigenspace)."""
    index = [f"{i + 1}" for i in range(len(gammas))]
    fig = go.Figure(
        [
            go.Bar(x=index, y=gammas, name="γᵢ of Ā", marker_color="#EF553B"),
            go.Bar(x=index, y=eigenvalues, name="eigenvalues of E_w[f fᵀ]", marker_color="#636EFA"),
        ]
    )
    fig.update_layout(
        title="E_w[f fᵀ] against γ",
        height=380,
        barmode="group",
        margin={"t": 40, "b": 40, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title_text="i")
    return fig
