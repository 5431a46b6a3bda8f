"""One checkpoint analysed: a model and the evaluation sample in, an artifact's record and
arrays out.

On the run's fixed :class:`~explorer.analysis.sample.EvaluationSample`, for one model:

- the first :data:`VIEW_SAMPLES` images of the training sample get two views each, made by
  :func:`explorer.builders.build_views` exactly as training makes them (seeded by
  :data:`ANALYSIS_SEED`), and pass through the model in eval mode: batch Gram spectra of the
  features f (below) and of the backbone features h (mean and spread over batches of
  the training batch size), the cross-view spectrum, RankMe and α-ReQ of all those embeddings,
  alignment/uniformity, and the augmentation-graph estimate (eigenvalues of C = E[f fᵀ] and
  C₊ = E[f(x) f(x⁺)ᵀ] over all the views, and the stationarity residual
  ‖C₊ − C²‖/(‖C₊‖ + ‖C²‖)); f is the features as the run's loss sees them
  (:func:`explorer.analysis.metrics.loss_features`: clip(z) for the spectral loss, z/‖z‖ at its best
  scale for SimCLR and SimSiam);
- the same features split by the training sample's labels: the between-class part of E[f fᵀ]
  and the cosines of the class means (:mod:`explorer.analysis.class_components`: do the classes
  behave as
  nearly disconnected components of the graph, and which merge?);
- linear and kNN probes are fitted on the training sample's clean backbone features and scored on
  the test sample, and again on the same images' projector features (:func:`projector_features`:
  clip(z) with the run's μ for the spectral loss, the theorem's f; z/‖z‖ for SimCLR and SimSiam);
- the test sample's backbone features, and its projector features, are projected to 2-D (PCA and
  UMAP, each started from the previous checkpoint's layout of the same features; the projector
  features get PCA always, UMAP where the backbone's do), stored with the test labels and their
  indices in the test split.

:func:`analyze_checkpoint` fills one record (JSON scalars) and one dict of arrays, stage by
stage; a new stage adds its keys to both. The metrics are :mod:`explorer.analysis.metrics`'s; which
checkpoints to analyse and where artifacts go is :mod:`explorer.analysis.run`'s job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from explorer.analysis import metrics as A
from explorer.analysis import theorem
from explorer.analysis.class_components import class_arrays
from explorer.analysis.probes import extract_features, one_thread, probe_features
from explorer.analysis.projection import PROJECTIONS, pca_2d, umap_2d
from explorer.analysis.sample import EvaluationSample
from explorer.builders import build_views
from explorer.config import Config
from explorer.data import ImageDataset
from explorer.models import ContrastiveModel
from explorer.rng import fork_rng

ANALYSIS_SEED = 20210604  # fixes the views; the paper's arXiv date
# Views cost two forward passes per image: the view-based statistics use the first 2,560 images
# of the training sample (10 batches of 256, 5 of 512), enough for the spread over batches.
VIEW_SAMPLES = 2560


@dataclass
class ViewOutputs:
    """The model on two views of the same images, float32 on the CPU, row i the same image."""

    h1: Tensor  # (N, D) backbone features of view 1
    h2: Tensor  # (N, D) of view 2
    z1: Tensor  # (N, d) projector outputs of view 1
    z2: Tensor  # (N, d) of view 2


@torch.no_grad()
def two_view_outputs(
    model: ContrastiveModel, sample: EvaluationSample, config: Config, device: torch.device
) -> ViewOutputs:
    """Backbone features and projector outputs of two views of the first :data:`VIEW_SAMPLES`
    training-sample images, in eval mode, the views drawn with ``ANALYSIS_SEED`` (the caller's
    random stream is untouched)."""
    n = min(VIEW_SAMPLES, len(sample.train))
    outputs: list[list[Tensor]] = [[], [], [], []]
    with fork_rng(device):
        torch.manual_seed(ANALYSIS_SEED)
        views = build_views(config, sample.train, device)
        for indices in torch.arange(n, device=device).split(config.batch_size):
            view1, view2 = views(indices)  # (B, C, S, S) each
            h1, z1, _ = model(view1)
            h2, z2, _ = model(view2)
            for kept, value in zip(outputs, (h1, h2, z1, z2), strict=True):
                kept.append(value.float().cpu())
    return ViewOutputs(*(torch.cat(kept) for kept in outputs))


#: How the projector features of the clean sample images are read from z, per loss: the
#: spectral loss's f = clip(z) with the run's μ (the theorem's f), else the direction u = z/‖z‖
#: that NT-Xent and SimSiam see (no scale: a global one changes no probe and no layout's shape).
PROJECTOR_READING = {"spectral": "clip(z)", "simclr": "z/|z|", "simsiam": "z/|z|"}


@torch.no_grad()
def projector_features(
    model: ContrastiveModel, backbone_features: Tensor, config: Config, device: torch.device,
    batch_size: int = 512,
) -> Tensor:
    """The projector's output on backbone features h (from :func:`extract_features`), in eval
    mode, read as the run's loss reads it (:data:`PROJECTOR_READING`): clip(z) with the run's μ
    for the spectral loss, z/‖z‖ for SimCLR and SimSiam.

    Args:
        model: the model, already on ``device`` and in eval mode.
        backbone_features: Tensor of shape (N, D), float32 on the CPU.
        config: the run's config (its loss and μ).
        device: where the projector runs.

    Returns:
        Tensor of shape (N, d), float32, on the CPU.
    """
    z = torch.cat([model.projector(chunk.to(device)).float().cpu()
                   for chunk in backbone_features.split(batch_size)])  # (N, d)
    return read_projector_output(z, config)


def read_projector_output(z: Tensor, config: Config) -> Tensor:
    """Projector outputs z (N, d) read as the run's loss reads them (:data:`PROJECTOR_READING`):
    clip(z) with the run's μ, or z/‖z‖; (N, d) float32."""
    if PROJECTOR_READING[config.loss] == "clip(z)":
        return A.spectral_features(z, config.mu).float()
    return torch.nn.functional.normalize(z.float(), dim=1)


