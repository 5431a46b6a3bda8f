"""``npz``: labelled images in one NumPy ``.npz`` file (``data_root`` is the file).

The file holds ``labels`` (N,) integers and the images as either ``images`` (N, H, W, C),
(N, C, H, W) or (N, H, W) uint8 (C is 1 or 3), or ``paths`` (N,) strings naming image files
(relative ones are read from the file's folder). Optional: ``split`` (N,), 0 for train and 1 for
test (else a seeded, stratified 20% of each class is the test split, :func:`split_rows`), and
``classes`` (C,) strings naming the labels. It is the dataset of a run imported from
precomputed features (``explorer import FEATURES.npz``), whose file may hold ``features`` too:
the rows of each split are in file order, so the analysis's test indices name the same rows in
both. Read with ``allow_pickle=False``: a file cannot run code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from explorer.data.base import (
    HOLDOUT_SEED,
    DatasetRequest,
    ImageDataset,
    channel_stats,
    fit_to_request,
    limit_indices,
    register_dataset,
    stratified_holdout,
)
from explorer.errors import UserError, first_line

TEST_FRACTION = 0.2


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of ``path``, read without pickle; a one-line UserError for a bad file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except ValueError as err:  # object arrays need pickle
        raise UserError(f"{path} holds arrays that need pickle ({first_line(err)}); save "
                        "numbers and strings only (np.savez with plain arrays)") from None
    except (OSError, EOFError, KeyError) as err:
        raise UserError(f"{path} is not a readable .npz file ({first_line(err)})") from None


def split_rows(labels: np.ndarray, split: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The rows (int64, ascending) of the train and test splits of a file's N items: where
    ``split`` is 0 and 1, or without it a stratified :data:`TEST_FRACTION` of each class held out
    with :data:`~explorer.data.base.HOLDOUT_SEED` as the test split."""
    if split is None:
        test = stratified_holdout(labels, TEST_FRACTION, HOLDOUT_SEED)
    else:
        test = np.asarray(split) == 1
    return np.flatnonzero(~test).astype(np.int64), np.flatnonzero(test).astype(np.int64)


def check_labels(path: Path, data: dict[str, np.ndarray], n: int | None = None) -> None:
    """``labels`` (and ``split``) of a file as :mod:`explorer.data.npz` reads them, else a
    one-line UserError naming what to fix."""
    labels = data.get("labels")
    if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UserError(f"{path} needs 'labels': integers of shape (N,)")
    if n is not None and len(labels) != n:
        raise UserError(f"{path}: 'labels' has {len(labels)} rows, 'features' {n}")
    if labels.min(initial=0) < 0:
        raise UserError(f"{path}: 'labels' must be 0, 1, ... (found {labels.min()})")
    split = data.get("split")
    if split is not None and (split.shape != labels.shape or not np.isin(split, (0, 1)).all()):
        raise UserError(f"{path}: 'split' must be (N,) of 0 (train) and 1 (test)")
    train, test = split_rows(labels, split)
    if not len(train) or not len(test):
        raise UserError(f"{path}: both splits need items ('split' holds only one value)")


def class_names(data: dict[str, np.ndarray]) -> list[str]:
    """``classes`` of the file, else the label numbers as names."""
    count = int(data["labels"].max(initial=-1)) + 1
    if "classes" in data and len(data["classes"]) >= count:
        return [str(name) for name in data["classes"]]
    return [str(i) for i in range(count)]


def _images(path: Path, data: dict[str, np.ndarray], rows: np.ndarray, size: int) -> torch.Tensor:
    """The images of ``rows`` as uint8 (M, C, H, W), from ``images`` or ``paths``."""
    if "images" in data:
        images = data["images"]
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise UserError(f"{path}: 'images' must be uint8 (N, H, W, C), (N, C, H, W) or "
                            f"(N, H, W), got {images.dtype} {images.shape}")
        chosen = images[rows]
        if chosen.ndim == 3:
            chosen = chosen[:, None]
        elif chosen.shape[-1] in (1, 3) and chosen.shape[1] not in (1, 3):
            chosen = chosen.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
        return torch.from_numpy(np.ascontiguousarray(chosen))
    if "paths" in data:
        from explorer.data.imagefolder import _decode

        files = [Path(str(name)).expanduser() for name in data["paths"][rows]]
        files = [file if file.is_absolute() else path.parent / file for file in files]
        missing = next((file for file in files if not file.is_file()), None)
        if missing is not None:
            raise UserError(f"{path} names image {missing}, which does not exist")
        return torch.stack([_decode(file, size) for file in files])
    raise UserError(f"{path} holds no 'images' or 'paths': add them to see the images")


@register_dataset("npz", image_size=32, description="images (or their paths) and labels in one "
                  ".npz file")
def load_npz(request: DatasetRequest) -> ImageDataset:
    """One split of the ``.npz`` file at ``data_root`` (see the module doc)."""
    if request.data_root is None or not request.data_root.is_file():
        raise UserError(f"dataset npz reads one .npz file: set data_root to it (got "
                        f"{request.data_root})")
    path = request.data_root
    data = read_npz(path)
    check_labels(path, data)
    train_rows, test_rows = split_rows(data["labels"], data.get("split"))
    rows = train_rows if request.split == "train" else test_rows
    rows = rows[limit_indices(data["labels"][rows], request)]
    images = _images(path, data, rows, request.image_size)
    mean, std = channel_stats(images if request.split == "train" else
                              _images(path, data, train_rows[:2000], request.image_size))
    dataset = ImageDataset(images, torch.from_numpy(data["labels"][rows].astype(np.int64)),
                           class_names(data), mean, std, "npz")
    return fit_to_request(dataset, request)
