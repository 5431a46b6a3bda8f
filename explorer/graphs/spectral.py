"""Finite augmentation graphs: W, the normalised adjacency, eigenpairs, spectral embeddings.

The population augmentation graph of HaoChen et al. [0, Section 3.1] has the augmented data as
nodes and, as the weight of an edge, the probability that its two ends are two augmentations of
one natural datum:

    w(x, x') = sum_xbar p(xbar) A(x | xbar) A(x' | xbar).

With degrees w_x = sum_x' w(x, x') and D = diag(w_x), the normalised adjacency is
Abar = D^{-1/2} W D^{-1/2} and the Laplacian L = I - Abar [0, Section 3.1]. The paper's main
identity [0, Section 3.2]: with u_x = sqrt(w_x) f(x) (the rows of F),

    ||Abar - F F^T||_F^2 = ||Abar||_F^2 + L(f),

L the population spectral contrastive loss. Its minimum, f* = D^{-1/2} V Gamma^{1/2}, the
ball-constrained optimum and the best scale are :mod:`explorer.graphs.optimum`'s; the interface
every graph gives (dense here, matrix-free elsewhere) is :mod:`explorer.graphs.interface`'s.

Every function takes NumPy arrays or torch tensors and returns the same kind; the ones that only
need the degrees or eigenvectors also take ``scipy.sparse`` matrices.
:mod:`explorer.graphs.shapes` builds the exact augmentation graph of the ``shapes`` dataset.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Ng, Jordan, Weiss, "On Spectral Clustering: Analysis and an Algorithm", NeurIPS 2001.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

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


def inverse_sqrt(d: Array) -> Array:
    """1/sqrt(d) elementwise, 0 where d == 0 (isolated nodes keep a zero row in Abar): the
    diagonal of D^{-1/2} for degrees d (n,)."""
    if _is_torch(d):
        return torch.where(d > 0, d.clamp_min(1e-300).rsqrt(), torch.zeros_like(d))
    safe = np.where(d > 0, d, 1.0)
    return np.where(d > 0, 1.0 / np.sqrt(safe), 0.0)


def normalized_adjacency(W: Array | sp.spmatrix) -> Array | sp.spmatrix:
    """Abar = D^{-1/2} W D^{-1/2}, shape (n, n); invariant to rescaling W [0, Section 3.1]."""
    inv = inverse_sqrt(degrees(W))
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
    optimal f are ``embedding_from_factor(F, W)``
    (:func:`explorer.graphs.optimum.optimal_features`).
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
    from sklearn.cluster import KMeans  # here: scikit-learn costs a second to import

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
    return F * inverse_sqrt(w)[:, None]


def matrix_factorization_loss(F: Array, W: Array) -> Array:
    """||Abar - F F^T||_F^2 for F of shape (n, k) [0, Section 3.2]; a scalar of F's kind."""
    residual = normalized_adjacency(W) - F @ F.T  # nxn
    return (residual**2).sum()


def sample_positive_pairs(
    W: np.ndarray, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``batch_size`` positive pairs (x, x+) drawn from w(x, x') / sum(W), as two (B,) index arrays.

    Row i of the first array and of the second are a positive pair; rows i != j are independent,
    each drawn from the marginal w_x, which is what makes the mini-batch spectral contrastive loss
    an unbiased estimate of :func:`explorer.graphs.optimum.population_loss`.
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
