"""``explorer import`` (issue 29, part 2): each format written here by the test, imported, and the
run's features checked against the encoder's own forward pass, computed here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from explorer.analysis.probes import probe_features
from explorer.builders import load_splits
from explorer.encoder_import import describe, import_encoder
from explorer.errors import UserError
from explorer.models import create_backbone, projector_from_spec
from explorer.readings.gallery import checkpoint_features
from explorer.rundir.artifacts import load_analysis
from explorer.rundir.run import list_runs, open_run
from explorer.trained_model import load_trained_model
from tests.conftest import ROOT

CLASSES = ("red", "green", "blue")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny imagefolder: 3 classes of 10 noisy 16x16 PNGs, each class tinted its colour."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(10):
            pixels = rng.integers(0, 120, (16, 16, 3))
            pixels[..., c] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def overrides(folder: Path) -> list[str]:
    return [f"data_root={folder}", "dataset=imagefolder", "analysis_projection=pca",
            "batch_size=8", "device=cpu", "knn_k=5", "analysis_samples=20"]


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    """torchvision's resnet18 (seeded), the network trained 'elsewhere'."""
    torch.manual_seed(1)
    model = torchvision.models.resnet18(weights=None)
    with torch.no_grad():  # BatchNorm statistics that are not the defaults, so they must load
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def own_features(encoder: nn.Module, images: torch.Tensor, mean: tuple[float, ...],
                 std: tuple[float, ...]) -> torch.Tensor:
    """The encoder's pooled features (the input of its fc), computed here: (N, 512)."""
    x = (images.float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(
        1, -1, 1, 1)
    trunk = nn.Sequential(*list(encoder.children())[:-1])  # everything but fc
    with torch.no_grad():
        return trunk(x).flatten(1)


def check_features(run_path: Path, encoder: nn.Module) -> None:
    """The run's backbone features (what the Embeddings page's neighbours read, through the
    run's checkpoint) equal the encoder's own, and the stored probe is of those features."""
    run = open_run(run_path)
    config = run.config()
    train, test = load_splits(config)
    indices = np.arange(len(test))
    got = checkpoint_features(run, config, 1, test, indices)
    want = own_features(encoder, test.images, test.mean, test.std)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5)
    train_x = own_features(encoder, train.images, train.mean, train.std)
    knn = probe_features(train_x, train.labels, want, test.labels, len(CLASSES), knn_k=5)["knn"]
    assert run.probe()["methods"]["trained"]["knn"]["accuracy"] == pytest.approx(
        knn["accuracy"])
    analysis = load_analysis(run, 1)
    assert analysis["arrays"]["labels"].tolist() == test.labels.tolist()
    assert run.status()["state"] == "finished"


def test_lightning_checkpoint_with_backbone_prefix_and_projector(
        folder: Path, encoder: nn.Module, tmp_path: Path) -> None:
    torch.manual_seed(2)
    head = nn.Sequential(nn.Linear(512, 64), nn.BatchNorm1d(64), nn.ReLU(), nn.Linear(64, 16))
    head.eval()
    state = {f"backbone.{k}": v for k, v in encoder.state_dict().items() if not k.startswith("fc")}
    state.update({f"projector.{k}": v for k, v in head.state_dict().items()})
    state["classifier.weight"] = torch.zeros(3, 512)  # solo-learn's online probe: not loaded
    file = tmp_path / "solo.ckpt"
    torch.save({"state_dict": state, "epoch": 7, "global_step": 70}, file)
    result = import_encoder(file, arch="resnet18", overrides=overrides(folder),
                            runs_dir=tmp_path / "runs", name="solo")
    imported = result.imported
    assert imported["prefixes_stripped"] == {"backbone.": 120, "projector.": 9}
    assert imported["not_loaded"] == ["classifier.weight"]
    assert imported["projector_spec"] == "linear:64:bias,bn,relu,linear:16:bias"
    assert imported["source_epoch"] == 7
    assert "not loaded (1 tensors): classifier.weight" in describe(result)
    check_features(result.run.path, encoder)
    # the projector is the file's: z = head(h)
    run = open_run(result.run.path)
    config = run.config()
    model, epoch = load_trained_model(run, config, 3)
    assert epoch == 1
    h = torch.randn(5, 512)
    with torch.no_grad():
        np.testing.assert_allclose(model.eval().projector(h), head(h), rtol=1e-5, atol=1e-6)
    record = json.loads((result.run.path / "config.json").read_text())
    assert record["imported"]["kind"] == "weights" and record["config"]["loss"] == "simclr"
    assert [r.name for r in list_runs(tmp_path / "runs")] == ["solo"]
    assert not (tmp_path / "runs" / ".staging").exists()
    every_page_reads(tmp_path / "runs", "solo")


