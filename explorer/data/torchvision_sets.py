"""``cifar10``, ``cifar100`` and ``stl10``: standard benchmarks, read from their published formats.

torchvision downloads and checks the archives (``download=True``), but we read the extracted files
ourselves: torchvision's classes refuse any file whose md5 differs from the real dataset's, which
would make these loaders untestable on the small files the tests write, and our readers load
straight into the (N, C, H, W) uint8 layout without a per-image PIL round trip.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.data.base import DatasetRequest, ImageDataset, fit_to_request, register_dataset
from explorer.errors import UserError

# Per-channel statistics of the training sets, as published with the SimCLR/SimSiam recipes.
CIFAR10_STATS = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CIFAR100_STATS = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
STL10_STATS = ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713))


def _numpy_global(module: str, name: str) -> Any:
    """A numpy function by its pickled location, under numpy 2 (``_core``) or 1 (``core``)."""
    for prefix in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{prefix}.{module}"), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy has no {module}.{name}")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else.

    The CIFAR "python version" is a pickle by definition, and a pickle can run any importable
    callable; a file placed under data_root should not be able to. So only the handful of globals
    that numpy array reconstruction needs are resolved; anything else is refused.
    """

    # where numpy 2 (numpy._core) and numpy 1 or Python 2 pickles (numpy.core) find these
    _NUMPY_GLOBALS = {("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                      ("numeric", "_frombuffer")}  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how protocol 2 spells a bytes literal
            return codecs.encode
        package, _, submodule = module.rpartition(".")
        if package in ("numpy.core", "numpy._core") and (submodule, name) in self._NUMPY_GLOBALS:
            return _numpy_global(submodule, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset file")


def read_cifar_batch(path: Path) -> dict[str, Any]:
    """One CIFAR python batch file as a dict with str keys (``data``, ``labels``, ...)."""
    try:
        with open(path, "rb") as f:
            # latin1: the published files are Python 2 pickles of byte strings and numpy arrays.
            entry = _ArrayUnpickler(f, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as err:
        raise UserError(
            f"{path} is not a CIFAR batch file ({err}): delete it and download again"
        ) from err
    if not isinstance(entry, dict):
        raise UserError(f"{path} is not a CIFAR batch file: delete it and download again")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _decode(names: list[Any]) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def _download(cls_name: str, root: Path, title: str) -> None:
    """Download and extract a torchvision dataset's archive into ``root`` (md5-checked)."""
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    cls = getattr(datasets, cls_name)
    try:
        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(cls.url, str(root), filename=cls.filename, md5=cls.tgz_md5)
    except Exception as err:  # urllib, ssl, OSError, md5 RuntimeError: all mean "could not fetch"
        raise UserError(
            f"could not download {title} to {root} ({type(err).__name__}: {err}); check the "
            f"internet connection or put the extracted files there by hand"
        ) from err


def _ensure_files(
    root: Path, folder: str, files: list[str], download: bool, cls_name: str, title: str
) -> Path:
    """The dataset folder under root, downloading it first if files are missing and allowed."""
    base = root / folder
    if all((base / f).is_file() for f in files):
        return base
    if not download:
        raise UserError(
            f"{title} not found under {root}: pass download=true (needs internet) or put "
            f"{folder} there"
        )
    _download(cls_name, root, title)
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise UserError(
            f"{title} download did not produce {base / missing[0]}: delete {root / folder} "
            "and try again"
        )
    return base


@dataclass(frozen=True)
class _CifarFormat:
    """Where one CIFAR variant keeps its files and what its dict keys are called."""

    title: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    torchvision_class: str
    stats: tuple[tuple[float, ...], tuple[float, ...]]


_CIFAR = {
    "cifar10": _CifarFormat(
        "CIFAR-10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
        "CIFAR10",
        CIFAR10_STATS,
    ),
    "cifar100": _CifarFormat(
        "CIFAR-100",
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        "fine_labels",
        "fine_label_names",
        "CIFAR100",
        CIFAR100_STATS,
    ),
}


@register_dataset("cifar10", image_size=32, description="CIFAR-10 (torchvision download)")
@register_dataset("cifar100", image_size=32, description="CIFAR-100 (torchvision download)")
def load_cifar(request: DatasetRequest) -> ImageDataset:
    """50000 train / 10000 test images (3, 32, 32) from ``request.root``: CIFAR-10's 10 classes
    in ``cifar-10-batches-py``, or CIFAR-100's 100 fine classes in ``cifar-100-python``."""
    fmt = _CIFAR[request.name]
    batches = fmt.train_files if request.split == "train" else fmt.test_files
    base = _ensure_files(request.root, fmt.folder, [*batches, fmt.meta_file], request.download,
                         fmt.torchvision_class, fmt.title)
    data, labels = [], []
    for batch in batches:
        entry = read_cifar_batch(base / batch)
        if "data" not in entry or fmt.label_key not in entry:
            raise UserError(
                f"{base / batch} has no 'data' or '{fmt.label_key}': it is not a "
                f"{fmt.title} batch; delete it and download again"
            )
        # rows are 3072 bytes: the red plane, then green, then blue, each 32x32 row-major
        data.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(entry[fmt.label_key], dtype=np.int64))
    names = read_cifar_batch(base / fmt.meta_file).get(fmt.names_key)
    if names is None:
        raise UserError(
            f"{base / fmt.meta_file} has no '{fmt.names_key}': delete it and download again"
        )
    mean, std = fmt.stats
    dataset = ImageDataset(
        images=torch.from_numpy(np.concatenate(data)),
        labels=torch.from_numpy(np.concatenate(labels)),
        classes=_decode(names),
        mean=mean,
        std=std,
        name=request.name,
    )
    return fit_to_request(dataset, request)


def read_stl10_images(path: Path) -> np.ndarray:
    """An STL-10 ``*_X.bin`` file as uint8 (N, 3, 96, 96)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise UserError(f"{path} is not an STL-10 image file: delete it and download again")
    # stored column-major per channel (MATLAB order): swap the last two axes to get rows first
    return raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)


@register_dataset(
    "stl10", image_size=96, description="STL-10 labelled splits (torchvision download)"
)
def load_stl10(request: DatasetRequest) -> ImageDataset:
    """5000 train / 8000 test images (3, 96, 96), 10 classes, from ``data_root/stl10_binary``."""
    prefix = request.split  # the files are train_*.bin and test_*.bin
    base = _ensure_files(request.root, "stl10_binary",
                         [f"{prefix}_X.bin", f"{prefix}_y.bin", "class_names.txt"],
                         request.download, "STL10", "STL-10")
    images = read_stl10_images(base / f"{prefix}_X.bin")
    labels = np.fromfile(base / f"{prefix}_y.bin", dtype=np.uint8).astype(np.int64) - 1  # 1-based
    if len(labels) != len(images):
        raise UserError(f"{base} has {len(images)} images but {len(labels)} labels: download again")
    classes = [c.strip() for c in (base / "class_names.txt").read_text().splitlines() if c.strip()]
    mean, std = STL10_STATS
    dataset = ImageDataset(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        labels=torch.from_numpy(labels),
        classes=classes,
        mean=mean,
        std=std,
        name="stl10",
    )
    return fit_to_request(dataset, request)
