"""Analyse a run's checkpoints once and store the results in the run (``analysis/``).

For each checkpoint, on a fixed evaluation sample (the same images every time, seeded by the
run's seed):

- the first :data:`VIEW_SAMPLES` images of the *training sample* (up to ``analysis_samples``
  training images) are augmented into two views with the run's recipe (seeded by
  :data:`ANALYSIS_SEED`) and passed through the model in eval mode: batch Gram spectra of the
  spectral features f = clip(z)/√μ and of the backbone features h (mean and spread over batches
  of the training batch size), the cross-view spectrum, RankMe, α-ReQ, alignment/uniformity,
  and the augmentation-graph estimate (eigenvalues of C = E[f fᵀ] and C₊ = E[f(x) f(x⁺)ᵀ] over
  all those views, and ‖C₊ − C²‖/(‖C₊‖ + ‖C²‖));
- linear and kNN probes are fitted on the training sample's clean backbone features and scored on
  the *test sample* (up to ``analysis_samples`` test images);
- the test sample's backbone features are projected to 2-D (PCA and UMAP, each started from the
  previous checkpoint's layout), stored with the test labels and the images' indices in the
  test split.

Augmentation draws from torch's global RNG; the analysis forks it, so a trainer that analyses
in-process keeps its own random stream (and hence exact resume).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explorer import analysis as A
from explorer.artifacts import has_analysis, load_all_analyses, load_analysis, save_analysis
from explorer.augment import RECIPES, TwoViewAugment
from explorer.builders import recipe_name
from explorer.config import Config
from explorer.data import ImageDataset, default_image_size
from explorer.errors import UserError
from explorer.evaluate import load_trained_model, probe_features
from explorer.models import ContrastiveModel
from explorer.probe import extract_features
from explorer.projection import PROJECTIONS, pca_2d, umap_2d
from explorer.runs import Run

ANALYSIS_SEED = 20210604  # fixes the views; the paper's arXiv date
# Views cost two forward passes per image: the view-based statistics use the first 2,560 images
# of the training sample (10 batches of 256, 5 of 512), enough for the spread over batches.
VIEW_SAMPLES = 2560


@dataclass
class EvaluationSample:
    """The fixed images analysed at every checkpoint (uint8, CPU) and where they came from."""

    train_images: Tensor  # (N, C, H, W)
    train_labels: Tensor  # (N,)
    test_images: Tensor  # (M, C, H, W)
    test_labels: Tensor  # (M,)
    test_indices: Tensor  # (M,) indices into the test split
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]


def evaluation_sample(
    train: ImageDataset, test: ImageDataset, samples: int, seed: int
) -> EvaluationSample:
    """A seeded subset of at most ``samples`` images of each split (all of a smaller split)."""
    generator = torch.Generator().manual_seed(seed)
    train_idx = torch.randperm(len(train), generator=generator)[: min(samples, len(train))]
    test_idx = torch.randperm(len(test), generator=generator)[: min(samples, len(test))]
    test_idx = test_idx.sort().values  # thumbnails read best in split order
    return EvaluationSample(
        train.images[train_idx],
        train.labels[train_idx],
        test.images[test_idx],
        test.labels[test_idx],
        test_idx,
        list(train.classes),
        tuple(train.mean),
        tuple(train.std),
    )


@torch.no_grad()
def _two_view_outputs(
    model: ContrastiveModel, sample: EvaluationSample, config: Config, device: torch.device
) -> tuple[Tensor, Tensor, Tensor]:
    """Backbone features of view 1 and projector outputs of both views, in eval mode, on CPU."""
    image_size = config.image_size or default_image_size(config.dataset)
    recipe = recipe_name(config)
    augment = TwoViewAugment(RECIPES[recipe], image_size, sample.mean, sample.std).to(device)
    h1, z1, z2 = [], [], []
    for batch in sample.train_images[:VIEW_SAMPLES].split(config.batch_size):
        view1, view2 = augment(batch.to(device))  # (B, C, S, S) each
        h, z, _ = model(view1)
        h1.append(h.float().cpu())
        z1.append(z.float().cpu())
        z2.append(model(view2)[1].float().cpu())
    return torch.cat(h1), torch.cat(z1), torch.cat(z2)


class _Clock:
    """Seconds spent in each stage, for the record (and the benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self._last = now - self._last, now


def _batched_cross_spectra(f1: Tensor, f2: Tensor, batch_size: int) -> tuple[Tensor, Tensor]:
    size = min(batch_size, len(f1))
    spectra = torch.stack(
        [
            A.eigenvalues(A.cross_moment(f1[i : i + size], f2[i : i + size]))
            for i in range(0, len(f1) - size + 1, size)
        ]
    )
    std = spectra.std(dim=0) if len(spectra) > 1 else torch.zeros_like(spectra[0])
    return spectra.mean(dim=0), std


def analyze_checkpoint(
    model: ContrastiveModel,
    sample: EvaluationSample,
    config: Config,
    *,
    device: torch.device | str = "cpu",
    projections: tuple[str, ...] = PROJECTIONS,
    previous: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every metric of one checkpoint: ``(JSON-ready record, arrays)`` for :func:`save_analysis`.

    Args:
        model: the trained model (any device; moved to ``device``, left in eval mode).
        sample: the fixed evaluation sample.
        config: the run's config (batch size, μ, augmentation, probe settings).
        device: where the forward passes run.
        projections: any of ``"pca"``, ``"umap"``.
        previous: the previous checkpoint's arrays; its ``pca``/``umap`` layouts seed this one's.
    """
    device = torch.device(device)
    clock = _Clock()
    model = model.to(device).eval()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(ANALYSIS_SEED)
        h1, z1, z2 = _two_view_outputs(model, sample, config, device)
    clock.lap("views")
    f1, f2 = A.spectral_features(z1, config.mu), A.spectral_features(z2, config.mu)
    arrays: dict[str, np.ndarray] = {}
    spectra: dict[str, tuple[Tensor, Tensor]] = {
        "projector": A.batch_spectra(f1, config.batch_size),
        "backbone": A.batch_spectra(h1, config.batch_size),
        "cross": _batched_cross_spectra(f1, f2, config.batch_size),
    }
    for name, (mean, std) in spectra.items():
        arrays[f"{name}_eigs_mean"], arrays[f"{name}_eigs_std"] = mean.numpy(), std.numpy()
    c, c_plus = A.second_moment(torch.cat([f1, f2])), A.cross_moment(f1, f2)
    arrays["graph_c_eigs"] = A.eigenvalues(c).numpy()
    arrays["graph_c_plus_eigs"] = A.eigenvalues(c_plus).numpy()
    metrics: dict[str, Any] = {
        name: A.spectrum_summary(spectra[name][0].clamp_min(0)) for name in spectra
    }
    metrics["alignment"] = A.alignment(z1, z2)
    metrics["uniformity"] = A.uniformity(z1)
    metrics["graph"] = {
        "optimum_gap": A.optimum_gap(c, c_plus),
        **A.spectrum_summary(torch.from_numpy(arrays["graph_c_eigs"]).clamp_min(0)),
    }
    clock.lap("spectra")

    mean, std = sample.mean, sample.std
    train_x = extract_features(model.backbone, sample.train_images, mean, std, device=device)
    test_x = extract_features(model.backbone, sample.test_images, mean, std, device=device)
    clock.lap("features")
    probes = probe_features(
        train_x, sample.train_labels, test_x, sample.test_labels, len(sample.classes), config
    )
    clock.lap("probes")

    previous = previous or {}
    features = test_x.numpy()
    if "pca" in projections:
        arrays["pca"] = pca_2d(features, previous.get("pca"))
        clock.lap("pca")
    if "umap" in projections:
        arrays["umap"] = umap_2d(features, previous.get("umap"))
        clock.lap("umap")
    arrays["labels"] = sample.test_labels.numpy().astype(np.int64)
    arrays["indices"] = sample.test_indices.numpy().astype(np.int64)
    record = {
        "classes": sample.classes,
        "n_train": len(sample.train_images),
        "n_test": len(sample.test_images),
        "n_views": len(z1),
        "projected_split": "test",
        "batch_size": config.batch_size,
        "mu": config.mu,
        "seed": ANALYSIS_SEED,
        "projections": [p for p in PROJECTIONS if p in projections],
        "metrics": metrics,
        "probes": probes,
        "seconds": sum(clock.laps.values()),
        "timings": clock.laps,
    }
    return _json_ready(record), arrays


def _json_ready(value: Any) -> Any:
    """Non-finite floats (α of a one-eigenvalue spectrum is NaN) become None: valid JSON."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stored_projections(run: Run, epoch: int) -> tuple[str, ...]:
    """Layouts a readable artifact of ``epoch`` already has: a recomputation keeps them."""
    try:
        return tuple(load_analysis(run, epoch).get("projections", []))
    except UserError:
        return ()


def _previous_arrays(run: Run, epoch: int) -> dict[str, np.ndarray] | None:
    """Arrays of the latest readable artifact before ``epoch`` (seeds the aligned layouts)."""
    loaded, _ = load_all_analyses(run)
    earlier = [e for e in loaded if e < epoch]
    return loaded[max(earlier)]["arrays"] if earlier else None


def analyze_run(
    run: Run,
    *,
    checkpoint: Path | None = None,
    projections: tuple[str, ...] | None = None,
    device: str | None = None,
    force: bool = False,
    progress: bool = True,
    splits: tuple[ImageDataset, ImageDataset] | None = None,
) -> list[dict[str, Any]]:
    """Analyse the run's checkpoints (or one) oldest first, skipping those already done.

    Args:
        run: the run.
        checkpoint: one checkpoint file of the run; None: all of them.
        projections: 2-D projections to compute; None: the config's ``analysis_projection``.
        device: overrides the run's device.
        force: recompute artifacts that exist.
        progress: show a tqdm bar.
        splits: the (train, test) datasets when the caller holds them already.

    Returns:
        The records (without arrays) of every requested checkpoint, analysed now or before.
    """
    from tqdm import tqdm

    from explorer.builders import load_splits, resolve_device

    config = run.config()
    if projections is None:
        projections = (
            PROJECTIONS if config.analysis_projection == "both" else (config.analysis_projection,)
        )
    checkpoints = run.weight_checkpoints()
    if checkpoint is not None:
        checkpoints = [(e, p) for e, p in checkpoints if p.resolve() == checkpoint.resolve()]
        if not checkpoints:
            raise UserError(f"{checkpoint} is not a model checkpoint of run {run.path}")
    if not checkpoints:
        raise UserError(f"run {run.path} has no model checkpoint yet; train it first")
    todo = [(e, p) for e, p in checkpoints if force or not has_analysis(run, e, projections)]
    records: dict[int, dict[str, Any]] = {}
    if todo:
        torch_device = resolve_device(device or config.device)
        train, test = splits or load_splits(config)
        sample = evaluation_sample(train, test, config.analysis_samples, config.seed)
        previous = _previous_arrays(run, todo[0][0])
        bar = tqdm(todo, desc=f"analyse {run.name}", unit="ckpt", disable=not progress)
        # Building a model draws its random initialisation: keep the caller's RNG untouched.
        with torch.random.fork_rng(devices=[torch_device] if torch_device.type == "cuda" else []):
            for epoch, path in bar:
                bar.set_postfix(epoch=epoch)
                model, _ = load_trained_model(run, config, train.images.shape[1], path)
                record, arrays = analyze_checkpoint(
                    model,
                    sample,
                    config,
                    device=torch_device,
                    projections=(*projections, *_stored_projections(run, epoch)),
                    previous=previous,
                )
                record.update(epoch=epoch, checkpoint=path.name)
                save_analysis(run, epoch, record, arrays)
                records[epoch] = record
                previous = arrays
    for epoch, _ in checkpoints:
        if epoch not in records:
            record = load_analysis(run, epoch)
            record.pop("arrays")
            records[epoch] = record
    return [records[e] for e, _ in checkpoints]


def format_analysis_table(records: list[dict[str, Any]]) -> str:
    """epoch, RankMe and α of the spectral features, #eigenvalues > 0.9, kNN and linear probes."""
    lines = [f"{'epoch':>5}{'RankMe':>9}{'alpha':>8}{'#eig>0.9':>10}{'kNN':>9}{'linear':>9}"]
    for r in records:
        projector = r["metrics"]["projector"]
        alpha = "-" if projector["alpha"] is None else f"{projector['alpha']:.2f}"
        lines.append(
            f"{r['epoch']:>5}{projector['rankme']:>9.2f}{alpha:>8}"
            f"{projector['n_above_0.9']:>10}{100 * r['probes']['knn']['accuracy']:>8.1f}%"
            f"{100 * r['probes']['linear']['accuracy']:>8.1f}%"
        )
    return "\n".join(lines)
