"""Probes against independent references: scikit-learn's kNN, confusion matrix and logistic
regression, a manual eval-mode forward, and toy problems with a known answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.neighbors import KNeighborsClassifier
from torch import nn

from explorer.analysis import probes as probe
from explorer.analysis.probes import (
    ProbeResult,
    extract_features,
    knn_predict,
    knn_probe,
    linear_probe,
    linear_probe_augmented,
    per_class_and_confusion,
)
from explorer.errors import UserError


def _random_split(n: int, dim: int, num_classes: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Continuous random features (no distance ties) and labels covering every class."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, dim, generator=g, dtype=torch.float64)
    labels = torch.arange(n) % num_classes
    return features, labels[torch.randperm(n, generator=g)]


def _blobs(
    n: int, dim: int, num_classes: int, spread: float, seed: int
) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=g) * 3
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return centers[labels] + spread * torch.randn(n, dim, generator=g) + 7.0, labels


# --- kNN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "temperature", "num_classes"),
    [(1, 0.1, 2), (5, 0.07, 3), (20, 0.5, 10), (200, 0.1, 5), (37, 1.0, 4)],
)
def test_knn_matches_sklearn_weighted_knn(k: int, temperature: float, num_classes: int) -> None:
    train, train_labels = _random_split(150, 8, num_classes, seed=k)
    test, _ = _random_split(90, 8, num_classes, seed=k + 1)
    unit = lambda x: (x / x.norm(dim=1, keepdim=True)).numpy()  # noqa: E731
    # On unit vectors |a - b|^2 = 2 - 2 cos(a, b), so cos = 1 - d^2 / 2.
    reference = KNeighborsClassifier(
        n_neighbors=min(k, len(train)),
        weights=lambda d: np.exp((1 - d**2 / 2) / temperature),
    ).fit(unit(train), train_labels.numpy())
    expected = reference.predict(unit(test))
    got = knn_predict(train, train_labels, test, num_classes, k=k, temperature=temperature)
    np.testing.assert_array_equal(got.numpy(), expected)


def test_knn_chunking_and_float32_agree_with_one_block(monkeypatch: pytest.MonkeyPatch) -> None:
    train, train_labels = _random_split(200, 16, 6, seed=3)
    test, test_labels = _random_split(101, 16, 6, seed=4)
    whole = knn_predict(train, train_labels, test, 6, k=15)
    monkeypatch.setattr(probe, "_KNN_CHUNK", 7)
    np.testing.assert_array_equal(knn_predict(train, train_labels, test, 6, k=15), whole)
    np.testing.assert_array_equal(
        knn_predict(train.float(), train_labels, test.float(), 6, k=15), whole
    )
    result = knn_probe(train, train_labels, test, test_labels, 6, k=15)
    assert result.accuracy == pytest.approx((whole == test_labels).double().mean().item())


def test_knn_small_temperature_is_finite_and_tends_to_one_nn() -> None:
    train, train_labels = _random_split(120, 8, 4, seed=5)
    test, _ = _random_split(60, 8, 4, seed=6)
    one_nn = knn_predict(train, train_labels, test, 4, k=1)
    sharp = knn_predict(train.float(), train_labels, test.float(), 4, k=10, temperature=1e-5)
    np.testing.assert_array_equal(sharp.numpy(), one_nn.numpy())


def test_knn_rejects_bad_settings() -> None:
    train, labels = _random_split(20, 4, 2, seed=0)
    with pytest.raises(UserError):
        knn_probe(train, labels, train, labels, 2, k=0)
    with pytest.raises(UserError):
        knn_probe(train, labels, train, labels, 2, temperature=0.0)
    with pytest.raises(ValueError):
        knn_probe(train, labels[:-1], train, labels, 2)
    with pytest.raises(ValueError):
        knn_probe(train, labels + 5, train, labels, 2)


# --- per-class accuracy and confusion ----------------------------------------------------------


def test_confusion_and_per_class_match_sklearn_and_manual() -> None:
    g = torch.Generator().manual_seed(0)
    num_classes = 5
    labels = torch.randint(0, 4, (300,), generator=g)  # class 4 never appears as a label
    predictions = torch.randint(0, num_classes, (300,), generator=g)
    per_class, confusion = per_class_and_confusion(predictions, labels, num_classes)
    expected = confusion_matrix(labels.numpy(), predictions.numpy(), labels=range(num_classes))
    np.testing.assert_array_equal(np.array(confusion), expected)
    for c in range(4):
        mask = labels == c
        assert per_class[c] == pytest.approx((predictions[mask] == c).double().mean().item())
    assert per_class[4] is None
    with pytest.raises(ValueError):
        per_class_and_confusion(predictions, labels, 3)


def test_probe_result_round_trips_through_json() -> None:
    result = ProbeResult(0.5, [1.0, 0.0, None], [[1, 0, 0], [1, 0, 0], [0, 0, 0]])
    restored = ProbeResult.from_dict(json.loads(json.dumps(result.to_dict(), allow_nan=False)))
    assert restored == result
    train, labels = _random_split(40, 4, 3, seed=1)
    scored = knn_probe(train, labels, train, labels, 3, k=5)
    assert ProbeResult.from_dict(json.loads(json.dumps(scored.to_dict()))) == scored
    with pytest.raises(ValueError):
        ProbeResult.from_dict({"accuracy": 1.0})


# --- linear probe on features -----------------------------------------------------------------


def test_linear_probe_separates_gaussian_blobs() -> None:
    train, train_labels = _blobs(600, 32, 5, spread=0.3, seed=0)
    test, test_labels = _blobs(300, 32, 5, spread=0.3, seed=0)
    result = linear_probe(train, train_labels, test, test_labels, 5)
    assert result.accuracy == 1.0
    assert all(a == 1.0 for a in result.per_class_accuracy)


def test_linear_probe_agrees_with_sklearn_logistic_regression() -> None:
    num_classes, n, weight_decay = 6, 1500, 1e-3
    g = torch.Generator().manual_seed(1)
    centers = torch.randn(num_classes, 40, generator=g) * 0.5

    def sample(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = torch.randint(0, num_classes, (count,), generator=g)
        return centers[labels] + torch.randn(count, 40, generator=g), labels

    train, train_labels = sample(n)
    test, test_labels = sample(1000)
    first = linear_probe(train, train_labels, test, test_labels, num_classes, weight_decay=1e-3)
    assert (
        linear_probe(train, train_labels, test, test_labels, num_classes) == first
    )  # deterministic
    assert 0.4 < first.accuracy < 0.95  # a genuinely hard problem

    mean, std = train.mean(0), train.std(0)
    # Same objective: sklearn minimises 1/2 |W|^2 + C * sum(loss), ours mean(loss) + wd/2 |W|^2.
    reference = LogisticRegression(C=1 / (weight_decay * n), max_iter=5000)
    reference.fit(((train - mean) / std).numpy(), train_labels.numpy())
    expected = reference.score(((test - mean) / std).numpy(), test_labels.numpy())
    assert first.accuracy == pytest.approx(expected, abs=0.02)


# --- feature extraction -----------------------------------------------------------------------


class _TinyBackbone(nn.Sequential):
    def __init__(self, channels: int = 3, feature_dim: int = 8, with_attribute: bool = True):
        super().__init__(
            nn.Conv2d(channels, feature_dim, 3, padding=1),
            nn.BatchNorm2d(feature_dim),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        if with_attribute:
            self.feature_dim = feature_dim


def _images(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB uint8 images whose class (0, 1, 2) is the brightest channel."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    base = torch.full((n, 3, 1, 1), 60.0)
    base[torch.arange(n), labels] = 190.0
    noise = 40 * torch.randn(n, 3, size, size, generator=g)
    return (base + noise).clamp(0, 255).to(torch.uint8), labels


def _warmed_backbone(**kwargs: int | bool) -> nn.Module:
    torch.manual_seed(0)
    backbone = _TinyBackbone(**kwargs)  # type: ignore[arg-type]
    backbone.train()
    with torch.no_grad():  # non-trivial BN running statistics
        backbone(torch.randn(16, 3, 8, 8) * 2 + 1)
    return backbone


def test_extract_features_matches_manual_eval_forward_and_restores_modes() -> None:
    backbone = _warmed_backbone()
    backbone[1].eval()  # a mixed state that must come back exactly as it was
    modes = [m.training for m in backbone.modules()]
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    images, _ = _images(23, 8, seed=0)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)

    features = extract_features(backbone, images, mean, std, batch_size=5)

    assert [m.training for m in backbone.modules()] == modes
    for key, value in backbone.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    backbone.eval()
    with torch.no_grad():
        x = images.double() / 255
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
        expected = backbone(x.float())
    assert features.dtype == torch.float32 and features.device.type == "cpu"
    assert features.shape == (23, 8)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-5)


# --- the paper's augmented linear probe -------------------------------------------------------


@pytest.mark.parametrize(("image_size", "with_attribute"), [(None, True), (6, False)])
def test_linear_probe_augmented_learns_and_leaves_backbone_frozen(
    image_size: int | None, with_attribute: bool
) -> None:
    """The paper's recipe (lr 30, momentum 0.9), cut to 2 epochs with a decay after the first."""
    backbone = _warmed_backbone(with_attribute=with_attribute)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    train_images, train_labels = _images(96, 8, seed=1)
    test_images, test_labels = _images(60, 8, seed=2)

    result = linear_probe_augmented(
        backbone, train_images, train_labels, test_images, test_labels, 3,
        (0.5, 0.5, 0.5), (0.25, 0.25, 0.25),
        epochs=2, batch_size=16, milestones=(1,), image_size=image_size, progress=with_attribute,
    )  # fmt: skip

    assert result.accuracy > 0.6  # chance is 1/3
    assert np.array(result.confusion).sum() == 60
    assert backbone.training and all(m.training for m in backbone.modules())
    assert all(p.grad is None for p in backbone.parameters())
    for key, value in backbone.state_dict().items():  # weights and BN running stats
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


