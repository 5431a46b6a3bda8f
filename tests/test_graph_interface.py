"""One graph interface (explorer.graphs.interface) and the functions written once over it
(explorer.graphs.optimum), on every kind of graph, against plain loops over node pairs and NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesKernel, grid_values
from explorer.graphs import optimum as O
from explorer.graphs.clusters import cluster_graph
from explorer.graphs.interface import DenseGraph, FiniteGraph
from explorer.graphs.kronecker import kron_graph
from explorer.graphs.shapes import shapes_augmentation_graph

#: A small sub-grid (96 tuples; circles and rings merge across rotations) so that loops over
#: every pair of nodes stay fast; the class change mixes classes, and a non-uniform natural
#: sample makes the degrees vary.
SMALL = {**SUBGRID, "position": (0, 12), "rotation": (0, 2), "fg_color": (0, 2), "bg_color": (0,)}
PROBABILITIES = {"crop_p": 0.5, "rotate_p": 0.5, "color_p": 0.8, "class_change_p": 0.6}


def _natural() -> np.ndarray:
    tuples = ShapesKernel(grid_values(SHAPES_GRID, SMALL)).tuples()
    return tuples[np.random.default_rng(0).choice(len(tuples), 70)]


def _loop_loss(f: np.ndarray, W: np.ndarray) -> float:
    """L(f) = -2 sum_{x,x'} w(x,x') f(x).f(x') + sum_{x,x'} w_x w_x' (f(x).f(x'))^2 (HaoChen et
    al. 2021, Section 3.2), W normalised to sum 1, one pair of nodes at a time."""
    total = sum(W[x, y] for x in range(len(W)) for y in range(len(W)))
    w = [sum(W[x, y] for y in range(len(W))) / total for x in range(len(W))]
    loss = 0.0
    for x in range(len(W)):
        for y in range(len(W)):
            dot = float(np.dot(f[x], f[y]))
            loss += -2 * W[x, y] / total * dot + w[x] * w[y] * dot**2
    return loss


def _loop_second_moment(f: np.ndarray, W: np.ndarray) -> np.ndarray:
    """E_w[f f^T] = sum_x w_x f(x) f(x)^T, one node at a time."""
    w = W.sum(1) / W.sum()
    return sum(w[x] * np.outer(f[x], f[x]) for x in range(len(W)))


@pytest.fixture(scope="module")
def shapes_pair():
    """The same small ``shapes`` graph, dense and matrix-free."""
    natural = _natural()
    dense = shapes_augmentation_graph(subgrid=SMALL, natural=natural, **PROBABILITIES)
    kron = kron_graph(subgrid=SMALL, natural=natural, **PROBABILITIES)
    assert dense.num_nodes == kron.num_nodes and 20 < dense.num_nodes < 200
    return dense, kron


def test_every_graph_kind_implements_the_interface(shapes_pair) -> None:
    dense, kron = shapes_pair
    graphs = [DenseGraph(dense.weights), dense, kron, cluster_graph((5, 6, 7), 1.0, 0.1)]
    assert len(graphs) == 4
    for graph in graphs:
        assert isinstance(graph, FiniteGraph)
        assert graph.degrees.sum() == pytest.approx(1.0, abs=1e-12)


def test_the_one_loss_equals_a_loop_over_node_pairs_dense_and_matrix_free(shapes_pair) -> None:
    dense, kron = shapes_pair
    W = 3.0 * dense.weights  # any scale: the loss normalises W
    f = np.random.default_rng(1).standard_normal((dense.num_nodes, 4))
    expected = _loop_loss(f, W)
    graphs = {"bare W": W, "DenseGraph": DenseGraph(W), "ShapesGraph": dense, "KronGraph": kron}
    assert len(graphs) == 4
    for name, graph in graphs.items():
        assert float(O.population_loss(f, graph)) == pytest.approx(expected, rel=1e-10), name
        assert O.second_moment(f, graph) == pytest.approx(_loop_second_moment(f, W),
                                                           rel=1e-10), name


def test_the_loss_of_a_torch_table_is_differentiable() -> None:
    W = cluster_graph((4, 5), 1.0, 0.2).weights
    f = torch.from_numpy(np.random.default_rng(2).standard_normal((9, 3))).requires_grad_()
    loss = O.population_loss(f, torch.from_numpy(W))
    loss.backward()
    assert loss.item() == pytest.approx(_loop_loss(f.detach().numpy(), W), rel=1e-10)
    # dL/df(x) = -4 sum_x' w(x,x') f(x') + 4 w_x sum_x' w_x' (f(x).f(x')) f(x'), W summing to 1
    F, J = f.detach().numpy(), W / W.sum()
    w = J.sum(1)
    gradient = -4 * J @ F + 4 * w[:, None] * ((F @ F.T) * w[None, :]) @ F
    assert f.grad.numpy() == pytest.approx(gradient, rel=1e-10)


def test_the_optimum_of_every_graph_kind_reaches_minus_the_sum_of_squared_eigenvalues(
    shapes_pair,
) -> None:
    dense, kron = shapes_pair
    k = 6
    W = dense.weights / dense.weights.sum()
    w = W.sum(1)
    gammas = np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w)))[::-1][:k]  # NumPy, Ā's spectrum
    for graph in (dense, kron):
        found, _ = graph.top_eigenpairs(k)
        assert found == pytest.approx(gammas, abs=1e-9)
        f_star = O.optimal_features(graph, k)
        assert _loop_loss(f_star, W) == pytest.approx(-(gammas**2).sum(), rel=1e-9)
        assert O.optimal_population_loss(graph, k) == pytest.approx(-(gammas**2).sum(), rel=1e-9)
        # E_w[f* f*^T] = diag(gamma) (HaoChen et al. 2021, Section 3.2)
        assert _loop_second_moment(f_star, W) == pytest.approx(np.diag(gammas), abs=1e-9)


def test_cluster_graphs_decompose_with_their_own_solver_the_same_spectrum() -> None:
    lab = cluster_graph((200, 200, 200), 1.0, 0.05, degree=8)  # above the dense limit: LOBPCG
    k = 5
    W = lab.weights
    w = W.sum(1)
    gammas = np.linalg.eigvalsh(W / np.sqrt(np.outer(w, w)))[::-1][:k]
    found, _ = lab.top_eigenpairs(k)
    assert found == pytest.approx(gammas, abs=1e-8)
    assert O.population_loss(O.optimal_features(lab, k), W) == pytest.approx(
        -(gammas**2).sum(), rel=1e-7)


def test_best_scale_minimises_the_loss_of_the_scaled_directions(shapes_pair) -> None:
    dense, kron = shapes_pair
    u = np.random.default_rng(3).standard_normal((dense.num_nodes, 3)) + 1.0
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    around = np.linspace(0.8, 1.2, 21)  # c itself in the middle
    for graph in (dense, kron):
        c = O.best_scale(u, graph)
        assert c > 0
        losses = [_loop_loss(s * c * u, dense.weights) for s in around]
        assert int(np.argmin(losses)) == 10
