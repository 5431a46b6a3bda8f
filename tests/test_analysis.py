"""Each representation metric against a case with a known answer or an independent NumPy formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis import (
    alignment,
    batch_spectra,
    count_above,
    cross_moment,
    effective_rank,
    gram_eigenvalues,
    optimum_gap,
    power_law_alpha,
    second_moment,
    spectral_features,
    spectrum_summary,
    uniformity,
)
from explorer.projection import pca_2d


def _gaussian(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(("b", "d"), [(50, 8), (8, 50), (16, 16)])
def test_gram_eigenvalues_match_numpy_on_both_sides(b: int, d: int) -> None:
    z = _gaussian(b, d)
    expected = np.sort(np.linalg.eigvalsh(z.numpy() @ z.numpy().T / b))[::-1][: min(b, d)]
    assert gram_eigenvalues(z).numpy() == pytest.approx(np.clip(expected, 0, None), abs=1e-10)


def test_isotropic_features_have_full_effective_rank() -> None:
    eigs = gram_eigenvalues(_gaussian(20000, 16))
    assert eigs.numpy() == pytest.approx(np.ones(16), abs=0.05)
    assert effective_rank(eigs) == pytest.approx(16, abs=0.05)


def test_collapsed_features_have_effective_rank_one() -> None:
    z = torch.ones(100, 1, dtype=torch.float64) @ _gaussian(1, 32)  # every row the same vector
    eigs = gram_eigenvalues(z)
    assert effective_rank(eigs) == pytest.approx(1.0, abs=1e-3)
    assert count_above(eigs / eigs[0], 1e-9) == 1


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_rank_r_features_have_r_nonzero_eigenvalues(rank: int) -> None:
    z = _gaussian(200, rank, 1) @ _gaussian(rank, 20, 2)
    eigs = gram_eigenvalues(z)
    assert count_above(eigs, 1e-8 * float(eigs[0])) == rank
    assert 1 < effective_rank(eigs) <= rank + 1e-3 or rank == 1


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_power_law_spectrum_recovers_alpha(alpha: float) -> None:
    d, b = 30, 500
    target = np.arange(1, d + 1, dtype=np.float64) ** -alpha
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(b, d)))  # orthonormal columns, (b, d)
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    z = math.sqrt(b) * u @ np.diag(np.sqrt(target)) @ v.T  # (1/b) zᵀz = v diag(target) vᵀ
    eigs = gram_eigenvalues(torch.from_numpy(z))
    assert eigs.numpy() == pytest.approx(target, rel=1e-8)
    assert power_law_alpha(eigs) == pytest.approx(alpha, rel=1e-8)


def test_power_law_ignores_round_off_of_a_rank_deficient_spectrum() -> None:
    eigs = torch.tensor([1.0, 0.25, 1e-20, 0.0], dtype=torch.float64)  # 1, 2^-2, then zeros
    assert power_law_alpha(eigs) == pytest.approx(2.0)
    assert math.isnan(power_law_alpha(torch.tensor([1.0, 0.0])))


def test_alignment_of_identical_views_is_zero_and_of_opposite_views_four() -> None:
    z = _gaussian(64, 10)
    assert alignment(z, z.clone()) == pytest.approx(0.0, abs=1e-12)
    assert alignment(z, -3 * z) == pytest.approx(4.0)


def test_uniformity_matches_a_pairwise_loop() -> None:
    z = _gaussian(20, 5)
    u = z.numpy() / np.linalg.norm(z.numpy(), axis=1, keepdims=True)
    terms = [
        math.exp(-2 * np.sum((u[i] - u[j]) ** 2)) for i in range(20) for j in range(20) if i < j
    ]
    assert uniformity(z) == pytest.approx(math.log(np.mean(terms)), rel=1e-10)
    collapsed = torch.ones(10, 3)
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-12)  # log E exp(0) = 0


def test_batch_spectra_average_and_spread_of_consecutive_batches() -> None:
    z = _gaussian(100, 6)
    mean, std = batch_spectra(z, 25)
    per_batch = np.stack([gram_eigenvalues(z[i : i + 25]).numpy() for i in range(0, 100, 25)])
    assert mean.numpy() == pytest.approx(per_batch.mean(axis=0))
    assert std.numpy() == pytest.approx(per_batch.std(axis=0, ddof=1))
    mean, std = batch_spectra(z[:10], 25)  # fewer rows than a batch: one batch of them all
    assert mean.numpy() == pytest.approx(gram_eigenvalues(z[:10]).numpy())
    assert float(std.abs().max()) == 0.0


def test_spectral_features_clip_to_the_ball_and_keep_the_scale() -> None:
    mu = 4.0  # ball of radius 2: (3, 4) is rescaled to norm 2, the rows inside are unchanged
    z = torch.tensor([[3.0, 4.0], [0.5, 0.0], [0.0, 2.0]], dtype=torch.float64)
    f = spectral_features(z, mu)
    assert f.numpy() == pytest.approx(np.array([[1.2, 1.6], [0.5, 0.0], [0.0, 2.0]]))
    with pytest.raises(ValueError):
        spectral_features(z, 0.0)


def test_optimum_of_a_finite_augmentation_graph_satisfies_c_plus_equals_c_squared() -> None:
    # A small augmentation graph (DESIGN.md): w(x,x') = Σ_x̄ p(x̄) A(x|x̄) A(x'|x̄).
    rng = np.random.default_rng(0)
    n_natural, n_aug, k = 4, 9, 3
    a = rng.random((n_natural, n_aug)) ** 4
    a /= a.sum(axis=1, keepdims=True)
    w = a.T @ np.diag(np.full(n_natural, 1 / n_natural)) @ a  # (n_aug, n_aug), sums to 1
    degree = w.sum(axis=1)
    a_bar = w / np.sqrt(np.outer(degree, degree))
    gammas, vectors = np.linalg.eigh(a_bar)
    gammas, vectors = gammas[::-1][:k], vectors[:, ::-1][:, :k]
    rotation, _ = np.linalg.qr(rng.normal(size=(k, k)))
    u = vectors @ np.diag(np.sqrt(gammas)) @ rotation  # the minimiser of ‖Ā − UUᵀ‖, rotated
    f = u / np.sqrt(degree)[:, None]  # u_x = √w_x f(x)
    c = f.T @ np.diag(degree) @ f  # E_x[f fᵀ]
    c_plus = f.T @ w @ f  # E_{x,x⁺}[f(x) f(x⁺)ᵀ]
    assert np.sort(np.linalg.eigvalsh(c))[::-1] == pytest.approx(gammas)
    assert gammas[0] == pytest.approx(1.0)
    assert optimum_gap(torch.from_numpy(c), torch.from_numpy(c_plus)) == pytest.approx(
        0.0, abs=1e-10
    )
    g = rng.normal(size=f.shape)  # an arbitrary network is far from the relation
    gap = optimum_gap(torch.from_numpy(g.T @ np.diag(degree) @ g), torch.from_numpy(g.T @ w @ g))
    assert 0.1 < gap <= 1


def test_sample_moments_are_plain_averages() -> None:
    f1, f2 = _gaussian(30, 4, 1), _gaussian(30, 4, 2)
    assert second_moment(f1).numpy() == pytest.approx(f1.numpy().T @ f1.numpy() / 30)
    m = f1.numpy().T @ f2.numpy() / 30
    assert cross_moment(f1, f2).numpy() == pytest.approx((m + m.T) / 2)


def test_spectrum_summary_keys() -> None:
    summary = spectrum_summary(torch.tensor([1.0, 0.95, 0.6, 0.1]))
    assert summary["n_above_0.9"] == 2 and summary["n_above_0.5"] == 3
    assert set(summary) == {"rankme", "alpha", "n_above_0.5", "n_above_0.9"}


def test_pca_matches_scikit_learn_and_aligns_signs() -> None:
    from sklearn.decomposition import PCA

    x = _gaussian(200, 6).numpy() * np.array([5, 3, 1, 1, 1, 1])
    layout = pca_2d(x)
    reference = PCA(n_components=2).fit_transform(x)
    assert np.abs(layout) == pytest.approx(np.abs(reference), abs=1e-4)
    flipped = pca_2d(x, previous=-layout)
    assert flipped == pytest.approx(-layout, abs=1e-5)
