"""`explorer analyze RUN_DIR`: analyse every checkpoint of a run not yet analysed, store artifacts.

The orchestration: which checkpoints still need an artifact, the evaluation sample drawn
once for all of them (:mod:`explorer.analysis.sample`), each checkpoint's model loaded and
analysed (:mod:`explorer.analysis.checkpoint`), oldest first so that each 2-D layout starts from
the previous one, and the artifacts written (:mod:`explorer.rundir.artifacts`), and the table the
command
prints (:func:`format_analysis_table`, as :mod:`explorer.analysis.probe_run` holds ``explorer
probe``'s). A
trainer runs this in a child process with :class:`explorer.rundir.background.BackgroundAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from explorer.analysis.checkpoint import analyze_checkpoint, analyze_features
from explorer.analysis.projection import PROJECTIONS
from explorer.analysis.sample import evaluation_sample, sample_indices
from explorer.data import ImageDataset
from explorer.errors import UserError
from explorer.models import PRECOMPUTED
from explorer.rng import fork_rng
from explorer.rundir.artifacts import has_analysis, load_all_analyses, load_analysis, save_analysis
from explorer.rundir.records import FeatureMetrics, as_analysis
from explorer.rundir.run import Run
from explorer.trained_model import load_trained_model


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
    on_checkpoint: Callable[[int, int], None] | None = None,
    on_stage: Callable[[int, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Analyse the run's checkpoints (or one) oldest first, skipping those already done.

    Torch's global random stream is the same afterwards as before (models are built and views
    drawn inside :func:`explorer.rng.fork_rng`), so a trainer may call this in-process.

    Args:
        run: the run.
        checkpoint: one checkpoint file of the run; None: all of them.
        projections: 2-D projections to compute; None: the config's ``analysis_projection``.
        device: overrides the run's device.
        force: recompute artifacts that exist.
        progress: show a tqdm bar.
        splits: the (train, test) datasets when the caller holds them already.
        on_checkpoint: called as ``(i, n)`` before the i-th (from 1) of the n checkpoints to
            analyse now (the trainer records it as its phase's progress).
        on_stage: called as ``(i, name)`` as each checkpoint's stage i starts
            (:data:`explorer.analysis.checkpoint.STAGES`).

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
    if config.backbone == PRECOMPUTED:  # an imported .npz: its features, no network
        return [analyze_given_features(run, projections=projections, force=force)]
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
        for number, (epoch, path) in enumerate(bar, 1):
            bar.set_postfix(epoch=epoch)
            if on_checkpoint is not None:
                on_checkpoint(number, len(todo))
            with fork_rng(torch_device):  # building a model draws its random initialisation
                model, _ = load_trained_model(run, config, train.images.shape[1], path)
            record, arrays = analyze_checkpoint(
                model,
                sample,
                config,
                device=torch_device,
                projections=(*projections, *_stored_projections(run, epoch)),
                previous=previous,
                training_set=train,
                on_stage=on_stage,
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


#: The epoch of an imported run's one checkpoint or set of given features.
IMPORTED_EPOCH = 1


def analyze_given_features(
    run: Run, *, projections: tuple[str, ...] = PROJECTIONS, force: bool = False
) -> dict[str, Any]:
    """Analyse a run imported from precomputed features (``imported/features.npz``: no network,
    :func:`explorer.analysis.checkpoint.analyze_features`) on the run's evaluation sample of its
    rows (at most ``analysis_samples`` of each split, seeded as for images); stored as the
    artifact of epoch :data:`IMPORTED_EPOCH`. Returns the record (without arrays)."""
    from explorer.data.npz import split_rows

    epoch = IMPORTED_EPOCH
    if force or not has_analysis(run, epoch, projections):
        config = run.config()
        data = run.load_features()
        features = torch.from_numpy(np.asarray(data["features"], dtype=np.float32))
        labels = torch.from_numpy(data["labels"].astype(np.int64))
        train_rows, test_rows = (torch.from_numpy(rows) for rows in
                                 split_rows(data["labels"], data["split"]))
        train_idx, test_idx = sample_indices(len(train_rows), len(test_rows),
                                             config.analysis_samples, config.seed)
        train, test = train_rows[train_idx], test_rows[test_idx]
        classes = [str(name) for name in data["classes"]]
        record, arrays = analyze_features(
            features[train], labels[train], features[test], labels[test], test_idx, classes,
            config, projections=(*projections, *_stored_projections(run, epoch)))
        record.update(epoch=epoch, checkpoint="imported/features.npz")
        save_analysis(run, epoch, record, arrays)
    record = load_analysis(run, epoch)
    record.pop("arrays")
    return record


def format_analysis_table(records: list[dict[str, Any]]) -> str:
    """What ``explorer analyze`` prints: one row per record of :func:`analyze_run` (any format,
    read as :class:`explorer.rundir.records.AnalysisRecord`): epoch, RankMe and α-ReQ of the
    spectral features, #eigenvalues > 0.9 of their batch Gram spectrum, kNN and linear probe
    accuracy; for ``shapes`` runs also the share of the provable optimum reached, 1 − gap, and the
    class eigenspace's R² on the exact graph (:mod:`explorer.analysis.theorem`); "-" where a
    record lacks a value."""
    typed = [as_analysis(r) for r in records]
    exact = any(r.exact is not None for r in typed)
    header = f"{'epoch':>5}{'RankMe':>9}{'alpha':>8}{'#eig>0.9':>10}{'kNN':>9}{'linear':>9}"
    lines = [header + (f"{'optimum':>9}{'class R2':>10}" if exact else "")]
    for r in typed:
        projector = r.metrics.get("projector", FeatureMetrics())
        line = (
            f"{r.epoch:>5}{_cell(projector.rankme, 9, '.2f')}{_cell(projector.alpha_req, 8, '.2f')}"
            f"{_cell(projector.above.get(0.9), 10, 'd')}{_percent(r.accuracy('knn'))}"
            f"{_percent(r.accuracy('linear'))}"
        )
        if r.exact is not None:
            line += f"{_percent(r.exact.share)}{_cell(r.exact.class_r2, 10, '.3f')}"
        lines.append(line)
    if exact:
        lines.append("optimum: share of the provable optimum -sum(gamma_i^2) that the exact "
                     "population loss L(clip(z)) reaches on every node of the shapes graph")
    return "\n".join(lines)


def _cell(value: float | None, width: int, spec: str) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _percent(value: float | None) -> str:
    return f"{'-':>9}" if value is None else f"{100 * value:>8.1f}%"
