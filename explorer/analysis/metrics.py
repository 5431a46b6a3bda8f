"""Representation metrics of feature matrices: pure functions, tensors in and numbers out.

Batch Gram spectra, RankMe, α-ReQ, alignment and uniformity, and the augmentation-graph spectrum
seen through the network. No model, run or config here: :mod:`explorer.analysis.checkpoint`
applies these to one checkpoint, :mod:`explorer.analysis.run` to every checkpoint of a run.

Conventions. For a batch ``Z`` of shape (B, d) the *batch Gram spectrum* is the eigenvalues of
(1/B)·Z Zᵀ, which are the non-zero eigenvalues of (1/B)·Zᵀ Z; :func:`gram_eigenvalues` returns the
``min(B, d)`` largest, computed from whichever of the two matrices is smaller. Matrices are not
centred (the spectral loss is not: its optimum has E[f fᵀ] with eigenvalues γ₁..γ_k, γ₁ = 1).

The *spectral features* of projector outputs z are f = clip(z), where clip rescales rows with
‖z‖ ≥ √μ to norm √μ (HaoChen et al. 2021 [0]; docs/THEORY.md, "Where μ lives"). The batch
loss times μ is then exactly the population loss L(f) = −2·E[fᵀf⁺] + E[(fᵀf')²] of the theory,
estimated on the batch (f = clip(z)/√μ would give −2·E[fᵀf⁺] + μ·E[(fᵀf')²], another problem).
At its optimum (Eckart–Young on Ā = D^-1/2 W D^-1/2) E[f fᵀ] = Rᵀ diag(γ₁..γ_k) R and
E[f(x) f(x⁺)ᵀ] = Rᵀ diag(γ₁²..γ_k²) R for one rotation R, provided the optimum fits in the ball
(‖f*(x)‖² ≤ μ at every node): the second moment C and the cross-view moment C₊ satisfy C₊ = C².
:func:`stationarity_residual` measures how far a network is from that relation. It is a
residual of stationarity, not a distance to the optimum: every critical point of L (W f = D f M
for a symmetric M) satisfies C₊ = C², so a saddle made of non-top eigenvectors scores 0 too. The
gap to the optimum is (L − L*)/|L*| alone (:mod:`explorer.analysis.theorem`, on an exact graph).

Losses without μ (SimCLR, SimSiam) see only the direction u = z/‖z‖; :func:`loss_features` reads
them that way, at the scale c that is best for L (c² = P/N, L(c·u) = −P²/N), so that their
spectra sit on the same axis as γᵢ (docs/THEORY.md, "Losses without μ").

Estimators as their papers define them. :func:`rankme` [1] takes the singular values of the whole
(N, d) embedding matrix (not centred; ε = 1e-7), never a mean of per-batch spectra, which would cap
it at the batch size. :func:`alpha_req` [2] fits the eigenvalues of the *centred* covariance over
ranks 11..100 by least squares in log-log space weighted by 1/rank, as the authors' code does.

References:
    [0] HaoChen, Wei, Gaidon, Ma. Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss, NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Garrido, Balestriero, Najman, LeCun. RankMe: Assessing the Downstream Performance of
        Pretrained Self-Supervised Representations by Their Rank, ICML 2023,
        https://arxiv.org/abs/2210.02885
    [2] Agrawal, Mondal, Ghosh, Richards. α-ReQ: Assessing Representation Quality in
        Self-Supervised Learning by Measuring Eigenspectrum Decay, NeurIPS 2022,
        https://proceedings.neurips.cc/paper_files/paper/2022/hash/70596d70542c51c8d9b4e423f4bf2736-Abstract-Conference.html;
        the authors' implementation: https://github.com/arnab39/reptrix (``reptrix/alpha.py``)
    [3] Wang, Isola. Understanding Contrastive Representation Learning through Alignment and
        Uniformity on the Hypersphere, ICML 2020, https://arxiv.org/abs/2005.10242
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from explorer.graphs.optimum import best_scale_of_terms

_UNIFORMITY_POINTS = 2048  # pairs grow quadratically; 2048 points give ~2M pairs, plenty


def _check_matrix(z: Tensor, name: str = "features") -> Tensor:
    if z.ndim != 2 or z.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, d) matrix, got {tuple(z.shape)}")
    return z.detach().double()


def gram_eigenvalues(z: Tensor) -> Tensor:
    """Eigenvalues of the batch Gram matrix (1/B)·Z Zᵀ, largest first.

    Args:
        z: Tensor of shape (B, d).

    Returns:
        Tensor of shape (min(B, d),), float64, non-negative (clamped at 0 against round-off).
    """
    z = _check_matrix(z)
    b, d = z.shape
    gram = z.T @ z / b if d <= b else z @ z.T / b  # the smaller of dxd and BxB
    return torch.linalg.eigvalsh(gram).flip(0).clamp_min(0.0)


def cross_eigenvalues(f1: Tensor, f2: Tensor) -> Tensor:
    """Eigenvalues of the symmetrised cross-view moment :func:`cross_moment`, largest first.

    Args:
        f1, f2: Tensors of shape (B, d), two views of the same B inputs.

    Returns:
        Tensor of shape (d,), float64 (may be negative).
    """
    return eigenvalues(cross_moment(f1, f2))


def batch_spectra(
    *views: Tensor,
    batch_size: int,
    spectrum: Callable[..., Tensor] = gram_eigenvalues,
) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of a per-batch ``spectrum`` over consecutive batches.

    The rows of the views are cut into ``len // batch_size`` batches (at least one: if there are
    fewer rows than ``batch_size``, all of them form one batch), as the training loop sees them,
    and ``spectrum`` is called on the same rows of every view: ``batch_spectra(f, batch_size=B)``
    gives the batch Gram spectrum, ``batch_spectra(f1, f2, batch_size=B,
    spectrum=cross_eigenvalues)`` the cross-view one.

    Args:
        views: Tensors of shape (N, d), rows in a random order, row i of each the same input.
        batch_size: rows per batch B.
        spectrum: maps one batch of each view to a 1-D tensor of fixed length.

    Returns:
        ``(mean, std)``, each of the spectrum's shape, float64; std is 0 for a single batch.
    """
    views = tuple(_check_matrix(v) for v in views)
    if not views or any(len(v) != len(views[0]) for v in views):
        raise ValueError(f"views need the same number of rows, got {[len(v) for v in views]}")
    n = len(views[0])
    size = min(batch_size, n)
    spectra = torch.stack(
        [spectrum(*(v[i : i + size] for v in views)) for i in range(0, n - size + 1, size)]
    )
    std = spectra.std(dim=0, unbiased=True) if len(spectra) > 1 else torch.zeros_like(spectra[0])
    return spectra.mean(dim=0), std


