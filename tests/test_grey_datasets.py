"""mnist, fashion-mnist and kmnist: small IDX files written here, read byte for byte as
torchvision's own reader reads them, kept one channel from the files to a trained run.

The files are the published format (gzip'd idx3 images and idx1 labels, big-endian sizes) in
torchvision's layout ``<root>/<Class>/raw/`` or flat in ``<root>`` (Debian's packages' layout);
nothing here reads a real copy of the datasets.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.builders import build_augment, build_model, recipe_name
from explorer.config import build_config, form_problems
from explorer.data import default_image_size, load_dataset
from explorer.data.mnist import IDX_FILES
from explorer.errors import UserError
from explorer.readings.figures import image_grid
from explorer.readings.gallery import positive_pairs
from explorer.rundir.run import open_run
from tests.conftest import DASHBOARD, explorer

# dataset -> (torchvision class, also its folder under data_root; title in messages)
GREY = {"mnist": ("MNIST", "MNIST"), "fashion-mnist": ("FashionMNIST", "Fashion-MNIST"),
        "kmnist": ("KMNIST", "KMNIST")}  # fmt: skip
SIZES = {"train": 40, "test": 20}


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of uint8 ``array``: magic 0x0000 0x08 (unsigned byte) and the number of
    dimensions, each size as a big-endian int32, then the data in C order."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_set(
    root: Path, folder: str | None, seed: int, *, packed: bool = True
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Write the four files of one MNIST-format dataset under ``root/folder/raw`` (torchvision's
    layout), or straight in ``root`` when ``folder`` is None (Debian's), gzip'd as published
    (``packed``) or as torchvision leaves them after a download.

    Returns:
        split -> (images (N, 28, 28) uint8, labels (N,) uint8), N = 40 train, 20 test, every
        class equally often in a shuffled order.
    """
    rng = np.random.default_rng(seed)
    raw = root if folder is None else root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        n = SIZES[split]
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte"
            if packed:
                (raw / f"{name}.gz").write_bytes(gzip.compress(idx_bytes(array)))
            else:
                (raw / name).write_bytes(idx_bytes(array))
        written[split] = (images, labels)
    return written


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize("split", ["train", "test"])
def test_reader_matches_torchvision_byte_for_byte(name: str, split: str, tmp_path: Path) -> None:
    import torchvision.datasets

    folder, _ = GREY[name]
    written = write_idx_set(tmp_path, folder, seed=len(name))
    ours = load_dataset(name, split, data_root=str(tmp_path))  # unpacks the .gz files
    reference = getattr(torchvision.datasets, folder)(str(tmp_path), train=split == "train")
    assert ours.images.dtype == torch.uint8 and ours.images.shape == (SIZES[split], 1, 28, 28)
    assert ours.images.is_contiguous() and ours.name == name
    assert ours.images[:, 0].numpy().tobytes() == reference.data.numpy().tobytes()
    assert ours.labels.tolist() == reference.targets.tolist()
    images, labels = written[split]  # and both are what was written
    assert np.array_equal(ours.images[:, 0].numpy(), images)
    assert ours.labels.tolist() == labels.tolist()
    expected = [str(d) for d in range(10)] if name == "mnist" else reference.classes
    assert ours.classes == expected and len(ours.mean) == len(ours.std) == 1
    assert default_image_size(name) == 28


def test_uncompressed_files_limits_and_sizes_stay_one_channel(tmp_path: Path) -> None:
    written = write_idx_set(tmp_path, "MNIST", seed=1, packed=False)
    ours = load_dataset("mnist", "test", data_root=str(tmp_path))
    assert np.array_equal(ours.images[:, 0].numpy(), written["test"][0])
    small = load_dataset("mnist", "train", data_root=str(tmp_path), limit=20, image_size=32)
    assert small.images.shape == (20, 1, 32, 32)
    assert torch.bincount(small.labels).tolist() == [2] * 10


