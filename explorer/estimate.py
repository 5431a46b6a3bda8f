"""How long a config's training takes on its device, measured before launching it.

The estimate times a few real training steps (:meth:`explorer.train.Trainer.train_step`: the
views, the forward and backward passes, the optimiser) of the config's model, batch and data on
its device, after warm-up steps that absorb one-off costs (allocation, cuDNN's search,
``torch.compile``). Training takes ``epochs × steps_per_epoch`` such steps; checkpoints, the kNN
monitor, the probe and the analysis come on top and are not counted.

The time per step does not depend on the fields in :data:`SCHEDULE_FIELDS`, so a caller may keep
one measurement per :func:`timing_key` and rescale it as ``epochs`` changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from explorer.config import Config

#: Fields that change how many steps run or the numbers in them, never a step's cost.
SCHEDULE_FIELDS = frozenset({
    "epochs", "lr", "momentum", "weight_decay", "warmup_epochs", "seed", "mu", "temperature",
    "log_every", "checkpoint_every", "knn_every", "knn_k", "knn_temperature", "probe",
    "probe_epochs", "analyze", "analysis_samples", "analysis_projection", "download",
})  # fmt: skip


@dataclass(frozen=True)
class StepTiming:
    """A measurement of one config's training steps on one device."""

    device: str  # the device the steps ran on, e.g. "cpu" or "cuda"
    steps_per_epoch: int  # len(training set) // batch_size (the last partial batch is dropped)
    seconds_per_step: float  # mean over the timed steps
    timed_steps: int  # steps timed (after the warm-up steps)

    def total_steps(self, epochs: int) -> int:
        return epochs * self.steps_per_epoch

    def training_seconds(self, epochs: int) -> float:
        return self.total_steps(epochs) * self.seconds_per_step

    def describe(self, epochs: int) -> str:
        """One line, e.g. ``about 3.2 min on cpu (1,350 steps at 7.0 steps/s, measured)``."""
        seconds = self.training_seconds(epochs)
        amount = f"{seconds:.0f} s" if seconds < 90 else (
            f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h")
        rate = 1 / self.seconds_per_step
        rate_text = f"{rate:.1f} steps/s" if rate >= 1 else f"{self.seconds_per_step:.2f} s/step"
        return (f"about {amount} on {self.device} ({self.total_steps(epochs):,} steps at "
                f"{rate_text}, measured)")


def timing_key(config: Config) -> tuple[tuple[str, Any], ...]:
    """The fields a step's cost depends on: equal keys, equal :class:`StepTiming`."""
    return tuple((k, v) for k, v in sorted(config.to_dict().items()) if k not in SCHEDULE_FIELDS)


def measure_steps(
    config: Config, *, warmup_steps: int = 1, min_steps: int = 3, budget_s: float = 3.0
) -> StepTiming:
    """Time real training steps of ``config``: ``warmup_steps`` untimed, then at least
    ``min_steps`` timed and more while the timed ones took under ``budget_s`` seconds (at most
    50). Loads the config's training data (a :class:`~explorer.errors.UserError` says what is
    missing) and leaves torch's random streams as they were."""
    import torch

    from explorer.reporting import LossWindow
    from explorer.rng import fork_rng
    from explorer.train import Trainer

    with fork_rng(config.device if config.device in ("cpu", "cuda") else "cpu"):
        trainer = Trainer(config, progress=False)
        device = trainer.device
        per_step = config.batch_size
        generator = torch.Generator().manual_seed(0)
        order = torch.randperm(len(trainer.train_set), generator=generator).to(device)

        def step(index: int) -> None:
            start = (index % trainer.steps_per_epoch) * per_step
            view1, view2 = trainer.views(order[start : start + per_step])
            trainer.train_step(view1, view2, LossWindow(sums={}))
            trainer.step += 1

        def sync() -> None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        for index in range(warmup_steps):
            step(index)
        sync()
        started = time.perf_counter()
        timed = 0
        while timed < min_steps or (time.perf_counter() - started < budget_s and timed < 50):
            step(warmup_steps + timed)
            timed += 1
            sync()  # each step waits for the device, so the clock sees its real cost
        seconds = (time.perf_counter() - started) / timed
    return StepTiming(device.type, trainer.steps_per_epoch, seconds, timed)
