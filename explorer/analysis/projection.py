"""2-D projections of features, aligned across checkpoints so that points do not jump.

PCA: the top two principal axes, each axis's sign flipped to agree with the previous checkpoint's
layout. UMAP (McInnes, Healy, Melville 2018, https://arxiv.org/abs/1802.03426): each checkpoint's
fit starts from the previous checkpoint's layout of the same points (``init=previous``) and is
then mapped onto it by the closest similarity transform, so that a point moves only as far as its
neighbourhood changed. umap-learn is imported lazily: it takes
about 15 s to import and 30-45 s of JIT compilation on its first fit.
"""

from __future__ import annotations

import numpy as np

PROJECTIONS = ("pca", "umap")


def pca_2d(features: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Project centred features onto their top two principal axes.

    Args:
        features: array of shape (N, D).
        previous: the previous checkpoint's layout (N, 2), or None; each axis's sign is chosen to
            correlate positively with it.

    Returns:
        float32 array of shape (N, 2).
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(x.T @ x)  # D x D: cheaper than an SVD of the N x D matrix
    layout = x @ vectors[:, ::-1][:, :2]
    if layout.shape[1] < 2:  # one-dimensional features: pad the second axis
        layout = np.pad(layout, ((0, 0), (0, 2 - layout.shape[1])))
    if previous is not None and previous.shape == layout.shape:
        signs = np.sign(np.sum(layout * (previous - previous.mean(axis=0)), axis=0))
        layout = layout * np.where(signs == 0, 1.0, signs)
    return layout.astype(np.float32)


def umap_2d(
    features: np.ndarray,
    previous: np.ndarray | None = None,
    *,
    n_neighbors: int = 15,
    n_epochs: int = 200,
    seed: int | None = None,
) -> np.ndarray:
    """UMAP of the features (cosine metric), started from ``previous`` when given.

    Args:
        features: array of shape (N, D), N > n_neighbors.
        previous: layout (N, 2) of the same points at the previous checkpoint, or None (start
            from the PCA layout). The result is mapped onto its start by the closest similarity
            transform.
        n_neighbors: UMAP's neighbourhood size.
        n_epochs: optimisation epochs.
        seed: fixes UMAP's randomness (and makes it single-threaded); None: parallel.

    Returns:
        float32 array of shape (N, 2).
    """
    import umap  # lazily: slow to import

    x = np.asarray(features, dtype=np.float32)
    aligned = previous is not None and previous.shape == (len(x), 2)
    aligned = aligned and bool(np.isfinite(previous).all())
    # The PCA layout is a cheap, deterministic start (umap-learn's spectral one costs more than
    # the fit itself on 5,000 points); 200 epochs suffice from a good start (umap-learn's own
    # default above 10,000 points).
    init = np.asarray(previous if aligned else pca_2d(x), dtype=np.float64)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(x) - 1),
        metric="cosine",
        init=init,
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=-1 if seed is None else 1,  # a seed makes umap-learn single-threaded anyway
    )
    layout = np.asarray(reducer.fit_transform(x), dtype=np.float64)
    return align_to(layout, init).astype(np.float32)


def align_to(layout: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The similarity transform of ``layout`` (rotation or reflection, uniform scale, shift)
    closest to ``reference`` in least squares (orthogonal Procrustes, Schönemann 1966).

    UMAP rescales its initial layout to a 10 x 10 box before optimising, so even a fit started
    from the previous layout comes back at another scale and offset; this undoes that.

    Args:
        layout, reference: arrays of shape (N, 2) of the same points.
    """
    a = layout - layout.mean(axis=0)
    b = reference - reference.mean(axis=0)
    u, sigma, vt = np.linalg.svd(a.T @ b)
    rotation = u @ vt
    scale = sigma.sum() / max(float((a * a).sum()), 1e-30)
    return scale * a @ rotation + reference.mean(axis=0)


def warm_up_umap() -> None:
    """Compile umap-learn's numba code once (about a minute on 2 cores) on a random problem.

    4,200 points: above 4,096 umap-learn switches from exact neighbours to pynndescent, whose
    code has its own (long) compilation.
    """
    umap_2d(np.random.default_rng(0).normal(size=(4200, 8)).astype(np.float32), n_epochs=5)
