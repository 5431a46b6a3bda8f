"""Finite augmentation graphs: W, the normalised adjacency, spectral embeddings and exact losses.

The population augmentation graph of HaoChen et al. [0, Section 3.1] has the augmented data as
nodes and, as the weight of an edge, the probability that its two ends are two augmentations of
one natural datum:

    w(x, x') = sum_xbar p(xbar) A(x | xbar) A(x' | xbar).

With degrees w_x = sum_x' w(x, x') and D = diag(w_x), the normalised adjacency is
Abar = D^{-1/2} W D^{-1/2} and the Laplacian L = I - Abar [0, Section 3.1]. The paper's main
identity [0, Section 3.2]: with u_x = sqrt(w_x) f(x) (the rows of F),

    ||Abar - F F^T||_F^2 = ||Abar||_F^2 + L(f),
    L(f) = -2 sum_{x,x'} w(x,x') f(x)^T f(x') + sum_{x,x'} w_x w_x' (f(x)^T f(x'))^2,

where L is the population spectral contrastive loss, which needs W normalised to sum 1 (w is the
joint distribution of a positive pair, w_x its marginal). By Eckart-Young-Mirsky the minimum is
-sum_{i<=k} gamma_i^2 (for PSD Abar, as every augmentation graph is), reached when F spans the
top-k eigenvectors of Abar, each scaled by sqrt(gamma_i), up to a rotation.

Every function takes NumPy arrays or torch tensors and returns the same kind; the ones that only
need the degrees or eigenvectors also take ``scipy.sparse`` matrices.
:mod:`explorer.graphs.shapes` builds the exact augmentation graph of the ``shapes`` dataset.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Ng, Jordan, Weiss, "On Spectral Clustering: Analysis and an Algorithm", NeurIPS 2001.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch
from sklearn.cluster import KMeans

from explorer.losses import clip_to_ball

Array = TypeVar("Array", np.ndarray, torch.Tensor)

#: Above this many nodes a sparse W is decomposed with ``eigsh`` (top k only), not densely.
DENSE_LIMIT = 4000


def _is_torch(x: object) -> bool:
    return isinstance(x, torch.Tensor)


def _check_square(W: object, name: str = "W") -> None:
    shape = W.shape  # type: ignore[attr-defined]
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix, got shape {tuple(shape)}")


def augmentation_graph(p_natural: Array, A: Array) -> Array:
    """Edge weights w(x, x') = sum_xbar p(xbar) A(x|xbar) A(x'|xbar) [0, Section 3.1].

    Args:
        p_natural: (m,) distribution of the natural data xbar (non-negative, sums to 1).
        A: (m, n) augmentation kernel, row xbar is the distribution A(.|xbar) over n augmented data.

    Returns:
        W of shape (n, n): symmetric, non-negative, summing to sum(p_natural).
    """
    if A.ndim != 2 or p_natural.ndim != 1 or p_natural.shape[0] != A.shape[0]:
        raise ValueError(
            f"expected p_natural (m,) and A (m, n), got {tuple(p_natural.shape)} and "
            f"{tuple(A.shape)}"
        )
    return A.T @ (p_natural[:, None] * A)  # nxm @ mxn


def degrees(W: Array | sp.spmatrix) -> Array:
    """Degrees w_x = sum_x' w(x, x'): (n,), same kind as ``W`` (NumPy for sparse input)."""
    _check_square(W)
    if sp.issparse(W):
        return np.asarray(W.sum(axis=1)).ravel()
    return W.sum(1)


def _inverse_sqrt(d: Array) -> Array:
    """1/sqrt(d) elementwise, 0 where d == 0 (isolated nodes keep a zero row in Abar)."""
    if _is_torch(d):
        return torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), torch.zeros_like(d))
    safe = np.where(d > 0, d, 1.0)
    return np.where(d > 0, 1.0 / np.sqrt(safe), 0.0)


def normalized_adjacency(W: Array | sp.spmatrix) -> Array | sp.spmatrix:
    """Abar = D^{-1/2} W D^{-1/2}, shape (n, n); invariant to rescaling W [0, Section 3.1]."""
    inv = _inverse_sqrt(degrees(W))
    if sp.issparse(W):
        scale = sp.diags(inv)
        return (scale @ W @ scale).tocsr()
    return W * inv[:, None] * inv[None, :]


def laplacian(W: Array | sp.spmatrix) -> Array | sp.spmatrix:
    """Normalised Laplacian L = I - D^{-1/2} W D^{-1/2}, shape (n, n)."""
    abar = normalized_adjacency(W)
    n = W.shape[0]
    if sp.issparse(abar):
        return (sp.identity(n, format="csr") - abar).tocsr()
    if _is_torch(abar):
        return torch.eye(n, dtype=abar.dtype, device=abar.device) - abar
    return np.eye(n) - abar


def top_eigenpairs(W: Array | sp.spmatrix, k: int) -> tuple[Array, Array]:
    """The k largest eigenvalues of Abar (descending) and their orthonormal eigenvectors.

    Equivalently the k smallest eigenvalues 1 - gamma_i of the Laplacian. A sparse W with more
    than :data:`DENSE_LIMIT` nodes uses ``scipy.sparse.linalg.eigsh``; otherwise a dense ``eigh``.

    Returns:
        (gammas (k,), vectors (n, k)); NumPy for NumPy or sparse input, torch for torch.
    """
    n = W.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    abar = normalized_adjacency(W)
    if _is_torch(abar):
        values, vectors = torch.linalg.eigh(abar)  # ascending
        return values.flip(0)[:k], vectors.flip(1)[:, :k]
    if sp.issparse(abar):
        if n > DENSE_LIMIT and k < n - 1:
            values, vectors = spla.eigsh(abar, k=k, which="LA")
            order = np.argsort(values)[::-1]
            return values[order], vectors[:, order]
        abar = abar.toarray()
    values, vectors = np.linalg.eigh(abar)
    return values[::-1][:k].copy(), vectors[:, ::-1][:, :k].copy()


def graph_spectrum(W: Array | sp.spmatrix, k: int | None = None) -> Array:
    """The eigenvalues gamma_1 >= gamma_2 >= ... of Abar: all, or the top ``k``. gamma_1 = 1."""
    return top_eigenpairs(W, W.shape[0] if k is None else k)[0]


def spectral_embedding(W: Array | sp.spmatrix, k: int, *, scale: bool = False) -> Array:
    """Rows of the top-k eigenvectors of Abar: the embedding (n, k) of every node.

    With ``scale=True`` column i is multiplied by sqrt(gamma_i) (negative gammas clipped to 0):
    then F F^T is the best rank-k PSD approximation of Abar (Eckart-Young-Mirsky), i.e. F
    minimises :func:`matrix_factorization_loss` [0, Section 3.2]. The features of the paper's
    optimal f are ``embedding_from_factor(F, W)``.
    """
    values, vectors = top_eigenpairs(W, k)
    if not scale:
        return vectors
    if _is_torch(values):
        return vectors * values.clamp_min(0).sqrt()[None, :]
    return vectors * np.sqrt(np.clip(values, 0, None))[None, :]


def spectral_clustering(
    W: Array | sp.spmatrix | None, k: int, *, seed: int = 0, vectors: np.ndarray | None = None,
    n_init: int = 10,
) -> Array:
    """Ng-Jordan-Weiss spectral clustering [1]: k-means on row-normalised top-k eigenvectors.

    ``vectors`` (n, k): the top-k eigenvectors of Abar when the caller has them already (then
    ``W`` may be None: a graph known only as an operator).

    Returns:
        Cluster labels (n,) int64 in [0, k), same kind as ``W`` (NumPy for sparse input).
    """
    if vectors is None:
        if W is None:
            raise ValueError("give W or its top-k eigenvectors")
        vectors = spectral_embedding(W, k)
    rows = vectors.detach().cpu().numpy() if _is_torch(vectors) else np.asarray(vectors)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows = rows / np.where(norms > 0, norms, 1.0)
    labels = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit_predict(rows)
    labels = labels.astype(np.int64)
    return torch.from_numpy(labels) if _is_torch(W) else labels


def factor_from_embedding(f: Array, W: Array) -> Array:
    """u_x = sqrt(w_x) f(x) with w_x the degrees of W normalised to sum 1: (n, k) -> (n, k)."""
    w = degrees(W) / W.sum()
    return f * (w.sqrt() if _is_torch(w) else np.sqrt(w))[:, None]


def embedding_from_factor(F: Array, W: Array) -> Array:
    """Inverse of :func:`factor_from_embedding`: f(x) = u_x / sqrt(w_x), (n, k) -> (n, k)."""
    w = degrees(W) / W.sum()
    return F * _inverse_sqrt(w)[:, None]


def matrix_factorization_loss(F: Array, W: Array) -> Array:
    """||Abar - F F^T||_F^2 for F of shape (n, k) [0, Section 3.2]; a scalar of F's kind."""
    residual = normalized_adjacency(W) - F @ F.T  # nxn
    return (residual**2).sum()


