"""The paper's downstream quantities against graphs where they are known by hand, and on the
shapes graph against views drawn by GraphViews."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.builders import graph_kernel, load_splits
from explorer.config import build_config
from explorer.data.shapes import SUBGRID
from explorer.graphs import guarantee
from explorer.graphs import optimum as O
from explorer.graphs import spectral as G
from explorer.graphs.shapes import shapes_augmentation_graph
from explorer.views import GraphViews


def two_cliques(m: int, crossing: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two classes of m images; a natural datum of a class lands on a uniform image of its own
    class with 1 − crossing, of the other with crossing. A (2, 2m), p, y."""
    own, other = np.full(m, (1 - crossing) / m), np.full(m, crossing / m)
    A = np.stack([np.concatenate([own, other]), np.concatenate([other, own])])
    return A, np.array([0.5, 0.5]), np.array([0, 1])


@pytest.mark.parametrize("crossing", [0.0, 0.05, 0.2, 0.45])
def test_two_cliques_in_closed_form(crossing: float) -> None:
    A, p, y = two_cliques(5, crossing)
    W = A.T @ np.diag(p) @ A
    # α: each image is produced by its own class with 1 − ε and by the other with ε
    assert guarantee.alpha(A, p, y, 2) == pytest.approx(crossing)
    gammas = G.graph_spectrum(W, 3)
    assert gammas[:3] == pytest.approx([1.0, (1 - 2 * crossing) ** 2, 0.0], abs=1e-9)
    # f* with k = 2 holds the class contrast: every image's class is read, the vote is right
    f_star = O.optimal_features(W, 2)
    if crossing < 0.5 - 1e-9 and gammas[1] > 1e-9:
        assert guarantee.downstream_error(f_star, A, p, y, 2) == 0.0
    # k = 1 is the constant: one class for every image, so the other class is always wrong
    constant = np.ones((10, 1))
    assert guarantee.downstream_error(constant, A, p, y, 2) == pytest.approx(0.5)


def test_downstream_error_is_the_vote_as_plain_loops() -> None:
    rng = np.random.default_rng(0)
    m, n, r = 7, 9, 3
    A = rng.random((m, n)) ** 3
    A /= A.sum(1, keepdims=True)
    p = rng.random(m)
    p /= p.sum()
    y = rng.integers(0, r, m)
    f = rng.normal(size=(n, 4))
    head = guarantee.least_squares_head(f, A, p, y, r)
    # the head as the normal equations of Σ_x̄ p Σ_x A ‖Bᵀf(x) − e_y‖², solved by NumPy
    lhs = sum(p[i] * A[i, x] * np.outer(f[x], f[x]) for i in range(m) for x in range(n))
    rhs = sum(p[i] * A[i, x] * np.outer(f[x], np.eye(r)[y[i]]) for i in range(m) for x in range(n))
    assert head == pytest.approx(np.linalg.solve(lhs, rhs))
    predicted = [int(np.argmax(f[x] @ head)) for x in range(n)]
    wrong = 0.0
    for i in range(m):
        votes = [sum(A[i, x] for x in range(n) if predicted[x] == c) for c in range(r)]
        if any(votes[c] >= votes[y[i]] for c in range(r) if c != y[i]):
            wrong += p[i]
    assert guarantee.downstream_error(f, A, p, y, r) == pytest.approx(wrong)


@pytest.fixture(scope="module")
def train_factors() -> np.ndarray:
    train, _ = load_splits(build_config(None, None, {"dataset": "shapes-subgrid"}))
    return train.factors.numpy()