def every_page_reads(runs: Path, name: str) -> None:
    """The pages a run is read on (issue 29: Runs, Embeddings, Spectrum, Probe) draw the
    imported run without an exception, each with its chart or table."""
    import os

    from streamlit.testing.v1 import AppTest

    from tests.conftest import DASHBOARD

    os.environ["EXPLORER_RUNS_DIR"] = str(runs)
    try:
        for page in ("runs_page", "embeddings_page", "spectrum_page", "probe_page"):
            app = AppTest.from_file(str(DASHBOARD / f"{page}.py"), default_timeout=180)
            app.session_state["selected_run"] = name
            app.run()
            assert not app.exception, (page, [e.message for e in app.exception])
            drawn = len(app.get("plotly_chart")) + len(app.dataframe)
            assert drawn, f"{page} drew no chart or table of {name}"
    finally:
        del os.environ["EXPLORER_RUNS_DIR"]


def test_plain_state_dict_with_module_prefix(folder: Path, encoder: nn.Module,
                                             tmp_path: Path) -> None:
    file = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in encoder.state_dict().items()}, file)
    result = import_encoder(file, arch="resnet18", overrides=overrides(folder),
                            runs_dir=tmp_path / "runs")
    assert result.run.name == "ddp-imagefolder"
    assert result.imported["prefixes_stripped"] == {"module.": 122}
    assert result.imported["not_loaded"] == ["module.fc.weight", "module.fc.bias"]
    assert result.imported["projector_spec"] == "identity"
    check_features(result.run.path, encoder)
    # no projector in the file: the identity, so the projector's features are h's direction
    analysis = load_analysis(open_run(result.run.path), 1)
    assert analysis["projector_features"] == {"reading": "z/|z|", "mu": None}
    with pytest.raises(UserError, match="already exists"):  # never overwritten
        import_encoder(file, arch="resnet18", overrides=overrides(folder),
                       runs_dir=tmp_path / "runs")


def test_safetensors_as_a_torchvision_model(folder: Path, encoder: nn.Module,
                                            tmp_path: Path) -> None:
    file = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(file))
    result = import_encoder(file, arch="torchvision:resnet18", overrides=overrides(folder),
                            runs_dir=tmp_path / "runs", name="tv")
    assert open_run(result.run.path).config().backbone == "torchvision:resnet18"
    assert sorted(result.imported["not_loaded"]) == ["fc.bias", "fc.weight"]
    check_features(result.run.path, encoder)


