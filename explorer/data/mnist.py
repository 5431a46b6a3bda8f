"""``mnist``, ``fashion-mnist`` and ``kmnist``: 28x28 grey images in the IDX format, one channel.

The three share one format, four IDX files (``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each
uncompressed or as published, ``.gz``), and two layouts under ``data_root``:

- torchvision's, ``data_root/<Class>/raw/`` (``MNIST``, ``FashionMNIST``, ``KMNIST``): read by
  torchvision's ``MNIST``, ``FashionMNIST`` and ``KMNIST`` classes, which with ``download=true``
  fetch and unpack the files there first. Unlike the CIFAR classes they check no md5 when
  reading, so the small files the tests write go through exactly the code real files do. Files
  that are there only gzip'd are unpacked beside themselves, as torchvision's own download would
  after fetching them.
- flat: the four files straight in ``data_root``, as Debian's packages install them (e.g.
  ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``, gzip'd and read-only).
  :func:`read_idx` reads them where they are, ``.gz`` or not, and writes nothing.

torchvision's layout wins when both are complete.

Images stay (N, 1, 28, 28): one channel end to end (models take ``in_channels=1``, the augmentation
skips saturation, hue and grayscale, the dashboard draws grey pictures), never an RGB copy.
"""

from __future__ import annotations

import gzip
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.data.base import DatasetRequest, ImageDataset, fit_to_request, register_dataset
from explorer.errors import UserError, first_line

#: The four IDX files every variant keeps in ``data_root/<Class>/raw/`` (torchvision's names).
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class _GreyFormat:
    """One MNIST-format dataset: its torchvision class, class names and published statistics."""

    title: str
    torchvision_class: str  # also the folder under data_root: torchvision's raw_folder
    classes: tuple[str, ...] | None  # None: torchvision's own names
    mean: float
    std: float


# Training-set pixel statistics in [0, 1], as published with each dataset (MNIST's from the
# PyTorch examples, Fashion-MNIST's from zalandoresearch, KMNIST's from rois-codh/kmnist).
_FORMATS = {
    # torchvision names MNIST's classes "0 - zero", ...; the digit alone reads better in legends
    "mnist": _GreyFormat("MNIST", "MNIST", tuple(str(d) for d in range(10)), 0.1307, 0.3081),
    "fashion-mnist": _GreyFormat("Fashion-MNIST", "FashionMNIST", None, 0.2860, 0.3530),
    "kmnist": _GreyFormat("KMNIST", "KMNIST", None, 0.1918, 0.3483),
}


def raw_folder(name: str, root: Path) -> Path:
    """Where torchvision's reader expects dataset ``name``'s IDX files under ``root``."""
    return root / _FORMATS[name].torchvision_class / "raw"


def _has(folder: Path, name: str) -> bool:
    """Whether IDX file ``name`` is in ``folder``, uncompressed or as ``.gz``."""
    return (folder / name).is_file() or (folder / f"{name}.gz").is_file()


def files_folder(name: str, root: Path) -> Path | None:
    """The folder that holds all four of dataset ``name``'s IDX files (each uncompressed or
    ``.gz``): torchvision's ``root/<Class>/raw``, else ``root`` itself (the flat layout of
    Debian's packages), else None. Reads and writes nothing."""
    for folder in (raw_folder(name, root), root):
        if all(_has(folder, f) for f in IDX_FILES):
            return folder
    return None


def read_idx(path: Path) -> torch.Tensor:
    """The uint8 array of IDX file ``path`` (uncompressed, or gzip'd when ``path`` ends in
    ``.gz``): magic ``00 00 08 ndim``, ``ndim`` big-endian int32 sizes, then the bytes in C order.

    Raises:
        UserError: the file cannot be read, is not an IDX file of unsigned bytes, or is short.
    """
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as file:
            data = file.read()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise UserError(f"cannot read {path} ({first_line(err)})") from err
    ndim = data[3] if len(data) >= 4 else 0
    if data[:3] != b"\x00\x00\x08" or not 1 <= ndim <= 3 or len(data) < 4 + 4 * ndim:
        raise UserError(f"{path} is not an IDX file of unsigned bytes (its header reads "
                        f"{data[:4].hex() or 'nothing'}, not 000008 and 1 to 3 dimensions)")
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = math.prod(shape)
    if len(data) != 4 + 4 * ndim + size:
        raise UserError(f"{path} holds {len(data) - 4 - 4 * ndim} bytes of data, not the "
                        f"{size} of its header's shape {tuple(shape)}")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * ndim).view(shape)