def spectral_features(z: Tensor, mu: float) -> Tensor:
    """f = clip(z): rows with ‖z‖ ≥ √μ rescaled to norm √μ, the others unchanged (the theory's f).

    Not divided by √μ: with this f the spectral loss times μ is the population loss of [0].

    Args:
        z: Tensor of shape (N, d), projector outputs.
        mu: the spectral loss's μ > 0 (the ball's squared radius).

    Returns:
        Tensor of shape (N, d), float64, every row of squared norm at most μ.
    """
    if mu <= 0:
        raise ValueError(f"mu must be positive, got {mu}")
    z = _check_matrix(z)
    norms = z.norm(dim=1, keepdim=True)
    return z * torch.where(norms >= math.sqrt(mu), math.sqrt(mu) / norms.clamp_min(1e-30), 1.0)


def best_scale(u1: Tensor, u2: Tensor) -> float:
    """The c ≥ 0 that minimises the batch estimate of L(c·u) = −2c²P + c⁴N: c² = P/N.

    P = (1/B)Σᵢ u1ᵢ·u2ᵢ and N = (1/(B(B−1)))Σ_{i≠j}(u1ᵢ·u2ⱼ)², the two terms of the spectral
    loss on the batch (cross-view pairs, as the loss takes them). 0 when P ≤ 0 (no scale helps).

    Args:
        u1, u2: Tensors of shape (B, d), two views' features, row i of both from one image.
    """
    u1, u2 = _check_matrix(u1), _check_matrix(u2)
    if len(u1) < 2:
        raise ValueError("best_scale needs at least two pairs")
    positive = float((u1 * u2).sum(1).mean())
    gram = u1 @ u2.T  # (B, B)
    negative = float((gram.square().sum() - gram.diagonal().square().sum())
                     / (len(u1) * (len(u1) - 1)))
    return best_scale_of_terms(positive, negative)  # the population formula, on the batch's terms


def loss_features(z1: Tensor, z2: Tensor, loss: str, mu: float) -> tuple[Tensor, Tensor, float]:
    """Two views' projector outputs read as their loss sees them: ``(f1, f2, scale)``, float64.

    - ``spectral``: f = clip(z) with the run's μ (:func:`spectral_features`), scale 1;
    - ``simclr``, ``simsiam``: NT-Xent and SimSiam see only u = z/‖z‖ (their μ means nothing),
      so f = c·u at the best scale c for the spectral loss on these pairs (:func:`best_scale`):
      a per-datum positive scale and one global scale, which change no linear probe.

    Args:
        z1, z2: Tensors of shape (N, d), row i of both from two views of one image.
        loss: the run's loss.
        mu: the run's μ (used by ``spectral`` only).
    """
    if loss == "spectral":
        return spectral_features(z1, mu), spectral_features(z2, mu), 1.0
    u1 = F.normalize(_check_matrix(z1), dim=1)
    u2 = F.normalize(_check_matrix(z2), dim=1)
    scale = best_scale(u1, u2)
    return scale * u1, scale * u2, scale


