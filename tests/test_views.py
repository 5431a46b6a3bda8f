"""Views drawn from the exact graph's kernel (augment=graph) and the shapes-subgrid dataset."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from explorer.builders import build_views, graph_kernel, load_splits, recipe_name
from explorer.config import build_config
from explorer.data.shapes import SHAPES_GRID, SUBGRID, ShapesKernel, grid_values
from explorer.errors import UserError
from explorer.graphs.shapes import kernel_weights
from explorer.views import GraphViews, ImageViews


@pytest.fixture(scope="module")
def subgrid_splits():
    return load_splits(build_config(None, None, {"dataset": "shapes-subgrid"}))


def test_subgrid_splits_are_every_tuple_of_disjoint_scenes(subgrid_splits) -> None:
    train, test = subgrid_splits
    assert (len(train), len(test)) == (810, 270)
    kept = [set(v) for v in grid_values(SHAPES_GRID, SUBGRID)]
    for data in (train, test):
        factors = data.factors.numpy()
        assert all(set(factors[:, i]) <= kept[i] for i in range(6))
        assert np.bincount(factors[:, 0]).tolist() == [len(data) // 6] * 6
        assert torch.equal(data.images, SHAPES_GRID.render_batch(factors))
    # a scene is (position, scale, fg, bg): held out for every shape at once
    scenes = [{tuple(r) for r in d.factors[:, [1, 2, 4, 5]].tolist()} for d in (train, test)]
    assert not scenes[0] & scenes[1]  # test scenes are held out
    assert len(scenes[0] | scenes[1]) == 5 * 2 * 3 * 2  # and together they are every scene


def test_a_scene_only_classifier_is_at_chance_on_the_subgrid_test_split(subgrid_splits) -> None:
    """Every test scene holds all six shapes equally often, so any function of the scene alone
    (position, scale, colours) scores exactly 1/6; a scikit-learn classifier fitted on the
    training scenes does too."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    train, test = subgrid_splits
    test_factors = test.factors.numpy()
    by_scene: dict[tuple, list[int]] = {}
    for row in test_factors.tolist():
        by_scene.setdefault((row[1], row[2], row[4], row[5]), []).append(row[0])
    assert len(by_scene) == 15  # 25% of the 60 scenes
    for shapes in by_scene.values():
        assert np.bincount(shapes, minlength=6).tolist() == [len(shapes) // 6] * 6
    encoder = OneHotEncoder(handle_unknown="ignore").fit(train.factors.numpy()[:, [1, 2, 4, 5]])
    head = LogisticRegression(max_iter=1000).fit(
        encoder.transform(train.factors.numpy()[:, [1, 2, 4, 5]]), train.labels.numpy())
    predicted = head.predict(encoder.transform(test_factors[:, [1, 2, 4, 5]]))
    assert np.mean(predicted == test.labels.numpy()) == pytest.approx(1 / 6)


def test_auto_augment_of_the_subgrid_is_the_graph_and_misuse_is_an_error() -> None:
    assert recipe_name(build_config(None, None, {"dataset": "shapes-subgrid"})) == "graph"
    assert recipe_name(build_config(None, None, {"dataset": "shapes"})) == "shapes"
    with pytest.raises(UserError, match="augment=graph"):
        build_config(None, None, {"dataset": "digits", "augment": "graph"})


def test_graph_views_render_the_resampled_tuples_exactly(subgrid_splits) -> None:
    train, _ = subgrid_splits
    config = build_config(None, None, {"dataset": "shapes-subgrid"})
    views = build_views(config, train, torch.device("cpu"))
    assert isinstance(views, GraphViews)
    torch.manual_seed(0)
    resampled = views.resample(train.factors[:300])
    assert torch.equal(views.render(resampled), SHAPES_GRID.render_batch(resampled.numpy()))
    # the views are those images, normalised; the same seed gives the same views (resume)
    torch.manual_seed(1)
    view1, view2 = views(torch.arange(64))
    torch.manual_seed(1)
    again1, again2 = views(torch.arange(64))
    assert torch.equal(view1, again1) and torch.equal(view2, again2)
    assert view1.shape == (64, 3, 32, 32) and not torch.equal(view1, view2)
    mean = torch.tensor(train.mean).view(1, 3, 1, 1)
    std = torch.tensor(train.std).view(1, 3, 1, 1)
    pixels = (view1 * std + mean) * 255
    assert torch.allclose(pixels, pixels.round(), atol=1e-3)  # rendered uint8 images


def test_graph_views_resample_with_the_kernels_probabilities() -> None:
    kernel = ShapesKernel()
    anchor = torch.tensor([[2, 12, 0, 2, 3, 0]]).repeat(20000, 1)
    views = GraphViews(anchor, kernel, (0.5,) * 3, (0.25,) * 3)
    torch.manual_seed(0)
    out = views.resample(anchor).numpy()
    assert (out[:, 0] == 2).all()  # shape_p = 0: the class never changes
    # a part changes with probability p (1 - 1/m): redrawn, and not redrawn to the same value
    for columns, p, m in (([1, 2], kernel.crop_p, 10), ([3], kernel.rotate_p, 3),
                          ([4, 5], kernel.color_p, 6)):
        changed = (out[:, columns] != anchor.numpy()[:, columns]).any(1).mean()
        assert changed == pytest.approx(p * (1 - 1 / m), abs=0.015)
    for name, column in (("position", 1), ("fg_color", 4)):
        assert set(out[:, column]) == set(SUBGRID[name])  # uniform over the kept values only


def test_off_grid_items_are_refused() -> None:
    factors = torch.tensor([[0, 1, 0, 0, 0, 0]])  # position 1 is not in SUBGRID
    with pytest.raises(ValueError, match="outside the kernel's grid"):
        GraphViews(factors, ShapesKernel(), (0.5,) * 3, (0.25,) * 3)


def _kernel_probability(kernel: ShapesKernel, source: tuple, target: tuple) -> float:
    """A(target | source) by the kernel's definition, one factor part at a time (plain loops)."""
    names = SHAPES_GRID.FACTORS
    probability = 1.0
    for part, p in zip(kernel.PARTS, kernel.probabilities, strict=True):
        columns = [names.index(n) for n in part]
        size = int(np.prod([len(kernel.values[c]) for c in columns]))
        same = all(source[c] == target[c] for c in columns)
        probability *= (1 - p) * same + p / size
    return probability


def test_kernel_weights_over_a_training_split_match_the_definition() -> None:
    subgrid = {"shape": (0, 1), "position": (0, 12), "scale": (0,), "rotation": (0, 2),
               "fg_color": (0, 1), "bg_color": (0,)}
    kernel = ShapesKernel(grid_values(SHAPES_GRID, subgrid))
    tuples = [tuple(t) for t in kernel.tuples()]
    natural = np.array([tuples[0], tuples[3], tuples[3], tuples[9]])  # a repeated anchor too
    weights = kernel_weights(kernel, natural)
    expected = np.zeros_like(weights)
    for anchor in natural:  # w(x, x') = Σ_x̄ p(x̄) A(x|x̄) A(x'|x̄), p the empirical distribution
        for (i, x), (j, y) in itertools.product(enumerate(tuples), repeat=2):
            a = _kernel_probability(kernel, tuple(anchor), x)
            expected[i, j] += a * _kernel_probability(kernel, tuple(anchor), y) / len(natural)
    assert weights == pytest.approx(expected, abs=1e-12)
    # every tuple once: the uniform natural distribution, whose W is a Kronecker product
    assert kernel_weights(kernel, np.array(tuples)) == pytest.approx(kernel_weights(kernel))


def test_image_recipes_still_make_image_views(subgrid_splits) -> None:
    train, _ = subgrid_splits
    config = build_config(None, None, {"dataset": "shapes-subgrid", "augment": "shapes"})
    views = build_views(config, train, torch.device("cpu"))
    assert isinstance(views, ImageViews)
    view1, _ = views(torch.arange(8))
    assert view1.shape == (8, 3, 32, 32)


def test_every_test_image_of_graph_views_is_a_node_of_the_training_graph(subgrid_splits) -> None:
    """What the Probe page says: the training graph (views redraw every nuisance part) reaches
    every test tuple, so with graph views the split does not hold out augmentations."""
    from explorer.analysis.probe_run import split_note

    train, test = subgrid_splits
    config = build_config(None, None, {"dataset": "shapes-subgrid"})
    kernel = graph_kernel(config)
    reach = np.ones((1, 1))  # tuple -> tuple: nonzero where one view of x can be x'
    for part in kernel.part_kernels():
        reach = np.kron(reach, part)
    start = np.zeros(len(reach))
    start[kernel.tuple_positions(train.factors.numpy())] = 1
    reached = (start @ reach) > 0
    assert reached[kernel.tuple_positions(test.factors.numpy())].all()
    assert "node of the training graph" in split_note(config)
    assert "node" not in split_note(build_config(None, None, {"dataset": "shapes"}))
    assert split_note(build_config(None, None, {"dataset": "digits"})) is None