def _read_flat(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One split's (images (N, H, W) uint8, labels (N,) int64) from the flat layout in
    ``folder``: each file as it is, the uncompressed one when both are there."""
    prefix = "train" if split == "train" else "t10k"

    def path(kind: str) -> Path:
        plain = folder / f"{prefix}-{kind}-ubyte"
        return plain if plain.is_file() else plain.with_name(plain.name + ".gz")

    images, labels = read_idx(path("images-idx3")), read_idx(path("labels-idx1"))
    if images.dim() != 3 or labels.dim() != 1:
        raise UserError(f"the {split} files in {folder} hold arrays of shape "
                        f"{tuple(images.shape)} and {tuple(labels.shape)}, not images (N, H, W) "
                        f"and labels (N,)")
    return images, labels.to(torch.int64)


def _unpack(gz: Path, target: Path) -> None:
    """Decompress ``gz`` to ``target`` (through a temporary name: no half-written file stays)."""
    partial = target.with_name(target.name + ".partial")
    try:
        with gzip.open(gz, "rb") as source, open(partial, "wb") as out:
            shutil.copyfileobj(source, out)
        partial.replace(target)
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        partial.unlink(missing_ok=True)
        raise UserError(
            f"cannot unpack {gz} ({first_line(err)}): gunzip it there yourself, or copy the "
            f"files to a writable data_root"
        ) from err


def _missing(raw: Path) -> list[str]:
    """The IDX files not in ``raw`` after unpacking any that are there only as ``.gz``."""
    for name in IDX_FILES:
        gz = raw / f"{name}.gz"
        if not (raw / name).is_file() and gz.is_file():
            _unpack(gz, raw / name)
    return [name for name in IDX_FILES if not (raw / name).is_file()]


GREY_DATASETS = tuple(_FORMATS)


def not_found_message(name: str, root: Path) -> str | None:
    """Why dataset ``name`` cannot be read from ``root`` without a download (one line), or None
    when one of the two layouts holds each of the four files, uncompressed or as ``.gz``. Reads
    and writes nothing: the Train form asks before it launches a run."""
    if files_folder(name, root) is not None:
        return None
    fmt, raw = _FORMATS[name], raw_folder(name, root)
    # Where some of the files are already, say which ones are still missing there.
    partial = [
        f"{folder} lacks {', '.join(f for f in IDX_FILES if not _has(folder, f))}"
        for folder in (raw, root) if any(_has(folder, f) for f in IDX_FILES)
    ]  # fmt: skip
    return (
        f"{fmt.title} not found under {root}: pass download=true (needs internet) or put "
        f"{', '.join(IDX_FILES)} (or their .gz) in {raw} (torchvision's layout) or in {root} "
        f"itself (Debian's)" + (f"; {'; '.join(partial)}" if partial else "")
    )


def _download(dataset_class: type, fmt: _GreyFormat, root: Path) -> None:
    """Fetch and unpack the four files with torchvision (md5-checked), turning failures into
    one-line user errors."""
    from urllib.error import URLError

    try:
        root.mkdir(parents=True, exist_ok=True)
        # Constructing the dataset with download=True is torchvision's way in; it reads the
        # split too, which costs a fraction of a second.
        dataset_class(str(root), train=True, download=True)
    except (RuntimeError, URLError, OSError) as err:  # every mirror failed, or md5, or disk
        raise UserError(
            f"could not download {fmt.title} to {root} ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:300]}); check the internet connection or put the "
            f"files in {root / fmt.torchvision_class / 'raw'} by hand"
        ) from err


@register_dataset("mnist", image_size=28,
                  description="MNIST handwritten digits (torchvision reader)")
@register_dataset("fashion-mnist", image_size=28,
                  description="Fashion-MNIST clothing (torchvision reader)")
@register_dataset("kmnist", image_size=28,
                  description="Kuzushiji-MNIST cursive Japanese (torchvision reader)")
def load_grey(request: DatasetRequest) -> ImageDataset:
    """One split of the MNIST-format dataset ``request.name`` (``mnist``, ``fashion-mnist`` or
    ``kmnist``) from ``request.root``: 60000 train / 10000 test images uint8 (N, 1, 28, 28) of
    10 classes, labels (N,) int64, then limited and resized as the request asks."""
    import torchvision.datasets  # lazily: torchvision is slow to import

    name, split, root = request.name, request.split, request.root
    fmt = _FORMATS[name]
    dataset_class = getattr(torchvision.datasets, fmt.torchvision_class)
    raw = raw_folder(name, root)
    if files_folder(name, root) == root:  # the flat layout: read where they are, writing nothing
        images, labels = _read_flat(root, split)
        classes = list(fmt.classes or dataset_class.classes)  # a class attribute in torchvision
        return _checked(fmt, split, root, images, labels, classes, request)
    if _missing(raw):
        if not request.download:
            raise UserError(not_found_message(name, root) or f"{fmt.title}: files missing in {raw}")
        _download(dataset_class, fmt, root)
        if _missing(raw):
            raise UserError(f"{fmt.title} download did not produce the files in {raw}: delete "
                            "that folder and try again")
    try:
        source = dataset_class(str(root), train=split == "train", download=False)
    except (AssertionError, RuntimeError, ValueError, TypeError, IndexError) as err:
        # torchvision's IDX parser asserts on a bad header and fails to reshape a short file
        raise UserError(
            f"the {fmt.title} files in {raw} are not IDX files of 28x28 images and their labels "
            f"({first_line(err)}): delete them and download again"
        ) from err
    images, labels = source.data, source.targets  # (N, H, W) uint8, (N,) int64
    return _checked(fmt, split, raw, images, labels, list(fmt.classes or source.classes), request)


def _checked(
    fmt: _GreyFormat, split: str, raw: Path, images: torch.Tensor, labels: torch.Tensor,
    classes: list[str], request: DatasetRequest,
) -> ImageDataset:  # fmt: skip
    """The split read from folder ``raw`` as an :class:`ImageDataset`, once its arrays are
    checked; limited and resized as ``request`` asks."""
    if images.dtype != torch.uint8 or images.dim() != 3 or len(images) != len(labels):
        raise UserError(
            f"the {fmt.title} {split} files in {raw} hold {tuple(images.shape)} {images.dtype} "
            f"images and {len(labels)} labels: delete them and download again"
        )
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(classes):
        raise UserError(f"the {fmt.title} {split} labels in {raw} are not 0 to "
                        f"{len(classes) - 1}: delete the files and download again")
    dataset = ImageDataset(
        images=images.unsqueeze(1),  # (N, 1, H, W): a view, no copy
        labels=labels.to(torch.int64),
        classes=classes,
        mean=(fmt.mean,),
        std=(fmt.std,),
        name=request.name,
    )
    return fit_to_request(dataset, request)
