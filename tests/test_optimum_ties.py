"""When k splits an eigenspace (γ_k = γ_{k+1}) f* is not unique beyond rotations: what the record
says holds for every optimal basis, checked on random bases of the tied block; and the ball's
optimum is called certified only when its bracket closes."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.graphs import optimum as O
from explorer.graphs import spectral as G


def _three_blocks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three disconnected blocks of 4 nodes (eigenvalue 1 three times, then a tied bulk)."""
    W = G.block_graph((4, 4, 4), within=1.0, between=0.0)
    W = W + np.diag(np.linspace(0.01, 0.03, 12))  # unequal degrees: rows differ in norm
    W = W / W.sum()
    gammas, vectors = G.top_eigenpairs(W, 12)
    return W, gammas, vectors


def test_a_tie_at_k_is_found_and_none_elsewhere() -> None:
    gammas = np.array([1.0, 1.0, 0.5, 0.5, 0.5, 0.2])
    assert O.tied_block(gammas, 3) == range(2, 5)
    assert O.tied_block(gammas, 2) is None  # γ₂ = 1 > γ₃: the top 2 are a whole eigenspace
    assert O.tied_block(gammas, 5) is None


def test_max_sq_norm_range_holds_every_basis_of_the_tied_block() -> None:
    W, gammas, vectors = _three_blocks()
    w = W.sum(1)
    k = 2  # splits the three eigenvalues 1
    block = O.tied_block(gammas, k)
    assert block is not None and block.start == 0 and len(block) == 3
    low, high = O.optimal_sq_norm_range(gammas, vectors, w, k)
    rng = np.random.default_rng(0)
    seen = []
    for _ in range(200):  # random orthonormal bases of the block, the top k taken from each
        Q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        basis = vectors.copy()
        basis[:, :3] = vectors[:, :3] @ Q
        f = basis[:, :k] * np.sqrt(gammas[:k]) / np.sqrt(w)[:, None]  # written out here
        seen.append((f**2).sum(1).max())
    assert len(seen) == 200
    assert low - 1e-9 <= min(seen) and max(seen) <= high + 1e-9
    assert high > low  # the basis matters here


def test_without_a_tie_the_range_is_one_number() -> None:
    W, gammas, vectors = _three_blocks()
    low, high = O.optimal_sq_norm_range(gammas, vectors, W.sum(1), 3)
    assert low == pytest.approx(high) == pytest.approx(O.max_optimal_sq_norm(W, 3))


def test_the_ball_optimum_is_certified_only_when_its_bracket_closes() -> None:
    W = G.block_graph((5, 5, 5), within=1.0, between=0.05)
    k, free = 4, O.optimal_population_loss(W, 4)
    tight = O.ball_constrained_optimum(W, k, 1.0)
    assert tight.binds and tight.lower_bound >= free - 1e-12  # never below the free optimum
    assert tight.lower_bound <= tight.loss
    assert tight.loss - tight.lower_bound <= 1e-3 * abs(tight.loss)
    assert tight.certified  # FISTA converges on this small graph
    stopped = O.ball_constrained_optimum(W, k, 1.0, max_iterations=1)
    assert stopped.lower_bound <= tight.loss + 1e-9  # still a lower bound