def test_any_torchvision_classifier_loses_its_last_linear_layer() -> None:
    torch.manual_seed(3)
    model = torchvision.models.mobilenet_v3_small(weights=None).eval()
    backbone = create_backbone("torchvision:mobilenet_v3_small").eval()
    backbone.load_state_dict({k: v for k, v in model.state_dict().items()
                              if not k.startswith("classifier.3")})
    model.classifier[3] = nn.Identity()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert backbone.feature_dim == 1024
        np.testing.assert_allclose(backbone(x), model(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="unknown torchvision classification model 'resnet19'"):
        create_backbone("torchvision:resnet19")
    assert isinstance(projector_from_spec("identity", 8), nn.Identity)


class Opaque:  # torch.save of this object needs this code to load
    def __init__(self) -> None:
        self.weights = torch.zeros(2)


def test_a_pickle_that_needs_code_is_refused_with_one_line(folder: Path, tmp_path: Path) -> None:
    file = tmp_path / "opaque.pt"
    torch.save(Opaque(), file)
    with pytest.raises(UserError) as err:
        import_encoder(file, arch="resnet18", overrides=overrides(folder),
                       runs_dir=tmp_path / "runs")
    message = str(err.value)
    assert "needs code to unpickle" in message and "Opaque" in message and "\n" not in message
    assert not (tmp_path / "runs").exists() or not list_runs(tmp_path / "runs")


def test_a_shape_mismatch_names_the_key_and_both_shapes(folder: Path, encoder: nn.Module,
                                                        tmp_path: Path) -> None:
    state = dict(encoder.state_dict())
    state["layer1.0.conv1.weight"] = torch.zeros(64, 64, 1, 1)
    file = tmp_path / "wrong.pth"
    torch.save(state, file)
    with pytest.raises(UserError) as err:
        import_encoder(file, arch="resnet18", overrides=overrides(folder),
                       runs_dir=tmp_path / "runs")
    message = str(err.value)
    assert "layer1.0.conv1.weight has shape (64, 64, 1, 1)" in message
    assert "expects (64, 64, 3, 3)" in message and "\n" not in message


def test_unknown_prefixes_and_missing_weights_are_named(folder: Path, encoder: nn.Module,
                                                        tmp_path: Path) -> None:
    file = tmp_path / "teacher.pth"
    torch.save({f"teacher.{k}": v for k, v in encoder.state_dict().items()}, file)
    with pytest.raises(UserError, match=r"holds no weight of backbone resnet18 \(its keys start "
                                        r"with teacher\.\)"):
        import_encoder(file, arch="resnet18", overrides=overrides(folder),
                       runs_dir=tmp_path / "runs")
    partial = {k: v for k, v in encoder.state_dict().items() if not k.startswith("layer4")}
    torch.save(partial, file)
    with pytest.raises(UserError, match="lacks 25 of the 100 weights of resnet18, first "
                                        "backbone.layer4.0.conv1.weight"):
        import_encoder(file, arch="resnet18", overrides=overrides(folder),
                       runs_dir=tmp_path / "runs")
    with pytest.raises(UserError, match="say which network with --arch"):
        import_encoder(file, overrides=overrides(folder), runs_dir=tmp_path / "runs")
    with pytest.raises(UserError, match="backbone= is set by the import"):
        import_encoder(file, arch="resnet18", overrides=[*overrides(folder), "backbone=cnn-small"],
                       runs_dir=tmp_path / "runs")


def features_file(tmp_path: Path, with_images: bool = True) -> tuple[Path, dict[str, np.ndarray]]:
    """60 rows of 3 classes, 8-d features around each class's centre; the last 15 the test."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(3), 20)
    centres = rng.normal(size=(3, 8)) * 3
    data = {"features": (centres[labels] + rng.normal(size=(60, 8))).astype(np.float32),
            "labels": labels, "split": (np.arange(60) % 4 == 0).astype(np.int64),
            "classes": np.array(CLASSES)}
    if with_images:
        data["images"] = rng.integers(0, 255, (60, 12, 12, 3)).astype(np.uint8)
    path = tmp_path / "embeddings.npz"
    np.savez(path, **data)
    return path, data


def test_features_file(tmp_path: Path) -> None:
    path, data = features_file(tmp_path)
    result = import_encoder(path, overrides=["analysis_projection=pca", "knn_k=5"],
                            runs_dir=tmp_path / "runs")
    run = open_run(result.run.path)
    assert run.name == "embeddings-features" and run.config().dataset == "npz"
    test_rows = np.flatnonzero(data["split"] == 1)
    train_rows = np.flatnonzero(data["split"] == 0)
    analysis = load_analysis(run, 1)
    arrays = analysis["arrays"]
    assert arrays["indices"].tolist() == list(range(len(test_rows)))
    assert arrays["labels"].tolist() == data["labels"][test_rows].tolist()
    # the spectrum of E[f f^T], f = x/|x|, over the training rows, computed here
    u = data["features"][train_rows].astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    want = np.sort(np.linalg.eigvalsh(u.T @ u / len(u)))[::-1]
    np.testing.assert_allclose(arrays["graph_c_eigs"], want, atol=1e-6)
    # the PCA layout is of the test rows' features (up to each axis's sign)
    x = data["features"][test_rows].astype(np.float64)
    x -= x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    np.testing.assert_allclose(np.abs(arrays["pca"]), np.abs(x @ vt[:2].T), rtol=1e-3,
                               atol=1e-3)
    assert "no cross-view spectrum" in analysis["views"] and "cross_eigs_mean" not in arrays
    probe = run.probe()
    assert probe["n_train"] == 45 and probe["n_test"] == 15
    assert probe["methods"]["trained"]["knn"]["accuracy"] == 1.0  # well-separated classes
    # the pages' thumbnails: the npz dataset gives the test split's images, in row order
    _, test = load_splits(run.config())
    images = torch.from_numpy(data["images"][test_rows]).permute(0, 3, 1, 2)
    assert test.images.shape == (15, 3, 32, 32) and test.classes == list(CLASSES)
    from explorer.data.base import resize_images

    assert torch.equal(test.images, resize_images(images.contiguous(), 32))
    # explorer analyze recomputes it from the stored features
    from explorer.analysis.run import analyze_run

    again = analyze_run(run, force=True, progress=False)
    assert again[0]["probes"] == analysis["probes"]


def test_features_file_mistakes(tmp_path: Path) -> None:
    path, data = features_file(tmp_path, with_images=False)
    with pytest.raises(UserError, match="--arch is for weights files"):
        import_encoder(path, arch="resnet18", runs_dir=tmp_path / "runs")
    with pytest.raises(UserError, match="dataset= does not apply"):
        import_encoder(path, overrides=["dataset=shapes"], runs_dir=tmp_path / "runs")
    np.savez(path, features=data["features"], labels=data["labels"][:10])
    with pytest.raises(UserError, match="'labels' has 10 rows, 'features' 60"):
        import_encoder(path, runs_dir=tmp_path / "runs")
    np.savez(path, features=data["features"], labels=np.array(["a"] * 60, dtype=object))
    with pytest.raises(UserError, match="need pickle"):
        import_encoder(path, runs_dir=tmp_path / "runs")
    with pytest.raises(UserError, match="not '.h5'"):
        import_encoder(tmp_path / "x.h5", runs_dir=tmp_path / "runs")
    assert not list_runs(tmp_path / "runs")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "explorer", "import", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                               "PATH": "/usr/bin:/bin"})


def test_cli(folder: Path, tmp_path: Path) -> None:
    bad = tmp_path / "opaque.pt"
    torch.save(Opaque(), bad)
    done = _cli(str(bad), "--arch", "resnet18", *overrides(folder), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unpickle" in lines[0]
    path, _ = features_file(tmp_path)
    done = _cli(str(path), "analysis_projection=pca", "--name", "emb", "knn_k=5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run directory: runs/emb" in done.stdout and "kNN" in done.stdout
    assert open_run(tmp_path / "runs" / "emb").status()["state"] == "finished"
