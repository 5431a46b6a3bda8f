"""Plotly figures of spectra, layouts and probes: the dashboard's and notebooks' charts (the
Runs page's curves are Vega-Lite: :mod:`explorer.readings.curves`).

Pure functions from data (metrics records, analysis artifacts, probe results) to
``plotly.graph_objects.Figure``; no Streamlit here, so they are testable and reusable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explorer.readings.curves import PALETTE
from explorer.rundir.records import NEAR_ONE, AnalysisRecord, FeatureMetrics, as_analysis


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def log_ticks(low: float, high: float) -> list[float]:
    """Tick values 1, 2, 5, 10, 20, 50, … within [low, high]: labelled ticks only, so that a
    log axis never shows Plotly's unlabelled-digit minor ticks ("8 9")."""
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    ticks = [m * 10.0**e for e in decades for m in (1, 2, 5)]
    return [t for t in ticks if low <= t <= high]


#: An analysis record as the figures take it: typed, or the dict
#: :func:`explorer.rundir.artifacts.load_analysis` returns (read through
#: :func:`explorer.rundir.records.as_analysis`).
Analysis = AnalysisRecord | Mapping[str, Any]


def spectrum_figure(artifact: Analysis) -> go.Figure:
    """Eigenvalues of one checkpoint, largest first, on log axes.

    Args:
        artifact: one checkpoint's analysis with its arrays; uses the arrays
            ``projector_eigs_mean/std`` (batch Gram of f = clip(z), (min(B, d),)),
            ``backbone_eigs_mean``, ``graph_c_eigs`` (the augmentation graph estimate from views,
            (d,)) and, for ``shapes`` runs, ``exact_c_eigs`` (eigenvalues of E_w[f fᵀ] over every
            node of the exact graph) beside ``exact_gammas`` (the graph's γᵢ, which they reach
            at the optimum).
    """
    record = as_analysis(artifact)
    arrays = record.arrays
    fig = go.Figure()
    mean, std = arrays["projector_eigs_mean"], arrays["projector_eigs_std"]
    index = np.arange(1, len(mean) + 1)
    fig.add_trace(go.Scatter(x=index, y=mean, mode="lines", name="batch Gram (1/B)·F Fᵀ, projector",
                             error_y={"type": "data", "array": std, "visible": True,
                                      "thickness": 0.5}))
    if "backbone_eigs_mean" in arrays:
        eigs = arrays["backbone_eigs_mean"]
        scale = eigs[0] if len(eigs) and eigs[0] > 0 else 1.0
        fig.add_trace(go.Scatter(x=np.arange(1, len(eigs) + 1), y=eigs / scale, mode="lines",
                                 name="batch Gram, backbone (÷ λ₁)", line={"dash": "dot"}))
    graph = arrays["graph_c_eigs"]
    near = graph >= NEAR_ONE
    mu, fit = record.ball_mu, record.eigenvalue_cap
    cap = f"; at most {fit} fit in the ball μ = {mu:g}" if mu else ""
    # The count of starred eigenvalues lives in the line's legend entry, which is always shown
    # (an empty star trace would drop out of the legend).
    fig.add_trace(go.Scatter(x=np.arange(1, len(graph) + 1), y=graph, mode="lines",
                             name=f"graph estimate from views: eig E[f fᵀ] "
                                  f"(★ {int(near.sum())} ≥ {NEAR_ONE}{cap})", legendgroup="graph"))
    fig.add_trace(go.Scatter(x=np.flatnonzero(near) + 1, y=graph[near], mode="markers",
                             marker={"size": 9, "symbol": "star"}, showlegend=False,
                             legendgroup="graph", name=f"estimate ≥ {NEAR_ONE}"))
    if "exact_c_eigs" in arrays:
        exact = record.exact
        own = exact is not None and exact.graph.own
        which = "the run's own graph" if own else "the graph of graph views (not the run's)"
        c_eigs = arrays["exact_c_eigs"]
        fig.add_trace(go.Scatter(x=np.arange(1, len(c_eigs) + 1), y=c_eigs, mode="lines",
                                 line={"width": 3}, name="exact: eig E_w[f fᵀ] over every node"))
        gammas = arrays["exact_gammas"]
        fig.add_trace(go.Scatter(x=np.arange(1, len(gammas) + 1), y=gammas, mode="markers",
                                 marker={"symbol": "x", "size": 6, "color": "black"},
                                 name=f"γᵢ of {which} (the optimum's eigenvalues)"))
        if exact is not None and exact.ball_binds and exact.reachable_c_eigs:
            reachable = np.asarray(exact.reachable_c_eigs, dtype=np.float64)
            fig.add_trace(go.Scatter(x=np.arange(1, len(reachable) + 1), y=reachable,
                                     mode="markers", marker={"symbol": "circle-open", "size": 7},
                                     name=f"the reachable optimum's eig E_w[f fᵀ] (ball μ = "
                                          f"{exact.mu:g})"))
    # round-off tails (1e-19 and below) would squash the informative top: show 6 decades
    top = max(float(np.max(t.y)) for t in fig.data if t.y is not None and len(t.y))
    decades = [10.0**e for e in range(int(np.floor(np.log10(top))) - 6,
                                      int(np.floor(np.log10(top))) + 1)]
    fig.update_yaxes(type="log", title_text="eigenvalue", exponentformat="power",
                     tickvals=decades, range=[np.log10(top) - 6, np.log10(top) + 0.2],
                     minor={"showgrid": False, "ticks": ""})
    last = max(len(t.x) for t in fig.data if t.x is not None)
    fig.update_xaxes(type="log", title_text="index i", tickvals=log_ticks(1, max(last, 1)),
                     minor={"ticks": ""})
    fig.update_layout(height=460, margin={"t": 30}, legend={"orientation": "h", "y": -0.2},
                      title=f"epoch {record.epoch}")
    return fig


