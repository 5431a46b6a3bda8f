"""What training reports, each in one place: metrics lines, status record and log
(:class:`Reporter`), over windows of steps (:class:`LossWindow`), and the kNN monitor
(:class:`KnnMonitor`). Used by :mod:`explorer.train`, which hands the reporter plain values
(:class:`Schedule`): this module never imports the trainer (``tests/test_layering.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from explorer.analysis.probes import extract_features, knn_probe
from explorer.config import Config
from explorer.data import ImageDataset
from explorer.rundir.checkpoint import Diverged, TrainState
from explorer.rundir.run import Run

# Cap the kNN monitor's cost: it runs every few epochs on a fixed sample.
MONITOR_TRAIN_SAMPLES = 5000
MONITOR_TEST_SAMPLES = 2000


@dataclass(frozen=True)
class Schedule:
    """What the reporter needs to know of the run's schedule, as plain values.

    Attributes:
        batch_size: images per step (the global batch, all ranks together).
        steps_per_epoch: SGD steps in one epoch.
        total_steps: SGD steps in the whole run.
    """

    batch_size: int
    steps_per_epoch: int
    total_steps: int


@dataclass
class LossWindow:
    """Sums over the steps since the last metrics line, kept on the device (no sync per step)."""

    sums: dict[str, torch.Tensor]
    steps: int = 0
    started: float = field(default_factory=time.perf_counter)


class Reporter:
    """What the loop reports, in one place: metrics lines, the status record and ``train.log``.

    Only rank 0 writes (other ranks hold a :class:`~explorer.distributed.FollowerRun`).

    Args:
        run: the run written to (a ``FollowerRun`` on ranks other than 0).
        schedule: the run's batch size and step counts.
        rank: this process's rank under ``torchrun`` (0 alone).
        progress: whether log lines also go to the terminal (through tqdm).
    """

    def __init__(self, run: Run, schedule: Schedule, *, rank: int = 0,
                 progress: bool = True) -> None:
        self.run, self.rank, self.progress = run, rank, progress
        self.batch_size = schedule.batch_size
        self.steps_per_epoch, self.total_steps = schedule.steps_per_epoch, schedule.total_steps
        self._since: tuple[float, int] | None = None  # (time, step) of the first window seen

    def log(self, message: str) -> None:
        if self.rank != 0:
            return
        with open(self.run.path / "train.log", "a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.progress:
            tqdm.write(message)

    def window(self, window: LossWindow, state: TrainState, lr: float, bar: tqdm) -> None:
        """One ``step`` metrics line: the window's mean loss terms; fails on a non-finite mean.
        Adds the window to the epoch's loss in ``state``."""
        means = {k: float(v) / window.steps for k, v in window.sums.items()}  # one sync here
        if not all(math.isfinite(v) for v in means.values()):
            raise Diverged(f"loss became {means['loss']} near step {state.step}")
        state.epoch_loss_sum += means["loss"] * window.steps
        state.epoch_steps += window.steps
        seconds = max(time.perf_counter() - window.started, 1e-9)
        images_per_s = window.steps * self.batch_size / seconds
        self.run.append_metrics({
            "kind": "step", "epoch": state.step / self.steps_per_epoch, "step": state.step,
            **means, "lr": lr, "images_per_s": images_per_s, "time": time.time(),
        })  # fmt: skip
        bar.set_postfix(loss=f"{means['loss']:.4f}", lr=f"{lr:.3g}", img_s=f"{images_per_s:.0f}")
        # the time left at the pace of this process so far (checkpoints and kNN pauses
        # included), not at the last window's speed, which leaves them out
        now = time.perf_counter()
        if self._since is None:
            self._since = (window.started, state.step - window.steps)
        pace = (now - self._since[0]) / max(state.step - self._since[1], 1)  # s per step
        remaining = (self.total_steps - state.step) * pace
        self.run.update_status(
            epoch=state.epoch,
            step=state.step,
            progress=state.step / self.total_steps,
            images_per_s=images_per_s,
            eta_s=remaining,
            loss=means["loss"],
        )

    def epoch(self, record: dict[str, Any], total_epochs: int) -> None:
        """The ``epoch`` metrics line and its log line."""
        self.run.append_metrics({**record, "time": time.time()})
        self.run.update_status(epoch=record["epoch"], step=record["step"])
        knn = f", kNN accuracy {record['knn_accuracy']:.3f}" if "knn_accuracy" in record else ""
        self.log(f"epoch {record['epoch']}/{total_epochs} done{knn}")


class KnnMonitor:
    """A cheap kNN accuracy of the backbone on a fixed, seeded sample (Wu et al. 2018)."""

    def __init__(self, config: Config, train_set: ImageDataset, test_set: ImageDataset) -> None:
        self.config, self.train_set, self.test_set = config, train_set, test_set
        generator = torch.Generator().manual_seed(config.seed)
        n_train = min(MONITOR_TRAIN_SAMPLES, len(train_set))
        n_test = min(MONITOR_TEST_SAMPLES, len(test_set))
        self.train_index = torch.randperm(len(train_set), generator=generator)[:n_train]
        self.test_index = torch.randperm(len(test_set), generator=generator)[:n_test]

    def due(self, epoch: int) -> bool:
        every = self.config.knn_every
        return bool(every) and (epoch % every == 0 or epoch == self.config.epochs)

    def accuracy(self, backbone: torch.nn.Module, device: torch.device) -> float:
        train, test = self.train_set, self.test_set
        mean, std = train.mean, train.std
        train_features = extract_features(
            backbone, train.images[self.train_index], mean, std, device=device
        )
        test_features = extract_features(
            backbone, test.images[self.test_index], mean, std, device=device
        )
        result = knn_probe(
            train_features,
            train.labels[self.train_index],
            test_features,
            test.labels[self.test_index],
            len(train.classes),
            k=self.config.knn_k,
            temperature=self.config.knn_temperature,
        )
        return result.accuracy
