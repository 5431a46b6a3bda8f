"""explorer.graphs.clusters, explorer.graphs.table_training and the Graph page's eigenvector figure
against
independent references: plain loops, NumPy's eigh, SciPy's connected components, scikit-learn,
and closed forms (disconnected cliques, the shapes kernel's (1 - p)^2)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy.sparse.csgraph import connected_components

from explorer.graphs import clusters as graph_lab
from explorer.graphs import table_training as graph_training
from explorer.graphs.clusters import cluster_graph
from explorer.graphs.shapes import shapes_augmentation_graph
from explorer.readings.graph_figures import eigenvector_heatmap, weights_heatmap


def abar_eigenvalues(W: np.ndarray) -> np.ndarray:
    """Every eigenvalue of D^{-1/2} W D^{-1/2}, descending, written out with NumPy only."""
    w = W.sum(1)
    return np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w)))[::-1]


def documented_targets(sizes: tuple[int, ...], degree: int | None, seed: int) -> list[list[int]]:
    """Where each node's natural datum lands inside its cluster, as cluster_targets documents it:
    itself, its ring neighbour, then random offsets from one seeded draw per cluster."""
    rng = np.random.default_rng(seed)
    targets, start = [], 0
    for s in sizes:
        m = s if degree is None else min(degree, s)
        draws = np.argsort(rng.random((s, s - 2)), axis=1) + 2 if s > 2 else None
        for j in range(s):
            offsets = list(range(s)) if draws is None else [0, 1, *draws[j]]
            targets.append([start + (j + t) % s for t in offsets[:m]])
        start += s
    return targets


def loop_graph(
    sizes: tuple[int, ...], within: float, between: float, degree: int | None, seed: int = 0
) -> np.ndarray:
    """W = sum_xbar p(xbar) A(x|xbar) A(x'|xbar) written as loops over the documented kernel: one
    datum per node (p = 1/n); weight ``within`` on each of its targets inside its cluster,
    ``between`` on each of m' nodes of every other cluster spread evenly over it."""
    n = sum(sizes)
    labels = [c for c, s in enumerate(sizes) for _ in range(s)]
    m = [s if degree is None else min(degree, s) for s in sizes]
    targets = documented_targets(sizes, degree, seed)
    K = np.zeros((n, n))
    for xbar in range(n):
        for x in targets[xbar]:
            K[xbar, x] += within
        for x in range(n):
            if labels[x] != labels[xbar]:
                K[xbar, x] += between * m[labels[x]] / sizes[labels[x]]
        K[xbar] /= K[xbar].sum()
    W = np.zeros((n, n))
    for xbar in range(n):
        for x in range(n):
            for x2 in range(n):
                W[x, x2] += K[xbar, x] * K[xbar, x2] / n
    return W


@pytest.mark.parametrize(
    ("sizes", "within", "between", "degree"),
    [
        ((3, 2, 4), 2.0, 0.5, None),
        ((6, 5, 7), 1.0, 0.1, 3),
        ((4, 1, 2, 5), 0.3, 0.0, 4),
        ((9, 9), 1.0, 1.0, 6),
    ],
)
def test_cluster_graph_is_the_augmentation_graph_written_as_loops(
    sizes: tuple[int, ...], within: float, between: float, degree: int | None
) -> None:
    lab = cluster_graph(sizes, within, between, degree=degree)
    np.testing.assert_allclose(
        lab.weights, loop_graph(sizes, within, between, degree), rtol=1e-12, atol=1e-15
    )
    labels = [c for c, size in enumerate(sizes) for _ in range(size)]
    assert lab.labels.tolist() == labels and lab.k == len(sizes) and lab.num_nodes == sum(sizes)
    p, K = graph_lab.cluster_kernel(sizes, within, between, degree=degree)
    np.testing.assert_allclose(K.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_allclose((K.T * p) @ K, lab.weights, rtol=1e-12, atol=1e-15)


def test_a_datum_lands_on_degree_nodes_of_its_cluster_and_leaves_it_as_documented() -> None:
    sizes, within, between, degree = (30, 20, 4), 1.0, 0.05, 6
    p, K = graph_lab.cluster_kernel(sizes, within, between, degree=degree, seed=3)
    labels = np.repeat([0, 1, 2], sizes)
    m = np.minimum(degree, sizes)  # capped at the cluster's size
    same = labels[:, None] == labels[None, :]
    np.testing.assert_array_equal(((K > 0) & same).sum(1), m[labels])
    assert (np.diag(K) > 0).all()  # the datum itself
    ring = [
        (x - start + 1) % s + start
        for s, start in zip(sizes, (0, 30, 50), strict=True)
        for x in range(start, start + s)
    ]
    assert (K[np.arange(54), ring] > 0).all()  # and its ring neighbour
    leaving = (K * ~same).sum(1)
    outside = m.sum() - m[labels]
    expected = between * outside / (within * m[labels] + between * outside)
    np.testing.assert_allclose(leaving, expected, rtol=1e-12)
    # a larger degree keeps the targets of a smaller one; between moves weights, not targets
    _, more = graph_lab.cluster_kernel(sizes, within, between, degree=degree + 4, seed=3)
    assert ((K > 0) & same <= (more > 0) & same).all()
    _, strong = graph_lab.cluster_kernel(sizes, within, 0.5, degree=degree, seed=3)
    np.testing.assert_array_equal((K > 0) & same, (strong > 0) & same)


SETTINGS = [
    ((40, 40, 40), 1.0, 0.01, 10),
    ((40, 40, 40), 1.0, 0.0, 3),
    ((30, 22, 14, 6), 0.1, 1.0, 3),
    ((5,) * 8, 1.0, 0.3, 50),
    ((60, 12), 0.55, 0.02, 25),
    ((100, 100), 1.0, 1.0, 7),
]


@pytest.mark.parametrize(("sizes", "within", "between", "degree"), SETTINGS)
def test_cluster_graphs_are_positive_semidefinite(
    sizes: tuple[int, ...], within: float, between: float, degree: int
) -> None:
    W = cluster_graph(sizes, within, between, degree=degree).weights
    np.testing.assert_allclose(W, W.T, atol=1e-18)
    gammas = abar_eigenvalues(W)
    assert gammas[-1] >= -1e-10 and gammas[0] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("sizes", [(40, 40, 40), (30, 25, 20, 15, 11, 6), (5, 2), (12,) * 8])
def test_no_between_weight_gives_one_component_and_one_eigenvalue_1_per_cluster(
    sizes: tuple[int, ...],
) -> None:
    for degree in range(3, 51):  # every value of the page's slider
        W = cluster_graph(sizes, 1.0, 0.0, degree=degree).weights
        count, component = connected_components(W > 0, directed=False)
        labels = np.repeat(np.arange(len(sizes)), sizes)
        assert count == len(sizes), (degree, count)
        assert all(len(set(component[labels == c])) == 1 for c in range(len(sizes)))
        gammas = abar_eigenvalues(W)
        assert int((gammas > 1 - 1e-9).sum()) == len(sizes), degree
    joined = cluster_graph(sizes, 1.0, 0.01, degree=3).weights
    assert connected_components(joined > 0, directed=False)[0] == 1
    assert int((abar_eigenvalues(joined) > 1 - 1e-9).sum()) == 1


def test_the_kernel_factor_multiplies_like_abar() -> None:
    lab = cluster_graph((50, 30, 20), 1.0, 0.07, degree=5, seed=4)
    w = lab.weights.sum(1)
    abar = lab.weights / np.sqrt(np.outer(w, w))
    X = np.random.default_rng(0).normal(size=(100, 6))
    np.testing.assert_allclose(lab.factor.abar() @ X, abar @ X, atol=1e-12)


def test_cluster_sizes_and_errors() -> None:
    assert graph_lab.cluster_sizes(3, 40) == (40, 40, 40)
    assert graph_lab.cluster_sizes(3, 40, 10) == (40, 25, 10)
    with pytest.raises(ValueError, match="smallest <= largest"):
        graph_lab.cluster_sizes(3, 10, 40)
    with pytest.raises(ValueError, match="within > 0"):
        cluster_graph((3, 3), within=0.0)
    with pytest.raises(ValueError, match="degree must be >= 2"):
        cluster_graph((3, 3), degree=1)


@pytest.mark.parametrize("between", [0.0, 0.03])
def test_leading_eigenpairs_find_repeated_eigenvalues_on_large_graphs(between: float) -> None:
    # 6 clusters of 80 (above the dense limit): with between = 0 the eigenvalue 1 is repeated
    # six times, which one-vector Lanczos would miss
    W = cluster_graph((80,) * 6, 1.0, between, degree=12, seed=1).weights
    assert W.shape[0] > graph_lab.DENSE_NODES
    expected = abar_eigenvalues(W)
    values, vectors = graph_lab.leading_eigenpairs(W, 8)
    np.testing.assert_allclose(values, expected[:8], atol=1e-8)
    w = W.sum(1)
    abar = W / np.sqrt(np.outer(w, w))
    np.testing.assert_allclose(abar @ vectors, vectors * values, atol=1e-4)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(8), atol=1e-8)


def test_summary_counts_eigenvalues_before_the_gap_and_recovers_separated_clusters() -> None:
    lab = cluster_graph((30, 30, 30, 30), 1.0, 0.01, degree=10, seed=0)
    summary = graph_lab.summarize(lab)
    expected = abar_eigenvalues(lab.weights)
    np.testing.assert_allclose(summary.gammas, expected, atol=1e-10)  # all of them, n <= 400
    assert summary.before_gap == loop_largest_gap(expected)[0] == 4
    assert summary.gap == pytest.approx(expected[3] - expected[4], abs=1e-10)
    assert summary.ari == 1.0 and summary.probe_accuracy == 1.0
    # rows of the top-4 eigenvectors are cluster indicators: their span is the indicators' span
    indicators = np.eye(4)[lab.labels] * np.sqrt(lab.weights.sum(1))[:, None]
    angles = scipy.linalg.subspace_angles(summary.vectors, indicators)
    assert angles.max() < 0.2


def test_between_equal_to_within_leaves_no_cluster_eigenvalue() -> None:
    # equal clusters, between = within: a datum's augmentation is as likely to land in any
    # cluster, so nothing near 1 but gamma_1; what a probe still finds comes from the bulk
    # (each cluster's own random targets), far from the clusters' recovery
    lab = cluster_graph((60, 60, 60), 1.0, 1.0, degree=10, seed=0)
    summary = graph_lab.summarize(lab)
    gammas = abar_eigenvalues(lab.weights)
    assert summary.before_gap == 1 and gammas[1] < 0.1
    # the cluster indicators, weighted by sqrt(w) and made orthogonal to gamma_1's sqrt(w): their
    # Rayleigh quotients on Abar are the eigenvalues they would have; here about 0
    w = lab.weights.sum(1)
    abar = lab.weights / np.sqrt(np.outer(w, w))
    contrasts = np.linalg.qr(np.c_[np.sqrt(w), np.eye(3)[lab.labels] * np.sqrt(w)[:, None]])[0]
    rayleigh = np.linalg.eigvalsh(contrasts[:, 1:3].T @ abar @ contrasts[:, 1:3])
    assert np.abs(rayleigh).max() < 0.05
    assert summary.ari < 0.3 and summary.probe_accuracy < 0.6  # chance is 1/3


def test_probe_accuracy_on_separable_and_on_random_features() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    separable = np.eye(4)[labels] + 0.05 * rng.normal(size=(200, 4))
    assert graph_lab.probe_accuracy(separable, labels) == 1.0
    assert graph_lab.probe_accuracy(rng.normal(size=(200, 4)), labels) < 0.5


def loop_largest_gap(gammas: np.ndarray) -> tuple[int, float]:
    """The largest drop between consecutive eigenvalues, found by a plain loop: (i, drop)."""
    best, where = -1.0, 0
    for i in range(len(gammas) - 1):
        if gammas[i] - gammas[i + 1] > best:
            best, where = gammas[i] - gammas[i + 1], i + 1
    return where, best


@pytest.mark.parametrize("k", [3, 6, 8])
def test_the_largest_gap_counts_weakly_joined_clusters_that_a_fixed_threshold_misses(
    k: int,
) -> None:
    # the page's default clusters of 40 (between 0.01, 10 augmentations): at k = 6 and 8 the
    # cluster eigenvalues are about 0.89 and 0.86, below a 0.9 threshold, yet the largest drop
    # still comes after the k-th
    lab = cluster_graph((40,) * k, 1.0, 0.01, degree=10)
    gammas = abar_eigenvalues(lab.weights)
    summary = graph_lab.summarize(lab)
    assert summary.before_gap == loop_largest_gap(gammas)[0] == k
    assert summary.gap == pytest.approx(loop_largest_gap(gammas)[1], abs=1e-10)
    if k > 3:
        assert int((gammas > 0.9).sum()) == 1  # what the old count said
    assert graph_lab.largest_gap(np.array([1.0, 0.5, 0.0])) == (1, 0.5)  # ties: the first
    with pytest.raises(ValueError, match="two eigenvalues"):
        graph_lab.largest_gap(np.array([1.0]))


def weighted_class_basis(W: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Abar of W and the orthonormal basis sqrt(w) * 1_class / norm (columns, one per class)."""
    w = W.sum(1)
    basis = np.eye(labels.max() + 1)[labels] * np.sqrt(w)[:, None]
    return W / np.sqrt(np.outer(w, w)), basis / np.linalg.norm(basis, axis=0)


@pytest.mark.parametrize("shape_p", [0.0, 0.1, 0.3, 0.45, 0.55, 0.8])
def test_shape_p_leaves_the_class_eigenvectors_and_squares_into_their_eigenvalue(
    shape_p: float,
) -> None:
    # a small sub-grid; the shape part of the kernel is (1 - p) I + p J/6, whose square has
    # eigenvalues 1 and (1 - p)^2: the class block is invariant, its eigenvalues 1 and (1 - p)^2
    shapes = shapes_augmentation_graph(
        subgrid={"rotation": (0, 2), "fg_color": (0, 2)}, shape_p=shape_p
    )
    abar, basis = weighted_class_basis(shapes.weights, shapes.labels)
    block = basis.T @ abar @ basis  # (6, 6)
    np.testing.assert_allclose(abar @ basis, basis @ block, atol=1e-12)  # an invariant subspace
    np.testing.assert_allclose(
        np.linalg.eigvalsh(block), [(1 - shape_p) ** 2] * 5 + [1.0], atol=1e-12
    )
    values, vectors = np.linalg.eigh(abar)
    top = vectors[:, np.argsort(values)[::-1][:6]]
    angles = scipy.linalg.subspace_angles(top, basis)
    if shape_p < 0.5:  # (1 - p)^2 above crop's and rotation's 0.25: the top 6 are the classes
        assert angles.max() < 1e-6
    else:  # below it: the top 6 are the constant and 5 nuisance directions
        assert angles.max() > 1.5


def test_eigenvector_heatmap_draws_f_constant_on_each_disconnected_cluster() -> None:
    lab = cluster_graph((40, 30, 20), 1.0, 0.0, degree=3, seed=1)
    w = lab.weights.sum(1)
    values, vectors = np.linalg.eigh(lab.weights / np.sqrt(np.outer(w, w)))
    top = vectors[:, np.argsort(values)[::-1][:3]]  # eigenvalue 1, three times
    figure = eigenvector_heatmap(top, w, lab.labels, lab.classes)
    drawn = np.asarray(figure.data[0].z, dtype=np.float64)
    assert drawn.shape == (90, 3)
    for c in range(3):
        assert drawn[lab.labels == c].std(0).max() < 1e-12
        assert top[lab.labels == c].std(0).max() > 1e-3  # v varies with sqrt(w_x)
    np.testing.assert_allclose(drawn, top / np.sqrt(w / w.sum())[:, None], atol=1e-12)
    np.testing.assert_allclose(
        (drawn * (w / w.sum())[:, None]).T @ drawn, np.eye(3), atol=1e-10
    )  # E_w[f f^T] = I


def loop_blocks(sizes: tuple[int, ...], block: int) -> list[list[int]]:
    """Each cluster of s consecutive nodes cut into ceil(s / block) runs whose sizes differ by at
    most one (the longer first), written as loops."""
    runs, start = [], 0
    for s in sizes:
        parts = -(-s // block)
        for j in range(parts):
            length = s // parts + (1 if j < s % parts else 0)
            runs.append(list(range(start, start + length)))
            start += length
    return runs


@pytest.mark.parametrize(
    ("sizes", "title"),
    [
        ((40,) * 6, "W: 240 nodes (means over blocks of 2 nodes, each inside one cluster)"),
        ((41, 40, 27), "W: 108 nodes"),
        ((250, 250, 121), "W: 621 nodes (means over blocks of 3–4 nodes, each inside one cluster)"),
    ],
)
def test_the_weights_heatmap_bins_by_cluster_and_equal_clusters_alike(
    sizes: tuple[int, ...], title: str
) -> None:
    lab = cluster_graph(sizes, 1.0, 0.02, degree=6, seed=1)
    n = lab.num_nodes
    figure = weights_heatmap(lab.weights, lab.labels, lab.classes, max_bins=160)
    drawn = np.asarray(figure.data[0].z, dtype=np.float64)
    runs = loop_blocks(sizes, -(-n // 160)) if n > 160 else [[i] for i in range(n)]
    expected = np.array([[lab.weights[np.ix_(a, b)].mean() for b in runs] for a in runs])
    np.testing.assert_allclose(drawn, np.log10(expected), rtol=1e-12)
    assert figure.layout.title.text == title
    # no block mixes two clusters, and equal clusters get as many rows
    assert all(len(set(lab.labels[r])) == 1 for r in runs)
    rows = np.bincount([lab.labels[r[0]] for r in runs])
    assert len({rows[c] for c in range(len(sizes)) if sizes[c] == sizes[0]}) == 1
    centres = [np.mean([i for i, r in enumerate(runs) if lab.labels[r[0]] == c]) for c in range(3)]
    np.testing.assert_allclose(figure.layout.xaxis.tickvals[:3], centres)


def test_the_eigenvector_heatmap_bins_by_cluster_too() -> None:
    lab = cluster_graph((40,) * 6, 1.0, 0.0, degree=3, seed=2)
    w = lab.weights.sum(1)
    values, vectors = np.linalg.eigh(lab.weights / np.sqrt(np.outer(w, w)))
    top = vectors[:, np.argsort(values)[::-1][:6]]
    figure = eigenvector_heatmap(top, w, lab.labels, lab.classes, max_bins=100)
    drawn = np.asarray(figure.data[0].z, dtype=np.float64)
    f = top / np.sqrt(w / w.sum())[:, None]
    runs = loop_blocks((40,) * 6, 3)  # 240 nodes into at most 100 rows: blocks of 3
    np.testing.assert_allclose(drawn, [f[r].mean(0) for r in runs], atol=1e-12)
    assert drawn.shape == (6 * 14, 6)  # each cluster: 14 blocks, 12 of 3 nodes and 2 of 2
    assert "means over blocks of 2–3 nodes, each inside one cluster" in figure.layout.title.text
    for c in range(6):  # disconnected: each block of one cluster draws that cluster's value
        assert drawn[14 * c : 14 * (c + 1)].std(0).max() < 1e-9


def test_degradation_curve_against_numpy() -> None:
    sizes = (40, 40, 40)
    values = [0.0, 0.05, 0.3, 1.0]
    curve = graph_lab.degradation_curve(
        lambda b: cluster_graph(sizes, 1.0, b, degree=8, seed=2), values
    )
    assert len(curve.values) == len(values)
    for i, b in enumerate(values):
        expected = abar_eigenvalues(cluster_graph(sizes, 1.0, b, degree=8, seed=2).weights)
        assert curve.gamma_k[i] == pytest.approx(expected[2], abs=1e-10)
        assert curve.gamma_next[i] == pytest.approx(expected[3], abs=1e-10)
    assert curve.gamma_k[0] == pytest.approx(1.0) and curve.probe_accuracy[0] == 1.0
    assert curve.ari[0] == 1.0 and curve.ari[-1] < 0.2
    assert (np.diff(curve.gamma_k) < 0).all()  # weaker clusters, smaller gamma_k


def test_pair_sampler_draws_the_joint_distribution() -> None:
    W = cluster_graph((3, 4), 1.0, 0.2, degree=2, seed=5).weights
    draws = 200_000
    left, right = graph_training.PairSampler(W)(draws, np.random.default_rng(0))
    counts = np.zeros_like(W)
    np.add.at(counts, (left, right), 1)
    expected = draws * W / W.sum()
    assert (counts[W == 0] == 0).all()
    sd = np.sqrt(expected * (1 - W / W.sum()))
    assert np.abs(counts - expected)[W > 0].max() < 5 * sd[W > 0].max()


def cliques_optimum(m: int, k: int, mu: float) -> float:
    """min L over tables in the ball on m disconnected equal cliques (tests/test_graph.py)."""
    r = min(m, k)
    return -2 * min(mu, r) + min(mu, r) ** 2 / r


def test_trained_table_reaches_the_optimum_and_its_eigenvalues() -> None:
    W = cluster_graph((8, 8, 8), 1.0, 0.02).weights
    gammas = abar_eigenvalues(W)
    assert gammas[2] - gammas[3] > 0.5  # well separated
    optimum = -(gammas[:3] ** 2).sum()
    trainer = graph_training.TableTrainer(W, 3, mu=20.0, seed=0)
    assert trainer.optimum == pytest.approx(optimum, abs=1e-10)
    for _ in range(8):
        point = trainer.run(200)
    assert len(trainer.history) == 8
    assert point.loss <= 0.97 * optimum  # within 3% of -sum gamma_i^2 (negative)
    np.testing.assert_allclose(point.eigenvalues, gammas[:3], atol=0.05)
    assert not trainer.reachable().binds and trainer.gap() < 0.03


def test_a_small_ball_holds_the_table_at_the_ball_optimum() -> None:
    W = cluster_graph((8, 8, 8), 1.0, 0.0).weights  # three disconnected cliques
    mu = 0.5
    trainer = graph_training.TableTrainer(W, 3, mu=mu, seed=1)
    for _ in range(8):
        point = trainer.run(200)
    ball = cliques_optimum(3, 3, mu)  # -2 mu + mu^2 / 3
    assert trainer.reachable().binds
    assert trainer.reachable().loss == pytest.approx(ball, abs=1e-6)
    assert point.max_sq_norm <= mu * (1 + 1e-9)
    assert point.loss == pytest.approx(ball, rel=0.03)
    assert point.loss > trainer.optimum + 1.5  # far above the free optimum -3
    assert trainer.gap() < 0.03


def test_trainer_errors() -> None:
    W = cluster_graph((3, 3), 1.0, 0.1).weights
    with pytest.raises(ValueError, match="d must be in"):
        graph_training.TableTrainer(W, 7, 1.0)
    with pytest.raises(ValueError, match="mu must be > 0"):
        graph_training.TableTrainer(W, 2, 0.0)
