"""2-D projections of features, aligned across checkpoints so that points do not jump.

PCA: the top two principal axes, each axis's sign flipped to agree with the previous checkpoint's
layout. UMAP (McInnes, Healy, Melville 2018, https://arxiv.org/abs/1802.03426): each checkpoint's
fit starts from the previous checkpoint's layout of the same points (``init=previous``) and is
then mapped onto it by the closest similarity transform, so that a point moves only as far as its
neighbourhood changed. umap-learn is imported lazily (about 2 s), and its numba code is compiled
once per installation, not once per process (:func:`umap_module`).
"""

from __future__ import annotations

import contextlib
import functools
import sys
import warnings
from types import ModuleType

import numpy as np

PROJECTIONS = ("pca", "umap")

#: From this many points umap-learn looks for approximate neighbours (pynndescent) instead of
#: computing every distance.
SMALL_DATA = 4096

#: Optimisation epochs of a layout started from PCA (umap-learn's own default above 10,000
#: points), and of one started from the previous checkpoint's layout of the same points: that
#: start is already close, so half the epochs keep its neighbourhoods (trustworthiness
#: within 0.01 of a full fit's, tests/test_projection.py) at 60 % of the cost. Read at call
#: time, so a benchmark can set the old value back.
FULL_EPOCHS, SEEDED_EPOCHS = 200, 100


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
    n_epochs: int | None = None,
    seed: int | None = None,
) -> np.ndarray:
    """UMAP of the features (cosine metric), started from ``previous`` when given.

    Args:
        features: array of shape (N, D), N > n_neighbors.
        previous: layout (N, 2) of the same points at the previous checkpoint, or None (start
            from the PCA layout). The result is mapped onto its start by the closest similarity
            transform.
        n_neighbors: UMAP's neighbourhood size.
        n_epochs: optimisation epochs; None: :data:`SEEDED_EPOCHS` from ``previous``,
            :data:`FULL_EPOCHS` from PCA.
        seed: fixes UMAP's randomness (and makes it single-threaded); None: parallel.

    Returns:
        float32 array of shape (N, 2).
    """
    umap = umap_module()
    x = np.asarray(features, dtype=np.float32)
    aligned = previous is not None and previous.shape == (len(x), 2)
    aligned = aligned and bool(np.isfinite(previous).all())
    # The PCA layout is a cheap, deterministic start (umap-learn's spectral one costs more than
    # the fit itself on 5,000 points); 200 epochs suffice from it, fewer from the last layout.
    init = np.asarray(previous if aligned else pca_2d(x), dtype=np.float64)
    if n_epochs is None:
        n_epochs = SEEDED_EPOCHS if aligned else FULL_EPOCHS
    k = min(n_neighbors, len(x) - 1)
    # From 4,096 points umap-learn finds neighbours with pynndescent, whose code cannot be
    # cached (15 s of compilation in every process on 2 cores); exact ones cost less than a
    # second at these sizes, and are exact. Below, umap-learn computes every distance itself.
    knn = (None, None, None) if len(x) < SMALL_DATA else (*cosine_neighbours(x, k), None)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=k,
        metric="cosine",
        init=init,
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=-1 if seed is None else 1,  # a seed makes umap-learn single-threaded anyway
        precomputed_knn=knn,
    )
    with warnings.catch_warnings():  # no search index: umap-learn warns that transform() is off
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
        layout = np.asarray(reducer.fit_transform(x), dtype=np.float64)
    return align_to(layout, init).astype(np.float32)


def cosine_neighbours(
    features: np.ndarray, k: int, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's k nearest points in cosine distance 1 − cos(x, y), itself first (distance 0),
    as umap-learn's ``precomputed_knn`` takes them.

    Args:
        features: (N, D); a zero row is at distance 1 from every point.
        k: neighbours per point, itself included (k ≤ N).
        chunk: rows of the (chunk, N) distance block held at once.

    Returns:
        indices (N, k) int64 and distances (N, k) float32, nearest first.
    """
    x = np.asarray(features, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    indices = np.empty((len(x), k), dtype=np.int64)
    distances = np.empty((len(x), k), dtype=np.float32)
    for start in range(0, len(x), chunk):
        rows = np.arange(start, min(start + chunk, len(x)))
        block = np.clip(1.0 - unit[rows] @ unit.T, 0.0, 2.0)  # (chunk, N)
        block[np.arange(len(rows)), rows] = -1.0  # itself first, whatever its norm
        nearest = np.argpartition(block, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(block, nearest, 1), axis=1, kind="stable")
        indices[rows] = np.take_along_axis(nearest, order, 1)
        distances[rows] = np.take_along_axis(block, indices[rows], 1)
    distances[:, 0] = 0.0
    return indices, distances


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


@functools.cache
def umap_module() -> ModuleType:
    """umap-learn, with its numba functions cached on disk.

    umap-learn compiles most of its numba code without ``cache=True``, so every new process
    (each ``explorer analyze``, each analysis the dashboard starts) spent 10-15 s on 2 cores
    compiling its first fit again. Turning numba's own cache on for those functions, before
    their first call, compiles them once per installation (next to umap-learn's sources, or in
    numba's user-wide cache where those are read-only); numba keys each entry by the source
    file and the machine, so an upgraded umap-learn compiles afresh.
    """
    import umap  # lazily: slow to import
    from numba.core.dispatcher import Dispatcher

    for name, module in list(sys.modules.items()):
        if name.partition(".")[0] not in ("umap", "pynndescent"):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher):
                # no writable place for a cache: that function compiles per process, as before
                with contextlib.suppress(RuntimeError):
                    value.enable_caching()
    return umap


def warm_up_umap() -> None:
    """Compile umap-learn's numba code (about a minute on 2 cores, once per installation: see
    :func:`umap_module`) on a random problem.

    4,200 points: above 4,096 umap-learn switches from exact neighbours to pynndescent, whose
    code has its own (long) compilation.
    """
    umap_2d(np.random.default_rng(0).normal(size=(4200, 8)).astype(np.float32), n_epochs=5)
