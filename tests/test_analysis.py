"""Each representation metric against a case with a known answer or an independent NumPy formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer.analysis.metrics import (
    alignment,
    alpha_req,
    batch_spectra,
    best_scale,
    count_above,
    covariance_eigenvalues,
    cross_eigenvalues,
    cross_moment,
    eigenvalue_counts,
    gram_eigenvalues,
    loss_features,
    power_law_alpha,
    rankme,
    second_moment,
    spectral_features,
    stationarity_residual,
    uniformity,
)
from explorer.analysis.projection import pca_2d


def _gaussian(n: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize(("b", "d"), [(50, 8), (8, 50), (16, 16)])
def test_gram_eigenvalues_match_numpy_on_both_sides(b: int, d: int) -> None:
    z = _gaussian(b, d)
    expected = np.sort(np.linalg.eigvalsh(z.numpy() @ z.numpy().T / b))[::-1][: min(b, d)]
    assert gram_eigenvalues(z).numpy() == pytest.approx(np.clip(expected, 0, None), abs=1e-10)


def _with_singular_values(n: int, sigma: np.ndarray, seed: int = 0) -> np.ndarray:
    """An (n, d) matrix U diag(σ) Vᵀ with exactly the singular values ``sigma`` (d = len)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, len(sigma))))  # orthonormal columns
    v, _ = np.linalg.qr(rng.normal(size=(len(sigma), len(sigma))))
    return u @ np.diag(sigma) @ v.T


def _rankme_reference(z: np.ndarray, eps: float = 1e-7) -> float:
    """Garrido et al. 2023, Eq. 1, written from the paper: singular values of the matrix itself."""
    sigma = np.linalg.svd(z, compute_uv=False)
    p = sigma / np.sum(np.abs(sigma)) + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def _alpha_reference(z: np.ndarray, first: int = 11, last: int = 100) -> float:
    """α-ReQ (Agrawal et al. 2022) written independently: eigenvalues of the centred covariance,
    a straight line through (log i, log λᵢ) for ranks first..last, weighted by 1/i."""
    eigs = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False, bias=True)))[::-1]
    ranks = np.arange(first, min(last, len(eigs)) + 1)
    # np.polyfit minimises Σ (wᵢ rᵢ)², so per-point weights 1/i enter as w = 1/√i
    slope, _ = np.polyfit(np.log(ranks), np.log(eigs[ranks - 1]), 1, w=1 / np.sqrt(ranks))
    return float(-slope)


def test_isotropic_features_have_full_rankme() -> None:
    z = _gaussian(20000, 16)
    assert gram_eigenvalues(z).numpy() == pytest.approx(np.ones(16), abs=0.05)
    assert rankme(z) == pytest.approx(16, abs=0.05)


def test_collapsed_features_have_rankme_one() -> None:
    z = torch.ones(100, 1, dtype=torch.float64) @ _gaussian(1, 32)  # every row the same vector
    assert rankme(z) == pytest.approx(1.0, abs=1e-3)
    eigs = gram_eigenvalues(z)
    assert count_above(eigs / eigs[0], 1e-9) == 1


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_rank_r_features_have_r_nonzero_eigenvalues(rank: int) -> None:
    z = _gaussian(200, rank, 1) @ _gaussian(rank, 20, 2)
    eigs = gram_eigenvalues(z)
    assert count_above(eigs, 1e-8 * float(eigs[0])) == rank
    assert 1 < rankme(z) <= rank + 1e-3 or rank == 1


@pytest.mark.parametrize(("n", "decay"), [(500, 0.7), (300, 1.5), (40, 0.3)])
def test_rankme_matches_the_papers_formula_on_a_non_flat_spectrum(n: int, decay: float) -> None:
    sigma = np.arange(1, 41, dtype=np.float64) ** -decay * (1 + 0.3 * np.sin(np.arange(40)))
    z = _with_singular_values(n, sigma)
    assert rankme(torch.from_numpy(z)) == pytest.approx(_rankme_reference(z), rel=1e-9)
    assert 1 < rankme(torch.from_numpy(z)) < 40


def test_rankme_of_the_whole_matrix_is_not_capped_at_the_batch_size() -> None:
    """Regression: RankMe of a mean of per-batch Gram spectra (the old way) cannot exceed the
    batch size B, since a B-row batch has at most B non-zero singular values."""
    n, d, b = 4096, 64, 16
    z = _gaussian(n, d, 3) * torch.linspace(1.0, 0.5, d, dtype=torch.float64)  # non-flat
    mean_batch_spectrum, _ = batch_spectra(z, batch_size=b)
    old = _rankme_reference(np.sqrt(mean_batch_spectrum.numpy())[None, :])  # σ of the mean spectrum
    assert old <= b + 1e-6
    new = rankme(z)
    assert new == pytest.approx(_rankme_reference(z.numpy()), rel=1e-9)
    assert new > 0.9 * d


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_exact_power_law_covariance_recovers_alpha(alpha: float) -> None:
    d, n = 150, 2000
    target = np.arange(1, d + 1, dtype=np.float64) ** -alpha
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(np.column_stack([np.ones(n), rng.normal(size=(n, d))]))
    u = basis[:, 1:]  # orthonormal columns orthogonal to the ones vector: centred already
    v, _ = np.linalg.qr(rng.normal(size=(d, d)))
    z = math.sqrt(n) * u @ np.diag(np.sqrt(target)) @ v.T + 5.0  # covariance v diag(target) vᵀ
    eigs = covariance_eigenvalues(torch.from_numpy(z))
    assert eigs.numpy() == pytest.approx(target, rel=1e-8)
    assert alpha_req(torch.from_numpy(z)) == pytest.approx(alpha, rel=1e-8)


