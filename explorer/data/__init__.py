"""Dataset registry: every dataset by name, loaded into memory as uint8 tensors.

>>> train = load_dataset("shapes", "train", limit=600)
>>> train.images.shape, train.images.dtype, train.classes[:2]
(torch.Size([600, 3, 32, 32]), torch.uint8, ['circle', 'square'])

Datasets: ``shapes`` (synthetic, on a public finite factor grid, see :mod:`explorer.data.shapes`),
``digits`` (scikit-learn), ``mnist``, ``fashion-mnist``, ``kmnist`` (28x28 grey, one channel),
``cifar10``, ``cifar100``, ``stl10`` (torchvision downloads) and ``imagefolder`` (your own
images). New ones register with ``@register_dataset``: a loader takes one
:class:`DatasetRequest` (the split, its size, limit, seed and files, validated once).
"""

from __future__ import annotations

from pathlib import Path

# Importing the dataset modules registers them.
from explorer.data import digits, imagefolder, mnist, npz, shapes, torchvision_sets  # noqa: F401
from explorer.data.base import (
    DATASETS,
    DatasetRequest,
    DatasetSpec,
    ImageDataset,
    dataset_spec,
    register_dataset,
)
from explorer.data.shapes import SHAPES_GRID, ShapesGrid

__all__ = [
    "SHAPES_GRID",
    "DatasetRequest",
    "DatasetSpec",
    "ImageDataset",
    "ShapesGrid",
    "default_image_size",
    "list_datasets",
    "load_dataset",
    "load_request",
    "register_dataset",
]


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(DATASETS)


def default_image_size(name: str) -> int:
    """Side length of the images ``load_dataset(name)`` returns when no ``image_size`` is given."""
    return dataset_spec(name).default_image_size


def load_request(request: DatasetRequest) -> ImageDataset:
    """Load the split ``request`` asks for with its registered loader.

    Returns:
        An :class:`ImageDataset` with images uint8 (N, C, S, S), S = ``request.image_size``,
        N at most ``request.limit``, and labels int64 (N,).

    Raises:
        UserError: missing or unreadable files (the request itself was validated when built).
        ValueError: a loader that broke its contract (:class:`~explorer.data.base.DatasetLoader`).
    """
    dataset = DATASETS[request.name].loader(request)
    too_many = request.limit is not None and len(dataset) > request.limit
    if too_many or dataset.images.shape[-2:] != (request.image_size, request.image_size):
        raise ValueError(
            f"loader {request.name!r} returned {len(dataset)} images of "
            f"{tuple(dataset.images.shape[1:])} for {request}"
        )
    return dataset


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
    request = DatasetRequest(
        name,
        split,
        data_root=None if data_root is None else Path(data_root),
        download=download,
        image_size=image_size,
        seed=seed,
        limit=limit,
    )
    return load_request(request)
