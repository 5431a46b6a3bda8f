"""Probes of frozen features: feature extraction, weighted kNN and linear classifiers.

The algorithms only (tensors in, accuracies out; no run, no config):
:mod:`explorer.analysis.probe_run`
probes a run's checkpoint with them, :mod:`explorer.analysis.checkpoint` every analysed one.

Everything here evaluates a backbone without changing it: the backbone runs in eval mode (BatchNorm
uses its running statistics) under ``torch.no_grad`` and its own train/eval modes are restored.

References:
    [0] HaoChen, Wei, Gaidon, Ma. Provable Guarantees for Self-Supervised Deep Learning with
        Spectral Contrastive Loss, NeurIPS 2021, https://arxiv.org/abs/2106.04156
    [1] Wu, Xiong, Yu, Lin. Unsupervised Feature Learning via Non-Parametric Instance
        Discrimination, CVPR 2018, https://arxiv.org/abs/1805.01978 (the weighted kNN monitor)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.errors import UserError

_KNN_CHUNK = 1024  # test rows per similarity block: 1024 x N_train floats stays bounded


@dataclass
class ProbeResult:
    """Outcome of one probe on a labelled test set.

    Attributes:
        accuracy: top-1 accuracy in [0, 1].
        per_class_accuracy: recall of each class; ``None`` for a class with no test samples
            (``None`` rather than NaN so that the result is valid JSON).
        confusion: ``confusion[true][pred]`` counts, shape (num_classes, num_classes).
    """

    accuracy: float
    per_class_accuracy: list[float | None]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with keys ``accuracy``, ``per_class_accuracy`` and ``confusion``."""
        return {
            "accuracy": float(self.accuracy),
            "per_class_accuracy": [
                None if a is None else float(a) for a in self.per_class_accuracy
            ],
            "confusion": [[int(c) for c in row] for row in self.confusion],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        """Inverse of :meth:`to_dict`; raises ``ValueError`` when a key is missing."""
        missing = {"accuracy", "per_class_accuracy", "confusion"} - set(data)
        if missing:
            raise ValueError(f"probe result is missing {sorted(missing)}")
        return cls(
            accuracy=float(data["accuracy"]),
            per_class_accuracy=[
                None if a is None else float(a) for a in data["per_class_accuracy"]
            ],
            confusion=[[int(c) for c in row] for row in data["confusion"]],
        )


def per_class_and_confusion(
    predictions: Tensor, labels: Tensor, num_classes: int
) -> tuple[list[float | None], list[list[int]]]:
    """Per-class accuracy (recall) and the confusion matrix.

    Args:
        predictions: Tensor of shape (N,), predicted class indices.
        labels: Tensor of shape (N,), true class indices in [0, num_classes).
        num_classes: number of classes C.

    Returns:
        ``(per_class_accuracy, confusion)``: a list of C floats (``None`` for a class absent from
        ``labels``) and a C x C nested list with ``confusion[true][pred]`` counts.
    """
    predictions = predictions.detach().reshape(-1).long().cpu()
    labels = labels.detach().reshape(-1).long().cpu()
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.numel() and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes})")
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes**2)
    confusion = confusion.view(num_classes, num_classes)  # CxC, [true][pred]
    support = confusion.sum(dim=1).tolist()
    correct = confusion.diagonal().tolist()
    per_class = [c / s if s else None for c, s in zip(correct, support, strict=True)]
    return per_class, confusion.tolist()


def _result(predictions: Tensor, labels: Tensor, num_classes: int) -> ProbeResult:
    if labels.numel() == 0:
        raise ValueError("cannot score a probe on an empty test set")
    per_class, confusion = per_class_and_confusion(predictions, labels, num_classes)
    correct = sum(confusion[c][c] for c in range(num_classes))
    return ProbeResult(correct / labels.numel(), per_class, confusion)


def _check_split(features: Tensor, labels: Tensor, split: str) -> None:
    if features.ndim != 2 or labels.ndim != 1 or len(features) != len(labels):
        raise ValueError(
            f"{split} features must be (N, D) with (N,) labels, got "
            f"{tuple(features.shape)} and {tuple(labels.shape)}"
        )
    if len(features) == 0:
        raise ValueError(f"{split} set is empty")


