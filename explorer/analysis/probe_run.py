"""`explorer probe RUN_DIR`: a run's checkpoint probed beside two baselines, saved as probe.json.

The run-level job and its printed table; the probes themselves are
:mod:`explorer.analysis.probes`'s.

The baselines answer "did training help?": raw pixels (the input itself as features) and the same
backbone at its random initialisation (seeded like the run). Features are the frozen, pooled
backbone output before the projector, as in the paper (HaoChen et al. 2021, Section 6).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from explorer.analysis.probes import (
    ProbeResult,
    extract_features,
    linear_probe_augmented,
    probe_features,
)
from explorer.augment import RECIPES
from explorer.builders import build_model, load_splits, recipe_name, resolve_device
from explorer.config import GRAPH_AUGMENT, Config
from explorer.data import ImageDataset
from explorer.rng import fork_rng
from explorer.rundir.run import Run
from explorer.trained_model import load_trained_model

BASELINES = ("raw_pixels", "random_init")
LABELS = {"trained": "trained backbone", "raw_pixels": "raw pixels", "random_init": "random init"}


def split_note(config: Config) -> str | None:
    """What the test split of a ``shapes`` run tests, for pages and printed tables (else None).

    Test images are held-out *scenes* (position, scale and colours held out for every shape at
    once, :mod:`explorer.data.shapes`), so a classifier of the scene alone is at chance. With
    graph views every test image is also a node of the training graph: the views re-render
    training tuples with position, scale, rotation and colours redrawn, which reaches every
    tuple of the class. The split then tests the probe's head on unseen scenes, not the encoder
    on unseen augmentations.
    """
    if not config.dataset.startswith("shapes"):
        return None
    note = ("Test images are held-out scenes (position, scale and colours held out for all six "
            "shapes at once): a classifier of the scene alone is at chance, 16.7%.")
    if recipe_name(config) == GRAPH_AUGMENT:
        note += (" With graph views every test image is also a node of the training graph (a "
                 "view redraws position, scale, rotation and colours), so the split tests the "
                 "probe's head on unseen scenes, not the encoder on unseen augmentations.")
    return note


def probe_flip_p(config: Config) -> float:
    """The augmented probe's flip probability: the paper flips at random, which is right for
    photographs but turns a 2 into a backwards 2, so it flips only as the run's own recipe does
    (graph views of shapes: as the ``shapes`` recipe)."""
    name = recipe_name(config)
    return RECIPES["shapes" if name == GRAPH_AUGMENT else name].flip_p


def probe_run(
    run: Run,
    *,
    checkpoint: Path | None = None,
    baselines: bool = True,
    device: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Probe the run (and baselines), save ``probe.json`` in the run and return the results
    (with the ``seconds`` it took, which the Train page's estimate reads)."""
    started = time.perf_counter()
    config = run.config()
    torch_device = resolve_device(device or config.device)
    train, test = load_splits(config)
    in_channels = train.images.shape[1]
    model, epoch = load_trained_model(run, config, in_channels, checkpoint)

    def backbone_features(backbone: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
        backbone = backbone.to(torch_device)
        return (
            extract_features(backbone, train.images, train.mean, train.std, device=torch_device),
            extract_features(backbone, test.images, test.mean, test.std, device=torch_device),
        )

    results: dict[str, Any] = {
        "epoch": epoch,
        "classes": train.classes,
        "n_train": len(train),
        "n_test": len(test),
        "methods": {},
    }
    train_x, test_x = backbone_features(model.backbone)
    classes = len(train.classes)

    def probes(train_x: torch.Tensor, test_x: torch.Tensor) -> dict[str, Any]:
        return probe_features(train_x, train.labels, test_x, test.labels, classes,
                              knn_k=config.knn_k, knn_temperature=config.knn_temperature)

    results["methods"]["trained"] = probes(train_x, test_x)
    paper = config.probe == "paper" or (config.probe == "auto" and torch_device.type == "cuda")
    if paper:  # the paper's augmented protocol: SGD lr 30, 100 epochs (GPU-sized work)
        result: ProbeResult = linear_probe_augmented(
            model.backbone,
            train.images,
            train.labels,
            test.images,
            test.labels,
            len(train.classes),
            train.mean,
            train.std,
            epochs=config.probe_epochs,
            flip_p=probe_flip_p(config),
            device=torch_device,
            progress=progress,
        )
        results["methods"]["trained"]["linear_augmented"] = result.to_dict()
    if baselines:
        pixels_train = _flat_pixels(train)
        pixels_test = _flat_pixels(test, train)
        results["methods"]["raw_pixels"] = probes(pixels_train, pixels_test)
        with fork_rng(torch_device):  # the caller's random stream stays untouched
            torch.manual_seed(config.seed)  # the same initialisation the run started from
            random_model = build_model(config, in_channels)
        train_x, test_x = backbone_features(random_model.backbone)
        results["methods"]["random_init"] = probes(train_x, test_x)
    results["seconds"] = time.perf_counter() - started
    run.save_probe(results)
    return results


def _flat_pixels(data: ImageDataset, reference: ImageDataset | None = None) -> torch.Tensor:
    """Normalised pixels as a (N, C*H*W) feature matrix."""
    reference = reference or data
    mean = torch.tensor(reference.mean).view(1, -1, 1, 1)
    std = torch.tensor(reference.std).view(1, -1, 1, 1)
    return ((data.images.float() / 255 - mean) / std).flatten(1)


def format_probe_table(results: dict[str, Any]) -> str:
    """A fixed-width table: one row per method, linear and kNN top-1 accuracy in percent."""
    lines = [
        f"probe of epoch {results['epoch']} ({results['n_train']} train / "
        f"{results['n_test']} test images, {len(results['classes'])} classes)",
        f"{'features':<20}{'linear':>9}{'kNN':>9}",
    ]
    for key, methods in results["methods"].items():
        row = f"{LABELS.get(key, key):<20}{100 * methods['linear']['accuracy']:>8.1f}%"
        row += f"{100 * methods['knn']['accuracy']:>8.1f}%"
        lines.append(row)
        if "linear_augmented" in methods:
            value = 100 * methods["linear_augmented"]["accuracy"]
            lines.append(f"{'  (paper protocol)':<20}{value:>8.1f}%")
    return "\n".join(lines)
