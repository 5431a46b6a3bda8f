"""The in-memory dataset type, the request a loader answers, the registry and the shared steps.

Loaders register themselves with :func:`register_dataset` (the timm ``@register_model`` pattern);
``explorer.data.load_request`` looks one up by a :class:`DatasetRequest`'s name and calls it with
the request. Every loader ends with :func:`fit_to_request` (the seeded class-stratified ``limit``,
then the resize to ``image_size``); those that can choose before decoding or rendering call
:func:`limit_indices` on the labels first.
"""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from explorer.errors import UserError

SPLITS = ("train", "test")

# The seed of every fixed train/test hold-out (digits, a flat image folder). It never depends on
# the run's seed, so runs with different seeds are probed on the same test images.
HOLDOUT_SEED = 0


@dataclass
class ImageDataset:
    """A labelled image dataset held in memory.

    Attributes:
        images: Tensor of shape (N, C, H, W), uint8, on the CPU, contiguous.
        labels: Tensor of shape (N,), int64, values in ``[0, len(classes))``.
        classes: Class names; ``classes[label]`` names a label.
        mean: Per-channel mean of the pixels scaled to [0, 1], for normalisation (length C).
        std: Per-channel standard deviation of the pixels scaled to [0, 1] (length C).
        name: The registry name of the dataset (``"shapes"``, ``"cifar10"``, ...).
        factors: Optional tensor of shape (N, F), int64: for synthetic datasets the indices of the
            generating factors of each image (for ``shapes``, indices into
            :class:`explorer.data.shapes.ShapesGrid`, in the order of ``ShapesGrid.FACTORS``);
            None for natural images.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str
    factors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Our own loaders build these, so a violation is a programming error (ValueError).
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(
                f"images must be uint8 (N, C, H, W), got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(
                f"labels must have shape ({self.images.shape[0]},), got {tuple(self.labels.shape)}"
            )
        if not len(self.mean) == len(self.std) == self.images.shape[1]:
            raise ValueError("mean and std need one value per channel")
        self.images = self.images.cpu().contiguous()
        self.labels = self.labels.cpu().to(torch.int64)
        if self.factors is not None:
            self.factors = self.factors.cpu().to(torch.int64)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        """Side length S of the (square) images."""
        return int(self.images.shape[-1])

    def subset(self, indices: torch.Tensor | np.ndarray) -> ImageDataset:
        """A new dataset holding the images at ``indices`` (1-D integer array), same metadata."""
        index = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        return ImageDataset(
            images=self.images[index],
            labels=self.labels[index],
            classes=list(self.classes),
            mean=self.mean,
            std=self.std,
            name=self.name,
            factors=None if self.factors is None else self.factors[index],
        )


@dataclass(frozen=True)
class DatasetRequest:
    """One split of one registered dataset, as a loader is asked for it.

    Validated once, when built (by :func:`explorer.data.load_dataset`,
    :func:`explorer.builders.load_splits` or by hand), so a loader trusts every field and reads
    only those it needs.

    Attributes:
        name: The registry name (``"shapes"``, ``"cifar10"``, ...), any case; stored lower-case.
        split: ``"train"`` or ``"test"``.
        data_root: Where files live: the folder ``imagefolder`` reads (required there), the
            download folder of mnist, fashion-mnist, kmnist, cifar10, cifar100 and stl10 (None:
            ``./data``, see :attr:`root`); ignored by the embedded ``shapes`` and ``digits``.
            A str is accepted; it is stored as a :class:`~pathlib.Path` with ``~`` expanded.
        download: Allow fetching missing files from the internet (the torchvision downloads).
        image_size: Side S of the returned images (N, C, S, S); None asks for the dataset's
            default (:attr:`DatasetSpec.default_image_size`), which the request then stores, so
            a built request's ``image_size`` is always an int.
        seed: Seeds synthetic generation (``shapes``) and the ``limit`` selection; the fixed
            hold-outs of ``digits`` and ``imagefolder`` ignore it (:data:`HOLDOUT_SEED`).
        limit: Keep at most this many images, a seeded class-stratified choice
            (:func:`limit_indices`) so every class is represented; None keeps the whole split.

    Raises:
        UserError: an unknown name or split, or a ``limit`` or ``image_size`` that is not a
            positive whole number (in that order; one line each).
    """

    name: str
    split: str = "train"
    data_root: Path | None = None
    download: bool = False
    image_size: int | None = None
    seed: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        spec = dataset_spec(self.name)
        if self.split not in SPLITS:
            raise UserError(f"unknown split '{self.split}'; choose one of: {', '.join(SPLITS)}")
        if self.limit is not None and not _is_positive_int(self.limit):
            raise UserError(
                f"limit must be a positive whole number of images, got {self.limit!r}"
            )
        if self.image_size is not None and not _is_positive_int(self.image_size):
            raise UserError(
                f"image_size must be a positive whole number of pixels, got {self.image_size!r}"
            )
        # Normalised once here (frozen, hence object.__setattr__), so loaders see one spelling
        # of each value and equal requests compare equal.
        size = spec.default_image_size if self.image_size is None else int(self.image_size)
        normal = {
            "name": spec.name,
            "data_root": None if self.data_root is None else Path(self.data_root).expanduser(),
            "image_size": size,
            "limit": None if self.limit is None else int(self.limit),
        }
        for field, value in normal.items():
            object.__setattr__(self, field, value)

    @property
    def root(self) -> Path:
        """``data_root``, or ``./data`` when none was given: where downloadable datasets live."""
        return self.data_root if self.data_root is not None else Path("data")


def _is_positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


class DatasetLoader(Protocol):
    """A registered loader: the split a :class:`DatasetRequest` asks for, as an
    :class:`ImageDataset` of at most ``request.limit`` images of side ``request.image_size``
    (its last step is :func:`fit_to_request`)."""

    def __call__(self, request: DatasetRequest) -> ImageDataset: ...


@dataclass(frozen=True)
class DatasetSpec:
    """A registry entry: the loader and what callers need to know before calling it."""

    name: str
    loader: DatasetLoader
    default_image_size: int
    description: str


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(
    name: str, *, image_size: int, description: str
) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator that adds a loader to the registry under ``name``."""

    def decorate(loader: DatasetLoader) -> DatasetLoader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        DATASETS[name] = DatasetSpec(name, loader, image_size, description)
        return loader

    return decorate


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name`` (any case); a UserError naming the closest and every name."""
    spec = DATASETS.get(str(name).lower())
    if spec is None:
        names = sorted(DATASETS)
        close = difflib.get_close_matches(str(name).lower(), names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown dataset '{name}'{hint}; choose one of: {', '.join(names)}")
    return spec


def stratified_indices(labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Indices of ``limit`` items chosen so that every class is represented as evenly as possible.

    Each class is shuffled with a seeded generator, then classes are visited round-robin
    (first item of every class, then the second, ...), so any prefix is balanced; classes that
    run out leave their share to the others. Returns a sorted int64 array of shape (min(limit, N),).
    """
    labels = np.asarray(labels)
    if limit >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    keys = np.empty(len(labels), dtype=np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        # rank within the class + a per-class offset in [0, 1): the offset decides at random
        # which classes get the remainder when limit is not a multiple of the class count.
        keys[rng.permutation(members)] = np.arange(len(members)) + rng.random()
    chosen = np.argsort(keys, kind="stable")[:limit]
    return np.sort(chosen).astype(np.int64)


def limit_indices(labels: np.ndarray, request: DatasetRequest) -> np.ndarray:
    """Indices (M,) int64, sorted, of the items of a split labelled ``labels`` (N,) that
    ``request.limit`` keeps: :func:`stratified_indices` seeded with ``request.seed``, or all N
    when there is no limit. Loaders call it on the labels alone to read or render only those."""
    if request.limit is None:
        return np.arange(len(labels), dtype=np.int64)
    return stratified_indices(labels, request.limit, request.seed)


def fit_to_request(dataset: ImageDataset, request: DatasetRequest) -> ImageDataset:
    """``dataset`` cut to ``request.limit`` images (:func:`limit_indices`), then resized to
    (N, C, S, S) with S = ``request.image_size`` (:func:`resize_images`): every loader's last
    step. Either is a no-op where the loader already did it."""
    if request.limit is not None and len(dataset) > request.limit:
        dataset = dataset.subset(limit_indices(dataset.labels.numpy(), request))
    return replace(dataset, images=resize_images(dataset.images, request.image_size))


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of shape (N,) marking a seeded ``fraction`` of each class as held out.

    Each class keeps at least one item outside the hold-out; ``round(fraction * n)`` of its
    ``n`` items are held out.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        count = min(int(round(fraction * len(members))), len(members) - 1)
        held[members[:count]] = True
    return held


def resize_images(images: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images (N, C, H, W) to (N, C, size, size) with antialiased bilinear filtering.

    Works in chunks so a 50k-image dataset never needs a float copy of itself in memory.
    """
    if images.shape[-2:] == (size, size):
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].float()
        block = F.interpolate(
            block, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        out[start : start + chunk] = block.round().clamp(0, 255).to(torch.uint8)
    return out


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, C, H, W), scaled to [0, 1]."""
    pixels = images.transpose(0, 1).reshape(images.shape[1], -1).double() / 255.0
    mean = pixels.mean(dim=1)
    std = pixels.std(dim=1, unbiased=False)
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)