def _normalize(images01: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """(B, C, H, W) floats in [0, 1] -> per-channel ``(x - mean) / std``."""
    if len(mean) != images01.shape[1] or len(std) != images01.shape[1]:
        raise ValueError(
            f"mean/std have {len(mean)}/{len(std)} entries for {images01.shape[1]} channels"
        )
    mean_t = torch.tensor(mean, dtype=images01.dtype, device=images01.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=images01.dtype, device=images01.device).view(1, -1, 1, 1)
    return (images01 - mean_t) / std_t


def _to_unit(images: Tensor) -> Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"expected (N, C, H, W) uint8 images, got {images.dtype} {tuple(images.shape)}"
        )
    return images.float().div_(255)


def _set_eval(module: nn.Module) -> dict[nn.Module, bool]:
    """Switch every submodule to eval mode; return their previous modes for :func:`_restore`."""
    modes = {m: m.training for m in module.modules()}
    module.eval()
    return modes


def _restore(modes: dict[nn.Module, bool]) -> None:
    for m, training in modes.items():
        m.training = training


@torch.no_grad()
def _features(
    backbone: nn.Module,
    images: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int,
    device: torch.device | str,
    size: int | None = None,
) -> Tensor:
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = _to_unit(images[start : start + batch_size].to(device, non_blocking=True))
        if size is not None and batch.shape[-2:] != (size, size):
            batch = F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
        chunks.append(backbone(_normalize(batch, mean, std)).float().cpu())  # BxD
    return torch.cat(chunks)


