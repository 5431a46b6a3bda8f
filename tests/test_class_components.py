"""The class-component reading (explorer/analysis/class_components.py) against its closed form at a
disconnected graph's minimiser, plain-loop references and NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.analysis.class_components import (
    MAX_CLASSES,
    class_arrays,
    class_moments,
    describe,
    shared_components,
)


def _random_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def _minimiser(component_of_class: list[int], counts: list[int], d: int, seed: int = 0):
    """Features of the population loss's minimiser on a graph whose components are unions of
    classes: f(x) = R e_i / √w(Cᵢ) for x in component i (HaoChen et al. 2021, Section 3)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    rng.shuffle(labels)
    comp = np.asarray(component_of_class)[labels]
    mass = np.bincount(comp) / len(labels)
    features = np.eye(d)[comp] / np.sqrt(mass[comp])[:, None]
    return features @ _random_rotation(d, rng), labels


def test_a_disconnected_minimiser_gives_one_unit_eigenvalue_per_component() -> None:
    # four classes, 1 and 2 in one component: three components of unequal mass
    features, labels = _minimiser([0, 1, 1, 2], [50, 30, 70, 100], d=8)
    moments = class_moments(features, labels, 4)
    np.testing.assert_allclose(moments.between_eigs, [1, 1, 1, 0], atol=1e-12)
    expected = np.eye(4)
    expected[1, 2] = expected[2, 1] = 1.0
    np.testing.assert_allclose(moments.cosines, expected, atol=1e-12)
    np.testing.assert_allclose(moments.mean_share, 1.0, atol=1e-12)
    np.testing.assert_allclose(moments.weights, [0.2, 0.12, 0.28, 0.4])
    assert shared_components(moments.cosines) == [[1, 2]]


def test_moments_match_plain_loops_and_bound_the_second_moment() -> None:
    rng = np.random.default_rng(3)
    n, d, c = 300, 6, 4
    features, labels = rng.standard_normal((n, d)) + 0.5, rng.integers(0, c, n)
    moments = class_moments(features, labels, c)
    between, second = np.zeros((d, d)), np.zeros((d, d))
    for k in range(c):
        rows = [features[i] for i in range(n) if labels[i] == k]
        mean = sum(rows) / len(rows)
        between += len(rows) / n * np.outer(mean, mean)
        share = float(mean @ mean) / (sum(float(r @ r) for r in rows) / len(rows))
        assert moments.mean_share[k] == pytest.approx(share)
        for j in range(c):
            other = np.mean([features[i] for i in range(n) if labels[i] == j], axis=0)
            cosine = mean @ other / np.linalg.norm(mean) / np.linalg.norm(other)
            assert moments.cosines[k, j] == pytest.approx(cosine)
    for row in features:
        second += np.outer(row, row) / n
    np.testing.assert_allclose(moments.between_eigs, np.linalg.eigvalsh(between)[::-1][:c],
                               atol=1e-10)  # fmt: skip
    # E[f fᵀ] = M + Σ p_c Cov(f | c): what M leaves is positive semidefinite
    assert np.linalg.eigvalsh(second - between).min() > -1e-10


def test_the_reading_ignores_the_rotation_the_loss_cannot_fix() -> None:
    rng = np.random.default_rng(5)
    features, labels = rng.standard_normal((200, 5)), rng.integers(0, 3, 200)
    before = class_arrays(features, labels, 3)
    after = class_arrays(features @ _random_rotation(5, rng), labels, 3)
    assert before.keys() == after.keys() and before
    for key in before:
        np.testing.assert_allclose(before[key], after[key], atol=1e-6)


def test_shared_components_chain_and_empty_classes() -> None:
    cosines = np.eye(5)
    cosines[0, 1] = cosines[1, 0] = 0.6  # 0 ~ 1 ~ 3: one group through 1
    cosines[1, 3] = cosines[3, 1] = 0.7
    cosines[2, 4] = cosines[4, 2] = 0.4  # below the threshold
    assert shared_components(cosines) == [[0, 1, 3]]
    moments = class_moments(np.ones((4, 2)), np.array([0, 0, 2, 2]), 3)  # class 1 has no point
    assert moments.weights[1] == 0 and moments.mean_share[1] == 0
    assert not np.isnan(moments.cosines).any()


