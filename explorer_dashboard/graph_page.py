"""Graph: build an augmentation graph, see its spectrum find the clusters, train a table on it."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import streamlit as st

from explorer.data.shapes import MAX_CLASS_CHANGE_P
from explorer.graphs import class_change_curve, clusters, grid_reading
from explorer.graphs.spectral import top_eigenpairs
from explorer.graphs.table_training import TableTrainer
from explorer.readings.graph_figures import (
    degradation_figure,
    eigenvector_heatmap,
    guarantee_figure,
    second_moment_figure,
    spectrum_bars,
    training_loss_figure,
    weights_heatmap,
)
from explorer.rundir.guarantee_record import bracket_text, percent
from explorer_dashboard.grid_panel import grid_label, grid_section

CHUNK, MAX_STEPS, TICK_S = 100, 3000, 0.25  # training: steps per tick, steps in all, tick period
FIRST_STEPS, FIRST_CHUNK = 200, 20  # the fast start in small chunks, so the descent is seen
MUS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0)
BACKGROUND_NODES = 1000  # above, the ball optimum is solved in a thread beside the training
INLINE_CURVE_NODES = 400  # above, the degradation curve is swept in a thread beside the page
# How often a pending curve is looked for. Not faster: each look is a fragment rerun that holds
# the GIL the sweep's thread needs (polling every 0.5 s made the 840-node sweep 3x slower in the
# server: 23.5 s of wall time for 3.3 s of its own CPU time; every 2 s, 7.1 s for 3.6 s).
CURVE_POLL_S = 2.0

# ("clusters", sizes, within, between, degree) or ("shapes", crop, rotate, color, class_change_p)
Spec = tuple[Any, ...]
Curve = clusters.DegradationCurve | class_change_curve.GuaranteeCurve


@st.cache_resource(max_entries=3, show_spinner=False)  # about 30 MB each
def cached_family(
    crop_p: float, rotate_p: float, color_p: float
) -> class_change_curve.ClassChangeFamily:
    """The shapes graphs of these probabilities for every class_change_p (two exact graphs,
    about 1 s; then a graph costs a sum of three matrices)."""
    return class_change_curve.class_change_family(crop_p, rotate_p, color_p)


def build(spec: Spec, swept: float | None = None) -> clusters.LabGraph:
    """The graph of ``spec``; ``swept`` replaces its between/within ratio."""
    if spec[0] == "clusters":
        _, sizes, within, between, degree = spec
        between = between if swept is None else swept * within
        return clusters.cluster_graph(sizes, within, between, degree=degree)
    _, crop_p, rotate_p, color_p, class_change_p = spec
    return cached_family(crop_p, rotate_p, color_p).graph(class_change_p)


@st.cache_resource(show_spinner=False)
def background() -> ThreadPoolExecutor:
    """Workers for the slow solves (the ball optimum, the degradation sweep) that must hold
    neither a training tick nor a slider: two, so that a sweep does not queue behind a solve."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="graph-page")


@st.cache_resource(max_entries=6, show_spinner=False)  # a 2,000-node W is 32 MB
def cached_graph(spec: Spec) -> clusters.LabGraph:
    return build(spec)


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_summary(spec: Spec) -> clusters.GraphSummary:
    return clusters.summarize(cached_graph(spec))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_guarantee(spec: Spec) -> class_change_curve.GuaranteePoint:
    """α, E(f*)'s bracket and the bound of a shapes graph (0.3 s where every vote holds, up to
    10 s where E(f*)'s lower side needs its mixed-integer program; cached: every training tick
    reruns the page)."""
    _, crop_p, rotate_p, color_p, class_change_p = spec
    family = cached_family(crop_p, rotate_p, color_p)
    W = cached_graph(spec).weights
    # a full eigh (0.3 s at 840 nodes), as the curve's: E(f*)'s lower side groups equal rows
    gammas, vectors = top_eigenpairs(W, len(family.classes) + 1)
    return class_change_curve.guarantee_point(family, class_change_p, gammas, vectors, W)


#: How far each pending shapes sweep has got, by its structure: (values done, values, start).
SWEEP_PROGRESS: dict[Spec, tuple[int, int, float]] = {}


def sweep_curve(structure: Spec, family: class_change_curve.ClassChangeFamily | None) -> Curve:
    """The curve depends on everything but the swept value (``structure`` has it set to None)."""
    if structure[0] == "clusters":
        return clusters.degradation_curve(
            lambda value: build(structure, value), clusters.CLUSTER_SWEEP
        )
    shipped = class_change_curve.shipped_curve(*structure[1:4])
    if shipped is not None:  # the default settings: computed once, shipped with the package
        return shipped
    started = time.monotonic()

    def progress(i: int, n: int) -> None:
        SWEEP_PROGRESS[structure] = (i, n, started)

    return class_change_curve.guarantee_curve(family, on_point=progress)


