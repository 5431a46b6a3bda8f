"""The analysis's projector features, probes and layouts against independent references: the
model's own forward pass (not the analysis's backbone-then-projector path), clip(z) written in
NumPy, scikit-learn's kNN, logistic regression and PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from explorer.analysis.checkpoint import analyze_checkpoint
from explorer.analysis.sample import evaluation_sample
from explorer.config import build_config
from explorer.data import load_dataset
from explorer.train import build_model
from tests.conftest import TINY


def _sample():
    train = load_dataset("shapes", "train", limit=160, seed=0)
    test = load_dataset("shapes", "test", limit=60, seed=0)
    return evaluation_sample(train, test, samples=160, seed=0)


def _z(model: torch.nn.Module, images: torch.Tensor, mean, std) -> np.ndarray:  # noqa: ANN001
    """Projector outputs of uint8 images through the model's own forward, in eval mode."""
    x = images.float() / 255
    x = (x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        _, z, _ = model.eval()(x)
    return z.double().numpy()


def _clip(z: np.ndarray, mu: float) -> np.ndarray:
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return np.where(norms >= np.sqrt(mu), z * np.sqrt(mu) / norms, z)


def _analysed(loss: str):  # noqa: ANN202
    sample = _sample()
    torch.manual_seed(0)
    model = build_model(build_config(overrides=[*TINY, f"loss={loss}"]), in_channels=3)
    train_z = _z(model, sample.train.images, sample.train.mean, sample.train.std)
    # μ at the median squared norm: half the training rows are clipped, half are not
    mu = float(np.median(np.sum(train_z**2, axis=1)))
    config = build_config(overrides=[*TINY, f"loss={loss}", f"mu={mu}", "knn_k=15"])
    record, arrays = analyze_checkpoint(model, sample, config, projections=("pca",))
    return sample, model, config, record, arrays


@pytest.mark.parametrize("loss", ["spectral", "simclr"])
def test_projector_probes_and_layout_match_scikit_learn_on_the_models_own_outputs(
    loss: str,
) -> None:
    sample, model, config, record, arrays = _analysed(loss)
    train, test = sample.train, sample.test
    mean, std = train.mean, train.std  # the analysis normalises both splits with the train's
    train_z, test_z = _z(model, train.images, mean, std), _z(model, test.images, mean, std)
    if loss == "spectral":
        assert record["projector_features"] == {"reading": "clip(z)", "mu": config.mu}
        train_f, test_f = _clip(train_z, config.mu), _clip(test_z, config.mu)
        norms = np.linalg.norm(train_f, axis=1)
        assert norms.max() <= np.sqrt(config.mu) * (1 + 1e-9)
        assert 0 < np.mean(norms >= np.sqrt(config.mu) * (1 - 1e-9)) < 1  # some clipped
    else:
        assert record["projector_features"] == {"reading": "z/|z|", "mu": None}
        train_f = train_z / np.linalg.norm(train_z, axis=1, keepdims=True)
        test_f = test_z / np.linalg.norm(test_z, axis=1, keepdims=True)

    probes = record["probes_projector"]
    assert set(probes) == set(record["probes"]) == {"knn", "linear"}
    assert set(probes["knn"]) == {"accuracy", "per_class_accuracy", "confusion"}
    y_train, y_test = train.labels.numpy(), test.labels.numpy()
    m = len(y_test)

    # kNN: cosine similarity s weighted exp(s / T); on unit vectors s = 1 - d²/2
    unit = lambda f: f / np.linalg.norm(f, axis=1, keepdims=True)  # noqa: E731
    knn = KNeighborsClassifier(
        n_neighbors=config.knn_k,
        weights=lambda d: np.exp((1 - d**2 / 2) / config.knn_temperature),
    ).fit(unit(train_f), y_train)
    assert probes["knn"]["accuracy"] == pytest.approx(knn.score(unit(test_f), y_test), abs=1 / m)
    confusion = np.array(probes["knn"]["confusion"])
    assert confusion.sum() == m and np.trace(confusion) / m == probes["knn"]["accuracy"]

    # linear: the same objective as LogisticRegression(C = 1 / (weight decay · N))
    mu_f, sd_f = train_f.mean(0), np.maximum(train_f.std(0, ddof=1), 1e-6)
    reference = LogisticRegression(C=1 / (1e-3 * len(y_train)), max_iter=5000)
    reference.fit((train_f - mu_f) / sd_f, y_train)
    expected = reference.score((test_f - mu_f) / sd_f, y_test)
    assert probes["linear"]["accuracy"] == pytest.approx(expected, abs=2 / m)

    # the layout is PCA of the test sample's f, up to each axis's sign
    layout = arrays["pca_projector"]
    assert layout.shape == (m, 2) and layout.dtype == np.float32
    pca = PCA(n_components=2).fit_transform(test_f)
    np.testing.assert_allclose(np.abs(layout), np.abs(pca), rtol=1e-3, atol=1e-4)
    assert "umap_projector" not in arrays  # as `projections` says, like the backbone's
    for stage in ("projector_features", "projector_probes", "pca_projector"):
        assert stage in record["timings"]


def test_the_projector_layout_follows_the_previous_checkpoints() -> None:
    sample, model, config, record, arrays = _analysed("spectral")
    flipped = {"pca_projector": -arrays["pca_projector"], "pca": arrays["pca"]}
    _, again = analyze_checkpoint(model, sample, config, projections=("pca",), previous=flipped)
    np.testing.assert_allclose(again["pca_projector"], -arrays["pca_projector"], atol=1e-5)
    np.testing.assert_allclose(again["pca"], arrays["pca"], atol=1e-5)