#: Eigenspaces whose span is drawn over training (every one in the top k is recorded).
SPAN_BLOCKS_PLOTTED = 5


def exact_progress_figure(artifacts: Mapping[int, Analysis]) -> go.Figure:
    """The exact metrics of every checkpoint against the epoch (``shapes`` runs).

    Left: the share of the provable optimum reached, L(f) / L* = 1 − gap (1 at the optimum, 0
    for f = 0, negative when f is worse than 0), against the unconstrained optimum −Σγᵢ² and
    against the best loss inside the ball; the axis follows the values. Right: how much of the
    first eigenspaces of the graph the features span (R², 1 = all), with the level that random
    features of the same rank reach (``span_chance``).
    """
    scored = {e: r.exact for e, r in sorted((e, as_analysis(a)) for e, a in artifacts.items())
              if r.exact is not None}
    epochs, exact = list(scored), list(scored.values())
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12, subplot_titles=(
        "share of the optimum reached, L(f)/L* (%)", "eigenspaces spanned by f (R²)"))
    # where the ball's optimum is only bracketed (the whole grid), the share of it is a bound
    bracketed = any(not r.reachable_certified for r in exact)
    reachable = ("of the reachable optimum (ball; at most: bracketed)" if bracketed
                 else "of the reachable optimum (ball)")
    series = ([r.share for r in exact], [r.reachable_share for r in exact])
    for i, (values, name) in enumerate(zip(series, ("of −Σγᵢ² (unconstrained)", reachable),
                                           strict=True)):
        fig.add_trace(go.Scatter(x=epochs, y=[None if v is None else 100 * v for v in values],
                                 mode="lines+markers",
                                 name=name, line={"color": _color(i)}), row=1, col=1)
    blocks = min(len(exact[0].blocks), SPAN_BLOCKS_PLOTTED) if exact else 0
    for b in range(blocks):
        first = exact[0].blocks[b]
        where = "the classes" if b == 0 else f"from eigenvalue {first.first}"
        label = f"γ = {first.gamma:.3g} (×{first.size}, {where})"
        # a record of an older format may list fewer blocks: a gap in the line there
        fig.add_trace(go.Scatter(x=epochs, y=[r.blocks[b].r2 if b < len(r.blocks) else None
                                              for r in exact],
                                 mode="lines+markers", name=label, line={"color": _color(2 + b)}),
                      row=1, col=2)
    shares = [100 * v for values in series for v in values if v is not None]
    low = min([0.0, *shares])  # a run worse than f = 0 has a negative share: show it
    fig.update_yaxes(range=[low - 5, max([100.0, *shares]) + 5], row=1, col=1)
    fig.add_hline(y=0, line={"color": "grey", "width": 1}, row=1, col=1)
    chance = [r.span_chance for r in exact]
    if any(c is not None for c in chance):
        fig.add_trace(go.Scatter(x=epochs, y=chance, mode="lines", line={"dash": "dot",
                                 "color": "grey"}, name="chance: rank(f)/n (random features)"),
                      row=1, col=2)
    fig.update_yaxes(range=[0, 1.05], row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=380, margin={"t": 40}, legend={"orientation": "h", "y": -0.35})
    return fig


