"""The exact ``shapes`` augmentation graph at any scale, matrix-free (issue 20).

:func:`explorer.graphs.shapes.shapes_augmentation_graph` forms W densely, which stops at a few
thousand nodes; the whole grid has 64,800 factor tuples rendering to 46,800 distinct images, and
its dense W would be 46,800² float64 (17.5 GB). Nothing downstream needs W itself, only products
W·F: the population loss, E_w[f fᵀ] and the eigenpairs of Ā. This module computes those exactly
from the structure of the augmentation (HaoChen et al. 2021 [0, Section 3.1]):

    W = Mᵀ Cᵀ Kᵀ diag(p) K C M            (n, n), summing to 1,

- p (T,): the natural data's distribution over the T factor tuples of the (sub-)grid (uniform, or
  the empirical distribution of given natural tuples, e.g. a training split);
- K (T, T) = K_shape ⊗ K_crop ⊗ K_rotation ⊗ K_colour: each part of the tuple redrawn
  independently (:meth:`ShapesKernel.part_kernels`), so K·X applies each part's small (m, m)
  kernel along its own axis of X seen as an (m_shape, m_crop, m_rotation, m_colour, d) tensor;
- C (T, T): the class change where the view is ambiguous (:meth:`ShapesKernel.change_matrix`),
  at most two entries a row (keep the tuple, or swap the shape for its look-alike): sparse. It
  couples the shape with the scale and rotation, so it is not a Kronecker factor, but it is
  applied exactly;
- M (T, n): 0/1, the image node each tuple renders to (tuples that render to the same image,
  circles and rings at every rotation, are one node [0, Section 3.1]).

So W·F costs O(T · Σ m_part · d) for general part kernels and O(T · d · #parts) for the
"keep or redraw uniformly" kernels used here (a part kernel (1 − q) I + q J/m is applied as a
mean along its axis), plus O(T · d) for C and M; memory O(T · d).

A :class:`KronGraph` is a :class:`explorer.graphs.interface.FiniteGraph`, so the population
loss, E_w[f fᵀ] and f* are :mod:`explorer.graphs.optimum`'s, as for a dense graph. Conventions
match the dense path exactly: W is normalised to sum 1 (the joint distribution of a positive
pair), w = W·1 its marginal (the degrees), Ā = D^{-1/2} W D^{-1/2} with 0 rows for isolated
nodes (:func:`explorer.graphs.spectral.normalized_adjacency`), and nodes numbered as
:func:`explorer.graphs.shapes._image_nodes` numbers them (first appearance in row-major tuple
order).

References:
    [0] HaoChen, Wei, Gaidon, Ma, "Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss", NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Knyazev, "Toward the Optimal Preconditioned Eigensolver: Locally Optimal Block
        Preconditioned Conjugate Gradient Method", SIAM J. Sci. Comput. 23(2), 2001.
    [2] Lehoucq, Sorensen, Yang, "ARPACK Users' Guide", SIAM 1998 (implicitly restarted
        Lanczos, scipy's ``eigsh``).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

from explorer.data.shapes import LOOKALIKE, SHAPES_GRID, ShapesGrid, ShapesKernel, grid_values
from explorer.graphs import spectral

#: Columns of F pushed through the operator at a time: bounds its working memory to a few
#: (T, COLUMN_CHUNK) float64 arrays (17 MB each on the whole grid) whatever d is.
COLUMN_CHUNK = 32

#: Natural supports up to this many tuples are decomposed through their Gram matrix
#: (:meth:`KronGraph.support_eigenpairs`: 8,000² float64 is 512 MB); larger ones by LOBPCG.
GRAM_LIMIT = 8000

#: Rendered tuples hashed per chunk by :func:`image_nodes` (bounds its memory at ~50 MB).
RENDER_CHUNK = 4096


@functools.lru_cache(maxsize=8)
def image_nodes(
    grid: ShapesGrid, values: tuple[tuple[int, ...], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The image node of every tuple of a (sub-)grid: ``(node (T,), first (n,))`` int64.

    Equal to :func:`explorer.graphs.shapes._image_nodes` (nodes are distinct rendered images,
    numbered by first appearance in row-major tuple order; ``first`` the first tuple of each),
    but rendered in chunks of :data:`RENDER_CHUNK` and merged by hashing each image's bytes, so
    the whole grid takes seconds and tens of MB instead of 20 s and 2 GB (``np.unique`` over a
    (64,800, 3,072) array). Cached; the arrays are read-only.
    """
    tuples = ShapesKernel(values).tuples()  # (T, 6)
    seen: dict[bytes, int] = {}
    node = np.empty(len(tuples), dtype=np.int64)
    first: list[int] = []
    for start in range(0, len(tuples), RENDER_CHUNK):
        pixels = grid.render_batch(tuples[start : start + RENDER_CHUNK]).numpy()
        for offset, image in enumerate(pixels.reshape(len(pixels), -1)):
            key = image.tobytes()
            index = seen.get(key)
            if index is None:
                index = seen[key] = len(first)
                first.append(start + offset)
            node[start + offset] = index
    first_array = np.asarray(first, dtype=np.int64)
    node.flags.writeable = first_array.flags.writeable = False
    return node, first_array


