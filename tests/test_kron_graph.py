"""The matrix-free exact graph (explorer.graphs.kronecker) against the dense path, a closed form and
pairs sampled from GraphViews (issue 20)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from explorer.analysis import theorem
from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesKernel, grid_values
from explorer.graphs import optimum as O
from explorer.graphs import spectral as G
from explorer.graphs.kronecker import image_nodes, kron_graph, sparse_change_matrix
from explorer.graphs.shapes import _image_nodes, shapes_augmentation_graph
from explorer.views import GraphViews

#: A second sub-grid: other positions, scales and colours, all six shapes (merges circles/rings).
OTHER = {"position": (6, 12, 18), "scale": (1, 2), "rotation": (0, 1, 5),
         "fg_color": (1, 4), "bg_color": (1, 3)}
#: No circle or ring: every tuple renders to its own image (no merging).
UNMERGED = {"shape": (1, 2, 3), "position": (0, 4, 12, 20, 24), "scale": (0, 2), "rotation": (0, 3),
            "fg_color": (0, 5), "bg_color": (0, 1, 2)}


def _close(a: np.ndarray | float, b: np.ndarray | float, rtol: float = 1e-10) -> None:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert np.abs(a - b).max() <= rtol * max(np.abs(b).max(), 1e-300), np.abs(a - b).max()


def _natural(subgrid: dict, size: int, seed: int) -> np.ndarray:
    tuples = ShapesKernel(grid_values(SHAPES_GRID, {**SUBGRID, **subgrid})).tuples()
    return tuples[np.random.default_rng(seed).choice(len(tuples), size)]


@pytest.mark.parametrize("subgrid", [{}, OTHER])
def test_image_nodes_match_the_dense_merge(subgrid: dict) -> None:
    values = grid_values(SHAPES_GRID, {**SUBGRID, **subgrid})
    node, first = image_nodes(SHAPES_GRID, values)
    dense_node, dense_first = _image_nodes(SHAPES_GRID, values)
    assert np.array_equal(node, dense_node) and np.array_equal(first, dense_first)


def test_sparse_change_matrix_equals_the_dense_one() -> None:
    kernel = ShapesKernel(grid_values(SHAPES_GRID, SUBGRID), class_change_p=0.7)
    assert np.array_equal(sparse_change_matrix(kernel).toarray(), kernel.change_matrix(SHAPES_GRID))


CASES = [
    ({}, {}, None),
    ({}, {"class_change_p": 0.6}, None),
    ({}, {"class_change_p": 0.4, "shape_p": 0.1, "crop_p": 0.3}, 400),
    (OTHER, {"class_change_p": 0.9, "color_p": 0.5}, 150),
    (OTHER, {"rotate_p": 0.0}, None),
]


@pytest.mark.parametrize(("subgrid", "probabilities", "natural_size"), CASES)
def test_operator_equals_the_dense_graph(
    subgrid: dict, probabilities: dict, natural_size: int | None
) -> None:
    full = {**SUBGRID, **subgrid}
    natural = None if natural_size is None else _natural(subgrid, natural_size, seed=3)
    dense = shapes_augmentation_graph(subgrid=full, natural=natural, **probabilities)
    graph = kron_graph(subgrid=full, natural=natural, **probabilities)
    assert graph.num_nodes == dense.num_nodes
    assert np.array_equal(graph.factors, dense.factors)
    assert np.array_equal(graph.labels, dense.labels)
    W = dense.weights / dense.weights.sum()  # as theorem.exact_metrics normalises it
    rng = np.random.default_rng(0)
    F = rng.standard_normal((graph.num_nodes, 40))  # more than one column chunk
    _close(graph.weights_product(F), W @ F)
    _close(graph.weights_product(F[:, 0]), W @ F[:, 0])
    _close(graph.degrees, W.sum(1))
    _close(graph.adjacency_product(F), G.normalized_adjacency(W) @ F)
    k = 24
    gammas, vectors = G.top_eigenpairs(W, k)
    found, found_vectors = graph.top_eigenpairs(k)
    _close(found, gammas)
    # the span of every eigenspace the top k hold whole agrees (bases inside one may differ)
    for block in theorem.spectrum_blocks(gammas)[:-1]:
        ours = found_vectors[:, block.start : block.stop]
        theirs = vectors[:, block.start : block.stop]
        _close(ours @ ours.T, theirs @ theirs.T, rtol=1e-6)
    f = rng.standard_normal((graph.num_nodes, 5))
    _close(O.population_loss(f, graph), O.population_loss(f, W))
    _close(O.second_moment(f, graph), (f.T * W.sum(1)) @ f)
    u = f / np.linalg.norm(f, axis=1, keepdims=True)
    _close(O.best_scale(u, graph), O.best_scale(u, W))
    # the optimum f* of the top k reaches -sum gamma^2, computed matrix-free
    scale = graph.inverse_sqrt_degrees()[:, None]
    f_star = found_vectors * np.sqrt(np.clip(found, 0, None)) * scale
    _close(O.population_loss(f_star, graph), -(np.clip(gammas, 0, None) ** 2).sum(),
           rtol=1e-9)


def test_closed_form_for_uniform_data_without_merging() -> None:
    """Uniform p, no class change, every tuple its own image: D is uniform and Ā = ⊗ K_i², so
    its eigenpairs are the Kronecker products of the parts' eigenpairs."""
    probabilities = {"crop_p": 0.5, "rotate_p": 0.7, "color_p": 0.8, "shape_p": 0.2}
    graph = kron_graph(subgrid={**SUBGRID, **UNMERGED}, **probabilities)
    assert graph.num_nodes == graph.num_tuples  # no merging
    _close(graph.degrees, np.full(graph.num_nodes, 1 / graph.num_nodes))
    part_pairs = [np.linalg.eigh(part @ part) for part in graph.parts]  # K_i symmetric
    products = np.sort([math.prod(c) for c in itertools.product(*(v for v, _ in part_pairs))])
    k = 20  # LOBPCG: n = 360 >= 8 x its block of 28
    gammas, _ = graph.top_eigenpairs(k)
    _close(gammas, products[::-1][:k])
    rng = np.random.default_rng(1)
    for _ in range(5):  # a product of the parts' eigenvectors is an eigenvector of Ā
        picks = [rng.integers(len(values)) for values, _ in part_pairs]
        vector = np.ones(1)
        gamma = 1.0
        for (values, vectors), i in zip(part_pairs, picks, strict=True):
            vector, gamma = np.kron(vector, vectors[:, i]), gamma * values[i]
        _close(graph.adjacency_product(vector), gamma * vector, rtol=1e-12)


