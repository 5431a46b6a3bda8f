"""A table f (n x d) trained on the mini-batch spectral contrastive loss of a finite graph.

The simplest learner the theory of HaoChen et al. [0] speaks about: every node has its own free
feature vector, positive pairs are drawn from w(x, x') and the loss is the paper's
(:func:`explorer.losses.spectral_contrastive_loss`: rows clipped to the ball of radius sqrt(mu),
loss divided by mu). Its minimum over tables is -sum_{i<=d} gamma_i^2 when that optimum fits in
the ball, else the ball-constrained optimum
(:func:`explorer.graphs.optimum.ball_constrained_optimum`);
at the unconstrained optimum E_w[f f^T] has eigenvalues gamma_1..gamma_d [0, Section 3.2].
Training runs in chunks so that a page can draw it live.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explorer.graphs.clusters import leading_eigenpairs
from explorer.graphs.optimum import (
    BallOptimum,
    ball_constrained_optimum,
    optimal_loss,
    population_loss,
    second_moment,
)
from explorer.losses import clip_to_ball, spectral_contrastive_loss


@dataclass(frozen=True)
class TrainPoint:
    """The table after a chunk of steps.

    Attributes:
        step: optimiser steps taken so far.
        loss: the exact population loss L(f) of f = clip(z)
            (:func:`explorer.graphs.optimum.population_loss`).
        batch_loss: mu times the mean mini-batch loss of the chunk (an unbiased estimate of L
            at the chunk's tables).
        eigenvalues: (d,) eigenvalues of E_w[f f^T] = sum_x w_x f(x) f(x)^T, descending.
        max_sq_norm: max_x ||f(x)||^2 (<= mu: the ball).
    """

    step: int
    loss: float
    batch_loss: float
    eigenvalues: np.ndarray
    max_sq_norm: float


class PairSampler:
    """Positive pairs (x, x+) drawn from w(x, x') / sum(W), as
    :func:`explorer.graphs.spectral.sample_positive_pairs` draws them, with the cumulative
    distribution
    computed once (``rng.choice`` rebuilds it for each batch: O(n^2) a batch instead of
    O(B log n^2))."""

    def __init__(self, W: np.ndarray) -> None:
        self.n = W.shape[0]
        self.cdf = np.cumsum(np.asarray(W, dtype=np.float64).ravel())  # (n^2,)

    def __call__(self, batch_size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Two (B,) int64 index arrays; row i of each is a positive pair."""
        u = rng.random(batch_size) * self.cdf[-1]
        flat = np.minimum(np.searchsorted(self.cdf, u, side="right"), self.cdf.size - 1)
        return np.divmod(flat, self.n)


class TableTrainer:
    """Adam on a free table z (n, d), the loss of the paper's code on pairs drawn from W.

    The theory's f is clip(z) (rows clipped to the ball ||f(x)||^2 <= mu), and mu times the
    mini-batch loss estimates L(f) [0]. Adam (not plain SGD) because a row's gradient is
    proportional to its node's degree w_x: Adam's per-coordinate scale makes every row learn at
    one pace, and it is invariant to the loss's 1/mu. The step size decays as
    lr / sqrt(1 + step / 200), which lets the noisy estimate settle near the optimum.

    Args:
        W: edge weights (n, n), any positive scale.
        d: features per node.
        mu: squared radius of the ball, > 0.
        batch_size: positive pairs per step.
        lr: Adam's initial step size.
        seed: seeds the initial table (N(0, 0.1^2 mu / d) entries: well inside the ball) and
            the pairs.
        eigenpairs: the top-d (gammas, vectors) of Abar, if the caller has them (default:
            :func:`explorer.graphs.clusters.leading_eigenpairs`).
    """

    def __init__(self, W: np.ndarray, d: int, mu: float, *, batch_size: int = 256,
                 lr: float = 0.05, seed: int = 0,
                 eigenpairs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        n = W.shape[0]
        if not 1 <= d <= n:
            raise ValueError(f"d must be in [1, {n}] (the number of nodes), got {d}")
        if mu <= 0:
            raise ValueError(f"mu must be > 0, got {mu}")
        self.joint = np.asarray(W, dtype=np.float64) / W.sum()  # nxn, sums to 1
        self.d, self.mu, self.batch_size = d, float(mu), batch_size
        gammas, vectors = eigenpairs if eigenpairs is not None else leading_eigenpairs(
            self.joint, d)
        self.eigenpairs = (np.asarray(gammas)[:d], np.asarray(vectors)[:, :d])
        self.gammas = self.eigenpairs[0]
        self.optimum = optimal_loss(self.gammas)
        self._reachable: BallOptimum | None = None
        self._sampler = PairSampler(self.joint)
        self._rng = np.random.default_rng(seed)
        generator = torch.Generator().manual_seed(seed)
        init = torch.randn(n, d, generator=generator, dtype=torch.float64)
        self.z = torch.nn.Parameter(init * 0.1 * np.sqrt(self.mu / d))
        self.optimizer = torch.optim.Adam([self.z], lr=lr)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: 1.0 / np.sqrt(1.0 + step / 200.0))
        self.step = 0
        self.history: list[TrainPoint] = []

    def reachable(self) -> BallOptimum:
        """The minimum of L over tables inside the ball (computed once, on the first call)."""
        if self._reachable is None:
            self._reachable = ball_constrained_optimum(
                self.joint, self.d, self.mu, eigenpairs=self.eigenpairs, tol=1e-6,
                max_iterations=2000)
        return self._reachable

    def features(self) -> np.ndarray:
        """The table's features f = clip(z): (n, d), every row inside the ball."""
        with torch.no_grad():
            return clip_to_ball(self.z, self.mu).numpy().copy()

    def run(self, steps: int) -> TrainPoint:
        """Take ``steps`` optimiser steps, then score the table exactly; appends to history."""
        total = 0.0
        for _ in range(steps):
            left, right = self._sampler(self.batch_size, self._rng)
            loss, _, _ = spectral_contrastive_loss(
                self.z[torch.from_numpy(left)], self.z[torch.from_numpy(right)], self.mu)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.schedule.step()
            total += loss.item()
        self.step += steps
        f = self.features()
        point = TrainPoint(
            step=self.step,
            loss=float(population_loss(f, self.joint)),
            batch_loss=self.mu * total / max(steps, 1),
            eigenvalues=np.linalg.eigvalsh(second_moment(f, self.joint))[::-1].copy(),
            max_sq_norm=float((f * f).sum(1).max()),
        )
        self.history.append(point)
        return point

    def converged(self, window: int = 500, tolerance: float = 1e-3) -> int | None:
        """The step from which the exact loss has settled, or None: it moved by less than
        ``tolerance`` × |−Σγᵢ²| over the last ``window`` steps (the mini-batch noise, not
        progress, moves it after that). The page stops training there."""
        if not self.history or self.history[-1].step < window:
            return None
        now = self.history[-1]
        then = next((p for p in reversed(self.history) if p.step <= now.step - window), None)
        if then is None or abs(now.loss - then.loss) > tolerance * abs(self.optimum):
            return None
        return then.step

    def gap(self, point: TrainPoint | None = None) -> float:
        """(L(f) - L_reach) / |L_reach| of the latest (or given) point, L_reach the optimum
        inside the ball: 0 at the best table a ball of this mu allows."""
        point = point or self.history[-1]
        best = self.reachable().loss
        return (point.loss - best) / abs(best)
