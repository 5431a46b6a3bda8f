"""Images for people to look at: positive pairs of a recipe, thumbnails, nearest neighbours.

What the dashboard's Augmentations and Embeddings pages show, computed here so that the pages
hold no ML logic (and the tests can check it without a browser).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from explorer.analysis.probes import extract_features
from explorer.builders import build_views
from explorer.config import Config
from explorer.data import ImageDataset
from explorer.rng import fork_rng
from explorer.rundir.run import Run
from explorer.trained_model import load_trained_model


@torch.no_grad()
def positive_pairs(
    config: Config, data: ImageDataset, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two views of each image of ``data``, made as the run's training makes them, displayable.

    The views come from :func:`explorer.builders.build_views`, so a page shows what the network
    is trained on (whatever the run's ``augment``), with the normalisation undone.

    Args:
        config: the run's config (its augmentation and image size).
        data: the images to show (e.g. ``train.subset(chosen)``), with their labels and factors.
        seed: fixes the draw, so the same pairs come back on every page load.

    Returns:
        (originals, view1, view2): uint8 (N, C, S, S) each, the originals resized to S.
    """
    device = torch.device("cpu")
    with fork_rng(device):  # the caller's random stream stays untouched
        torch.manual_seed(seed)
        views = build_views(config, data, device)
        view1, view2 = views(torch.arange(len(data)))  # (N, C, S, S), normalised
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    size = view1.shape[-1]
    originals = torch.nn.functional.interpolate(data.images.float(), size=(size, size),
                                                mode="bilinear", antialias=True) / 255
    return _to_uint8(originals), _to_uint8(view1 * std + mean), _to_uint8(view2 * std + mean)


def _to_uint8(images: Tensor) -> np.ndarray:
    """Float images in [0, 1] -> uint8 NumPy."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def checkpoint_features(
    run: Run, config: Config, checkpoint_epoch: int, data: ImageDataset, indices: np.ndarray
) -> np.ndarray:
    """Backbone features (len(indices), D) of ``data.images[indices]`` at one checkpoint."""
    paths = dict(run.weight_checkpoints())
    if checkpoint_epoch not in paths:
        raise KeyError(f"run {run.name} has no checkpoint of epoch {checkpoint_epoch}")
    model, _ = load_trained_model(run, config, data.images.shape[1], paths[checkpoint_epoch])
    images = data.images[torch.tensor(indices)]  # a copy: the indices may be read-only
    return extract_features(model.backbone, images, data.mean, data.std).numpy()


def nearest_neighbours(features: np.ndarray, row: int, k: int = 8) -> np.ndarray:
    """Rows of the ``k`` nearest points to ``features[row]`` by cosine similarity, itself
    excluded, nearest first. ``features`` is (M, D)."""
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit[row]
    similarity[row] = -np.inf
    k = min(k, len(features) - 1)
    nearest = np.argpartition(-similarity, k - 1)[:k] if k > 0 else np.array([], dtype=int)
    return nearest[np.argsort(-similarity[nearest], kind="stable")]


def class_mix(labels: np.ndarray, classes: list[str]) -> dict[str, int]:
    """How many of ``labels`` fall in each class, largest first, empty classes left out."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    order = np.argsort(-counts, kind="stable")
    return {classes[i]: int(counts[i]) for i in order if counts[i] > 0}