def extract_features(
    backbone: nn.Module,
    images: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Pooled backbone features of uint8 images, in eval mode and without gradients.

    Args:
        backbone: module mapping (B, C, H, W) float -> (B, D); it must already live on ``device``.
            Its train/eval mode (of every submodule) is restored afterwards.
        images: Tensor of shape (N, C, H, W), uint8, on any device.
        mean, std: per-channel statistics in [0, 1]; images become ``(x / 255 - mean) / std``.
        batch_size: images per forward pass.
        device: where the forward passes run.

    Returns:
        Tensor of shape (N, D), float32, on the CPU.
    """
    if len(images) == 0:
        raise ValueError("no images to extract features from")
    modes = _set_eval(backbone)
    try:
        return _features(backbone, images, mean, std, batch_size, device)
    finally:
        _restore(modes)


@torch.no_grad()
def knn_predict(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> Tensor:
    """Weighted k-nearest-neighbour predictions on cosine similarity ([1], Sec. 3.4).

    Each test point takes its ``k`` most cosine-similar training points (``k`` is clipped to the
    training-set size); neighbour i votes for its class with weight ``exp(s_i / temperature)``;
    the class with the largest summed weight wins. This is the monitor used by the InstDisc,
    SimSiam and spectral-contrastive [0] codebases. Runs on ``train_features``' device, in its
    dtype (float32 for integer input), 1024 test rows at a time.

    Args:
        train_features: Tensor of shape (N, D); train_labels: Tensor of shape (N,) in [0, C).
        test_features: Tensor of shape (M, D).
        num_classes: number of classes C.
        k: neighbours per test point.
        temperature: softness of the vote; smaller means closer neighbours count more.

    Returns:
        Tensor of shape (M,), int64 predicted classes, on the CPU.
    """
    _check_split(train_features, train_labels, "train")
    if test_features.ndim != 2 or test_features.shape[1] != train_features.shape[1]:
        raise ValueError(f"test features {tuple(test_features.shape)} do not match the train's")
    if train_labels.min() < 0 or train_labels.max() >= num_classes:
        raise ValueError(f"train labels must lie in [0, {num_classes})")
    if k < 1:
        raise UserError(f"kNN k must be at least 1, got {k}")
    if temperature <= 0:
        raise UserError(f"kNN temperature must be positive, got {temperature}")
    k = min(k, len(train_features))
    dtype = train_features.dtype if train_features.is_floating_point() else torch.float32
    bank = F.normalize(train_features.to(dtype), dim=1)  # NxD
    bank_labels = train_labels.to(bank.device, torch.long)
    predictions = []
    for start in range(0, len(test_features), _KNN_CHUNK):
        query = F.normalize(test_features[start : start + _KNN_CHUNK].to(bank), dim=1)  # BxD
        sim, idx = (query @ bank.T).topk(k, dim=1)  # Bxk, sorted descending
        # Subtracting each row's top similarity rescales that row's weights by one positive
        # factor, so the vote is unchanged, and exp cannot overflow at small temperatures.
        weights = ((sim - sim[:, :1]) / temperature).exp()
        scores = torch.zeros(len(query), num_classes, dtype=dtype, device=bank.device)
        scores.scatter_add_(1, bank_labels[idx], weights)  # BxC summed votes
        predictions.append(scores.argmax(dim=1).cpu())
    return torch.cat(predictions)


def knn_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    k: int = 200,
    temperature: float = 0.1,
) -> ProbeResult:
    """Score :func:`knn_predict` on a labelled test set (shapes as there, test_labels (M,))."""
    _check_split(test_features, test_labels, "test")
    predictions = knn_predict(
        train_features, train_labels, test_features, num_classes, k, temperature
    )
    return _result(predictions, test_labels, num_classes)


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one CPU thread inside, the caller's count restored after.

    A small full-batch solve (a few MFLOP per pass, a hundred passes) gains nothing from a
    second thread on 2 cores, and on a loaded machine the threads' spin-waits make it 5-15
    times slower (bench_analysis.py: the linear probe 0.8 s on one thread, 5-13 s on two).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    *,
    weight_decay: float = 1e-3,
    max_iter: int = 100,
) -> ProbeResult:
    """A softmax-regression head fitted on precomputed features (fast; no augmentation).

    Features are standardised with the training set's per-dimension mean and std. The head
    minimises the convex objective ``mean cross-entropy + weight_decay / 2 * ||W||^2`` (bias not
    penalised) by full-batch L-BFGS with a strong-Wolfe line search, starting from zero: the same
    problem scikit-learn's ``LogisticRegression(C=1 / (weight_decay * N))`` solves, so the result
    is deterministic and needs no learning rate. A few dozen passes over the features suffice
    (well under a second for 6000 x 256 on two cores); ``weight_decay > 0`` keeps the optimum
    finite on separable data. On the CPU it runs on one thread (:func:`one_thread`).

    Args:
        train_features: Tensor of shape (N, D); train_labels: Tensor of shape (N,).
        test_features: Tensor of shape (M, D); test_labels: Tensor of shape (M,).
        num_classes: number of classes C.
        weight_decay: L2 penalty on the weights.
        max_iter: cap on L-BFGS iterations (it stops earlier once converged).

    Returns:
        A :class:`ProbeResult` on the test set.
    """
    _check_split(train_features, train_labels, "train")
    _check_split(test_features, test_labels, "test")
    if weight_decay < 0 or max_iter < 1:
        raise UserError(
            "linear probe needs weight_decay >= 0 and max_iter >= 1, "
            f"got {weight_decay} and {max_iter}"
        )
    x = train_features.detach().float()
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    x = (x - mean) / std  # NxD
    # The logits as (W^T x^T)^T from a contiguous DxN copy: the gradient W^T needs is then a
    # product with a contiguous matrix, three to five times faster on the CPU than through x's
    # transposed view (60,000 x 256 features: 0.06 s per pass instead of 0.22 s).
    x_by_dim = x.t().contiguous()  # DxN
    y = train_labels.to(x.device, torch.long)
    weight = torch.zeros(x.shape[1], num_classes, device=x.device, requires_grad=True)  # DxC
    bias = torch.zeros(num_classes, device=x.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = (weight.t() @ x_by_dim).t() + bias  # NxC
        loss = F.cross_entropy(logits, y) + weight_decay / 2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad(), one_thread() if x.device.type == "cpu" else nullcontext():
        optimizer.step(closure)
    with torch.no_grad():
        test = (test_features.detach().float().to(x.device) - mean) / std  # MxD
        predictions = (test @ weight + bias).argmax(dim=1)
    return _result(predictions, test_labels, num_classes)


def probe_features(
    train_features: Tensor,
    train_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    num_classes: int,
    *,
    knn_k: int = 200,
    knn_temperature: float = 0.1,
) -> dict[str, Any]:
    """Both fast probes of precomputed features: ``{"knn": ..., "linear": ...}``, JSON-ready.

    Args:
        train_features: Tensor of shape (N, D); train_labels: Tensor of shape (N,).
        test_features: Tensor of shape (M, D); test_labels: Tensor of shape (M,).
        num_classes: number of classes C.
        knn_k, knn_temperature: the kNN vote of :func:`knn_predict`.

    Returns:
        Each probe's :meth:`ProbeResult.to_dict`.
    """
    knn = knn_probe(
        train_features,
        train_labels,
        test_features,
        test_labels,
        num_classes,
        k=knn_k,
        temperature=knn_temperature,
    )
    linear = linear_probe(train_features, train_labels, test_features, test_labels, num_classes)
    return {"knn": knn.to_dict(), "linear": linear.to_dict()}


def linear_probe_augmented(
    backbone: nn.Module,
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    epochs: int = 100,
    lr: float = 30.0,
    batch_size: int = 256,
    milestones: Sequence[int] = (60, 80),
    momentum: float = 0.9,
    crop_scale: tuple[float, float] = (0.08, 1.0),
    flip_p: float = 0.5,
    device: torch.device | str = "cpu",
    image_size: int | None = None,
    progress: bool = False,
) -> ProbeResult:
    """The paper's linear evaluation [0]: a linear head on a frozen backbone with augmentation.

    The backbone stays in eval mode (BatchNorm uses running statistics) and is never updated.
    Each epoch visits the training images in a random order; every batch gets RandomResizedCrop
    (torchvision's default scale 0.08-1 and ratio 3/4-4/3, as in the paper's "standard" linear
    evaluation transform) and a horizontal flip with probability ``flip_p`` (the paper's 0.5 on
    photographs; 0 where a mirror changes the class, as for digits), batched with kornia on
    ``device``.
    The head (weights ~ N(0, 0.01), bias 0) is trained with SGD, momentum 0.9, no weight decay,
    the learning rate multiplied by 0.1 at each milestone epoch. Test images are not augmented
    (only resized to ``image_size`` if they differ). Randomness comes from torch's global RNG.

    Args:
        backbone: module on ``device`` mapping (B, C, S, S) float -> (B, D); ``feature_dim`` is
            used for D when present, else D is read off one forward pass.
        train_images: Tensor of shape (N, C, H, W), uint8; train_labels: Tensor of shape (N,).
        test_images: Tensor of shape (M, C, H', W'), uint8; test_labels: Tensor of shape (M,).
        num_classes: number of classes C.
        mean, std: per-channel normalisation statistics in [0, 1].
        epochs, lr, batch_size, milestones, momentum: the SGD recipe (paper: 100, 30, 256,
            (60, 80), 0.9).
        crop_scale: area range of RandomResizedCrop.
        flip_p: probability of the horizontal flip (0: none).
        device: where the backbone and head run.
        image_size: side S of the crops; defaults to the training images' height.
        progress: show a tqdm bar over epochs.

    Returns:
        A :class:`ProbeResult` on the test set.
    """
    import kornia.augmentation as K  # lazily: only this probe needs kornia
    from tqdm.auto import tqdm

    _check_split(train_images.flatten(1), train_labels, "train")
    _check_split(test_images.flatten(1), test_labels, "test")
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise UserError(
            f"linear probe needs epochs >= 1, batch_size >= 1 and lr > 0, got "
            f"{epochs}, {batch_size} and {lr}"
        )
    size = image_size or train_images.shape[-2]
    steps: list[nn.Module] = [K.RandomResizedCrop((size, size), scale=crop_scale)]
    if flip_p > 0:
        steps.append(K.RandomHorizontalFlip(p=flip_p))
    augment = nn.Sequential(*steps)
    images = train_images.to(device)  # uint8 fits on the device for the datasets we hold
    labels = train_labels.to(device, torch.long)
    modes = _set_eval(backbone)
    try:
        feature_dim = getattr(backbone, "feature_dim", None)
        if feature_dim is None:
            feature_dim = _features(backbone, images[:1], mean, std, 1, device, size).shape[1]
        head = nn.Linear(feature_dim, num_classes).to(device)
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)
        optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=0.0)
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(milestones), gamma=0.1)
        bar = tqdm(range(epochs), desc="linear probe", disable=not progress)
        for _ in bar:
            for batch in torch.randperm(len(images), device=images.device).split(batch_size):
                with torch.no_grad():
                    views = augment(_to_unit(images[batch]))  # BxCxSxS in [0, 1]
                    features = backbone(_normalize(views, mean, std)).float()  # BxD
                loss = F.cross_entropy(head(features), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            schedule.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        test_features = _features(backbone, test_images, mean, std, batch_size, device, size)
        with torch.no_grad():
            predictions = head(test_features.to(device)).argmax(dim=1)
    finally:
        _restore(modes)
    return _result(predictions, test_labels, num_classes)
