"""The optimum of the population spectral contrastive loss: the loss, f*, ties, the ball, the scale.

The population spectral contrastive loss of HaoChen et al. [0, Section 3.2], with w(x, x') the
joint distribution of a positive pair (W summing to 1) and w_x its marginal (the degrees):

    L(f) = -2 sum_{x,x'} w(x,x') f(x)^T f(x') + sum_{x,x'} w_x w_x' (f(x)^T f(x'))^2
         = -2 tr(f^T W f) + ||E_w[f f^T]||_F^2,

and, with u_x = sqrt(w_x) f(x) the rows of F, ||Abar - F F^T||_F^2 = ||Abar||_F^2 + L(f)
(:func:`explorer.graphs.spectral.matrix_factorization_loss`). By Eckart-Young-Mirsky the minimum
is -sum_{i<=k} max(gamma_i, 0)^2, reached by f* = D^{-1/2} V_k diag(sqrt(gamma)) (the top-k
eigenpairs (gamma, V_k) of Abar) up to a rotation.

This module is the one home of those objects, each written once over
:class:`explorer.graphs.interface.FiniteGraph` (a dense W, the ``shapes`` graphs dense or
matrix-free, the cluster graphs; a bare W (n, n) is read as a
:class:`~explorer.graphs.interface.DenseGraph`): the loss (:func:`population_loss`) and
E_w[f f^T] (:func:`second_moment`), f* (:func:`features_of_eigenpairs`,
:func:`optimal_features`), what a tie at k leaves open (:func:`tied_block`), the optimum inside
the ball ||f(x)||^2 <= mu that the loss's clip imposes (:func:`ball_constrained_optimum`), and the
best scale of features without a ball (:func:`best_scale`). The clip itself is the training
loss's (:func:`explorer.losses.clip_to_ball`).

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Beck, Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for Linear Inverse
        Problems", SIAM J. Imaging Sci. 2(1), 2009; O'Donoghue, Candes, "Adaptive Restart for
        Accelerated Gradient Schemes", Found. Comput. Math. 15, 2015.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from explorer.graphs import spectral
from explorer.graphs.interface import FiniteGraph, as_graph
from explorer.losses import clip_to_ball

#: A dense W (n, n), NumPy or torch, any positive scale.
Matrix = np.ndarray | torch.Tensor
#: A graph, or a bare W (n, n).
GraphLike = FiniteGraph | Matrix


def _numpy(x: object) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if sp.issparse(x):
        return x.toarray()  # type: ignore[attr-defined]
    return np.asarray(x, dtype=np.float64)


# --- The loss -----------------------------------------------------------------------------------


def second_moment(f: Any, graph: GraphLike) -> Any:
    """E_w[f f^T] = f^T diag(w) f (k, k) for a table f (n, k), w the graph's degrees; of f's
    kind (NumPy or torch)."""
    return (f.T * as_graph(graph).degrees) @ f


def population_loss(f: Any, graph: GraphLike) -> Any:
    """The population spectral contrastive loss L(f), exactly, on every node [0, Section 3.2].

    L(f) = -2 tr(f^T W f) + ||E_w[f f^T]||_F^2 with W normalised to sum 1: one product W f, so
    the same for a dense W and a matrix-free graph. With F = u (u_x = sqrt(w_x) f(x)),
    ``spectral.matrix_factorization_loss(F, W)`` equals L(f) + ||Abar||_F^2.

    Args:
        f: features (n, k), row x is f(x); NumPy or torch.
        graph: a :class:`~explorer.graphs.interface.FiniteGraph`, or W (n, n) of any positive
            scale (of f's kind).

    Returns:
        A scalar of f's kind (differentiable for torch).
    """
    graph = as_graph(graph)
    if f.ndim != 2 or f.shape[0] != graph.num_nodes:
        raise ValueError(f"f must be (n, k) with n = {graph.num_nodes}, got {tuple(f.shape)}")
    return -2 * (f * graph.weights_product(f)).sum() + (second_moment(f, graph) ** 2).sum()


def optimal_loss(gammas: Any) -> float:
    """-sum_i max(gamma_i, 0)^2 of the top-k eigenvalues ``gammas`` (k,) of Abar: the minimum of
    L over f: nodes -> R^k (Eckart-Young-Mirsky; Abar is PSD on augmentation graphs)."""
    return float(-(np.clip(_numpy(gammas), 0, None) ** 2).sum())


def optimal_population_loss(graph: GraphLike, k: int) -> float:
    """The minimum of L(f) over f: R^n -> R^k, -sum_{i<=k} max(gamma_i, 0)^2 (Eckart-Young)."""
    return optimal_loss(as_graph(graph).top_eigenpairs(k)[0])


def best_scale_of_terms(positive: float, negative: float) -> float:
    """The c >= 0 minimising -2c^2 P + c^4 N, the loss of c*u with P = E[u(x)^T u(x+)] and
    N = E[(u(x)^T u(x'))^2]: c^2 = P/N, 0 when P <= 0 (no scale helps) or N = 0."""
    return float(np.sqrt(positive / negative)) if positive > 0 and negative > 0 else 0.0


def best_scale(u: np.ndarray, graph: GraphLike) -> float:
    """The scale c >= 0 minimising L(c*u) on a graph (:func:`best_scale_of_terms`): how losses
    without a ball (SimCLR, SimSiam), which see only directions u = z/||z||, are scored.

    Args:
        u: (n, d) features of every node.
        graph: a graph, or W (n, n) of any positive scale.
    """
    graph = as_graph(graph)
    positive = float((u * graph.weights_product(u)).sum())  # P = E[u(x)^T u(x+)]
    negative = float(np.sum(second_moment(u, graph) ** 2))  # N = ||E_w[u u^T]||_F^2
    return best_scale_of_terms(positive, negative)


# --- The optimum f* -----------------------------------------------------------------------------


def features_of_eigenpairs(gammas: Any, vectors: Any, w: Any) -> Any:
    """f* = D^{-1/2} V diag(sqrt(gamma)) (n, k): the features of the top-k optimum [0, Section 3.2]
    from eigenpairs of Abar, the one place that writes this formula.

    Args:
        gammas: (k,) eigenvalues of Abar, descending (negative ones clipped to 0).
        vectors: (n, k) their orthonormal eigenvectors.
        w: (n,) the degrees of W normalised to sum 1.
    """
    inverse = spectral.inverse_sqrt(w)[:, None]
    if isinstance(gammas, torch.Tensor):
        return vectors * gammas.clamp_min(0).sqrt()[None, :] * inverse
    return vectors * np.sqrt(np.clip(gammas, 0, None))[None, :] * inverse


def optimal_features(
    graph: GraphLike, k: int, *, eigenpairs: tuple[Any, Any] | None = None
) -> Any:
    """The unconstrained minimiser f* of :func:`population_loss`, as a table (n, k).

    f*(x) = u_x / sqrt(w_x) with u the top-k eigenvectors of Abar scaled by sqrt(gamma_i) and w_x
    the degrees [0, Section 3.2]. Any rotation f* R (R orthogonal k x k) is optimal too. Then
    E_w[f* f*^T] = diag(gamma_1..gamma_k) and E_w||f*||^2 = sum_{i<=k} gamma_i.

    Args:
        graph: a graph, or W (n, n) of any positive scale.
        eigenpairs: ``(gammas, vectors)`` of Abar, at least k, when the caller has them (else
            the graph's ``top_eigenpairs(k)``).
    """
    graph = as_graph(graph)
    gammas, vectors = graph.top_eigenpairs(k) if eigenpairs is None else eigenpairs
    return features_of_eigenpairs(gammas[:k], vectors[:, :k], graph.degrees)


def eigenvector_features(graph: GraphLike, vectors: np.ndarray) -> np.ndarray:
    """f(x) = v(x) / sqrt(w_x) (D^{-1/2} v) for eigenvectors v (n, k) of Abar: the optimal
    features f* without their sqrt(gamma_i) per column, which a linear head absorbs. On
    disconnected clusters the eigenvectors of the eigenvalue 1 are sqrt(w_x) times a function
    constant on each cluster, so these f are constant on each cluster while v is not (where
    degrees vary)."""
    w = as_graph(graph).degrees
    return vectors / np.sqrt(np.where(w > 0, w, 1.0))[:, None]


def max_optimal_sq_norm(
    graph: GraphLike, k: int, *, eigenpairs: tuple[Any, Any] | None = None
) -> float:
    """max_x ||f*(x)||^2 for the optimum f* of :func:`optimal_features`: the smallest mu whose
    ball holds this optimum, so that clip(z) can reach -sum_{i<=k} gamma_i^2.

    ||f*(x)||^2 = sum_{i<=k} gamma_i v_i(x)^2 / w_x is invariant to rotations f* R, and to the
    choice of basis inside every eigenspace that the top k contain whole. When k splits a
    degenerate eigenspace (gamma_k == gamma_{k+1}), the optimum is not unique beyond rotations:
    any k-dimensional choice inside that eigenspace is optimal, the row norms depend on which one
    the eigensolver returned, and a different choice may fit a smaller ball (never one below
    E_w||f*||^2 = sum_{i<=k} gamma_i). The value is then a sufficient mu, not the least one
    (:func:`optimal_sq_norm_range` bounds the least); the constrained solver
    (:func:`ball_constrained_optimum`) still finds the better choices.
    """
    features = _numpy(optimal_features(graph, k, eigenpairs=eigenpairs))
    return float((features**2).sum(1).max())


# --- Ties: when k splits an eigenspace ----------------------------------------------------------

#: γ_k and γ_{k+1} closer than this are one eigenvalue: the top-k eigenspace, and with it f*
#: beyond rotations, is not unique (k splits an eigenspace).
TIE_TOLERANCE = 1e-6


def tied_block(gammas: np.ndarray, k: int, tolerance: float = TIE_TOLERANCE) -> range | None:
    """The indices (0-based) of the eigenvalues equal to γ_k when k splits their eigenspace
    (γ_k = γ_{k+1} within ``tolerance``), else None. The block may run past ``gammas``' end
    when only the top eigenvalues are known.

    Args:
        gammas: eigenvalues of Abar, descending, at least k + 1 of them.
        k: the features' dimension.
    """
    gammas = np.asarray(gammas, dtype=np.float64)
    if len(gammas) <= k or gammas[k - 1] - gammas[k] > tolerance:
        return None
    equal = np.flatnonzero(np.abs(gammas - gammas[k - 1]) <= tolerance)
    return range(int(equal[0]), int(equal[-1]) + 1)


def optimal_sq_norm_range(
    gammas: np.ndarray, vectors: np.ndarray, w: np.ndarray, k: int
) -> tuple[float, float]:
    """[least, largest] of max_x ||f*(x)||^2 over every optimal f* (every basis of a tied block).

    Without a tie at k the two are equal. With one (block T of :func:`tied_block`, of which
    the top k take q = k - T.start eigenvectors), any optimum has
    ||f*(x)||^2 = a(x) + gamma_k ||Q v_T(x)||^2 / w_x, with a(x) the part of the eigenvectors
    before T and Q (q, |T|) orthonormal rows: between a(x) and a(x) + gamma_k ||v_T(x)||^2 / w_x.
    So max_x a(x) (and E_w||f*||^2 = sum_{i<=k} gamma_i, a weighted mean of the rows) bound the
    least maximum from below, max_x of the upper envelope bounds the largest from above.

    Args:
        gammas: (e,) eigenvalues of Abar, descending, e > k; vectors: (n, e) eigenvectors.
        w: (n,) the degrees normalised to sum 1.

    Returns:
        ``(low, high)``; ``high`` is ``inf`` when the tied block runs past the known eigenpairs.
    """
    block = tied_block(gammas, k)
    if block is None:
        value = float((features_of_eigenpairs(gammas[:k], vectors[:, :k], w) ** 2).sum(1).max())
        return value, value
    before = (features_of_eigenpairs(gammas[: block.start], vectors[:, : block.start], w) ** 2
              ).sum(1)  # a(x)
    low = max(float(before.max()), float(np.clip(gammas[:k], 0, None).sum()))
    if block.stop == len(gammas) and len(gammas) < len(w):  # the block may go on unseen
        return low, float("inf")
    inside = (vectors[:, block.start : block.stop] ** 2).sum(1) / w  # ||v_T(x)||^2 / w_x
    return low, float((before + max(float(gammas[k - 1]), 0.0) * inside).max())


# --- The ball of radius sqrt(mu) ----------------------------------------------------------------
# The loss of [0]'s code clips every projector output z to the ball ||z||^2 <= mu and divides by
# mu, so mu times it estimates L(clip(z)): the theory's f is clip(z) (not clip(z)/sqrt(mu)), and
# the optimum above is reachable only if it fits in that ball.

#: A ball optimum is certified when its loss is within this fraction of |loss| of its lower
#: bound (1e-3: a tenth of a percentage point of the share of the optimum the pages print).
CERTIFY_TOLERANCE = 1e-3


@dataclass(frozen=True)
class BallOptimum:
    """The minimum of L(f) over tables f with ||f(x)||^2 <= mu at every node.

    Attributes:
        loss: the best loss found (the reachable optimum, exact when ``binds`` is False).
        features: (n, k) the table f reaching it; every row inside the ball.
        unconstrained_loss: -sum_{i<=k} max(gamma_i, 0)^2, the optimum without the ball.
        lower_bound: a certified lower bound on the constrained optimum: the better of the
            Lagrangian dual at the solution's multipliers and the unconstrained optimum, so
            ``loss - lower_bound`` bounds the suboptimality.
        max_sq_norm: max_x ||f*(x)||^2 of the unconstrained optimum (:func:`max_optimal_sq_norm`).
        mu: the squared radius of the ball.
        iterations: projected-gradient iterations run (0 when the ball does not bind).
        converged: whether the stopping criterion was met within the iteration budget.
        binds: whether f* leaves the ball (mu < max_sq_norm), so that a solve was needed.
    """

    loss: float
    features: np.ndarray
    unconstrained_loss: float
    lower_bound: float
    max_sq_norm: float
    mu: float
    iterations: int
    converged: bool
    binds: bool

    @property
    def certified(self) -> bool:
        """Whether ``loss`` is the constrained optimum to within :data:`CERTIFY_TOLERANCE`
        (relative): only then is it called the optimum rather than the best loss found."""
        return self.loss - self.lower_bound <= CERTIFY_TOLERANCE * abs(self.loss)

    @property
    def cost(self) -> float:
        """How much the ball raises the optimum: loss - unconstrained_loss (>= 0)."""
        return self.loss - self.unconstrained_loss


def lagrangian_lower_bound(W: Matrix, k: int, mu: float, f: np.ndarray) -> float:
    """A lower bound on min { L(f) : ||f(x)||^2 <= mu }, certified by weak duality.

    For multipliers lambda_x >= 0, min_f L(f) + sum_x lambda_x (||f(x)||^2 - mu) is at most the
    constrained optimum. With u_x = sqrt(w_x) f(x) [0, Section 3.2] the inner problem is
    min_u ||B - u u^T||_F^2 - ||B||_F^2 with B = Abar - diag(lambda_x / (2 w_x)), whose value
    is -sum_{i<=k} max(beta_i, 0)^2 (Eckart-Young, beta the eigenvalues of B), so the bound is
    -sum_{i<=k} max(beta_i, 0)^2 - mu sum_x lambda_x. The multipliers are read off f by the KKT
    condition grad_x L + 2 lambda_x f(x) = 0; at the constrained optimum the bound is tight
    whenever that optimum is also the optimum of the relaxation over all PSD f f^T.

    Args:
        W: edge weights (n, n), dense.
        k: number of features.
        mu: squared radius of the ball.
        f: (n, k) a table inside the ball (the multipliers come from it; any f gives a bound).
    """
    W = _numpy(W)
    joint = W / W.sum()
    w = joint.sum(1)
    gradient = _row_gradient(f, joint, w)  # (n, k), grad_x L / w_x
    lam = np.clip(-w * (gradient * f).sum(1) / (2 * mu), 0, None)  # (n,) multipliers
    shift = np.divide(lam, 2 * w, out=np.zeros_like(w), where=w > 0)
    B = spectral.normalized_adjacency(joint) - np.diag(shift)  # nxn
    beta = np.linalg.eigvalsh(B)[::-1][:k]  # (LAPACK's subset driver fails on some spectra)
    return float(-(np.clip(beta, 0, None) ** 2).sum() - mu * lam.sum())


def _row_gradient(f: np.ndarray, joint: np.ndarray, w: np.ndarray) -> np.ndarray:
    """grad_x L(f) / w_x for every row: -4 (P f)_x + 4 M f(x), P = D^{-1} W, M = E_w[f f^T]."""
    M = (w[:, None] * f).T @ f  # kxk
    walk = np.divide(joint @ f, w[:, None], out=np.zeros_like(f), where=w[:, None] > 0)
    return -4 * walk + 4 * f @ M


def ball_constrained_optimum(
    W: Matrix,
    k: int,
    mu: float,
    *,
    tol: float = 1e-7,
    max_iterations: int = 3000,
    init: np.ndarray | None = None,
    seed: int = 0,
    eigenpairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> BallOptimum:
    """min L(f) over tables f (n, k) with ||f(x)||^2 <= mu at every node x [0, Section 3.2].

    If the unconstrained optimum f* (:func:`optimal_features`) fits in the ball (to a relative
    1e-9), it is returned with its exact loss -sum_{i<=k} gamma_i^2 and no solve. Otherwise
    accelerated projected gradient (FISTA with adaptive restart [1], :func:`fista_in_ball`) runs
    from the row-clipped f* (or ``init``), slightly perturbed.
    The gradient is preconditioned by 1/w_x per row, a scalar per row, so the projection stays
    the row-wise radial clip; the step comes from a curvature bound 4 (1 + 3 ||E_w[f f^T]||) and
    is halved whenever the loss does not decrease as much as that bound promises. It stops when
    the w-weighted norm of the gradient mapping (the projected-gradient step divided by the step
    size) falls below ``tol``. Cost per iteration: one product W f, O(n^2 k).

    The problem is not convex in f, but as a function of X = f f^T it is (a convex quadratic,
    linear constraints X_xx <= mu) up to the rank bound; ``lower_bound`` certifies the result.

    Args:
        W: edge weights (n, n), any positive scale (NumPy or torch; solved in NumPy float64).
        k: number of features, 1 <= k <= n.
        mu: squared radius of the ball, > 0.
        tol: stopping threshold on the gradient-mapping norm.
        max_iterations: iteration budget; ``converged`` is False if it runs out.
        init: optional (n, k) start (projected onto the ball first), e.g. a solution for a
            nearby mu.
        seed: seed of the start's perturbation (relative size 1e-3).
        eigenpairs: the top-k ``(gammas, vectors)`` of W's normalised adjacency when the caller
            has them already (:func:`reachable_optimum_curve` decomposes once for every mu).

    Returns:
        A :class:`BallOptimum`.
    """
    if mu <= 0:
        raise ValueError(f"mu must be > 0, got {mu}")
    W = _numpy(W)
    joint = W / W.sum()  # nxn, sums to 1
    w = joint.sum(1)  # (n,)
    # one eigendecomposition for f* and its loss
    gammas, vectors = eigenpairs if eigenpairs is not None else spectral.top_eigenpairs(joint, k)
    optimum = features_of_eigenpairs(gammas[:k], vectors[:, :k], w)
    unconstrained = optimal_loss(gammas[:k])
    max_sq = float((optimum**2).sum(1).max())
    if max_sq <= mu * (1 + 1e-9):  # f* fits (up to rounding: its rows are clipped by <= 1e-9)
        return BallOptimum(unconstrained, clip_to_ball(optimum, mu), unconstrained,
                           unconstrained, max_sq, mu, 0, True, False)
    start = optimum if init is None else _numpy(init)
    f, iterations, converged = fista_in_ball(lambda x: joint @ x, w, mu, start, tol,
                                            max_iterations, seed=seed)
    loss = float(population_loss(f, joint))
    # weak duality and the free optimum both bound the ball's optimum from below: keep the better
    bound = min(max(lagrangian_lower_bound(joint, k, mu, f), unconstrained), loss)
    return BallOptimum(loss, f, unconstrained, bound, max_sq, mu, iterations, converged, True)


def fista_in_ball(
    product: Callable[[np.ndarray], np.ndarray], w: np.ndarray, mu: float, start: np.ndarray,
    tol: float, max_iterations: int, *, seed: int = 0,
) -> tuple[np.ndarray, int, bool]:
    """Accelerated projected gradient [1] for :func:`ball_constrained_optimum`: (f, iterations,
    ok), from ``start`` (n, k) projected onto the ball and nudged by seeded noise.

    ``product`` is f ↦ W f with W summing to 1 and ``w`` (n,) its marginal: a dense matrix's,
    or a matrix-free graph's (:meth:`~explorer.graphs.interface.FiniteGraph.weights_product`). The
    metric is <a, b>_w = sum_x w_x a_x . b_x, in which the preconditioned gradient
    grad_x L / w_x is the gradient; W f is computed once per iteration (the extrapolated point's
    product is the same combination of the iterates' products, since W is linear).
    """

    def loss_of(f: np.ndarray, walk: np.ndarray) -> float:  # walk = D^{-1} W f
        M = (w[:, None] * f).T @ f  # kxk
        return float(-2 * (w[:, None] * f * walk).sum() + (M * M).sum())

    def walk_of(f: np.ndarray) -> np.ndarray:
        return np.divide(product(f), w[:, None], out=np.zeros_like(f), where=w[:, None] > 0)

    # clip(f*) can sit on a saddle (when k splits a degenerate eigenspace, rows that the chosen
    # basis leaves at 0 get no gradient); a small seeded perturbation lets the descent leave it
    start = clip_to_ball(np.asarray(start, dtype=np.float64), mu)
    noise = np.random.default_rng(seed).normal(size=start.shape)
    start = start + 1e-3 * np.sqrt(mu / start.shape[1]) * noise
    f = clip_to_ball(start, mu)
    walk = walk_of(f)
    value = loss_of(f, walk)
    y, walk_y, t = f, walk, 1.0
    M = (w[:, None] * f).T @ f
    step = 1.0 / (4.0 * (1.0 + 3.0 * np.linalg.norm(M, 2)))
    for iteration in range(1, max_iterations + 1):
        M_y = (w[:, None] * y).T @ y
        gradient = -4 * walk_y + 4 * y @ M_y  # (n, k) in the w-metric
        value_y = float(-2 * (w[:, None] * y * walk_y).sum() + (M_y * M_y).sum())
        while True:
            candidate = clip_to_ball(y - step * gradient, mu)
            delta = candidate - y
            walk_c = walk_of(candidate)
            value_c = loss_of(candidate, walk_c)
            model = value_y + (w[:, None] * gradient * delta).sum() + (
                w[:, None] * delta**2).sum() / (2 * step)
            if value_c <= model + 1e-12 * abs(value_y) or step < 1e-12:
                break
            step /= 2
        mapping = np.sqrt((w[:, None] * delta**2).sum()) / step
        if value_c > value and t > 1.0:  # adaptive restart: drop the momentum, step from f
            y, walk_y, t = f, walk, 1.0
            continue
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_next
        y = candidate + beta * (candidate - f)
        walk_y = walk_c + beta * (walk_c - walk)
        f, walk, value, t = candidate, walk_c, value_c, t_next
        if mapping < tol:
            return f, iteration, True
    return f, max_iterations, False


def reachable_optima(W: Matrix, k: int, mus: np.ndarray, *,
                     eigenpairs: tuple[np.ndarray, np.ndarray] | None = None,
                     **solver: object) -> list[BallOptimum]:  # fmt: skip
    """The ball-constrained optimum of L for every mu in ``mus``, in the order of ``mus``.

    Solved from the largest mu down, each solve started from the previous solution (projected
    onto the smaller ball); ``eigenpairs``, the top-k ``(gammas, vectors)`` of W's normalised
    adjacency when the caller has them, else computed once; ``solver`` goes to
    :func:`ball_constrained_optimum`.
    """
    mus = np.asarray(mus, dtype=np.float64)
    results: list[BallOptimum | None] = [None] * len(mus)
    previous = None
    W = _numpy(W)
    if eigenpairs is None:
        eigenpairs = spectral.top_eigenpairs(W / W.sum(), k)  # shared by every mu
    for i in np.argsort(-mus):
        result = ball_constrained_optimum(
            W, k, float(mus[i]), init=previous, eigenpairs=eigenpairs, **solver
        )
        results[i], previous = result, result.features
    return [r for r in results if r is not None]


def reachable_optimum_curve(W: Matrix, k: int, mus: np.ndarray, **solver: object) -> np.ndarray:
    """The ball-constrained optimum's loss for every mu in ``mus``: (len(mus),) float64
    (:func:`reachable_optima`)."""
    return np.array([r.loss for r in reachable_optima(W, k, mus, **solver)], dtype=np.float64)
