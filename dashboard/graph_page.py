"""Graph: build an augmentation graph, see its spectrum find the clusters, train a table on it."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import streamlit as st

from explorer import graph_lab
from explorer.figures import NEAR_ONE
from explorer.graph_figures import (
    degradation_figure,
    eigenvector_heatmap,
    second_moment_figure,
    spectrum_bars,
    training_loss_figure,
    weights_heatmap,
)
from explorer.graph_training import TableTrainer

CHUNK, MAX_STEPS, TICK_S = 100, 3000, 0.25  # training: steps per tick, steps in all, tick period
FIRST_STEPS, FIRST_CHUNK = 200, 20  # the fast start in small chunks, so the descent is seen
MUS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
BACKGROUND_NODES = 1000  # above, the ball optimum is solved in a thread beside the training
INLINE_CURVE_NODES = 400  # above, the degradation curve is swept in a thread beside the page
CURVE_POLL_S = 0.5  # how often a pending curve is looked for

Spec = tuple[Any, ...]  # ("clusters", sizes, within, between, degree) or ("shapes", 4 probs)


def build(spec: Spec, swept: float | None = None) -> graph_lab.LabGraph:
    """The graph of ``spec``; ``swept`` replaces its between/within ratio or its shape_p."""
    if spec[0] == "clusters":
        _, sizes, within, between, degree = spec
        between = between if swept is None else swept * within
        return graph_lab.cluster_graph(sizes, within, between, degree=degree)
    _, crop_p, rotate_p, color_p, shape_p = spec
    return graph_lab.shapes_lab_graph(
        crop_p, rotate_p, color_p, shape_p if swept is None else swept
    )


@st.cache_resource(show_spinner=False)
def background() -> ThreadPoolExecutor:
    """Workers for the slow solves (the ball optimum, the degradation sweep) that must hold
    neither a training tick nor a slider: two, so that a sweep does not queue behind a solve."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="graph-page")


@st.cache_resource(max_entries=6, show_spinner=False)  # a 2,000-node W is 32 MB
def cached_graph(spec: Spec) -> graph_lab.LabGraph:
    return build(spec)


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_summary(spec: Spec) -> graph_lab.GraphSummary:
    return graph_lab.summarize(cached_graph(spec), threshold=NEAR_ONE)


def sweep_curve(structure: Spec) -> graph_lab.DegradationCurve:
    """The curve depends on everything but the swept value (``structure`` has it set to None)."""
    sweep = graph_lab.CLUSTER_SWEEP if structure[0] == "clusters" else graph_lab.SHAPE_SWEEP
    return graph_lab.degradation_curve(lambda value: build(structure, value), sweep)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_curve(structure: Spec, num_nodes: int) -> Future[graph_lab.DegradationCurve]:
    """The sweep of ``structure``: solved at once on small graphs, beside the page above
    :data:`INLINE_CURVE_NODES` nodes (1-3 s there), so a slider answers before the curve does."""
    if num_nodes <= INLINE_CURVE_NODES:
        done: Future[graph_lab.DegradationCurve] = Future()
        done.set_result(sweep_curve(structure))
        return done
    return background().submit(sweep_curve, structure)


st.title("Graph")
st.caption(
    "An augmentation graph has the augmented data as nodes and, as the weight w(x, x′) of an "
    "edge, the probability that x and x′ are two views of one datum (HaoChen et al. 2021, "
    "Section 3.1). Build one, see its spectrum find the clusters, and train a table of "
    "features on the spectral contrastive loss: it learns the top eigenvectors."
)

