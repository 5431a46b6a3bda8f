"""Plotly figures of the Graph page: W, the spectrum of Abar, its top eigenvectors, the
degradation curve (the ``shapes`` graph's with the paper's downstream error and bound) and a
table's training (:mod:`explorer.graphs.clusters`, :mod:`explorer.graphs.class_change_curve`,
:mod:`explorer.graphs.table_training`).

Pure functions from arrays to ``plotly.graph_objects.Figure``; no Streamlit here. Large graphs
are drawn block-averaged (about ``max_bins`` rows and columns, each block inside one cluster), so
that a 2,000-node W stays a small chart in the browser.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from explorer.graphs.class_change_curve import GuaranteeCurve
from explorer.graphs.clusters import DegradationCurve
from explorer.graphs.table_training import TrainPoint


def _bins(labels: np.ndarray, max_bins: int) -> list[np.ndarray]:
    """Consecutive groups of node indices (nodes sorted by cluster), each inside one cluster: one
    node per group up to ``max_bins`` nodes; above, each cluster of s nodes is split evenly into
    ceil(s / b) groups of at most b nodes, b = ceil(n / max_bins), as even as s allows: equal
    clusters get equal groups, and no group mixes two clusters (at most ``max_bins`` + k groups
    for k clusters)."""
    labels = np.asarray(labels)
    n = len(labels)
    if np.any(np.diff(labels) < 0):
        raise ValueError("nodes must be sorted by cluster")
    if n <= max_bins:
        return [np.array([i]) for i in range(n)]
    block = -(-n // max_bins)
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1, n]
    return [
        part
        for a, b in zip(starts[:-1], starts[1:], strict=True)
        for part in np.array_split(np.arange(a, b), -(-(b - a) // block))
    ]


def _blocks(bins: list[np.ndarray]) -> str:
    """What a binned cell or row is, for a title: "means over blocks of b nodes, each inside one
    cluster" (b a range when the blocks differ)."""
    sizes = sorted({len(b) for b in bins})
    what = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    return f"means over blocks of {what} nodes, each inside one cluster"


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
    ``max_bins`` nodes each cell is the mean over a block of nodes, blocks inside one cluster and
    equal for equal clusters (:func:`_bins`). Blank cells: no edge."""
    bins = _bins(labels, max_bins)
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
        title=f"W: {W.shape[0]} nodes" + (f" ({_blocks(bins)})" if len(bins) < W.shape[0] else ""),
    )
    return fig


def spectrum_bars(
    gammas: np.ndarray, before_gap: int, k: int, num_nodes: int, max_shown: int = 60
) -> go.Figure:
    """The top eigenvalues gamma_1 >= gamma_2 >= ... of Abar, the ``before_gap`` before their
    largest drop (:func:`explorer.graphs.clusters.largest_gap`) in colour, that drop and the number
    of
    clusters k marked."""
    shown = np.asarray(gammas)[:max_shown]
    index = np.arange(1, len(shown) + 1)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=index,
            y=shown,
            marker_color=np.where(index <= before_gap, "#EF553B", "#636EFA"),
            hovertemplate="γ%{x} = %{y:.4f}<extra></extra>",
            showlegend=False,
        )
    )
    if before_gap < len(gammas):
        drop = float(gammas[before_gap - 1] - gammas[before_gap])
        fig.add_vline(
            x=before_gap + 0.5,
            line_dash="dash",
            line_color="#EF553B",
            annotation_text=f"largest gap: {before_gap} before it (drop {drop:.3f})",
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
    w = np.asarray(degrees, dtype=np.float64)
    return features_heatmap(vectors / np.sqrt(w / w.sum())[:, None], labels, classes, max_bins)


def features_heatmap(
    f: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    max_bins: int = 300,
    rows: str = "nodes",
) -> go.Figure:
    """f = D^{-1/2} v (n, k) (:func:`eigenvector_heatmap`), rows ordered by cluster; ``rows``
    says what the rows are when they are not every node (a sample, for a graph too large)."""
    n, k = f.shape
    bins = _bins(labels, max_bins)
    starts = np.array([b[0] for b in bins])
    sizes = np.array([len(b) for b in bins], dtype=np.float64)
    means = np.add.reduceat(f, starts, axis=0) / sizes[:, None]
    limit = float(np.abs(means).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=means,
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
        title=f"f = D^-1/2 v of the top {k} eigenvectors (rows: "
        + (f"{_blocks(bins)})" if len(bins) < n else f"{rows})"),
        height=420,
        margin={"t": 40, "b": 30, "l": 10, "r": 10},
    )
    return fig


def class_weights_heatmap(
    class_weights: np.ndarray, class_nodes: np.ndarray, classes: Sequence[str]
) -> go.Figure:
    """log10 of W's mean weight per pair of nodes in each pair of classes: (Yᵀ W Y)[a, b] /
    (n_a n_b), Y the class indicators (the heatmap of a graph too large to draw W). Blank: no
    edge between the two classes."""
    sizes = np.asarray(class_nodes, dtype=np.float64)
    means = np.asarray(class_weights) / np.outer(sizes, sizes)
    with np.errstate(divide="ignore"):
        z = np.where(means > 0, np.log10(means), np.nan)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(classes),
            y=list(classes),
            colorscale="Viridis",
            colorbar={"title": "log10 w"},
            customdata=np.asarray(class_weights),
            hovertemplate="%{y} → %{x}: log10 of the mean w = %{z:.2f}, mass %{customdata:.4f}"
            "<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed", showgrid=False, scaleanchor="x")
    fig.update_xaxes(showgrid=False)
    fig.update_layout(
        height=420,
        margin={"t": 30, "b": 30, "l": 10, "r": 10},
        title=f"W by class: mean weight per node pair, {int(sizes.sum()):,} nodes",
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


def guarantee_figure(curve: GuaranteeCurve, current_alpha: float, k: int) -> go.Figure:
    """The ``shapes`` graph as class changes grow
    (:func:`explorer.graphs.class_change_curve.guarantee_curve`),
    against α (Assumption 3.5 of HaoChen et al. 2021), not the raw class_change_p: E(f*) as a
    band (the best head found above, the labelling bound below), the proven γ_{k+1} bound,
    Theorem 3.7's order where finite, the probe's accuracy, γ_k and γ_{k+1}; the current α
    marked. Points where γ_k = γ_{k+1} (f* not unique) are hollow.

    The y axis stops at 1.05: a bound above 1 says nothing and leaves the chart (its name says
    from which α)."""
    x = curve.alpha
    fig = go.Figure()
    for name, values, color in [
        ("γ_k", curve.gamma_k, "#636EFA"),
        ("γ_{k+1}", curve.gamma_next, "#00CC96"),
    ]:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=values,
                name=name,
                mode="lines",
                line={"color": color, "dash": "dot"},
                hovertemplate=f"{name}: %{{y:.3f}}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve.probe_accuracy,
            name="linear probe accuracy (images' classes)",
            mode="lines+markers",
            line={"color": "#AB63FA"},
            marker={"size": 4},
            hovertemplate="probe accuracy: %{y:.3f}<extra></extra>",
        )
    )
    vacuous = curve.bound_passes_one()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve.bound,
            name="bound 8α/(1 − γ_{k+1}) + 2α on E(f*), proven"
            + (f" (above 1 from α = {vacuous:.3f}: off the chart)" if vacuous is not None else ""),
            mode="lines",
            line={"color": "black", "dash": "dash"},
            hovertemplate="bound: %{y:.3f}<extra></extra>",
        )
    )
    finite = np.isfinite(curve.theorem_order) & (curve.alpha > 0)  # α = 0: order 0, no bound
    if finite.any():
        fig.add_trace(
            go.Scatter(
                x=x[finite],
                y=curve.theorem_order[finite],
                name="Theorem 3.7: α log k / ρ²_{⌊k/2⌋} (order, constant 1)",
                mode="lines",
                line={"color": "gray", "dash": "dashdot"},
                hovertemplate="Theorem 3.7 order: %{y:.3f}<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve.optimum_error_lower,
            name="E(f*)'s lower side: a bound that no linear head on f* can beat",
            mode="lines",
            line={"color": "#EF553B", "width": 1, "dash": "dot"},
            hovertemplate="E(f*) ≥ %{y:.3f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=curve.optimum_error,
            customdata=curve.values,
            fill="tonexty",
            fillcolor="rgba(239, 85, 59, 0.15)",
            name=f"E(f*) of the top-{k} eigenvector features: the best head found (the band "
            "down to the lower side holds the paper's E)",
            mode="lines+markers",
            line={"color": "#EF553B", "width": 3},
            marker={"symbol": np.where(curve.tied, "circle-open", "circle"), "size": 7},
            hovertemplate="E(f*) ≤ %{y:.3f} (class_change_p = %{customdata:.4f})<extra></extra>",
        )
    )
    fig.add_vline(x=current_alpha, line_color="gray", line_dash="dash", annotation_text="now")
    fig.update_layout(
        title=f"as class changes grow: E(f*), its bound and the recovery (k = {k})",
        height=460,
        hovermode="x unified",
        margin={"t": 40, "b": 40, "l": 10, "r": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(
        title_text="α: least fraction of augmentations that change the class (Assumption 3.5)"
    )
    fig.update_yaxes(range=[-0.05, 1.05])
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