def spectrum_metrics_figure(artifacts: Mapping[int, Analysis]) -> go.Figure:
    """RankMe, α-ReQ and the C₊ = C² stationarity residual of every analysed checkpoint against
    the epoch (the residual is 0 at every critical point of the loss, not only the optimum)."""
    records = {e: as_analysis(a) for e, a in artifacts.items()}
    epochs = sorted(records)
    fig = make_subplots(rows=1, cols=3, subplot_titles=(
        "RankMe (effective rank)", "α-ReQ (eigenvalue decay)",
        "C₊ = C² residual (0: stationary)"))
    for i, part in enumerate(("projector", "backbone")):
        values = [records[e].metrics.get(part, FeatureMetrics()) for e in epochs]
        style = {"color": _color(i)}
        fig.add_trace(go.Scatter(x=epochs, y=[v.rankme for v in values],
                                 mode="lines+markers", name=part, line=style, legendgroup=part),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=epochs, y=[v.alpha_req for v in values],
                                 mode="lines+markers", name=part, line=style, legendgroup=part,
                                 showlegend=False), row=1, col=2)
    residual = [records[e].metrics.get("graph", FeatureMetrics()).stationarity_residual
                for e in epochs]
    fig.add_trace(go.Scatter(x=epochs, y=residual, mode="lines+markers",
                             name="C₊ = C² residual (views)",
                             line={"color": _color(3)}), row=1, col=3)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=360, margin={"t": 40}, legend={"orientation": "h", "y": -0.35})
    return fig


#: The probes of an analysis record, by features: (on the projector's?, label).
PROBE_FEATURES = ((False, "backbone h"), (True, "projector output"))


def projector_features_label(record: Analysis, *, short: bool = False) -> str:
    """What an analysis record's projector features are, from its ``projector_features``:
    "projector output f = clip(z) (the theorem's f, μ = 10)" for the spectral loss, "projector
    output z/‖z‖ (the direction the loss sees)" for SimCLR and SimSiam; ``short`` drops the
    parenthesis. A record without them (written before them): "projector output"."""
    typed = as_analysis(record)
    reading, mu = typed.projector_reading, typed.projector_mu
    if reading == "clip(z)":
        detail = "the theorem's f" + ("" if mu is None else f", μ = {mu:g}")
        return "projector output f = clip(z)" + ("" if short else f" ({detail})")
    if reading == "z/|z|":
        return "projector output z/‖z‖" + ("" if short else " (the direction the loss sees)")
    return "projector output"