def test_population_loss_matches_graph_views_samples() -> None:
    """L(f) of a random table, exact vs estimated from pairs of GraphViews (the kernel the runs
    train with), class changes included."""
    subgrid = {**SUBGRID, **OTHER}
    natural = _natural(OTHER, 60, seed=5)
    probabilities = {"crop_p": 0.5, "rotate_p": 0.5, "color_p": 0.8, "class_change_p": 0.9}
    graph = kron_graph(subgrid=subgrid, natural=natural, **probabilities)
    f = np.random.default_rng(2).standard_normal((graph.num_nodes, 3)) / 2
    exact = O.population_loss(f, graph)
    views = GraphViews(torch.from_numpy(natural), graph.kernel, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    size = 200_000
    anchors = torch.from_numpy(natural)[torch.randint(len(natural), (size,))]
    first = views.resample(anchors).numpy()
    second = views.resample(anchors).numpy()
    x = graph.node[graph.kernel.tuple_positions(first)]
    plus = graph.node[graph.kernel.tuple_positions(second)]
    other = np.roll(plus, 1)  # an independent draw from the marginal
    terms = -2 * (f[x] * f[plus]).sum(1) + ((f[x] * f[other]).sum(1)) ** 2
    estimate, error = terms.mean(), terms.std() / np.sqrt(size)
    assert abs(estimate - exact) < 4 * error, (estimate, exact, error)


def test_whole_grid_sizes() -> None:
    """The whole grid: 64,800 tuples, 46,800 images (build only; the benchmark times the rest)."""
    graph = kron_graph()
    assert (graph.num_tuples, graph.num_nodes) == (64_800, 46_800)
    _close(graph.degrees.sum(), 1.0)
    ones = np.ones(graph.num_nodes)
    _close(graph.adjacency_product(np.sqrt(graph.degrees)), np.sqrt(graph.degrees))
    assert O.population_loss(ones[:, None], graph) == pytest.approx(-1.0)


@pytest.mark.parametrize(("subgrid", "probabilities", "natural_size"), CASES[2:4])
def test_natural_products_equal_the_dense_kernel(
    subgrid: dict, probabilities: dict, natural_size: int
) -> None:
    """A F and Aᵀ Y against ShapesGraph.natural_augmentation's dense A (m, n)."""
    full = {**SUBGRID, **subgrid}
    natural = _natural(subgrid, natural_size, seed=4)
    dense = shapes_augmentation_graph(subgrid=full, natural=natural, **probabilities)
    A, p, y = dense.natural_augmentation()
    graph = kron_graph(subgrid=full, natural=natural, **probabilities)
    assert len(graph.support) == len(A) > 0
    _close(graph.natural_p[graph.support], p)
    assert np.array_equal(graph.kernel.tuples()[graph.support, 0], y)
    rng = np.random.default_rng(5)
    F, Y = rng.standard_normal((graph.num_nodes, 7)), rng.standard_normal((len(A), 7))
    _close(graph.natural_product(F), A @ F)
    _close(graph.natural_transpose_product(Y), A.T @ Y)


@pytest.mark.parametrize("method", ["gram", "lobpcg"])
def test_gram_and_lobpcg_equal_the_dense_eigenpairs(method: str) -> None:
    """A natural support smaller than the graph (rank-deficient Ā): the support's Gram matrix
    and LOBPCG both give the dense path's top eigenvalues and eigenspaces."""
    subgrid = {**SUBGRID, **OTHER}
    natural = _natural(OTHER, 300, seed=6)
    probabilities = {"class_change_p": 0.5}
    dense = shapes_augmentation_graph(subgrid=subgrid, natural=natural, **probabilities)
    W = dense.weights / dense.weights.sum()
    graph = kron_graph(subgrid=subgrid, natural=natural, **probabilities)
    k = 12
    assert graph.num_nodes >= 8 * (k + 8)  # LOBPCG runs (not the dense fallback)
    gammas, vectors = G.top_eigenpairs(W, k + 1)
    found, found_vectors = graph.top_eigenpairs(k, method=method)
    _close(found, gammas[:k], rtol=1e-9)
    _close(found_vectors.T @ found_vectors, np.eye(k), rtol=1e-9)
    blocks = theorem.spectrum_blocks(gammas)[:-1]  # the eigenspaces the top k hold whole
    assert blocks and blocks[-1].stop <= k
    for block in blocks:
        ours = found_vectors[:, block.start : block.stop]
        theirs = vectors[:, block.start : block.stop]
        _close(ours @ ours.T, theirs @ theirs.T, rtol=1e-6)


def test_gram_refuses_more_eigenpairs_than_the_support() -> None:
    graph = kron_graph(subgrid={**SUBGRID, **OTHER}, natural=_natural(OTHER, 20, seed=7))
    with pytest.raises(ValueError, match="support"):
        graph.support_eigenpairs(len(graph.support) + 1)
