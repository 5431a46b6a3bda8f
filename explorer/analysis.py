"""Representation metrics: batch Gram spectra, effective rank, power-law decay, alignment and
uniformity, and the augmentation-graph spectrum seen through the network. Pure functions.

Conventions. For a batch ``Z`` of shape (B, d) the *batch Gram spectrum* is the eigenvalues of
(1/B)·Z Zᵀ, which are the non-zero eigenvalues of (1/B)·Zᵀ Z; :func:`gram_eigenvalues` returns the
``min(B, d)`` largest, computed from whichever of the two matrices is smaller. Matrices are not
centred (the spectral loss is not: its optimum has E[f fᵀ] with eigenvalues γ₁..γ_k, γ₁ = 1).

The *spectral features* of projector outputs z are f = clip(z), where clip rescales rows with
‖z‖ ≥ √μ to norm √μ (HaoChen et al. 2021 [0]; DESIGN.md, "Where μ lives"). The batch loss times μ
is then exactly the population loss L(f) = −2·E[fᵀf⁺] + E[(fᵀf')²] of the theory, estimated on the
batch (f = clip(z)/√μ would give −2·E[fᵀf⁺] + μ·E[(fᵀf')²], another problem). At its optimum
(Eckart–Young on Ā = D^-1/2 W D^-1/2) E[f fᵀ] = Rᵀ diag(γ₁..γ_k) R and
E[f(x) f(x⁺)ᵀ] = Rᵀ diag(γ₁²..γ_k²) R for one rotation R, provided the optimum fits in the ball
(‖f*(x)‖² ≤ μ at every node): the second moment C and the cross-view moment C₊ satisfy C₊ = C².
:func:`optimum_gap` measures how far a network is from that relation.

References:
    [0] HaoChen, Wei, Gaidon, Ma. Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss, NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Garrido, Balestriero, Najman, LeCun. RankMe: Assessing the Downstream Performance of
        Pretrained Self-Supervised Representations by Their Rank, ICML 2023,
        https://arxiv.org/abs/2210.02885
    [2] Agrawal, Mondal, Ghosh, Richards. α-ReQ: Assessing Representation Quality in
        Self-Supervised Learning by Measuring Eigenspectrum Decay, NeurIPS 2022
    [3] Wang, Isola. Understanding Contrastive Representation Learning through Alignment and
        Uniformity on the Hypersphere, ICML 2020, https://arxiv.org/abs/2005.10242
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

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


def batch_spectra(z: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation of :func:`gram_eigenvalues` over consecutive batches.

    The rows of ``z`` are cut into ``len(z) // batch_size`` batches (at least one: if there are
    fewer rows than ``batch_size``, all of them form one batch), as the training loop sees them.

    Args:
        z: Tensor of shape (N, d), rows in a random order.
        batch_size: rows per batch B.

    Returns:
        ``(mean, std)``, each of shape (min(B, d),), float64; std is 0 for a single batch.
    """
    z = _check_matrix(z)
    size = min(batch_size, len(z))
    spectra = torch.stack(
        [gram_eigenvalues(z[i : i + size]) for i in range(0, len(z) - size + 1, size)]
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


def optimum_gap(c: Tensor, c_plus: Tensor) -> float:
    """‖C₊ − C²‖_F / (‖C₊‖_F + ‖C²‖_F), in [0, 1] by the triangle inequality: 0 when the features
    satisfy the optimum's relation C₊ = C², near 1 when the two matrices are unrelated."""
    c, c_plus = c.double(), c_plus.double()
    square = c @ c
    scale = (c_plus.norm() + square.norm()).clamp_min(1e-30)
    return float((c_plus - square).norm() / scale)


def effective_rank(eigs: Tensor, eps: float = 1e-7) -> float:
    """RankMe [1]: exp of the entropy of the normalised singular values of the feature matrix.

    The singular values of Z (B×d) are √(B·λ) for the Gram eigenvalues λ; RankMe normalises them
    to p_k = σ_k/Σσ + ε and returns exp(−Σ p_k log p_k). Isotropic features give d, collapsed
    (rank-one) features give 1.

    Args:
        eigs: Tensor of shape (n,), Gram eigenvalues (non-negative).
        eps: the paper's ε, keeping log finite.
    """
    sigma = eigs.double().clamp_min(0).sqrt()
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma / total + eps
    return float(torch.exp(-(p * p.log()).sum()))


def power_law_alpha(eigs: Tensor, rel_floor: float = 1e-8) -> float:
    """α-ReQ [2]: the decay α of λ_i ∝ i^(−α), by least squares of log λ_i on log i.

    Eigenvalues below ``rel_floor``·λ₁ (round-off of a rank-deficient spectrum) are left out.
    Returns NaN when fewer than two eigenvalues remain.

    Args:
        eigs: Tensor of shape (n,), sorted largest first.
    """
    eigs = eigs.double()
    if eigs.numel() == 0 or eigs[0] <= 0:
        return float("nan")
    keep = eigs > rel_floor * eigs[0]
    if int(keep.sum()) < 2:
        return float("nan")
    log_i = torch.arange(1, eigs.numel() + 1, dtype=torch.float64)[keep].log()
    log_l = eigs[keep].log()
    x = log_i - log_i.mean()
    slope = (x * (log_l - log_l.mean())).sum() / (x * x).sum()
    return float(-slope)


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


def spectrum_summary(eigs: Tensor) -> dict[str, float | int]:
    """The scalars stored per spectrum: RankMe, α, and the counts above 0.5 and 0.9."""
    return {
        "rankme": effective_rank(eigs),
        "alpha": power_law_alpha(eigs),
        "n_above_0.5": count_above(eigs, 0.5),
        "n_above_0.9": count_above(eigs, 0.9),
    }