def probe_history(artifacts: Mapping[int, Analysis]) -> list[dict[str, Any]]:
    """The analysis sample's probe accuracies (in [0, 1]) at every analysed checkpoint, one row
    per epoch, oldest first: ``{"epoch", "backbone h linear", "backbone h kNN",
    "projector output linear", "projector output kNN"}``; a projector value is None where the
    artifact predates the projector probes (``probes_projector``)."""
    rows = []
    for epoch in sorted(artifacts):
        record = as_analysis(artifacts[epoch])
        row: dict[str, Any] = {"epoch": epoch}
        for projector, label in PROBE_FEATURES:
            for kind, name in (("linear", "linear"), ("knn", "kNN")):
                row[f"{label} {name}"] = record.accuracy(kind, projector=projector)
        rows.append(row)
    return rows


def probe_history_figure(artifacts: Mapping[int, Analysis],
                         projector_label: str = "projector output") -> go.Figure:
    """Linear and kNN accuracy (%) of the analysis sample's probes against the epoch: backbone
    features h (solid) and projector features (dashed; only the checkpoints that have them, no
    line when none has). Colour: the probe (linear, kNN).

    Args:
        artifacts: epoch -> analysis record (its ``probes`` and optional ``probes_projector``).
        projector_label: how the legend names the projector features, e.g. "f = clip(z)".
    """
    rows = probe_history(artifacts)
    fig = go.Figure()
    for (_, label), dash in zip(PROBE_FEATURES, ("solid", "dash"), strict=True):
        shown = projector_label if label == "projector output" else label
        for i, kind in enumerate(("linear", "kNN")):
            points = [(r["epoch"], 100 * r[f"{label} {kind}"]) for r in rows
                      if r[f"{label} {kind}"] is not None]
            if not points:
                continue
            fig.add_trace(go.Scatter(
                x=[e for e, _ in points], y=[a for _, a in points], mode="lines+markers",
                name=f"{kind}, {shown}", line={"color": _color(i), "dash": dash}))
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="accuracy on the test sample (%)")
    fig.update_layout(height=380, margin={"t": 30}, legend={"orientation": "h", "y": -0.25})
    return fig


def embedding_traces(labels: np.ndarray, num_classes: int) -> list[tuple[int, np.ndarray]]:
    """(class, rows) of each trace of :func:`embedding_figure`, in trace order: a selection's
    ``(curve_number, point_index)`` is row ``traces[curve_number][1][point_index]``."""
    labels = np.asarray(labels)
    return [(c, rows) for c in range(num_classes) if len(rows := np.flatnonzero(labels == c))]


def embedding_figure(
    layout: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    indices: np.ndarray,
    title: str = "",
    selected: np.ndarray | None = None,
) -> go.Figure:
    """A WebGL scatter of a 2-D layout (M, 2), one trace per class (see :func:`embedding_traces`).

    Each point's ``customdata`` is ``[row in layout, index in the test split]`` (shown on hover).
    ``selected``: rows drawn as selected (larger, the others faded), e.g. a selection carried
    over from another checkpoint; None or empty draws every point alike.
    """
    fig = go.Figure()
    chosen = None if selected is None or not len(selected) else set(np.asarray(selected).tolist())
    for c, rows in embedding_traces(labels, len(classes)):
        extra: dict[str, Any] = {}
        if chosen is not None:
            extra = {"selectedpoints": [i for i, row in enumerate(rows.tolist()) if row in chosen],
                     "selected": {"marker": {"size": 9, "opacity": 1.0}},
                     "unselected": {"marker": {"opacity": 0.15}}}
        fig.add_trace(go.Scattergl(
            x=layout[rows, 0], y=layout[rows, 1], mode="markers", name=classes[c],
            marker={"size": 4, "color": _color(c), "opacity": 0.8},
            customdata=np.stack([rows, indices[rows]], axis=1).tolist(),
            hovertemplate=f"{classes[c]}<br>test image %{{customdata[1]}}<extra></extra>",
            **extra,
        ))
    # dragmode zoom, not lasso or box: in Streamlit a click selects a point only when the drag
    # tool is not a selection tool (st.plotly_chart sets clickmode "event" for those).
    fig.update_layout(height=560, margin={"t": 30}, dragmode="zoom", title=title,
                      xaxis={"showticklabels": False}, yaxis={"showticklabels": False},
                      legend={"itemsizing": "constant"})
    return fig


