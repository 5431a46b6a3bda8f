"""``imagefolder``: any folder of images sorted into one sub-folder per class.

Two layouts are accepted under ``data_root``:

- ``train/<class>/*.png`` and ``test/<class>/*.png``: each split reads its own folder; the class
  list (and so the label numbers) comes from ``train/``.
- ``<class>/*.png`` directly: ``train`` is the whole folder minus a stratified 20% hold-out, and
  ``test`` is that hold-out. The hold-out is drawn with a fixed seed (``HOLDOUT_SEED``), not the
  run's seed, so runs with different seeds are probed on the same images.

Images are converted to RGB, resized so the short side is ``image_size``, centre-cropped to a
square and held in memory as uint8, so the folder must fit in memory at that size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from explorer.data.base import (
    HOLDOUT_SEED,
    DatasetRequest,
    ImageDataset,
    fit_to_request,
    limit_indices,
    register_dataset,
    stratified_holdout,
)
from explorer.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
TEST_FRACTION = 0.2
# ImageNet statistics: a generic folder of photos has no published ones, and computing them would
# mean decoding the training split even when only the test split is asked for.
IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_EXPECTED = (
    "a folder with one sub-folder of images per class (or train/ and test/ folders of those)"
)


def _class_folders(folder: Path) -> list[str]:
    """Sorted names of the visible sub-folders of ``folder``: the classes."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"no class sub-folders in {folder}: imagefolder expects {_EXPECTED}")
    return classes


def _scan(folder: Path, classes: list[str], *, every_class: bool) -> tuple[list[Path], np.ndarray]:
    """Image files under ``folder/<class>/`` (searched recursively) and their labels (N,) int64."""
    known = set(classes)
    files: list[Path] = []
    labels: list[int] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if sub.name not in known:
            raise UserError(
                f"class folder {sub} is not in train/: give both splits the same classes"
            )
        found = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found and every_class:
            raise UserError(
                f"no images in {sub}: add {', '.join(IMAGE_EXTENSIONS)} files or remove it"
            )
        files += found
        labels += [classes.index(sub.name)] * len(found)
    if not files:
        raise UserError(f"no images under {folder}: imagefolder expects {_EXPECTED}")
    return files, np.asarray(labels, dtype=np.int64)


def _decode(path: Path, size: int) -> torch.Tensor:
    """One image file as uint8 (3, size, size): short side resized to ``size``, centre-cropped."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as err:
        raise UserError(f"cannot read image {path} ({err}): delete or replace it") from err
    rgb = TF.resize(rgb, size, interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
    return TF.pil_to_tensor(TF.center_crop(rgb, [size, size]))


def _split_files(root: Path, split: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """Files, labels and class names of one split, for either layout (see the module docstring)."""
    has_train, has_test = (root / "train").is_dir(), (root / "test").is_dir()
    if has_train != has_test:
        present, absent = ("train", "test") if has_train else ("test", "train")
        raise UserError(
            f"{root} has {present}/ but no {absent}/: add {absent}/ with the same "
            "class folders, or put the class folders directly in it"
        )
    if has_train:
        classes = _class_folders(root / "train")
        files, labels = _scan(root / split, classes, every_class=split == "train")
        return files, labels, classes
    classes = _class_folders(root)
    files, labels = _scan(root, classes, every_class=True)
    held = stratified_holdout(labels, TEST_FRACTION, HOLDOUT_SEED)
    keep = held if split == "test" else ~held
    if not keep.any():
        raise UserError(
            f"too few images in {root} to hold out a test split: add images or use "
            "train/ and test/ sub-folders"
        )
    return [f for f, k in zip(files, keep, strict=True) if k], labels[keep], classes


@register_dataset("imagefolder", image_size=32, description="your own class-per-folder images")
def load_imagefolder(request: DatasetRequest) -> ImageDataset:
    """Images (3, S, S) of ``data_root``'s class folders, S = ``image_size``; see the module doc."""
    root = request.data_root
    if root is None:
        raise UserError(f"imagefolder needs data_root: {_EXPECTED}")
    if not root.exists():
        raise UserError(f"data_root {root} does not exist: point it at {_EXPECTED}")
    if not root.is_dir():
        raise UserError(f"data_root {root} is not a directory: point it at {_EXPECTED}")
    files, labels, classes = _split_files(root, request.split)
    chosen = limit_indices(labels, request)  # choose before decoding: only those are read
    mean, std = IMAGENET_STATS
    dataset = ImageDataset(
        images=torch.stack([_decode(files[i], request.image_size) for i in chosen]),
        labels=torch.from_numpy(labels[chosen]),
        classes=classes,
        mean=mean,
        std=std,
        name="imagefolder",
    )
    return fit_to_request(dataset, request)  # a no-op: already limited and decoded at size S
