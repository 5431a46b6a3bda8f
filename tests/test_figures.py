"""The dashboard's figures and image helpers, checked against NumPy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from explorer.config import build_config
from explorer.data import load_dataset
from explorer.readings.figures import (
    NEAR_ONE,
    confusion_figure,
    embedding_figure,
    embedding_traces,
    exact_progress_figure,
    grouped_grid,
    image_grid,
    per_class_figure,
    probe_history,
    probe_history_figure,
    projector_features_label,
    reachable_optimum_figure,
    spectrum_figure,
    spectrum_metrics_figure,
)
from explorer.readings.gallery import class_mix, nearest_neighbours, positive_pairs


def test_grouped_grid_sets_each_group_apart() -> None:
    images = np.zeros((4, 3, 8, 8), dtype=np.uint8)  # black tiles on a white ground
    grid = grouped_grid(images, 2, 2, pad=1, gap=6)
    assert grid.shape == (9 + 6, 2 * (2 * 9 + 6), 3)  # a group: 2 tiles of 8 + 1 pad each
    row = grid[0, :, 0]
    assert row[8] == 255 and row[9] == 0  # one pixel inside a group
    assert (row[17:24] == 255).all() and row[24] == 0  # seven between groups


def _artifact(graph: np.ndarray) -> dict:
    eigs = np.sort(np.random.default_rng(0).random(16))[::-1]
    return {"epoch": 3, "arrays": {"projector_eigs_mean": eigs, "projector_eigs_std": eigs / 10,
                                   "backbone_eigs_mean": eigs * 4, "graph_c_eigs": graph}}


def test_spectrum_marks_the_eigenvalues_near_one() -> None:
    graph = np.array([1.0, 0.97, 0.95, 0.5, 0.1, 0.01])
    artifact = _artifact(graph)
    artifact["arrays"].update(exact_gammas=np.array([1.0, 1.0, 0.25]),
                              exact_c_eigs=np.array([0.9, 0.8, 0.2]))
    artifact["exact"] = {"graph": {"own": True}}
    fig = spectrum_figure(artifact)
    assert fig.layout.yaxis.type == "log"
    starred = next(t for t in fig.data if t.name.startswith("estimate ≥"))
    assert list(starred.y) == [v for v in graph if v >= NEAR_ONE]
    assert list(starred.x) == [1, 2, 3]
    line = next(t for t in fig.data if t.name.startswith("graph estimate"))
    assert "★ 3 ≥" in line.name and line.showlegend is not False
    # labelled ticks only (no unlabelled minor digits): 1, 2, 5, 10 for indices 1..16
    assert list(fig.layout.xaxis.tickvals) == [1, 2, 5, 10]
    assert all(np.log10(v) == round(np.log10(v)) for v in fig.layout.yaxis.tickvals)
    backbone = next(t for t in fig.data if "backbone" in t.name)
    assert backbone.y[0] == pytest.approx(1.0)  # scaled by its largest eigenvalue
    exact = next(t for t in fig.data if t.name.startswith("exact"))
    assert list(exact.y) == [0.9, 0.8, 0.2]
    gammas = next(t for t in fig.data if t.name.startswith("γᵢ of the run's own graph"))
    assert list(gammas.y) == [1.0, 1.0, 0.25]


def test_the_star_count_stays_in_the_legend_when_nothing_is_starred() -> None:
    fig = spectrum_figure(_artifact(np.array([0.5, 0.2, 0.1])))
    line = next(t for t in fig.data if t.name.startswith("graph estimate"))
    assert "★ 0 ≥" in line.name and line.showlegend is not False
    assert all(t.showlegend is False for t in fig.data if t.name.startswith("estimate ≥"))


def test_exact_progress_plots_one_minus_the_gaps_and_the_spans() -> None:
    def exact(gap: float) -> dict:
        blocks = [{"first": 1, "size": 6, "gamma": 1.0, "r2": 1 - gap},
                  {"first": 7, "size": 5, "gamma": 0.29, "r2": 0.5}]
        return {"gap": gap, "reachable_gap": gap / 2, "blocks": blocks}

    artifacts = {e: {"exact": exact(1 / e)} for e in (4, 1, 2)} | {3: {}}  # 3: not scored
    fig = exact_progress_figure(artifacts)
    share = next(t for t in fig.data if "unconstrained" in t.name)
    assert list(share.x) == [1, 2, 4] and list(share.y) == [0.0, 50.0, 75.0]  # percent
    reachable = next(t for t in fig.data if "reachable" in t.name)
    assert list(reachable.y) == [50.0, 75.0, 87.5]
    classes = next(t for t in fig.data if "classes" in t.name)
    assert list(classes.y) == [0.0, 0.5, 0.75]


def test_spectrum_metrics_follow_the_epochs() -> None:
    artifacts = {e: {"metrics": {"projector": {"rankme": float(e), "alpha_req": e / 4},
                                 "graph": {"stationarity_residual": 1 / e}}} for e in (5, 1, 3)}
    fig = spectrum_metrics_figure(artifacts)
    rankme = next(t for t in fig.data if t.name == "projector")
    assert list(rankme.x) == [1, 3, 5] and list(rankme.y) == [1.0, 3.0, 5.0]
    alpha = next(t for t in fig.data if t.name == "projector" and t.xaxis == "x2")  # α-ReQ's
    assert list(alpha.y) == [0.25, 0.75, 1.25]


def test_probe_history_draws_both_features_where_each_is_present() -> None:
    def probes(linear: float, knn: float) -> dict:
        return {"linear": {"accuracy": linear}, "knn": {"accuracy": knn}}

    old = {e: {"probes": probes(0.1 * e, 0.05 * e)} for e in (2, 1)}  # before the projector's
    new = {e: {"probes": probes(0.1 * e, 0.05 * e), "probes_projector": probes(0.08 * e, 0.04 * e),
               "projector_features": {"reading": "clip(z)", "mu": 4.0}} for e in (4, 3)}
    artifacts = old | new
    rows = probe_history(artifacts)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[0]["projector output linear"] is None
    assert rows[3]["projector output kNN"] == pytest.approx(0.16)
    label = projector_features_label(new[4], short=True)
    assert label == "projector output f = clip(z)"
    assert projector_features_label(new[4]) == (
        "projector output f = clip(z) (the theorem's f, μ = 4)")
    assert projector_features_label(old[1]) == "projector output"
    assert projector_features_label({"projector_features": {"reading": "z/|z|", "mu": None}},
                                    short=True) == "projector output z/‖z‖"
    fig = probe_history_figure(artifacts, label)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"linear, backbone h", "kNN, backbone h",
                           f"linear, {label}", f"kNN, {label}"}
    backbone = traces["linear, backbone h"]
    assert list(backbone.x) == [1, 2, 3, 4]
    assert list(backbone.y) == pytest.approx([10.0, 20.0, 30.0, 40.0])  # percent
    projector = traces[f"kNN, {label}"]
    assert list(projector.x) == [3, 4] and list(projector.y) == pytest.approx([12.0, 16.0])
    assert projector.line.dash == "dash" and backbone.line.dash == "solid"
    # only old artifacts: the backbone's lines alone
    assert {t.name for t in probe_history_figure(old).data} == {"linear, backbone h",
                                                                "kNN, backbone h"}


def test_embedding_points_map_back_to_their_rows() -> None:
    rng = np.random.default_rng(1)
    layout, labels = rng.normal(size=(50, 2)), rng.integers(0, 3, 50)
    indices = np.arange(100, 150)
    fig = embedding_figure(layout, labels, ["a", "b", "c"], indices)
    assert all(t.type == "scattergl" for t in fig.data)
    # Streamlit selects a clicked point only when the drag tool is not box or lasso
    assert fig.layout.dragmode not in ("select", "lasso")
    traces = embedding_traces(labels, 3)
    for curve, trace in enumerate(fig.data):  # (curve_number, point_index) -> row, as selected
        for point, x in enumerate(trace.x):
            assert layout[traces[curve][1][point], 0] == x
    for trace in fig.data:
        for (row, index), x in zip(trace.customdata, trace.x, strict=True):
            assert layout[row, 0] == x and indices[row] == index
            assert ["a", "b", "c"][labels[row]] == trace.name
    assert all(t.selectedpoints is None for t in fig.data)  # nothing selected: all alike
    selected = np.array([3, 17, 40])
    fig = embedding_figure(layout, labels, ["a", "b", "c"], indices, selected=selected)
    marked = [traces[curve][1][i] for curve, t in enumerate(fig.data) for i in t.selectedpoints]
    assert sorted(marked) == selected.tolist()


def test_confusion_is_row_normalised() -> None:
    counts = [[8, 2], [1, 3]]
    fig = confusion_figure(counts, ["x", "y"])
    np.testing.assert_allclose(fig.data[0].z, [[0.8, 0.2], [0.25, 0.75]])
    bars = per_class_figure(["x", "y"], {"linear": [0.5, 1.0]})
    assert list(bars.data[0].y) == [50.0, 100.0]


def test_image_grid_places_each_image() -> None:
    images = np.random.default_rng(2).integers(0, 256, (5, 3, 4, 6), dtype=np.uint8)
    grid = image_grid(images, columns=2, pad=1)
    assert grid.shape == (3 * 5, 2 * 7, 3)
    for i in range(5):
        r, c = divmod(i, 2)
        np.testing.assert_array_equal(grid[r * 5 : r * 5 + 4, c * 7 : c * 7 + 6],
                                      images[i].transpose(1, 2, 0))
    grey = image_grid(images[:, :1], columns=5)  # one channel: a 2-D picture, no RGB copy
    assert grey.shape == (4 + 2, 5 * (6 + 2)) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey[:4, 8:14], images[1, 0])
    assert (grey[4:, :] == 255).all()
    triples = grouped_grid(images[:4, :1], 2, 2, pad=1, gap=6)
    assert triples.shape == (5 + 6, 2 * (2 * 7 + 6))
    np.testing.assert_array_equal(triples[:4, 7:13], images[1, 0])


def test_nearest_neighbours_match_scikit_learn() -> None:
    features = np.random.default_rng(3).normal(size=(200, 16))
    ours = nearest_neighbours(features, 7, k=10)
    reference = NearestNeighbors(n_neighbors=11, metric="cosine").fit(features)
    theirs = reference.kneighbors(features[7:8], return_distance=False)[0]
    assert list(ours) == [i for i in theirs if i != 7][:10]


def test_class_mix_counts() -> None:
    mix = class_mix(np.array([2, 0, 2, 2, 0]), ["a", "b", "c"])
    assert mix == {"c": 3, "a": 2}


def test_positive_pairs_are_seeded_displayable_views() -> None:
    config = build_config("shapes-demo")
    data = load_dataset("shapes-subgrid", "train", limit=6)  # with factors: graph views need them
    images = data.images
    state = torch.get_rng_state()
    originals, view1, view2 = positive_pairs(config, data, seed=4)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's stream is untouched
    assert originals.shape == view1.shape == view2.shape == (6, 3, 32, 32)
    assert view1.dtype == np.uint8
    again = positive_pairs(config, data, seed=4)
    np.testing.assert_array_equal(view1, again[1])
    assert not np.array_equal(view1, view2)
    np.testing.assert_allclose(originals.astype(int), images.numpy().astype(int), atol=1)


def test_reachable_optimum_figure_shows_the_curve_and_marks() -> None:
    mus = [10.0, 0.5, 1.0, 40.0]
    losses = [-7.9, -0.96, -1.8, -10.1]
    fig = reachable_optimum_figure(mus, losses, -10.1, mu_run=10.0, max_sq_norm=29.25)
    curve, line = fig.data[:2]
    np.testing.assert_allclose(curve.x, sorted(mus))
    np.testing.assert_allclose(curve.y, [-0.96, -1.8, -7.9, -10.1])
    np.testing.assert_allclose(line.x, [0.5, 40.0])
    np.testing.assert_allclose(line.y, [-10.1, -10.1])
    assert fig.layout.xaxis.type == "log"
    assert list(fig.layout.xaxis.tickvals) == [0.5, 1, 2, 5, 10, 20]  # labelled ticks only
    fit, run = fig.data[2:]
    assert list(fit.x) == [29.25, 29.25] and list(run.x) == [10.0, 10.0]
    assert list(run.y) == [-10.1, 0.0]  # from the lowest loss up to f = 0
    assert len(reachable_optimum_figure(mus, losses, -10.1).data) == 2