def per_class_figure(classes: Sequence[str], series: Mapping[str, Sequence[float]],
                     y_title: str = "accuracy (%)") -> go.Figure:
    """Grouped bars of per-class fractions in [0, 1] (accuracy, or shares), shown in percent:
    one group per class, one bar per series."""
    fig = go.Figure()
    for i, (label, values) in enumerate(series.items()):
        fig.add_trace(go.Bar(x=list(classes), y=[100 * v for v in values], name=label,
                             marker_color=_color(i)))
    fig.update_layout(barmode="group", height=380, margin={"t": 30},
                      yaxis={"title": y_title, "range": [0, 100]},
                      legend={"orientation": "h", "y": -0.2})
    return fig


def confusion_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str]) -> go.Figure:
    """The confusion matrix [true][pred] as a heat map of row fractions, counts as text."""
    counts = np.asarray(confusion, dtype=np.float64)
    fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(
        z=fractions, x=list(classes), y=list(classes), colorscale="Blues", zmin=0, zmax=1,
        text=counts.astype(int), texttemplate="%{text}",
        hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.1%}<extra></extra>",
    ))
    fig.update_layout(height=420, margin={"t": 30}, xaxis={"title": "predicted"},
                      yaxis={"title": "true", "autorange": "reversed"})
    return fig