def population_spectral_loss(f: Array, W: Array) -> Array:
    """The population spectral contrastive loss, computed exactly [0, Section 3.2].

    L(f) = -2 sum_{x,x'} w(x,x') f(x)^T f(x') + sum_{x,x'} w_x w_x' (f(x)^T f(x'))^2, with W first
    normalised to sum 1 (a joint distribution of positive pairs; w_x is its marginal). Then
    ``matrix_factorization_loss(factor_from_embedding(f, W), W)`` equals L(f) + ||Abar||_F^2.

    Args:
        f: features (n, k), row x is f(x).
        W: edge weights (n, n), any positive scale.

    Returns:
        A scalar of f's kind (differentiable for torch).
    """
    if f.ndim != 2 or f.shape[0] != W.shape[0]:
        raise ValueError(f"f must be (n, k) with n = {W.shape[0]}, got {tuple(f.shape)}")
    joint = W / W.sum()  # nxn, sums to 1
    return population_loss_of_product(f, joint @ f, joint.sum(1))


def population_loss_of_product(f: Array, product: Array, w: Array) -> Array:
    """L(f) from the one product it needs of W: -2 tr(f^T W f) + ||E_w[f f^T]||_F^2.

    The single implementation of the population loss [0, Section 3.2] for every graph: a dense
    W (:func:`population_spectral_loss`) or a matrix-free one (``weights_product`` of
    :class:`explorer.graphs.kronecker.KronGraph`), since sum_{x,x'} w_x w_x' (f(x)^T f(x'))^2 is the
    squared Frobenius norm of E_w[f f^T] = f^T diag(w) f.

    Args:
        f: features (n, k).
        product: W f (n, k), W summing to 1.
        w: (n,) the degrees of that W (its marginal).

    Returns:
        A scalar of f's kind (differentiable for torch).
    """
    moment = (f.T * w) @ f  # kxk, E_w[f f^T]
    return -2 * (f * product).sum() + (moment**2).sum()


