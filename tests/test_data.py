"""Dataset registry: shapes (its grid and renderer), digits, the CIFAR/STL readers, imagefolder
(the MNIST-format readers: tests/test_grey_datasets.py).

References are independent of our code where possible: closed-form areas for the renderer,
torchvision's own CIFAR/STL readers (with their md5 checks switched off) for our file readers,
solid-colour images for imagefolder labels, scikit-learn for the linear-separability claims.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.data import (
    SHAPES_GRID,
    DatasetRequest,
    DatasetSpec,
    ImageDataset,
    ShapesGrid,
    default_image_size,
    list_datasets,
    load_dataset,
    load_request,
)
from explorer.data import shapes as shapes_module
from explorer.data.base import DATASETS, stratified_indices
from explorer.errors import UserError

ALL = ["cifar10", "cifar100", "digits", "fashion-mnist", "imagefolder", "kmnist", "mnist", "npz",
       "shapes", "shapes-subgrid", "stl10"]


@pytest.fixture(scope="module")
def shapes_train() -> ImageDataset:
    return load_dataset("shapes", "train")


@pytest.fixture(scope="module")
def shapes_test() -> ImageDataset:
    return load_dataset("shapes", "test")


def _image_keys(dataset: ImageDataset) -> set[bytes]:
    return {bytes(image.numpy().tobytes()) for image in dataset.images}


# ---------------------------------------------------------------- registry


def test_registry_lists_every_dataset_with_its_default_size() -> None:
    assert list_datasets() == ALL
    assert {name: default_image_size(name) for name in ALL} == {
        "cifar10": 32, "cifar100": 32, "digits": 32, "fashion-mnist": 28, "imagefolder": 32,
        "kmnist": 28, "mnist": 28, "npz": 32, "shapes": 32, "shapes-subgrid": 32, "stl10": 96,
    }  # fmt: skip


def test_unknown_dataset_names_the_closest_and_lists_all() -> None:
    with pytest.raises(UserError) as err:
        load_dataset("shapez")
    message = str(err.value)
    assert "unknown dataset 'shapez'" in message and "did you mean 'shapes'" in message
    assert all(name in message for name in ALL) and "\n" not in message
    with pytest.raises(UserError, match="unknown dataset"):
        default_image_size("svhn")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"split": "val"}, "unknown split 'val'"), ({"limit": 0}, "limit must be"),
     ({"limit": 2.5}, "limit must be"), ({"image_size": -1}, "image_size must be")],
)  # fmt: skip
def test_bad_arguments_are_user_errors(kwargs: dict, needle: str) -> None:
    with pytest.raises(UserError, match=needle):
        load_dataset("shapes", **kwargs)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [({"name": "shapez"}, "unknown dataset 'shapez'"), ({"split": "val"}, "unknown split 'val'"),
     ({"limit": 0}, "limit must be"), ({"limit": 2.5}, "limit must be"),
     ({"limit": True}, "limit must be"), ({"image_size": -1}, "image_size must be"),
     ({"image_size": "32"}, "image_size must be")],
)  # fmt: skip
def test_a_request_with_a_bad_field_is_refused_in_one_line(fields: dict, needle: str) -> None:
    with pytest.raises(UserError, match=needle) as err:
        DatasetRequest(**{"name": "shapes", **fields})
    assert "\n" not in str(err.value)


def test_a_request_is_frozen_and_stores_one_spelling_of_each_field() -> None:
    request = DatasetRequest("SHAPES", data_root="~/pictures", limit=np.int64(7))
    assert request.name == "shapes" and request.image_size == 32 and request.limit == 7
    assert request.data_root == Path.home() / "pictures" and request.split == "train"
    assert request == DatasetRequest("shapes", data_root=Path.home() / "pictures", limit=7,
                                     image_size=32)  # fmt: skip
    assert DatasetRequest("cifar10").root == Path("data")  # the download folder by default
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.limit = 3  # type: ignore[misc]


def test_every_loader_takes_one_request() -> None:
    """The registry calls each loader with a single DatasetRequest, so no loader repeats (and
    half ignores) a long argument list."""
    assert sorted(DATASETS) == ALL
    for name, spec in DATASETS.items():
        parameters = inspect.signature(spec.loader, eval_str=True).parameters
        assert list(parameters) == ["request"], name
        assert parameters["request"].annotation is DatasetRequest, name


@pytest.mark.parametrize(
    ("name", "fields"),
    [("shapes", {}), ("shapes", {"split": "test", "seed": 3, "limit": 40, "image_size": 16}),
     ("digits", {}), ("digits", {"split": "train", "seed": 5, "limit": 30, "image_size": 20})],
)  # fmt: skip
def test_load_dataset_is_the_loader_given_the_same_request(name: str, fields: dict) -> None:
    ours = load_dataset(name, **fields)
    direct = DATASETS[name].loader(DatasetRequest(name, **fields))
    assert len(ours) == fields.get("limit", len(ours)) > 0
    assert ours.image_size == fields.get("image_size", 32)
    assert torch.equal(ours.images, direct.images) and torch.equal(ours.labels, direct.labels)
    assert (ours.classes, ours.mean, ours.std) == (direct.classes, direct.mean, direct.std)
    assert (ours.factors is None) == (direct.factors is None)
    assert ours.factors is None or torch.equal(ours.factors, direct.factors)


def test_a_loader_that_ignores_the_limit_is_a_programming_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def everything(request: DatasetRequest) -> ImageDataset:
        return ImageDataset(torch.zeros((10, 1, 4, 4), dtype=torch.uint8),
                            torch.arange(10) % 2, ["a", "b"], (0.0,), (1.0,), "toy")  # fmt: skip

    monkeypatch.setitem(DATASETS, "toy", DatasetSpec("toy", everything, 4, "ten blank images"))
    assert len(load_request(DatasetRequest("toy"))) == 10
    with pytest.raises(ValueError, match="returned 10 images"):
        load_request(DatasetRequest("toy", limit=3))


def test_stratified_indices_balances_classes_and_is_seeded() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 5, 100])
    chosen = stratified_indices(labels, 40, seed=3)
    counts = np.bincount(labels[chosen])  # round-robin: the 5-image class gives all it has
    assert counts[2] == 5 and sorted(counts[[0, 1, 3]].tolist()) == [11, 12, 12]
    assert np.array_equal(chosen, stratified_indices(labels, 40, seed=3))
    assert not np.array_equal(chosen, stratified_indices(labels, 40, seed=4))


# ---------------------------------------------------------------- shapes


def test_shapes_layout_and_balance(shapes_train: ImageDataset, shapes_test: ImageDataset) -> None:
    for data, size in ((shapes_train, 6000), (shapes_test, 2000)):
        assert data.images.shape == (size, 3, 32, 32) and data.images.dtype == torch.uint8
        assert data.images.is_contiguous() and data.labels.dtype == torch.int64
        assert data.classes == list(SHAPES_GRID.shapes) and len(data.classes) == 6
        counts = torch.bincount(data.labels, minlength=6)
        assert counts.min() >= size // 6 and counts.max() <= size // 6 + 1
        assert torch.equal(data.factors[:, 0], data.labels)


def test_shapes_mean_std_match_the_pixels(shapes_train: ImageDataset) -> None:
    pixels = shapes_train.images.double() / 255
    np.testing.assert_allclose(shapes_train.mean, pixels.mean(dim=(0, 2, 3)), atol=0.01)
    np.testing.assert_allclose(shapes_train.std, pixels.std(dim=(0, 2, 3)), atol=0.01)


def test_shapes_is_seeded(shapes_train: ImageDataset) -> None:
    again = load_dataset("shapes", "train", seed=0, limit=300)
    other = load_dataset("shapes", "train", seed=1, limit=300)
    assert torch.equal(again.images, load_dataset("shapes", "train", seed=0, limit=300).images)
    assert not torch.equal(again.images, other.images)
    # limit selects from the full split rather than generating a different one
    assert _image_keys(again) <= _image_keys(shapes_train)
    assert torch.bincount(again.labels).tolist() == [50] * 6


def test_shapes_train_and_test_share_no_image(
    shapes_train: ImageDataset, shapes_test: ImageDataset
) -> None:
    assert not _image_keys(shapes_train) & _image_keys(shapes_test)


def test_shapes_holds_out_each_scene_for_every_class(
    shapes_train: ImageDataset, shapes_test: ImageDataset
) -> None:
    """A scene (position, scale, fg, bg) is held out for all six shapes at once, so a classifier
    of the scene alone (scikit-learn, one-hot factors) is at chance on the test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    scene_columns = [1, 2, 4, 5]
    train, test = (d.factors.numpy()[:, scene_columns] for d in (shapes_train, shapes_test))
    assert not {tuple(r) for r in train.tolist()} & {tuple(r) for r in test.tolist()}
    encoder = OneHotEncoder(handle_unknown="ignore").fit(train)
    head = LogisticRegression(max_iter=1000).fit(encoder.transform(train), shapes_train.labels)
    accuracy = np.mean(head.predict(encoder.transform(test)) == shapes_test.labels.numpy())
    # chance is 1/6; 2,000 test images put its standard error near 0.008
    assert abs(accuracy - 1 / 6) < 0.04, accuracy