def image_grid(images: np.ndarray, columns: int, pad: int = 2) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) into one picture on a white ground.

    Colour images (C = 3) give (rows·(H+pad), columns·(W+pad), 3); grey ones (C = 1) give the
    2-D (rows·(H+pad), columns·(W+pad)) picture that ``st.image`` and PIL show as grey, a third
    of the bytes of an RGB copy (a sprite sheet of grey thumbnails is one-channel PNG).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, 1 or 3, H, W) images, got shape {images.shape}")
    n, channels, h, w = images.shape
    rows = max(1, -(-n // columns))
    grid = np.full((rows * (h + pad), columns * (w + pad), channels), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = (
            images[i].transpose(1, 2, 0)
        )
    return grid[..., 0] if channels == 1 else grid


def grouped_grid(images: np.ndarray, group: int, columns: int, pad: int = 2,
                 gap: int = 16) -> np.ndarray:
    """Tile uint8 images (N, C, H, W) in groups of ``group`` side by side (``pad`` pixels apart),
    ``columns`` groups to a row with ``gap`` white pixels between groups, so that each group
    (an image and its two views) reads as one. Grey images give a 2-D picture (see
    :func:`image_grid`)."""
    images = np.asarray(images)
    count = len(images) // group
    tiles = np.stack([image_grid(images[i * group:(i + 1) * group], group, pad)
                      for i in range(count)])  # (count, H', W') grey or (count, H', W', 3)
    tiles = tiles[:, None] if tiles.ndim == 3 else tiles.transpose(0, 3, 1, 2)
    return image_grid(tiles, columns, gap)


def reachable_optimum_figure(
    mus: Sequence[float],
    losses: Sequence[float],
    unconstrained: float,
    *,
    mu_run: float | None = None,
    max_sq_norm: float | None = None,
) -> go.Figure:
    """The best population loss L(f) reachable with every ‖f(x)‖² ≤ μ, against μ (log axis).

    Args:
        mus: (m,) squared radii of the ball (f = clip(z), so μ is the loss's own μ).
        losses: (m,) the ball-constrained optimum at each μ
            (:func:`explorer.graphs.spectral.reachable_optimum_curve`).
        unconstrained: −Σ_{i≤k} γᵢ², the optimum without the ball (a horizontal line).
        mu_run: a run's μ, marked by a vertical line from the lowest loss to 0; None: no mark.
        max_sq_norm: max_x ‖f*(x)‖² (:func:`explorer.graphs.spectral.max_optimal_sq_norm`): from
            this μ on
            the unconstrained optimum fits in the ball; marked by a vertical line; None: no mark.
    """
    mus, losses = np.asarray(mus, dtype=float), np.asarray(losses, dtype=float)
    order = np.argsort(mus)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=mus[order], y=losses[order], mode="lines+markers",
                             name="reachable optimum, ‖f(x)‖² ≤ μ"))
    fig.add_trace(go.Scatter(x=[mus.min(), mus.max()], y=[unconstrained, unconstrained],
                             mode="lines", line={"dash": "dash", "color": "black"},
                             name=f"unconstrained optimum −Σγᵢ² = {unconstrained:.3f}"))
    # vertical marks as traces, not shapes: they sit at data x on the log axis and get a legend
    span = [min(losses.min(), unconstrained), 0.0]
    if max_sq_norm is not None:
        fig.add_trace(go.Scatter(x=[max_sq_norm] * 2, y=span, mode="lines",
                                 line={"dash": "dot", "color": "green"},
                                 name=f"μ = max‖f*‖² = {max_sq_norm:.3g}: f* fits from here"))
    if mu_run is not None:
        fig.add_trace(go.Scatter(x=[mu_run] * 2, y=span, mode="lines", line={"color": "red"},
                                 name=f"the run's μ = {mu_run:g}"))
    fig.update_xaxes(tickvals=log_ticks(float(mus.min()), float(mus.max())), minor={"ticks": ""})
    fig.update_layout(xaxis_type="log", xaxis_title="μ (ball ‖f(x)‖² ≤ μ, f = clip(z))",
                      yaxis_title="population loss L(f)", height=380,
                      margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


def sweep_figure(rows: Sequence[Mapping[str, Any]], key: str) -> go.Figure:
    """A sweep's guarantee and probes against the swept value, in percent.

    Left: E(f) of the networks and E(f*) of the optimum, each as its bracket (the marker at the
    best head found, a bar down to the bound that holds for every head), the proven bound
    8α/(1 − γ_{k+1}) + 2α and α. The bound is often vacuous (above 100%); an error rate cannot
    be, so the axis stops at 100% and the values above it are drawn as ▲ at the top edge, their
    value in the hover text.
    Right: the share of the optimum 100·(1 − gap), linear and kNN probe accuracy.

    Args:
        rows: :func:`explorer.rundir.sweep.sweep_table` rows (rates as fractions, ``None`` if
            missing).
        key: the swept field, the x axis's title. Numeric values share a numeric axis; other
            values (a loss, a backbone) are categories in the sweep's order.
    """
    values = [row["value"] for row in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    x = values if numeric else [str(v) for v in values]

    def percent(field: str) -> list[float | None]:
        return [None if row.get(field) is None else 100 * row[field] for row in rows]

    bound = percent("bound")
    above = [i for i, b in enumerate(bound) if b is not None and b > 100]
    bound_name = "bound 8α/(1 − γ_{k+1}) + 2α"
    if above:
        bound_name += f" ({len(above)} of {len(rows)} above 100%: ▲, off the axis)"
    titles = ("downstream error and its guarantee (%)", "share of the optimum and probes (%)")
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.1)
    left = [("error", "E(f) of the network (bar: down to the bound for every head)", "solid",
             "circle"),
            ("optimum_error", "E(f*) of the optimum (bar: the same)", "dash", "diamond"),
            ("bound", bound_name, "dot", "square"), ("alpha", "α (Assumption 3.5)", "dashdot", "x")]
    right = [("share", "share of the optimum 100·(1 − gap)", "solid", "circle"),
             ("linear", "linear probe accuracy", "dash", "diamond"),
             ("knn", "kNN probe accuracy", "dot", "square")]
    for col, series in ((1, left), (2, right)):
        for i, (field, name, dash, symbol) in enumerate(series):
            y = bound if field == "bound" else percent(field)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name,
                                     line={"color": _color(i + 4 * (col - 1)), "dash": dash},
                                     marker={"symbol": symbol, "size": 8},
                                     legend="legend" if col == 1 else "legend2",
                                     error_y=_bracket_bar(rows, field, y)), row=1, col=col)
    if above:
        fig.add_trace(go.Scatter(x=[x[i] for i in above], y=[100.0] * len(above),
                                 mode="markers", name="bound above 100% (value in hover)",
                                 marker={"symbol": "triangle-up", "size": 12, "color": _color(2)},
                                 hovertext=[f"bound {bound[i]:.0f}%" for i in above],
                                 showlegend=False), row=1, col=1)
    shown = [v for f in ("error", "optimum_error", "alpha") for v in percent(f) if v is not None]
    shown += [b for b in bound if b is not None and b <= 100]
    top = 100.0 if above else max([*shown, 1.0]) * 1.1
    fig.update_yaxes(range=[0, top * 1.03], title_text="%", row=1, col=1)
    fig.update_yaxes(range=[0, 103], row=1, col=2)
    axis = {"title_text": key} if numeric else {"title_text": key, "type": "category"}
    fig.update_xaxes(**axis)
    # one legend under each chart, each naming its own lines
    fig.update_layout(height=500, margin={"t": 40, "b": 40},
                      legend={"orientation": "h", "y": -0.22, "x": 0.0, "xanchor": "left"},
                      legend2={"orientation": "h", "y": -0.22, "x": 0.55, "xanchor": "left"})
    return fig