kind = st.radio(
    "Graph",
    ["Clusters", "Shapes"],
    horizontal=True,
    key="kind",
    help="k clusters joined by weak edges, or the exact graph of the shapes dataset; "
    "both are augmentation graphs W = Kᵀ diag(p) K of a kernel K(x | x̄)",
)
cols = st.columns(6)
if kind == "Clusters":
    k = cols[0].slider("clusters k", 2, 8, 3, key="k")
    largest = cols[1].slider("nodes in the largest cluster", 5, 250, 40, key="largest")
    smallest = cols[2].slider(
        "smallest cluster (% of the largest)", 20, 100, 100, step=5, key="smallest"
    )
    degree = cols[3].slider(
        "augmentations inside the cluster",
        3,
        50,
        10,
        key="degree",
        help="one natural datum per node; its augmentation lands on this "
        "many nodes of its cluster (capped at its size): itself, its "
        "neighbour on a ring through the cluster, which keeps the "
        "cluster connected, and random others",
    )
    within = cols[4].slider(
        "within-cluster weight",
        0.1,
        1.0,
        1.0,
        step=0.05,
        key="within",
        help="the weight of each of those nodes",
    )
    between = cols[5].slider(
        "between-cluster weight",
        0.0,
        1.0,
        0.01,
        step=0.01,
        key="between",
        help="the weight of each of as many nodes in every other cluster, "
        "spread evenly over it; each datum's weights are then "
        "normalised, so only between / within matters. 0: the "
        "clusters are the connected components",
    )
    sizes = graph_lab.cluster_sizes(k, largest, max(2, round(largest * smallest / 100)))
    spec: Spec = ("clusters", sizes, within, between, float(degree))
    structure: Spec = ("clusters", sizes, within, None, float(degree))
    swept_name, swept_now = "between / within weight", between / within
else:
    crop = cols[0].slider(
        "crop p",
        0.0,
        1.0,
        0.5,
        step=0.05,
        key="crop",
        help="probability that a view redraws position and scale",
    )
    rotate = cols[1].slider("rotation p", 0.0, 1.0, 0.5, step=0.05, key="rotate")
    color = cols[2].slider("colour p", 0.0, 1.0, 0.8, step=0.05, key="color")
    shape = cols[3].slider(
        "shape-changing p",
        0.0,
        1.0,
        0.0,
        step=0.01,
        key="shape",
        help="probability that a view's shape is redrawn at random, whatever "
        "the image: noise alike for every class, not an ambiguous crop. "
        "The class eigenvalues become (1 − p)²; the classes stay the "
        "top eigenvectors up to p = 0.5 and drop out past it",
    )
    cols[4].caption(
        "840 images of the `shapes-subgrid` grid, 6 classes; views re-render the "
        "factors with each part redrawn with its probability."
    )
    spec = ("shapes", crop, rotate, color, shape)
    structure = ("shapes", crop, rotate, color, None)
    swept_name, swept_now = "shape-changing p", shape

lab = cached_graph(spec)
summary = cached_summary(spec)
near = f"{summary.near_one}" if summary.complete else f"≥ {summary.near_one}"
metrics = st.columns(6)
metrics[0].metric("nodes", f"{lab.num_nodes:,}")
metrics[1].metric(
    f"γᵢ above {NEAR_ONE}",
    near,
    help=f"eigenvalues of Ā above {NEAR_ONE}: one per nearly disconnected cluster",
)
metrics[2].metric(f"γ_k (k = {lab.k})", f"{summary.gammas[lab.k - 1]:.3f}")
metrics[3].metric(
    "γ_{k+1}", f"{summary.gammas[lab.k]:.3f}", help="the paper's error bounds need it away from 1"
)
metrics[4].metric(
    "clustering ARI",
    f"{summary.ari:.3f}",
    help="spectral clustering against the true clusters, adjusted Rand index: 1 exact, 0 chance",
)
metrics[5].metric(
    "probe accuracy",
    f"{100 * summary.probe_accuracy:.1f}%",
    help="a linear probe (logistic regression) on the top-k eigenvector features",
)