def test_shapes_images_are_the_grid_rendering_of_their_factors(shapes_test: ImageDataset) -> None:
    factors = shapes_test.factors[:50].numpy()
    before = SHAPES_GRID.render_batch(factors)
    shapes_module._alpha.cache_clear()
    shapes_module._centred_alpha.cache_clear()
    fresh = ShapesGrid()  # an equal grid built anew renders the same images
    assert torch.equal(before, shapes_test.images[:50])
    assert torch.equal(fresh.render_batch(factors[::-1].copy()), before.flip(0))
    for row, image in zip(factors[:5], before[:5], strict=True):
        assert torch.equal(fresh.render(*row.tolist()), image)


def test_shapes_renders_closed_form_areas_and_colours() -> None:
    grid = SHAPES_GRID
    centre = grid.positions.index((0, 0))
    radius = grid.scales[2]
    expected = {
        "circle": math.pi * radius**2,
        "ring": math.pi * radius**2 * (1 - 0.55**2),
        "square": (1.5 * radius) ** 2,
        "cross": (2 * 2 * 0.3 * 2 - (2 * 0.3) ** 2) * radius**2,
        "triangle": 3 * math.sqrt(3) / 4 * radius**2,
    }
    for kind, area in expected.items():
        alpha = grid.alpha(grid.shapes.index(kind), centre, 2, 0)
        assert alpha.min() >= 0 and alpha.max() <= 1
        assert alpha.sum() == pytest.approx(area, rel=0.02), kind
    # centre pixel is the foreground colour, the corner the background colour
    image = grid.render(grid.shapes.index("circle"), centre, 2, 0, 1, 3)
    assert image[:, 16, 16].tolist() == list(grid.fg_colors[1])
    assert image[:, 0, 0].tolist() == list(grid.bg_colors[3])