def _bracket_bar(rows: Sequence[Mapping[str, Any]], field: str,
                 upper: list[float | None]) -> dict[str, Any] | None:
    """An error bar from E's upper side (the best head found) down to its lower side (the
    bound for every head), where the rows hold one; None for other series."""
    if field not in ("error", "optimum_error"):
        return None
    below = [0.0 if u is None or row.get(f"{field}_lower") is None
             else max(0.0, u - 100 * row[f"{field}_lower"])
             for row, u in zip(rows, upper, strict=True)]
    return {"type": "data", "symmetric": False, "array": [0.0] * len(rows),
            "arrayminus": below, "thickness": 1.5, "width": 6}


def class_components_figure(arrays: Mapping[str, np.ndarray], classes: Sequence[str]) -> go.Figure:
    """Do the classes behave as components (:mod:`explorer.analysis.class_components`)? Left: the
    eigenvalues of the between-class part M = Σ_c p_c m_c m_cᵀ of E[f fᵀ] (all 1 when every class
    is a disconnected component at the optimum); right: the cosines of the class means (1: two
    classes share a component, 0: apart)."""
    eigs = np.asarray(arrays["class_between_eigs"], dtype=np.float64)
    cosines = np.asarray(arrays["class_cosines"], dtype=np.float64)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55], horizontal_spacing=0.14,
                        subplot_titles=("eigenvalues of the between-class part M",
                                        "cosine of the class means"))  # fmt: skip
    fig.add_trace(go.Bar(x=np.arange(1, len(eigs) + 1), y=eigs, marker_color=_color(0),
                         name="M", hovertemplate="i = %{x}: %{y:.3f}<extra></extra>"),
                  row=1, col=1)  # fmt: skip
    fig.add_hline(y=1.0, line_dash="dot", line_color="gray", row=1, col=1,
                  annotation_text="1: a disconnected class", annotation_position="top right")
    fig.add_hline(y=NEAR_ONE, line_dash="dash", line_color="gray", row=1, col=1)
    fig.update_yaxes(range=[0, max(1.1, float(eigs.max()) * 1.05)], row=1, col=1)
    fig.update_xaxes(title_text="i", dtick=1 if len(eigs) <= 20 else None, row=1, col=1)
    names = [str(c) for c in classes]
    fig.add_trace(go.Heatmap(z=cosines, x=names, y=names, zmin=-1, zmax=1,
                             colorscale="RdBu", reversescale=True, showscale=True,
                             colorbar={"x": 1.02, "len": 0.9, "title": "cos"},
                             hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>"),
                  row=1, col=2)  # fmt: skip
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_layout(height=380, showlegend=False, margin={"t": 40, "b": 40})
    return fig