def features_of_eigenpairs(gammas: Array, vectors: Array, w: Array) -> Array:
    """f* = D^{-1/2} V diag(sqrt(gamma)) (n, k): the features of the top-k optimum [0, Section 3.2]
    from eigenpairs of Abar, the one place that writes this formula.

    Args:
        gammas: (k,) eigenvalues of Abar, descending (negative ones clipped to 0).
        vectors: (n, k) their orthonormal eigenvectors.
        w: (n,) the degrees of W normalised to sum 1.
    """
    if _is_torch(gammas):
        return vectors * gammas.clamp_min(0).sqrt()[None, :] * _inverse_sqrt(w)[:, None]
    return vectors * np.sqrt(np.clip(gammas, 0, None))[None, :] * _inverse_sqrt(w)[:, None]


def optimal_population_loss(W: Array, k: int) -> float:
    """The minimum of L(f) over f: R^n -> R^k, -sum_{i<=k} max(gamma_i, 0)^2 (Eckart-Young)."""
    values = top_eigenpairs(W, k)[0]
    values = values.detach().cpu().numpy() if _is_torch(values) else np.asarray(values)
    return float(-(np.clip(values, 0, None) ** 2).sum())


def sample_positive_pairs(
    W: np.ndarray, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` positive pairs (x, x+) drawn from w(x, x') / sum(W), as two (B,) index arrays.

    Row i of the first array and of the second are a positive pair; rows i != j are independent,
    each drawn from the marginal w_x, which is what makes the mini-batch spectral contrastive loss
    an unbiased estimate of :func:`population_spectral_loss`.
    """
    joint = np.asarray(W, dtype=np.float64).ravel()
    flat = rng.choice(joint.size, size=batch_size, p=joint / joint.sum())
    return np.divmod(flat, W.shape[0])


def block_graph(
    sizes: tuple[int, ...] = (3, 3, 3), within: float = 1.0, between: float = 0.0
) -> np.ndarray:
    """A graph of ``len(sizes)`` blocks: weight ``within`` inside a block, ``between`` across.

    The seed example of the tutorials: with ``between=0`` the blocks are disconnected components
    (eigenvalue 1 once per block); a small ``between`` makes them nearly disconnected. Self-loops
    are included (an augmentation can return the image itself). Normalised to sum 1.

    Returns:
        W of shape (n, n), n = sum(sizes); ``np.repeat(arange(len(sizes)), sizes)`` are the labels.
    """
    labels = np.repeat(np.arange(len(sizes)), sizes)
    W = np.where(labels[:, None] == labels[None, :], within, between).astype(np.float64)
    return W / W.sum()


# --- The ball of radius sqrt(mu) --------------------------------------------------------------
# The loss of [0]'s code clips every projector output z to the ball ||z||^2 <= mu and divides by
# mu, so mu times it estimates L(clip(z)): the theory's f is clip(z) (not clip(z)/sqrt(mu)), and
# the optimum above is reachable only if it fits in that ball.


def _numpy(x: object) -> np.ndarray:
    if _is_torch(x):
        return x.detach().cpu().numpy()  # type: ignore[attr-defined]
    if sp.issparse(x):
        return x.toarray()  # type: ignore[attr-defined]
    return np.asarray(x, dtype=np.float64)


def optimal_features(W: Array, k: int) -> Array:
    """The unconstrained minimiser f* of :func:`population_spectral_loss`, as a table (n, k).

    f*(x) = u_x / sqrt(w_x) with u the top-k eigenvectors of Abar scaled by sqrt(gamma_i)
    (:func:`spectral_embedding` with ``scale=True``) and w_x the degrees of W normalised to sum
    1 [0, Section 3.2]. Any rotation f* R (R orthogonal k x k) is optimal too. Then
    E_w[f* f*^T] = diag(gamma_1..gamma_k) and E_w||f*||^2 = sum_{i<=k} gamma_i.
    """
    gammas, vectors = top_eigenpairs(W, k)
    return features_of_eigenpairs(gammas, vectors, degrees(W) / W.sum())


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


def max_optimal_sq_norm(W: Array, k: int) -> float:
    """max_x ||f*(x)||^2 for the optimum f* of :func:`optimal_features`: the smallest mu whose
    ball holds this optimum, so that clip(z) can reach -sum_{i<=k} gamma_i^2.

    ||f*(x)||^2 = sum_{i<=k} gamma_i v_i(x)^2 / w_x is invariant to rotations f* R, and to the
    choice of basis inside every eigenspace that the top k contain whole. When k splits a
    degenerate eigenspace (gamma_k == gamma_{k+1}), the optimum is not unique beyond rotations:
    any k-dimensional choice inside that eigenspace is optimal, the row norms depend on which one
    the eigensolver returned, and a different choice may fit a smaller ball (never one below
    E_w||f*||^2 = sum_{i<=k} gamma_i). The value is then a sufficient mu, not the least one; the
    constrained solver (:func:`ball_constrained_optimum`) still finds the better choices.
    """
    features = _numpy(optimal_features(W, k))
    return float((features**2).sum(1).max())


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


def lagrangian_lower_bound(W: Array, k: int, mu: float, f: np.ndarray) -> float:
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
    B = normalized_adjacency(joint) - np.diag(shift)  # nxn
    beta = np.linalg.eigvalsh(B)[::-1][:k]  # (LAPACK's subset driver fails on some spectra)
    return float(-(np.clip(beta, 0, None) ** 2).sum() - mu * lam.sum())


def _row_gradient(f: np.ndarray, joint: np.ndarray, w: np.ndarray) -> np.ndarray:
    """grad_x L(f) / w_x for every row: -4 (P f)_x + 4 M f(x), P = D^{-1} W, M = E_w[f f^T]."""
    M = (w[:, None] * f).T @ f  # kxk
    walk = np.divide(joint @ f, w[:, None], out=np.zeros_like(f), where=w[:, None] > 0)
    return -4 * walk + 4 * f @ M


def ball_constrained_optimum(
    W: Array,
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
    accelerated projected gradient (FISTA with adaptive restart; Beck and Teboulle 2009,
    O'Donoghue and Candes 2015) runs from the row-clipped f* (or ``init``), slightly perturbed.
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
    gammas, vectors = eigenpairs if eigenpairs is not None else top_eigenpairs(joint, k)
    optimum = features_of_eigenpairs(gammas, vectors, w)
    unconstrained = float(-(np.clip(gammas, 0, None) ** 2).sum())
    max_sq = float((optimum**2).sum(1).max())
    if max_sq <= mu * (1 + 1e-9):  # f* fits (up to rounding: its rows are clipped by <= 1e-9)
        return BallOptimum(unconstrained, clip_to_ball(optimum, mu), unconstrained,
                           unconstrained, max_sq, mu, 0, True, False)
    start = clip_to_ball(optimum if init is None else _numpy(init), mu)
    # clip(f*) can sit on a saddle (when k splits a degenerate eigenspace, rows that the chosen
    # basis leaves at 0 get no gradient); a small seeded perturbation lets the descent leave it
    noise = np.random.default_rng(seed).normal(size=start.shape)
    start = start + 1e-3 * np.sqrt(mu / k) * noise
    f, iterations, converged = fista_in_ball(lambda x: joint @ x, w, mu, start, tol,
                                            max_iterations)
    loss = float(population_spectral_loss(f, joint))
    # weak duality and the free optimum both bound the ball's optimum from below: keep the better
    bound = min(max(lagrangian_lower_bound(joint, k, mu, f), unconstrained), loss)
    return BallOptimum(loss, f, unconstrained, bound, max_sq, mu, iterations, converged, True)


def fista_in_ball(
    product: Callable[[np.ndarray], np.ndarray], w: np.ndarray, mu: float, start: np.ndarray,
    tol: float, max_iterations: int,
) -> tuple[np.ndarray, int, bool]:
    """Accelerated projected gradient for :func:`ball_constrained_optimum`: (f, iterations, ok).

    ``product`` is f ↦ W f with W summing to 1 and ``w`` (n,) its marginal: a dense matrix's,
    or a matrix-free graph's (:meth:`explorer.graphs.kronecker.KronGraph.weights_product`). The
    metric is <a, b>_w = sum_x w_x a_x . b_x, in which the preconditioned gradient
    grad_x L / w_x is the gradient; W f is computed once per iteration (the extrapolated point's
    product is the same combination of the iterates' products, since W is linear).
    """

    def loss_of(f: np.ndarray, walk: np.ndarray) -> float:  # walk = D^{-1} W f
        M = (w[:, None] * f).T @ f  # kxk
        return float(-2 * (w[:, None] * f * walk).sum() + (M * M).sum())

    def walk_of(f: np.ndarray) -> np.ndarray:
        return np.divide(product(f), w[:, None], out=np.zeros_like(f), where=w[:, None] > 0)

    f = clip_to_ball(np.array(start, dtype=np.float64), mu)
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


def reachable_optima(W: Array, k: int, mus: np.ndarray, *,
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
        eigenpairs = top_eigenpairs(W / W.sum(), k)  # shared by every mu
    for i in np.argsort(-mus):
        result = ball_constrained_optimum(
            W, k, float(mus[i]), init=previous, eigenpairs=eigenpairs, **solver
        )
        results[i], previous = result, result.features
    return [r for r in results if r is not None]


def reachable_optimum_curve(W: Array, k: int, mus: np.ndarray, **solver: object) -> np.ndarray:
    """The ball-constrained optimum's loss for every mu in ``mus``: (len(mus),) float64
    (:func:`reachable_optima`)."""
    return np.array([r.loss for r in reachable_optima(W, k, mus, **solver)], dtype=np.float64)
