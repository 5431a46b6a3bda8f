"""explorer.graphs.class_change_curve against independent references: the exact shapes graph built
afresh at
each class_change_p, α read off the kernel's own class-change probabilities, E(f*) from
explorer.analysis.theorem's dense path, SciPy's connected components, and the paper's inequality."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from explorer.analysis import theorem
from explorer.data.shapes import MAX_CLASS_CHANGE_P, SHAPES_GRID
from explorer.graphs import class_change_curve as shapes_lab
from explorer.graphs.shapes import shapes_augmentation_graph
from explorer.readings.graph_figures import guarantee_figure


@pytest.fixture(scope="module")
def family() -> shapes_lab.ClassChangeFamily:
    return shapes_lab.class_change_family()


@pytest.fixture(scope="module")
def curve() -> shapes_lab.GuaranteeCurve:
    """The shipped curve of the default settings (the page draws it; computing it takes about a
    minute): :func:`test_the_shipped_curve_is_what_the_code_computes` recomputes some of it."""
    shipped = shapes_lab.shipped_curve(*shapes_lab.SHIPPED_SETTINGS)
    assert shipped is not None, (
        "python -m explorer.graphs.class_change_curve writes the shipped curve")
    return shipped


def test_the_shipped_curve_is_what_the_code_computes(
    family: shapes_lab.ClassChangeFamily, curve: shapes_lab.GuaranteeCurve
) -> None:
    """Three values recomputed, one in each regime (votes all held, the first step, the end)."""
    chosen = [0.3, 0.6, MAX_CLASS_CHANGE_P]
    fresh = shapes_lab.guarantee_curve(family, chosen)
    at = [int(np.flatnonzero(np.isclose(curve.values, v))[0]) for v in chosen]
    assert len(at) == 3
    for field in ("alpha", "least_squares", "bound", "gamma_k", "gamma_next"):
        np.testing.assert_allclose(getattr(fresh, field), getattr(curve, field)[at], atol=1e-9)
    # the searched heads may land elsewhere on another run's eigenvectors; the brackets agree
    assert (fresh.optimum_error_lower <= curve.optimum_error[at] + 1e-12).all()
    assert (curve.optimum_error_lower[at] <= fresh.optimum_error + 1e-12).all()


@pytest.mark.parametrize("c", [0.0, 0.37, 0.71])
def test_the_family_is_the_exact_graph_at_every_class_change_p(
    family: shapes_lab.ClassChangeFamily, c: float
) -> None:
    # built afresh by explorer.graphs.shapes, nodes sorted by class as the family keeps them
    exact = shapes_augmentation_graph(class_change_p=c)
    order = np.argsort(exact.labels, kind="stable")
    lab = family.graph(c)
    np.testing.assert_allclose(lab.weights, exact.weights[np.ix_(order, order)], atol=1e-18)
    assert lab.weights.sum() == pytest.approx(1.0, abs=1e-12) and lab.k == 6
    np.testing.assert_array_equal(lab.labels, exact.labels[order])
    A, p, y = family.augmentation(c)
    exact_A, exact_p, exact_y = exact.natural_augmentation()
    np.testing.assert_allclose(A, exact_A[:, order], atol=1e-15)
    np.testing.assert_array_equal(y, exact_y)
    np.testing.assert_allclose(p, exact_p)
    with pytest.raises(ValueError, match="class_change_p"):
        family.graph(MAX_CLASS_CHANGE_P + 0.01)


def test_alpha_is_the_chance_that_a_view_changes_class(
    family: shapes_lab.ClassChangeFamily, curve: shapes_lab.GuaranteeCurve
) -> None:
    # uniform natural data and doubly stochastic parts: views are uniform over the tuples, and a
    # look-alike image is always made more often by its own (simple) class than by a changed
    # detailed one (q <= 0.9 < 1), so the best labelling names the drawn shape and α is the mean
    # class-change probability of a view, read off the kernel itself
    for c in (0.2, 0.6, MAX_CLASS_CHANGE_P):
        kernel = shapes_augmentation_graph(class_change_p=c).kernel
        expected = kernel.change_probabilities(kernel.tuples(), SHAPES_GRID).mean()
        W = family.graph(c).weights
        w = W.sum(1)
        values, vectors = np.linalg.eigh(W / np.sqrt(np.outer(w, w)))
        point = shapes_lab.guarantee_point(family, c, values[::-1], vectors[:, ::-1])
        assert point.alpha == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(curve.alpha, curve.values * curve.alpha[-1] / curve.values[-1])


def test_the_curve_is_dense_where_the_error_moves_and_the_bound_holds_everywhere(
    curve: shapes_lab.GuaranteeCurve,
) -> None:
    values = curve.values
    assert values[0] == 0.0 and values[-1] == MAX_CLASS_CHANGE_P
    assert np.diff(values[values >= 0.5]).max() <= 0.0125 + 1e-12
    assert (np.diff(curve.alpha) > 0).all()
    # the bracket is ordered; the least-squares head's error never falls and is 0 while every
    # natural datum's views mostly keep its class (class_change_p x ambiguity <= 1/2); the best
    # head found is never worse than least squares
    assert (curve.optimum_error_lower <= curve.optimum_error + 1e-12).all()
    assert (curve.optimum_error <= curve.least_squares + 1e-12).all()
    assert (np.diff(curve.least_squares) >= -1e-12).all()  # sums of masses: rounding only
    assert (curve.optimum_error[values <= 0.5] == 0).all() and curve.optimum_error[-1] > 0.15
    assert len(np.unique(curve.least_squares.round(12))) >= 5  # a staircase, not one step
    # the proven bound holds for E(f*), so above its lower side at every point
    assert (curve.bound >= curve.optimum_error_lower).all()
    # gamma_k falls continuously; gamma_{k+1} is crop's and rotation's (1 - 0.5)^2 throughout
    slopes = np.diff(curve.gamma_k) / np.diff(values)
    assert (slopes <= 1e-6).all() and slopes.min() > -2  # no jump: at most 2 per unit of c
    np.testing.assert_allclose(curve.gamma_next, 0.25, atol=1e-8)
    # the bound is linear in α here, 8α/0.75 + 2α, and passes 1 at α = 0.75/9.5 = 3/38
    np.testing.assert_allclose(curve.bound, curve.alpha * (8 / 0.75 + 2), rtol=1e-6)
    assert curve.bound_passes_one() == pytest.approx(3 / 38, abs=1e-6)
    # f* stops being unique only where gamma_k meets gamma_{k+1}
    np.testing.assert_array_equal(curve.tied, curve.gamma_k - 0.25 < 1e-6)
    assert curve.tied[-1] and not curve.tied[values < 0.8].any()


def test_the_error_and_alpha_match_the_dense_path_of_explorer_theorem(
    curve: shapes_lab.GuaranteeCurve,
) -> None:
    # theorem.graph_guarantee builds the graph itself (key: uniform natural data, 0 for the dense
    # sub-grid) and
    # takes f* from a full eigh; here the graph is interpolated and f* from LOBPCG
    for c in (0.3, 0.6, 0.7, 0.8):
        known = theorem.graph_guarantee((None, (0.5, 0.5, 0.8, c), 0), 6)
        i = int(np.flatnonzero(np.isclose(curve.values, c))[0])
        assert curve.alpha[i] == pytest.approx(known.task.alpha, abs=1e-12)
        # the least-squares head is the same for any basis of the same span; the searched
        # heads may differ between the two bases, but each bracket holds the other's E
        assert curve.least_squares[i] == pytest.approx(known.optimum.least_squares, abs=1e-12)
        assert curve.optimum_error_lower[i] <= known.optimum.upper + 1e-12
        assert known.optimum.lower <= curve.optimum_error[i] + 1e-12


def test_theorem_3_7_is_infinite_because_the_look_alike_pairs_stay_components(
    family: shapes_lab.ClassChangeFamily, curve: shapes_lab.GuaranteeCurve
) -> None:
    W = family.graph(MAX_CLASS_CHANGE_P).weights
    count, component = connected_components(W > 0, directed=False)
    assert count == 3  # circle+ring, square+cross, triangle+star
    # with α = 0 the order is 0 (no class change to bound), not 0/0
    assert curve.alpha[0] == 0 and curve.theorem_order[0] == 0
    assert np.isinf(curve.theorem_order[1:]).all()
    figure = guarantee_figure(curve, float(curve.alpha[20]), 6)
    names = [t.name for t in figure.data]
    assert not any(name.startswith("Theorem") for name in names)  # nothing finite to draw
    error = next(t for t in figure.data if t.name.startswith("E(f*) of the top"))
    np.testing.assert_allclose(error.x, curve.alpha)
    np.testing.assert_allclose(error.customdata, curve.values)
    bound = next(t for t in figure.data if t.name.startswith("bound"))
    assert "above 1 from α = 0.079" in bound.name  # 3/38
    assert figure.layout.xaxis.title.text.startswith("α: least fraction of augmentations")
    assert figure.layout.shapes[0].x0 == pytest.approx(curve.alpha[20])  # "now"