@st.cache_resource(max_entries=8, show_spinner=False)
def cached_curve(
    structure: Spec, num_nodes: int, _family: class_change_curve.ClassChangeFamily | None = None
) -> Future[Curve]:
    """The sweep of ``structure`` (``_family``: its shapes graphs, not hashed, being a function
    of ``structure``): solved at once on small graphs, beside the page above
    :data:`INLINE_CURVE_NODES` nodes, so a slider answers before the curve does (the shapes
    curve, 43 graphs each with E(f*) bracketed, about a minute, once per crop/rotation/colour
    setting, the default one shipped). A cached
    ``Future`` rather than ``st.cache_data``: the sweep runs in a thread, and a pending result
    cannot be pickled."""
    if num_nodes <= INLINE_CURVE_NODES or (
        structure[0] == "shapes" and class_change_curve.shipped_curve(*structure[1:4]) is not None
    ):
        done: Future[Curve] = Future()
        done.set_result(sweep_curve(structure, _family))
        return done
    return background().submit(sweep_curve, structure, _family)


st.title("Graph")
st.caption(
    "An augmentation graph has the augmented data as nodes and, as the weight w(x, x′) of an "
    "edge, the probability that x and x′ are two views of one datum (HaoChen et al. 2021, "
    "Section 3.1). Build one, see its spectrum find the clusters, and train a table of "
    "features on the spectral contrastive loss: in a large enough ball it learns the top "
    "eigenvectors."
)

kind = st.radio(
    "Graph",
    ["Clusters", "Shapes"],
    horizontal=True,
    key="kind",
    help="k clusters joined by weak edges, or the exact graph of the shapes dataset; "
    "both are augmentation graphs W = Kᵀ diag(p) K of a kernel K(x | x̄)",
)
if kind == "Clusters":
    cols = st.columns(6)
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
    sizes = clusters.cluster_sizes(k, largest, max(2, round(largest * smallest / 100)))
    spec: Spec = ("clusters", sizes, within, between, float(degree))
    structure: Spec = ("clusters", sizes, within, None, float(degree))
    swept_name, swept_now = "between / within weight", between / within
else:
    cols = st.columns([1, 1, 1, 1, 2])  # the sub-grid's name needs room
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
    class_change = cols[3].slider(
        "class-change p",
        0.0,
        MAX_CLASS_CHANGE_P,
        0.0,
        step=0.01,
        key="class_change",
        help="with probability class-change p × its ambiguity (1 for the most ambiguous view), "
        "a view of a ring, cross or star is drawn as its look-alike circle, square or "
        "triangle: the mechanism training uses (`class_change_p`). Small views are the most "
        "ambiguous, so the classes mix where images are hard to tell apart",
    )
    grid = cols[4].selectbox(
        "images",
        range(len(grid_reading.GRIDS)),
        format_func=grid_label,
        key="grid",
        help="the default sub-grid's 840 images (dense W: the table trainer and the sweep), or "
        "larger sub-grids up to the whole grid's 46,800 images, read matrix-free",
    )
    if grid > 0:
        grid_section((grid, crop, rotate, color, class_change))
        st.stop()
    spec = ("shapes", crop, rotate, color, class_change)
    structure = ("shapes", crop, rotate, color, None)
    swept_name, swept_now = "class-change p", class_change

lab = cached_graph(spec)
summary = cached_summary(spec)
if kind == "Shapes":
    st.caption(
        f"{lab.num_nodes} images, 6 classes: natural data uniform over the 1,080 factor tuples "
        "of the `shapes-subgrid` grid, each view re-rendered with each part redrawn with its "
        "probability. This is the kernel's own graph, not a run's: the Spectrum page scores a "
        "run on its training split's tuples (same kernel, other natural data), so its "
        "eigenvalues differ a little (at the default probabilities γ₇ is 0.282 on the seed-0 "
        f"split, {summary.gammas[lab.k]:.3f} here)."
    )