@pytest.mark.parametrize(("d", "alpha"), [(150, 1.0), (60, 0.6), (300, 1.8)])
def test_alpha_req_matches_an_independent_weighted_fit_on_a_non_power_law_spectrum(
    d: int, alpha: float
) -> None:
    rng = np.random.default_rng(d)
    ranks = np.arange(1, d + 1, dtype=np.float64)
    spectrum = ranks**-alpha * np.exp(0.4 * np.sin(ranks / 3)) * (1 + 4 * (ranks <= 5))  # bumpy
    z = rng.normal(size=(3000, d)) * np.sqrt(spectrum) + rng.normal(size=d) * 10  # off-centre
    value = alpha_req(torch.from_numpy(z))
    assert value == pytest.approx(_alpha_reference(z), rel=1e-8)
    # the choices matter: an unweighted fit, or one over every rank, gives another number
    eigs = np.sort(np.linalg.eigvalsh(np.cov(z, rowvar=False, bias=True)))[::-1]
    unweighted = -np.polyfit(np.log(ranks[10:100]), np.log(eigs[10:100]), 1)[0]
    everything = -np.polyfit(np.log(ranks), np.log(eigs), 1)[0]
    assert abs(value - unweighted) > 1e-4 and abs(value - everything) > 1e-3


def test_alpha_req_needs_two_eigenvalues_in_its_range() -> None:
    assert math.isnan(alpha_req(_gaussian(500, 11)))  # ranks 11.. hold one eigenvalue
    assert not math.isnan(alpha_req(_gaussian(500, 12)))


def test_power_law_ignores_round_off_of_a_rank_deficient_spectrum() -> None:
    eigs = torch.tensor([1.0, 0.25, 1e-20, 0.0], dtype=torch.float64)  # 1, 2^-2, then zeros
    assert power_law_alpha(eigs, first=1) == pytest.approx(2.0)
    assert math.isnan(power_law_alpha(torch.tensor([1.0, 0.0]), first=1))


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
    mean, std = batch_spectra(z, batch_size=25)
    per_batch = np.stack([gram_eigenvalues(z[i : i + 25]).numpy() for i in range(0, 100, 25)])
    assert mean.numpy() == pytest.approx(per_batch.mean(axis=0))
    assert std.numpy() == pytest.approx(per_batch.std(axis=0, ddof=1))
    mean, std = batch_spectra(z[:10], batch_size=25)  # fewer rows than a batch: one batch
    assert mean.numpy() == pytest.approx(gram_eigenvalues(z[:10]).numpy())
    assert float(std.abs().max()) == 0.0


def test_batch_spectra_of_a_cross_view_statistic() -> None:
    f1, f2 = _gaussian(90, 5, 1), _gaussian(90, 5, 2)
    mean, std = batch_spectra(f1, f2, batch_size=30, spectrum=cross_eigenvalues)
    per_batch = []
    for i in range(0, 90, 30):
        m = f1[i : i + 30].numpy().T @ f2[i : i + 30].numpy() / 30
        per_batch.append(np.sort(np.linalg.eigvalsh((m + m.T) / 2))[::-1])
    assert mean.numpy() == pytest.approx(np.mean(per_batch, axis=0))
    assert std.numpy() == pytest.approx(np.std(per_batch, axis=0, ddof=1))
    with pytest.raises(ValueError):
        batch_spectra(f1, f2[:80], batch_size=30, spectrum=cross_eigenvalues)


def test_spectral_features_clip_to_the_ball_and_keep_the_scale() -> None:
    mu = 4.0  # ball of radius 2: (3, 4) is rescaled to norm 2, the rows inside are unchanged
    z = torch.tensor([[3.0, 4.0], [0.5, 0.0], [0.0, 2.0]], dtype=torch.float64)
    f = spectral_features(z, mu)
    assert f.numpy() == pytest.approx(np.array([[1.2, 1.6], [0.5, 0.0], [0.0, 2.0]]))
    with pytest.raises(ValueError):
        spectral_features(z, 0.0)