def second_moment(f: Tensor) -> Tensor:
    """C = E[f fᵀ] = (1/N)·Fᵀ F, shape (d, d)."""
    f = _check_matrix(f)
    return f.T @ f / len(f)


def cross_moment(f1: Tensor, f2: Tensor) -> Tensor:
    """C₊ = E[f(x) f(x⁺)ᵀ], symmetrised: (F1ᵀF2 + F2ᵀF1)/(2N), shape (d, d).

    The two views of a pair are exchangeable, so the population matrix is symmetric; symmetrising
    the estimate removes sampling noise that would otherwise make its eigenvalues complex.
    """
    f1, f2 = _check_matrix(f1), _check_matrix(f2)
    if f1.shape != f2.shape:
        raise ValueError(f"views have shapes {tuple(f1.shape)} and {tuple(f2.shape)}")
    m = f1.T @ f2 / len(f1)
    return (m + m.T) / 2


def eigenvalues(matrix: Tensor) -> Tensor:
    """Eigenvalues of a symmetric matrix, largest first (may be negative), float64."""
    return torch.linalg.eigvalsh(matrix.double()).flip(0)


def stationarity_residual(c: Tensor, c_plus: Tensor) -> float:
    """The C₊ = C² residual ‖C₊ − C²‖_F / (‖C₊‖_F + ‖C²‖_F), in [0, 1] by the triangle inequality.

    0 when the features satisfy C₊ = C², which holds at *every* critical point of the population
    loss (W f = D f M gives E[f f⁺ᵀ] = M² and E[f fᵀ] = M), the optimum among them; near 1 when
    the two matrices are unrelated. It measures stationarity, not optimality: a saddle made of
    two non-top eigenvectors scores 0 with a loss far above −Σγᵢ².

    Args:
        c: C = E[f fᵀ], shape (d, d).
        c_plus: C₊ = E[f(x) f(x⁺)ᵀ], shape (d, d).
    """
    c, c_plus = c.double(), c_plus.double()
    square = c @ c
    scale = (c_plus.norm() + square.norm()).clamp_min(1e-30)
    return float((c_plus - square).norm() / scale)


def rankme(z: Tensor, eps: float = 1e-7) -> float:
    """RankMe [1]: the effective rank of the embedding matrix itself.

    RankMe(Z) = exp(−Σₖ pₖ log pₖ) with pₖ = σₖ(Z)/‖σ(Z)‖₁ + ε, where σₖ(Z) are the singular
    values of the (N, d) matrix of *all* evaluated embeddings (not centred, as in [1]) and ε is
    [1]'s small constant keeping log finite (1e-7 here, the value of the RankMe implementation
    in reptrix, the α-ReQ authors' library of these metrics).
    It lies in [1, min(N, d)]: d for isotropic features, 1 for collapsed (rank-one) ones.

    Computed from Z itself, never from a mean of per-batch spectra: a batch of B rows has at most
    B non-zero singular values, so an average over batches caps RankMe at min(B, d) and reads a
    batch size as a collapse. The σₖ come from the eigenvalues of the smaller of ZᵀZ and ZZᵀ
    (σₖ² = eigenvalues of ZᵀZ), which is exact in float64 and cheaper than an SVD when N ≫ d.

    Args:
        z: Tensor of shape (N, d), one embedding per row (N ≥ d for the full range).
        eps: the paper's ε.

    Returns:
        RankMe; 0.0 for an all-zero matrix.
    """
    sigma = (len(z) * gram_eigenvalues(z)).sqrt()  # singular values of Z, largest first
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma / total + eps
    return float(torch.exp(-(p * p.log()).sum()))


def covariance_eigenvalues(z: Tensor) -> Tensor:
    """Eigenvalues of the centred covariance (1/N)·(Z − Z̄)ᵀ(Z − Z̄), largest first.

    Args:
        z: Tensor of shape (N, d).

    Returns:
        Tensor of shape (min(N, d),), float64, clamped at 0 against round-off.
    """
    z = _check_matrix(z)
    return gram_eigenvalues(z - z.mean(dim=0, keepdim=True))