def test_shapes_are_never_cut_off_by_the_border() -> None:
    grid = SHAPES_GRID
    for shape in range(len(grid.shapes)):
        centred = grid.alpha(shape, grid.positions.index((0, 0)), 2, 1).sum()
        for position in range(len(grid.positions)):
            assert grid.alpha(shape, position, 2, 1).sum() == pytest.approx(centred)
    with pytest.raises(ValueError, match="cut off"):
        ShapesGrid(scales=(14.0,))


def test_shapes_grid_enumeration_and_indexing() -> None:
    grid = SHAPES_GRID
    assert grid.FACTORS == ("shape", "position", "scale", "rotation", "fg_color", "bg_color")
    assert grid.sizes == (6, 25, 3, 6, 6, 4)
    assert grid.num_tuples == math.prod(grid.sizes)
    tuples = np.array(list(grid.factor_tuples()))
    assert tuples.shape == (grid.num_tuples, 6)
    assert np.array_equal(grid.tuple_to_index(tuples), np.arange(grid.num_tuples))
    assert np.array_equal(grid.index_to_tuple(np.arange(grid.num_tuples)), tuples)
    sample = grid.sample(100, np.random.default_rng(0))
    assert sample.shape == (100, 6) and (sample < np.array(grid.sizes)).all()
    assert grid.describe((5, 12, 0, 0, 0, 0))["shape"] == "star"
    assert grid.describe((5, 12, 0, 0, 0, 0))["position"] == (0, 0)