all_computed = len(summary.gammas) == lab.num_nodes
metrics = st.columns(6)
metrics[0].metric("nodes", f"{lab.num_nodes:,}")
metrics[1].metric(
    "γᵢ before the largest gap",
    str(summary.before_gap),
    help=f"the largest drop between consecutive eigenvalues of Ā is after γ_{summary.before_gap}: "
    f"{summary.gammas[summary.before_gap - 1]:.3f} → {summary.gammas[summary.before_gap]:.3f} "
    f"(by {summary.gap:.3f}"
    + ("" if all_computed else f", among the top {len(summary.gammas)} computed")
    + "); one eigenvalue near 1 per nearly disconnected cluster, however near the graph makes "
    "them",
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
if kind == "Shapes":
    with st.spinner("E(f*): the best linear head, then the least vote error over the labellings "
                    "a head can draw (a mixed-integer program where votes fail; up to 10 s)…",
                    show_time=True):
        guarantee_now = cached_guarantee(spec)
    row = st.columns(6)
    row[0].metric(
        "α (Assumption 3.5)",
        percent(guarantee_now.alpha),
        help="the least fraction of augmentations that change the class: min over labellings g "
        "of images of Pr[g(x) ≠ y(x̄)], x a view of the natural datum x̄",
    )
    row[1].metric(
        f"E(f*) (k = {lab.k})",
        bracket_text(guarantee_now.optimum),
        help="the paper's downstream error of the top-k eigenvector features f*: the best linear "
        "head, then a majority vote over each natural datum's views (docs/THEORY.md). "
        f"From above: the best head found ({guarantee_now.optimum.head}; least squares gives "
        f"{percent(guarantee_now.optimum.least_squares)}); from below: "
        f"{guarantee_now.optimum.lower_method}"
        + (
            "; γ_k = γ_{k+1} here, so f* is not unique and this is the eigensolver's choice"
            if guarantee_now.tied
            else ""
        ),
    )
    row[2].metric(
        "bound 8α/λ + 2α",
        percent(guarantee_now.bound),
        help="the γ_{k+1} bound on E(f*), λ = 1 − γ_{k+1}, proven in docs/THEORY.md from the "
        "paper's definitions; above 100% it says nothing",
    )
    row[3].metric(
        "Theorem 3.7: α log k / ρ²",
        "∞"
        if not np.isfinite(guarantee_now.theorem_order)
        else f"{guarantee_now.theorem_order:.3g}",
        help="α log k / ρ²_{⌊k/2⌋}, the constant set to 1 and ρ replaced by its lower bound "
        "(1 − γ_{⌊k/2⌋})/2: an order of magnitude. ∞ when γ_{⌊k/2⌋} = 1: with class changes "
        "only inside the three look-alike pairs, γ₃ = 1 and the bound on ρ₃ is 0",
    )

left, right = st.columns(2)
left.plotly_chart(weights_heatmap(lab.weights, lab.labels, lab.classes), key="weights")
left.caption(
    "W ordered by cluster: bright blocks on the diagonal are the clusters, the dim "
    "ones off it the weak edges between them (log scale; blank: no edge)."
)
right.plotly_chart(
    spectrum_bars(summary.gammas, summary.before_gap, lab.k, lab.num_nodes), key="spectrum"
)
right.caption(
    "Eigenvalues of the normalised adjacency Ā = D^-1/2 W D^-1/2, all in [0, 1] "
    "(an augmentation graph's W = Kᵀ diag(p) K is positive semi-definite). Each "
    "connected component gives an eigenvalue exactly 1, a nearly disconnected cluster "
    "one near 1; red: the eigenvalues before the largest drop (a fixed threshold such as 0.9 "
    "would count 1 of 6 clusters at the default weights, whose next five eigenvalues are "
    "0.889). The gap after γ_k is what the paper's guarantees need."
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
max_d = min(16, lab.num_nodes - 1)
if st.session_state.get("graph-d-for") != (kind, lab.k):  # a new class count: d follows it
    st.session_state["graph-d-for"] = (kind, lab.k)
    st.session_state["d"] = min(lab.k, max_d)
st.session_state["d"] = min(st.session_state["d"], max_d)
d = controls[1].slider("features d", 1, max_d, key="d", help="defaults to the class count k")
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
        settled = trainer.converged()
        if trainer.step >= MAX_STEPS or settled is not None:
            state["running"], state["settled"] = False, settled
            st.rerun()  # redraw the page without the timer
    if state.get("settled") is not None:
        st.caption(f"Stopped at step {trainer.step:,}: the exact loss has moved by less than "
                   f"0.1% of −Σγᵢ² since step {state['settled']:,} (the mini-batch noise, not "
                   "progress). Press **Train** again for a fresh table.")
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
            # clamped: the ball optimum is solved to ~1e-3, and a table can land a hair below it
            f"**gap to the optimum: {max(0.0, 100 * trainer.gap(point)):.1f}%** (against "
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
    if ball is not None and ball.binds:
        right.caption(
            f"μ = {trainer.mu:g} cuts the optimum off, so the table does not learn the top "
            "eigenvectors here and E_w[f fᵀ] is not expected to meet the γᵢ: "
            f"tr E_w[f fᵀ] = E‖f‖² ≤ μ = {trainer.mu:g}, and the best table inside the ball is "
            "another one. The loss reaching the best inside the ball is what says it is trained."
        )
    else:
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


def shapes_reading(curve: class_change_curve.GuaranteeCurve) -> str:
    """What the shapes curve shows, read from it (the numbers move with crop, rotation and
    colour)."""
    alpha, error, nxt = curve.alpha, curve.optimum_error, curve.gamma_next
    zero = alpha[error == 0].max() if (error == 0).any() else 0.0
    vacuous = curve.bound_passes_one()
    steady = float(nxt.max() - nxt.min()) < 1e-6
    parts = [
        "The abscissa is α, the least fraction of augmentations whose class no labelling of "
        "images recovers (Assumption 3.5), not class-change p (in the hover): the sweep takes "
        "class-change p every 0.05 up to 0.5 and every 0.0125 past it, where E(f*) moves.",
        f"γ_k falls continuously, from {curve.gamma_k[0]:.3f} to {curve.gamma_k[-1]:.3f}, as "
        "the look-alike classes mix; γ_{k+1} "
        + (
            f"stays at {nxt[0]:.3f} (a nuisance eigenvalue: crop, rotation or colour)."
            if steady
            else f"moves from {nxt[0]:.3f} to {nxt[-1]:.3f}."
        ),
        "E(f*), the paper's downstream error of the top-k eigenvector features (the best "
        "linear head, then a majority vote over each natural datum's views), is drawn as a "
        "band: above, the best head found; below, the least vote error of any labelling of "
        "images, which no head can beat. The best head found "
        f"is 0 up to α = {zero:.3f}, while each natural datum's views mostly keep its class, "
        f"then rises in steps to {error[-1]:.3f} as groups of small rings, crosses and stars "
        f"are voted their look-alike; the lower side reaches {curve.optimum_error_lower.max():.3f}"
        " (a labelling need not be one that a linear head on f* can draw).",
        "The bound 8α/(1 − γ_{k+1}) + 2α (proven in docs/THEORY.md from the paper's "
        "definitions) holds at every point"
        + (
            f" but says nothing from α = {vacuous:.3f}, where it passes 1."
            if vacuous is not None
            else "."
        ),
    ]
    if not np.isfinite(curve.theorem_order[curve.alpha > 0]).any():
        parts.append(
            "Theorem 3.7's α log k/ρ²_{⌊k/2⌋} is not drawn: with k = 6 its ρ₃ is bounded "
            "below by 0 only (γ₃ = 1: the three look-alike pairs never exchange views)."
        )
    parts.append(
        "The probe labels each image by the class it shows, so it stays near 1; E(f*) asks "
        "for the natural datum's class, which a view drawn as its look-alike no longer shows."
    )
    if curve.tied.any():
        parts.append(
            f"Hollow points (from α = {alpha[curve.tied][0]:.3f}): γ_k = γ_{{k+1}}, so f* is "
            "not unique and E(f*) and the probe are those of the eigensolver's choice."
        )
    return " ".join(parts)


def curve_panel(curve: Future[Curve], current: float, name: str, polling: bool, k: int,
                structure: Spec) -> None:
    """The degradation curve once swept; until then a note with the stage and the time spent,
    looked at again every :data:`CURVE_POLL_S` seconds. ``current``: the swept value now (α for
    shapes)."""
    if not curve.done():
        done, total, started = SWEEP_PROGRESS.get(structure, (0, 0, time.monotonic()))
        stage = (f"graph {done + 1} of {total}: eigenpairs, then E(f*) bracketed (best head, "
                 "labelling bound)" if total else "starting")
        st.info(f"Sweeping {name} for the degradation curve, once for these settings "
                f"(about a minute): {stage}, {time.monotonic() - started:.0f} s so far…")
        if total:
            st.progress(done / total)
        return
    if polling:
        st.rerun()  # drawn by a full run, which also stops this timer
    result = curve.result()
    if isinstance(result, class_change_curve.GuaranteeCurve):
        st.plotly_chart(guarantee_figure(result, current, k), key="degradation")
        st.caption(shapes_reading(result))
    else:
        st.plotly_chart(degradation_figure(result, current, name), key="degradation")


if kind == "Shapes":
    family = cached_family(*structure[1:4])
    curve = cached_curve(structure, lab.num_nodes, family)
    current = guarantee_now.alpha
else:
    curve, current = cached_curve(structure, lab.num_nodes), swept_now
with curve_slot:
    st.fragment(run_every=None if curve.done() else CURVE_POLL_S)(curve_panel)(
        curve, current, swept_name, not curve.done(), lab.k, structure
    )