def sparse_change_matrix(kernel: ShapesKernel, grid: ShapesGrid = SHAPES_GRID) -> sp.csr_matrix:
    """C (T, T) of :meth:`ShapesKernel.change_matrix` as a sparse CSR matrix (≤ 2 entries a
    row): a view keeps its tuple with 1 − q or takes its look-alike's with q
    (:meth:`ShapesKernel.change_probabilities`); the identity when ``class_change_p`` is 0."""
    tuples = kernel.tuples()
    q = kernel.change_probabilities(tuples, grid)  # (T,)
    rows = [np.arange(len(tuples))]
    cols = [np.arange(len(tuples))]
    data = [1.0 - q]
    moved = np.flatnonzero(q > 0)
    if len(moved):
        swapped = tuples[moved].copy()
        swapped[:, 0] = np.asarray(LOOKALIKE)[swapped[:, 0]]
        rows.append(moved)
        cols.append(kernel.tuple_positions(swapped))
        data.append(q[moved])
    T = len(tuples)
    return sp.csr_matrix(
        (np.concatenate(data), (np.concatenate(rows), np.concatenate(cols))), shape=(T, T)
    )


def _keep_or_redraw(part: np.ndarray) -> tuple[float, float] | None:
    """(a, b) when ``part`` (m, m) is a I + b J (keep, or redraw uniformly), else None."""
    m = len(part)
    if m == 1:
        return float(part[0, 0]), 0.0
    a, b = float(part[0, 0] - part[0, 1]), float(part[0, 1])
    return (a, b) if np.allclose(part, a * np.eye(m) + b, rtol=0.0, atol=1e-15) else None


def _apply_parts(parts: list[np.ndarray], X: np.ndarray, transpose: bool) -> np.ndarray:
    """(⊗ parts) X, or its transpose, for X (T, d), T = Π m_i, row-major over the parts.

    Each part's kernel acts along its own axis of X seen as (m_1, ..., m_P, d): a mean along the
    axis for a I + b J (O(T·d)), a batched matmul otherwise (O(T·m·d)).
    """
    sizes = [len(part) for part in parts]
    d = X.shape[1]
    out = X
    for axis, part in enumerate(parts):
        m = sizes[axis]
        before, after = math.prod(sizes[:axis]), math.prod(sizes[axis + 1 :]) * d
        view = out.reshape(before, m, after)
        structured = _keep_or_redraw(part)
        if structured is not None:
            a, b = structured
            if a == 1.0 and b == 0.0:
                continue  # the identity (a part never redrawn)
            out = a * view + b * view.sum(axis=1, keepdims=True)
        else:
            out = np.matmul(part.T if transpose else part, view)  # (m, m) @ (before, m, after)
    return np.ascontiguousarray(out).reshape(X.shape)