@pytest.mark.parametrize("class_change_p", [0.0, 0.3, 0.9])
def test_alpha_is_the_rate_of_class_changes_in_graph_views(train_factors, class_change_p) -> None:
    config = build_config(None, None, {"dataset": "shapes-subgrid",
                                       "class_change_p": class_change_p})
    graph = shapes_augmentation_graph(subgrid=SUBGRID, natural=train_factors,
                                      class_change_p=class_change_p)
    A, p, y = graph.natural_augmentation()
    assert A.sum(1) == pytest.approx(np.ones(len(A)))
    assert (A.T @ np.diag(p) @ A) == pytest.approx(graph.weights / graph.weights.sum())
    alpha = guarantee.alpha(A, p, y, 6)
    kernel = graph_kernel(config)
    views = GraphViews(torch.from_numpy(train_factors), kernel, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    draws = 40
    changed = [(views.resample(views.factors)[:, 0] != views.factors[:, 0]).double().mean()
               for _ in range(draws)]
    rate = float(np.mean(changed))
    error = np.sqrt(alpha * (1 - alpha) / (draws * len(train_factors))) + 1e-12
    assert abs(rate - alpha) < 4 * error, (rate, alpha)
    if class_change_p == 0:
        assert alpha == pytest.approx(0.0, abs=1e-12) and rate == 0.0


def test_the_optimum_degrades_with_class_changes(train_factors) -> None:
    previous_alpha, previous_error = -1.0, -1.0
    for class_change_p in (0.0, 0.45, 0.6, 0.75, 0.9):
        graph = shapes_augmentation_graph(subgrid=SUBGRID, natural=train_factors,
                                          class_change_p=class_change_p)
        A, p, y = graph.natural_augmentation()
        f_star = O.optimal_features(graph.weights, 12)
        alpha = guarantee.alpha(A, p, y, 6)
        error = guarantee.downstream_error(f_star, A, p, y, 6)
        assert alpha >= previous_alpha and error >= previous_error - 1e-12
        previous_alpha, previous_error = alpha, error
    assert previous_alpha > 0.2 and previous_error > 0.1  # it does degrade


@pytest.mark.parametrize("crossing", [0.05, 0.2, 0.45])
def test_the_bounds_of_two_cliques_in_closed_form(crossing: float) -> None:
    A, p, y = two_cliques(5, crossing)
    gammas = G.graph_spectrum(A.T @ np.diag(p) @ A, 10)
    # ρ₂: the two classes are the sparsest 2-partition, conductance 2ε(1 − ε) each; the
    # spectral lower bound (1 − γ₂)/2 = (1 − (1 − 2ε)²)/2 meets it
    assert guarantee.spectral_partition_bound(gammas, 2) == pytest.approx(
        2 * crossing * (1 - crossing))
    # k = 4 features (k ≥ 2r): ρ_{⌊k/2⌋} = ρ₂, so the order α log k / ρ² is in closed form
    assert guarantee.theorem_bound(crossing, gammas, 4) == pytest.approx(
        crossing * np.log(4) / (2 * crossing * (1 - crossing)) ** 2)
    # the proven γ_{k+1} form with k = 2: γ₃ = 0, so 8α/1 + 2α
    assert guarantee.eigenvalue_bound(crossing, gammas[2]) == pytest.approx(10 * crossing)
    f_star = O.optimal_features(A.T @ np.diag(p) @ A, 2)
    assert guarantee.downstream_error(f_star, A, p, y, 2) <= 10 * crossing


def test_theorem_4_2_regime_reads_the_spectrum() -> None:
    gammas = np.array([1.0, 0.9, 0.8, 0.5, 0.3, 0.2, 0.1, 0.05])
    inside = guarantee.approximate_minimiser_regime(0.01, gammas, 8)
    assert inside["gamma_k_sq"] == pytest.approx(0.05**2) and not inside["in_regime"]
    assert inside["eigengap"] == pytest.approx(gammas[5] - gammas[7])  # ⌊3k/4⌋ = 6
    assert inside["excess_term"] == pytest.approx(8 * 0.01 / 0.15**2)
    assert guarantee.approximate_minimiser_regime(0.001, gammas, 8)["in_regime"]


def test_the_bound_is_never_below_the_optimums_error_on_shapes(train_factors) -> None:
    for class_change_p in (0.0, 0.3, 0.6, 0.9):
        graph = shapes_augmentation_graph(subgrid=SUBGRID, natural=train_factors,
                                          class_change_p=class_change_p)
        A, p, y = graph.natural_augmentation()
        k = 128
        gammas = G.graph_spectrum(graph.weights, k + 1)
        f_star = O.optimal_features(graph.weights, k)
        alpha = guarantee.alpha(A, p, y, 6)
        error = guarantee.downstream_error(f_star, A, p, y, 6)
        assert guarantee.eigenvalue_bound(alpha, gammas[k]) >= error
        assert guarantee.theorem_bound(alpha, gammas, k) >= error