# The fit range of α-ReQ [2] in 1-based eigenvalue ranks, as in the authors' released code
# (reptrix, `alpha.get_alpha`: zero-based indices 10..99): the first ten eigenvalues (the few
# large directions) and the tail beyond 100 (finite-sample noise) are left out.
ALPHA_FIRST, ALPHA_LAST = 11, 100


def power_law_alpha(
    eigs: Tensor,
    first: int = ALPHA_FIRST,
    last: int = ALPHA_LAST,
    rel_floor: float = 1e-12,
) -> float:
    """The decay α of λᵢ ∝ i^(−α), fitted as α-ReQ [2] fits it.

    Weighted least squares of log λᵢ on (−log i, 1) over the ranks i = first..last (those the
    spectrum has), each rank weighted by 1/i, so that the many tail ranks do not outvote the
    head of the range; α is the coefficient of −log i. This is the fit of Stringer et al.
    (Nature 2019, whose code α-ReQ's authors reuse) with α-ReQ's range. One deviation:
    eigenvalues at or below ``rel_floor``·λ₁ (round-off zeros of a rank-deficient spectrum,
    whose log is −∞) are left out.

    Args:
        eigs: Tensor of shape (n,), eigenvalues sorted largest first.
        first, last: the fit range, 1-based ranks, inclusive.
        rel_floor: relative size below which an eigenvalue counts as zero.

    Returns:
        α, or NaN when fewer than two eigenvalues of the range remain.
    """
    eigs = eigs.double().cpu()
    if eigs.numel() == 0 or eigs[0] <= 0:
        return float("nan")
    rank = torch.arange(1, eigs.numel() + 1, dtype=torch.float64)
    keep = (rank >= first) & (rank <= last) & (eigs > rel_floor * eigs[0])
    if int(keep.sum()) < 2:
        return float("nan")
    x = torch.stack([-rank[keep].log(), torch.ones(int(keep.sum()), dtype=torch.float64)], 1)
    y = eigs[keep].log()
    w = 1.0 / rank[keep]
    # normal equations of the weighted fit: (Xᵀ W X) b = Xᵀ W y
    b = torch.linalg.solve(x.T @ (w[:, None] * x), x.T @ (w * y))
    return float(b[0])


def alpha_req(z: Tensor, first: int = ALPHA_FIRST, last: int = ALPHA_LAST) -> float:
    """α-ReQ [2]: the power-law decay of the centred covariance spectrum of the features.

    The eigenvalues of Cov(z) = (1/N)·(Z − Z̄)ᵀ(Z − Z̄) over all N evaluated rows, fitted by
    :func:`power_law_alpha` (ranks 11..100, weights 1/i). The paper normalises the spectrum to
    sum 1 (explained variance ratios); that only shifts the intercept, not α.

    Args:
        z: Tensor of shape (N, d).

    Returns:
        α, or NaN when the spectrum has fewer than two non-zero eigenvalues in the range (in
        particular when d < 12).
    """
    return power_law_alpha(covariance_eigenvalues(z), first, last)


def count_above(eigs: Tensor, threshold: float) -> int:
    """How many eigenvalues exceed ``threshold`` (near-1 eigenvalues of the spectral features count
    nearly disconnected components of the augmentation graph [0])."""
    return int((eigs > threshold).sum())


def alignment(z1: Tensor, z2: Tensor, power: float = 2.0) -> float:
    """Alignment [3]: E‖u − u⁺‖^power over positive pairs of l2-normalised features (0 is best).

    Args:
        z1, z2: Tensors of shape (N, d), two views of the same N inputs.
    """
    u1, u2 = F.normalize(_check_matrix(z1), dim=1), F.normalize(_check_matrix(z2), dim=1)
    return float((u1 - u2).norm(dim=1).pow(power).mean())


def uniformity(z: Tensor, t: float = 2.0, max_points: int = _UNIFORMITY_POINTS) -> float:
    """Uniformity [3]: log E exp(−t‖u − v‖²) over distinct pairs of l2-normalised features.

    Lower is more uniform. Only the first ``max_points`` rows are used (pairs grow as N²).

    Args:
        z: Tensor of shape (N, d), N ≥ 2.
    """
    u = F.normalize(_check_matrix(z)[:max_points], dim=1)
    if len(u) < 2:
        raise ValueError("uniformity needs at least two points")
    sq = torch.pdist(u).pow(2)
    return float(torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel()))


def eigenvalue_counts(eigs: Tensor) -> dict[str, int]:
    """How many eigenvalues exceed 0.5 and 0.9: ``{"n_above_0.5": ..., "n_above_0.9": ...}``."""
    return {"n_above_0.5": count_above(eigs, 0.5), "n_above_0.9": count_above(eigs, 0.9)}
