"""Dataset registry: every dataset by name, loaded into memory as uint8 tensors.

>>> train = load_dataset("shapes", "train", limit=600)
>>> train.images.shape, train.images.dtype, train.classes[:2]
(torch.Size([600, 3, 32, 32]), torch.uint8, ['circle', 'square'])

Datasets: ``shapes`` (synthetic, on a public finite factor grid, see :mod:`explorer.data.shapes`),
``digits`` (scikit-learn), ``mnist``, ``fashion-mnist``, ``kmnist`` (28x28 grey, one channel),
``cifar10``, ``cifar100``, ``stl10`` (torchvision downloads) and ``imagefolder`` (your own
images). New ones register with ``@register_dataset``.
"""

from __future__ import annotations

import difflib
import numbers
from pathlib import Path

# Importing the dataset modules registers them.
from explorer.data import digits, imagefolder, mnist, shapes, torchvision_sets  # noqa: F401
from explorer.data.base import (
    DATASETS,
    SPLITS,
    DatasetSpec,
    ImageDataset,
    register_dataset,
    resize_images,
    stratified_indices,
)
from explorer.data.shapes import SHAPES_GRID, ShapesGrid
from explorer.errors import UserError

__all__ = [
    "SHAPES_GRID",
    "DatasetSpec",
    "ImageDataset",
    "ShapesGrid",
    "default_image_size",
    "list_datasets",
    "load_dataset",
    "register_dataset",
]


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(DATASETS)


def _spec(name: str) -> DatasetSpec:
    spec = DATASETS.get(str(name).lower())
    if spec is None:
        names = list_datasets()
        close = difflib.get_close_matches(str(name).lower(), names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"unknown dataset '{name}'{hint}; choose one of: {', '.join(names)}")
    return spec


def _is_positive_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1


def default_image_size(name: str) -> int:
    """Side length of the images ``load_dataset(name)`` returns when no ``image_size`` is given."""
    return _spec(name).default_image_size


def load_dataset(
    name: str,
    split: str = "train",
    *,
    data_root: str | Path | None = None,
    download: bool = False,
    image_size: int | None = None,
    seed: int = 0,
    limit: int | None = None,
) -> ImageDataset:
    """Load one split of a registered dataset into memory.

    Args:
        name: A name from :func:`list_datasets` (case-insensitive).
        split: ``"train"`` or ``"test"``.
        data_root: Where downloadable datasets live (default ``./data``); required by
            ``imagefolder``; ignored by the embedded ``shapes`` and ``digits``.
        download: Allow fetching missing files from the internet (mnist, fashion-mnist, kmnist,
            cifar10, cifar100, stl10).
        image_size: Side S of the returned images; default :func:`default_image_size`.
            Images are resized with antialiased bilinear filtering when S differs.
        seed: Seeds synthetic generation (``shapes``) and the ``limit`` selection.
        limit: Keep only this many images, chosen by a seeded class-stratified selection so
            every class is represented (for small CI runs).

    Returns:
        An :class:`ImageDataset` with images uint8 (N, C, S, S) and labels int64 (N,).

    Raises:
        UserError: Unknown name or split, bad ``limit``/``image_size``, missing files.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise UserError(f"unknown split '{split}'; choose one of: {', '.join(SPLITS)}")
    if limit is not None and not _is_positive_int(limit):
        raise UserError(f"limit must be a positive whole number of images, got {limit!r}")
    if image_size is not None and not _is_positive_int(image_size):
        raise UserError(f"image_size must be a positive whole number of pixels, got {image_size!r}")
    size = int(image_size) if image_size is not None else spec.default_image_size
    dataset = spec.loader(
        split,
        data_root=Path(data_root).expanduser() if data_root is not None else None,
        download=download,
        image_size=size,
        seed=seed,
        limit=None if limit is None else int(limit),
    )
    if limit is not None and len(dataset) > limit:
        dataset = dataset.subset(stratified_indices(dataset.labels.numpy(), int(limit), seed))
    dataset.images = resize_images(dataset.images, size)
    return dataset