@pytest.mark.parametrize("name", list(GREY))
def test_missing_files_say_what_to_put_in_data_root(name: str, tmp_path: Path) -> None:
    folder, title = GREY[name]
    with pytest.raises(UserError) as err:
        load_dataset(name, data_root=str(tmp_path / "nowhere"))
    message = str(err.value)
    assert f"{title} not found under {tmp_path / 'nowhere'}" in message and "\n" not in message
    assert "download=true" in message and str(tmp_path / "nowhere" / folder / "raw") in message
    assert all(f in message for f in IDX_FILES)
    # the form says so before a run starts, on the data_root field
    config, found = form_problems(None, {"dataset": name, "data_root": str(tmp_path)})
    assert config is None and found == [("data_root", message.replace("/nowhere", ""))]
    _, found = form_problems(None, {"dataset": name, "data_root": str(tmp_path),
                                    "download": "true"})  # fmt: skip
    assert found == []


@pytest.mark.parametrize("name", list(GREY))
def test_flat_layout_is_read_where_it_is(name: str, tmp_path: Path) -> None:
    """The four files straight in data_root, gzip'd, as Debian's packages install them (e.g.
    /usr/share/datasets/fashion-mnist/): read back exactly, nothing written beside them."""
    written = write_idx_set(tmp_path, None, seed=10 + len(name))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert before == sorted(f"{f}.gz" for f in IDX_FILES)
    for split in ("train", "test"):
        ours = load_dataset(name, split, data_root=str(tmp_path))
        images, labels = written[split]
        assert ours.images.dtype == torch.uint8 and ours.images.shape == (SIZES[split], 1, 28, 28)
        assert np.array_equal(ours.images[:, 0].numpy(), images)
        assert ours.labels.dtype == torch.int64 and ours.labels.tolist() == labels.tolist()
        assert ours.name == name and len(ours.classes) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no unpacked copies
    # the same classes and statistics as torchvision's layout gives
    write_idx_set(tmp_path / "tv", GREY[name][0], seed=0)
    reference = load_dataset(name, "test", data_root=str(tmp_path / "tv"))
    assert (ours.classes, ours.mean, ours.std) == (reference.classes, reference.mean, reference.std)
    # and the form finds them
    _, found = form_problems(None, {"dataset": name, "data_root": str(tmp_path)})
    assert found == []


def test_flat_layout_uncompressed_and_mixed(tmp_path: Path) -> None:
    written = write_idx_set(tmp_path, None, seed=6, packed=False)
    gz = tmp_path / "t10k-labels-idx1-ubyte"  # one file gzip'd, the others not
    (tmp_path / f"{gz.name}.gz").write_bytes(gzip.compress(gz.read_bytes()))
    gz.unlink()
    test = load_dataset("fashion-mnist", "test", data_root=str(tmp_path), limit=10)
    assert test.images.shape == (10, 1, 28, 28) and torch.bincount(test.labels).tolist() == [1] * 10
    full = load_dataset("fashion-mnist", "test", data_root=str(tmp_path))
    assert np.array_equal(full.images[:, 0].numpy(), written["test"][0])
    assert full.labels.tolist() == written["test"][1].tolist()


def test_torchvision_layout_wins_over_flat(tmp_path: Path) -> None:
    write_idx_set(tmp_path, None, seed=7)
    written = write_idx_set(tmp_path, "FashionMNIST", seed=8)
    ours = load_dataset("fashion-mnist", "train", data_root=str(tmp_path))
    assert np.array_equal(ours.images[:, 0].numpy(), written["train"][0])


def test_some_files_straight_in_data_root_say_which_are_missing(tmp_path: Path) -> None:
    write_idx_set(tmp_path, None, seed=2)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError) as err:
        load_dataset("mnist", data_root=str(tmp_path))
    message = str(err.value)
    assert "\n" not in message and all(f in message for f in IDX_FILES)
    assert f"in {tmp_path / 'MNIST' / 'raw'} (torchvision's layout) or in {tmp_path}" in message
    assert message.endswith(f"; {tmp_path} lacks t10k-labels-idx1-ubyte")


