"""The Graph page's ``shapes`` graph beyond the dense sub-grid: larger sub-grids up to the whole
grid (64,800 factor tuples, 46,800 images), read matrix-free.

The dense path (:mod:`explorer.graphs.class_change_curve`) forms W, (n, n): 5.6 MB at the default
sub-grid's
840 nodes, 17.5 GB at the whole grid's 46,800. Here the graph is :class:`explorer.graphs.kronecker.
KronGraph` (W·F by the kernel's Kronecker parts, never W) with natural data uniform over the
sub-grid, and every number the page shows for a small graph is computed from products alone:

- the top eigenvalues of Ā and their eigenvectors (LOBPCG on the operator: :meth:`KronGraph.
  top_eigenpairs`), the largest gap among them, spectral clustering (ARI) and a linear probe on
  the top-k eigenvector features;
- α, E(f*) and the bounds of the paper's downstream guarantee [0, Section 3.3] from two products
  of the natural kernel A (:func:`explorer.graphs.guarantee.downstream_error_of`);
- W summed over class blocks, Yᵀ W Y (r, r), one product with the class indicators: the
  heatmap a 46,800-node W cannot be drawn as;
- f* = D^-1/2 v on an evenly drawn sample of nodes per class, for the eigenvector heatmap.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import adjusted_rand_score

from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesGrid, grid_values
from explorer.graphs import downstream_error, guarantee, spectral
from explorer.graphs.class_change_curve import ONE_TOLERANCE, GuaranteePoint
from explorer.graphs.clusters import largest_gap, probe_accuracy
from explorer.graphs.kronecker import KronGraph, kron_graph
from explorer.graphs.optimum import eigenvector_features, optimal_features, tied_block

#: Every value of each factor (explorer.data.shapes.SHAPES_GRID), by factor name.
_ALL = dict(zip(ShapesGrid.FACTORS, grid_values(SHAPES_GRID, None), strict=True))
#: The sub-grids the Graph page offers, smallest first: (name, sub-grid for
#: :func:`explorer.graphs.kronecker.kron_graph`; None: the whole grid). The first is the dense
#: path's.
GRIDS: tuple[tuple[str, dict[str, tuple[int, ...]] | None], ...] = (
    ("default sub-grid", dict(SUBGRID)),
    ("all positions", {**SUBGRID, "position": _ALL["position"]}),
    ("+ all scales, rotations", {**SUBGRID, **{k: _ALL[k] for k in ("position", "scale",
                                                                   "rotation")}}),
    ("+ all fg colours", {**SUBGRID, **{k: _ALL[k] for k in ("position", "scale", "rotation",
                                                            "fg_color")}}),
    ("whole grid", None),
)
#: Eigenvalues computed (the largest gap is looked for among them).
COMPUTED = 16
#: Nodes per class drawn for the eigenvector heatmap.
SAMPLE_PER_CLASS = 60


@dataclass(frozen=True)
class GridReading:
    """What the Graph page shows of one matrix-free shapes graph (k = its class count).

    Attributes:
        num_nodes: distinct images n; ``num_tuples`` the factor tuples T (uniform natural data).
        classes: the class names, r = k of them.
        gammas: (COMPUTED,) the top eigenvalues of Ā, descending.
        before_gap: how many of ``gammas`` come before their largest drop; ``gap`` that drop.
        class_weights: (r, r) Yᵀ W Y: the mass of W between each pair of classes (sums to 1).
        class_nodes: (r,) nodes per class.
        sample: (s,) nodes drawn evenly from each class, in class order; ``sample_labels`` theirs.
        sample_features: (s, k) f = D^-1/2 v on ``sample`` (the top-k eigenvectors v of Ā).
        ari: spectral clustering of every node against the classes (adjusted Rand index).
        probe_accuracy: :func:`explorer.graphs.clusters.probe_accuracy` of f on every node.
        guarantee: α, E(f*), the bounds
            (:class:`explorer.graphs.class_change_curve.GuaranteePoint`).
        seconds: wall time of the whole reading.
    """

    num_nodes: int
    num_tuples: int
    classes: list[str]
    gammas: np.ndarray
    before_gap: int
    gap: float
    class_weights: np.ndarray
    class_nodes: np.ndarray
    sample: np.ndarray
    sample_labels: np.ndarray
    sample_features: np.ndarray
    ari: float
    probe_accuracy: float
    guarantee: GuaranteePoint
    seconds: float


def grid_tuples(grid: int) -> int:
    """How many factor tuples ``GRIDS[grid]`` holds (its natural data)."""
    return math.prod(len(v) for v in grid_values(SHAPES_GRID, GRIDS[grid][1]))


def grid_graph(
    grid: int, crop_p: float, rotate_p: float, color_p: float, class_change_p: float
) -> KronGraph:
    """The matrix-free graph of ``GRIDS[grid]`` with these probabilities, natural data uniform."""
    return kron_graph(subgrid=GRIDS[grid][1], crop_p=crop_p, rotate_p=rotate_p, color_p=color_p,
                      class_change_p=class_change_p)


def class_weights(kron: KronGraph) -> np.ndarray:
    """(r, r) Yᵀ W Y, Y (n, r) the class indicators: one product W·Y."""
    Y = np.eye(len(kron.classes))[kron.labels]
    return Y.T @ kron.weights_product(Y)


def optimum_guarantee(kron: KronGraph, gammas: np.ndarray, vectors: np.ndarray) -> GuaranteePoint:
    """:func:`explorer.graphs.class_change_curve.guarantee_point` matrix-free: α and E(f*) of the
    top-k
    eigenvector features (k the class count) from the label mass Aᵀ diag(p) Y and the vote's
    product A P, A the natural kernel (T, n), never formed. E(f*) is bracketed by the heads that
    need no kernel (least squares, logistic) from above; from below only by 0, unless α's
    labelling already wins every vote (no search over labellings on a graph this large)."""
    k = len(kron.classes)
    gammas = np.where(gammas > 1.0 - ONE_TOLERANCE, 1.0, gammas)
    mass, p, y = kron.label_mass()
    task = guarantee.DownstreamTask(mass, kron.natural_product, p, y)
    f_star = optimal_features(kron, k, eigenpairs=(gammas, vectors))
    return GuaranteePoint(
        alpha=task.alpha,
        optimum=downstream_error.error_bracket(f_star, task,
                                               downstream_error.labelling_bound(task)),
        bound=guarantee.eigenvalue_bound(task.alpha, float(gammas[k])),
        theorem_order=guarantee.theorem_bound(task.alpha, gammas, k),
        tied=tied_block(gammas, k) is not None,
    )


#: What :func:`grid_reading` does, in order (its ``on_stage`` hears each as it starts).
STAGES = ("the graph's Kronecker parts", "eigenpairs (LOBPCG)",
          "spectral clustering and the probe", "the guarantee: α, E(f*), the bound")


def grid_reading(
    grid: int, crop_p: float, rotate_p: float, color_p: float, class_change_p: float,
    *, seed: int = 0, on_stage: Callable[[int, str], None] | None = None,
) -> GridReading:
    """:class:`GridReading` of :func:`grid_graph` (2-5 s on the whole grid on 2 quiet cores).

    ``on_stage(i, name)`` is called as stage ``i`` of :data:`STAGES` starts: a page shows it,
    and may abandon a reading nobody waits for any more by raising there.
    """
    tell = on_stage or (lambda i, name: None)
    started = time.perf_counter()
    tell(0, STAGES[0])
    kron = grid_graph(grid, crop_p, rotate_p, color_p, class_change_p)
    k, labels = len(kron.classes), kron.labels
    tell(1, STAGES[1])
    # LOBPCG, not the support's Gram matrix: for a few eigenpairs it is the faster (2 s against
    # 20 s on the 5,400 tuples of "all positions"); the Gram matrix pays for all of them
    gammas, vectors = kron.top_eigenpairs(min(COMPUTED, kron.num_nodes - 1), method="lobpcg",
                                          seed=seed)
    before_gap, gap = largest_gap(gammas)
    tell(2, STAGES[2])
    features = eigenvector_features(kron, vectors[:, :k])
    clusters = spectral.spectral_clustering(None, k, seed=seed, vectors=vectors[:, :k], n_init=4)
    rng = np.random.default_rng(seed)
    sample = np.concatenate([
        np.sort(rng.choice(members, min(SAMPLE_PER_CLASS, len(members)), replace=False))
        for members in (np.flatnonzero(labels == c) for c in range(k))
    ])
    ari = float(adjusted_rand_score(labels, clusters))
    accuracy = probe_accuracy(features, labels, seed=seed)
    tell(3, STAGES[3])
    point = optimum_guarantee(kron, gammas, vectors)
    return GridReading(
        num_nodes=kron.num_nodes,
        num_tuples=kron.num_tuples,
        classes=kron.classes,
        gammas=gammas,
        before_gap=before_gap,
        gap=gap,
        class_weights=class_weights(kron),
        class_nodes=np.bincount(labels, minlength=k),
        sample=sample,
        sample_labels=labels[sample],
        sample_features=features[sample],
        ari=ari,
        probe_accuracy=accuracy,
        guarantee=point,
        seconds=time.perf_counter() - started,
    )