def test_optimum_of_a_finite_augmentation_graph_satisfies_c_plus_equals_c_squared() -> None:
    # A small augmentation graph (docs/THEORY.md, "The augmentation graph"):
    # w(x,x') = Σ_x̄ p(x̄) A(x|x̄) A(x'|x̄).
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
    assert stationarity_residual(torch.from_numpy(c), torch.from_numpy(c_plus)) == pytest.approx(
        0.0, abs=1e-10
    )
    g = rng.normal(size=f.shape)  # an arbitrary network is far from the relation
    residual = stationarity_residual(torch.from_numpy(g.T @ np.diag(degree) @ g),
                                     torch.from_numpy(g.T @ w @ g))
    assert 0.1 < residual <= 1


def test_a_saddle_of_non_top_eigenvectors_is_stationary_but_far_from_the_optimum() -> None:
    """C₊ = C² holds at every critical point: two non-top eigenvectors, scaled as the optimum
    scales the top ones, score a residual of 0 with a loss far above −Σ_{i≤2} γᵢ²."""
    rng = np.random.default_rng(1)
    a = rng.random((5, 12)) ** 4
    a /= a.sum(axis=1, keepdims=True)
    w = a.T @ a / 5  # an augmentation graph (PSD), sums to 1
    degree = w.sum(axis=1)
    gammas, vectors = np.linalg.eigh(w / np.sqrt(np.outer(degree, degree)))
    gammas, vectors = gammas[::-1], vectors[:, ::-1]
    chosen = [2, 3]  # the 3rd and 4th eigenvectors, not the top two
    assert gammas[3] > 1e-6
    f = vectors[:, chosen] * np.sqrt(gammas[chosen]) / np.sqrt(degree)[:, None]
    c, c_plus = f.T @ np.diag(degree) @ f, f.T @ w @ f
    residual = stationarity_residual(torch.from_numpy(c), torch.from_numpy(c_plus))
    assert residual == pytest.approx(0.0, abs=1e-10)
    # the population loss as plain sums over pairs
    loss = sum(-2 * w[x, y] * f[x] @ f[y] + degree[x] * degree[y] * (f[x] @ f[y]) ** 2
               for x in range(12) for y in range(12))
    assert loss == pytest.approx(-(gammas[chosen] ** 2).sum())
    assert loss > -(gammas[:2] ** 2).sum() + 0.1  # far from the optimum


def test_best_scale_minimises_the_batch_loss_over_a_grid_of_scales() -> None:
    u1 = torch.nn.functional.normalize(_gaussian(40, 5, 3) + 2, dim=1)
    u2 = torch.nn.functional.normalize(u1 + 0.3 * _gaussian(40, 5, 4), dim=1)

    def batch_loss(c: float) -> float:  # the spectral loss's two terms as plain loops
        a, b = (c * u1).numpy(), (c * u2).numpy()
        positive = -2 * np.mean([a[i] @ b[i] for i in range(40)])
        negative = np.mean([(a[i] @ b[j]) ** 2 for i in range(40) for j in range(40) if i != j])
        return positive + negative

    scale = best_scale(u1, u2)
    grid = np.linspace(0.01, 3 * scale, 301)
    assert batch_loss(scale) <= min(batch_loss(c) for c in grid) + 1e-9
    f1, f2, same = loss_features(u1 * 7.0, u2 * torch.rand(40, 1, dtype=torch.float64) + 0.0,
                                 "simclr", mu=30.0)
    assert same == pytest.approx(scale)  # a positive per-row scale of z changes nothing
    assert f1.norm(dim=1).numpy() == pytest.approx(np.full(40, scale))
    f1, _, one = loss_features(u1 * 7.0, u2, "spectral", mu=4.0)
    assert one == 1.0 and f1.norm(dim=1).numpy() == pytest.approx(np.full(40, 2.0))


def test_sample_moments_are_plain_averages() -> None:
    f1, f2 = _gaussian(30, 4, 1), _gaussian(30, 4, 2)
    assert second_moment(f1).numpy() == pytest.approx(f1.numpy().T @ f1.numpy() / 30)
    m = f1.numpy().T @ f2.numpy() / 30
    assert cross_moment(f1, f2).numpy() == pytest.approx((m + m.T) / 2)


def test_eigenvalue_counts() -> None:
    counts = eigenvalue_counts(torch.tensor([1.0, 0.95, 0.6, 0.1]))
    assert counts == {"n_above_0.5": 3, "n_above_0.9": 2}


def test_pca_matches_scikit_learn_and_aligns_signs() -> None:
    from sklearn.decomposition import PCA

    x = _gaussian(200, 6).numpy() * np.array([5, 3, 1, 1, 1, 1])
    layout = pca_2d(x)
    reference = PCA(n_components=2).fit_transform(x)
    assert np.abs(layout) == pytest.approx(np.abs(reference), abs=1e-4)
    flipped = pca_2d(x, previous=-layout)
    assert flipped == pytest.approx(-layout, abs=1e-5)