def test_nuisance_factors_make_raw_pixels_a_poor_linear_representation() -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder
    from threadpoolctl import threadpool_limits

    train = load_dataset("shapes", "train", limit=900)
    test = load_dataset("shapes", "test", limit=450)
    y_train, y_test = train.labels.numpy(), test.labels.numpy()

    def pixels(data: ImageDataset) -> np.ndarray:
        return data.images.reshape(len(data), -1).numpy() / 255.0

    # one BLAS thread: threaded BLAS spin-waits and runs 10x slower on a busy 2-core machine
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # 100 steps are plenty for the claim
        raw = LogisticRegression(max_iter=100).fit(pixels(train), y_train)
    assert 1 / 6 - 0.05 < raw.score(pixels(test), y_test) < 0.6  # measured about 0.2

    # the true shape factor classifies perfectly, the five nuisance factors carry no label at all
    encoder = OneHotEncoder(categories=[range(n) for n in SHAPES_GRID.sizes])
    codes = encoder.fit_transform(train.factors.numpy()), encoder.transform(test.factors.numpy())
    shape_columns = slice(0, SHAPES_GRID.sizes[0])
    exact = LogisticRegression().fit(codes[0][:, shape_columns], y_train)
    assert exact.score(codes[1][:, shape_columns], y_test) == 1.0
    nuisance = LogisticRegression().fit(codes[0][:, 6:], y_train)
    assert nuisance.score(codes[1][:, 6:], y_test) < 0.3


def test_shapes_generation_is_fast() -> None:
    timings = []
    for _ in range(2):  # cold caches each time: the budget covers rendering every mask
        shapes_module._alpha.cache_clear()
        shapes_module._centred_alpha.cache_clear()
        shapes_module._grid_stats.cache_clear()
        start = time.perf_counter()
        load_dataset("shapes", "train", seed=5)
        load_dataset("shapes", "test", seed=5)
        timings.append(time.perf_counter() - start)
    assert min(timings) < 3.0  # the budget for 8000 images on 2 cores; measured about 1 s


def test_image_size_resizes() -> None:
    small = load_dataset("shapes", "test", image_size=16, limit=12)
    assert small.images.shape == (12, 3, 16, 16) and small.images.dtype == torch.uint8


# ---------------------------------------------------------------- digits


def test_digits_split_is_fixed_stratified_and_three_channel() -> None:
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test", seed=7)
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    assert len(train) + len(test) == len(load_digits().target) == 1797
    assert train.classes == [str(d) for d in range(10)]
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey replicated to RGB
    fractions = torch.bincount(test.labels, minlength=10) / torch.bincount(
        torch.cat([train.labels, test.labels]), minlength=10
    )
    assert ((fractions > 0.15) & (fractions < 0.25)).all()
    assert not _image_keys(train) & _image_keys(test)
    assert torch.equal(load_dataset("digits", "test").images, test.images)  # seed-independent
    assert train.mean == test.mean and len(train.mean) == 3
    limited = load_dataset("digits", "train", limit=50)
    assert len(limited) == 50 and torch.bincount(limited.labels).tolist() == [5] * 10


# ---------------------------------------------------------------- CIFAR and STL-10 files


