"""The theorem, measured: a ``shapes`` network against the provable optimum of its own graph.

HaoChen et al. [0, Section 3.2] prove that the population spectral contrastive loss
L(f) = −2·E_{x,x⁺}[f(x)ᵀf(x⁺)] + E_{x,x'}[(f(x)ᵀf(x'))²] is minimised by the top-k eigenvectors of
the augmentation graph's normalised adjacency Ā, with minimum −Σ_{i≤k} γᵢ². For ``shapes`` the
graph is known exactly (:mod:`explorer.graphs.shapes`), so a checkpoint can be scored on every node
of it: the network's features f = clip(z) (docs/THEORY.md, "Where μ lives") give L(f) exactly,
with no sampling, and the gap to the optimum (L − L*)/|L*| says how much of the theorem the network
has reached.

Which graph: with ``augment=graph`` the run's views are drawn from the graph's own kernel over the
training split's tuples, so :func:`run_graph` *is* the population graph of training. A run with
an image-space recipe (``augment=shapes``) did not train on this graph: it is the graph of
*graph views*, a reference, and the record says so (``graph.own = false``); image-space crops and
hue jitter connect images differently (they cannot turn a dark background light). A ``shapes``
run (the whole 64,800-tuple grid, 46,800 images) with ``augment=graph`` is scored on its own
graph too, matrix-free (:mod:`explorer.graphs.kronecker`: W would be 17.5 GB dense), with the top
k + 1 eigenpairs only; ``shapes`` runs with image-space recipes are scored on the default
sub-grid's graph of graph views, which is not theirs.

The ball: f = clip(z) lies in ‖f(x)‖² ≤ μ. When the optimum's largest ‖f*(x)‖² exceeds μ the ball
cuts it off and the best reachable loss is
:func:`explorer.graphs.optimum.ball_constrained_optimum`'s;
the record holds both gaps. On the whole grid the ball's optimum is bracketed instead
(``reachable_certified = false``): the best loss found inside the ball within a budget of
descent steps (an upper bound) and the unconstrained optimum (a lower bound).

Losses without μ (SimCLR, SimSiam) see only the direction u = z/‖z‖ (their config's μ means
nothing to them): their features are scored as u at the best scale c·u, for which
L(c·u) = −P²/N with P = E[uᵀu⁺] and N = E[(uᵀu')²] (``feature_scale``), the rule the view metrics
follow too (:func:`explorer.graphs.optimum.best_scale`; on view pairs,
:func:`explorer.analysis.metrics.loss_features`).

How much of an eigenspace the features span is an R² (:func:`span_r2`); features of rank r in
general position span r/n of any subspace of the n-node space on average, so ``span_chance`` =
r/n is printed beside it.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from explorer.analysis import graph_cache
from explorer.augment import normalize
from explorer.builders import graph_kernel, recipe_name
from explorer.config import GRAPH_AUGMENT, Config
from explorer.data import ImageDataset
from explorer.data.shapes import SUBGRID
from explorer.graphs import downstream_error as DE
from explorer.graphs import guarantee as GU
from explorer.graphs import optimum as O
from explorer.graphs.kronecker import KronGraph, graph_of_kernel
from explorer.graphs.shapes import ShapesGraph, shapes_augmentation_graph
from explorer.losses import clip_to_ball
from explorer.models import ContrastiveModel

#: Eigenvalues closer than this form one block of the graph's spectrum: an eigenspace, or a
#: cluster of eigenvalues that a training split (not the whole sub-grid) pulls slightly apart.
BLOCK_TOLERANCE = 1e-3


@dataclass(frozen=True)
class RunGraph:
    """The exact graph a run is scored on, with its eigen-decomposition.

    Attributes:
        graph: the dense :class:`ShapesGraph` of a sub-grid, or the matrix-free
            :class:`KronGraph` of the whole grid: both are
            :class:`~explorer.graphs.interface.FiniteGraph` s, and give ``labels``,
            ``classes`` and ``images``.
        own: True when the run's views are drawn from this graph's kernel (``augment=graph``):
            the graph is then the run's population augmentation graph; False when it models an
            image-space recipe.
        description: one line for pages and tables.
        gammas: (e,) the largest eigenvalues of Ā, descending: all n of a sub-grid's, the top
            k + 1 of the whole grid's (k the projector's output dimension).
        vectors: (n, e) their orthonormal eigenvectors, column i for gammas[i].
        key: what identifies the graph in this process's caches.
    """

    graph: ShapesGraph | KronGraph
    own: bool
    description: str
    gammas: np.ndarray
    vectors: np.ndarray
    key: GraphKey


def applies(config: Config) -> bool:
    """Whether a run can be scored on an exact graph (its dataset is a ``shapes`` one)."""
    return config.dataset in ("shapes", "shapes-subgrid")


def run_graph(config: Config, train: ImageDataset) -> RunGraph:
    """The exact graph of a ``shapes`` run trained on ``train`` (see the module docstring)."""
    if not applies(config) or train.factors is None:
        raise ValueError(f"no exact graph for dataset {config.dataset}")
    own = recipe_name(config) == GRAPH_AUGMENT
    whole_grid = own and config.dataset == "shapes"
    natural = train.factors.numpy() if own or config.dataset == "shapes-subgrid" else None
    # a run without graph views is scored on the default kernel's graph (a reference)
    kernel = graph_kernel(config if own else Config(dataset="shapes-subgrid"))
    probabilities = (kernel.crop_p, kernel.rotate_p, kernel.color_p, kernel.class_change_p)
    natural_key = None if natural is None else natural[np.lexsort(natural.T[::-1])].tobytes()
    # the whole grid keeps the top k + 1 eigenpairs (k the projector's dimension), a sub-grid all
    key = (natural_key, probabilities, config.projector_out_dim + 1 if whole_grid else 0)
    graph, gammas, vectors = _decomposed_graph(key)
    if whole_grid:
        description = ("the run's own augmentation graph on the whole grid (views drawn from "
                       "its kernel), matrix-free")
    elif own:
        description = "the run's own augmentation graph (views drawn from its kernel)"
    elif config.dataset == "shapes-subgrid":
        description = ("the graph of graph views on the run's training split, on which this "
                       "run did not train (it augments in image space)")
    else:
        description = ("the graph of graph views on the default sub-grid, on which this run "
                       "did not train (another dataset and augmentation)")
    return RunGraph(graph, own, description, gammas, vectors, key)


#: (natural tuples, kernel probabilities, eigenpairs kept: 0 for a sub-grid's dense graph with
#: all of them, e > 0 for the whole grid's matrix-free graph with its top e)
GraphKey = tuple[bytes | None, tuple[float, float, float, float], int]


@functools.lru_cache(maxsize=4)
def _decomposed_graph(key: GraphKey) -> tuple[ShapesGraph | KronGraph, np.ndarray, np.ndarray]:
    """The graph over the natural tuples (bytes of a sorted (N, 6) int64 array; None: uniform)
    with the kernel's (crop_p, rotate_p, color_p, class_change_p) and its eigenpairs: the dense
    :data:`SUBGRID` graph with all of them, or the whole grid's matrix-free graph with its top
    ``key[2]`` (:meth:`KronGraph.top_eigenpairs`). Cached: a run's checkpoints share one graph;
    the eigenpairs are kept on disk too (:func:`_graph_identity`), since they cost more than the
    graph (which a process builds anyway: its W and its images are needed)."""
    natural_key, (crop_p, rotate_p, color_p, class_change_p), kept = key
    natural = None if natural_key is None else np.frombuffer(natural_key, np.int64).reshape(-1, 6)
    graph: ShapesGraph | KronGraph
    if kept:
        config = Config(dataset="shapes", crop_p=crop_p, rotate_p=rotate_p, color_p=color_p,
                        class_change_p=class_change_p)
        graph = graph_of_kernel(graph_kernel(config), natural)
        count = min(kept, len(graph.support))
    else:
        graph = shapes_augmentation_graph(
            subgrid=SUBGRID,
            crop_p=crop_p,
            rotate_p=rotate_p,
            color_p=color_p,
            class_change_p=class_change_p,
            natural=natural,
        )
        count = graph.num_nodes
    n = graph.num_nodes

    def decode(arrays: graph_cache.Arrays, _: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        gammas, vectors = arrays["gammas"], arrays["vectors"]
        if gammas.shape != (count,) or vectors.shape != (n, count):
            raise ValueError("eigenpairs of another shape")
        return gammas, vectors

    gammas, vectors = graph_cache.cached(
        "eigenpairs", {**_graph_identity(key, graph), "count": count},
        lambda: graph.top_eigenpairs(count),
        lambda pairs: ({"gammas": pairs[0], "vectors": pairs[1]}, {}), decode)
    return graph, gammas, vectors


def _graph_identity(key: GraphKey, graph: ShapesGraph | KronGraph) -> dict[str, Any]:
    """What identifies a graph in the disk cache (:mod:`explorer.analysis.graph_cache`): its
    key, with the natural tuples hashed, and a fingerprint of the graph itself (W of a dense
    graph, the degrees and the kernel's support of the matrix-free one), so that a change in
    how the graph is built never reads another graph's entry."""
    natural_key, probabilities, kept = key
    own = (graph_cache.fingerprint(graph.weights) if isinstance(graph, ShapesGraph)
           else graph_cache.fingerprint(np.asarray(graph.degrees), graph.support))
    return {"natural": None if natural_key is None else hashlib.sha256(natural_key).hexdigest(),
            "probabilities": [float(p) for p in probabilities], "kept": int(kept),
            "graph": own}


@functools.lru_cache(maxsize=4)
def _identity(key: GraphKey) -> dict[str, Any]:
    """:func:`_graph_identity` of a cached graph, hashed once per process."""
    return _graph_identity(key, _decomposed_graph(key)[0])


def clear_caches() -> None:
    """Empty this process's caches of graphs and their quantities, as a new process starts
    (the disk cache stays): for benchmarks and tests."""
    from explorer.graphs.shapes import _image_nodes

    for cached in (_decomposed_graph, _identity, ball_curve, _max_sq_norm, graph_guarantee,
                   _image_nodes):
        cached.cache_clear()


#: Solver settings of the reachable-optimum curve: about 1e-3 accurate in the loss, and a few
#: seconds for the whole curve on the 840-node sub-grid (the default tolerance takes minutes).
CURVE_TOLERANCE, CURVE_ITERATIONS = 1e-4, 300

#: Descent steps at the run's μ on the whole grid, where the ball binds (each costs one or two
#: products W f, 0.3 s at k = 128): the best loss found bounds the ball's optimum from above.
GRID_BALL_ITERATIONS = 30


@dataclass(frozen=True)
class BallCurve:
    """The best loss inside the ball ‖f(x)‖² ≤ μ against μ, for one graph and k.

    Attributes:
        mus: (m,) squared radii, ascending, the run's μ and max‖f*‖² among them.
        losses: (m,) the reachable optimum at each
            (:func:`explorer.graphs.optimum.reachable_optimum_curve`).
        max_sq_norm: max_x ‖f*(x)‖²: from this μ on, the ball leaves the optimum free.
        c_eigs_at_mu: (k,) eigenvalues of E_w[f fᵀ] of the reachable optimum at the run's μ,
            largest first: what the network's eigenvalues meet when the ball binds.
        certified: False when a loss is only the best found inside the ball (an upper bound on
            the ball's optimum, whose lower bound is then the unconstrained optimum).
    """

    mus: tuple[float, ...]
    losses: tuple[float, ...]
    max_sq_norm: float
    c_eigs_at_mu: tuple[float, ...] = ()
    certified: bool = True

    def at(self, mu: float) -> float:
        """The reachable optimum at one of :attr:`mus`, or the free optimum above the last."""
        return self.losses[self.mus.index(mu)] if mu in self.mus else self.losses[-1]


@functools.lru_cache(maxsize=16)
def ball_curve(key: GraphKey, k: int, mu: float) -> BallCurve:
    """The reachable-optimum curve of a cached graph (:func:`run_graph`'s ``key``) at powers of
    two, ``mu`` and max‖f*‖²; cached in the process and on disk
    (:mod:`explorer.analysis.graph_cache`), since every checkpoint of a run asks the same
    question. On the whole grid only ``mu`` and max‖f*‖² (:func:`_grid_ball`)."""
    # the solver's settings are read at call time (a benchmark may cut them): part of the key
    parts = {**_identity(key), "k": int(k), "mu": float(mu), "tolerance": CURVE_TOLERANCE,
             "iterations": CURVE_ITERATIONS if not key[2] else GRID_BALL_ITERATIONS}
    return graph_cache.cached("ball-curve", parts, lambda: _ball_curve(key, k, mu),
                              _encode_curve, _decode_curve)


def _encode_curve(curve: BallCurve) -> tuple[graph_cache.Arrays, dict[str, Any]]:
    arrays = {"mus": np.array(curve.mus, dtype=np.float64),
              "losses": np.array(curve.losses, dtype=np.float64),
              "c_eigs_at_mu": np.array(curve.c_eigs_at_mu, dtype=np.float64)}
    return arrays, {"max_sq_norm": curve.max_sq_norm, "certified": curve.certified}


def _decode_curve(arrays: graph_cache.Arrays, meta: dict[str, Any]) -> BallCurve:
    mus, losses, c_eigs = arrays["mus"], arrays["losses"], arrays["c_eigs_at_mu"]
    if mus.ndim != 1 or mus.shape != losses.shape or c_eigs.ndim != 1:
        raise ValueError("a ball curve of another shape")
    return BallCurve(tuple(float(m) for m in mus), tuple(float(v) for v in losses),
                     float(meta["max_sq_norm"]), tuple(float(e) for e in c_eigs),
                     certified=bool(meta["certified"]))


def _ball_curve(key: GraphKey, k: int, mu: float) -> BallCurve:
    """:func:`ball_curve`, computed."""
    if key[2]:
        return _grid_ball(key, k, mu)
    graph, gammas, vectors = _decomposed_graph(key)
    max_sq = _max_sq_norm(key, k)
    powers = [2.0**i for i in range(int(np.ceil(np.log2(max_sq))) + 1)]
    mus = sorted({m for m in [*powers, max_sq, mu] if m <= max_sq and np.isfinite(m)})
    optima = O.reachable_optima(graph.weights, k, mus, eigenpairs=(gammas[:k], vectors[:, :k]),
                                tol=CURVE_TOLERANCE, max_iterations=CURVE_ITERATIONS)
    at_mu = optima[mus.index(mu)] if mu in mus else None
    c_eigs: tuple[float, ...] = ()
    if at_mu is not None:
        c_eigs = tuple(float(e) for e in
                       np.linalg.eigvalsh(O.second_moment(at_mu.features, graph))[::-1])
    return BallCurve(tuple(mus), tuple(r.loss for r in optima), max_sq, c_eigs,
                     certified=all(r.certified for r in optima))


def _grid_ball(key: GraphKey, k: int, mu: float) -> BallCurve:
    """The ball at the run's μ on the whole grid: free when μ ≥ max‖f*‖² (the optimum is
    reachable); else bracketed, from above by the best loss that :data:`GRID_BALL_ITERATIONS`
    steps of the matrix-free descent find from clip(f*), from below by the free optimum."""
    graph, gammas, vectors = _decomposed_graph(key)
    f_star = _optimal_table(key, k)
    max_sq = _max_sq_norm(key, k)
    free = O.optimal_loss(gammas[:k])
    if mu >= max_sq:
        c_eigs = tuple(float(g) for g in np.clip(gammas[:k], 0, None))  # E_w[f* f*ᵀ] = diag(γ)
        return BallCurve(tuple(sorted({mu, max_sq})), (free,) * len({mu, max_sq}), max_sq, c_eigs)
    # as ball_constrained_optimum starts: from clip(f*), nudged off the saddle it can sit on
    f, _, _ = O.fista_in_ball(graph.weights_product, graph.degrees, mu, f_star, CURVE_TOLERANCE,
                              GRID_BALL_ITERATIONS, seed=0)
    found = float(O.population_loss(f, graph))
    c_eigs = tuple(float(e) for e in np.linalg.eigvalsh(O.second_moment(f, graph))[::-1])
    return BallCurve((mu, max_sq), (found, free), max_sq, c_eigs, certified=False)


def _optimal_table(key: GraphKey, k: int) -> np.ndarray:
    """f* (n, k) of the top k from the cached eigenpairs
    (:func:`explorer.graphs.optimum.optimal_features`)."""
    graph, gammas, vectors = _decomposed_graph(key)
    return O.optimal_features(graph, k, eigenpairs=(gammas, vectors))


@functools.lru_cache(maxsize=16)
def _max_sq_norm(key: GraphKey, k: int) -> float:
    """max_x ||f*(x)||^2 (:func:`explorer.graphs.optimum.max_optimal_sq_norm`) from the cached
    eigenpairs: no second eigendecomposition."""
    graph, gammas, vectors = _decomposed_graph(key)
    return O.max_optimal_sq_norm(graph, k, eigenpairs=(gammas, vectors))


@dataclass(frozen=True)
class GraphGuarantee:
    """What the downstream guarantee needs of a graph, computed once per graph and k.

    Attributes:
        task: the graph's :class:`explorer.graphs.guarantee.DownstreamTask` (its label mass, the
            vote's
            product, the natural data; the kernel itself on a sub-grid, not on the whole grid).
        labelling: the least vote error over all node labellings
            (:func:`explorer.graphs.downstream_error.labelling_bound`), a lower bound on E(f) for
            every f;
            None on the whole grid (too large for the search).
        optimum: E(f*) of the top-k optimum, bracketed
            (:func:`explorer.graphs.downstream_error.error_bracket`).
    """

    task: GU.DownstreamTask
    labelling: DE.LabellingBound | None
    optimum: DE.ErrorBracket


@functools.lru_cache(maxsize=4)
def graph_guarantee(key: GraphKey, k: int) -> GraphGuarantee:
    """α, the labelling bound and E(f*) of a cached graph (:func:`run_graph`'s ``key``) for k
    features. The task is rebuilt from the graph (cheap); the labelling bound and E(f*) (a
    search, a MIP and fitted heads: seconds) are kept on disk too
    (:mod:`explorer.analysis.graph_cache`)."""
    graph, _, _ = _decomposed_graph(key)
    if isinstance(graph, KronGraph):  # A is (6,000, 46,800): never formed
        mass, p, y = graph.label_mass()
        task = GU.DownstreamTask(mass, graph.natural_product, p, y)
    else:
        A, p, y = graph.natural_augmentation()
        task = GU.task_of_kernel(A, p, y, len(graph.classes))

    def compute() -> tuple[DE.LabellingBound | None, DE.ErrorBracket]:
        labelling = None if task.kernel is None else DE.labelling_bound(task)
        return labelling, DE.error_bracket(_optimal_table(key, k), task, labelling)

    def decode(arrays: graph_cache.Arrays, meta: dict[str, Any]
               ) -> tuple[DE.LabellingBound | None, DE.ErrorBracket]:
        labelling = None
        if meta["labelling"] is not None:
            nodes = arrays["labelling"]
            if nodes.shape != (graph.num_nodes,) or nodes.dtype.kind != "i":
                raise ValueError("a labelling of another graph")
            bound = meta["labelling"]
            labelling = DE.LabellingBound(float(bound["lower"]), float(bound["best_found"]),
                                          nodes, bool(bound["exact"]), str(bound["method"]))
        bracket = meta["optimum"]
        return labelling, DE.ErrorBracket(
            float(bracket["upper"]), str(bracket["head"]), float(bracket["lower"]),
            str(bracket["lower_method"]), float(bracket["least_squares"]))

    parts = {**_identity(key), "k": int(k)}
    labelling, optimum = graph_cache.cached("guarantee", parts, compute, _encode_guarantee,
                                            decode)
    return GraphGuarantee(task, labelling, optimum)


def _encode_guarantee(
    value: tuple[DE.LabellingBound | None, DE.ErrorBracket],
) -> tuple[graph_cache.Arrays, dict[str, Any]]:
    labelling, optimum = value
    # plain JSON values (the solvers may hand back NumPy scalars)
    bracket = {"upper": float(optimum.upper), "head": str(optimum.head),
               "lower": float(optimum.lower), "lower_method": str(optimum.lower_method),
               "least_squares": float(optimum.least_squares)}
    if labelling is None:
        return {}, {"labelling": None, "optimum": bracket}
    bound = {"lower": float(labelling.lower), "best_found": float(labelling.best_found),
             "exact": bool(labelling.exact), "method": str(labelling.method)}
    return ({"labelling": np.asarray(labelling.labelling, dtype=np.int64)},
            {"labelling": bound, "optimum": bracket})


#: ``exact.guarantee``'s format: E(f) as the paper defines it (the best head), bracketed.
ERROR_DEFINITION = "best head"


def guarantee_record(
    scored: RunGraph, f: np.ndarray, loss: float, optimum: float
) -> dict[str, Any]:
    """The paper's downstream quantities for features f (n, k) of every node (HaoChen et al.
    2021, Section 3.3 and Theorem 4.2; docs/THEORY.md, "The downstream guarantee"): E(f) and
    E(f*) each bracketed, from above by the best head tried (named) and from below by a bound
    for every head; the least-squares head's errors under their own names; the proven bound
    8α/(1 − γ_{k+1}) + 2α. docs/RUN_FORMAT.md lists the keys."""
    k = min(f.shape[1], len(scored.gammas) - 1)
    known = graph_guarantee(scored.key, k)
    alpha = known.task.alpha
    gamma_next = float(scored.gammas[k])
    network = DE.error_bracket(f, known.task, known.labelling)
    record: dict[str, Any] = {"k": k, "alpha": alpha, "error_definition": ERROR_DEFINITION}
    for name, bracket in (("error", network), ("optimum_error", known.optimum)):
        record.update({name: bracket.upper, f"{name}_lower": bracket.lower,
                       f"{name}_head": bracket.head,
                       f"{name}_lower_method": bracket.lower_method,
                       f"{name}_least_squares": bracket.least_squares})
    return {
        **record,
        "tied": O.tied_block(scored.gammas, k) is not None,
        "gamma_k1": gamma_next,
        "bound": GU.eigenvalue_bound(alpha, gamma_next),
        "per_view_bound": GU.per_view_bound(alpha, gamma_next),
        "rho_lower": GU.spectral_partition_bound(scored.gammas, max(1, k // 2)),
        "theorem_order": GU.theorem_bound(alpha, scored.gammas, k),
        "theorem_4_2": GU.approximate_minimiser_regime(loss - optimum, scored.gammas, k),
    }


@torch.no_grad()
def node_outputs(
    model: ContrastiveModel, run_graph: RunGraph, data: ImageDataset, device: torch.device
) -> torch.Tensor:
    """Projector outputs z (n, d), float64 on the CPU, of every node's image, in eval mode.

    The images are normalised with ``data``'s statistics, as the run's views are, and rendered
    512 at a time (the whole grid's 46,800 at once would take 575 MB of float32 to render).
    """
    model = model.to(device).eval()
    outputs = []
    for nodes in np.array_split(np.arange(run_graph.graph.num_nodes),
                                max(1, -(-run_graph.graph.num_nodes // 512))):
        batch = run_graph.graph.images(nodes).to(device)
        outputs.append(model(normalize(batch, data.mean, data.std))[1].double().cpu())
    return torch.cat(outputs)


def spectrum_blocks(gammas: np.ndarray, tolerance: float = BLOCK_TOLERANCE) -> list[range]:
    """Consecutive index ranges of equal eigenvalues (within ``tolerance``): the eigenspaces."""
    blocks, start = [], 0
    for i in range(1, len(gammas) + 1):
        if i == len(gammas) or abs(gammas[i] - gammas[start]) > tolerance:
            blocks.append(range(start, i))
            start = i
    return blocks


def span_basis(factor: np.ndarray) -> np.ndarray:
    """An orthonormal basis (n, r) of the column span of ``factor`` (n, d), the features as rows
    u_x = √w_x f(x); directions below 1e-8 of the largest singular value are round-off."""
    left, singular, _ = np.linalg.svd(factor, full_matrices=False)
    return left[:, singular > singular.max() * 1e-8] if singular.max() > 0 else left[:, :0]


def span_r2(basis: np.ndarray, vectors: np.ndarray) -> float:
    """How much of an eigenspace the features span: the mean squared cosine of the principal
    angles between span(vectors) (n, b), orthonormal, and the span of ``basis`` (n, r),
    orthonormal (:func:`span_basis`). 1: the block is inside the features' span."""
    return float(((basis.T @ vectors) ** 2).sum()) / vectors.shape[1]


def _one_blas_thread(function: Any, *args: Any) -> Any:
    """``function(*args)`` with NumPy's and SciPy's BLAS and OpenMP on one thread."""
    with threadpool_limits(1):
        return function(*args)


def exact_metrics(
    model: ContrastiveModel, config: Config, train: ImageDataset, device: torch.device
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Score one checkpoint on every node of its run's exact graph.

    Returns:
        ``(record, arrays)``: the record holds the graph's description, the population loss
        ``loss`` = L(f), the unconstrained optimum ``optimum`` = −Σ_{i≤k} γᵢ² (k = the projector's
        output dimension), the reachable optimum inside the ball ``reachable_optimum``, the
        relative gaps (L − L*)/|L*| to each, max‖f*‖² and whether the ball binds, the class
        block's span ``class_r2``, the spans of every eigenspace in the top k with their chance
        level ``span_chance``, the reachable optimum's eigenvalues ``reachable_c_eigs`` and the
        downstream ``guarantee`` (:func:`guarantee_record`); the
        arrays hold ``exact_gammas`` (k,) and ``exact_c_eigs`` (k,), the eigenvalues of
        E_w[f fᵀ].
    """
    started = time.perf_counter()
    scored = run_graph(config, train)
    w = scored.graph.degrees  # (n,) the marginal of the joint distribution of pairs
    z = node_outputs(model, scored, train, device).numpy()  # (n, d)
    k = min(z.shape[1], len(scored.gammas))
    if config.loss == "spectral":
        f, scale = clip_to_ball(z, config.mu), 1.0
    else:  # u = z/‖z‖ as NT-Xent and SimSiam see it, at its best scale c² = P / N
        u = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-300)
        scale = O.best_scale(u, scored.graph)
        f = u * scale
    loss = float(O.population_loss(f, scored.graph))
    gammas = scored.gammas[:k]
    optimum = O.optimal_loss(gammas)
    if config.loss == "spectral":
        curve = ball_curve(scored.key, k, config.mu)
        reachable, max_sq_norm = curve.at(config.mu), curve.max_sq_norm
    else:  # no clip, no ball: the optimum is the reachable one, and no curve is needed
        curve = BallCurve((), (), _max_sq_norm(scored.key, k))
        reachable, max_sq_norm = optimum, curve.max_sq_norm
    tie = O.tied_block(scored.gammas, k) if len(scored.gammas) > k else None
    c_eigs = np.linalg.eigvalsh(O.second_moment(f, scored.graph))[::-1][:k].copy()  # E_w[f fᵀ]
    basis = span_basis(f * np.sqrt(w)[:, None])  # of u_x = √w_x f(x)
    # every eigenspace inside the top k (a block cut by k is reported as far as k reaches)
    blocks = [
        {"first": b.start + 1, "size": len(b), "gamma": float(gammas[b.start]),
         "r2": span_r2(basis, scored.vectors[:, b.start : b.stop])}
        for b in spectrum_blocks(gammas)
    ]
    record = {
        "graph": {"own": scored.own, "description": scored.description,
                  "nodes": scored.graph.num_nodes, "k": k},
        "feature_scale": scale,
        "loss": loss,
        "optimum": optimum,
        "reachable_optimum": float(reachable),
        "gap": (loss - optimum) / abs(optimum),
        "reachable_gap": (loss - reachable) / abs(reachable),
        "mu": config.mu if config.loss == "spectral" else None,
        "max_optimal_sq_norm": max_sq_norm,
        # what holds for every optimal basis when k splits an eigenspace (docs/RUN_FORMAT.md)
        "tie": None if tie is None else {"first": tie.start + 1, "last": tie.stop,
                                         "gamma": float(gammas[k - 1])},
        "max_optimal_sq_norm_range": list(O.optimal_sq_norm_range(
            scored.gammas, scored.vectors, w, k)) if len(scored.gammas) > k else None,
        "ball_binds": config.loss == "spectral" and max_sq_norm > config.mu,
        "ball_curve": {"mu": list(curve.mus), "loss": list(curve.losses)},
        "reachable_certified": curve.certified,
        "class_r2": blocks[0]["r2"],
        "span_chance": basis.shape[1] / scored.graph.num_nodes,
        "blocks": blocks,
        "reachable_c_eigs": list(curve.c_eigs_at_mu),
        # small fits (scikit-learn's, HiGHS's) on one BLAS thread: a second gains nothing at
        # this size, and a loaded machine's spin-waits made them ten times slower
        "guarantee": _one_blas_thread(guarantee_record, scored, f, loss, optimum),
        "seconds": time.perf_counter() - started,
    }
    return record, {"exact_gammas": gammas.copy(), "exact_c_eigs": c_eigs}
