"""Small augmentation graphs to play with: clusters joined by weak edges, the exact ``shapes``
graph (:mod:`explorer.graphs.class_change_curve`), what the spectrum says about them, and a table f
trained on
the spectral loss.

The maths of the dashboard's Graph page (the page only draws). HaoChen et al. [0] show that the
minimisers of the spectral contrastive loss are f*(x) = sqrt(w_x)^-1 (sqrt(gamma_1) v_1(x), ...,
sqrt(gamma_k) v_k(x)) up to a rotation, v_i the top-k eigenvectors of the augmentation graph's
normalised adjacency Abar (:mod:`explorer.graphs.spectral`); that a nearly disconnected component
gives an
eigenvalue near 1; and that a linear head on f* recovers the components, with an error bound
that grows with alpha, the fraction of augmentations that change the class, and as the
eigenvalues after the k-th approach 1 ([0], NeurIPS 2021, Theorem 3.7 in rho_{floor(k/2)}; its
appendix gives the form in gamma_{k+1}; :mod:`explorer.graphs.guarantee`). Both kinds of graph here
are
augmentation graphs, W = K^T diag(p) K, so Abar is positive semi-definite. On the cluster graphs
the recovery falls gradually as the between weight grows. On the ``shapes`` graph the classes mix
through ``class_change_p``, the mechanism training uses: a ring, cross or star view is drawn as
its look-alike circle, square or triangle with probability class_change_p x its ambiguity, so
the classes mix where images are hard to tell apart; :mod:`explorer.graphs.class_change_curve`
sweeps it and
computes alpha, E(f*) and the bound exactly.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
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

from explorer.graphs import spectral
from explorer.graphs.interface import DenseGraph
from explorer.graphs.optimum import eigenvector_features

#: Up to this many nodes the spectrum is computed densely (all n eigenvalues); above, LOBPCG.
DENSE_NODES = 400
#: The between / within weight ratios a cluster graph's degradation curve sweeps.
CLUSTER_SWEEP = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class KernelFactor:
    """W = K^T diag(p) K with K = A + Q[labels][:, labels]: a sparse part A inside the clusters
    and a part constant on each pair of clusters (:func:`cluster_kernel`), kept so that a
    product with Abar costs O(nnz(A) + n k), not O(n^2).

    Attributes:
        p: (n,) the natural data's distribution.
        inside: A (n, n) sparse CSR.
        between: Q (k, k).
        labels: (n,) int64 cluster of each node.
    """

    p: np.ndarray
    inside: sp.csr_matrix
    between: np.ndarray
    labels: np.ndarray

    def abar(self) -> spla.LinearOperator:
        """Abar = D^{-1/2} K^T diag(p) K D^{-1/2} as an operator (D = diag(K^T p))."""
        k = len(self.between)
        Z = sp.csr_matrix(
            (np.ones(len(self.labels)), (np.arange(len(self.labels)), self.labels)),
            shape=(len(self.labels), k),
        )

        def kernel(y: np.ndarray) -> np.ndarray:  # K y, (n, b)
            return self.inside @ y + (self.between @ (Z.T @ y))[self.labels]

        def kernel_t(z: np.ndarray) -> np.ndarray:  # K^T z, (n, b)
            return self.inside.T @ z + (self.between.T @ (Z.T @ z))[self.labels]

        w = kernel_t(self.p[:, None])[:, 0]
        scale = 1.0 / np.sqrt(w)[:, None]

        def apply(x: np.ndarray) -> np.ndarray:
            x = np.asarray(x).reshape(len(w), -1)
            return scale * kernel_t(self.p[:, None] * kernel(scale * x))

        n = len(w)
        return spla.LinearOperator(
            (n, n), matvec=apply, matmat=apply, rmatvec=apply, dtype=np.float64
        )


@dataclass(frozen=True)
class LabGraph(DenseGraph):
    """An augmentation graph with known clusters, nodes ordered by cluster.

    A dense :class:`~explorer.graphs.interface.FiniteGraph` whose eigenpairs come from
    :func:`leading_eigenpairs` (LOBPCG through ``factor`` on large graphs).

    Attributes:
        weights: W (n, n) float64, symmetric, non-negative, summing to 1 (w(x, x') is the
            probability of the positive pair (x, x')).
        labels: (n,) int64 cluster of each node, non-decreasing.
        classes: the clusters' names.
        factor: W's factorisation K^T diag(p) K when known (cluster graphs), for fast products.
    """

    labels: np.ndarray
    classes: tuple[str, ...]
    factor: KernelFactor | None = None

    def top_eigenpairs(self, k: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The k largest eigenpairs of Abar (:func:`leading_eigenpairs`, ``seed`` its start)."""
        return leading_eigenpairs(self.weights, k, seed=seed, factor=self.factor)

    @property
    def k(self) -> int:
        """The number of clusters: the features a linear head needs to tell them apart."""
        return len(self.classes)


def cluster_sizes(k: int, largest: int, smallest: int | None = None) -> tuple[int, ...]:
    """k cluster sizes from ``largest`` down to ``smallest`` (default: all equal), evenly spaced."""
    if k < 1 or largest < 1 or (smallest is not None and not 1 <= smallest <= largest):
        raise ValueError(
            f"need k >= 1 and 1 <= smallest <= largest, got {k}, {smallest}, {largest}"
        )
    low = largest if smallest is None else smallest
    return tuple(int(round(s)) for s in np.linspace(largest, low, k))


def cluster_targets(
    sizes: Sequence[int], degree: float | None = None, *, seed: int = 0
) -> list[np.ndarray]:
    """For each cluster of ``sizes``, the positions (s, m) inside it where the augmentation of
    each of its natural data lands: row j is (j, j + 1, j + t_1, ..., j + t_{m-2}) mod s.

    m = min(degree, s) (m = s, every node of the cluster, with ``degree=None``). j itself and
    its neighbour j + 1 on a ring through the cluster come first, so that every cluster is
    connected; the offsets t come from one seeded draw per cluster of size s > 2,
    ``argsort(rng.random((s, s - 2)), axis=1)[:, :m - 2] + 2`` with
    ``rng = np.random.default_rng(seed)`` shared by the clusters in order, so that a larger
    ``degree`` keeps the targets of a smaller one and adds others.
    """
    if degree is not None and degree < 2:
        raise ValueError(f"degree must be >= 2 (a datum and its ring neighbour), got {degree}")
    rng = np.random.default_rng(seed)
    targets = []
    for s in sizes:
        m = s if degree is None else min(int(degree), s)
        order = (
            np.arange(s)[None, :]
            if s <= 2
            else np.c_[
                np.zeros((s, 1), np.int64),
                np.ones((s, 1), np.int64),
                np.argsort(rng.random((s, s - 2)), axis=1) + 2,
            ]
        )
        targets.append((np.arange(s)[:, None] + order[:, :m]) % s)
    return targets


def _cluster_parts(
    sizes: Sequence[int], within: float, between: float, degree: float | None, seed: int
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """K = A + Q[labels][:, labels] of :func:`cluster_kernel`: A (n, n) sparse, the part inside
    the clusters, Q (k, k) the weight of each node of cluster c' for a datum of cluster c (0 on
    the diagonal), and the labels (n,)."""
    if within <= 0 or between < 0:
        raise ValueError(f"need within > 0 and between >= 0, got {within} and {between}")
    if not sizes or min(sizes) < 1:
        raise ValueError(f"need at least one cluster, each of >= 1 node, got {tuple(sizes)}")
    sizes = np.asarray(sizes, dtype=np.int64)
    targets = cluster_targets(tuple(int(s) for s in sizes), degree, seed=seed)
    m = np.array([t.shape[1] for t in targets], dtype=np.float64)  # (k,) targets inside
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    spread = between * m / sizes  # (k,) weight of each node of a cluster, from outside it
    total = within * m + between * (m.sum() - m)  # (k,) row sum of each cluster's data
    Q = np.where(np.eye(len(sizes), dtype=bool), 0.0, spread[None, :]) / total[:, None]
    rows = np.concatenate(
        [
            np.repeat(o + np.arange(len(t)), t.shape[1])
            for o, t in zip(offsets, targets, strict=True)
        ]
    )
    cols = np.concatenate([(o + t).ravel() for o, t in zip(offsets, targets, strict=True)])
    labels = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    values = within / total[labels[rows]]
    n = int(sizes.sum())
    return sp.csr_matrix((values, (rows, cols)), shape=(n, n)), Q, labels


def cluster_kernel(
    sizes: Sequence[int],
    within: float = 1.0,
    between: float = 0.05,
    *,
    degree: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The natural data and augmentation kernel of :func:`cluster_graph`, written out densely.

    One natural datum per node, uniform: p = 1/n. The augmentation of a datum of cluster c
    lands on each of its m_c targets inside c (:func:`cluster_targets`) with weight ``within``,
    and on every node of each other cluster c' with weight ``between`` * m_c' / s_c' (``between``
    on each of m_c' nodes, spread evenly over c'), the row then divided by its sum. So a datum
    leaves its cluster with probability between * sum_{c' != c} m_c' / (within * m_c + between
    * sum_{c' != c} m_c'); with equal clusters and between = within its clusters are gone.

    Returns:
        p (n,) and K (n, n), row-stochastic: K[xbar, x] = A(x | xbar).
    """
    inside, Q, labels = _cluster_parts(sizes, within, between, degree, seed)
    n = len(labels)
    return np.full(n, 1.0 / n), inside.toarray() + Q[labels][:, labels]


def cluster_graph(
    sizes: Sequence[int],
    within: float = 1.0,
    between: float = 0.05,
    *,
    degree: float | None = None,
    seed: int = 0,
) -> LabGraph:
    """k clusters joined by weak edges, built as an augmentation graph: W = K^T diag(p) K.

    The augmentation graph [0, Section 3.1] of :func:`cluster_kernel`: one natural datum per
    node; its augmentation stays in its cluster, on ``degree`` nodes (itself, its neighbour on a
    ring through the cluster, and random others), except with a small probability set by
    ``between`` / ``within``, when it lands anywhere in another cluster. Being K^T diag(p) K,
    W is positive semi-definite (Abar's eigenvalues lie in [0, 1]), and the ring keeps every
    cluster connected: with ``between = 0`` the clusters are exactly the connected components,
    k eigenvalues 1. The random targets give each cluster a bulk of eigenvalues below 1, as
    real augmentation graphs have, and degrees w_x that vary inside a cluster. The targets
    depend on ``seed``, the sizes and ``degree`` only, so moving ``between`` changes weights, not
    edges.

    Args:
        sizes: (k,) nodes per cluster, each >= 1.
        within: weight of each target inside the cluster, > 0.
        between: weight of each target outside it, >= 0 (only between / within matters).
        degree: targets of a datum inside its cluster (capped at its size), >= 2, or None for
            every node of the cluster (then W has rank k and gamma_{k+1} = 0).
        seed: seed of the random targets.
    """
    inside, Q, labels = _cluster_parts(sizes, within, between, degree, seed)
    n, k = len(labels), len(sizes)
    p = 1.0 / n
    # W = K^T p K with K = A + Z Q Z^T (Z the cluster indicators): four products, none n^3
    W = (inside.T @ inside).toarray() * p
    mixed = np.asarray((inside.T @ np.eye(k)[labels]) * p) @ Q  # (n, k): A^T p Z Q
    W += mixed[:, labels] + mixed[:, labels].T
    counts = np.bincount(labels, minlength=k) * p  # Z^T p Z, diagonal
    W += (Q.T @ (counts[:, None] * Q))[labels][:, labels]
    return LabGraph(
        W / W.sum(),
        labels,
        tuple(f"cluster {c}" for c in range(k)),
        KernelFactor(np.full(n, p), inside, Q, labels),
    )


def leading_eigenpairs(
    W: np.ndarray, m: int, *, seed: int = 0, factor: KernelFactor | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The m largest eigenvalues of Abar, descending, and their eigenvectors (n, m).

    Dense ``eigh`` (:func:`explorer.graphs.spectral.top_eigenpairs`) up to :data:`DENSE_NODES`
    nodes; above, LOBPCG on Abar (through W's ``factor`` when given, else stored sparse when at most
    a
    fifth of W is non-zero, so that a product costs O(edges)) with a block of m + 4 seeded
    random vectors. A block method, not
    Lanczos (``eigsh``): a graph of c disconnected components has eigenvalue 1 c times, and
    Lanczos from one start vector finds one copy of a repeated eigenvalue. Residuals below
    1e-5 leave eigenvalues within ~1e-9 of ``eigh`` (their error is about the residual squared);
    falls back to ``eigh`` if a residual stays above 1e-4.
    """
    n = W.shape[0]
    if n <= DENSE_NODES or 5 * (m + 4) >= n:
        return spectral.top_eigenpairs(W, m)
    if factor is not None:
        abar = factor.abar()
    else:
        abar = spectral.normalized_adjacency(W)
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
        return spectral.top_eigenpairs(W, m)
    return values, vectors


def probe_accuracy(features: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Test accuracy of a linear probe: scikit-learn ``LogisticRegression`` on standardised
    ``features`` (n, k), fitted on a stratified half of the nodes, scored on the other half."""
    train_x, test_x, train_y, test_y = train_test_split(
        features, labels, test_size=0.5, random_state=seed, stratify=labels
    )
    head = make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=2000))
    return float(head.fit(train_x, train_y).score(test_x, test_y))


def largest_gap(gammas: np.ndarray) -> tuple[int, float]:
    """Where a descending spectrum drops most: (i, gamma_i - gamma_{i+1}), i counted from 1.

    The eigengap heuristic of spectral clustering (von Luxburg, "A tutorial on spectral
    clustering", Statistics and Computing 2007, Section 8.3): i nearly disconnected clusters
    give i eigenvalues near 1 and then a drop, whatever "near" means for the graph (a fixed
    threshold of 0.9 counts 1 of 6 or of 8 clusters of 40 at the Graph page's default weights,
    whose cluster eigenvalues are 0.89 and 0.86). The first of equal drops wins.
    """
    drops = -np.diff(np.asarray(gammas, dtype=np.float64))
    if not len(drops):
        raise ValueError("need at least two eigenvalues")
    i = int(np.argmax(drops))
    return i + 1, float(drops[i])


@dataclass(frozen=True)
class GraphSummary:
    """What the spectrum of a :class:`LabGraph` says about its clusters.

    Attributes:
        gammas: the top eigenvalues of Abar, descending (all n up to :data:`DENSE_NODES` nodes).
        vectors: (n, k) the top-k eigenvectors, k the number of clusters.
        before_gap: how many of ``gammas`` come before their largest drop (:func:`largest_gap`).
        gap: that drop, gamma_i - gamma_{i+1}.
        ari: adjusted Rand index of spectral clustering (k clusters) against the true clusters.
        probe_accuracy: :func:`probe_accuracy` of the top-k spectral features.
    """

    gammas: np.ndarray
    vectors: np.ndarray
    before_gap: int
    gap: float
    ari: float
    probe_accuracy: float


def summarize(lab: LabGraph, *, num_eigenvalues: int = 12, seed: int = 0) -> GraphSummary:
    """Spectrum, eigenvectors, spectral clustering (ARI) and a linear probe of ``lab``.

    ``num_eigenvalues`` eigenvalues above :data:`DENSE_NODES` nodes (at least k + 1), all below;
    the largest gap is looked for among those computed.
    """
    n, k = lab.num_nodes, lab.k
    m = n if n <= DENSE_NODES else max(num_eigenvalues, k + 1)
    gammas, vectors = lab.top_eigenpairs(m, seed=seed)
    top = vectors[:, :k]
    clusters = spectral.spectral_clustering(lab.weights, k, seed=seed, vectors=top, n_init=4)
    before_gap, gap = largest_gap(gammas)
    return GraphSummary(
        gammas=gammas,
        vectors=top,
        before_gap=before_gap,
        gap=gap,
        ari=float(adjusted_rand_score(lab.labels, clusters)),
        probe_accuracy=probe_accuracy(eigenvector_features(lab, top), lab.labels, seed=seed),
    )


@dataclass(frozen=True)
class DegradationCurve:
    """How the clusters' recovery changes as the edges between them grow, one entry per value.

    Attributes:
        values: (m,) the parameter swept (e.g. the between / within weight ratio).
        gamma_k: (m,) the k-th eigenvalue of Abar (k = the number of clusters).
        gamma_next: (m,) gamma_{k+1}: the paper's bound on a linear probe's error needs it away
            from 1 ([0], NeurIPS 2021: Theorem 3.7 states it in rho_{floor(k/2)}, the appendix
            in gamma_{k+1}).
        probe_accuracy: (m,) :func:`probe_accuracy` on the top-k spectral features.
        ari: (m,) adjusted Rand index of spectral clustering against the true clusters.
    """

    values: np.ndarray
    gamma_k: np.ndarray
    gamma_next: np.ndarray
    probe_accuracy: np.ndarray
    ari: np.ndarray


def degradation_curve(
    build: Callable[[float], LabGraph], values: Sequence[float], *, seed: int = 0
) -> DegradationCurve:
    """Sweep ``values`` through ``build`` (e.g. ``lambda b: cluster_graph(sizes, 1, b)``) and
    record gamma_k, gamma_{k+1}, the probe's accuracy and the ARI of each graph."""
    rows = []
    for value in values:
        lab = build(float(value))
        summary = summarize(lab, num_eigenvalues=lab.k + 1, seed=seed)
        rows.append(
            (summary.gammas[lab.k - 1], summary.gammas[lab.k], summary.probe_accuracy, summary.ari)
        )
    columns = np.asarray(rows, dtype=np.float64).T  # 4 x m
    return DegradationCurve(np.asarray(values, dtype=np.float64), *columns)