def _pickle(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _cifar_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """HWC images as in torchvision's ``.data``, and their 3072-byte rows (R, G, B planes)."""
    hwc = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return hwc, hwc.transpose(0, 3, 1, 2).reshape(n, 3072)


def _write_cifar10(root: Path, rng: np.random.Generator) -> None:
    base = root / "cifar-10-batches-py"
    for name, n in [*[(f"data_batch_{i}", 4) for i in range(1, 6)], ("test_batch", 6)]:
        _, rows = _cifar_rows(rng, n)
        _pickle(base / name, {"data": rows, "labels": rng.integers(0, 10, n).tolist()})
    _pickle(base / "batches.meta", {"label_names": [f"c{i}" for i in range(10)]})


def _write_cifar100(root: Path, rng: np.random.Generator) -> None:
    base = root / "cifar-100-python"
    for name, n in (("train", 12), ("test", 5)):
        _, rows = _cifar_rows(rng, n)
        entry = {"data": rows, "fine_labels": rng.integers(0, 100, n).tolist(),
                 "coarse_labels": rng.integers(0, 20, n).tolist()}  # fmt: skip
        _pickle(base / name, entry)
    _pickle(base / "meta", {"fine_label_names": [f"f{i}" for i in range(100)]})


def _write_stl10(root: Path, rng: np.random.Generator) -> None:
    base = root / "stl10_binary"
    base.mkdir(parents=True)
    for prefix, n in (("train", 7), ("test", 3)):
        chw = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        # the published files store each channel column-major
        (base / f"{prefix}_X.bin").write_bytes(chw.transpose(0, 1, 3, 2).tobytes())
        (base / f"{prefix}_y.bin").write_bytes(
            (rng.integers(0, 10, n) + 1).astype(np.uint8).tobytes()
        )
    (base / "class_names.txt").write_text("\n".join(f"s{i}" for i in range(10)) + "\n")


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let torchvision's own readers accept the small files the tests write (they check md5s)."""
    from torchvision.datasets import CIFAR10, STL10, cifar

    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(STL10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar_reader_matches_torchvision(name: str, split: str, tmp_path: Path, no_md5) -> None:
    from torchvision.datasets import CIFAR10, CIFAR100

    (_write_cifar10 if name == "cifar10" else _write_cifar100)(tmp_path, np.random.default_rng(0))
    ours = load_dataset(name, split, data_root=str(tmp_path))
    reference = (CIFAR10 if name == "cifar10" else CIFAR100)(str(tmp_path), train=split == "train")
    assert ours.images.dtype == torch.uint8 and ours.images.shape[1:] == (3, 32, 32)
    assert np.array_equal(ours.images.permute(0, 2, 3, 1).numpy(), reference.data)
    assert ours.labels.tolist() == list(reference.targets)
    assert ours.classes == reference.classes and ours.name == name


@pytest.mark.parametrize("split", ["train", "test"])
def test_stl10_reader_matches_torchvision(split: str, tmp_path: Path, no_md5) -> None:
    from torchvision.datasets import STL10

    _write_stl10(tmp_path, np.random.default_rng(1))
    ours = load_dataset("stl10", split, data_root=str(tmp_path))
    reference = STL10(str(tmp_path), split=split)
    assert ours.images.shape[1:] == (3, 96, 96) and ours.images.is_contiguous()
    assert np.array_equal(ours.images.numpy(), reference.data)
    assert ours.labels.tolist() == reference.labels.tolist()
    assert ours.classes == reference.classes
    assert load_dataset("stl10", split, data_root=str(tmp_path), image_size=32).image_size == 32


@pytest.mark.parametrize(
    ("name", "title", "folder"),
    [("cifar10", "CIFAR-10", "cifar-10-batches-py"), ("cifar100", "CIFAR-100", "cifar-100-python"),
     ("stl10", "STL-10", "stl10_binary")],
)  # fmt: skip
def test_missing_files_say_where_they_go(
    name: str, title: str, folder: str, tmp_path: Path
) -> None:
    with pytest.raises(UserError) as err:
        load_dataset(name, data_root=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert f"{title} not found under {tmp_path / 'nowhere'}" in message
    assert "download=true" in message and folder in message


def test_offline_download_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    from torchvision.datasets import utils

    def offline(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr(utils, "download_and_extract_archive", offline)
    with pytest.raises(UserError, match="could not download CIFAR-10 to .*no route to host"):
        load_dataset("cifar10", data_root=str(tmp_path), download=True)


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_cifar_reader_refuses_code_in_pickles(tmp_path: Path) -> None:
    _write_cifar10(tmp_path, np.random.default_rng(2))
    marker = tmp_path / "pwned"
    _pickle(tmp_path / "cifar-10-batches-py" / "test_batch", {"data": _Exploit(marker)})
    with pytest.raises(UserError, match="is not a CIFAR batch file.*refusing"):
        load_dataset("cifar10", "test", data_root=str(tmp_path))
    assert not marker.exists()


# ---------------------------------------------------------------- imagefolder

COLOURS = {"apple": (200, 30, 30), "grass": (30, 200, 30), "sky": (30, 30, 200)}


def _write_folder(root: Path, per_class: int) -> None:
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):  # odd sizes and modes: resize, crop and RGB conversion run
            Image.new("RGB", (40 + i, 24), colour).save(root / name / f"{i}.png")
        (root / name / "notes.txt").write_text("ignored: not an image")


def _assert_labels_match_colours(data: ImageDataset) -> None:
    classes = list(COLOURS)
    assert data.classes == classes
    for image, label in zip(data.images, data.labels, strict=True):
        assert image[:, 5, 5].tolist() == list(COLOURS[classes[label]])


def test_imagefolder_flat_layout_holds_out_a_stratified_fifth(tmp_path: Path) -> None:
    _write_folder(tmp_path, per_class=5)
    train = load_dataset("imagefolder", "train", data_root=str(tmp_path))
    test = load_dataset("imagefolder", "test", data_root=str(tmp_path), seed=9)
    assert train.images.shape == (12, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert torch.bincount(test.labels).tolist() == [1, 1, 1]
    _assert_labels_match_colours(train)
    _assert_labels_match_colours(test)
    small = load_dataset("imagefolder", data_root=str(tmp_path), image_size=8, limit=6)
    assert small.images.shape == (6, 3, 8, 8) and torch.bincount(small.labels).tolist() == [2] * 3


def test_imagefolder_train_test_layout(tmp_path: Path) -> None:
    _write_folder(tmp_path / "train", per_class=3)
    _write_folder(tmp_path / "test", per_class=2)
    train = load_dataset("imagefolder", "train", data_root=str(tmp_path))
    test = load_dataset("imagefolder", "test", data_root=str(tmp_path))
    assert (len(train), len(test)) == (9, 6)
    _assert_labels_match_colours(train)
    _assert_labels_match_colours(test)


def test_imagefolder_errors_say_what_is_expected(tmp_path: Path) -> None:
    with pytest.raises(
        UserError, match="imagefolder needs data_root: a folder with one sub-folder"
    ):
        load_dataset("imagefolder")
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("imagefolder", data_root=str(tmp_path / "missing"))
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(UserError, match="is not a directory"):
        load_dataset("imagefolder", data_root=str(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no class sub-folders in .*empty"):
        load_dataset("imagefolder", data_root=str(tmp_path / "empty"))
    (tmp_path / "hollow" / "cats").mkdir(parents=True)
    with pytest.raises(UserError, match="no images in .*cats"):
        load_dataset("imagefolder", data_root=str(tmp_path / "hollow"))
    (tmp_path / "half" / "train" / "cats").mkdir(parents=True)
    with pytest.raises(UserError, match="has train/ but no test/"):
        load_dataset("imagefolder", data_root=str(tmp_path / "half"))
    (tmp_path / "broken" / "cats").mkdir(parents=True)
    (tmp_path / "broken" / "cats" / "0.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match="cannot read image .*0.png"):
        load_dataset("imagefolder", data_root=str(tmp_path / "broken"))