def add_class_components(
    out: ViewOutputs, labels: Tensor, num_classes: int, config: Config,
    arrays: dict[str, np.ndarray],
) -> None:
    """Do the classes behave as components? The between-class part of E[f fᵀ] over both views,
    the class means' cosines and shares (:mod:`explorer.analysis.class_components`); ``labels`` are
    the
    training sample's, whose first ``len(out.z1)`` images the views are of."""
    f1, f2, _ = A.loss_features(out.z1, out.z2, config.loss, config.mu)
    views = labels[: len(f1)].numpy()
    arrays.update(class_arrays(torch.cat([f1, f2]).numpy(), np.concatenate([views, views]),
                               num_classes))  # fmt: skip


class _Clock:
    """Seconds spent in each stage, for the record (and the benchmark)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self._last = now - self._last, now


def add_view_metrics(
    out: ViewOutputs, config: Config, record: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    """Spectra, RankMe, α-ReQ, alignment/uniformity and the graph estimate of the views."""
    # the features as the run's loss sees them: clip(z), or z/‖z‖ at its best scale
    f1, f2, scale = A.loss_features(out.z1, out.z2, config.loss, config.mu)
    f, h = torch.cat([f1, f2]), torch.cat([out.h1, out.h2])  # every evaluated embedding
    b = config.batch_size
    spectra = {
        "projector": A.batch_spectra(f1, batch_size=b),
        "backbone": A.batch_spectra(out.h1, batch_size=b),
        "cross": A.batch_spectra(f1, f2, batch_size=b, spectrum=A.cross_eigenvalues),
    }
    for name, (mean, std) in spectra.items():
        arrays[f"{name}_eigs_mean"], arrays[f"{name}_eigs_std"] = mean.numpy(), std.numpy()
    c, c_plus = A.second_moment(f), A.cross_moment(f1, f2)
    arrays["graph_c_eigs"] = A.eigenvalues(c).numpy()
    arrays["graph_c_plus_eigs"] = A.eigenvalues(c_plus).numpy()
    metrics = record.setdefault("metrics", {})
    for name, matrix in (("projector", f), ("backbone", h)):
        metrics[name] = {
            "rankme": A.rankme(matrix),
            "alpha_req": A.alpha_req(matrix),  # α-ReQ's decay, not Assumption 3.5's α
            **A.eigenvalue_counts(spectra[name][0]),
        }
    metrics["cross"] = A.eigenvalue_counts(spectra["cross"][0])
    metrics["graph"] = {
        "stationarity_residual": A.stationarity_residual(c, c_plus),
        **A.eigenvalue_counts(torch.from_numpy(arrays["graph_c_eigs"])),
    }
    metrics["features"] = {"loss": config.loss, "scale": scale,
                           "mu": config.mu if config.loss == "spectral" else None}
    metrics["alignment"] = A.alignment(out.z1, out.z2)
    metrics["uniformity"] = A.uniformity(out.z1)


#: What :func:`analyze_checkpoint` does, in order (``on_stage`` hears each as it starts); the
#: last only for a ``shapes`` run, whose exact graph is known.
STAGES = ("two views: spectra and class components", "features and probes", "2-D layouts",
          "the exact graph: L(f) against its optimum and the guarantee")


def analyze_checkpoint(
    model: ContrastiveModel,
    sample: EvaluationSample,
    config: Config,
    *,
    device: torch.device | str = "cpu",
    projections: tuple[str, ...] = PROJECTIONS,
    previous: dict[str, np.ndarray] | None = None,
    training_set: ImageDataset | None = None,
    on_stage: Callable[[int, str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every metric of one checkpoint: ``(JSON-ready record, arrays)`` for
    :func:`explorer.rundir.artifacts.save_analysis`.

    Args:
        model: the trained model (any device; moved to ``device``, left in eval mode).
        sample: the run's fixed evaluation sample.
        config: the run's config (batch size, μ, augmentation, probe settings).
        device: where the forward passes run.
        projections: any of ``"pca"``, ``"umap"``.
        previous: the previous checkpoint's arrays; its ``pca``/``umap`` layouts (and
            ``pca_projector``/``umap_projector``) seed this one's.
        training_set: the whole training split, whose factor tuples are the natural data of a
            ``shapes`` run's exact graph (:mod:`explorer.analysis.theorem`); default: the sample's.
        on_stage: called as ``(i, name)`` when stage i of :data:`STAGES` starts (the trainer
            records it, and the Train page shows it while it waits).
    """
    tell = on_stage or (lambda index, name: None)
    device = torch.device(device)
    model = model.to(device).eval()
    clock = _Clock()
    train, test = sample.train, sample.test
    record: dict[str, Any] = {
        "classes": sample.classes,
        "n_train": len(train),
        "n_test": len(test),
        "projected_split": "test",
        "batch_size": config.batch_size,
        "mu": config.mu,
        "seed": ANALYSIS_SEED,
        "projections": [p for p in PROJECTIONS if p in projections],
    }
    arrays: dict[str, np.ndarray] = {}

    tell(0, STAGES[0])
    outputs = two_view_outputs(model, sample, config, device)
    record["n_views"] = len(outputs.z1)
    clock.lap("views")
    with one_thread():  # small eigen-decompositions: a second thread only spin-waits under load
        add_view_metrics(outputs, config, record, arrays)
    clock.lap("spectra")
    add_class_components(outputs, train.labels, len(sample.classes), config, arrays)
    clock.lap("classes")

    tell(1, STAGES[1])
    train_x = extract_features(model.backbone, train.images, train.mean, train.std, device=device)
    test_x = extract_features(model.backbone, test.images, train.mean, train.std, device=device)
    clock.lap("features")
    record["probes"] = probe_features(
        train_x, train.labels, test_x, test.labels, len(sample.classes),
        knn_k=config.knn_k, knn_temperature=config.knn_temperature,
    )
    clock.lap("probes")
    # the same images through the projector, read as the run's loss reads z
    reading = PROJECTOR_READING[config.loss]
    train_f = projector_features(model, train_x, config, device)
    test_f = projector_features(model, test_x, config, device)
    record["projector_features"] = {"reading": reading,
                                    "mu": config.mu if reading == "clip(z)" else None}
    clock.lap("projector_features")
    record["probes_projector"] = probe_features(
        train_f, train.labels, test_f, test.labels, len(sample.classes),
        knn_k=config.knn_k, knn_temperature=config.knn_temperature,
    )
    clock.lap("projector_probes")

    tell(2, STAGES[2])
    add_layouts(test_x, test_f, projections, previous, arrays, clock)
    arrays["labels"] = test.labels.numpy().astype(np.int64)
    arrays["indices"] = sample.test_indices.numpy().astype(np.int64)

    # Further stages go here, each filling `record` and `arrays` and ending with a clock lap.
    if theorem.applies(config):  # shapes: every node of the exact graph, against its optimum
        tell(3, STAGES[3])
        exact, exact_arrays = theorem.exact_metrics(model, config, training_set or train, device)
        record["exact"] = exact
        arrays.update(exact_arrays)
        clock.lap("exact")

    record["seconds"], record["timings"] = sum(clock.laps.values()), clock.laps
    return json_ready(record), arrays


