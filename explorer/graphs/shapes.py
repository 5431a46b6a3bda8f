"""The exact augmentation graph of the ``shapes`` dataset, built from its finite factor grid.

Nodes are the distinct images of a (sub-)grid of factor tuples; an augmentation resamples the
nuisance factors (HaoChen et al. 2021 [0, Section 3.1]). A :class:`ShapesGraph` is a dense
graph (:class:`explorer.graphs.interface.DenseGraph`): the generic machinery (normalised
adjacency, eigenpairs) is :mod:`explorer.graphs.spectral`'s, the population loss and the optimum
:mod:`explorer.graphs.optimum`'s.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesGrid, ShapesKernel, grid_values
from explorer.graphs.interface import DenseGraph

#: The default sub-grid (:data:`explorer.data.shapes.SUBGRID`): 1,080 tuples, 840 images.
DEFAULT_SUBGRID = SUBGRID


@dataclass(frozen=True)
class ShapesGraph(DenseGraph):
    """The exact augmentation graph of a sub-grid of ``shapes``; nodes are distinct images.

    A dense :class:`~explorer.graphs.interface.FiniteGraph`: ``degrees``, ``weights_product``
    (W F, W normalised to sum 1) and ``top_eigenpairs`` (a dense ``eigh``) are
    :class:`DenseGraph`'s.

    Attributes:
        weights: W (n, n) float64, symmetric, sums to 1: w(x, x') of the augmentation model.
        labels: (n,) int64 class of each node (its shape index into ``grid.shapes``).
        factors: (n, 6) int64 one factor tuple per node (indices into ``grid``'s factor values).
        multiplicity: (n,) int64 how many factor tuples of the sub-grid render to the node's image.
        grid: The factor grid the tuples index.
        kernel: the augmentation kernel W was built from.
        natural: the natural tuples (N, 6) whose empirical distribution W uses (None: uniform
            over the kernel's grid).
    """

    labels: np.ndarray
    factors: np.ndarray
    multiplicity: np.ndarray
    grid: ShapesGrid
    kernel: ShapesKernel | None = None
    natural: np.ndarray | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.grid.shapes)

    def natural_augmentation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The augmentation kernel from natural data to nodes: ``(A, p, y)``.

        A (m, n): A(x | x̄) for each of the m distinct natural tuples x̄ (rows sum to 1), p (m,)
        their probabilities, y (m,) their labels (the natural datum's shape). W = Aᵀ diag(p) A
        up to the sum (HaoChen et al. 2021, Section 3.1): the pieces that the downstream
        guarantee (:mod:`explorer.graphs.guarantee`) needs and W alone does not keep.
        """
        if self.kernel is None:
            raise ValueError("this graph was built without its kernel")
        tuples = self.kernel.tuples()
        positions = (np.arange(len(tuples)) if self.natural is None
                     else self.kernel.tuple_positions(self.natural))
        support, counts = np.unique(positions, return_counts=True)
        node, _ = _image_nodes(self.grid, self.kernel.values)
        rows = tuple_kernel(self.kernel, self.grid)[support]  # (m, T)
        merged = np.zeros((len(support), self.num_nodes))
        np.add.at(merged.T, node, rows.T)  # sum over tuples rendering to the same image
        return merged, counts / counts.sum(), tuples[support, 0].copy()

    def images(self, nodes: np.ndarray | None = None) -> torch.Tensor:
        """uint8 images (m, 3, S, S) of ``nodes`` (default: every node), rendered by the grid."""
        chosen = self.factors if nodes is None else self.factors[np.asarray(nodes)]
        return self.grid.render_batch(chosen)


def tuple_kernel(kernel: ShapesKernel, grid: ShapesGrid = SHAPES_GRID) -> np.ndarray:
    """A(x | x̄) over factor tuples, (T, T), rows summing to 1: the parts' Kronecker product K
    (each part redrawn with its probability), then the class change C where the view is
    ambiguous (:meth:`ShapesKernel.change_matrix`): K C."""
    full = np.ones((1, 1))
    for part in kernel.part_kernels():
        full = np.kron(full, part)
    if kernel.class_change_p > 0:
        full = full @ kernel.change_matrix(grid)
    return full


def kernel_weights(
    kernel: ShapesKernel, natural: np.ndarray | None = None, grid: ShapesGrid = SHAPES_GRID
) -> np.ndarray:
    """w over factor tuples: W = Aᵀ diag(p) A, (T, T), summing to 1 [0, Section 3.1].

    A is :func:`tuple_kernel` over :meth:`ShapesKernel.tuples` and p the natural data's
    distribution over tuples: uniform over the (sub-)grid by default, else the empirical
    distribution of the ``natural`` tuples (N, 6) (a training split: then W is the population
    graph of training on that split).
    """
    parts = kernel.part_kernels()
    if natural is None:  # uniform p factorises: W is the Kronecker product of the parts' graphs
        weights = np.ones((1, 1))
        for part in parts:
            weights = np.kron(weights, part.T @ part / len(part))
        if kernel.class_change_p > 0:  # (K C)ᵀ K C / T = Cᵀ (Kᵀ K / T) C
            change = kernel.change_matrix(grid)
            weights = change.T @ weights @ change
        return weights
    full = tuple_kernel(kernel, grid)
    counts = np.bincount(kernel.tuple_positions(natural), minlength=len(full))
    p = counts / counts.sum()
    return full.T @ (p[:, None] * full)


def shapes_augmentation_graph(
    grid: ShapesGrid = SHAPES_GRID,
    subgrid: dict[str, tuple[int, ...]] | None = None,
    *,
    crop_p: float = 0.5,
    rotate_p: float = 0.5,
    color_p: float = 0.8,
    shape_p: float = 0.0,
    class_change_p: float = 0.0,
    natural: np.ndarray | None = None,
    max_nodes: int = 5000,
) -> ShapesGraph:
    """The exact augmentation graph of ``shapes`` restricted to a sub-grid of its factors.

    Natural data: factor tuples drawn uniformly from the sub-grid (``subgrid`` maps each factor
    name to the indices kept; missing names keep :data:`DEFAULT_SUBGRID`'s), or from the given
    ``natural`` tuples (N, 6) with their empirical frequencies. Augmentation: the
    :class:`~explorer.data.shapes.ShapesKernel` with the given probabilities (crop: position and
    scale redrawn; rotation; colour: the (fg, bg) pair; shape: the class, 0 by default; then
    the class change where the view is ambiguous, ``class_change_p``, 0 by default).
    "Redrawn uniformly" may return the same value. Tuples that render to the same image (circles
    and rings at every rotation) are merged into one node, summing their weights, since nodes of
    the paper's graph are augmented *images* [0, Section 3.1].

    Closed form, a check for the tests: each part's kernel K = (1-p) I + p J/n has K^2 with
    eigenvalues 1 and (1-p)^2, and with uniform natural data degrees are uniform within a class,
    so with ``shape_p = class_change_p = 0`` Abar has eigenvalue 1 once per class and next
    max((1-p)^2) over the parts that vary.

    Returns:
        A :class:`ShapesGraph`; raises ``ValueError`` above ``max_nodes`` factor tuples.
    """
    values = grid_values(grid, {**DEFAULT_SUBGRID, **(subgrid or {})})
    kernel = ShapesKernel(values, crop_p=crop_p, rotate_p=rotate_p, color_p=color_p,
                          shape_p=shape_p, class_change_p=class_change_p)
    num_tuples = int(np.prod([len(v) for v in values]))
    if num_tuples > max_nodes:
        raise ValueError(f"{num_tuples} factor tuples in the sub-grid, above max_nodes={max_nodes}")
    weights = kernel_weights(kernel, natural, grid)
    tuples = kernel.tuples()  # (T, 6), row-major like the Kronecker products
    node, first = _image_nodes(grid, values)
    membership = np.zeros((num_tuples, len(first)))
    membership[np.arange(num_tuples), node] = 1.0
    merged = membership.T @ weights @ membership  # (n, n)
    factors = tuples[first]
    if not np.array_equal(tuples[:, 0], factors[node, 0]):
        raise AssertionError("two shapes rendered to the same image")
    return ShapesGraph(
        weights=merged,
        labels=factors[:, 0].copy(),
        factors=factors,
        multiplicity=np.bincount(node, minlength=len(first)).astype(np.int64),
        grid=grid,
        kernel=kernel,
        natural=None if natural is None else np.asarray(natural, dtype=np.int64),
    )


@functools.lru_cache(maxsize=8)
def _image_nodes(
    grid: ShapesGrid, values: tuple[tuple[int, ...], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Merge the tuples that render to the same image: (node of each tuple (T,), first tuple of
    each node (n,)), nodes in the order of first appearance. Cached: rendering every tuple is
    the slow part of a graph, and it does not depend on the augmentation's probabilities."""
    tuples = ShapesKernel(values).tuples()  # (T, 6)
    pixels = grid.render_batch(tuples).reshape(len(tuples), -1).numpy()
    _, first, inverse = np.unique(pixels, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    node, first = rank[inverse.ravel()], first[order]
    node.flags.writeable = first.flags.writeable = False  # shared by every caller of the cache
    return node, first