left, right = st.columns(2)
left.plotly_chart(weights_heatmap(lab.weights, lab.labels, lab.classes), key="weights")
left.caption(
    "W ordered by cluster: bright blocks on the diagonal are the clusters, the dim "
    "ones off it the weak edges between them (log scale; blank: no edge)."
)
right.plotly_chart(spectrum_bars(summary.gammas, NEAR_ONE, lab.k, lab.num_nodes), key="spectrum")
right.caption(
    f"Eigenvalues of the normalised adjacency Ā = D^-1/2 W D^-1/2, all in [0, 1] "
    "(an augmentation graph's W = Kᵀ diag(p) K is positive semi-definite). Each "
    "connected component gives an eigenvalue exactly 1, a nearly disconnected cluster "
    f"one near 1 (red: above {NEAR_ONE}); the gap after γ_k is what the paper's "
    "guarantees need."
)
left, right = st.columns(2)
left.plotly_chart(
    eigenvector_heatmap(summary.vectors, lab.weights.sum(1), lab.labels, lab.classes),
    key="eigenvectors",
)
left.caption(
    "Drawn: f = D^-1/2 v, each top-k eigenvector v of Ā divided by √w_x, one row per "
    "node: the loss's optimal features f* without their √γᵢ. On disconnected "
    "clusters each column is constant on every cluster (the eigenvectors v themselves "
    "are ∝ √w_x there, which varies inside a cluster); on nearly disconnected ones "
    "nearly constant: cluster indicators up to a rotation, so a linear head separates "
    "the clusters and k-means on the rows (spectral clustering) finds them."
)
curve_slot = right.container()  # filled last: the sweep is the slow part, the rest shows first
if kind == "Clusters":
    right.caption(
        "As the edges between clusters grow, γ_k falls towards the bulk γ_{k+1}, and "
        "the probe's accuracy (logistic regression fitted on half of the nodes, "
        "scored on the other half) and the clustering's ARI fall with it."
    )
else:
    right.caption(
        "A step, not a graceful decline: redrawing the shape at random treats every "
        "class alike, so the class eigenvectors stay the same and only their "
        "eigenvalue (1 − p)² falls. While it is above crop's and rotation's 0.25 "
        "(p < 0.5) they are the top k and probe and clustering are exact; past it "
        "the top k are nuisance directions and both drop to chance at once. (The "
        "probe: logistic regression fitted on half of the nodes, scored on the other "
        "half.) Augmentations that change the class only where an image is "
        "ambiguous would degrade gradually; this one does not."
    )

st.subheader("Train a table f on the spectral contrastive loss")
st.caption(
    "Every node gets a free feature vector f(x) ∈ ℝᵈ. Each step draws 256 positive pairs from "
    "w(x, x′) and takes an Adam step on the paper's loss (rows clipped to the ball ‖f(x)‖² ≤ μ, "
    "loss divided by μ). Its minimum is −Σ_{i≤d} γᵢ², reached when √w_x f(x) = (√γ₁ v₁(x), …, "
    "√γ_d v_d(x)) up to a rotation, v the top-d eigenvectors of Ā, unless these rows do not "
    "fit in the ball: then the best is higher. There E_w[f fᵀ] has eigenvalues γ₁…γ_d."
)
controls = st.columns([2, 2, 1, 1])
mu = controls[0].select_slider("μ (squared radius of the ball)", MUS, value=10.0, key="mu")
d = controls[1].slider("features d", 1, min(16, lab.num_nodes - 1), min(lab.k, 16), key="d")
train_key = (spec, d, mu)
if controls[2].button("Train", type="primary", key="train"):
    trainer = TableTrainer(lab.weights, d, mu)
    trainer.run(0)  # the starting table, the first point of the loss curve
    # the ball-constrained optimum takes seconds on large graphs: solved beside the training
    ball = background().submit(trainer.reachable) if lab.num_nodes > BACKGROUND_NODES else None
    st.session_state["graph-train"] = {
        "key": train_key,
        "running": True,
        "trainer": trainer,
        "ball": ball,
    }