def add_layouts(
    test_x: Tensor, test_f: Tensor, projections: tuple[str, ...],
    previous: dict[str, np.ndarray] | None, arrays: dict[str, np.ndarray], clock: _Clock,
) -> None:
    """2-D layouts of the test sample's backbone features ``test_x`` (M, D) and projector
    features ``test_f`` (M, d), each started from ``previous``'s layout of the same features."""
    previous = previous or {}
    # The projector's PCA layout always (milliseconds), its UMAP where the backbone gets one: a
    # second UMAP per checkpoint costs as much as the first (8 s of 2,000 points on 2 cores).
    for suffix, features, wanted in (("", test_x, projections),
                                     ("_projector", test_f, ("pca", *projections))):
        if "pca" in wanted:
            arrays[f"pca{suffix}"] = pca_2d(features.numpy(), previous.get(f"pca{suffix}"))
            clock.lap(f"pca{suffix}")
        if "umap" in wanted:
            arrays[f"umap{suffix}"] = umap_2d(features.numpy(), previous.get(f"umap{suffix}"))
            clock.lap(f"umap{suffix}")


#: What an analysis of given features (no network, so no views) lacks, in the record's words.
WITHOUT_VIEWS = ("given features, no network: no augmented views, so no cross-view spectrum, "
                 "no C+ = E[f(x) f(x+)^T] and no stationarity residual, no alignment or "
                 "uniformity; the batch spectra, RankMe, alpha-ReQ and C = E[f f^T] are of the "
                 "clean (unaugmented) training sample")


