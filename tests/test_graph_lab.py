"""explorer.graph_lab and explorer.graph_training against independent references: plain loops,
NumPy's eigvalsh, scikit-learn, and the closed forms of disconnected cliques."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from explorer import graph_lab, graph_training
from explorer.graph_lab import cluster_graph


def abar_eigenvalues(W: np.ndarray) -> np.ndarray:
    """Every eigenvalue of D^{-1/2} W D^{-1/2}, descending, written out with NumPy only."""
    w = W.sum(1)
    return np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w)))[::-1]


def test_cluster_graph_is_the_block_graph_written_as_a_loop() -> None:
    sizes, within, between = (3, 2, 4), 2.0, 0.5
    lab = cluster_graph(sizes, within, between)
    labels = [c for c, size in enumerate(sizes) for _ in range(size)]
    expected = np.array([[within if a == b else between for b in labels] for a in labels])
    np.testing.assert_allclose(lab.weights, expected / expected.sum(), rtol=1e-12)
    assert lab.labels.tolist() == labels and lab.k == 3 and lab.num_nodes == 9


def test_random_edges_keep_self_loops_and_do_not_move_with_the_between_weight() -> None:
    sizes = (60, 60, 60)
    weak = cluster_graph(sizes, 1.0, 0.05, degree=10, seed=3).weights
    strong = cluster_graph(sizes, 1.0, 0.5, degree=10, seed=3).weights
    np.testing.assert_array_equal(weak > 0, strong > 0)  # the same edges
    np.testing.assert_array_equal(weak, weak.T)
    assert (np.diag(weak) > 0).all()
    same = np.equal.outer(np.repeat([0, 1, 2], 60), np.repeat([0, 1, 2], 60))
    cross = weak[~same & (weak > 0)]
    inside = weak[same & (weak > 0)]
    assert cross.size and inside.size
    np.testing.assert_allclose(cross / inside.max(), 0.05)
    # each pair is an edge with probability 10 * 3 / 180: about 10 neighbours inside the cluster
    neighbours_inside = ((weak > 0) & same).sum(1) - 1
    assert 8 < neighbours_inside.mean() < 12


def test_cluster_sizes_and_errors() -> None:
    assert graph_lab.cluster_sizes(3, 40) == (40, 40, 40)
    assert graph_lab.cluster_sizes(3, 40, 10) == (40, 25, 10)
    with pytest.raises(ValueError, match="smallest <= largest"):
        graph_lab.cluster_sizes(3, 10, 40)
    with pytest.raises(ValueError, match="within > 0"):
        cluster_graph((3, 3), within=0.0)


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


def test_summary_counts_eigenvalues_near_one_and_recovers_separated_clusters() -> None:
    lab = cluster_graph((30, 30, 30, 30), 1.0, 0.01, degree=10, seed=0)
    summary = graph_lab.summarize(lab, threshold=0.9)
    expected = abar_eigenvalues(lab.weights)
    np.testing.assert_allclose(summary.gammas, expected, atol=1e-10)  # all of them, n <= 400
    assert summary.near_one == int((expected > 0.9).sum()) == 4 and summary.complete
    assert summary.ari == 1.0 and summary.probe_accuracy == 1.0
    # rows of the top-4 eigenvectors are cluster indicators: their span is the indicators' span
    indicators = np.eye(4)[lab.labels] * np.sqrt(lab.weights.sum(1))[:, None]
    angles = scipy.linalg.subspace_angles(summary.vectors, indicators)
    assert angles.max() < 0.2


def test_a_homogeneous_graph_has_no_clusters_to_find() -> None:
    lab = cluster_graph((60, 60, 60), 1.0, 1.0, degree=10, seed=0)  # between = within
    summary = graph_lab.summarize(lab, threshold=0.9)
    assert summary.near_one == int((abar_eigenvalues(lab.weights) > 0.9).sum()) == 1
    assert summary.ari < 0.1 and summary.probe_accuracy < 0.6  # chance is 1/3


def test_probe_accuracy_on_separable_and_on_random_features() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    separable = np.eye(4)[labels] + 0.05 * rng.normal(size=(200, 4))
    assert graph_lab.probe_accuracy(separable, labels) == 1.0
    assert graph_lab.probe_accuracy(rng.normal(size=(200, 4)), labels) < 0.5


def test_shapes_graph_spectrum_matches_the_closed_form() -> None:
    # each part's kernel (1-p) I + p J/m: Abar's eigenvalues are 1 (once per class when the
    # shape is never redrawn) and (1 - p)^2 for every redrawn part; shape_p joins the classes
    lab = graph_lab.shapes_lab_graph(shape_p=0.05)
    assert lab.k == 6 and (np.diff(lab.labels) >= 0).all()
    summary = graph_lab.summarize(lab, threshold=0.9)
    np.testing.assert_allclose(summary.gammas[:6], [1.0] + [0.95**2] * 5, atol=1e-9)
    assert summary.gammas[6] == pytest.approx(0.25, abs=1e-9)  # crop and rotation: (1 - 0.5)^2
    assert summary.near_one == 6 and summary.ari == 1.0
    joined = graph_lab.summarize(graph_lab.shapes_lab_graph(shape_p=0.1), threshold=0.9)
    assert joined.near_one == 1  # 0.9^2 = 0.81 < 0.9


def test_degradation_curve_against_numpy() -> None:
    sizes = (40, 40, 40)
    values = [0.0, 0.05, 0.3, 1.0]
    curve = graph_lab.degradation_curve(
        lambda b: cluster_graph(sizes, 1.0, b, degree=8, seed=2), values)
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