def test_a_damaged_flat_file_is_a_user_error(tmp_path: Path) -> None:
    write_idx_set(tmp_path, None, seed=9)
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not an idx file"))
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz is not an IDX file"):
        load_dataset("kmnist", "train", data_root=str(tmp_path))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match="cannot read .*t10k-labels-idx1-ubyte.gz"):
        load_dataset("kmnist", "test", data_root=str(tmp_path))
    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (5, 28, 28))
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(100)))
    with pytest.raises(UserError, match="holds 100 bytes of data, not the 3920"):
        load_dataset("kmnist", "train", data_root=str(tmp_path))


def test_a_damaged_file_is_a_user_error(tmp_path: Path) -> None:
    write_idx_set(tmp_path, "KMNIST", seed=3, packed=False)
    (tmp_path / "KMNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"not an idx file")
    with pytest.raises(UserError, match="KMNIST files in .* are not IDX files.*download again"):
        load_dataset("kmnist", "test", data_root=str(tmp_path))
    (tmp_path / "KMNIST" / "raw" / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (tmp_path / "KMNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="cannot unpack .*train-labels-idx1-ubyte.gz"):
        load_dataset("kmnist", "train", data_root=str(tmp_path))
    assert not list((tmp_path / "KMNIST" / "raw").glob("*.partial"))


def test_offline_download_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from urllib.error import URLError

    from torchvision.datasets import mnist

    def offline(*args, **kwargs):
        raise URLError("no route to host")

    monkeypatch.setattr(mnist, "download_and_extract_archive", offline)
    with pytest.raises(UserError) as err:
        load_dataset("fashion-mnist", data_root=str(tmp_path), download=True)
    message = str(err.value)
    assert message.startswith(f"could not download Fashion-MNIST to {tmp_path}")
    assert "no route to host" in message and "\n" not in message


def test_one_channel_through_recipe_model_and_pictures(tmp_path: Path) -> None:
    write_idx_set(tmp_path, "MNIST", seed=4)
    config = build_config(None, None, {"dataset": "mnist", "data_root": str(tmp_path),
                                       "backbone": "cnn-small"})  # fmt: skip
    assert recipe_name(config) == "digits"  # handwriting: no flips, no hue
    assert recipe_name(build_config(None, None, {"dataset": "fashion-mnist"})) == "fashion"
    data = load_dataset("mnist", "train", data_root=str(tmp_path), limit=10)
    view1, view2 = build_augment(config, data)(data.images)
    assert view1.shape == view2.shape == (10, 1, 28, 28)
    model = build_model(config, data.images.shape[1])
    assert model.backbone(view1).shape == (10, model.feature_dim)
    originals, shown1, _ = positive_pairs(config, data)
    assert originals.shape == shown1.shape == (10, 1, 28, 28)
    assert np.array_equal(originals, data.images.numpy())  # at its own size: the image itself
    assert image_grid(shown1, columns=5, pad=0).shape == (56, 140)  # grey: a 2-D picture


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``mnist-demo`` preset cut to one epoch of batch 16 on written MNIST files, probed and
    analysed: its directory (``data_root`` is absolute, so any working directory reads it)."""
    root = tmp_path_factory.mktemp("grey")
    write_idx_set(root / "data", "MNIST", seed=5)
    explorer(
        "train", "--preset", "mnist-demo", f"data_root={root / 'data'}", "batch_size=16",
        "epochs=1", "warmup_epochs=0", "projector_hidden_dim=32",
        "projector_out_dim=16", "knn_every=1", "knn_k=5", "device=cpu", "analyze=end",
        "analysis_projection=pca", "analysis_samples=20", "--name", "grey", "--no-progress",
        cwd=root, check=True,
    )  # fmt: skip
    return root / "runs" / "grey"


@pytest.mark.slow
def test_one_epoch_of_training_and_probes_on_written_files(grey_run: Path) -> None:
    run = open_run(grey_run)
    assert run.status()["state"] == "finished"
    epochs = [r for r in run.metrics() if r["kind"] == "epoch"]
    assert len(epochs) == 1 and 0 <= epochs[0]["knn_accuracy"] <= 1
    probe = json.loads((run.path / "probe.json").read_text())
    assert set(probe["methods"]) == {"trained", "raw_pixels", "random_init"}
    weights = torch.load(run.weight_checkpoints()[-1][1], map_location="cpu", weights_only=True)
    first_conv = next(v for k, v in _flat(weights) if v.ndim == 4)
    assert first_conv.shape[1] == 1  # the network saw one channel
    config = run.config()
    assert (config.dataset, config.loss, config.augment) == ("mnist", "spectral", "auto")


def _flat(state: object, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor of a (nested) checkpoint dict with its dotted key, in insertion order."""
    if isinstance(state, torch.Tensor):
        return [(prefix, state)]
    if isinstance(state, dict):
        return [item for k, v in state.items() for item in _flat(v, f"{prefix}.{k}")]
    return []


@pytest.mark.slow
def test_the_dashboard_shows_grey_images(grey_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hover sprite, a clicked point's picture and neighbours, the augmentation triples and the
    per-digit probe, on the grey run: one-channel pictures throughout."""
    from PIL import Image
    from streamlit.testing.v1 import AppTest

    from explorer.rundir.artifacts import load_analysis
    from explorer_dashboard.hover import STATIC

    monkeypatch.setenv("EXPLORER_RUNS_DIR", str(grey_run.parent))
    run = open_run(grey_run)
    indices = load_analysis(run, 1)["arrays"]["indices"]
    test = load_dataset("mnist", "test", data_root=run.config().data_root)

    def page(name: str, **state: object) -> AppTest:
        app = AppTest.from_file(str(DASHBOARD / f"{name}_page.py"), default_timeout=120)
        app.session_state["selected_run"] = "grey"
        for key, value in state.items():
            app.session_state[key] = value
        app.run()
        assert not app.exception, [e.message for e in app.exception]
        return app

    app = page("embeddings")
    next(r for r in app.radio if "images on hover" in r.options).set_value("images on hover").run()
    assert not app.exception
    html = app.get("iframe")[0].proto.srcdoc
    sprite_url = html.split("background-image:url('")[1].split("'")[0]
    sprite = Image.open(STATIC / sprite_url.removeprefix("/app/static/"))
    assert sprite.mode == "L"  # a grey PNG, not an RGB copy
    columns = int(html.split("% ")[1].split(")")[0])
    pixels = np.asarray(sprite)
    for row in (0, len(indices) - 1):  # the tile of row r is test image indices[r]
        r, c = divmod(row, columns)
        tile = pixels[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28]
        np.testing.assert_array_equal(tile, test.images[indices[row], 0].numpy())

    clicked = {"run": "grey", "epoch": 1, "images": [int(indices[3])]}
    app = page("embeddings", **{"embedding-selection": clicked})
    assert any(f"Test image {indices[3]}" in h.value for h in app.subheader)
    assert len(app.get("image")) == 2  # the clicked image, then its nearest neighbours
    assert any("Nearest neighbours" in m.value for m in app.markdown)

    app = page("augmentations")  # mnist's recipe is the digits'
    assert any("recipe 'digits'" in m.value for m in app.markdown)
    app = page("probe")  # accuracy per digit and the confusion of digits
    bars, heat = (json.loads(chart.proto.spec)["data"] for chart in app.get("plotly_chart")[:2])
    assert bars[0]["x"] == [str(d) for d in range(10)] and heat[0]["type"] == "heatmap"
