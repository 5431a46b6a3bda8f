"""Small augmentation graphs to play with: clusters joined by weak edges, the exact ``shapes``
graph, what the spectrum says about them, and a table f trained on the spectral loss.

The maths of the dashboard's Graph page (the page only draws). HaoChen et al. [0] prove that the
minimiser of the spectral contrastive loss is the top-k eigenvectors of the augmentation graph's
normalised adjacency Abar (:mod:`explorer.graph`), that a nearly disconnected component gives an
eigenvalue near 1, and that a linear head on those features recovers the components, degrading
gracefully as the edges between them grow (the error bound grows as gamma_{k+1} approaches 1).

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Holland, Laskey, Leinhardt, "Stochastic blockmodels: First steps", Social Networks 1983.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from explorer import graph
from explorer.shapes_graph import shapes_augmentation_graph

#: Up to this many nodes the spectrum is computed densely (all n eigenvalues); above, LOBPCG.
DENSE_NODES = 400
#: The values a degradation curve sweeps: the between / within weight ratio of a cluster graph,
#: the shape-changing probability of the shapes graph.
CLUSTER_SWEEP = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
SHAPE_SWEEP = (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)


@dataclass(frozen=True)
class LabGraph:
    """An augmentation graph with known clusters, nodes ordered by cluster.

    Attributes:
        weights: W (n, n) float64, symmetric, non-negative, summing to 1 (w(x, x') is the
            probability of the positive pair (x, x')).
        labels: (n,) int64 cluster of each node, non-decreasing.
        classes: the clusters' names.
    """

    weights: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    @property
    def k(self) -> int:
        """The number of clusters: the features a linear head needs to tell them apart."""
        return len(self.classes)


def cluster_sizes(k: int, largest: int, smallest: int | None = None) -> tuple[int, ...]:
    """k cluster sizes from ``largest`` down to ``smallest`` (default: all equal), evenly spaced."""
    if k < 1 or largest < 1 or (smallest is not None and not 1 <= smallest <= largest):
        raise ValueError(f"need k >= 1 and 1 <= smallest <= largest, got {k}, {smallest}, "
                         f"{largest}")
    low = largest if smallest is None else smallest
    return tuple(int(round(s)) for s in np.linspace(largest, low, k))


def cluster_graph(
    sizes: Sequence[int],
    within: float = 1.0,
    between: float = 0.05,
    *,
    degree: float | None = None,
    seed: int = 0,
) -> LabGraph:
    """k clusters joined by weak edges: :func:`explorer.graph.block_graph` on a random edge set.

    With ``degree=None`` every pair is an edge (the block graph: rank k, gamma_{k+1} = 0). With
    a ``degree``, each pair x < x' is an edge with probability p = min(1, degree / mean size)
    whether or not it crosses clusters (a planted-partition stochastic block model [1] whose
    clusters differ by weight only), so a node has about ``degree`` neighbours in its cluster
    (and k - 1 times as many outside, of weight ``between``): the within-cluster random graph
    then has a bulk of eigenvalues below the clusters' ones, as real augmentation graphs do. Every
    node keeps its self-loop (an augmentation may return the image itself). The edge set depends
    on ``seed`` and the sizes only, so moving ``between`` changes weights, not edges.

    Args:
        sizes: (k,) nodes per cluster, each >= 1.
        within: weight of an edge inside a cluster, > 0.
        between: weight of an edge across clusters, >= 0 (only between / within matters: W is
            normalised to sum 1).
        degree: expected neighbours of a node inside its cluster (for equal sizes), > 0, or
            None for all pairs.
        seed: seed of the edge set.
    """
    if within <= 0 or between < 0:
        raise ValueError(f"need within > 0 and between >= 0, got {within} and {between}")
    W = graph.block_graph(tuple(sizes), within, between)  # nxn, normalised
    n = W.shape[0]
    if degree is not None:
        if degree <= 0:
            raise ValueError(f"degree must be > 0, got {degree}")
        rng = np.random.default_rng(seed)
        upper = np.triu(rng.random((n, n)) < degree * len(sizes) / n, 1)
        W = W * (upper | upper.T | np.eye(n, dtype=bool))
        W /= W.sum()
    labels = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    return LabGraph(W, labels, tuple(f"cluster {c}" for c in range(len(sizes))))


def shapes_lab_graph(
    crop_p: float = 0.5, rotate_p: float = 0.5, color_p: float = 0.8, shape_p: float = 0.0
) -> LabGraph:
    """The exact ``shapes`` graph on its default sub-grid (840 images, 6 classes), nodes ordered
    by class: :func:`explorer.shapes_graph.shapes_augmentation_graph` with these redraw
    probabilities. ``shape_p`` redraws the shape, so it joins the classes (0: they are the
    graph's connected components, 6 eigenvalues exactly 1)."""
    g = shapes_augmentation_graph(crop_p=crop_p, rotate_p=rotate_p, color_p=color_p,
                                  shape_p=shape_p)
    order = np.argsort(g.labels, kind="stable")
    return LabGraph(g.weights[np.ix_(order, order)], g.labels[order], tuple(g.classes))


def leading_eigenpairs(W: np.ndarray, m: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The m largest eigenvalues of Abar, descending, and their eigenvectors (n, m).

    Dense ``eigh`` (:func:`explorer.graph.top_eigenpairs`) up to :data:`DENSE_NODES` nodes;
    above, LOBPCG on Abar (stored sparse when at most a fifth of W is non-zero, so that a
    product costs O(edges)) with a block of m + 4 seeded random vectors. A block method, not
    Lanczos (``eigsh``): a graph of c disconnected components has eigenvalue 1 c times, and
    Lanczos from one start vector finds one copy of a repeated eigenvalue. Residuals below
    1e-5 leave eigenvalues within ~1e-9 of ``eigh`` (their error is about the residual squared);
    falls back to ``eigh`` if a residual stays above 1e-4.
    """
    n = W.shape[0]
    if n <= DENSE_NODES or 5 * (m + 4) >= n:
        return graph.top_eigenpairs(W, m)
    abar = graph.normalized_adjacency(W)
    if np.count_nonzero(abar) <= n * n / 5:
        abar = sp.csr_matrix(abar)
    start = np.random.default_rng(seed).normal(size=(n, m + 4))  # seeded: same graph, same result
    with warnings.catch_warnings():  # non-convergence is checked below, by the residuals
        warnings.simplefilter("ignore")
        values, vectors = spla.lobpcg(abar, start, largest=True, tol=1e-5, maxiter=500)
    order = np.argsort(values)[::-1][:m]
    values, vectors = values[order], vectors[:, order]
    residual = np.linalg.norm(abar @ vectors - vectors * values[None, :], axis=0).max()
    if not residual <= 1e-4:
        return graph.top_eigenpairs(W, m)
    return values, vectors


def probe_accuracy(features: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Test accuracy of a linear probe: scikit-learn ``LogisticRegression`` on standardised
    ``features`` (n, k), fitted on a stratified half of the nodes, scored on the other half."""
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.5, random_state=seed, stratify=labels)
    head = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=2000))
    return float(head.fit(train_x, train_y).score(test_x, test_y))


def spectral_features(W: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """f(x) = v(x) / sqrt(w_x) for eigenvectors v (n, k): the optimal features of the spectral
    loss [0, Section 3.2] up to a scale per column, which a linear head absorbs."""
    w = graph.degrees(W) / W.sum()
    return vectors / np.sqrt(np.where(w > 0, w, 1.0))[:, None]


@dataclass(frozen=True)
class GraphSummary:
    """What the spectrum of a :class:`LabGraph` says about its clusters.

    Attributes:
        gammas: the top eigenvalues of Abar, descending (all n up to :data:`DENSE_NODES` nodes).
        vectors: (n, k) the top-k eigenvectors, k the number of clusters.
        threshold: eigenvalues above it count as "near 1".
        near_one: how many of ``gammas`` are above ``threshold``.
        ari: adjusted Rand index of spectral clustering (k clusters) against the true clusters.
        probe_accuracy: :func:`probe_accuracy` of the top-k spectral features.
    """

    gammas: np.ndarray
    vectors: np.ndarray
    threshold: float
    near_one: int
    ari: float
    probe_accuracy: float

    @property
    def complete(self) -> bool:
        """Whether ``near_one`` is exact (some computed eigenvalue is at or below the threshold)."""
        return self.near_one < len(self.gammas)


def summarize(lab: LabGraph, *, threshold: float = 0.9, num_eigenvalues: int = 12,
              seed: int = 0) -> GraphSummary:
    """Spectrum, eigenvectors, spectral clustering (ARI) and a linear probe of ``lab``.

    ``num_eigenvalues`` eigenvalues above :data:`DENSE_NODES` nodes (at least k + 1), all below.
    """
    n, k = lab.num_nodes, lab.k
    m = n if n <= DENSE_NODES else max(num_eigenvalues, k + 1)
    gammas, vectors = leading_eigenpairs(lab.weights, m, seed=seed)
    top = vectors[:, :k]
    clusters = graph.spectral_clustering(lab.weights, k, seed=seed, vectors=top, n_init=4)
    return GraphSummary(
        gammas=gammas,
        vectors=top,
        threshold=threshold,
        near_one=int((gammas > threshold).sum()),
        ari=float(adjusted_rand_score(lab.labels, clusters)),
        probe_accuracy=probe_accuracy(spectral_features(lab.weights, top), lab.labels, seed=seed),
    )


@dataclass(frozen=True)
class DegradationCurve:
    """How the clusters' recovery degrades as the edges between them grow, one entry per value.

    Attributes:
        values: (m,) the parameter swept (the between-cluster weight, or shapes' ``shape_p``).
        gamma_k: (m,) the k-th eigenvalue of Abar (k = the number of clusters).
        gamma_next: (m,) gamma_{k+1}: the paper's bounds need it away from 1 [0, Theorem 3.8].
        probe_accuracy: (m,) :func:`probe_accuracy` on the top-k spectral features.
        ari: (m,) adjusted Rand index of spectral clustering against the true clusters.
    """

    values: np.ndarray
    gamma_k: np.ndarray
    gamma_next: np.ndarray
    probe_accuracy: np.ndarray
    ari: np.ndarray


def degradation_curve(build: Callable[[float], LabGraph], values: Sequence[float], *,
                      seed: int = 0) -> DegradationCurve:
    """Sweep ``values`` through ``build`` (e.g. ``lambda b: cluster_graph(sizes, 1, b)``) and
    record gamma_k, gamma_{k+1}, the probe's accuracy and the ARI of each graph."""
    rows = []
    for value in values:
        lab = build(float(value))
        summary = summarize(lab, threshold=1.0, num_eigenvalues=lab.k + 1, seed=seed)
        rows.append((summary.gammas[lab.k - 1], summary.gammas[lab.k], summary.probe_accuracy,
                     summary.ari))
    columns = np.asarray(rows, dtype=np.float64).T  # 4 x m
    return DegradationCurve(np.asarray(values, dtype=np.float64), *columns)
