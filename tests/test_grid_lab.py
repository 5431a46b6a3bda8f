"""The Graph page's matrix-free reading of shapes sub-grids up to the whole grid
(explorer.graphs.grid_reading): equal to the dense path on the default sub-grid, the closed form on
the
whole grid."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.graphs import class_change_curve as shapes_lab
from explorer.graphs import clusters as graph_lab
from explorer.graphs import guarantee
from explorer.graphs.grid_reading import GRIDS, grid_reading
from explorer.graphs.shapes import shapes_augmentation_graph


@pytest.mark.parametrize("class_change_p", [0.0, 0.7])
def test_the_reading_equals_the_dense_path_on_the_default_sub_grid(class_change_p: float) -> None:
    reading = grid_reading(0, 0.5, 0.5, 0.8, class_change_p)
    dense = shapes_augmentation_graph(subgrid=GRIDS[0][1], class_change_p=class_change_p)
    W = np.asarray(dense.weights, dtype=np.float64)
    W = W / W.sum()
    w = W.sum(1)
    abar = W / np.sqrt(np.outer(w, w))
    gammas = np.linalg.eigvalsh((abar + abar.T) / 2)[::-1]
    assert reading.num_nodes == len(W) == 840
    np.testing.assert_allclose(reading.gammas, gammas[: len(reading.gammas)], atol=1e-8)
    Y = np.eye(6)[np.asarray(dense.labels)]
    np.testing.assert_allclose(reading.class_weights, Y.T @ W @ Y, atol=1e-14)
    np.testing.assert_array_equal(reading.class_nodes, Y.sum(0))
    # the guarantee from A formed densely (explorer.graphs.guarantee's dense functions)
    A, p, y = dense.natural_augmentation()
    assert reading.guarantee.alpha == pytest.approx(max(0.0, guarantee.alpha(A, p, y, 6)),
                                                    abs=1e-12)
    _, vectors = np.linalg.eigh((abar + abar.T) / 2)
    top = vectors[:, ::-1][:, :6] * np.sqrt(np.clip(gammas[:6], 0, None)) / np.sqrt(w)[:, None]
    if not reading.guarantee.tied:  # else f* is the solver's choice
        # the least-squares head is one of the heads tried: the bracket's upper side beats it
        least = guarantee.downstream_error(top, A, p, y, 6)
        assert reading.guarantee.optimum.least_squares == pytest.approx(least, abs=1e-12)
        assert reading.guarantee.optimum_error <= least + 1e-12
    # the bound from the dense α and γ₇, written out (8α/λ + 2α), not from the reading's α
    dense_alpha = max(0.0, guarantee.alpha(A, p, y, 6))
    lam = 1.0 - float(np.where(gammas[6] > 1 - 1e-9, 1.0, gammas[6]))
    assert reading.guarantee.bound == pytest.approx(8 * dense_alpha / lam + 2 * dense_alpha,
                                                    rel=1e-8, abs=1e-12)
    # the sample is drawn evenly from every class, in class order
    assert len(reading.sample) == 6 * 60 and np.all(np.diff(reading.sample_labels) >= 0)
    assert np.bincount(reading.sample_labels).tolist() == [60] * 6


def test_the_whole_grid_without_class_change_reads_its_closed_form() -> None:
    """No class change: the six classes are the connected components (γ₁…γ₆ = 1, W block
    diagonal with 1/6 on each class: the natural data are uniform over the classes), spectral
    clustering and the probe are exact, α = E(f*) = 0; γ₇ is crop's and rotation's (1 − 0.5)²,
    the part kernels' largest nuisance eigenvalue."""
    reading = grid_reading(len(GRIDS) - 1, 0.5, 0.5, 0.8, 0.0)
    assert reading.num_nodes == 46_800 and reading.num_tuples == 64_800
    np.testing.assert_allclose(reading.gammas[:6], 1.0, atol=1e-8)
    assert reading.gammas[6] == pytest.approx(0.25, abs=1e-8)
    assert reading.before_gap == 6
    np.testing.assert_allclose(reading.class_weights, np.eye(6) / 6, atol=1e-12)
    assert reading.ari == 1.0 and reading.probe_accuracy == 1.0
    assert reading.guarantee.alpha == pytest.approx(0.0, abs=1e-12)
    assert reading.guarantee.optimum_error == 0.0


def test_a_larger_sub_grid_keeps_the_default_sub_grids_class_mixing_in_order() -> None:
    """Class change 0.7 on "all positions" (4,200 nodes): the look-alike pairs stay components
    (γ₁…γ₃ = 1), the kernel changes classes only inside them (W's class blocks vanish between
    pairs), and the page's own default sub-grid reads the same α (positions do not change how
    ambiguous a view is: scale does)."""
    reading = grid_reading(1, 0.5, 0.5, 0.8, 0.7)
    family = shapes_lab.class_change_family(0.5, 0.5, 0.8)
    small = shapes_lab.guarantee_point(family, 0.7, *_top(family.graph(0.7)))
    assert reading.num_nodes == 4200
    np.testing.assert_allclose(reading.gammas[:3], 1.0, atol=1e-8)
    pairs = {frozenset(pair) for pair in ((0, 4), (1, 3), (2, 5))}
    blocks = reading.class_weights
    for a in range(6):
        for b in range(6):
            if a != b and frozenset((a, b)) not in pairs:
                assert blocks[a, b] == 0.0, (a, b)
    assert reading.guarantee.alpha == pytest.approx(small.alpha, abs=1e-12)


def _top(lab: graph_lab.LabGraph) -> tuple[np.ndarray, np.ndarray]:
    summary = graph_lab.summarize(lab)
    return summary.gammas, summary.vectors