state = st.session_state.get("graph-train")
if state is not None and state["key"] != train_key:
    state = None  # the graph, d or mu changed: that table belongs to another problem
if state is not None and state["running"] and controls[3].button("Stop", key="stop"):
    state["running"] = False


def training_panel(state: dict[str, Any] | None) -> None:
    """One tick: a chunk of steps when training, then the charts of the table so far."""
    if state is None:
        st.info("Press **Train** to train a table on this graph.")
        return
    trainer: TableTrainer = state["trainer"]
    if state["running"]:
        trainer.run(FIRST_CHUNK if trainer.step < FIRST_STEPS else CHUNK)
        if trainer.step >= MAX_STEPS:
            state["running"] = False
            st.rerun()  # redraw the page without the timer
    point = trainer.history[-1]
    pending = state["ball"] is not None and not state["ball"].done()
    if pending:
        st.markdown(
            f"Step {trainer.step:,} of {MAX_STEPS:,}: L(f) = {point.loss:.4f}; "
            f"−Σγᵢ² = {trainer.optimum:.3f}; solving for the best loss inside the "
            "ball…"
        )
        ball = None
    else:
        ball = trainer.reachable()
        where = (
            f"the best loss inside the ball, {ball.loss:.3f}"
            if ball.binds
            else f"−Σγᵢ² = {trainer.optimum:.3f}, which fits in the ball"
        )
        st.markdown(
            f"Step {trainer.step:,} of {MAX_STEPS:,}: L(f) = {point.loss:.4f}; "
            f"**gap to the optimum: {100 * trainer.gap(point):.1f}%** (against "
            f"{where})."
        )
    if ball is not None and ball.binds:
        st.caption(
            f"μ = {trainer.mu:g} cuts the optimum off: its rows need "
            f"μ ≥ {ball.max_sq_norm:.2f}. Raise μ to reach −Σγᵢ²."
        )
    left, right = st.columns(2)
    left.plotly_chart(
        training_loss_figure(
            trainer.history, trainer.optimum, ball.loss if ball and ball.binds else None, trainer.mu
        ),
        key="train-loss",
    )
    right.plotly_chart(second_moment_figure(point.eigenvalues, trainer.gammas), key="train-moments")
    left.caption(
        "The exact population loss L(f) of the table (every node and edge, not a "
        "batch) falls to the optimum line."
    )
    right.caption(
        "At the unconstrained optimum E_w[f fᵀ] = Σ_x w_x f(x) f(x)ᵀ has the top "
        "eigenvalues γ₁…γ_d of Ā. Necessary, not sufficient: any table with "
        "√w_x f(x) = (√γ₁ u₁(x), …, √γ_d u_d(x)) for orthonormal u has them, and the "
        "optimum also needs the u to span the top-d eigenspace (C₊ = C² is no proof "
        "either: it holds at every stationary point, saddles made of other "
        "eigenvectors included). The loss reaching −Σγᵢ² is what says the top "
        "eigenvectors are learned."
    )


running = state is not None and state["running"]
st.fragment(run_every=TICK_S if running else None)(training_panel)(state)


def curve_panel(
    curve: Future[graph_lab.DegradationCurve], current: float, name: str, polling: bool
) -> None:
    """The degradation curve once swept; until then a note, looked at again every
    :data:`CURVE_POLL_S` seconds."""
    if not curve.done():
        st.info(f"Sweeping {name} for the degradation curve (a few seconds)…")
        return
    if polling:
        st.rerun()  # drawn by a full run, which also stops this timer
    st.plotly_chart(degradation_figure(curve.result(), current, name), key="degradation")


curve = cached_curve(structure, lab.num_nodes)
with curve_slot:
    st.fragment(run_every=None if curve.done() else CURVE_POLL_S)(curve_panel)(
        curve, swept_now, swept_name, not curve.done()
    )