def test_reading_names_merges_and_too_many_classes_store_nothing() -> None:
    features, labels = _minimiser([0, 1, 1, 2], [50, 30, 70, 100], d=8)
    text = describe(class_arrays(features, labels, 4), ["a", "b", "c", "d"])
    assert "3 of its 4 eigenvalues ≥ 0.9" in text and "{b, c}" in text
    apart, labels = _minimiser([0, 1, 2], [10, 10, 10], d=4)
    assert "no classes merge" in describe(class_arrays(apart, labels, 3), ["a", "b", "c"])
    many = MAX_CLASSES + 1
    assert class_arrays(np.ones((many, 2)), np.arange(many), many) == {}


def test_an_analysed_checkpoint_stores_the_reading_below_its_graph_estimate() -> None:
    """On a real analysis: M = E[f fᵀ] − Σ p_c Cov(f | c) ⪯ C = E[f fᵀ], so by Weyl every
    eigenvalue of M is at most C's of the same rank (C's eigenvalues are stored apart, by
    explorer.analysis.metrics); the class shares are the view images' label counts."""
    import torch

    from explorer.analysis.checkpoint import analyze_checkpoint
    from explorer.analysis.sample import evaluation_sample
    from explorer.config import build_config
    from explorer.data import load_dataset
    from explorer.train import build_model
    from tests.conftest import TINY

    train = load_dataset("digits", "train", limit=200, seed=0)  # ten classes, no exact graph
    test = load_dataset("digits", "test", limit=40, seed=0)
    sample = evaluation_sample(train, test, samples=200, seed=0)
    config = build_config(overrides=[*TINY, "dataset=digits"])
    torch.manual_seed(0)
    model = build_model(config, in_channels=train.images.shape[1])
    record, arrays = analyze_checkpoint(model, sample, config, projections=("pca",))
    classes = len(sample.classes)
    eigs, graph = arrays["class_between_eigs"], arrays["graph_c_eigs"]
    assert len(eigs) == classes and arrays["class_cosines"].shape == (classes, classes)
    assert np.all(eigs <= graph[:classes] + 1e-6)
    counts = np.bincount(sample.train.labels[: record["n_views"]].numpy(), minlength=classes)
    np.testing.assert_allclose(arrays["class_weights"], counts / counts.sum())
    assert "classes" in record["timings"]


def test_the_shipped_class_change_run_merges_exactly_the_kernels_look_alikes() -> None:
    """The demo sweep's network at class_change_p = 0.9 (a ring drawn as a circle, a cross as a
    square, a star as a triangle where the view is ambiguous): the classes it merges are the
    pairs the kernel joins (explorer.data.shapes.LOOKALIKE), and at class_change_p = 0 none."""
    from explorer.data.shapes import LOOKALIKE
    from explorer.rundir.artifacts import load_all_analyses
    from explorer.rundir.demo import DEMO_RUNS
    from explorer.rundir.run import open_run

    def last_arrays(name: str) -> dict[str, np.ndarray]:
        analyses, errors = load_all_analyses(open_run(DEMO_RUNS / name))
        assert analyses and not errors
        return analyses[max(analyses)]["arrays"]

    joined = sorted({tuple(sorted((shape, LOOKALIKE[shape]))) for shape in range(6)})
    merged = shared_components(last_arrays("shapes-class-change-0.9")["class_cosines"])
    assert [tuple(group) for group in merged] == [tuple(pair) for pair in joined]
    apart = last_arrays("shapes-class-change-0")
    assert shared_components(apart["class_cosines"]) == []
    assert np.all(apart["class_between_eigs"] >= 0.9)  # six components, six eigenvalues near 1