@pytest.mark.parametrize(("flip_p", "learns"), [(0.0, True), (0.5, False)])
def test_the_augmented_probe_flips_only_when_told(flip_p: float, learns: bool) -> None:
    """Two classes that are each other's mirror image (a bar on the left or on the right), seen
    through raw pixels: without flips a linear head tells them apart; flipped half the time, the
    training labels contradict each other and it cannot (chance is 1/2)."""
    torch.manual_seed(0)
    images = torch.zeros(64, 1, 8, 8, dtype=torch.uint8)
    images[:32, :, :, :2] = 255  # class 0: bar on the left
    images[32:, :, :, -2:] = 255  # class 1: bar on the right
    labels = torch.arange(64) // 32
    backbone = nn.Flatten()
    result = linear_probe_augmented(
        backbone, images, labels, images, labels, 2, (0.5,), (0.5,),
        epochs=6, lr=1.0, batch_size=16, milestones=(5,), crop_scale=(1.0, 1.0), flip_p=flip_p,
    )  # fmt: skip
    assert (result.accuracy == 1.0) if learns else (result.accuracy < 0.9)


def test_the_probe_flips_as_the_runs_recipe_does() -> None:
    from explorer.analysis.probe_run import probe_flip_p
    from explorer.augment import RECIPES
    from explorer.config import build_config

    flips = {name: probe_flip_p(build_config(overrides=[f"dataset={name}"]))
             for name in ("mnist", "kmnist", "fashion-mnist", "cifar10", "shapes-subgrid")}
    assert flips == {"mnist": 0.0, "kmnist": 0.0, "fashion-mnist": RECIPES["fashion"].flip_p,
                     "cifar10": 0.5, "shapes-subgrid": RECIPES["shapes"].flip_p}


def test_the_linear_probe_fits_on_one_thread_and_gives_the_caller_its_count_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A small full-batch fit gains nothing from a second thread, and a loaded machine's
    spin-waits made it many times slower: it runs on one, then restores the caller's count."""
    seen: list[int] = []
    original = probe.F.cross_entropy

    def counted(*args: object, **kwargs: object) -> torch.Tensor:
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(probe.F, "cross_entropy", counted)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        (train_x, train_y), (test_x, test_y) = (_random_split(200, 8, 3, 0),
                                                _random_split(50, 8, 3, 1))
        probe.linear_probe(train_x, train_y, test_x, test_y, 3)
        assert seen and set(seen) == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