@dataclass(frozen=True, eq=False)
class KronGraph:
    """The exact augmentation graph of a ``shapes`` (sub-)grid as an operator on node tables: a
    :class:`~explorer.graphs.interface.FiniteGraph` (``num_nodes``, ``degrees``,
    ``weights_product``, ``top_eigenpairs``) that never forms W.

    Attributes:
        kernel: the augmentation kernel (its ``values`` are the sub-grid).
        grid: the renderer.
        natural_p: (T,) the natural data's distribution over tuples (sums to 1).
        node: (T,) the image node of each tuple; ``first`` (n,) the first tuple of each node.
        parts: the parts' (m, m) kernels, Kronecker factors of K in tuple order.
        change: C (T, T) sparse, or None when ``class_change_p`` is 0.
        merge: Mᵀ (n, T) sparse 0/1: row x sums the tuples rendering to node x.
        degrees: (n,) w = W·1, the marginal of the joint distribution W (sums to 1).
        matvecs: how many columns the operator has been applied to (a cost counter).
    """

    kernel: ShapesKernel
    grid: ShapesGrid
    natural_p: np.ndarray
    node: np.ndarray
    first: np.ndarray
    parts: list[np.ndarray]
    change: sp.csr_matrix | None
    merge: sp.csr_matrix
    degrees: np.ndarray = field(default_factory=lambda: np.zeros(0))
    matvecs: list[int] = field(default_factory=lambda: [0])

    @property
    def num_nodes(self) -> int:
        return len(self.first)

    @property
    def num_tuples(self) -> int:
        return len(self.node)

    @property
    def factors(self) -> np.ndarray:
        """(n, 6) one factor tuple per node (the first tuple rendering to its image)."""
        return self.kernel.tuples()[self.first]

    @property
    def labels(self) -> np.ndarray:
        """(n,) int64 the class (shape index) of each node."""
        return self.factors[:, 0].copy()

    def weights_product(self, F: np.ndarray) -> np.ndarray:
        """W F for F (n, d) or (n,): Mᵀ Cᵀ Kᵀ diag(p) K C M F, same shape as F, never forming W."""
        F = np.asarray(F, dtype=np.float64)
        flat = F.reshape(len(F), -1)
        if flat.shape[0] != self.num_nodes:
            raise ValueError(f"F must have {self.num_nodes} rows, got {F.shape}")
        self.matvecs[0] += flat.shape[1]
        out = np.empty_like(flat)
        for start in range(0, flat.shape[1], COLUMN_CHUNK):
            chunk = slice(start, start + COLUMN_CHUNK)
            out[:, chunk] = self._weights_chunk(flat[:, chunk])
        return out.reshape(F.shape)

    def _weights_chunk(self, F: np.ndarray) -> np.ndarray:
        """W F for F (n, c), c ≤ :data:`COLUMN_CHUNK`."""
        X = F[self.node]  # M F: (T, c)
        if self.change is not None:
            X = self.change @ X  # C
        X = _apply_parts(self.parts, X, transpose=False)  # K
        X *= self.natural_p[:, None]  # diag(p)
        X = _apply_parts(self.parts, X, transpose=True)  # Kᵀ
        if self.change is not None:
            X = self.change.T @ X  # Cᵀ
        return np.asarray(self.merge @ X)  # Mᵀ: sum over a node's tuples

    @property
    def classes(self) -> list[str]:
        return list(self.grid.shapes)

    def images(self, nodes: np.ndarray | None = None) -> torch.Tensor:
        """uint8 images (m, 3, S, S) of ``nodes`` (default: every node), rendered by the grid."""
        chosen = self.factors if nodes is None else self.factors[np.asarray(nodes)]
        return self.grid.render_batch(chosen)

    # -- the natural data's side: W = Bᵀ B, B = diag(√p) K C M (T, n) ---------------------------
    @property
    def support(self) -> np.ndarray:
        """(m,) the tuples the natural data put mass on (p > 0), ascending."""
        return np.flatnonzero(self.natural_p > 0)

    def natural_product(self, F: np.ndarray) -> np.ndarray:
        """A F (m, c) for F (n, c): A(x | x̄) = (K C M)[x̄, x] from each support tuple x̄ to the
        nodes, rows summing to 1 (the kernel of :meth:`ShapesGraph.natural_augmentation`)."""
        X = np.asarray(F, dtype=np.float64)[self.node]  # M F: (T, c)
        if self.change is not None:
            X = self.change @ X
        return _apply_parts(self.parts, X, transpose=False)[self.support]

    def natural_transpose_product(self, Y: np.ndarray) -> np.ndarray:
        """Aᵀ Y (n, c) for Y (m, c) over the support tuples (the transpose of
        :meth:`natural_product`): Mᵀ Cᵀ Kᵀ Y, Y zero off the support."""
        X = np.zeros((self.num_tuples, Y.shape[1]))
        X[self.support] = Y
        X = _apply_parts(self.parts, X, transpose=True)
        if self.change is not None:
            X = self.change.T @ X
        return np.asarray(self.merge @ X)

    def label_mass(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mass, p, y)``: the label mass Aᵀ diag(p) Y (n, r) that the downstream guarantee
        needs (:func:`explorer.graphs.guarantee.label_mass`, A never formed), the support tuples'
        probabilities p (m,) and their labels y (m,), the natural datum's shape."""
        p = self.natural_p[self.support]
        y = self.kernel.tuples()[self.support, 0]
        return self.natural_transpose_product(p[:, None] * np.eye(len(self.classes))[y]), p, y

    def support_eigenpairs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k largest eigenpairs of Ā through the (m, m) Gram matrix of the support, exactly.

        Ā = D^{-1/2} Bᵀ B D^{-1/2} = Φᵀ Φ with Φ = diag(√p) A D^{-1/2} (m, n) over the m support
        tuples, so Ā's nonzero eigenvalues are those of G = Φ Φᵀ (m, m), and G u = γ u gives
        Ā's unit eigenvector Φᵀ u / √γ. G is formed column by column with the operator (m
        columns through both halves) and decomposed by LAPACK: for a 6,000-tuple training
        split of the whole grid this is about 15 s to form and 15 s to decompose, with
        residuals at round-off, against about 70 s for LOBPCG's 1e-8. Memory O(m²).
        """
        m = len(self.support)
        if not 1 <= k <= m:
            raise ValueError(f"k must be in [1, {m}] (the natural data's support), got {k}")
        root_p = np.sqrt(self.natural_p[self.support])[:, None]
        scale = self.inverse_sqrt_degrees()[:, None]

        def phi_t(Y: np.ndarray) -> np.ndarray:  # Φᵀ Y: (m, c) -> (n, c)
            return scale * self.natural_transpose_product(root_p * Y)

        gram = np.empty((m, m))
        for start in range(0, m, 2 * COLUMN_CHUNK):
            columns = np.arange(start, min(start + 2 * COLUMN_CHUNK, m))
            unit = np.zeros((m, len(columns)))
            unit[columns, np.arange(len(columns))] = 1.0
            gram[:, columns] = root_p * self.natural_product(scale * phi_t(unit))
        self.matvecs[0] += 2 * m
        values, vectors = scipy.linalg.eigh((gram + gram.T) / 2, subset_by_index=[m - k, m - 1],
                                            driver="evr")
        values, vectors = values[::-1].copy(), vectors[:, ::-1]
        if values[-1] <= 1e-10 * max(values[0], 1e-300):
            raise ValueError(f"Ā has fewer than {k} nonzero eigenvalues: ask for fewer")
        return values, phi_t(vectors) / np.sqrt(values)

    def inverse_sqrt_degrees(self) -> np.ndarray:
        """(n,) 1/√w_x, 0 for isolated nodes (:func:`explorer.graphs.spectral.inverse_sqrt`)."""
        return spectral.inverse_sqrt(self.degrees)

    def adjacency_product(self, F: np.ndarray) -> np.ndarray:
        """Ā F = D^{-1/2} W D^{-1/2} F for F (n, d) or (n,) [0, Section 3.1]."""
        scale = self.inverse_sqrt_degrees()
        F = np.asarray(F, dtype=np.float64)
        column = scale if F.ndim == 1 else scale[:, None]
        return column * self.weights_product(column * F)

    def adjacency_operator(self) -> spla.LinearOperator:
        """Ā as a symmetric ``scipy.sparse.linalg.LinearOperator`` (n, n)."""
        n = self.num_nodes
        return spla.LinearOperator(
            (n, n), matvec=self.adjacency_product, matmat=self.adjacency_product,
            rmatvec=self.adjacency_product, rmatmat=self.adjacency_product, dtype=np.float64,
        )

    def top_eigenpairs(
        self, k: int, *, method: str = "auto", tol: float = 1e-8, seed: int = 0,
        max_iterations: int = 500,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k largest eigenvalues of Ā (descending, (k,)) and orthonormal eigenvectors (n, k).

        ``method="auto"``: ``"dense"`` on small graphs, else ``"gram"`` (:meth:`support_eigenpairs`,
        exact) when the natural data's support has at most :data:`GRAM_LIMIT` tuples, else
        ``"lobpcg"``.
        ``method="lobpcg"`` [1]: a block of k + max(8, k/4) vectors from a seeded random start,
        which resolves the graph's highly degenerate eigenspaces (a block method finds every
        copy of a repeated eigenvalue; single-vector Lanczos, in exact arithmetic, one). Its
        ``tol`` is on the residual norms ‖Āv − γv‖, so eigenvalues are accurate to about
        tol². A residual max|Āv − γv| above max(1000 tol, 1e-6) raises ``RuntimeError``.
        ``method="eigsh"`` [2]: ARPACK's Lanczos, for comparison only: it converges but
        misses copies of repeated eigenvalues (on the 840-node sub-grid it returns 0.0625 where
        the 14th eigenvalue is 0.25), which this graph is full of. ``method="dense"``:
        Ā formed column by column and ``eigh`` (small graphs only, n ≤ 5,000); also
        used whatever ``method`` when n < 8 × the LOBPCG block, where LOBPCG stalls.
        """
        n = self.num_nodes
        if not 1 <= k <= n:
            raise ValueError(f"k must be in [1, {n}], got {k}")
        block = min(k + max(8, k // 4), n // 3)
        small = n < max(8 * block, 64)
        if method == "auto" and not small:
            method = "gram" if len(self.support) <= GRAM_LIMIT else "lobpcg"
        if method == "gram":
            return self.support_eigenpairs(k)
        # LOBPCG stalls when its block is a large share of the space (k = 128 on the 840-node
        # sub-grid: residual 2e-4 after any number of iterations); there a dense eigh is cheap
        if method == "dense" or small:
            if n > 5000:
                raise ValueError(f"{n} nodes: too many for the dense path")
            abar = self.adjacency_product(np.eye(n))
            values, vectors = np.linalg.eigh((abar + abar.T) / 2)
            return values[::-1][:k].copy(), vectors[:, ::-1][:, :k].copy()
        operator = self.adjacency_operator()
        rng = np.random.default_rng(seed)
        if method == "eigsh":
            values, vectors = spla.eigsh(operator, k=k, which="LA", tol=tol,
                                         v0=rng.standard_normal(n))
        elif method == "lobpcg":
            X = rng.standard_normal((n, block))
            with warnings.catch_warnings():  # it warns when short of tol: checked below
                warnings.simplefilter("ignore", UserWarning)
                values, vectors = spla.lobpcg(operator, X, tol=tol, maxiter=max_iterations,
                                              largest=True)
        else:
            raise ValueError(f"unknown method {method!r}")
        order = np.argsort(values)[::-1][:k]
        values, vectors = values[order], vectors[:, order]
        residual = float(np.abs(self.adjacency_product(vectors) - vectors * values).max())
        if residual > max(1e3 * tol, 1e-6):
            raise RuntimeError(f"{method} did not converge: residual {residual:.2e}")
        return values, vectors


def kron_graph(
    grid: ShapesGrid = SHAPES_GRID,
    subgrid: dict[str, tuple[int, ...]] | None = None,
    *,
    crop_p: float = 0.5,
    rotate_p: float = 0.5,
    color_p: float = 0.8,
    shape_p: float = 0.0,
    class_change_p: float = 0.0,
    natural: np.ndarray | None = None,
) -> KronGraph:
    """The matrix-free exact graph of a sub-grid (``subgrid`` as in :func:`grid_values`: None
    keeps the whole grid, 64,800 tuples and 46,800 nodes), with the arguments of
    :func:`explorer.graphs.shapes.shapes_augmentation_graph` (``natural``: tuples (N, 6) whose
    empirical distribution is p; None: uniform over the sub-grid). Note the default sub-grid
    differs: None here is the whole grid, not :data:`explorer.data.shapes.SUBGRID`."""
    values = grid_values(grid, subgrid)
    kernel = ShapesKernel(values, crop_p=crop_p, rotate_p=rotate_p, color_p=color_p,
                          shape_p=shape_p, class_change_p=class_change_p)
    return graph_of_kernel(kernel, natural, grid)


def graph_of_kernel(
    kernel: ShapesKernel, natural: np.ndarray | None = None, grid: ShapesGrid = SHAPES_GRID
) -> KronGraph:
    """The matrix-free exact graph of a :class:`ShapesKernel` (see :func:`kron_graph`)."""
    T = math.prod(len(v) for v in kernel.values)
    if natural is None:
        p = np.full(T, 1.0 / T)
    else:
        counts = np.bincount(kernel.tuple_positions(natural), minlength=T).astype(np.float64)
        p = counts / counts.sum()
    node, first = image_nodes(grid, kernel.values)
    change = sparse_change_matrix(kernel, grid) if kernel.class_change_p > 0 else None
    merge = sp.csr_matrix((np.ones(T), (node, np.arange(T))), shape=(len(first), T))
    graph = KronGraph(kernel, grid, p, node, first, kernel.part_kernels(), change, merge)
    degrees = graph.weights_product(np.ones(graph.num_nodes))
    object.__setattr__(graph, "degrees", degrees)
    graph.matvecs[0] = 0
    return graph
