"""One interface for every finite augmentation graph, and the dense graph that implements it.

A graph of the theory [0, Section 3.1] is known to the rest of the package through four things:
its number of nodes n, its degrees w (n,) (the marginal of the joint distribution W of a
positive pair, summing to 1), the product W·F with W normalised to sum 1, and the top
eigenpairs of Ā = D^{-1/2} W D^{-1/2}. That is all the population loss, E_w[f fᵀ], the optimum
f* and the ball's solver need (:mod:`explorer.graphs.optimum`, each written once over
:class:`FiniteGraph`), whatever holds W:

- :class:`DenseGraph`: W as an (n, n) array (NumPy or torch), any positive scale; the ``shapes``
  sub-grid's :class:`explorer.graphs.shapes.ShapesGraph` and the cluster graphs'
  :class:`explorer.graphs.clusters.LabGraph` are dense graphs with labels;
- :class:`explorer.graphs.kronecker.KronGraph`: the whole ``shapes`` grid, matrix-free.

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from explorer.graphs import spectral


@runtime_checkable
class FiniteGraph(Protocol):
    """A finite augmentation graph as the theory reads it (HaoChen et al. 2021, Section 3.1)."""

    @property
    def num_nodes(self) -> int:
        """n, the augmented data."""
        ...

    @property
    def degrees(self) -> Any:
        """(n,) w_x = Σ_x' w(x, x') of W normalised to sum 1: the marginal of a positive pair."""
        ...

    def weights_product(self, F: Any) -> Any:
        """W F for F (n, d) or (n,), W normalised to sum 1; same shape as F."""
        ...

    def top_eigenpairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k largest eigenvalues of Ā, descending (k,), and orthonormal eigenvectors (n, k)."""
        ...


@dataclass(frozen=True, eq=False)
class DenseGraph:
    """A graph given by its edge weights W (n, n), NumPy or torch, any positive scale.

    Its degrees and products divide by the sum of W once, so the scale does not matter: the
    products a torch W gives are torch, differentiable through F.

    Attributes:
        weights: W (n, n), symmetric, non-negative.
    """

    weights: Any

    @property
    def num_nodes(self) -> int:
        return int(self.weights.shape[0])

    @functools.cached_property
    def total(self) -> Any:
        """Σ_{x,x'} w(x, x'): 1 for a joint distribution."""
        return self.weights.sum()

    @functools.cached_property
    def degrees(self) -> Any:
        """(n,) w = W·1 of W normalised to sum 1: the marginal of a positive pair."""
        return self.weights.sum(1) / self.total

    def weights_product(self, F: Any) -> Any:
        """W F with W normalised to sum 1, for F (n, d) or (n,)."""
        return self.weights @ F / self.total

    def top_eigenpairs(self, k: int) -> tuple[Any, Any]:
        """The top k of Ā by a dense ``eigh`` (:func:`explorer.graphs.spectral.top_eigenpairs`):
        every eigenvalue of a repeated one, in the solver's basis."""
        return spectral.top_eigenpairs(self.weights, k)


def as_graph(graph: FiniteGraph | np.ndarray | torch.Tensor) -> FiniteGraph:
    """``graph`` itself, or a bare W (n, n) (NumPy or torch) as a :class:`DenseGraph`."""
    if isinstance(graph, np.ndarray | torch.Tensor):
        return DenseGraph(graph)
    return graph