def analyze_features(
    train_h: Tensor, train_labels: Tensor, test_h: Tensor, test_labels: Tensor,
    test_indices: Tensor, classes: list[str], config: Config, *,
    projections: tuple[str, ...] = PROJECTIONS, previous: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Given features analysed as far as they go without a network (an imported ``.npz``).

    The projector is the identity (z = h = the given features) and f is z read as the run's
    loss reads it (:func:`read_projector_output`). What needs two views of an image is left
    out and the record says so (``views`` = :data:`WITHOUT_VIEWS`, ``n_views`` 0); the rest has
    :func:`analyze_checkpoint`'s keys, computed on the clean training sample instead of view 1.

    Args:
        train_h: (N, D) float features of the training sample; ``train_labels`` (N,) int64.
        test_h: (M, D) of the test sample; ``test_labels`` (M,); ``test_indices`` (M,) int64,
            their rows in the test split.
        classes: the class names; ``config``: the run's (batch size, loss, μ, probe settings).
        projections, previous: as :func:`analyze_checkpoint`'s.
    """
    clock = _Clock()
    train_h, test_h = train_h.float(), test_h.float()
    record: dict[str, Any] = {
        "classes": list(classes), "n_train": len(train_h), "n_test": len(test_h),
        "projected_split": "test", "batch_size": config.batch_size, "mu": config.mu,
        "seed": None, "projections": [p for p in PROJECTIONS if p in projections],
        "n_views": 0, "views": WITHOUT_VIEWS,
    }
    arrays: dict[str, np.ndarray] = {}
    train_f, test_f = read_projector_output(train_h, config), read_projector_output(test_h, config)
    b = config.batch_size
    spectra = {"projector": A.batch_spectra(train_f, batch_size=b),
               "backbone": A.batch_spectra(train_h, batch_size=b)}
    metrics: dict[str, Any] = {}
    for name, matrix in (("projector", train_f), ("backbone", train_h)):
        mean, std = spectra[name]
        arrays[f"{name}_eigs_mean"], arrays[f"{name}_eigs_std"] = mean.numpy(), std.numpy()
        metrics[name] = {"rankme": A.rankme(matrix), "alpha_req": A.alpha_req(matrix),
                         **A.eigenvalue_counts(mean)}
    arrays["graph_c_eigs"] = A.eigenvalues(A.second_moment(train_f)).numpy()
    metrics["graph"] = A.eigenvalue_counts(torch.from_numpy(arrays["graph_c_eigs"]))
    reading = PROJECTOR_READING[config.loss]
    mu = config.mu if reading == "clip(z)" else None
    metrics["features"] = {"loss": config.loss, "scale": 1.0 if mu is not None else None,
                           "mu": mu}
    record["metrics"] = metrics
    arrays.update(class_arrays(train_f.numpy(), train_labels.numpy(), len(classes)))
    clock.lap("spectra")
    probe = {"knn_k": config.knn_k, "knn_temperature": config.knn_temperature}
    record["probes"] = probe_features(train_h, train_labels, test_h, test_labels, len(classes),
                                      **probe)
    record["projector_features"] = {"reading": reading, "mu": mu}
    record["probes_projector"] = probe_features(train_f, train_labels, test_f, test_labels,
                                                len(classes), **probe)
    clock.lap("probes")
    add_layouts(test_h, test_f, projections, previous, arrays, clock)
    arrays["labels"] = test_labels.numpy().astype(np.int64)
    arrays["indices"] = test_indices.numpy().astype(np.int64)
    record["seconds"], record["timings"] = sum(clock.laps.values()), clock.laps
    return json_ready(record), arrays


def json_ready(value: Any) -> Any:
    """Non-finite floats (α of a spectrum too short to fit is NaN) become None: valid JSON."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
