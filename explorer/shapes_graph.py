"""The exact augmentation graph of the ``shapes`` dataset, built from its finite factor grid.

Nodes are the distinct images of a (sub-)grid of factor tuples; an augmentation resamples the
nuisance factors (HaoChen et al. 2021 [0, Section 3.1]). The generic machinery (normalised
adjacency, eigenpairs, population loss) is :mod:`explorer.graph`.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from explorer.data.shapes import SHAPES_GRID, ShapesGrid
from explorer.graph import augmentation_graph, graph_spectrum

#: The default sub-grid, as indices into ``SHAPES_GRID``'s factor values: all six shapes; the
#: centre and four corner positions; the smallest and largest scale; rotations 0, 24 and 48
#: degrees; three foreground and two background colours. 1,080 factor tuples, 840 distinct images.
DEFAULT_SUBGRID: dict[str, tuple[int, ...]] = {
    "shape": (0, 1, 2, 3, 4, 5),
    "position": (0, 4, 12, 20, 24),
    "scale": (0, 2),
    "rotation": (0, 2, 4),
    "fg_color": (0, 2, 3),
    "bg_color": (0, 2),
}


@dataclass(frozen=True)
class ShapesGraph:
    """The exact augmentation graph of a sub-grid of ``shapes``; nodes are distinct images.

    Attributes:
        weights: W (n, n) float64, symmetric, sums to 1: w(x, x') of the augmentation model.
        labels: (n,) int64 class of each node (its shape index into ``grid.shapes``).
        factors: (n, 6) int64 one factor tuple per node (indices into ``grid``'s factor values).
        multiplicity: (n,) int64 how many factor tuples of the sub-grid render to the node's image.
        grid: The factor grid the tuples index.
    """

    weights: np.ndarray
    labels: np.ndarray
    factors: np.ndarray
    multiplicity: np.ndarray
    grid: ShapesGrid

    @property
    def num_nodes(self) -> int:
        return len(self.labels)

    @property
    def classes(self) -> list[str]:
        return list(self.grid.shapes)

    def images(self, nodes: np.ndarray | None = None) -> torch.Tensor:
        """uint8 images (m, 3, S, S) of ``nodes`` (default: every node), rendered by the grid."""
        chosen = self.factors if nodes is None else self.factors[np.asarray(nodes)]
        return self.grid.render_batch(chosen)


def resample_kernel(n: int, p: float) -> np.ndarray:
    """(n, n) kernel that keeps a value with probability 1 - p, else draws one of n uniformly."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {p}")
    return (1.0 - p) * np.eye(n) + p / n


def shapes_augmentation_graph(
    grid: ShapesGrid = SHAPES_GRID,
    subgrid: dict[str, tuple[int, ...]] | None = None,
    *,
    crop_p: float = 0.5,
    rotate_p: float = 0.5,
    color_p: float = 0.8,
    shape_p: float = 0.0,
    max_nodes: int = 5000,
) -> ShapesGraph:
    """The exact augmentation graph of ``shapes`` restricted to a sub-grid of its factors.

    Natural data: factor tuples drawn uniformly from the sub-grid (``subgrid`` maps each factor
    name to the indices kept; missing names keep :data:`DEFAULT_SUBGRID`'s). Augmentation: a
    discrete model of the ``shapes`` recipe, each part independent of the others:

    - crop: with probability ``crop_p`` the (position, scale) pair is redrawn uniformly (a random
      resized crop moves and rescales the shape);
    - rotation: with probability ``rotate_p`` the rotation is redrawn uniformly;
    - colour: with probability ``color_p`` the (foreground, background) pair is redrawn uniformly
      (hue jitter over the full circle changes both colours at once);
    - shape: with probability ``shape_p`` the shape is redrawn uniformly (0 by default: no
      augmentation changes the class, so each class is a connected component; a small value
      models crops so aggressive the shape becomes ambiguous: nearly disconnected components).

    "Redrawn uniformly" may return the same value. The kernel is a Kronecker product of
    :func:`resample_kernel` s, so W is one too over factor tuples; tuples that render to the same
    image (circles and rings at every rotation) are then merged into one node, summing their
    weights, since nodes of the paper's graph are augmented *images* [0, Section 3.1].

    Closed form, a check for the tests: each factor kernel K = (1-p) I + p J/n has K^2 with
    eigenvalues 1 and (1-p)^2, and degrees are uniform within a class, so with ``shape_p = 0``
    Abar has eigenvalue 1 once per class and next max((1-p)^2) over the factors that vary.

    Returns:
        A :class:`ShapesGraph`; raises ``ValueError`` above ``max_nodes`` factor tuples.
    """
    chosen = {**DEFAULT_SUBGRID, **(subgrid or {})}
    unknown = set(chosen) - set(grid.FACTORS)
    if unknown:
        raise ValueError(f"unknown factors {sorted(unknown)}; factors are {grid.FACTORS}")
    values = [np.asarray(chosen[name], dtype=np.int64) for name in grid.FACTORS]
    for name, vals, size in zip(grid.FACTORS, values, grid.sizes, strict=True):
        if len(vals) == 0 or vals.min() < 0 or vals.max() >= size or len(set(vals)) != len(vals):
            raise ValueError(f"{name} indices must be distinct and in [0, {size}), got {vals}")
    counts = [len(v) for v in values]
    num_tuples = int(np.prod(counts))
    if num_tuples > max_nodes:
        raise ValueError(f"{num_tuples} factor tuples in the sub-grid, above max_nodes={max_nodes}")
    shape_n, position_n, scale_n, rotation_n, fg_n, bg_n = counts
    # One kernel per independent part, in the row-major order of the tuples (factor order of
    # grid.FACTORS: position and scale are adjacent, as are the two colours).
    kernels = [
        resample_kernel(shape_n, shape_p),
        resample_kernel(position_n * scale_n, crop_p),
        resample_kernel(rotation_n, rotate_p),
        resample_kernel(fg_n * bg_n, color_p),
    ]
    # Uniform natural data factorises too, so W is the Kronecker product of per-part graphs.
    weights = np.ones((1, 1))
    for kernel in kernels:
        uniform = np.full(len(kernel), 1.0 / len(kernel))
        weights = np.kron(weights, augmentation_graph(uniform, kernel))
    mesh = np.meshgrid(*values, indexing="ij")
    tuples = np.stack([m.ravel() for m in mesh], axis=1)  # (T, 6), row-major like the kron
    # Merge tuples that render to the same image; nodes keep the order of first appearance.
    pixels = grid.render_batch(tuples).reshape(num_tuples, -1).numpy()
    _, first, inverse = np.unique(pixels, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    node = rank[inverse.ravel()]  # (T,) node of each tuple
    membership = np.zeros((num_tuples, len(order)))
    membership[np.arange(num_tuples), node] = 1.0
    merged = membership.T @ weights @ membership  # (n, n)
    factors = tuples[first[order]]
    if not np.array_equal(tuples[:, 0], factors[node, 0]):
        raise AssertionError("two shapes rendered to the same image")
    return ShapesGraph(
        weights=merged,
        labels=factors[:, 0].copy(),
        factors=factors,
        multiplicity=np.bincount(node, minlength=len(order)).astype(np.int64),
        grid=grid,
    )


@functools.lru_cache(maxsize=4)
def default_shapes_spectrum(k: int = 256) -> np.ndarray:
    """The top ``k`` eigenvalues of the normalised adjacency of the default ``shapes`` sub-grid's
    exact augmentation graph (:func:`shapes_augmentation_graph`), cached: about 10 s once."""
    shapes = shapes_augmentation_graph()
    return graph_spectrum(shapes.weights, min(k, shapes.num_nodes))
